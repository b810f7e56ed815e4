//! IETF MLS (RFC 9420) test-vector conformance for quicproquo.
//!
//! [`run_all`] runs the vectors of mlswg/mls-implementations (pinned by
//! SHA-256) for the one cipher suite quicproquo ships,
//! MLS_128_DHKEMX25519_CHACHA20POLY1305_SHA256_Ed25519 (0x0003), plus every
//! suite-independent vector, and a set of negative cases built from them
//! (tampered MACs and AEAD tags, a private message presented as public, a
//! message replayed into another group), and returns a [`Report`]. The same
//! function runs natively (`tests/vectors.rs`) and in headless Chromium
//! (`tests/browser.rs`, see `scripts/conformance-wasm.sh`); both compare the
//! number of executed vectors with [`EXPECTED_EXECUTED`].
//!
//! Where openmls's public API can take a vector's inputs it is used: the
//! passive-client scenarios join and follow groups with `StagedWelcome` and
//! `MlsGroup::process_message`, and the messages vectors round-trip through
//! openmls's public wire types. The other vectors feed internals (raw epoch
//! secrets, bare trees, bare update paths) that openmls keeps crate-private;
//! those are checked against the RFC, computed in `rfc` over the same
//! RustCrypto primitives (`openmls_rust_crypto`) that openmls uses.
//!
//! It deliberately does not read files or the clock at run time: the vector
//! bytes come in through [`VectorFiles`] (see [`embedded`]), so the browser
//! build needs no file system.

mod error;
mod files;
mod negative;
mod pin;
mod report;
mod rfc;
mod vectors;

pub use error::CheckError;
pub use files::{embedded, VectorFile, VectorFiles};
pub use report::{Failure, FileReport, NegativeReport, Report};

/// The cipher suite quicproquo ships: MLS_128_DHKEMX25519_CHACHA20POLY1305_SHA256_Ed25519.
pub const SHIPPED_SUITE: u16 = 0x0003;

/// Per file: vectors executed and vectors skipped as "other suite" by a
/// full run. Native and browser runs are both held to these numbers.
pub const EXPECTED: [(VectorFile, usize, usize); 16] = [
    (VectorFile::TreeMath, 10, 0),
    (VectorFile::CryptoBasics, 1, 6),
    (VectorFile::SecretTree, 3, 18),
    (VectorFile::MessageProtection, 1, 6),
    (VectorFile::KeySchedule, 1, 6),
    (VectorFile::PskSecret, 11, 66),
    (VectorFile::TranscriptHashes, 1, 6),
    (VectorFile::Welcome, 1, 6),
    (VectorFile::TreeOperations, 5, 0),
    (VectorFile::TreeValidation, 14, 84),
    (VectorFile::TreeKem, 11, 66),
    (VectorFile::Messages, 300, 0),
    (VectorFile::Deserialization, 14, 0),
    (VectorFile::PassiveClientWelcome, 8, 48),
    (VectorFile::PassiveClientHandlingCommit, 13, 78),
    (VectorFile::PassiveClientRandom, 1, 0),
];

/// Vectors a full run executes, over all files (natively and in the browser).
pub const EXPECTED_EXECUTED: usize = 395;

/// Negative cases a full run executes (natively and in the browser).
pub const EXPECTED_NEGATIVE: usize = 347;

/// Checks the pin of one file and runs its selected vectors (no negative cases).
pub fn run_file(files: &VectorFiles<'_>, file: VectorFile) -> FileReport {
    vectors::run_file(files, file)
}

/// Checks the pins, runs every selected vector of every file and every
/// negative case, and reports what passed.
pub fn run_all(files: &VectorFiles<'_>) -> Report {
    let files_report = VectorFile::ALL
        .iter()
        .map(|f| vectors::run_file(files, *f))
        .collect();
    Report {
        files: files_report,
        negatives: negative::run(files),
    }
}
