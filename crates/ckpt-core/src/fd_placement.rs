//! Placing restored fds on their numbers: a pure solver over fd numbers.
//!
//! A restore first opens every object (file, pipe end) at whatever
//! temporary number the kernel hands out, then moves each onto the number
//! the task had. A `dup3` onto a number where a temporary still lives would
//! close that temporary and lose its object (a pipe's read end at 4 and
//! write end at 3, created as 3 and 4, came back as two write ends). `plan`
//! orders the moves so that no live temporary is ever overwritten, breaking
//! cycles (3 -> 4 and 4 -> 3) through a spare number above every fd in use,
//! then closes every temporary that is not a target.

use std::collections::BTreeMap;

/// One step of a placement.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FdMove {
    /// `dup3(from, to, 0)`.
    Dup { from: i32, to: i32 },
    /// `close(fd)`.
    Close(i32),
}

/// The moves that leave, for every `(target, temporary)` of `want`, the
/// object opened at `temporary` on `target`, and no temporary open that is
/// not a target. Temporaries are distinct live fds; several targets may
/// name the same temporary (dups of one open file description); targets
/// are distinct. Fds not named are left alone.
pub fn plan(want: &[(i32, i32)]) -> Vec<FdMove> {
    // Which object (named by its temporary) each open fd holds.
    let mut holds: BTreeMap<i32, i32> = want.iter().map(|&(_, tmp)| (tmp, tmp)).collect();
    let target: BTreeMap<i32, i32> = want.iter().copied().collect();
    let mut moves = Vec::new();
    loop {
        let pending: Vec<i32> = target
            .iter()
            .filter(|(t, o)| holds.get(t) != Some(o))
            .map(|(t, _)| *t)
            .collect();
        if pending.is_empty() {
            break;
        }
        // A target may be overwritten when what it holds is not needed:
        // nothing there, or another fd holds it too, or no pending target
        // wants it.
        let needed = |fd: i32, holds: &BTreeMap<i32, i32>| {
            holds.get(&fd).is_some_and(|o| {
                holds.values().filter(|h| *h == o).count() == 1
                    && pending.iter().any(|p| *p != fd && target[p] == *o)
            })
        };
        match pending.iter().find(|t| !needed(**t, &holds)) {
            Some(&t) => {
                let obj = target[&t];
                let from = *holds
                    .iter()
                    .find(|(_, o)| **o == obj)
                    .expect("every wanted object has a holder")
                    .0;
                moves.push(FdMove::Dup { from, to: t });
                holds.insert(t, obj);
            }
            None => {
                // A cycle: copy one needed object to a spare number.
                let t = pending[0];
                let top = holds.keys().chain(target.keys()).max().copied();
                let spare = top.unwrap_or(0) + 1;
                moves.push(FdMove::Dup { from: t, to: spare });
                holds.insert(spare, holds[&t]);
            }
        }
    }
    for fd in holds.keys() {
        if !target.contains_key(fd) {
            moves.push(FdMove::Close(*fd));
        }
    }
    moves
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs `moves` on a table of open fds (fd -> object) and checks each
    /// step is valid (dup from an open fd, close of an open fd).
    fn simulate(start: &[(i32, i32)], moves: &[FdMove]) -> BTreeMap<i32, i32> {
        let mut open: BTreeMap<i32, i32> = start.iter().copied().collect();
        for m in moves {
            match *m {
                FdMove::Dup { from, to } => {
                    let o = *open
                        .get(&from)
                        .unwrap_or_else(|| panic!("dup from closed {from}"));
                    open.insert(to, o);
                }
                FdMove::Close(fd) => {
                    assert!(open.remove(&fd).is_some(), "close of closed {fd}");
                }
            }
        }
        open
    }

    fn check(want: &[(i32, i32)]) {
        let start: Vec<(i32, i32)> = want.iter().map(|&(_, t)| (t, t)).collect();
        let moves = plan(want);
        let end = simulate(&start, &moves);
        let expect: BTreeMap<i32, i32> = want.iter().copied().collect();
        assert_eq!(end, expect, "want {want:?} moves {moves:?}");
    }

    #[test]
    fn every_pipe_pair_over_fds_0_to_5_lands_on_its_numbers() {
        // Temporaries (read, write) anywhere in 0-5, targets anywhere in 0-5.
        for rt in 0..6 {
            for wt in (0..6).filter(|&w| w != rt) {
                for rtmp in 0..6 {
                    for wtmp in (0..6).filter(|&w| w != rtmp) {
                        check(&[(rt, rtmp), (wt, wtmp)]);
                    }
                }
            }
        }
    }

    #[test]
    fn the_reported_swap_keeps_both_ends() {
        // pipe2 gave read 3, write 4; the task had read at 4, write at 3.
        let moves = plan(&[(4, 3), (3, 4)]);
        assert_eq!(
            moves,
            vec![
                FdMove::Dup { from: 3, to: 5 },
                FdMove::Dup { from: 4, to: 3 },
                FdMove::Dup { from: 5, to: 4 },
                FdMove::Close(5),
            ]
        );
    }

    #[test]
    fn dups_of_one_file_and_three_cycles() {
        check(&[(3, 5), (7, 5), (5, 6), (6, 3)]);
        check(&[(0, 1), (1, 2), (2, 0)]);
        check(&[(10, 3)]);
        check(&[(3, 3), (4, 3)]);
        assert!(plan(&[(3, 3)]).is_empty());
    }
}
