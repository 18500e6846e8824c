//! Process records: the state of one checkpointed task (registers, memory
//! map, page table of the PAGES section, signal state, files, limits).
//!
//! One `ProcessRecord` is stored per task in a `PROCESS` section. Page
//! contents are not in the record: they are stored raw and page-aligned in a
//! `PAGES` section, and `page_runs` says which bytes of that section go to
//! which virtual address.

/// One checkpointed task.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ProcessRecord {
    /// PID (and TID: one thread) at dump time; restore claims it again.
    #[prost(int32, tag = "1")]
    pub pid: i32,
    /// `comm` (from /proc/PID/comm, without the newline).
    #[prost(string, tag = "2")]
    pub comm: String,
    /// The executable (/proc/PID/exe).
    #[prost(message, optional, tag = "3")]
    pub exe: Option<FileIdRecord>,
    /// Working directory (/proc/PID/cwd).
    #[prost(message, optional, tag = "4")]
    pub cwd: Option<FileIdRecord>,
    /// File mode creation mask (/proc/PID/status `Umask:`).
    #[prost(uint32, tag = "5")]
    pub umask: u32,
    /// `personality(0xffffffff)` of the task.
    #[prost(uint32, tag = "6")]
    pub personality: u32,
    /// General-purpose registers (x86_64 `struct user_regs_struct`).
    #[prost(message, optional, tag = "7")]
    pub regs: Option<X86RegsRecord>,
    /// The XSAVE area as returned by PTRACE_GETREGSET NT_X86_XSTATE.
    #[prost(bytes = "vec", tag = "8")]
    pub xsave: Vec<u8>,
    /// Blocked signals (bit n-1 for signal n).
    #[prost(uint64, tag = "9")]
    pub sigmask: u64,
    /// Signal dispositions that are not SIG_DFL with no flags.
    #[prost(message, repeated, tag = "10")]
    pub sigactions: Vec<SigactionRecord>,
    /// Every VMA in address order, as in /proc/PID/maps.
    #[prost(message, repeated, tag = "11")]
    pub vmas: Vec<VmaRecord>,
    /// Where the stored pages go: runs of consecutive pages.
    #[prost(message, repeated, tag = "12")]
    pub page_runs: Vec<PageRunRecord>,
    /// The mm fields restored with PR_SET_MM_MAP.
    #[prost(message, optional, tag = "13")]
    pub mm: Option<MmFieldsRecord>,
    /// The auxiliary vector (/proc/PID/auxv) as pairs of u64, AT_NULL included.
    #[prost(uint64, repeated, tag = "14")]
    pub auxv: Vec<u64>,
    /// Resource limits (prlimit), one per resource number.
    #[prost(message, repeated, tag = "15")]
    pub rlimits: Vec<RlimitRecord>,
    /// The registered rseq area, if any.
    #[prost(message, optional, tag = "16")]
    pub rseq: Option<RseqRecord>,
    /// Open file descriptors in ascending order.
    #[prost(message, repeated, tag = "17")]
    pub fds: Vec<FdRecord>,
    /// Pipes whose both ends the task holds, with their buffered bytes.
    #[prost(message, repeated, tag = "18")]
    pub pipes: Vec<PipeRecord>,
    /// prctl(PR_GET_NO_NEW_PRIVS) of the task.
    #[prost(bool, tag = "19")]
    pub no_new_privs: bool,
    /// The alternate signal stack (sigaltstack), if one is set.
    #[prost(message, optional, tag = "20")]
    pub sigaltstack: Option<SigaltstackRecord>,
    /// SHA-256 of the dumping kernel's `[vdso]` bytes: restore refuses a
    /// kernel whose vdso differs (the task's code may point into it).
    #[prost(bytes = "vec", tag = "21")]
    pub vdso_sha256: Vec<u8>,
    /// prctl flags, /proc attributes and interval timers (absent in
    /// images written before format 1.x recorded them).
    #[prost(message, optional, tag = "22")]
    pub attrs: Option<TaskAttrsRecord>,
    /// Security state of the task (credentials, capability sets, labels,
    /// no_new_privs, seccomp), read by `restore`'s verdict before anything
    /// is created. Tag 32 is reserved for it (kept apart from engine tags).
    #[prost(message, optional, tag = "32")]
    pub security: Option<super::security::TaskSecurityRecord>,
    /// The modes of the terminal the task's stdio was on (absent when no
    /// fd 0-2 was a terminal, and in images written before this field):
    /// given back to the caller's terminal when the task is restored onto
    /// it. Tag 40 keeps it apart from the engine's other tags.
    #[prost(message, optional, tag = "40")]
    pub terminal: Option<TerminalRecord>,
    /// POSIX timers (timer_create), ascending by id; restored with the
    /// same ids. Tags 45-49 are this task-state area's.
    #[prost(message, repeated, tag = "45")]
    pub posix_timers: Vec<PosixTimerRecord>,
    /// Guard regions (MADV_GUARD_INSTALL) as page runs, ascending; their
    /// pages are not stored.
    #[prost(message, repeated, tag = "46")]
    pub guard_runs: Vec<GuardRunRecord>,
    /// The process's threads other than its leader (whose per-thread state
    /// is the fields above), in tid order. Empty for a single-threaded task.
    #[prost(message, repeated, tag = "60")]
    pub threads: Vec<ThreadRecord>,
}

