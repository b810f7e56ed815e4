//! First-principles RFC 9420 machinery for the vectors whose inputs openmls
//! does not accept through its public API (raw epoch secrets, bare trees,
//! bare update paths). Built on the RustCrypto primitives behind
//! `openmls_rust_crypto`, so the primitives are the ones quicproquo ships.

pub(crate) mod codec;
pub(crate) mod crypto;
pub(crate) mod framing;
pub(crate) mod key_schedule;
pub(crate) mod secret_tree;
pub(crate) mod structs;
pub(crate) mod tree;
pub(crate) mod tree_math;
pub(crate) mod treekem;
