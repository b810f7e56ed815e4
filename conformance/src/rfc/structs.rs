//! Decoders for the RFC 9420 structures the first-principles checks need:
//! leaf and parent nodes, key packages, proposals, commits, update paths and
//! the group context.
//!
//! Structures that are only carried along are kept as the exact bytes they
//! were decoded from, so re-encoding reproduces the input.

use crate::{
    error::CheckError,
    rfc::codec::{Reader, Writer},
};

/// `LeafNodeSource`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum LeafSource {
    KeyPackage,
    Update,
    Commit { parent_hash: Vec<u8> },
}

/// A decoded `LeafNode` (RFC 9420 §7.2).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct LeafNode {
    /// The whole encoding.
    pub(crate) bytes: Vec<u8>,
    /// Length of the prefix covered by the signature (everything but `signature`).
    pub(crate) tbs_len: usize,
    pub(crate) encryption_key: Vec<u8>,
    pub(crate) signature_key: Vec<u8>,
    /// The encoded credential and capabilities, carried along unchanged.
    pub(crate) credential_and_capabilities: Vec<u8>,
    pub(crate) source: LeafSource,
    /// The encoded `extensions<V>`, prefix included.
    pub(crate) extensions: Vec<u8>,
    pub(crate) signature: Vec<u8>,
}

impl LeafNode {
    pub(crate) fn read(r: &mut Reader<'_>) -> Result<Self, CheckError> {
        let start = r.pos();
        let encryption_key = r.vec()?.to_vec();
        let signature_key = r.vec()?.to_vec();
        let (credential_and_capabilities, ()) = r.span(|r| {
            skip_credential(r)?;
            // Capabilities: versions, cipher_suites, extensions, proposals, credentials.
            for _ in 0..5 {
                r.vec()?;
            }
            Ok(())
        })?;
        let credential_and_capabilities = credential_and_capabilities.to_vec();
        let source = match r.u8()? {
            1 => {
                r.u64()?;
                r.u64()?;
                LeafSource::KeyPackage
            }
            2 => LeafSource::Update,
            3 => LeafSource::Commit {
                parent_hash: r.vec()?.to_vec(),
            },
            _ => return Err(CheckError::Decode("LeafNode", "unknown leaf_node_source")),
        };
        let extensions = r.span(|r| r.vec().map(|_| ()))?.0.to_vec();
        let tbs_len = r.pos() - start;
        let signature = r.vec()?.to_vec();
        let bytes = r.buffer()[start..r.pos()].to_vec();
        Ok(Self {
            bytes,
            tbs_len,
            encryption_key,
            signature_key,
            credential_and_capabilities,
            source,
            extensions,
            signature,
        })
    }

    /// A copy of this leaf with a new encryption key and a commit source
    /// carrying `parent_hash`, signed with `signature_priv` for `leaf_index`
    /// in `group_id` (how a committer rebuilds its leaf, RFC 9420 §7.5).
    pub(crate) fn recommit(
        &self,
        suite: &crate::rfc::crypto::Suite,
        encryption_key: &[u8],
        parent_hash: &[u8],
        signature_priv: &[u8],
        group_id: &[u8],
        leaf_index: u32,
    ) -> Result<Self, CheckError> {
        let content = Writer::new()
            .vec(encryption_key)?
            .vec(&self.signature_key)?
            .raw(&self.credential_and_capabilities)
            .u8(3)
            .vec(parent_hash)?
            .raw(&self.extensions)
            .finish();
        let mut unsigned = Self {
            bytes: content.clone(),
            tbs_len: content.len(),
            encryption_key: encryption_key.to_vec(),
            signature_key: self.signature_key.clone(),
            credential_and_capabilities: self.credential_and_capabilities.clone(),
            source: LeafSource::Commit {
                parent_hash: parent_hash.to_vec(),
            },
            extensions: self.extensions.clone(),
            signature: Vec::new(),
        };
        let tbs = unsigned.tbs(group_id, leaf_index)?;
        let signature = suite.sign_with_label(signature_priv, b"LeafNodeTBS", &tbs)?;
        let mut w = Writer::new();
        w.raw(&content).vec(&signature)?;
        unsigned.bytes = w.finish();
        unsigned.signature = signature;
        Ok(unsigned)
    }