/// A run of guard pages.
#[derive(Clone, PartialEq, prost::Message)]
pub struct GuardRunRecord {
    #[prost(uint64, tag = "1")]
    pub start: u64,
    #[prost(uint64, tag = "2")]
    pub len: u64,
}

/// One POSIX timer: /proc/PID/timers plus timer_gettime.
#[derive(Clone, PartialEq, prost::Message)]
pub struct PosixTimerRecord {
    /// The timer id (timer_t) the program holds.
    #[prost(int32, tag = "1")]
    pub id: i32,
    /// Clock id: 0 REALTIME, 1 MONOTONIC, 2 PROCESS_CPUTIME, 3
    /// THREAD_CPUTIME, 7 BOOTTIME, 8/9 the ALARM clocks, 11 TAI.
    #[prost(int32, tag = "2")]
    pub clock: i32,
    /// sigev_notify: 0 SIGEV_SIGNAL, 1 SIGEV_NONE, 2 SIGEV_THREAD, 4
    /// SIGEV_THREAD_ID (the task itself).
    #[prost(uint32, tag = "3")]
    pub notify: u32,
    /// sigev_signo (0 only with SIGEV_NONE).
    #[prost(uint32, tag = "4")]
    pub signo: u32,
    /// sigev_value.
    #[prost(uint64, tag = "5")]
    pub value: u64,
    #[prost(uint64, tag = "6")]
    pub interval_ns: u64,
    /// Time left to the next expiry; 0 = disarmed.
    #[prost(uint64, tag = "7")]
    pub remaining_ns: u64,
}

/// The per-thread state of one non-leader thread of the process. Its
/// credentials, labels, no_new_privs and seccomp state are the leader's.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ThreadRecord {
    /// Thread id at dump time; restore claims it again (clone3 set_tid).
    #[prost(int32, tag = "1")]
    pub tid: i32,
    /// /proc/PID/task/TID/comm, without the newline.
    #[prost(string, tag = "2")]
    pub comm: String,
    #[prost(message, optional, tag = "3")]
    pub regs: Option<X86RegsRecord>,
    /// The XSAVE area (PTRACE_GETREGSET NT_X86_XSTATE).
    #[prost(bytes = "vec", tag = "4")]
    pub xsave: Vec<u8>,
    /// Blocked signals (bit n-1 for signal n).
    #[prost(uint64, tag = "5")]
    pub sigmask: u64,
    #[prost(message, optional, tag = "6")]
    pub sigaltstack: Option<SigaltstackRecord>,
    #[prost(message, optional, tag = "7")]
    pub rseq: Option<RseqRecord>,
    /// The clear_child_tid address (set_tid_address); 0 when none.
    #[prost(uint64, tag = "8")]
    pub clear_child_tid: u64,
    /// The robust futex list head registered with set_robust_list.
    #[prost(message, optional, tag = "9")]
    pub robust_list: Option<RobustListRecord>,
}

