//! Why a single vector check (or a negative case) did not pass.

use thiserror::Error;

/// The typed outcome of one failed check. Messages name the field or step,
/// never key material.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum CheckError {
    /// The vector file's JSON did not have the documented shape.
    #[error("vector JSON: {0}")]
    Json(String),
    /// A hex field in the vector was not valid hex.
    #[error("vector field {0} is not valid hex")]
    Hex(&'static str),
    /// A TLS-encoded structure could not be decoded.
    #[error("decoding {0}: {1}")]
    Decode(&'static str, &'static str),
    /// A structure could not be encoded.
    #[error("encoding: {0}")]
    Encode(&'static str),
    /// A computed value differs from the one in the vector.
    #[error("mismatch: {0}")]
    Mismatch(String),
    /// A MAC, AEAD tag or signature did not verify.
    #[error("verification failed: {0}")]
    Verify(&'static str),
    /// The cryptographic provider reported an error.
    #[error("crypto provider: {0}")]
    Crypto(String),
    /// openmls returned an error.
    #[error("openmls: {0}")]
    OpenMls(String),
    /// The message or structure is not allowed in this position.
    #[error("protocol: {0}")]
    Protocol(&'static str),
    /// A negative case was accepted although it must be rejected.
    #[error("accepted although it must be rejected: {0}")]
    NotRejected(String),
}

impl CheckError {
    /// Shorthand for a [`CheckError::Mismatch`] naming the compared value.
    pub(crate) fn mismatch(what: impl Into<String>) -> Self {
        Self::Mismatch(what.into())
    }
}

impl From<openmls_traits::types::CryptoError> for CheckError {
    fn from(e: openmls_traits::types::CryptoError) -> Self {
        Self::Crypto(format!("{e:?}"))
    }
}

/// Compares two byte strings and names the field on mismatch.
pub(crate) fn expect_eq(what: &str, got: &[u8], want: &[u8]) -> Result<(), CheckError> {
    if got == want {
        Ok(())
    } else {
        Err(CheckError::mismatch(what))
    }
}
