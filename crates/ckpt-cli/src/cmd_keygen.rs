//! `ckpt keygen`.

use crate::Failure;

pub fn run(a: &crate::KeygenArgs) -> Result<u8, Failure> {
    let _ = a;
    Err(Failure::operational(anyhow::anyhow!("ckpt keygen is not built yet")))
}