    /// `LeafNodeTBS` (RFC 9420 §7.2): the content plus, for update and commit
    /// sources, the group id and leaf index.
    pub(crate) fn tbs(&self, group_id: &[u8], leaf_index: u32) -> Result<Vec<u8>, CheckError> {
        let mut w = Writer::new();
        w.raw(&self.bytes[..self.tbs_len]);
        match self.source {
            LeafSource::KeyPackage => {}
            LeafSource::Update | LeafSource::Commit { .. } => {
                w.vec(group_id)?.u32(leaf_index);
            }
        }
        Ok(w.finish())
    }

    pub(crate) fn parent_hash(&self) -> Option<&[u8]> {
        match &self.source {
            LeafSource::Commit { parent_hash } => Some(parent_hash),
            _ => None,
        }
    }
}

/// `Credential`: basic (1) or x509 (2).
fn skip_credential(r: &mut Reader<'_>) -> Result<(), CheckError> {
    match r.u16()? {
        1 => {
            r.vec()?;
        }
        2 => {
            r.vec()?;
        }
        _ => return Err(CheckError::Decode("Credential", "unknown credential type")),
    }
    Ok(())
}

/// A decoded `ParentNode` (RFC 9420 §7.1).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ParentNode {
    pub(crate) encryption_key: Vec<u8>,
    pub(crate) parent_hash: Vec<u8>,
    pub(crate) unmerged_leaves: Vec<u32>,
}

impl ParentNode {
    pub(crate) fn read(r: &mut Reader<'_>) -> Result<Self, CheckError> {
        let encryption_key = r.vec()?.to_vec();
        let parent_hash = r.vec()?.to_vec();
        let unmerged_leaves = r.vec_of(|r| r.u32())?;
        Ok(Self {
            encryption_key,
            parent_hash,
            unmerged_leaves,
        })
    }

    pub(crate) fn write(&self, w: &mut Writer) -> Result<(), CheckError> {
        w.vec(&self.encryption_key)?.vec(&self.parent_hash)?;
        let mut leaves = Writer::new();
        for l in &self.unmerged_leaves {
            leaves.u32(*l);
        }
        w.vec(&leaves.finish())?;
        Ok(())
    }
}

/// A decoded `KeyPackage` (RFC 9420 §10).
#[derive(Clone, Debug)]
pub(crate) struct KeyPackage {
    pub(crate) bytes: Vec<u8>,
    pub(crate) cipher_suite: u16,
    pub(crate) init_key: Vec<u8>,
    pub(crate) leaf_node: LeafNode,
}

impl KeyPackage {
    pub(crate) fn read(r: &mut Reader<'_>) -> Result<Self, CheckError> {
        let start = r.pos();
        if r.u16()? != 1 {
            return Err(CheckError::Decode("KeyPackage", "version is not mls10"));
        }
        let cipher_suite = r.u16()?;
        let init_key = r.vec()?.to_vec();
        let leaf_node = LeafNode::read(r)?;
        r.vec()?; // extensions
        r.vec()?; // signature
        let bytes = r.buffer()[start..r.pos()].to_vec();
        Ok(Self {
            bytes,
            cipher_suite,
            init_key,
            leaf_node,
        })
    }
}

/// `PreSharedKeyID` (RFC 9420 §8.4).
pub(crate) fn skip_psk_id(r: &mut Reader<'_>) -> Result<(), CheckError> {
    match r.u8()? {
        1 => {
            r.vec()?;
        }
        2 => {
            r.u8()?;
            r.vec()?;
            r.u64()?;
        }
        _ => return Err(CheckError::Decode("PreSharedKeyID", "unknown psktype")),
    }
    r.vec()?; // psk_nonce
    Ok(())
}

/// A proposal, decoded far enough to apply it to a tree.
#[derive(Clone, Debug)]
pub(crate) enum Proposal {
    Add(KeyPackage),
    Update(LeafNode),
    Remove(u32),
    /// Any other proposal type (PSK, ReInit, ExternalInit,
    /// GroupContextExtensions): skipped over, not needed by the checks.
    Other,
}

