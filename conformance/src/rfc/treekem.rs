//! TreeKEM (RFC 9420 §7.4–§7.6, §7.9): path secrets, merging an UpdatePath
//! into the tree with parent hashes, decrypting a path secret, and creating
//! a new UpdatePath.

use std::collections::{BTreeMap, BTreeSet};

use crate::{
    error::CheckError,
    rfc::{
        crypto::Suite,
        structs::{GroupContext, LeafNode, ParentNode, UpdatePath, UpdatePathNode},
        tree::{verify_leaf_signature, Node, RatchetTree},
        tree_math,
    },
};

/// The private keys one member holds: node index → HPKE private key.
pub(crate) struct PrivateState {
    pub(crate) leaf: u32,
    pub(crate) keys: BTreeMap<u32, Vec<u8>>,
}

/// node_priv/node_pub for a path secret.
pub(crate) fn node_key_pair(
    suite: &Suite,
    path_secret: &[u8],
) -> Result<(Vec<u8>, Vec<u8>), CheckError> {
    suite.derive_key_pair(&suite.derive_secret(path_secret, b"node")?)
}

/// Blanks the sender's direct path, installs the new parent nodes on its
/// filtered direct path with their parent hashes (computed from the root
/// down), and returns the tree and the parent hash the sender's new leaf
/// must carry.
fn install_path_nodes(
    suite: &Suite,
    tree: &RatchetTree,
    sender: u32,
    filtered: &[u32],
    keys: &[Vec<u8>],
) -> Result<(RatchetTree, Vec<u8>), CheckError> {
    if filtered.len() != keys.len() {
        return Err(CheckError::Protocol(
            "UpdatePath length differs from the filtered direct path",
        ));
    }
    let sender_node = tree_math::leaf_to_node(sender);
    let mut out = tree.clone();
    for p in tree_math::direct_path(sender_node, tree.n_leaves()) {
        out.set(p, None)?;
    }
    let mut parent_hash = Vec::new();
    for (i, key) in filtered.iter().zip(keys).rev() {
        let node = ParentNode {
            encryption_key: key.clone(),
            parent_hash: parent_hash.clone(),
            unmerged_leaves: Vec::new(),
        };
        let copath = RatchetTree::copath_child(*i, sender_node)?;
        let sibling_hash = out.tree_hash(suite, copath, &BTreeSet::new())?;
        parent_hash = RatchetTree::parent_hash_of(suite, &node, &sibling_hash)?;
        out.set(*i, Some(Node::Parent(node)))?;
    }
    Ok((out, parent_hash))
}

/// Merges a received UpdatePath from `sender` into `tree`, checking that it
/// is parent-hash valid and that the new leaf is signed for its position.
pub(crate) fn merge_update_path(
    suite: &Suite,
    tree: &RatchetTree,
    sender: u32,
    path: &UpdatePath,
    group_id: &[u8],
) -> Result<RatchetTree, CheckError> {
    if tree.leaf(sender).is_none() {
        return Err(CheckError::Protocol("UpdatePath from a blank leaf"));
    }
    let filtered = tree.filtered_direct_path(sender);
    let keys: Vec<Vec<u8>> = path
        .nodes
        .iter()
        .map(|n| n.encryption_key.clone())
        .collect();
    let (mut out, want_parent_hash) = install_path_nodes(suite, tree, sender, &filtered, &keys)?;
    if path.leaf_node.parent_hash() != Some(want_parent_hash.as_slice()) {
        return Err(CheckError::Verify("UpdatePath leaf parent hash"));
    }
    verify_leaf_signature(suite, &path.leaf_node, group_id, sender)?;
    out.set(
        tree_math::leaf_to_node(sender),
        Some(Node::Leaf(path.leaf_node.clone())),
    )?;
    Ok(out)
}

