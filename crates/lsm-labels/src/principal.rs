//! Who vouches for an image's credential claims (DESIGN 3.5): the image's
//! *principal*. An image's uids, gids, groups and capabilities are worth
//! what its author could have set; the principal is the author as far as
//! the restorer can tell:
//!
//! - an image signed by a key given with `--trusted-key`: the caller (who
//!   vouches by trusting the key);
//! - an unsigned image file: the file's owner, from fstat of the very file
//!   the reader verified; nobody when the file is group- or
//!   world-writable (anyone in the group could have written it);
//! - an unsigned stream (`restore -`): no known author, unless the caller
//!   says `--trust-unsigned-stream` (then the caller).
//!
//! [`ImagePrincipal::authority`] turns the principal into what it could set,
//! which `creds_rules::principal_could_not_set` compares with the image.

use std::fmt;

use serde::Serialize;

use crate::creds_rules::PrincipalAuthority;
use crate::verdict::{RestoreFlags, SignatureStatus, SignerKey};

/// The owner of an image file, as the system's user database knows them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Default)]
pub struct FileOwner {
    pub uid: u32,
    /// The user's name, when the uid has a passwd entry.
    pub name: Option<String>,
    /// The user's primary gid, when known.
    pub gid: Option<u32>,
    /// Every group the user is a member of (getgrouplist), the primary
    /// one included.
    pub groups: Vec<u32>,
}

impl fmt::Display for FileOwner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.name {
            Some(n) => write!(f, "uid {} ({n})", self.uid),
            None => write!(f, "uid {}", self.uid),
        }
    }
}

/// Where the image came from (what the engine knows besides its bytes).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "origin", rename_all = "snake_case")]
#[non_exhaustive]
pub enum ImageOrigin {
    /// An image file; `owner` and `mode` (permission bits) come from fstat
    /// of the opened, verified file.
    File { owner: FileOwner, mode: u32 },
    /// A stream (a pipe), spooled privately by the reader.
    Stream,
}

/// The author the restorer attributes the image's claims to.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "principal", rename_all = "snake_case")]
#[non_exhaustive]
pub enum ImagePrincipal {
    /// Signed by a key given with `--trusted-key`: the caller.
    TrustedSigner { key: SignerKey },
    /// An unsigned (or untrusted-signed) file not writable by group or
    /// others: its owner.
    FileOwner { owner: FileOwner },
    /// A file writable by group or others: anyone could have written it.
    Nobody { owner: FileOwner, mode: u32 },
    /// An unsigned stream: no known author.
    UnknownStream,
    /// An unsigned stream the caller trusts (`--trust-unsigned-stream`).
    TrustedStream,
}

impl ImagePrincipal {
    /// The principal of an image from its origin, its (verified) signature
    /// and the flags.
    pub fn of(origin: &ImageOrigin, signature: &SignatureStatus, flags: &RestoreFlags) -> Self {
        if let SignatureStatus::Signed { key } = signature {
            if flags.trusted_keys.contains(key) {
                return ImagePrincipal::TrustedSigner { key: *key };
            }
        }
        match origin {
            ImageOrigin::File { owner, mode } if mode & 0o022 != 0 => ImagePrincipal::Nobody {
                owner: owner.clone(),
                mode: *mode,
            },
            ImageOrigin::File { owner, .. } => ImagePrincipal::FileOwner {
                owner: owner.clone(),
            },
            ImageOrigin::Stream if flags.trust_unsigned_stream => ImagePrincipal::TrustedStream,
            ImageOrigin::Stream => ImagePrincipal::UnknownStream,
        }
    }

    /// What the principal could set on its own tasks: anything (bounded by
    /// the caller, as always) for the caller and root, the owner's own ids
    /// and no capabilities for another owner, nothing for nobody.
    pub fn authority(&self) -> PrincipalAuthority {
        match self {
            ImagePrincipal::TrustedSigner { .. } | ImagePrincipal::TrustedStream => {
                PrincipalAuthority::Any
            }
            ImagePrincipal::FileOwner { owner } if owner.uid == 0 => PrincipalAuthority::Any,
            ImagePrincipal::FileOwner { owner } => PrincipalAuthority::Ids {
                uid: owner.uid,
                gids: owner
                    .gid
                    .into_iter()
                    .chain(owner.groups.iter().copied())
                    .collect(),
                groups: owner.groups.clone(),
            },
            ImagePrincipal::Nobody { .. } | ImagePrincipal::UnknownStream => {
                PrincipalAuthority::Nothing
            }
        }
    }
}

