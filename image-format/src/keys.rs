//! Ed25519 signing keys for images: generation, the secret and public key
//! file formats, and key fingerprints.
//!
//! Secret key file (mode 0600, refused when readable by group or others):
//! ```text
//! ckpt-ed25519-secret-key v1\n
//! <64 lowercase hex digits: the 32-byte Ed25519 seed>\n
//! ```
//! Public key file (`<secret key path>.pub`):
//! ```text
//! ckpt-ed25519-public-key v1 <64 lowercase hex digits: the 32-byte public key>\n
//! ```
//! Readers accept uppercase hex and a missing final newline; nothing else.
//! The fingerprint of a key is the lowercase hex of the first 16 bytes of the
//! SHA-256 of its 32 public key bytes.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use ed25519_dalek::{SigningKey, VerifyingKey};
use sha2::{Digest, Sha256};

/// First line of a secret key file.
pub const SECRET_KEY_HEADER: &str = "ckpt-ed25519-secret-key v1";
/// Prefix of a public key file's single line.
pub const PUBLIC_KEY_HEADER: &str = "ckpt-ed25519-public-key v1";
/// Key files larger than this are refused before being read.
const MAX_KEY_FILE_LEN: u64 = 4096;

/// Errors of key generation and key files.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    /// The operating system's random source failed.
    #[error("cannot generate a signing key: the system random source failed: {0}")]
    Random(getrandom::Error),
    /// A key file cannot be created (including: it already exists).
    #[error("cannot create key file {path}: {source}; remove it or choose another path")]
    Create {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// A key file cannot be read.
    #[error("cannot read key file {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// A key file does not parse.
    #[error("key file {path} is not a {expected} file: {reason}; create one with `ckpt keygen`")]
    Parse {
        path: PathBuf,
        expected: &'static str,
        reason: String,
    },
    /// A secret key file is readable or writable by group or others.
    #[error("secret key file {path} has mode {mode:o}, which lets other users read it; run `chmod 600 {path}` (and consider the key leaked)")]
    InsecurePermissions { path: PathBuf, mode: u32 },
}

/// Generates a new signing key from the operating system's random source.
pub fn generate_signing_key() -> Result<SigningKey, KeyError> {
    let mut seed = [0u8; 32];
    getrandom::fill(&mut seed).map_err(KeyError::Random)?;
    let key = SigningKey::from_bytes(&seed);
    seed.fill(0);
    Ok(key)
}

/// Hex of the first 16 bytes of SHA-256 of the public key: the one way
/// ckpt names a key (keygen, inspect, restore's refusals and notices).
pub fn fingerprint(key: &VerifyingKey) -> String {
    fingerprint_of(key.as_bytes())
}

/// [`fingerprint`] of the 32 public key bytes.
pub fn fingerprint_of(public_key: &[u8; 32]) -> String {
    let digest = Sha256::digest(public_key);
    hex::encode(&digest[..16])
}

/// The public key file path that goes with a secret key file: `KEY.pub`.
pub fn public_key_path(secret_key_path: &Path) -> PathBuf {
    let mut s = secret_key_path.as_os_str().to_owned();
    s.push(".pub");
    PathBuf::from(s)
}

/// The text of a secret key file.
pub fn encode_secret_key(key: &SigningKey) -> String {
    format!("{SECRET_KEY_HEADER}\n{}\n", hex::encode(key.to_bytes()))
}

/// The text of a public key file.
pub fn encode_public_key(key: &VerifyingKey) -> String {
    format!("{PUBLIC_KEY_HEADER} {}\n", hex::encode(key.as_bytes()))
}

/// Parses the text of a secret key file; `path` names it in errors.
pub fn parse_secret_key(text: &str, path: &Path) -> Result<SigningKey, KeyError> {
    let err = |reason: &str| KeyError::Parse {
        path: path.to_path_buf(),
        expected: "ckpt secret key",
        reason: reason.to_string(),
    };
    let body = text.strip_suffix('\n').unwrap_or(text);
    let mut lines = body.split('\n');
    if lines.next() != Some(SECRET_KEY_HEADER) {
        return Err(err(&format!("the first line is not `{SECRET_KEY_HEADER}`")));
    }
    let seed_hex = lines
        .next()
        .ok_or_else(|| err("the second line (the 64-hex-digit seed) is missing"))?;
    if lines.next().is_some() {
        return Err(err("it has more than two lines"));
    }
    let seed = decode_hex32(seed_hex).map_err(|r| err(&format!("the seed line {r}")))?;
    Ok(SigningKey::from_bytes(&seed))
}

