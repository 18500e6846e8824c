use super::*;
use crate::model::zero_regs;
use std::cell::RefCell;

#[test]
fn a_thread_created_during_the_freeze_is_seized_too() {
    // Listing 1 shows 11 and 12; while they are seized, 12 creates 13.
    let listings = RefCell::new(vec![
        vec![10, 11, 12],
        vec![10, 11, 12, 13],
        vec![10, 11, 12, 13],
    ]);
    let seized = seize_until_stable(
        10,
        || Ok::<_, String>(listings.borrow_mut().remove(0)),
        |tid| Ok(Some(tid * 100)),
        || "rounds".to_string(),
    )
    .unwrap();
    assert_eq!(seized, vec![(11, 1100), (12, 1200), (13, 1300)]);
    // The last listing was made after every thread was seized.
    assert!(listings.borrow().is_empty());
}

#[test]
fn an_exited_thread_is_left_out_and_not_asked_again() {
    let listings = RefCell::new(vec![vec![10, 11, 12], vec![10, 11, 12]]);
    let asked = RefCell::new(Vec::new());
    let seized = seize_until_stable(
        10,
        || Ok::<_, String>(listings.borrow_mut().remove(0)),
        |tid| {
            asked.borrow_mut().push(tid);
            Ok((tid != 11).then_some(()))
        },
        || "rounds".to_string(),
    )
    .unwrap();
    assert_eq!(seized.iter().map(|s| s.0).collect::<Vec<_>>(), vec![12]);
    assert_eq!(*asked.borrow(), vec![11, 12]);
}

#[test]
fn a_seize_failure_fails_the_whole_freeze() {
    let r = seize_until_stable(
        10,
        || Ok::<_, String>(vec![10, 11, 12]),
        |tid| {
            if tid == 12 {
                Err(format!("thread {tid}"))
            } else {
                Ok(Some(()))
            }
        },
        || "rounds".to_string(),
    );
    assert_eq!(r.unwrap_err(), "thread 12");
}

#[test]
fn endless_thread_creation_is_refused() {
    let next = RefCell::new(11);
    let r = seize_until_stable(
        10,
        || {
            let mut n = next.borrow_mut();
            *n += 1;
            Ok::<_, String>(vec![10, *n])
        },
        |_| Ok(Some(())),
        || "rounds".to_string(),
    );
    assert_eq!(r.unwrap_err(), "rounds");
}

#[test]
fn single_threaded_process_has_no_threads_to_seize() {
    let r = seize_until_stable(
        10,
        || Ok::<_, String>(vec![10]),
        |_| -> Result<Option<()>, String> { panic!("nothing to seize") },
        || "rounds".to_string(),
    );
    assert!(r.unwrap().is_empty());
}

#[test]
fn security_differences_are_named() {
    let leader = lsm_labels::TaskSecurity::default();
    assert_eq!(security_difference(&leader, &leader.clone()), None);
    let mut t = leader.clone();
    t.tid = 99; // the tid and personality are not security state
    t.personality = 8;
    assert_eq!(security_difference(&leader, &t), None);
    t.creds.uids = [1000; 4];
    assert!(security_difference(&leader, &t)
        .unwrap()
        .contains("credentials"));
    let mut t = leader.clone();
    t.no_new_privs = true;
    assert_eq!(security_difference(&leader, &t), Some("no_new_privs"));
    let mut t = leader.clone();
    t.seccomp = lsm_labels::SeccompMode::Filter;
    t.seccomp_filters = vec![vec![6, 0, 0, 0, 0, 0, 0xff, 0x7f]];
    assert_eq!(security_difference(&leader, &t), Some("seccomp filters"));
}

/// A stopped thread: answers injected calls by writing what the kernel
/// would into its scratch page.
struct FakeThread {
    regs: Regs,
    mask: u64,
    mem: Vec<u8>,
    calls: Vec<i64>,
}

const SCRATCH: u64 = 0x7000_0000;

