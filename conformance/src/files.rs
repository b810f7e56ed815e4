//! The vector files, their names, and their bytes as embedded at build time.

/// One file of the IETF MLS test-vector set.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum VectorFile {
    /// `tree-math.json`
    TreeMath,
    /// `crypto-basics.json`
    CryptoBasics,
    /// `secret-tree.json`
    SecretTree,
    /// `message-protection.json`
    MessageProtection,
    /// `key-schedule.json`
    KeySchedule,
    /// `psk_secret.json`
    PskSecret,
    /// `transcript-hashes.json`
    TranscriptHashes,
    /// `welcome.json`
    Welcome,
    /// `tree-operations.json`
    TreeOperations,
    /// `tree-validation.json`
    TreeValidation,
    /// `treekem.json`
    TreeKem,
    /// `messages.json`
    Messages,
    /// `deserialization.json`
    Deserialization,
    /// `passive-client-welcome.json`
    PassiveClientWelcome,
    /// `passive-client-handling-commit.json`
    PassiveClientHandlingCommit,
    /// `passive-client-random.json`
    PassiveClientRandom,
}

impl VectorFile {
    /// Every file, in report order.
    pub const ALL: [VectorFile; 16] = [
        Self::TreeMath,
        Self::CryptoBasics,
        Self::SecretTree,
        Self::MessageProtection,
        Self::KeySchedule,
        Self::PskSecret,
        Self::TranscriptHashes,
        Self::Welcome,
        Self::TreeOperations,
        Self::TreeValidation,
        Self::TreeKem,
        Self::Messages,
        Self::Deserialization,
        Self::PassiveClientWelcome,
        Self::PassiveClientHandlingCommit,
        Self::PassiveClientRandom,
    ];

    /// The file name in the upstream `test-vectors/` folder.
    pub fn name(self) -> &'static str {
        match self {
            Self::TreeMath => "tree-math.json",
            Self::CryptoBasics => "crypto-basics.json",
            Self::SecretTree => "secret-tree.json",
            Self::MessageProtection => "message-protection.json",
            Self::KeySchedule => "key-schedule.json",
            Self::PskSecret => "psk_secret.json",
            Self::TranscriptHashes => "transcript-hashes.json",
            Self::Welcome => "welcome.json",
            Self::TreeOperations => "tree-operations.json",
            Self::TreeValidation => "tree-validation.json",
            Self::TreeKem => "treekem.json",
            Self::Messages => "messages.json",
            Self::Deserialization => "deserialization.json",
            Self::PassiveClientWelcome => "passive-client-welcome.json",
            Self::PassiveClientHandlingCommit => "passive-client-handling-commit.json",
            Self::PassiveClientRandom => "passive-client-random.json",
        }
    }

    fn position(self) -> usize {
        Self::ALL.iter().position(|f| *f == self).unwrap_or(0)
    }
}

/// The bytes of every vector file plus the `SHA256SUMS` file that pins them.
#[derive(Clone, Copy, Debug)]
pub struct VectorFiles<'a> {
    /// The contents of `SHA256SUMS` (`sha256sum` format).
    pub sha256sums: &'a [u8],
    /// File contents, in the order of [`VectorFile::ALL`].
    pub contents: [&'a [u8]; 16],
}

impl<'a> VectorFiles<'a> {
    /// The bytes of one file.
    pub fn get(&self, file: VectorFile) -> &'a [u8] {
        self.contents[file.position()]
    }

    /// The same set with one file's bytes replaced (for tests of the pinning).
    pub fn with(mut self, file: VectorFile, bytes: &'a [u8]) -> Self {
        self.contents[file.position()] = bytes;
        self
    }
}

macro_rules! vector_bytes {
    ($name:literal) => {
        include_bytes!(concat!("../vectors/mls/", $name)).as_slice()
    };
}

/// The vector files compiled into this crate, read from `conformance/vectors/mls/`
/// (copied into the repository with their provenance in `conformance/vectors/README.md`).
pub fn embedded() -> VectorFiles<'static> {
    VectorFiles {
        sha256sums: vector_bytes!("SHA256SUMS"),
        contents: [
            vector_bytes!("tree-math.json"),
            vector_bytes!("crypto-basics.json"),
            vector_bytes!("secret-tree.json"),
            vector_bytes!("message-protection.json"),
            vector_bytes!("key-schedule.json"),
            vector_bytes!("psk_secret.json"),
            vector_bytes!("transcript-hashes.json"),
            vector_bytes!("welcome.json"),
            vector_bytes!("tree-operations.json"),
            vector_bytes!("tree-validation.json"),
            vector_bytes!("treekem.json"),
            vector_bytes!("messages.json"),
            vector_bytes!("deserialization.json"),
            vector_bytes!("passive-client-welcome.json"),
            vector_bytes!("passive-client-handling-commit.json"),
            vector_bytes!("passive-client-random.json"),
        ],
    }
}