/// Parses the text of a public key file; `path` names it in errors.
pub fn parse_public_key(text: &str, path: &Path) -> Result<VerifyingKey, KeyError> {
    let err = |reason: &str| KeyError::Parse {
        path: path.to_path_buf(),
        expected: "ckpt public key",
        reason: reason.to_string(),
    };
    let line = text.strip_suffix('\n').unwrap_or(text);
    if line.contains('\n') {
        return Err(err("it has more than one line"));
    }
    let key_hex = line
        .strip_prefix(PUBLIC_KEY_HEADER)
        .and_then(|rest| rest.strip_prefix(' '))
        .ok_or_else(|| {
            err(&format!(
                "the line does not start with `{PUBLIC_KEY_HEADER} `"
            ))
        })?;
    let bytes = decode_hex32(key_hex).map_err(|r| err(&format!("the key {r}")))?;
    VerifyingKey::from_bytes(&bytes).map_err(|_| err("the key is not a valid Ed25519 point"))
}

fn decode_hex32(s: &str) -> Result<[u8; 32], String> {
    if s.len() != 64 {
        return Err(format!(
            "has {} characters instead of 64 hex digits",
            s.len()
        ));
    }
    let mut out = [0u8; 32];
    hex::decode_to_slice(s, &mut out).map_err(|e| format!("is not hex: {e}"))?;
    Ok(out)
}

/// Writes a new secret key file (mode 0600). Refuses to overwrite an
/// existing file.
pub fn write_secret_key(path: &Path, key: &SigningKey) -> Result<(), KeyError> {
    write_new(path, encode_secret_key(key).as_bytes(), 0o600)
}

/// Writes a new public key file (mode 0644). Refuses to overwrite an
/// existing file.
pub fn write_public_key(path: &Path, key: &VerifyingKey) -> Result<(), KeyError> {
    write_new(path, encode_public_key(key).as_bytes(), 0o644)
}

/// Writes `path` (secret) and `path.pub` (public); returns the public key
/// file's path. On failure of the second file, the first is removed.
pub fn write_key_pair(path: &Path, key: &SigningKey) -> Result<PathBuf, KeyError> {
    let pub_path = public_key_path(path);
    write_secret_key(path, key)?;
    if let Err(e) = write_public_key(&pub_path, &key.verifying_key()) {
        let _ = std::fs::remove_file(path);
        return Err(e);
    }
    Ok(pub_path)
}

fn write_new(path: &Path, bytes: &[u8], mode: u32) -> Result<(), KeyError> {
    let create_err = |source| KeyError::Create {
        path: path.to_path_buf(),
        source,
    };
    let mut f = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
        .map_err(create_err)?;
    // The umask may have cleared bits; set the mode exactly.
    f.set_permissions(std::fs::Permissions::from_mode(mode))
        .and_then(|()| f.write_all(bytes))
        .and_then(|()| f.sync_all())
        .map_err(|source| {
            let _ = std::fs::remove_file(path);
            create_err(source)
        })
}

/// Reads a secret key file; refuses one that group or others can access.
pub fn read_secret_key(path: &Path) -> Result<SigningKey, KeyError> {
    let (file, text) = read_small(path, "ckpt secret key")?;
    let mode = file
        .metadata()
        .map_err(|source| KeyError::Read {
            path: path.to_path_buf(),
            source,
        })?
        .permissions()
        .mode()
        & 0o7777;
    if mode & 0o077 != 0 {
        return Err(KeyError::InsecurePermissions {
            path: path.to_path_buf(),
            mode,
        });
    }
    parse_secret_key(&text, path)
}

/// Reads a public key file.
pub fn read_public_key(path: &Path) -> Result<VerifyingKey, KeyError> {
    let (_, text) = read_small(path, "ckpt public key")?;
    parse_public_key(&text, path)
}

