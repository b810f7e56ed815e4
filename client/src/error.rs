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

    /// When a request that failed this way should be tried again (milliseconds from now):
    /// the server said "later" (`rate_limited`, with its time, or `internal`), or the failure
    /// came from below the server's logic (no code: a stream or node lost mid-call, whatever
    /// words the transport used). `None` for a refusal, which is final, and for a lost
    /// connection, which the connection loop handles.
    pub fn retry_after_ms(&self) -> Option<u64> {
        match self {
            ClientError::Remote(r) => match r.code {
                Some(ErrorCode::RateLimited) => Some(r.retry_after_ms().unwrap_or(RETRY_MS).clamp(RETRY_MS / 4, 60_000)),
                Some(ErrorCode::Internal) | None => Some(RETRY_MS),
                Some(_) => None,
            },
            _ => None,
        }
    }
}

/// How long to wait before trying again after a transient failure without a stated time.
const RETRY_MS: u64 = 1000;

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

#[cfg(test)]
mod tests {
    use super::*;

    fn remote(code: Option<ErrorCode>, message: &str) -> ClientError {
        ClientError::Remote(RemoteError { code, message: message.into() })
    }

    #[test]
    fn later_is_told_apart_from_no() {
        let limited = remote(Some(ErrorCode::RateLimited), &qpq_proto::rate_limited_sentence("messages sent", 4200));
        assert_eq!(limited.retry_after_ms(), Some(4200));
        assert_eq!(remote(Some(ErrorCode::Internal), "try again").retry_after_ms(), Some(RETRY_MS));
        assert_eq!(remote(None, "Premature EOF").retry_after_ms(), Some(RETRY_MS), "a call lost below the server's logic");
        for final_code in [ErrorCode::TooLarge, ErrorCode::NotMember, ErrorCode::QuotaExceeded, ErrorCode::DeviceRevoked] {
            assert_eq!(remote(Some(final_code), "no").retry_after_ms(), None, "{final_code} is final");
        }
        assert_eq!(ClientError::Disconnected("gone".into()).retry_after_ms(), None, "the connection loop's business");
    }
}
