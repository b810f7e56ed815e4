//! Stable error codes carried in Cap'n Proto exceptions as `"<code>: <human sentence>"`.
//!
//! Codes never change meaning; clients (and the JavaScript API) match on them, people read the
//! sentence.

use std::fmt;

macro_rules! codes {
    ($($variant:ident => $code:literal, $doc:literal;)*) => {
        /// Why the server refused a call.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum ErrorCode {
            $(#[doc = $doc] $variant,)*
        }

        impl ErrorCode {
            /// The stable wire spelling.
            pub fn as_str(self) -> &'static str {
                match self { $(ErrorCode::$variant => $code,)* }
            }

            /// Parses the wire spelling.
            pub fn parse(s: &str) -> Option<Self> {
                match s { $($code => Some(ErrorCode::$variant),)* _ => None }
            }
        }
    };
}

codes! {
    BadRequest => "bad_request", "The request is malformed (wrong lengths, bad names, invalid values).";
    Unsupported => "unsupported", "The client's protocol version is not served.";
    UserExists => "user_exists", "The name is already registered (or cooling off after deletion).";
    NoSuchUser => "no_such_user", "No user of that name.";
    NoSuchDevice => "no_such_device", "No such device for this user.";
    TooManyDevices => "too_many_devices", "The identity already has the maximum number of devices.";
    BadSignature => "bad_signature", "A signature did not verify.";
    LoginFailed => "login_failed", "The challenge is unknown, expired or the signature is wrong.";
    NoSuchChannel => "no_such_channel", "No channel with that id.";
    ChannelExists => "channel_exists", "A channel with that id already exists.";
    NotMember => "not_member", "The caller is not a member of the channel.";
    StaleEpoch => "stale_epoch", "The commit was made for an epoch that is no longer current.";
    BadMlsMessage => "bad_mls_message", "The bytes are not the MLS message the call needs: not MLS, another group or epoch, or the wrong kind.";
    TooLarge => "too_large", "A message, chunk or blob exceeds the server's limit.";
    KeyPackageReused => "key_package_reused", "A key package that was already claimed was uploaded again.";
    NoKeyPackage => "no_key_package", "A device of the user has no key package left.";
    NoSuchBlob => "no_such_blob", "No blob with that id (or it expired).";
    BadChunk => "bad_chunk", "A chunk is out of order, of the wrong size or beyond the end.";
    RateLimited => "rate_limited", "Too many requests; the sentence ends with `retry after N ms`.";
    QuotaExceeded => "quota_exceeded", "A quota is used up: a queue, file bytes, key packages held, subscriptions or calls in flight.";
    NoSuchLink => "no_such_link", "No open link slot of that name: a wrong, expired or used link code.";
    DeviceRevoked => "device_revoked", "The calling device was revoked or its account deleted; its session is over.";
    NotAllowed => "not_allowed", "The other person's settings do not allow this, e.g. adding them to a conversation.";
    Internal => "internal", "The server failed; the request may be retried.";
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An error as a client sees it: a stable code and the server's sentence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteError {
    /// The code, or `None` when the exception carried none (e.g. a transport failure).
    pub code: Option<ErrorCode>,
    /// The human sentence.
    pub message: String,
}

impl RemoteError {
    /// Builds the exception text a server sends.
    pub fn wire_text(code: ErrorCode, message: &str) -> String {
        format!("{}: {}", code.as_str(), message)
    }

    /// Reads an exception description such as `"remote exception: not_member: you are not…"`.
    pub fn from_description(desc: &str) -> Self {
        let mut rest = desc.trim();
        // capnp-rpc prefixes exceptions that crossed the wire.
        for prefix in ["remote exception: ", "Failed: "] {
            if let Some(r) = rest.strip_prefix(prefix) {
                rest = r;
            }
        }
        if let Some((code, message)) = rest.split_once(": ") {
            if let Some(code) = ErrorCode::parse(code) {
                return RemoteError { code: Some(code), message: message.to_string() };
            }
        }
        RemoteError { code: None, message: rest.to_string() }
    }
}

impl RemoteError {
    /// For `rate_limited`: how long to wait before trying again, read from the sentence's
    /// `retry after N ms`.
    pub fn retry_after_ms(&self) -> Option<u64> {
        let (_, rest) = self.message.rsplit_once("retry after ")?;
        rest.strip_suffix(" ms")?.parse().ok()
    }
}

/// The sentence of a `rate_limited` refusal: what was limited, and when to try again.
pub fn rate_limited_sentence(what: &str, retry_after_ms: u64) -> String {
    format!("too many {what}; retry after {retry_after_ms} ms")
}

impl fmt::Display for RemoteError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.code {
            Some(c) => write!(f, "{}: {}", c, self.message),
            None => f.write_str(&self.message),
        }
    }
}

impl std::error::Error for RemoteError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_through_exception_text() {
        let text = RemoteError::wire_text(ErrorCode::StaleEpoch, "the conversation is at epoch 4");
        let e = RemoteError::from_description(&format!("remote exception: {text}"));
        assert_eq!(e.code, Some(ErrorCode::StaleEpoch));
        assert_eq!(e.message, "the conversation is at epoch 4");
        let e = RemoteError::from_description("connection reset");
        assert_eq!(e.code, None);
        assert_eq!(e.retry_after_ms(), None);
        let text = RemoteError::wire_text(ErrorCode::RateLimited, &rate_limited_sentence("logins", 1250));
        let e = RemoteError::from_description(&format!("remote exception: {text}"));
        assert_eq!((e.code, e.retry_after_ms()), (Some(ErrorCode::RateLimited), Some(1250)));
        assert_eq!(ErrorCode::parse("quota_exceeded"), Some(ErrorCode::QuotaExceeded));
        assert_eq!(ErrorCode::parse("device_revoked"), Some(ErrorCode::DeviceRevoked));
        assert_eq!(ErrorCode::parse("not_allowed"), Some(ErrorCode::NotAllowed));
    }
}