/// `set_robust_list(head, len)`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct RobustListRecord {
    #[prost(uint64, tag = "1")]
    pub head: u64,
    #[prost(uint64, tag = "2")]
    pub len: u64,
}

/// A terminal's modes as `ioctl(TCGETS)` and `ioctl(TIOCGWINSZ)` return them
/// (the kernel's `struct termios` and `struct winsize`).
#[derive(Clone, PartialEq, prost::Message)]
pub struct TerminalRecord {
    /// The stdio fd (0-2) the modes were read through.
    #[prost(int32, tag = "1")]
    pub fd: i32,
    #[prost(uint32, tag = "2")]
    pub iflag: u32,
    #[prost(uint32, tag = "3")]
    pub oflag: u32,
    #[prost(uint32, tag = "4")]
    pub cflag: u32,
    #[prost(uint32, tag = "5")]
    pub lflag: u32,
    /// Line discipline (`c_line`).
    #[prost(uint32, tag = "6")]
    pub line: u32,
    /// Control characters `c_cc`: exactly 19 bytes (the kernel's NCCS).
    #[prost(bytes = "vec", tag = "7")]
    pub cc: Vec<u8>,
    /// Window size, when the terminal reported one.
    #[prost(message, optional, tag = "8")]
    pub winsize: Option<WinsizeRecord>,
}

/// `struct winsize` of TIOCGWINSZ.
#[derive(Clone, PartialEq, prost::Message)]
pub struct WinsizeRecord {
    #[prost(uint32, tag = "1")]
    pub rows: u32,
    #[prost(uint32, tag = "2")]
    pub cols: u32,
    #[prost(uint32, tag = "3")]
    pub xpixel: u32,
    #[prost(uint32, tag = "4")]
    pub ypixel: u32,
}

/// `stack_t` of sigaltstack(2).
#[derive(Clone, PartialEq, prost::Message)]
pub struct SigaltstackRecord {
    #[prost(uint64, tag = "1")]
    pub sp: u64,
    #[prost(uint32, tag = "2")]
    pub flags: u32,
    #[prost(uint64, tag = "3")]
    pub size: u64,
}

/// x86_64 `struct user_regs_struct`, field for field.
#[derive(Clone, PartialEq, prost::Message)]
pub struct X86RegsRecord {
    #[prost(uint64, tag = "1")]
    pub r15: u64,
    #[prost(uint64, tag = "2")]
    pub r14: u64,
    #[prost(uint64, tag = "3")]
    pub r13: u64,
    #[prost(uint64, tag = "4")]
    pub r12: u64,
    #[prost(uint64, tag = "5")]
    pub rbp: u64,
    #[prost(uint64, tag = "6")]
    pub rbx: u64,
    #[prost(uint64, tag = "7")]
    pub r11: u64,
    #[prost(uint64, tag = "8")]
    pub r10: u64,
    #[prost(uint64, tag = "9")]
    pub r9: u64,
    #[prost(uint64, tag = "10")]
    pub r8: u64,
    #[prost(uint64, tag = "11")]
    pub rax: u64,
    #[prost(uint64, tag = "12")]
    pub rcx: u64,
    #[prost(uint64, tag = "13")]
    pub rdx: u64,
    #[prost(uint64, tag = "14")]
    pub rsi: u64,
    #[prost(uint64, tag = "15")]
    pub rdi: u64,
    #[prost(uint64, tag = "16")]
    pub orig_rax: u64,
    #[prost(uint64, tag = "17")]
    pub rip: u64,
    #[prost(uint64, tag = "18")]
    pub cs: u64,
    #[prost(uint64, tag = "19")]
    pub eflags: u64,
    #[prost(uint64, tag = "20")]
    pub rsp: u64,
    #[prost(uint64, tag = "21")]
    pub ss: u64,
    #[prost(uint64, tag = "22")]
    pub fs_base: u64,
    #[prost(uint64, tag = "23")]
    pub gs_base: u64,
    #[prost(uint64, tag = "24")]
    pub ds: u64,
    #[prost(uint64, tag = "25")]
    pub es: u64,
    #[prost(uint64, tag = "26")]
    pub fs: u64,
    #[prost(uint64, tag = "27")]
    pub gs: u64,
}

