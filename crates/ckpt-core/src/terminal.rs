//! Terminal modes of a task's stdio (DESIGN 3.7, last sentence): what
//! `ioctl(TCGETS)` and `ioctl(TIOCGWINSZ)` report for the terminal a task's
//! fd 0-2 is on, read at dump by calls injected into the frozen task, stored
//! as `TerminalRecord`, and given back to the caller's terminal when the
//! task is restored onto it (`TCSETS`, `TIOCSWINSZ`).
//!
//! The dump reads the modes through the task's own fd (an injected ioctl)
//! rather than by opening /proc/PID/fd/N: that needs no permission to open
//! the terminal (which may belong to another user than the dumper), opens
//! nothing (so ckpt can never acquire the terminal as its controlling
//! terminal or hold it open), and reads exactly the terminal the task sees.

use image_format::records::{TerminalRecord, WinsizeRecord};

/// The kernel's NCCS (`struct termios` of TCGETS, not glibc's).
pub const KERNEL_NCCS: usize = 19;
/// Size of the kernel's `struct termios`: four flag words, `c_line`, `c_cc`.
pub const KERNEL_TERMIOS_LEN: usize = 16 + 1 + KERNEL_NCCS;
/// Size of `struct winsize`.
pub const WINSIZE_LEN: usize = 8;

/// `struct winsize`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WinSize {
    pub rows: u16,
    pub cols: u16,
    pub xpixel: u16,
    pub ypixel: u16,
}

/// A terminal's modes, as read through stdio fd `fd` of the task.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TerminalModes {
    pub fd: i32,
    pub iflag: u32,
    pub oflag: u32,
    pub cflag: u32,
    pub lflag: u32,
    pub line: u8,
    pub cc: [u8; KERNEL_NCCS],
    pub winsize: Option<WinSize>,
}

impl TerminalModes {
    /// Parses the bytes TCGETS wrote (`termios`) and, when TIOCGWINSZ
    /// succeeded, the bytes it wrote (`winsize`).
    pub fn from_kernel(
        fd: i32,
        termios: &[u8; KERNEL_TERMIOS_LEN],
        winsize: Option<&[u8; WINSIZE_LEN]>,
    ) -> TerminalModes {
        let w = |i: usize| {
            u32::from_ne_bytes([termios[i], termios[i + 1], termios[i + 2], termios[i + 3]])
        };
        let mut cc = [0u8; KERNEL_NCCS];
        cc.copy_from_slice(&termios[17..]);
        TerminalModes {
            fd,
            iflag: w(0),
            oflag: w(4),
            cflag: w(8),
            lflag: w(12),
            line: termios[16],
            cc,
            winsize: winsize.map(|b| {
                let h = |i: usize| u16::from_ne_bytes([b[i], b[i + 1]]);
                WinSize {
                    rows: h(0),
                    cols: h(2),
                    xpixel: h(4),
                    ypixel: h(6),
                }
            }),
        }
    }

    /// The kernel's `struct termios` bytes for TCSETS.
    pub fn termios_bytes(&self) -> [u8; KERNEL_TERMIOS_LEN] {
        let mut b = [0u8; KERNEL_TERMIOS_LEN];
        for (i, v) in [self.iflag, self.oflag, self.cflag, self.lflag]
            .into_iter()
            .enumerate()
        {
            b[i * 4..i * 4 + 4].copy_from_slice(&v.to_ne_bytes());
        }
        b[16] = self.line;
        b[17..].copy_from_slice(&self.cc);
        b
    }

    pub fn to_record(&self) -> TerminalRecord {
        TerminalRecord {
            fd: self.fd,
            iflag: self.iflag,
            oflag: self.oflag,
            cflag: self.cflag,
            lflag: self.lflag,
            line: u32::from(self.line),
            cc: self.cc.to_vec(),
            winsize: self.winsize.map(|w| WinsizeRecord {
                rows: u32::from(w.rows),
                cols: u32::from(w.cols),
                xpixel: u32::from(w.xpixel),
                ypixel: u32::from(w.ypixel),
            }),
        }
    }

    /// Validates a stored record (images are untrusted input).
    pub fn from_record(r: &TerminalRecord) -> Result<TerminalModes, String> {
        if !(0..=2).contains(&r.fd) {
            return Err(format!("terminal modes name fd {}, not a stdio fd", r.fd));
        }
        let cc: [u8; KERNEL_NCCS] = r.cc.as_slice().try_into().map_err(|_| {
            format!(
                "terminal modes hold {} control characters, not {KERNEL_NCCS}",
                r.cc.len()
            )
        })?;
        let line = u8::try_from(r.line)
            .map_err(|_| format!("terminal line discipline {} is out of range", r.line))?;
        let small = |v: u32, what: &str| {
            u16::try_from(v).map_err(|_| format!("terminal window {what} {v} is out of range"))
        };
        let winsize = match &r.winsize {
            Some(w) => Some(WinSize {
                rows: small(w.rows, "rows")?,
                cols: small(w.cols, "columns")?,
                xpixel: small(w.xpixel, "width")?,
                ypixel: small(w.ypixel, "height")?,
            }),
            None => None,
        };
        Ok(TerminalModes {
            fd: r.fd,
            iflag: r.iflag,
            oflag: r.oflag,
            cflag: r.cflag,
            lflag: r.lflag,
            line,
            cc,
            winsize,
        })
    }
}

/// Gives `modes` to the terminal on our own fd `modes.fd` (which the
/// restored task inherits). Returns false, changing nothing, when that fd
/// is not a terminal (the task was not restored onto one).
///
/// # Errors
/// The kernel's errno from TCSETS or TIOCSWINSZ.
pub fn apply_to_own_fd(modes: &TerminalModes) -> std::io::Result<bool> {
    if crate::sys::tcgets(modes.fd).is_err() {
        return Ok(false);
    }
    crate::sys::tcsets(modes.fd, &modes.termios_bytes())?;
    if let Some(w) = modes.winsize {
        crate::sys::set_winsize(modes.fd, [w.rows, w.cols, w.xpixel, w.ypixel])?;
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> TerminalModes {
        let mut t = [0u8; KERNEL_TERMIOS_LEN];
        for (i, b) in t.iter_mut().enumerate() {
            *b = i as u8 + 1;
        }
        let w = [24u8, 0, 80, 0, 0, 0, 0, 0];
        TerminalModes::from_kernel(1, &t, Some(&w))
    }

    #[test]
    fn kernel_bytes_round_trip() {
        let m = sample();
        assert_eq!(m.line, 17);
        assert_eq!(m.cc[0], 18);
        assert_eq!(m.winsize.map(|w| (w.rows, w.cols)), Some((24, 80)));
        let mut t = [0u8; KERNEL_TERMIOS_LEN];
        for (i, b) in t.iter_mut().enumerate() {
            *b = i as u8 + 1;
        }
        assert_eq!(m.termios_bytes(), t);
    }

    #[test]
    fn record_round_trip() {
        let m = sample();
        assert_eq!(TerminalModes::from_record(&m.to_record()), Ok(m));
    }

    #[test]
    fn bad_records_are_refused() {
        let mut r = sample().to_record();
        r.cc.push(0);
        assert!(TerminalModes::from_record(&r).is_err());
        let mut r = sample().to_record();
        r.fd = 3;
        assert!(TerminalModes::from_record(&r).is_err());
        let mut r = sample().to_record();
        r.line = 256;
        assert!(TerminalModes::from_record(&r).is_err());
        let mut r = sample().to_record();
        r.winsize.as_mut().unwrap().rows = 70_000;
        assert!(TerminalModes::from_record(&r).is_err());
    }
}
