//! `ckpt inspect`.

use crate::Failure;

pub fn run(a: &crate::InspectArgs) -> Result<u8, Failure> {
    let _ = a;
    Err(Failure::operational(anyhow::anyhow!("ckpt inspect is not built yet")))
}