/// One signal disposition (kernel `struct sigaction` layout on x86_64).
#[derive(Clone, PartialEq, prost::Message)]
pub struct SigactionRecord {
    #[prost(uint32, tag = "1")]
    pub signo: u32,
    /// Handler address, or 0 = SIG_DFL, 1 = SIG_IGN.
    #[prost(uint64, tag = "2")]
    pub handler: u64,
    #[prost(uint64, tag = "3")]
    pub flags: u64,
    #[prost(uint64, tag = "4")]
    pub restorer: u64,
    #[prost(uint64, tag = "5")]
    pub mask: u64,
}

/// How a VMA is backed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, prost::Enumeration)]
#[repr(i32)]
pub enum VmaKind {
    /// Never written by a reader that does not know the kind.
    Unknown = 0,
    /// Private anonymous memory (incl. `[heap]`, `[stack]`).
    Anonymous = 1,
    /// Private mapping of a file (pages written by the task are stored).
    FilePrivate = 2,
    /// Shared mapping of a file (contents live in the file).
    FileShared = 3,
    /// Shared anonymous memory (`/dev/zero (deleted)`, `/SYSV...`); contents stored.
    SharedAnonymous = 4,
    /// A kernel special mapping: `[vdso]`, `[vvar]`, `[vvar_vclock]`, `[vsyscall]`.
    Special = 5,
}

/// One virtual memory area.
#[derive(Clone, PartialEq, prost::Message)]
pub struct VmaRecord {
    #[prost(uint64, tag = "1")]
    pub start: u64,
    #[prost(uint64, tag = "2")]
    pub end: u64,
    /// PROT_READ = 1, PROT_WRITE = 2, PROT_EXEC = 4.
    #[prost(uint32, tag = "3")]
    pub prot: u32,
    #[prost(bool, tag = "4")]
    pub shared: bool,
    #[prost(bool, tag = "5")]
    pub growsdown: bool,
    #[prost(enumeration = "VmaKind", tag = "6")]
    pub kind: i32,
    /// The path or pseudo-name shown in /proc/PID/maps (`[heap]`, `/usr/lib/...`).
    #[prost(string, tag = "7")]
    pub name: String,
    /// File offset of `start` (bytes).
    #[prost(uint64, tag = "8")]
    pub offset: u64,
    /// Device (`makedev` value) and inode of the backing file.
    #[prost(uint64, tag = "9")]
    pub dev: u64,
    #[prost(uint64, tag = "10")]
    pub ino: u64,
    /// VM flags set by madvise(2) and invisible in /proc/PID/maps: bit 0
    /// NOHUGEPAGE, 1 HUGEPAGE, 2 DONTDUMP, 3 DONTFORK, 4 WIPEONFORK.
    #[prost(uint32, tag = "11")]
    pub madvise: u32,
    /// VM_MAYWRITE (smaps `mw`): a shared file mapping whose file was open
    /// for writing; restore reopens the file read-write for it. Absent
    /// (false) in older images: the file is opened for what `prot` needs.
    #[prost(bool, tag = "12")]
    pub may_write: bool,
    /// For file-backed VMAs: the backing file's identity beyond dev and
    /// inode, with a content digest when the mapping is executable
    /// (format 1.1; restore refuses a file VMA without it).
    #[prost(message, optional, tag = "13")]
    pub stamp: Option<FileStampRecord>,
}

/// A run of consecutive stored pages.
#[derive(Clone, PartialEq, prost::Message)]
pub struct PageRunRecord {
    /// Virtual address of the first page.
    #[prost(uint64, tag = "1")]
    pub vaddr: u64,
    /// Length in bytes (a multiple of the page size).
    #[prost(uint64, tag = "2")]
    pub len: u64,
    /// Offset of the first byte within the PAGES section's data.
    #[prost(uint64, tag = "3")]
    pub section_offset: u64,
}

