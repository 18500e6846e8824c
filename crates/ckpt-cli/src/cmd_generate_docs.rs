//! `ckpt generate-docs DIR` (hidden): writes the man pages (clap_mangen)
//! and shell completions (clap_complete) generated from the same clap
//! definitions as `--help`, for `make install`:
//! DIR/man/man1/ckpt.1, DIR/man/man1/ckpt-SUBCOMMAND.1,
//! DIR/completions/{ckpt.bash,_ckpt,ckpt.fish}.

use crate::failure::OrFail;
use crate::Failure;
use clap_complete::Shell;
use std::path::Path;

pub fn run(dir: &Path, cmd: clap::Command) -> Result<u8, Failure> {
    let man = dir.join("man").join("man1");
    let comp = dir.join("completions");
    for d in [&man, &comp] {
        std::fs::create_dir_all(d).or_fail(|| format!("cannot create {}", d.display()))?;
    }
    write_man_pages(&man, cmd.clone())?;
    for (shell, name) in [
        (Shell::Bash, "ckpt.bash"),
        (Shell::Zsh, "_ckpt"),
        (Shell::Fish, "ckpt.fish"),
    ] {
        let mut buf = Vec::new();
        clap_complete::generate(shell, &mut cmd.clone(), "ckpt", &mut buf);
        write(&comp.join(name), &buf)?;
    }
    Ok(0)
}

fn write(path: &Path, bytes: &[u8]) -> Result<(), Failure> {
    std::fs::write(path, bytes).or_fail(|| format!("cannot write {}", path.display()))
}

/// ckpt.1 and one ckpt-NAME.1 per visible subcommand.
fn write_man_pages(dir: &Path, mut cmd: clap::Command) -> Result<(), Failure> {
    cmd.build();
    let render = |c: clap::Command, name: &str| -> Result<(), Failure> {
        let mut buf = Vec::new();
        clap_mangen::Man::new(c)
            .render(&mut buf)
            .or_fail(|| format!("cannot render the man page of {name}"))?;
        write(&dir.join(format!("{name}.1")), &buf)
    };
    for sub in cmd
        .get_subcommands()
        .filter(|s| !s.is_hide_set() && s.get_name() != "help")
    {
        let name = format!("ckpt-{}", sub.get_name());
        render(sub.clone().name(name.clone()), &name)?;
    }
    render(cmd, "ckpt")
}