fn read_small(path: &Path, expected: &'static str) -> Result<(File, String), KeyError> {
    let read_err = |source| KeyError::Read {
        path: path.to_path_buf(),
        source,
    };
    let file = File::open(path).map_err(read_err)?;
    let mut bytes = Vec::new();
    (&file)
        .take(MAX_KEY_FILE_LEN + 1)
        .read_to_end(&mut bytes)
        .map_err(read_err)?;
    if bytes.len() as u64 > MAX_KEY_FILE_LEN {
        return Err(KeyError::Parse {
            path: path.to_path_buf(),
            expected,
            reason: format!("it is larger than {MAX_KEY_FILE_LEN} bytes"),
        });
    }
    let text = String::from_utf8(bytes).map_err(|_| KeyError::Parse {
        path: path.to_path_buf(),
        expected,
        reason: "it is not UTF-8 text".to_string(),
    })?;
    Ok((file, text))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixed_key() -> SigningKey {
        SigningKey::from_bytes(&[7u8; 32])
    }

    #[test]
    fn generated_keys_differ_and_sign() {
        use ed25519_dalek::{Signer, Verifier};
        let a = generate_signing_key().unwrap();
        let b = generate_signing_key().unwrap();
        assert_ne!(a.to_bytes(), b.to_bytes());
        let sig = a.sign(b"msg");
        assert!(a.verifying_key().verify(b"msg", &sig).is_ok());
    }

    #[test]
    fn fingerprint_is_16_bytes_of_sha256_in_hex() {
        let key = fixed_key().verifying_key();
        let fp = fingerprint(&key);
        assert_eq!(fp.len(), 32);
        assert_eq!(fp, hex::encode(&Sha256::digest(key.as_bytes())[..16]));
        assert_eq!(fingerprint_of(key.as_bytes()), fp);
    }

    #[test]
    fn key_texts_round_trip_and_have_the_documented_shape() {
        let key = fixed_key();
        let secret = encode_secret_key(&key);
        assert_eq!(
            secret,
            format!("ckpt-ed25519-secret-key v1\n{}\n", "07".repeat(32))
        );
        let public = encode_public_key(&key.verifying_key());
        assert!(public.starts_with("ckpt-ed25519-public-key v1 "));
        assert_eq!(public.len(), "ckpt-ed25519-public-key v1 ".len() + 64 + 1);
        let p = Path::new("k");
        assert_eq!(
            parse_secret_key(&secret, p).unwrap().to_bytes(),
            key.to_bytes()
        );
        assert_eq!(parse_public_key(&public, p).unwrap(), key.verifying_key());
        // No final newline and uppercase hex are accepted.
        assert!(parse_public_key(public.trim_end(), p).is_ok());
        assert!(parse_secret_key(
            &secret
                .to_uppercase()
                .replace("CKPT-ED25519-SECRET-KEY V1", SECRET_KEY_HEADER),
            p
        )
        .is_ok());
    }

    #[test]
    fn parse_errors_name_the_file_and_the_problem() {
        let p = Path::new("/keys/mykey");
        let cases: Vec<(String, &str)> = vec![
            (String::new(), "first line"),
            ("ckpt-ed25519-secret-key v2\n00\n".into(), "first line"),
            ("ckpt-ed25519-secret-key v1\n".into(), "missing"),
            ("ckpt-ed25519-secret-key v1\nabcd\n".into(), "4 characters"),
            (
                format!("ckpt-ed25519-secret-key v1\n{}\n", "zz".repeat(32)),
                "not hex",
            ),
            (
                format!("ckpt-ed25519-secret-key v1\n{}\nextra\n", "00".repeat(32)),
                "more than two lines",
            ),
        ];
        for (text, needle) in cases {
            let msg = parse_secret_key(&text, p).unwrap_err().to_string();
            assert!(msg.contains("/keys/mykey"), "{msg}");
            assert!(msg.contains(needle), "{text:?}: {msg}");
        }
        let msg = parse_public_key("ssh-ed25519 AAAA", p)
            .unwrap_err()
            .to_string();
        assert!(
            msg.contains("/keys/mykey") && msg.contains("does not start with"),
            "{msg}"
        );
        let msg = parse_public_key(&format!("{PUBLIC_KEY_HEADER} {}", "00".repeat(31)), p)
            .unwrap_err()
            .to_string();
        assert!(msg.contains("62 characters"), "{msg}");
    }

    #[test]
    fn key_pair_files_round_trip_with_0600_secret() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sign.key");
        let key = fixed_key();
        let pub_path = write_key_pair(&path, &key).unwrap();
        assert_eq!(pub_path, dir.path().join("sign.key.pub"));
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert_eq!(read_secret_key(&path).unwrap().to_bytes(), key.to_bytes());
        assert_eq!(read_public_key(&pub_path).unwrap(), key.verifying_key());
    }

    #[test]
    fn existing_key_file_is_not_overwritten() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k");
        std::fs::write(&path, "precious").unwrap();
        let err = write_key_pair(&path, &fixed_key()).unwrap_err();
        assert!(matches!(err, KeyError::Create { .. }), "{err}");
        assert!(err.to_string().contains("remove it or choose another path"));
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "precious");
    }

    #[test]
    fn group_readable_secret_key_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k");
        write_secret_key(&path, &fixed_key()).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).unwrap();
        let err = read_secret_key(&path).unwrap_err();
        assert!(
            matches!(err, KeyError::InsecurePermissions { mode: 0o640, .. }),
            "{err}"
        );
        assert!(err.to_string().contains("chmod 600"));
    }

    #[test]
    fn oversized_key_file_is_refused_before_parsing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k.pub");
        std::fs::write(&path, vec![b'a'; 10_000]).unwrap();
        let err = read_public_key(&path).unwrap_err();
        assert!(err.to_string().contains("larger than 4096 bytes"), "{err}");
    }
}
