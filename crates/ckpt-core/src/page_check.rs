//! What is restored is what was verified (DESIGN 3.9): after the restored
//! task has read its pages from the image file, and before it ever runs,
//! ckpt reads them back out of the task's memory (process_vm_readv as its
//! tracer, or `/proc/PID/mem`, opened while the task still had ckpt's
//! credentials, for pages the task may not read itself, e.g. PROT_NONE)
//! in pages-section order and compares
//! the SHA-256 of what the task holds with the section digest from the
//! verified trailer. A byte changed in the image file between the check
//! at open and the task's read therefore fails the restore.
//!
//! The reader skips hashing the pages at open for restore
//! (`VerifiedImage::open_deferring`), so the total is still one hash pass.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::sync::mpsc;

use sha2::{Digest, Sha256};

use crate::model::PageRun;

/// Bytes read from the task's memory at a time.
const CHUNK_LEN: u64 = 4 << 20;
/// Chunks the restore may report ahead of the hashing thread, over 4.
const BUFFERS: usize = 3;

/// Why the pages the task holds are not the verified ones.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PageCheckError {
    #[error("the page runs do not cover the pages section exactly once, in order (at section offset {at:#x})")]
    NotTiled { at: u64 },
    #[error("two page runs write the address {addr:#x}")]
    Overlap { addr: u64 },
    #[error("cannot read back memory at {addr:#x}: {}", std::io::Error::from_raw_os_error(*errno))]
    ReadBack { addr: u64, errno: i32 },
    #[error("the pages the task received do not match the pages section's verified digest")]
    DigestMismatch,
}

/// The runs in section order, checked to tile `[0, section_len)` exactly
/// and to write no virtual address twice.
pub fn runs_in_section_order(
    runs: &[PageRun],
    section_len: u64,
) -> Result<Vec<PageRun>, PageCheckError> {
    let mut sorted = runs.to_vec();
    sorted.sort_by_key(|r| r.offset);
    let mut at = 0u64;
    for r in &sorted {
        if r.offset != at {
            return Err(PageCheckError::NotTiled { at });
        }
        at = at
            .checked_add(r.len)
            .ok_or(PageCheckError::NotTiled { at })?;
    }
    if at != section_len {
        return Err(PageCheckError::NotTiled { at });
    }
    let mut by_addr: Vec<(u64, u64)> = sorted.iter().map(|r| (r.vaddr, r.len)).collect();
    by_addr.sort_unstable();
    for w in by_addr.windows(2) {
        if w[0].0.checked_add(w[0].1).is_none_or(|end| end > w[1].0) {
            return Err(PageCheckError::Overlap { addr: w[1].0 });
        }
    }
    Ok(sorted)
}

/// Reads `buf.len()` bytes at `addr` of task `pid`: process_vm_readv
/// (one copy, fast), else `mem` (FOLL_FORCE: also pages without PROT_READ).
fn read_task(pid: i32, mem: &File, addr: u64, buf: &mut [u8]) -> Result<(), PageCheckError> {
    use nix::sys::uio::{process_vm_readv, RemoteIoVec};
    let len = buf.len();
    let remote = [RemoteIoVec {
        base: addr as usize,
        len,
    }];
    let fast = process_vm_readv(
        nix::unistd::Pid::from_raw(pid),
        &mut [std::io::IoSliceMut::new(buf)],
        &remote,
    );
    if fast == Ok(len) {
        return Ok(());
    }
    mem.read_exact_at(buf, addr)
        .map_err(|e| PageCheckError::ReadBack {
            addr,
            errno: e.raw_os_error().unwrap_or(libc::EIO),
        })
}

/// Hashes, on a thread of its own, the pages the task has received, in
/// the order they are reported: the restore reports each chunk as soon as
/// the task's pread of it returned (in section order), so the hashing of
/// one chunk overlaps the task's read of the next.
pub struct PageChecker {
    tx: Option<mpsc::SyncSender<(u64, usize)>>,
    thread: Option<std::thread::JoinHandle<Result<[u8; 32], PageCheckError>>>,
}

