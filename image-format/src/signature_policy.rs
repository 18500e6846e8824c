//! The signature policy of DESIGN 3.1 and 3.5, applied by the reader right
//! after the signature is verified and before any section is hashed or any
//! record decoded ([`crate::VerifiedImage::open_with_policy`]): an image the
//! caller will refuse for its signature costs no more than its trailer.

use ed25519_dalek::VerifyingKey;

use crate::error::FormatError;
use crate::reader::SignatureInfo;

/// Which signatures an image must carry to be read at all.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SignaturePolicy {
    /// The image must be signed by one of `trusted`.
    pub require_signature: bool,
    /// Keys the caller trusts (`--trusted-key`).
    pub trusted: Vec<VerifyingKey>,
}

impl SignaturePolicy {
    /// Any image whose signature, if present, verifies (inspect,
    /// policy-diff: they read images without trusting them).
    pub fn any() -> Self {
        Self::default()
    }

    /// The policy of `restore`: with `--require-signature` or any
    /// `--trusted-key`, the image must be signed by a trusted key
    /// (DESIGN 3.5: "Giving --trusted-key means an unsigned or untrusted
    /// image is refused").
    pub fn for_restore(trusted: Vec<VerifyingKey>, require_signature: bool) -> Self {
        SignaturePolicy {
            require_signature: require_signature || !trusted.is_empty(),
            trusted,
        }
    }

    /// Checks a verified signature (`None`: unsigned) against the policy:
    /// with `require_signature` it must be by a trusted key; without it, an
    /// unsigned image passes, and a signed one passes when no key is
    /// trusted or its signer is.
    pub fn check(&self, signature: Option<&SignatureInfo>) -> Result<(), FormatError> {
        match signature {
            None if self.require_signature => Err(FormatError::Unsigned),
            None => Ok(()),
            Some(sig) => {
                let trusted_signer = self.trusted.contains(&sig.public_key);
                if trusted_signer || (!self.require_signature && self.trusted.is_empty()) {
                    Ok(())
                } else {
                    Err(FormatError::UntrustedSigner {
                        fingerprint: sig.fingerprint.clone(),
                    })
                }
            }
        }
    }
}