/// Decrypts the path secret meant for `me` from an UpdatePath and returns
/// it along with the commit secret, checking every public key above it.
pub(crate) fn decrypt_update_path(
    suite: &Suite,
    tree_before: &RatchetTree,
    sender: u32,
    path: &UpdatePath,
    me: &PrivateState,
    group_context: &[u8],
) -> Result<(Vec<u8>, Vec<u8>), CheckError> {
    let filtered = tree_before.filtered_direct_path(sender);
    if filtered.len() != path.nodes.len() {
        return Err(CheckError::Protocol(
            "UpdatePath length differs from the filtered direct path",
        ));
    }
    let my_node = tree_math::leaf_to_node(me.leaf);
    let sender_node = tree_math::leaf_to_node(sender);
    let k = filtered
        .iter()
        .position(|p| tree_math::is_in_subtree(*p, my_node))
        .ok_or(CheckError::Protocol(
            "receiver not below the sender's filtered direct path",
        ))?;
    let copath = RatchetTree::copath_child(filtered[k], sender_node)?;
    let resolution = tree_before.resolution(copath, &BTreeSet::new());
    let node = &path.nodes[k];
    if node.encrypted_path_secret.len() != resolution.len() {
        return Err(CheckError::Protocol(
            "ciphertext count differs from the resolution",
        ));
    }
    let (pos, private) = resolution
        .iter()
        .enumerate()
        .find_map(|(pos, n)| me.keys.get(n).map(|k| (pos, k)))
        .ok_or(CheckError::Protocol(
            "no private key in the copath resolution",
        ))?;
    let (kem, ct) = &node.encrypted_path_secret[pos];
    let first = suite.decrypt_with_label(private, b"UpdatePathNode", group_context, kem, ct)?;
    let mut secret = first.clone();
    for (i, n) in path.nodes.iter().enumerate().skip(k) {
        if i > k {
            secret = suite.derive_secret(&secret, b"path")?;
        }
        let (_, public) = node_key_pair(suite, &secret)?;
        if public != n.encryption_key {
            return Err(CheckError::Verify("UpdatePath public key from path secret"));
        }
    }
    let commit_secret = suite.derive_secret(&secret, b"path")?;
    Ok((first, commit_secret))
}

/// A freshly created UpdatePath and what its creator learns.
pub(crate) struct CreatedPath {
    pub(crate) path: UpdatePath,
    pub(crate) commit_secret: Vec<u8>,
}

/// Creates an UpdatePath for `sender` (RFC 9420 §7.5): fresh leaf key, fresh
/// path secrets, parent hashes, re-signed leaf, and path secrets encrypted
/// to the copath resolutions under the provisional group context.
pub(crate) fn create_update_path(
    suite: &Suite,
    tree: &RatchetTree,
    sender: u32,
    signature_priv: &[u8],
    context: &GroupContext,
) -> Result<CreatedPath, CheckError> {
    let old_leaf: &LeafNode = tree
        .leaf(sender)
        .ok_or(CheckError::Protocol("UpdatePath from a blank leaf"))?;
    let filtered = tree.filtered_direct_path(sender);
    if filtered.is_empty() {
        return Err(CheckError::Protocol("no filtered direct path to update"));
    }
    let mut secrets = vec![suite.random(suite.nh())?];
    for _ in 1..filtered.len() {
        let next = suite.derive_secret(secrets.last().map_or(&[][..], |s| s), b"path")?;
        secrets.push(next);
    }
    let keys: Vec<Vec<u8>> = secrets
        .iter()
        .map(|s| node_key_pair(suite, s).map(|(_, public)| public))
        .collect::<Result<_, _>>()?;
    let (mut new_tree, parent_hash) = install_path_nodes(suite, tree, sender, &filtered, &keys)?;
    let (_, leaf_public) = suite.derive_key_pair(&suite.random(suite.nh())?)?;
    let leaf = old_leaf.recommit(
        suite,
        &leaf_public,
        &parent_hash,
        signature_priv,
        &context.group_id,
        sender,
    )?;
    new_tree.set(
        tree_math::leaf_to_node(sender),
        Some(Node::Leaf(leaf.clone())),
    )?;
    let provisional = GroupContext {
        tree_hash: new_tree.root_hash(suite)?,
        ..context.clone()
    };
    let ctx_bytes = provisional.encode()?;
    let sender_node = tree_math::leaf_to_node(sender);
    let mut nodes = Vec::new();
    for ((p, secret), key) in filtered.iter().zip(&secrets).zip(&keys) {
        let copath = RatchetTree::copath_child(*p, sender_node)?;
        let mut encrypted = Vec::new();
        for r in tree.resolution(copath, &BTreeSet::new()) {
            let public = tree
                .encryption_key(r)
                .ok_or(CheckError::Protocol("blank node in a resolution"))?;
            encrypted.push(suite.encrypt_with_label(
                public,
                b"UpdatePathNode",
                &ctx_bytes,
                secret,
            )?);
        }
        nodes.push(UpdatePathNode {
            encryption_key: key.clone(),
            encrypted_path_secret: encrypted,
        });
    }
    let last = secrets
        .last()
        .ok_or(CheckError::Protocol("no path secrets"))?;
    Ok(CreatedPath {
        path: UpdatePath {
            leaf_node: leaf,
            nodes,
        },
        commit_secret: suite.derive_secret(last, b"path")?,
    })
}
