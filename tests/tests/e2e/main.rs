//! End-to-end tests of the `ckpt` binary against real processes.
//! Tests whose name contains `root` need root; under CI
//! (`CKPT_TEST_EXPECT_ROOT=1`) they fail rather than skip without it.

mod cli;
mod ctty;
mod decoder_limits;
mod engine;
mod integrity;
mod landlock_ns;
mod lsm;
mod lsm_confinement;
mod refusals;
mod security;
mod stdio;
mod task_state;
mod threads;
mod verdict;
