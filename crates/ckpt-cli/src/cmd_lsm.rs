//! `ckpt lsm`.

use crate::Failure;

pub fn run(a: &crate::LsmArgs) -> Result<u8, Failure> {
    let _ = a;
    Err(Failure::operational(anyhow::anyhow!("ckpt lsm is not built yet")))
}
