//! Storage errors: refusals the caller can explain to a client, and backend failures.

/// Why a storage call failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    /// The name is registered, or reserved after a deletion.
    #[error("that name is taken")]
    UserExists,
    /// No such user.
    #[error("no such user")]
    NoSuchUser,
    /// No such device.
    #[error("no such device")]
    NoSuchDevice,
    /// The device id is already registered for this user.
    #[error("that device is already registered")]
    DeviceExists,
    /// The identity has the maximum number of devices.
    #[error("the identity already has the maximum number of devices")]
    TooManyDevices,
    /// A key package that was claimed before was uploaded again.
    #[error("a key package was already used")]
    KeyPackageReused,
    /// No such channel.
    #[error("no such conversation")]
    NoSuchChannel,
    /// The channel id is taken by another creator.
    #[error("that conversation id is taken")]
    ChannelExists,
    /// The device is not a member of the channel.
    #[error("you are not a member of this conversation")]
    NotMember,
    /// The commit's epoch is not the channel's current epoch.
    #[error("the conversation has moved on to epoch {current}")]
    StaleEpoch {
        /// The channel's current epoch.
        current: u64,
    },
    /// An application message made in an epoch the channel has not reached.
    #[error("the message was made in epoch {sent}, which the conversation has not reached (it is at epoch {current})")]
    FutureEpoch {
        /// The message's epoch.
        sent: u64,
        /// The channel's current epoch.
        current: u64,
    },
    /// The calling device was revoked or its account deleted.
    #[error("this device was revoked or its account deleted; sign in on a device that is still registered")]
    Revoked,
    /// An account or device quota is used up.
    #[error("{0}")]
    QuotaExceeded(String),
    /// No such blob (or it expired).
    #[error("no such file")]
    NoSuchBlob,
    /// A chunk is out of order, of the wrong size, or differs from the stored one.
    #[error("{0}")]
    BadChunk(String),
    /// No open link slot of that name for the caller: absent, expired, already used, or
    /// another account's.
    #[error("no such link: the link code is wrong, expired or already used")]
    NoSuchLink,
    /// The link slot name is taken by an open slot.
    #[error("that link slot is already in use; make a new link code")]
    LinkExists,
    /// The link slot's request was answered already.
    #[error("this link request was already answered")]
    LinkAnswered,
    /// A user cannot block themselves.
    #[error("you cannot block yourself")]
    BlockSelf,
    /// Another account's choice refuses the request (a commit adding a device of an account
    /// that blocked the committer); the sentence names whom, never why.
    #[error("{0}")]
    NotAllowed(String),
    /// The storage URL or options are wrong.
    #[error("{0}")]
    Config(String),
    /// The database failed. The text names the operation, never the data.
    #[error("database error: {0}")]
    Backend(String),
}