/// The mm fields of /proc/PID/stat (26-28, 46-52) and the brk.
#[derive(Clone, PartialEq, prost::Message)]
pub struct MmFieldsRecord {
    #[prost(uint64, tag = "1")]
    pub start_code: u64,
    #[prost(uint64, tag = "2")]
    pub end_code: u64,
    #[prost(uint64, tag = "3")]
    pub start_data: u64,
    #[prost(uint64, tag = "4")]
    pub end_data: u64,
    #[prost(uint64, tag = "5")]
    pub start_brk: u64,
    #[prost(uint64, tag = "6")]
    pub brk: u64,
    #[prost(uint64, tag = "7")]
    pub start_stack: u64,
    #[prost(uint64, tag = "8")]
    pub arg_start: u64,
    #[prost(uint64, tag = "9")]
    pub arg_end: u64,
    #[prost(uint64, tag = "10")]
    pub env_start: u64,
    #[prost(uint64, tag = "11")]
    pub env_end: u64,
}

/// One resource limit.
#[derive(Clone, PartialEq, prost::Message)]
pub struct RlimitRecord {
    /// RLIMIT_* number.
    #[prost(uint32, tag = "1")]
    pub resource: u32,
    /// u64::MAX = RLIM_INFINITY.
    #[prost(uint64, tag = "2")]
    pub soft: u64,
    #[prost(uint64, tag = "3")]
    pub hard: u64,
}

/// A registered rseq area (PTRACE_GET_RSEQ_CONFIGURATION).
#[derive(Clone, PartialEq, prost::Message)]
pub struct RseqRecord {
    #[prost(uint64, tag = "1")]
    pub addr: u64,
    #[prost(uint32, tag = "2")]
    pub len: u32,
    #[prost(uint32, tag = "3")]
    pub sig: u32,
    #[prost(uint32, tag = "4")]
    pub flags: u32,
}

/// What an fd refers to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, prost::Enumeration)]
#[repr(i32)]
pub enum FdKind {
    Unknown = 0,
    /// A regular file, reopened by path and checked by (dev, ino).
    RegularFile = 1,
    /// A directory, reopened by path.
    Directory = 2,
    /// A character device such as /dev/null, reopened by path.
    CharDevice = 3,
    /// One end of a pipe the task holds both ends of (see `pipes`).
    Pipe = 4,
    /// fd 0-2 on a terminal or a foreign pipe: restore hands over the
    /// restoring caller's own fd of the same number.
    InheritedStdio = 5,
}

/// One open file descriptor.
#[derive(Clone, PartialEq, prost::Message)]
pub struct FdRecord {
    #[prost(int32, tag = "1")]
    pub fd: i32,
    #[prost(enumeration = "FdKind", tag = "2")]
    pub kind: i32,
    /// Path for files, directories and devices.
    #[prost(string, tag = "3")]
    pub path: String,
    /// Open flags (fdinfo `flags:`, octal there), O_CLOEXEC included.
    #[prost(uint32, tag = "4")]
    pub flags: u32,
    /// File position (fdinfo `pos:`).
    #[prost(uint64, tag = "5")]
    pub pos: u64,
    #[prost(uint64, tag = "6")]
    pub dev: u64,
    #[prost(uint64, tag = "7")]
    pub ino: u64,
    /// Device number of a character device.
    #[prost(uint64, tag = "8")]
    pub rdev: u64,
    /// For pipes: the pipe inode (key into `pipes`).
    #[prost(uint64, tag = "9")]
    pub pipe_ino: u64,
    /// A lower fd of the task that shares this fd's open file description
    /// (dup, `2>&1`): restore dups it instead of opening again, so the
    /// two keep sharing one offset.
    #[prost(int32, optional, tag = "10")]
    pub same_file_as: Option<i32>,
    /// For regular files: identity beyond dev and inode (format 1.1;
    /// restore refuses a regular file fd without it).
    #[prost(message, optional, tag = "11")]
    pub stamp: Option<FileStampRecord>,
}

/// A pipe the task holds both ends of.
#[derive(Clone, PartialEq, prost::Message)]
pub struct PipeRecord {
    /// Pipe inode at dump time (identifies the pair of fds).
    #[prost(uint64, tag = "1")]
    pub ino: u64,
    /// Bytes buffered in the pipe at dump time, oldest first.
    #[prost(bytes = "vec", tag = "2")]
    pub data: Vec<u8>,
    /// Capacity in bytes (fcntl F_GETPIPE_SZ); absent in older images
    /// (restore then keeps the kernel default, 64 KiB).
    #[prost(uint32, optional, tag = "3")]
    pub capacity: Option<u32>,
}

