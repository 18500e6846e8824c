//! `ckpt dump`.

use crate::Failure;

pub fn run(a: &crate::DumpArgs) -> Result<u8, Failure> {
    let _ = a;
    Err(Failure::operational(anyhow::anyhow!("ckpt dump is not built yet")))
}