impl PageChecker {
    /// Starts the hashing thread for task `pid`, whose `/proc/PID/mem` is `mem`.
    pub fn start(pid: i32, mem: File) -> PageChecker {
        let (tx, rx) = mpsc::sync_channel::<(u64, usize)>(BUFFERS * 4);
        let thread = std::thread::spawn(move || {
            let mut hasher = Sha256::new();
            let mut buf = vec![0u8; CHUNK_LEN as usize];
            for (addr, len) in rx {
                let mut done = 0usize;
                while done < len {
                    let n = (len - done).min(buf.len());
                    read_task(pid, &mem, addr + done as u64, &mut buf[..n])?;
                    hasher.update(&buf[..n]);
                    done += n;
                }
            }
            Ok(hasher.finalize().into())
        });
        PageChecker {
            tx: Some(tx),
            thread: Some(thread),
        }
    }

    /// The task now holds its bytes at `[addr, addr + len)` (the next bytes
    /// of the section).
    pub fn received(&self, addr: u64, len: usize) {
        if let Some(tx) = &self.tx {
            // A send fails only when the thread stopped on an error, which
            // `finish` reports.
            let _ = tx.send((addr, len));
        }
    }

    /// Waits for the hashing to end and compares with the section digest.
    pub fn finish(mut self, digest: &[u8; 32]) -> Result<(), PageCheckError> {
        self.tx = None;
        let got = match self.thread.take().map(|t| t.join()) {
            Some(Ok(r)) => r?,
            _ => return Err(PageCheckError::DigestMismatch),
        };
        if &got != digest {
            return Err(PageCheckError::DigestMismatch);
        }
        Ok(())
    }
}

impl Drop for PageChecker {
    fn drop(&mut self) {
        self.tx = None;
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// The chunks, at most 4 MiB each, in which the task reads `run`.
pub fn chunks(run: &PageRun) -> impl Iterator<Item = (u64, u64, u64)> + '_ {
    (0..run.len.div_ceil(CHUNK_LEN)).map(move |i| {
        let off = i * CHUNK_LEN;
        (
            run.vaddr + off,
            run.offset + off,
            (run.len - off).min(CHUNK_LEN),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(vaddr: u64, len: u64, offset: u64) -> PageRun {
        PageRun { vaddr, len, offset }
    }

    #[test]
    fn runs_must_tile_the_section() {
        let ok = [run(0x5000, 0x1000, 0x1000), run(0x1000, 0x1000, 0)];
        let sorted = runs_in_section_order(&ok, 0x2000).unwrap();
        assert_eq!(sorted[0].vaddr, 0x1000);
        let gap = [run(0x1000, 0x1000, 0), run(0x3000, 0x1000, 0x2000)];
        assert_eq!(
            runs_in_section_order(&gap, 0x3000),
            Err(PageCheckError::NotTiled { at: 0x1000 })
        );
        let twice = [run(0x1000, 0x1000, 0), run(0x3000, 0x1000, 0)];
        assert!(runs_in_section_order(&twice, 0x2000).is_err());
        assert!(runs_in_section_order(&ok, 0x3000).is_err());
        assert!(runs_in_section_order(&[], 0).is_ok());
        let same_addr = [run(0x1000, 0x2000, 0), run(0x2000, 0x1000, 0x2000)];
        assert_eq!(
            runs_in_section_order(&same_addr, 0x3000),
            Err(PageCheckError::Overlap { addr: 0x2000 })
        );
    }

    #[test]
    fn reads_back_own_memory_in_section_order() {
        // Two 6 MiB "runs" of this process's own memory, stored in the
        // section in the opposite order of their addresses.
        let a = vec![0x11u8; 6 << 20];
        let b = vec![0x22u8; 6 << 20];
        let (pa, pb) = (a.as_ptr() as u64, b.as_ptr() as u64);
        let runs = [
            run(pa, a.len() as u64, b.len() as u64),
            run(pb, b.len() as u64, 0),
        ];
        let mut h = Sha256::new();
        h.update(&b);
        h.update(&a);
        let digest: [u8; 32] = h.finalize().into();
        let len = (a.len() + b.len()) as u64;
        let check = |digest: &[u8; 32]| {
            let mem = File::open("/proc/self/mem").unwrap();
            let c = PageChecker::start(std::process::id() as i32, mem);
            for r in runs_in_section_order(&runs, len).unwrap() {
                for (addr, _, n) in chunks(&r) {
                    c.received(addr, n as usize);
                }
            }
            c.finish(digest)
        };
        check(&digest).unwrap();
        let mut wrong = digest;
        wrong[0] ^= 1;
        assert_eq!(check(&wrong), Err(PageCheckError::DigestMismatch));
        std::hint::black_box((&a, &b));
    }
}