impl fmt::Display for ImagePrincipal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ImagePrincipal::TrustedSigner { key } => {
                write!(f, "you (signed by trusted key {key})")
            }
            ImagePrincipal::FileOwner { owner } => {
                write!(f, "the owner of the unsigned image file, {owner}")
            }
            ImagePrincipal::Nobody { owner, mode } => write!(
                f,
                "nobody (the unsigned image file, owned by {owner}, has mode {mode:04o}: writable by group or others)"
            ),
            ImagePrincipal::UnknownStream => f.write_str("unknown (an unsigned stream)"),
            ImagePrincipal::TrustedStream => {
                f.write_str("you (an unsigned stream, trusted with --trust-unsigned-stream)")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn owner(uid: u32) -> FileOwner {
        FileOwner {
            uid,
            name: Some("alice".into()),
            gid: Some(uid),
            groups: vec![uid, 100],
        }
    }

    fn file(uid: u32, mode: u32) -> ImageOrigin {
        ImageOrigin::File {
            owner: owner(uid),
            mode,
        }
    }

    #[test]
    fn trusted_signer_wins_over_the_file_owner() {
        let key = SignerKey([7; 32]);
        let flags = RestoreFlags {
            trusted_keys: vec![key],
            ..Default::default()
        };
        let signed = SignatureStatus::Signed { key };
        let p = ImagePrincipal::of(&file(1000, 0o666), &signed, &flags);
        assert_eq!(p, ImagePrincipal::TrustedSigner { key });
        assert_eq!(p.authority(), PrincipalAuthority::Any);
        // An untrusted key proves nothing: the file's owner it is.
        let other = SignatureStatus::Signed {
            key: SignerKey([8; 32]),
        };
        let p = ImagePrincipal::of(&file(1000, 0o600), &other, &flags);
        assert_eq!(p, ImagePrincipal::FileOwner { owner: owner(1000) });
    }

    #[test]
    fn unsigned_file_is_its_owners_unless_group_or_world_writable() {
        let none = RestoreFlags::default();
        let u = SignatureStatus::Unsigned;
        let p = ImagePrincipal::of(&file(1000, 0o600), &u, &none);
        assert_eq!(
            p.authority(),
            PrincipalAuthority::Ids {
                uid: 1000,
                gids: vec![1000, 1000, 100],
                groups: vec![1000, 100],
            }
        );
        assert!(p.to_string().contains("uid 1000 (alice)"), "{p}");
        assert_eq!(
            ImagePrincipal::of(&file(0, 0o644), &u, &none).authority(),
            PrincipalAuthority::Any
        );
        for mode in [0o620, 0o602, 0o666, 0o660] {
            let p = ImagePrincipal::of(&file(0, mode), &u, &none);
            assert!(matches!(p, ImagePrincipal::Nobody { .. }), "{mode:o}");
            assert_eq!(p.authority(), PrincipalAuthority::Nothing);
            assert!(p.to_string().contains(&format!("{mode:04o}")), "{p}");
        }
    }

    #[test]
    fn unsigned_stream_has_no_author_unless_trusted() {
        let u = SignatureStatus::Unsigned;
        let p = ImagePrincipal::of(&ImageOrigin::Stream, &u, &RestoreFlags::default());
        assert_eq!(p, ImagePrincipal::UnknownStream);
        assert_eq!(p.authority(), PrincipalAuthority::Nothing);
        let trust = RestoreFlags {
            trust_unsigned_stream: true,
            ..Default::default()
        };
        let p = ImagePrincipal::of(&ImageOrigin::Stream, &u, &trust);
        assert_eq!(p, ImagePrincipal::TrustedStream);
        assert_eq!(p.authority(), PrincipalAuthority::Any);
    }
}