/// Identity of a file: path plus (dev, ino) checked at restore.
#[derive(Clone, PartialEq, prost::Message)]
pub struct FileIdRecord {
    #[prost(string, tag = "1")]
    pub path: String,
    #[prost(uint64, tag = "2")]
    pub dev: u64,
    #[prost(uint64, tag = "3")]
    pub ino: u64,
    /// For regular files (the exe): identity beyond dev and inode, with a
    /// content digest (format 1.1; restore refuses an exe without it).
    /// Absent for directories (the working directory).
    #[prost(message, optional, tag = "4")]
    pub stamp: Option<FileStampRecord>,
}

/// A regular file's identity beyond dev and inode (DESIGN 3.7), as fstat
/// reports it at dump time.
#[derive(Clone, PartialEq, prost::Message)]
pub struct FileStampRecord {
    /// `st_size` in bytes.
    #[prost(uint64, tag = "1")]
    pub size: u64,
    /// `st_mtim`: seconds and nanoseconds.
    #[prost(int64, tag = "2")]
    pub mtime_sec: i64,
    #[prost(uint32, tag = "3")]
    pub mtime_nsec: u32,
    /// `st_ctim`: seconds and nanoseconds.
    #[prost(int64, tag = "4")]
    pub ctime_sec: i64,
    #[prost(uint32, tag = "5")]
    pub ctime_nsec: u32,
    /// SHA-256 of the whole content (32 bytes) for the exe and files with
    /// an executable mapping; empty otherwise.
    #[prost(bytes = "vec", tag = "6")]
    pub sha256: Vec<u8>,
    /// Birth time (statx `stx_btime`), when the filesystem reports one.
    #[prost(int64, optional, tag = "7")]
    pub btime_sec: Option<i64>,
    #[prost(uint32, tag = "8")]
    pub btime_nsec: u32,
}

/// Per-task attributes: prctl flags, /proc attributes, interval timers.
#[derive(Clone, PartialEq, prost::Message)]
pub struct TaskAttrsRecord {
    /// prctl(PR_GET_DUMPABLE): 0, 1 or 2.
    #[prost(uint32, tag = "1")]
    pub dumpable: u32,
    /// prctl(PR_GET_CHILD_SUBREAPER).
    #[prost(bool, tag = "2")]
    pub child_subreaper: bool,
    /// prctl(PR_GET_THP_DISABLE).
    #[prost(bool, tag = "3")]
    pub thp_disable: bool,
    /// prctl(PR_GET_PDEATHSIG): 0 none, else 1-64.
    #[prost(uint32, tag = "4")]
    pub pdeathsig: u32,
    /// prctl(PR_GET_TIMERSLACK), nanoseconds.
    #[prost(uint64, tag = "5")]
    pub timer_slack_ns: u64,
    /// /proc/PID/oom_score_adj, -1000..=1000.
    #[prost(int32, tag = "6")]
    pub oom_score_adj: i32,
    /// /proc/PID/loginuid (4294967295 = unset).
    #[prost(uint32, tag = "7")]
    pub loginuid: u32,
    /// Armed interval timers (getitimer).
    #[prost(message, repeated, tag = "8")]
    pub itimers: Vec<ItimerRecord>,
    /// membarrier(2) registrations, as REGISTER command bits: 4
    /// GLOBAL_EXPEDITED, 16 PRIVATE_EXPEDITED, 64 PRIVATE_EXPEDITED_SYNC_CORE, 256
    /// PRIVATE_EXPEDITED_RSEQ.
    #[prost(uint32, tag = "9")]
    pub membarrier: u32,
}

/// One armed interval timer.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ItimerRecord {
    /// ITIMER_REAL 0, ITIMER_VIRTUAL 1, ITIMER_PROF 2.
    #[prost(uint32, tag = "1")]
    pub which: u32,
    #[prost(uint64, tag = "2")]
    pub interval_us: u64,
    /// Time left until the next expiry.
    #[prost(uint64, tag = "3")]
    pub value_us: u64,
}
