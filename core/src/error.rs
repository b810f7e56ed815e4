//! Errors of the engine. None of them carries key material or message content.

use crate::tlv::CodecError;

/// Why an engine call failed. Each variant has a stable [`EngineError::code`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EngineError {
    /// Stored state could not be read back.
    #[error("stored state is damaged ({0})")]
    Corrupt(&'static str),
    /// A credential is not one this system issues.
    #[error("a member credential is not of the form user#device")]
    BadCredential,
    /// No conversation with that id.
    #[error("no such conversation")]
    NoSuchConversation,
    /// This device is no longer a member of the conversation.
    #[error("you are no longer a member of this conversation")]
    NotActive,
    /// The text is longer than the engine accepts.
    #[error("the message is too long ({len} bytes; at most {max})")]
    TooLong {
        /// Its length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The message is empty.
    #[error("the message is empty")]
    Empty,
    /// A key package or device does not match the signed device records of its user.
    #[error("{0}")]
    Unverified(String),
    /// A member's leaf (in a Welcome's tree, or added or updated by a commit) does not carry
    /// the device key the directory registers for that device. The Welcome or commit was
    /// refused and nothing changed.
    #[error("a member's key does not match the directory; the change was refused")]
    UntrustedMember {
        /// The user the leaf claims to be.
        user: qpq_types::UserId,
    },
    /// The directory shows another identity key for this device's own user than its own.
    #[error("the directory shows another identity key for your own account; nothing was changed")]
    IdentityKeyChanged {
        /// The user whose identity key changed.
        user: qpq_types::UserId,
    },
    /// A contact's identity key changed after the person verified their safety number:
    /// nothing is sent to conversations with them until the new number is verified.
    #[error("{user}'s safety number has changed since you verified it; compare the new number (Safety number) before writing to them")]
    SafetyNumberChanged {
        /// The contact.
        user: qpq_types::UserId,
    },
    /// The users to add or remove are not valid for this conversation.
    #[error("{0}")]
    BadMembers(String),
    /// Only the conversation's admins may do this (group roles).
    #[error("only the conversation's admins may {0}")]
    NotAdmin(&'static str),
    /// A received message is not valid for this engine.
    #[error("invalid message: {0}")]
    Invalid(String),
    /// No message with that id in this conversation (or it has disappeared or was deleted).
    #[error("no such message in this conversation")]
    NoSuchMessage,
    /// Only the author of a message may edit or delete it.
    #[error("you can only change your own messages")]
    NotYours,
    /// A value outside what the engine accepts (the sentence says which).
    #[error("{0}")]
    BadValue(String),
    /// A received message was valid but had no effect, for the reason given (for example an
    /// edit of someone else's message). Nothing was changed.
    #[error("ignored: {0}")]
    Ignored(String),
    /// The application message codec failed.
    #[error(transparent)]
    Codec(#[from] CodecError),
    /// openmls refused an operation or message.
    #[error("MLS: {0}")]
    Mls(String),
}

impl EngineError {
    /// A stable code for the JavaScript API and logs.
    pub fn code(&self) -> &'static str {
        match self {
            EngineError::Corrupt(_) => "corrupt_state",
            EngineError::BadCredential => "bad_credential",
            EngineError::NoSuchConversation => "no_such_conversation",
            EngineError::NotActive => "not_member",
            EngineError::TooLong { .. } => "too_long",
            EngineError::Empty => "empty",
            EngineError::Unverified(_) => "unverified",
            EngineError::UntrustedMember { .. } => "untrusted_member",
            EngineError::IdentityKeyChanged { .. } => "identity_key_changed",
            EngineError::SafetyNumberChanged { .. } => "safety_number_changed",
            EngineError::BadMembers(_) => "bad_members",
            EngineError::NotAdmin(_) => "not_admin",
            EngineError::Invalid(_) => "invalid_message",
            EngineError::NoSuchMessage => "no_such_message",
            EngineError::NotYours => "not_yours",
            EngineError::BadValue(_) => "bad_value",
            EngineError::Ignored(_) => "ignored",
            EngineError::Codec(_) => "codec",
            EngineError::Mls(_) => "mls",
        }
    }

    pub(crate) fn mls(e: impl std::fmt::Debug) -> Self {
        // openmls error Debug output names the failing check; it contains no secrets.
        let text = format!("{e:?}");
        EngineError::Mls(text.chars().take(200).collect())
    }
}
