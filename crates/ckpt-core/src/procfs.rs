//! Reading a task's state from /proc: the `ProcSource` seam (a live
//! implementation over /proc/PID and pure parsers for each file, so the
//! collection logic can be tested on captured text without root).

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::PathBuf;

/// One line of /proc/PID/maps.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MapsEntry {
    pub start: u64,
    pub end: u64,
    pub read: bool,
    pub write: bool,
    pub exec: bool,
    pub shared: bool,
    pub offset: u64,
    /// `makedev(major, minor)`.
    pub dev: u64,
    pub ino: u64,
    /// Path or pseudo-name; empty for anonymous memory.
    pub name: String,
}

impl MapsEntry {
    /// PROT_* bits.
    pub fn prot(&self) -> u32 {
        (self.read as u32) | ((self.write as u32) << 1) | ((self.exec as u32) << 2)
    }
}

/// The kernel's `makedev` for 32-bit major/minor numbers.
pub fn makedev(major: u64, minor: u64) -> u64 {
    ((major & 0xffff_f000) << 32)
        | ((major & 0xfff) << 8)
        | ((minor & 0xffff_ff00) << 12)
        | (minor & 0xff)
}

/// The madvise-settable VM flags of each mapping in /proc/PID/smaps, keyed
/// by start address (see `model::madvise_bits`).
pub fn parse_smaps_vmflags(text: &str) -> std::collections::HashMap<u64, u32> {
    let mut out = std::collections::HashMap::new();
    let mut current: Option<u64> = None;
    for line in text.lines() {
        if let Some(flags) = line.strip_prefix("VmFlags:") {
            if let Some(start) = current.take() {
                out.insert(start, crate::model::madvise_bits::from_vmflags(flags));
            }
        } else if let Some((range, _)) = line.split_once(' ') {
            // A mapping header: "start-end perms offset dev inode path".
            if let Some((a, b)) = range.split_once('-') {
                if let (Ok(a), Ok(_)) = (u64::from_str_radix(a, 16), u64::from_str_radix(b, 16)) {
                    current = Some(a);
                }
            }
        }
    }
    out
}

/// Start addresses of the mappings in /proc/PID/smaps whose `VmFlags:`
/// line has the mnemonic `flag` (e.g. `mw`, may write: a shared file
/// mapping whose file was opened for writing).
pub fn smaps_with_flag(text: &str, flag: &str) -> std::collections::HashSet<u64> {
    let mut out = std::collections::HashSet::new();
    let mut current: Option<u64> = None;
    for line in text.lines() {
        if let Some(flags) = line.strip_prefix("VmFlags:") {
            if let Some(start) = current.take() {
                if flags.split_whitespace().any(|f| f == flag) {
                    out.insert(start);
                }
            }
        } else if let Some((range, _)) = line.split_once(' ') {
            if let Some((a, b)) = range.split_once('-') {
                if let (Ok(a), Ok(_)) = (u64::from_str_radix(a, 16), u64::from_str_radix(b, 16)) {
                    current = Some(a);
                }
            }
        }
    }
    out
}

/// Parse /proc/PID/maps. Malformed lines are an error naming the line.
pub fn parse_maps(text: &str) -> Result<Vec<MapsEntry>, String> {
    let mut out = Vec::new();
    for line in text.lines().filter(|l| !l.is_empty()) {
        let bad = || format!("malformed maps line {line:?}");
        let mut rest = line;
        let mut field = || -> Option<&str> {
            let r = rest.trim_start_matches(' ');
            let end = r.find(' ').unwrap_or(r.len());
            let (f, tail) = r.split_at(end);
            rest = tail;
            Some(f)
        };
        let range = field().ok_or_else(bad)?;
        let perms = field().ok_or_else(bad)?;
        let offset = field().ok_or_else(bad)?;
        let dev = field().ok_or_else(bad)?;
        let ino = field().ok_or_else(bad)?;
        let name = rest.trim_start_matches(' ').to_string();
        let (s, e) = range.split_once('-').ok_or_else(bad)?;
        let (maj, min) = dev.split_once(':').ok_or_else(bad)?;
        let pb = perms.as_bytes();
        if pb.len() != 4 {
            return Err(bad());
        }
        out.push(MapsEntry {
            start: u64::from_str_radix(s, 16).map_err(|_| bad())?,
            end: u64::from_str_radix(e, 16).map_err(|_| bad())?,
            read: pb[0] == b'r',
            write: pb[1] == b'w',
            exec: pb[2] == b'x',
            shared: pb[3] == b's',
            offset: u64::from_str_radix(offset, 16).map_err(|_| bad())?,
            dev: makedev(
                u64::from_str_radix(maj, 16).map_err(|_| bad())?,
                u64::from_str_radix(min, 16).map_err(|_| bad())?,
            ),
            ino: ino.parse().map_err(|_| bad())?,
            name,
        });
    }
    Ok(out)
}

