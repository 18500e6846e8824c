//! The ckpt image: on-disk layout, protobuf records, digests and signatures.

pub mod records;
