//! The one error type of certificate handling, shared by the files that make, load and
//! read certificates.

use std::path::PathBuf;

/// Why a certificate could not be made or loaded.
#[derive(Debug, thiserror::Error)]
pub enum CertError {
    /// Reading or writing a file failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        source: std::io::Error,
    },
    /// The file holds no usable certificate or key.
    #[error("{0}")]
    Invalid(String),
    /// Generating failed.
    #[error("could not generate a certificate: {0}")]
    Generate(String),
}