/// The numeric fields of /proc/PID/stat, indexed as in proc(5) (1-based).
pub fn parse_stat_fields(text: &str) -> Result<Vec<u64>, String> {
    let close = text
        .rfind(')')
        .ok_or_else(|| "malformed stat: no ')'".to_string())?;
    // Index 0 unused; fields 1 (pid), 2 (comm) and 3 (state, a letter) read as 0.
    let mut v = vec![0u64; 4];
    for tok in text[close + 1..].split_whitespace().skip(1) {
        v.push(tok.parse::<i64>().map(|x| x as u64).unwrap_or(0));
    }
    Ok(v)
}

/// One `Key:\tvalue` from /proc/PID/status.
pub fn status_field<'a>(status: &'a str, key: &str) -> Option<&'a str> {
    status.lines().find_map(|l| {
        l.strip_prefix(key)
            .and_then(|r| r.strip_prefix(':'))
            .map(str::trim)
    })
}

/// Signals whose disposition is not SIG_DFL (`SigCgt | SigIgn` of
/// /proc/PID/status), bit n-1 for signal n; all ones when unknown.
pub fn non_default_signals(status: &str) -> u64 {
    let mask = |k: &str| status_field(status, k).and_then(|v| u64::from_str_radix(v, 16).ok());
    match (mask("SigCgt"), mask("SigIgn")) {
        (Some(c), Some(i)) => c | i,
        _ => u64::MAX,
    }
}

/// Parsed /proc/PID/fdinfo/N.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FdInfo {
    pub pos: u64,
    pub flags: u32,
}

/// Parse /proc/PID/fdinfo/N (`flags` is octal there).
pub fn parse_fdinfo(text: &str) -> FdInfo {
    let mut info = FdInfo::default();
    for l in text.lines() {
        if let Some(v) = l.strip_prefix("pos:") {
            info.pos = v.trim().parse().unwrap_or(0);
        } else if let Some(v) = l.strip_prefix("flags:") {
            info.flags = u32::from_str_radix(v.trim(), 8).unwrap_or(0);
        }
    }
    info
}

/// Pagemap entry bits (Documentation/admin-guide/mm/pagemap.rst).
pub const PM_PRESENT: u64 = 1 << 63;
pub const PM_SWAPPED: u64 = 1 << 62;
pub const PM_FILE_OR_SHARED: u64 = 1 << 61;
pub const PM_SOFT_DIRTY: u64 = 1 << 55;

/// Where the collection logic reads a task's /proc files from.
pub trait ProcSource {
    /// Whole text of /proc/PID/`name` (e.g. `maps`, `stat`, `fdinfo/3`).
    fn read_text(&self, name: &str) -> io::Result<String>;
    /// Raw bytes of /proc/PID/`name` (e.g. `auxv`).
    fn read_bytes(&self, name: &str) -> io::Result<Vec<u8>>;
    /// Target of the symlink /proc/PID/`name` (e.g. `exe`, `fd/3`).
    fn read_link(&self, name: &str) -> io::Result<String>;
    /// Numbers of the open fds, ascending.
    fn fds(&self) -> io::Result<Vec<i32>>;
    /// Pagemap entries for `npages` pages from `start`.
    fn pagemap(&self, start: u64, npages: usize) -> io::Result<Vec<u64>>;
}

/// The real /proc/PID of a live task.
pub struct LiveProc {
    dir: PathBuf,
    pagemap: std::sync::OnceLock<io::Result<File>>,
}

impl LiveProc {
    pub fn new(pid: i32) -> Self {
        LiveProc {
            dir: PathBuf::from(format!("/proc/{pid}")),
            pagemap: std::sync::OnceLock::new(),
        }
    }
}

