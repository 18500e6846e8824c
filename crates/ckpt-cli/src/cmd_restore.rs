//! `ckpt restore`.

use crate::Failure;

pub fn run(a: &crate::RestoreArgs) -> Result<u8, Failure> {
    let _ = a;
    Err(Failure::operational(anyhow::anyhow!("ckpt restore is not built yet")))
}
