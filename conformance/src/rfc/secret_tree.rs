//! The secret tree and its hash ratchets (RFC 9420 §9), and the sender-data
//! key derivation (§6.3.2).

use crate::{error::CheckError, rfc::crypto::Suite, rfc::tree_math};

/// Which of a leaf's two ratchets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum RatchetKind {
    Handshake,
    Application,
}

impl RatchetKind {
    fn label(self) -> &'static [u8] {
        match self {
            Self::Handshake => b"handshake",
            Self::Application => b"application",
        }
    }
}

/// A key and nonce for one generation.
pub(crate) struct KeyNonce {
    pub(crate) key: Vec<u8>,
    pub(crate) nonce: Vec<u8>,
}

/// A secret tree over `n_leaves` members rooted at `encryption_secret`.
pub(crate) struct SecretTree<'s> {
    suite: &'s Suite,
    encryption_secret: Vec<u8>,
    n_leaves: u32,
}

impl<'s> SecretTree<'s> {
    pub(crate) fn new(suite: &'s Suite, encryption_secret: &[u8], members: u32) -> Self {
        Self {
            suite,
            encryption_secret: encryption_secret.to_vec(),
            n_leaves: members.max(1).next_power_of_two(),
        }
    }

    /// tree_node_[leaf]_secret, walking down from the root.
    fn leaf_secret(&self, leaf: u32) -> Result<Vec<u8>, CheckError> {
        if leaf >= self.n_leaves {
            return Err(CheckError::Protocol("leaf index outside the secret tree"));
        }
        let target = tree_math::leaf_to_node(leaf);
        let mut node = tree_math::root(self.n_leaves);
        let mut secret = self.encryption_secret.clone();
        while node != target {
            let (l, r) = tree_math::left(node)
                .zip(tree_math::right(node))
                .ok_or(CheckError::Protocol("secret tree walk"))?;
            let (next, label): (u32, &[u8]) = if tree_math::is_in_subtree(l, target) {
                (l, b"left")
            } else {
                (r, b"right")
            };
            secret = self
                .suite
                .expand_with_label(&secret, b"tree", label, self.suite.nh())?;
            node = next;
        }
        Ok(secret)
    }

    /// The key and nonce of `leaf`'s `kind` ratchet at `generation`.
    pub(crate) fn key_nonce(
        &self,
        leaf: u32,
        kind: RatchetKind,
        generation: u32,
    ) -> Result<KeyNonce, CheckError> {
        let s = self.suite;
        let mut secret =
            s.expand_with_label(&self.leaf_secret(leaf)?, kind.label(), &[], s.nh())?;
        for g in 0..generation {
            secret = s.derive_tree_secret(&secret, b"secret", g, s.nh())?;
        }
        Ok(KeyNonce {
            key: s.derive_tree_secret(&secret, b"key", generation, s.nk())?,
            nonce: s.derive_tree_secret(&secret, b"nonce", generation, s.nn())?,
        })
    }
}

/// sender_data_key and sender_data_nonce for a ciphertext (RFC 9420 §6.3.2).
pub(crate) fn sender_data_key_nonce(
    suite: &Suite,
    sender_data_secret: &[u8],
    ciphertext: &[u8],
) -> Result<KeyNonce, CheckError> {
    let sample = &ciphertext[..ciphertext.len().min(suite.nh())];
    Ok(KeyNonce {
        key: suite.expand_with_label(sender_data_secret, b"key", sample, suite.nk())?,
        nonce: suite.expand_with_label(sender_data_secret, b"nonce", sample, suite.nn())?,
    })
}