impl Proposal {
    /// Decodes a `Proposal` (RFC 9420 §12.1).
    pub(crate) fn read(r: &mut Reader<'_>) -> Result<Self, CheckError> {
        let ty = r.u16()?;
        Ok(match ty {
            1 => Self::Add(KeyPackage::read(r)?),
            2 => Self::Update(LeafNode::read(r)?),
            3 => Self::Remove(r.u32()?),
            4 => {
                skip_psk_id(r)?;
                Self::Other
            }
            5 => {
                r.vec()?; // group_id
                r.u16()?; // version
                r.u16()?; // cipher_suite
                r.vec()?; // extensions
                Self::Other
            }
            6 => {
                r.vec()?; // kem_output
                Self::Other
            }
            7 => {
                r.vec()?; // extensions
                Self::Other
            }
            _ => return Err(CheckError::Decode("Proposal", "unknown proposal type")),
        })
    }
}

/// `UpdatePathNode { HPKEPublicKey encryption_key; HPKECiphertext encrypted_path_secret<V>; }`
#[derive(Clone, Debug)]
pub(crate) struct UpdatePathNode {
    pub(crate) encryption_key: Vec<u8>,
    /// `(kem_output, ciphertext)` per resolution entry.
    pub(crate) encrypted_path_secret: Vec<(Vec<u8>, Vec<u8>)>,
}

/// `UpdatePath { LeafNode leaf_node; UpdatePathNode nodes<V>; }` (RFC 9420 §7.6).
#[derive(Clone, Debug)]
pub(crate) struct UpdatePath {
    pub(crate) leaf_node: LeafNode,
    pub(crate) nodes: Vec<UpdatePathNode>,
}

impl UpdatePath {
    pub(crate) fn read(r: &mut Reader<'_>) -> Result<Self, CheckError> {
        let leaf_node = LeafNode::read(r)?;
        let nodes = r.vec_of(|r| {
            let encryption_key = r.vec()?.to_vec();
            let encrypted_path_secret = r.vec_of(|r| Ok((r.vec()?.to_vec(), r.vec()?.to_vec())))?;
            Ok(UpdatePathNode {
                encryption_key,
                encrypted_path_secret,
            })
        })?;
        Ok(Self { leaf_node, nodes })
    }

    pub(crate) fn write(&self) -> Result<Vec<u8>, CheckError> {
        let mut nodes = Writer::new();
        for n in &self.nodes {
            let mut cts = Writer::new();
            for (kem, ct) in &n.encrypted_path_secret {
                cts.vec(kem)?.vec(ct)?;
            }
            nodes.vec(&n.encryption_key)?.vec(&cts.finish())?;
        }
        Ok(Writer::new()
            .raw(&self.leaf_node.bytes)
            .vec(&nodes.finish())?
            .finish())
    }
}

/// Skips a `Commit { ProposalOrRef proposals<V>; optional<UpdatePath> path; }`.
pub(crate) fn skip_commit(r: &mut Reader<'_>) -> Result<(), CheckError> {
    r.vec_of(|r| {
        match r.u8()? {
            1 => {
                Proposal::read(r)?;
            }
            2 => {
                r.vec()?;
            }
            _ => return Err(CheckError::Decode("ProposalOrRef", "unknown type")),
        }
        Ok(())
    })?;
    if r.present()? {
        UpdatePath::read(r)?;
    }
    Ok(())
}

/// `GroupContext` (RFC 9420 §8.1).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct GroupContext {
    pub(crate) cipher_suite: u16,
    pub(crate) group_id: Vec<u8>,
    pub(crate) epoch: u64,
    pub(crate) tree_hash: Vec<u8>,
    pub(crate) confirmed_transcript_hash: Vec<u8>,
    /// The encoded `extensions<V>` content (without its length prefix).
    pub(crate) extensions: Vec<u8>,
}

impl GroupContext {
    pub(crate) fn read(r: &mut Reader<'_>) -> Result<Self, CheckError> {
        if r.u16()? != 1 {
            return Err(CheckError::Decode("GroupContext", "version is not mls10"));
        }
        Ok(Self {
            cipher_suite: r.u16()?,
            group_id: r.vec()?.to_vec(),
            epoch: r.u64()?,
            tree_hash: r.vec()?.to_vec(),
            confirmed_transcript_hash: r.vec()?.to_vec(),
            extensions: r.vec()?.to_vec(),
        })
    }

    pub(crate) fn encode(&self) -> Result<Vec<u8>, CheckError> {
        Ok(Writer::new()
            .u16(1)
            .u16(self.cipher_suite)
            .vec(&self.group_id)?
            .u64(self.epoch)
            .vec(&self.tree_hash)?
            .vec(&self.confirmed_transcript_hash)?
            .vec(&self.extensions)?
            .finish())
    }
}
