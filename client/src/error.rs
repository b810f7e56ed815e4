//! Client errors: stable codes for programs, sentences for people.

use qpq_core::EngineError;
use qpq_proto::{ErrorCode, RemoteError};

/// Why a client operation failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ClientError {
    /// The server refused the request.
    #[error("{}", .0.message)]
    Remote(RemoteError),
    /// There is no connection to the server (the operation may be retried later).
    #[error("not connected to the server ({0})")]
    Disconnected(String),
    /// The engine refused the operation.
    #[error(transparent)]
    Engine(#[from] EngineError),
    /// Local storage failed.
    #[error("could not save data on this device: {0}")]
    Store(String),
    /// The person's input is not valid.
    #[error("{0}")]
    Input(String),
    /// The person stopped the operation (a file transfer).
    #[error("{0}")]
    Cancelled(String),
}

impl ClientError {
    /// A stable code: the server's error code, the engine's code, or one of
    /// `disconnected`, `storage`, `input`, `cancelled`.
    pub fn code(&self) -> &'static str {
        match self {
            ClientError::Remote(r) => r.code.map(ErrorCode::as_str).unwrap_or("remote"),
            ClientError::Disconnected(_) => "disconnected",
            ClientError::Engine(e) => e.code(),
            ClientError::Store(_) => "storage",
            ClientError::Input(_) => "input",
            ClientError::Cancelled(_) => "cancelled",
        }
    }

    /// The server's code, if the server refused.
    pub fn remote_code(&self) -> Option<ErrorCode> {
        match self {
            ClientError::Remote(r) => r.code,
            _ => None,
        }
    }

    /// True when the failure was the connection, not the request.
    pub fn is_transport(&self) -> bool {
        matches!(self, ClientError::Disconnected(_))
    }
}

impl From<capnp::Error> for ClientError {
    fn from(e: capnp::Error) -> Self {
        match e.kind {
            capnp::ErrorKind::Disconnected | capnp::ErrorKind::Overloaded => ClientError::Disconnected(e.extra),
            _ => {
                let r = RemoteError::from_description(&e.extra);
                if r.code.is_none() && e.extra.contains("disconnected") {
                    ClientError::Disconnected(e.extra)
                } else {
                    ClientError::Remote(r)
                }
            }
        }
    }
}
