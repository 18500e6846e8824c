//! `ckpt keygen -o KEY`: a new Ed25519 key pair for signing images.

use crate::failure::OrFail;
use crate::{Failure, KeygenArgs};
use image_format::keys;

pub fn run(a: &KeygenArgs) -> Result<u8, Failure> {
    if a.output.as_os_str() == "-" {
        return Err(Failure::usage(anyhow::anyhow!(
            "keygen writes two files (KEY and KEY.pub); give a file name, not -"
        )));
    }
    let key = keys::generate_signing_key().or_fail(|| "cannot generate a signing key".into())?;
    let pub_path = keys::write_key_pair(&a.output, &key)
        .or_fail(|| format!("cannot write the key pair {}", a.output.display()))?;
    println!(
        "secret key: {} (keep it private)\npublic key: {}\nfingerprint: {}",
        a.output.display(),
        pub_path.display(),
        keys::fingerprint(&key.verifying_key())
    );
    Ok(0)
}
