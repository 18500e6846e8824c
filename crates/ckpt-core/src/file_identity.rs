//! File identity beyond (dev, inode) (DESIGN 3.7): size, mtime and ctime
//! to the nanosecond, and for executables and executable mappings a
//! SHA-256 of the content. Dump records it for every mapped file, the exe
//! and every regular file fd; restore compares it on the fd the restored
//! task opened (never on a path resolved again later). Deleting a file and
//! creating one that reuses its inode number, or rewriting it in place and
//! resetting its mtime, changes ctime, which no unprivileged user can set.
//!
//! Hashing is cached per (dev, ino, size, times), so a library mapped five
//! times is hashed once per dump or restore.

use std::collections::HashMap;
use std::fs::{File, Metadata};
use std::os::unix::fs::MetadataExt;

use sha2::{Digest, Sha256};

use crate::model::FileStamp;

/// The stamp of a file from its metadata, without a content digest.
pub fn stamp_of(md: &Metadata) -> FileStamp {
    FileStamp {
        size: md.size(),
        mtime_sec: md.mtime(),
        mtime_nsec: md.mtime_nsec() as u32,
        ctime_sec: md.ctime(),
        ctime_nsec: md.ctime_nsec() as u32,
        btime: md
            .created()
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map(|d| (d.as_secs() as i64, d.subsec_nanos())),
        sha256: None,
    }
}

/// Whether `found` is the same file object as `recorded` although it may
/// have been written since (for the regular files a task holds open, whose
/// content is data that changes, e.g. a log: DESIGN 3.7 as applied in
/// docs/security-design.md). The birth time tells a file created anew on a
/// reused inode number from one written in place; without a birth time on
/// either side every time must still agree.
pub fn same_file_object(recorded: &FileStamp, found: &FileStamp) -> Option<String> {
    match (recorded.btime, found.btime) {
        (Some(a), Some(b)) if a == b => None,
        (Some(a), Some(b)) => Some(format!(
            "it was created anew (birth time was {}.{:09}, is {}.{:09})",
            a.0, a.1, b.0, b.1
        )),
        _ => difference(recorded, found),
    }
}

/// What differs between the `recorded` stamp and the one `found` (its
/// digest is compared only when both have one), or `None` when they agree.
pub fn difference(recorded: &FileStamp, found: &FileStamp) -> Option<String> {
    if recorded.size != found.size {
        return Some(format!(
            "size was {} bytes, is {}",
            recorded.size, found.size
        ));
    }
    if (recorded.mtime_sec, recorded.mtime_nsec) != (found.mtime_sec, found.mtime_nsec) {
        return Some(format!(
            "modification time was {}.{:09}, is {}.{:09}",
            recorded.mtime_sec, recorded.mtime_nsec, found.mtime_sec, found.mtime_nsec
        ));
    }
    if (recorded.ctime_sec, recorded.ctime_nsec) != (found.ctime_sec, found.ctime_nsec) {
        return Some(format!(
            "status change time was {}.{:09}, is {}.{:09} (it was written, replaced or its metadata changed)",
            recorded.ctime_sec, recorded.ctime_nsec, found.ctime_sec, found.ctime_nsec
        ));
    }
    if let (Some(a), Some(b)) = (recorded.btime, found.btime) {
        if a != b {
            return Some(format!(
                "it was created anew (birth time was {}.{:09}, is {}.{:09})",
                a.0, a.1, b.0, b.1
            ));
        }
    }
    match (&recorded.sha256, &found.sha256) {
        (Some(a), Some(b)) if a != b => Some("its content digest differs".into()),
        _ => None,
    }
}

/// SHA-256 of everything readable from `file`, from offset 0.
fn digest_file(file: &File) -> std::io::Result<[u8; 32]> {
    use std::os::unix::fs::FileExt;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut at = 0u64;
    loop {
        let n = match file.read_at(&mut buf, at) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        h.update(&buf[..n]);
        at += n as u64;
    }
    Ok(h.finalize().into())
}

/// Stamps with digests, cached per (dev, ino, size, times).
#[derive(Default)]
pub struct DigestCache {
    done: HashMap<(u64, u64, FileStamp), [u8; 32]>,
}

impl DigestCache {
    /// The stamp of the open `file`, with its content digest when
    /// `with_digest`. The digest is taken between two fstat calls that must
    /// agree, so a file written while it is hashed is reported, not
    /// recorded with a digest of neither version.
    pub fn stamp(
        &mut self,
        file: &File,
        with_digest: bool,
    ) -> std::io::Result<(Metadata, FileStamp)> {
        let md = file.metadata()?;
        let mut stamp = stamp_of(&md);
        if !with_digest {
            return Ok((md, stamp));
        }
        let key = (md.dev(), md.ino(), stamp);
        if let Some(d) = self.done.get(&key) {
            stamp.sha256 = Some(*d);
            return Ok((md, stamp));
        }
        let d = digest_file(file)?;
        let after = stamp_of(&file.metadata()?);
        if after != stamp {
            return Err(std::io::Error::other(
                "the file changed while its content was being hashed",
            ));
        }
        self.done.insert(key, d);
        stamp.sha256 = Some(d);
        Ok((md, stamp))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn rewriting_in_place_is_seen_even_with_mtime_reset() {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        f.write_all(b"original code").unwrap();
        let mut cache = DigestCache::default();
        let (_, before) = cache.stamp(f.as_file(), true).unwrap();
        std::thread::sleep(std::time::Duration::from_millis(10));
        f.as_file().write_all_at_start(b"trojan!!").unwrap();
        // Put the old mtime back, as `touch -d` would.
        let mtime = std::time::UNIX_EPOCH
            + std::time::Duration::new(before.mtime_sec as u64, before.mtime_nsec);
        f.as_file().set_modified(mtime).unwrap();
        let (_, after) = cache.stamp(f.as_file(), true).unwrap();
        assert_eq!(
            (after.size, after.mtime_sec, after.mtime_nsec),
            (before.size, before.mtime_sec, before.mtime_nsec)
        );
        let why = difference(&before, &after).expect("a difference");
        assert!(why.contains("status change time"), "{why}");
        let mut same_times = after;
        same_times.ctime_sec = before.ctime_sec;
        same_times.ctime_nsec = before.ctime_nsec;
        assert_eq!(
            difference(&before, &same_times).as_deref(),
            Some("its content digest differs")
        );
        assert_eq!(difference(&before, &before), None);
    }

    trait WriteAtStart {
        fn write_all_at_start(&self, b: &[u8]) -> std::io::Result<()>;
    }
    impl WriteAtStart for File {
        fn write_all_at_start(&self, b: &[u8]) -> std::io::Result<()> {
            use std::os::unix::fs::FileExt;
            self.write_all_at(b, 0)
        }
    }
}
