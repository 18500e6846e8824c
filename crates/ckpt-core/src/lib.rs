//! ckpt-core
