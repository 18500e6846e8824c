//! The live, in-memory model of one checkpointed task: what the dump
//! collects and what the restore rebuilds. Stored records are separate
//! types (image-format); `persist` converts between the two.

use crate::ptrace::Regs;

/// Identity of a file: its path and (dev, ino) at dump time, and for
/// regular files its stamp (DESIGN 3.7; `None` for directories, whose
/// times change with every entry created in them).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FileId {
    pub path: String,
    pub dev: u64,
    pub ino: u64,
    pub stamp: Option<FileStamp>,
}

/// What identifies a regular file's contents beyond (dev, ino): size,
/// mtime and ctime to the nanosecond, and for executables and executable
/// mappings the SHA-256 of the content (`file_identity`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct FileStamp {
    pub size: u64,
    pub mtime_sec: i64,
    pub mtime_nsec: u32,
    pub ctime_sec: i64,
    pub ctime_nsec: u32,
    /// Birth time (statx btime), when the filesystem reports one: a file
    /// created anew (even on a reused inode number) has a new one.
    pub btime: Option<(i64, u32)>,
    pub sha256: Option<[u8; 32]>,
}

/// How a VMA is backed and therefore rebuilt.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VmaBacking {
    Anonymous,
    FilePrivate,
    FileShared,
    SharedAnonymous,
    Special,
}

/// One virtual memory area.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Vma {
    pub start: u64,
    pub end: u64,
    pub prot: u32,
    pub shared: bool,
    pub growsdown: bool,
    /// VM flags that madvise(2) sets and that /proc/PID/maps does not show
    /// (`madvise_bits` below): restored so that neighbouring mappings stay
    /// as separate as they were (the kernel merges VMAs whose flags agree).
    pub madvise: u32,
    pub backing: VmaBacking,
    /// VM_MAYWRITE (smaps `mw`): for a shared file mapping, its file was
    /// open for writing, so it may be mprotect-ed writable; the file is
    /// reopened read-write for it.
    pub may_write: bool,
    pub name: String,
    pub offset: u64,
    pub dev: u64,
    pub ino: u64,
    /// For file-backed VMAs: the file's stamp, with a digest when the
    /// mapping is executable.
    pub stamp: Option<FileStamp>,
}

/// Bits of [`Vma::madvise`]: smaps `VmFlags` mnemonic and the madvise(2)
/// advice that sets the flag.
pub mod madvise_bits {
    pub const NOHUGEPAGE: u32 = 1;
    pub const HUGEPAGE: u32 = 2;
    pub const DONTDUMP: u32 = 4;
    pub const DONTFORK: u32 = 8;
    pub const WIPEONFORK: u32 = 16;
    /// (bit, smaps mnemonic, madvise advice)
    pub const ALL: [(u32, &str, i32); 5] = [
        (NOHUGEPAGE, "nh", libc::MADV_NOHUGEPAGE),
        (HUGEPAGE, "hg", libc::MADV_HUGEPAGE),
        (DONTDUMP, "dd", libc::MADV_DONTDUMP),
        (DONTFORK, "dc", libc::MADV_DONTFORK),
        (WIPEONFORK, "wf", libc::MADV_WIPEONFORK),
    ];
    /// The bits named by one smaps `VmFlags:` line.
    pub fn from_vmflags(line: &str) -> u32 {
        line.split_whitespace()
            .filter_map(|w| ALL.iter().find(|(_, m, _)| *m == w).map(|(b, _, _)| *b))
            .fold(0, |a, b| a | b)
    }
}

impl Vma {
    pub fn len(&self) -> u64 {
        self.end - self.start
    }
    pub fn is_empty(&self) -> bool {
        self.end <= self.start
    }
}

/// Consecutive stored pages: `len` bytes for `vaddr` at `offset` in the pages data.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PageRun {
    pub vaddr: u64,
    pub len: u64,
    pub offset: u64,
}

/// The mm fields restored with PR_SET_MM_MAP.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MmFields {
    pub start_code: u64,
    pub end_code: u64,
    pub start_data: u64,
    pub end_data: u64,
    pub start_brk: u64,
    pub brk: u64,
    pub start_stack: u64,
    pub arg_start: u64,
    pub arg_end: u64,
    pub env_start: u64,
    pub env_end: u64,
}

/// A signal disposition (kernel `struct sigaction`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SigAction {
    pub signo: u32,
    pub handler: u64,
    pub flags: u64,
    pub restorer: u64,
    pub mask: u64,
}

/// A registered rseq area.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Rseq {
    pub addr: u64,
    pub len: u32,
    pub sig: u32,
}

/// What an fd refers to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FdTarget {
    RegularFile(FileId),
    Directory(FileId),
    CharDevice {
        path: String,
        rdev: u64,
    },
    /// One end of a pipe whose both ends the task holds.
    Pipe {
        ino: u64,
    },
    /// fd 0-2 on a terminal or foreign pipe: the restorer's own fd is used.
    InheritedStdio,
}

