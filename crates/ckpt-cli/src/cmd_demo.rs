//! `ckpt demo`.

use crate::Failure;

pub fn run() -> Result<u8, Failure> {
    
    Err(Failure::operational(anyhow::anyhow!("ckpt demo is not built yet")))
}