impl ProcSource for LiveProc {
    fn read_text(&self, name: &str) -> io::Result<String> {
        std::fs::read_to_string(self.dir.join(name))
    }
    fn read_bytes(&self, name: &str) -> io::Result<Vec<u8>> {
        std::fs::read(self.dir.join(name))
    }
    fn read_link(&self, name: &str) -> io::Result<String> {
        Ok(std::fs::read_link(self.dir.join(name))?
            .to_string_lossy()
            .into_owned())
    }
    fn fds(&self) -> io::Result<Vec<i32>> {
        let mut v: Vec<i32> = std::fs::read_dir(self.dir.join("fd"))?
            .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
            .collect();
        v.sort_unstable();
        Ok(v)
    }
    fn pagemap(&self, start: u64, npages: usize) -> io::Result<Vec<u64>> {
        let f = self
            .pagemap
            .get_or_init(|| File::open(self.dir.join("pagemap")));
        let f = f
            .as_ref()
            .map_err(|e| io::Error::new(e.kind(), e.to_string()))?;
        let mut raw = vec![0u8; npages * 8];
        f.read_exact_at(&mut raw, start / 4096 * 8)?;
        Ok(raw
            .chunks_exact(8)
            .map(|c| u64::from_le_bytes(c.try_into().unwrap_or([0; 8])))
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_line_with_spaces_and_deleted() {
        let text = "55d0c0a00000-55d0c0a02000 r--p 00001000 fd:01 1311 /tmp/my file (deleted)\n\
                    7ffd1000-7ffd2000 rw-s 00000000 00:01 7 /dev/zero (deleted)\n\
                    7ffe0000-7ffe2000 r-xp 00000000 00:00 0                          [vdso]\n";
        let m = parse_maps(text).unwrap();
        assert_eq!(m.len(), 3);
        assert_eq!(m[0].start, 0x55d0c0a00000);
        assert_eq!(m[0].offset, 0x1000);
        assert_eq!(m[0].dev, makedev(0xfd, 1));
        assert_eq!(m[0].name, "/tmp/my file (deleted)");
        assert!(m[1].shared && m[1].write);
        assert_eq!(m[2].name, "[vdso]");
        assert_eq!(m[2].prot(), 5);
    }

    #[test]
    fn malformed_maps_is_error() {
        assert!(parse_maps("zzz r--p\n").is_err());
    }

    #[test]
    fn stat_fields_after_comm_with_parens() {
        let text = "42 (a) b) S 1 2 3 4 5";
        let f = parse_stat_fields(text).unwrap();
        assert_eq!(f[4], 1);
        assert_eq!(f[8], 5);
    }

    #[test]
    fn non_default_signals_from_status() {
        let st = "SigIgn:\t0000000000001000\nSigCgt:\t0000000180000002\n";
        assert_eq!(non_default_signals(st), 0x1_8000_1002);
        assert_eq!(non_default_signals("Name: x\n"), u64::MAX);
    }

    #[test]
    fn fdinfo_flags_are_octal() {
        let i = parse_fdinfo("pos:\t12\nflags:\t02100002\nmnt_id:\t3\n");
        assert_eq!(i.pos, 12);
        assert_eq!(i.flags, 0o2100002);
    }
}

#[cfg(test)]
mod smaps_tests {
    use super::parse_smaps_vmflags;
    use crate::model::madvise_bits::*;

    // Captured from /proc/PID/smaps of a Rust program on Linux 6.18 (the
    // main thread's sigaltstack is mapped with MAP_STACK, hence `nh`).
    const SMAPS: &str = "\
7f839aad5000-7f839aad7000 rw-p 00000000 00:00 0 
Size:                  8 kB
Rss:                   8 kB
VmFlags: rd wr mr mw me ac nh 
7f839aad7000-7f839aad9000 rw-p 00000000 00:00 0 
Size:                  8 kB
VmFlags: rd wr mr mw me ac 
7fff74391000-7fff743b2000 rw-p 00000000 00:00 0                          [stack]
Size:                132 kB
VmFlags: rd wr mr mw me gd ac dd dc wf hg
";

    #[test]
    fn may_write_flag_is_found_per_mapping() {
        let t = "7f0000000000-7f0000001000 r--s 00000000 08:01 5 /tmp/f\nSize: 4 kB\nVmFlags: rd sh mr mw me ms\n\
                 7f0000002000-7f0000003000 r--s 00000000 08:01 6 /tmp/g\nVmFlags: rd sh mr me ms\n";
        let s = super::smaps_with_flag(t, "mw");
        assert!(s.contains(&0x7f00_0000_0000));
        assert!(!s.contains(&0x7f00_0000_2000));
    }

    #[test]
    fn vmflags_are_keyed_by_start_and_decoded() {
        let m = parse_smaps_vmflags(SMAPS);
        assert_eq!(m[&0x7f83_9aad_5000], NOHUGEPAGE);
        assert_eq!(m[&0x7f83_9aad_7000], 0);
        assert_eq!(
            m[&0x7fff_7439_1000],
            HUGEPAGE | DONTDUMP | DONTFORK | WIPEONFORK
        );
        assert_eq!(m.len(), 3);
    }
}