impl FdTarget {
    /// Every kind's name, as docs/state-coverage.md lists it.
    pub const KIND_NAMES: [&'static str; 5] = [
        "regular file",
        "directory",
        "character device",
        "pipe",
        "inherited stdio",
    ];

    /// This fd's kind name (exhaustive: a new variant needs a name, and
    /// the coverage test then needs a row in docs/state-coverage.md).
    pub fn kind_name(&self) -> &'static str {
        match self {
            FdTarget::RegularFile(_) => Self::KIND_NAMES[0],
            FdTarget::Directory(_) => Self::KIND_NAMES[1],
            FdTarget::CharDevice { .. } => Self::KIND_NAMES[2],
            FdTarget::Pipe { .. } => Self::KIND_NAMES[3],
            FdTarget::InheritedStdio => Self::KIND_NAMES[4],
        }
    }
}

/// One open fd.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OpenFd {
    pub fd: i32,
    pub target: FdTarget,
    /// open flags including O_CLOEXEC.
    pub flags: u32,
    pub pos: u64,
    /// A lower fd sharing this fd's open file description.
    pub same_file_as: Option<i32>,
}

/// A pipe with both ends in the task, and the bytes buffered in it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PipeState {
    pub ino: u64,
    pub data: Vec<u8>,
    /// Capacity in bytes (F_GETPIPE_SZ); 0 when unknown (older images).
    pub capacity: u32,
}

/// Everything recorded about one single-threaded task.
#[derive(Clone, Debug)]
pub struct ProcessState {
    pub pid: i32,
    pub comm: String,
    pub exe: FileId,
    pub cwd: FileId,
    pub umask: u32,
    pub personality: u32,
    pub no_new_privs: bool,
    pub regs: Regs,
    pub xsave: Vec<u8>,
    pub sigmask: u64,
    pub sigactions: Vec<SigAction>,
    /// (ss_sp, ss_flags, ss_size); None when disabled.
    pub sigaltstack: Option<(u64, u32, u64)>,
    /// SHA-256 of the dumping kernel's vdso bytes (empty when unknown).
    pub vdso_sha256: Vec<u8>,
    pub vmas: Vec<Vma>,
    pub page_runs: Vec<PageRun>,
    pub mm: MmFields,
    pub auxv: Vec<u64>,
    pub rlimits: Vec<(u32, u64, u64)>,
    pub rseq: Option<Rseq>,
    pub fds: Vec<OpenFd>,
    pub pipes: Vec<PipeState>,
    /// prctl flags, oom_score_adj, loginuid and interval timers; `None`
    /// for an image written before they were recorded (nothing is set).
    pub attrs: Option<crate::task_attrs::TaskAttrs>,
    /// Credentials, labels, no_new_privs, seccomp mode and filters,
    /// securebits (the shared lsm-labels type, stored as TaskSecurityRecord).
    pub security: lsm_labels::TaskSecurity,
    /// Modes of the terminal fds 0-2 were on (None: not on a terminal).
    pub terminal: Option<crate::terminal::TerminalModes>,
    /// The non-leader threads, in tid order (the leader's per-thread state
    /// is the fields above).
    pub threads: Vec<ThreadState>,
}

/// The per-thread state of one non-leader thread. Its credentials,
/// labels, no_new_privs and seccomp filters equal the leader's (the dump
/// refuses otherwise) and are restored by the same plan.
#[derive(Clone, Debug)]
pub struct ThreadState {
    pub tid: i32,
    /// /proc/PID/task/TID/comm, without the newline.
    pub comm: String,
    pub regs: Regs,
    pub xsave: Vec<u8>,
    pub sigmask: u64,
    /// (ss_sp, ss_flags, ss_size); None when disabled.
    pub sigaltstack: Option<(u64, u32, u64)>,
    pub rseq: Option<Rseq>,
    /// set_tid_address / CLONE_CHILD_CLEARTID (prctl PR_GET_TID_ADDRESS).
    pub clear_child_tid: u64,
    /// (head, len) of set_robust_list; None when no list is registered.
    pub robust_list: Option<(u64, u64)>,
}

impl ProcessState {
    /// Total bytes of stored pages.
    pub fn stored_bytes(&self) -> u64 {
        self.page_runs.iter().map(|r| r.len).sum()
    }
}

/// All-zero registers (for tests and defaults).
pub fn zero_regs() -> Regs {
    Regs {
        r15: 0,
        r14: 0,
        r13: 0,
        r12: 0,
        rbp: 0,
        rbx: 0,
        r11: 0,
        r10: 0,
        r9: 0,
        r8: 0,
        rax: 0,
        rcx: 0,
        rdx: 0,
        rsi: 0,
        rdi: 0,
        orig_rax: 0,
        rip: 0,
        cs: 0,
        eflags: 0,
        rsp: 0,
        ss: 0,
        fs_base: 0,
        gs_base: 0,
        ds: 0,
        es: 0,
        fs: 0,
        gs: 0,
    }
}
