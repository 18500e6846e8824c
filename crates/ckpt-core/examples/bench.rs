//! `cargo run --release -p ckpt-core --example bench [MiB...]`: times dump
//! and restore of processes with dirtied memory against `cat` (needs root).

fn main() {
    ckpt_core::bench::hog_main_if_requested();
    let sizes: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let sizes = if sizes.is_empty() {
        vec![16, 256, 1024]
    } else {
        sizes
    };
    let dir = std::env::var("CKPT_BENCH_DIR").unwrap_or_else(|_| ".".into());
    match ckpt_core::bench::run(&sizes, std::path::Path::new(&dir)) {
        Ok(r) => print!("{}", ckpt_core::bench::format_table(&r)),
        Err(e) => {
            eprintln!("bench failed: {e}");
            std::process::exit(1);
        }
    }
}
