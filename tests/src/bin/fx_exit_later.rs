//! Fixture: waits until the file GO exists, then exits with status CODE.
//! Writes `waiting` to OUT first.
fn main() {
    let args: Vec<String> = std::env::args().collect();
    let go = std::path::PathBuf::from(&args[1]);
    let code: i32 = args[2].parse().expect("CODE");
    std::fs::write(&args[3], "waiting\n").expect("OUT");
    while !go.exists() {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    std::process::exit(code);
}