impl Tracer for FakeThread {
    fn pid(&self) -> i32 {
        42
    }
    fn regs(&self) -> Result<Regs, TraceError> {
        Ok(self.regs)
    }
    fn set_regs(&mut self, regs: &Regs) -> Result<(), TraceError> {
        self.regs = *regs;
        Ok(())
    }
    fn syscall(&mut self, nr: i64, args: &[u64]) -> Result<i64, TraceError> {
        self.calls.push(nr);
        self.regs.rax = 0xdead; // injected calls clobber registers
        let put = |mem: &mut Vec<u8>, at: u64, v: u64| {
            let o = (at - SCRATCH) as usize;
            mem[o..o + 8].copy_from_slice(&v.to_le_bytes());
        };
        match nr {
            libc::SYS_mmap => return Ok(SCRATCH as i64),
            libc::SYS_sigaltstack => {
                put(&mut self.mem, args[1], 0x5000);
                put(&mut self.mem, args[1] + 8, 0);
                put(&mut self.mem, args[1] + 16, 8192);
            }
            libc::SYS_prctl if args[0] == PR_GET_TID_ADDRESS => put(&mut self.mem, args[1], 0x6010),
            libc::SYS_prctl if args[0] == PR_GET_SECUREBITS => return Ok(0x10),
            libc::SYS_get_robust_list => {
                put(&mut self.mem, args[1], 0x6020);
                put(&mut self.mem, args[2], 24);
            }
            _ => {}
        }
        Ok(0)
    }
    fn read_mem(&self, addr: u64, buf: &mut [u8]) -> Result<(), TraceError> {
        let o = (addr - SCRATCH) as usize;
        buf.copy_from_slice(&self.mem[o..o + buf.len()]);
        Ok(())
    }
    fn write_mem(&mut self, _addr: u64, _data: &[u8]) -> Result<(), TraceError> {
        Ok(())
    }
    fn set_syscall_ip(&mut self, _addr: u64) {}
    fn tid(&self) -> i32 {
        43
    }
    fn xstate(&self) -> Result<Vec<u8>, TraceError> {
        Ok(vec![7; 16])
    }
    fn sigmask(&self) -> Result<u64, TraceError> {
        Ok(self.mask)
    }
    fn set_sigmask_to(&mut self, mask: u64) -> Result<(), TraceError> {
        self.mask = mask;
        Ok(())
    }
    fn rseq(&self) -> Result<Option<crate::sys::RseqConfig>, TraceError> {
        Ok(Some(crate::sys::RseqConfig {
            rseq_abi_pointer: 0x6100,
            rseq_abi_size: 32,
            signature: 0x53053053,
            ..Default::default()
        }))
    }
}

#[test]
fn capture_reads_every_per_thread_field_and_puts_the_thread_back() {
    let mut regs = zero_regs();
    regs.rip = 0x401000;
    regs.rax = 5;
    let mut t = FakeThread {
        regs,
        mask: 0x4,
        mem: vec![0; 4096],
        calls: Vec::new(),
    };
    let (s, securebits) = capture_thread(&mut t, 42, "worker".into()).unwrap();
    assert_eq!(s.tid, 43);
    assert_eq!(s.comm, "worker");
    assert_eq!((s.regs.rip, s.regs.rax), (0x401000, 5));
    assert_eq!(s.sigmask, 0x4);
    assert_eq!(s.xsave, vec![7; 16]);
    assert_eq!(s.sigaltstack, Some((0x5000, 0, 8192)));
    assert_eq!(s.clear_child_tid, 0x6010);
    assert_eq!(s.robust_list, Some((0x6020, 24)));
    assert_eq!(s.rseq.map(|r| (r.addr, r.len)), Some((0x6100, 32)));
    assert_eq!(securebits, 0x10);
    // Put back exactly: registers and mask as found; the scratch unmapped.
    assert_eq!((t.regs.rip, t.regs.rax, t.mask), (0x401000, 5, 0x4));
    assert_eq!(t.calls.first(), Some(&libc::SYS_mmap));
    assert_eq!(t.calls.last(), Some(&libc::SYS_munmap));
}

#[test]
fn a_failed_injection_still_puts_the_thread_back() {
    struct Failing(FakeThread);
    impl Tracer for Failing {
        fn pid(&self) -> i32 {
            42
        }
        fn regs(&self) -> Result<Regs, TraceError> {
            self.0.regs()
        }
        fn set_regs(&mut self, r: &Regs) -> Result<(), TraceError> {
            self.0.set_regs(r)
        }
        fn syscall(&mut self, nr: i64, args: &[u64]) -> Result<i64, TraceError> {
            if nr == libc::SYS_get_robust_list {
                self.0.regs.rax = 1;
                return Ok(-(libc::ENOSYS as i64));
            }
            self.0.syscall(nr, args)
        }
        fn read_mem(&self, a: u64, b: &mut [u8]) -> Result<(), TraceError> {
            self.0.read_mem(a, b)
        }
        fn write_mem(&mut self, a: u64, d: &[u8]) -> Result<(), TraceError> {
            self.0.write_mem(a, d)
        }
        fn set_syscall_ip(&mut self, _a: u64) {}
        fn xstate(&self) -> Result<Vec<u8>, TraceError> {
            self.0.xstate()
        }
        fn sigmask(&self) -> Result<u64, TraceError> {
            self.0.sigmask()
        }
        fn set_sigmask_to(&mut self, m: u64) -> Result<(), TraceError> {
            self.0.set_sigmask_to(m)
        }
        fn rseq(&self) -> Result<Option<crate::sys::RseqConfig>, TraceError> {
            Ok(None)
        }
    }
    let mut regs = zero_regs();
    regs.rip = 0x401000;
    let mut t = Failing(FakeThread {
        regs,
        mask: 0x4,
        mem: vec![0; 4096],
        calls: Vec::new(),
    });
    let e = capture_thread(&mut t, 42, "w".into()).unwrap_err();
    assert!(e.to_string().contains("get_robust_list"), "{e}");
    assert_eq!((t.0.regs.rip, t.0.mask), (0x401000, 0x4));
    assert_eq!(t.0.calls.last(), Some(&libc::SYS_munmap));
}
