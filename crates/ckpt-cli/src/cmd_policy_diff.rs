//! `ckpt policy-diff`.

use crate::Failure;

pub fn run(a: &crate::PolicyDiffArgs) -> Result<u8, Failure> {
    let _ = a;
    Err(Failure::operational(anyhow::anyhow!("ckpt policy-diff is not built yet")))
}
