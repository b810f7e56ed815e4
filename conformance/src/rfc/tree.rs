//! The ratchet tree (RFC 9420 §4, §7): encoding, resolution, tree hash,
//! parent hash, leaf signatures and the tree changes made by Add, Update and
//! Remove proposals.
//!
//! openmls keeps its tree (`TreeSync`) crate-private, so the tree-operations,
//! tree-validation and TreeKEM vectors are checked against this
//! implementation written from the RFC.

use std::collections::BTreeSet;

use crate::{
    error::CheckError,
    rfc::{
        codec::{Reader, Writer},
        crypto::Suite,
        structs::{LeafNode, ParentNode},
        tree_math,
    },
};

/// A node of the ratchet tree.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Node {
    Leaf(LeafNode),
    Parent(ParentNode),
}

/// A ratchet tree, always stored at full width (a power of two leaves).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct RatchetTree {
    nodes: Vec<Option<Node>>,
}

impl RatchetTree {
    /// Decodes `optional<Node> ratchet_tree<V>` and extends it to full width.
    pub(crate) fn parse(bytes: &[u8]) -> Result<Self, CheckError> {
        let mut r = Reader::new(bytes);
        let mut nodes = r.vec_of(|r| {
            if !r.present()? {
                return Ok(None);
            }
            match r.u8()? {
                1 => Ok(Some(Node::Leaf(LeafNode::read(r)?))),
                2 => Ok(Some(Node::Parent(ParentNode::read(r)?))),
                _ => Err(CheckError::Decode("Node", "unknown node type")),
            }
        })?;
        r.finish("ratchet_tree")?;
        if nodes.is_empty() || nodes.len() % 2 == 0 {
            return Err(CheckError::Decode("ratchet_tree", "node count is not odd"));
        }
        if nodes.last().is_some_and(|n| n.is_none()) {
            return Err(CheckError::Decode("ratchet_tree", "last node is blank"));
        }
        for (i, n) in nodes.iter().enumerate() {
            let is_leaf = i % 2 == 0;
            match n {
                Some(Node::Leaf(_)) if !is_leaf => {
                    return Err(CheckError::Decode(
                        "ratchet_tree",
                        "leaf at parent position",
                    ))
                }
                Some(Node::Parent(_)) if is_leaf => {
                    return Err(CheckError::Decode(
                        "ratchet_tree",
                        "parent at leaf position",
                    ))
                }
                _ => {}
            }
        }
        let leaves = (nodes.len() as u32).div_ceil(2).next_power_of_two();
        nodes.resize(tree_math::node_width(leaves) as usize, None);
        Ok(Self { nodes })
    }

    /// Encodes the tree with trailing blank nodes omitted (RFC 9420 §12.4.3.3).
    pub(crate) fn serialize(&self) -> Result<Vec<u8>, CheckError> {
        let last = self
            .nodes
            .iter()
            .rposition(Option::is_some)
            .ok_or(CheckError::Encode("empty ratchet tree"))?;
        let mut body = Writer::new();
        for n in &self.nodes[..=last] {
            match n {
                None => {
                    body.u8(0);
                }
                Some(Node::Leaf(l)) => {
                    body.u8(1).u8(1).raw(&l.bytes);
                }
                Some(Node::Parent(p)) => {
                    body.u8(1).u8(2);
                    p.write(&mut body)?;
                }
            }
        }
        Ok(Writer::new().vec(&body.finish())?.finish())
    }

    pub(crate) fn n_leaves(&self) -> u32 {
        (self.nodes.len() as u32).div_ceil(2)
    }

    pub(crate) fn root(&self) -> u32 {
        tree_math::root(self.n_leaves())
    }

    pub(crate) fn node_count(&self) -> usize {
        self.nodes.len()
    }

    pub(crate) fn node(&self, i: u32) -> Option<&Node> {
        self.nodes.get(i as usize).and_then(Option::as_ref)
    }

    pub(crate) fn leaf(&self, leaf_index: u32) -> Option<&LeafNode> {
        match self.node(tree_math::leaf_to_node(leaf_index)) {
            Some(Node::Leaf(l)) => Some(l),
            _ => None,
        }
    }

    pub(crate) fn parent_node(&self, i: u32) -> Option<&ParentNode> {
        match self.node(i) {
            Some(Node::Parent(p)) => Some(p),
            _ => None,
        }
    }

    pub(crate) fn set(&mut self, i: u32, node: Option<Node>) -> Result<(), CheckError> {
        let slot = self
            .nodes
            .get_mut(i as usize)
            .ok_or(CheckError::Protocol("node index outside the tree"))?;
        *slot = node;
        Ok(())
    }

    /// The public key of a non-blank node.
    pub(crate) fn encryption_key(&self, i: u32) -> Option<&[u8]> {
        match self.node(i)? {
            Node::Leaf(l) => Some(&l.encryption_key),
            Node::Parent(p) => Some(&p.encryption_key),
        }
    }

    /// The resolution of node `i` (RFC 9420 §4.1.1), with the leaves in
    /// `excluded` treated as blank and dropped from unmerged-leaf lists.
    pub(crate) fn resolution(&self, i: u32, excluded: &BTreeSet<u32>) -> Vec<u32> {
        match self.node(i) {
            Some(Node::Leaf(_)) if !excluded.contains(&(i / 2)) => vec![i],
            Some(Node::Leaf(_)) => vec![],
            Some(Node::Parent(p)) => {
                let mut out = vec![i];
                out.extend(
                    p.unmerged_leaves
                        .iter()
                        .filter(|l| !excluded.contains(l))
                        .map(|l| tree_math::leaf_to_node(*l)),
                );
                out
            }
            None => match (tree_math::left(i), tree_math::right(i)) {
                (Some(l), Some(r)) => {
                    let mut out = self.resolution(l, excluded);
                    out.extend(self.resolution(r, excluded));
                    out
                }
                _ => vec![],
            },
        }
    }

    /// The tree hash of node `i` (RFC 9420 §7.8), with `excluded` leaves
    /// blanked and removed from unmerged-leaf lists.
    pub(crate) fn tree_hash(
        &self,
        suite: &Suite,
        i: u32,
        excluded: &BTreeSet<u32>,
    ) -> Result<Vec<u8>, CheckError> {
        let mut w = Writer::new();
        if i & 1 == 0 {
            // LeafNodeHashInput { uint32 leaf_index; optional<LeafNode> leaf_node; }
            w.u8(1).u32(i / 2);
            match self.node(i) {
                Some(Node::Leaf(l)) if !excluded.contains(&(i / 2)) => {
                    w.u8(1).raw(&l.bytes);
                }
                _ => {
                    w.u8(0);
                }
            }
        } else {
            let (l, r) = tree_math::left(i)
                .zip(tree_math::right(i))
                .ok_or(CheckError::Protocol("parent without children"))?;
            let left_hash = self.tree_hash(suite, l, excluded)?;
            let right_hash = self.tree_hash(suite, r, excluded)?;
            // ParentNodeHashInput { optional<ParentNode> parent_node; left_hash<V>; right_hash<V>; }
            w.u8(2);
            match self.parent_node(i) {
                Some(p) => {
                    let trimmed = ParentNode {
                        unmerged_leaves: p
                            .unmerged_leaves
                            .iter()
                            .copied()
                            .filter(|l| !excluded.contains(l))
                            .collect(),
                        ..p.clone()
                    };
                    w.u8(1);
                    trimmed.write(&mut w)?;
                }
                None => {
                    w.u8(0);
                }
            }
            w.vec(&left_hash)?.vec(&right_hash)?;
        }
        suite.hash(&w.finish())
    }

    pub(crate) fn root_hash(&self, suite: &Suite) -> Result<Vec<u8>, CheckError> {
        self.tree_hash(suite, self.root(), &BTreeSet::new())
    }

    /// Hash(ParentHashInput) for parent `p` (RFC 9420 §7.9).
    pub(crate) fn parent_hash_of(
        suite: &Suite,
        p: &ParentNode,
        original_sibling_tree_hash: &[u8],
    ) -> Result<Vec<u8>, CheckError> {
        let input = Writer::new()
            .vec(&p.encryption_key)?
            .vec(&p.parent_hash)?
            .vec(original_sibling_tree_hash)?
            .finish();
        suite.hash(&input)
    }

    fn node_parent_hash(&self, i: u32) -> Option<&[u8]> {
        match self.node(i)? {
            Node::Leaf(l) => l.parent_hash(),
            Node::Parent(p) => Some(&p.parent_hash),
        }
    }

    /// Checks that every non-blank parent node is parent-hash valid
    /// (RFC 9420 §7.9.2): some node in the resolution of one child, with
    /// the parent's unmerged leaves removed, carries the parent hash
    /// computed over the other child's original tree hash.
    pub(crate) fn verify_parent_hashes(&self, suite: &Suite) -> Result<(), CheckError> {
        for i in (1..self.nodes.len() as u32).step_by(2) {
            let Some(p) = self.parent_node(i) else {
                continue;
            };
            let (l, r) = tree_math::left(i)
                .zip(tree_math::right(i))
                .ok_or(CheckError::Protocol("parent without children"))?;
            let excluded: BTreeSet<u32> = p.unmerged_leaves.iter().copied().collect();
            let valid_towards = |child: u32, other: u32| -> Result<bool, CheckError> {
                let sibling_hash = self.tree_hash(suite, other, &excluded)?;
                let want = Self::parent_hash_of(suite, p, &sibling_hash)?;
                Ok(self
                    .resolution(child, &excluded)
                    .into_iter()
                    .any(|d| self.node_parent_hash(d) == Some(want.as_slice())))
            };
            if !(valid_towards(l, r)? || valid_towards(r, l)?) {
                return Err(CheckError::Verify("parent hash"));
            }
        }
        Ok(())
    }

    /// Verifies every leaf's signature with `group_id` as context.
    pub(crate) fn verify_leaf_signatures(
        &self,
        suite: &Suite,
        group_id: &[u8],
    ) -> Result<(), CheckError> {
        for leaf_index in 0..self.n_leaves() {
            if let Some(leaf) = self.leaf(leaf_index) {
                verify_leaf_signature(suite, leaf, group_id, leaf_index)?;
            }
        }
        Ok(())
    }

    /// Applies an Add (RFC 9420 §12.1.1): the leftmost blank leaf, or a new
    /// one after doubling the tree; the new leaf becomes unmerged at every
    /// non-blank parent on its direct path.
    pub(crate) fn add_leaf(&mut self, leaf: LeafNode) -> Result<u32, CheckError> {
        let index = match (0..self.n_leaves()).find(|l| self.leaf(*l).is_none()) {
            Some(l) => l,
            None => {
                let old = self.n_leaves();
                self.nodes
                    .resize(tree_math::node_width(old.saturating_mul(2)) as usize, None);
                old
            }
        };
        self.set(tree_math::leaf_to_node(index), Some(Node::Leaf(leaf)))?;
        for p in tree_math::direct_path(tree_math::leaf_to_node(index), self.n_leaves()) {
            if let Some(Some(Node::Parent(parent))) = self.nodes.get_mut(p as usize) {
                parent.unmerged_leaves.push(index);
            }
        }
        Ok(index)
    }

    /// Applies an Update (RFC 9420 §12.1.2): replace the leaf, blank its
    /// direct path.
    pub(crate) fn update_leaf(&mut self, index: u32, leaf: LeafNode) -> Result<(), CheckError> {
        if self.leaf(index).is_none() {
            return Err(CheckError::Protocol("update of a blank leaf"));
        }
        let node = tree_math::leaf_to_node(index);
        self.set(node, Some(Node::Leaf(leaf)))?;
        for p in tree_math::direct_path(node, self.n_leaves()) {
            self.set(p, None)?;
        }
        Ok(())
    }

    /// Applies a Remove (RFC 9420 §12.1.3): blank the leaf and its direct
    /// path, then truncate while the right half holds no leaf.
    pub(crate) fn remove_leaf(&mut self, index: u32) -> Result<(), CheckError> {
        if self.leaf(index).is_none() {
            return Err(CheckError::Protocol("removal of a blank leaf"));
        }
        let node = tree_math::leaf_to_node(index);
        self.set(node, None)?;
        for p in tree_math::direct_path(node, self.n_leaves()) {
            self.set(p, None)?;
        }
        self.truncate();
        Ok(())
    }

    fn truncate(&mut self) {
        while self.n_leaves() > 1 {
            let half = self.n_leaves() / 2;
            let right_has_leaf = (half..self.n_leaves()).any(|l| self.leaf(l).is_some());
            if right_has_leaf {
                break;
            }
            self.nodes.truncate(tree_math::node_width(half) as usize);
        }
    }

    /// The filtered direct path of a leaf (RFC 9420 §4.1.2): direct-path
    /// nodes whose copath child has a non-empty resolution.
    pub(crate) fn filtered_direct_path(&self, leaf_index: u32) -> Vec<u32> {
        let n = self.n_leaves();
        let mut out = Vec::new();
        let mut child = tree_math::leaf_to_node(leaf_index);
        while let Some(p) = tree_math::parent(child, n) {
            let copath = tree_math::sibling(child, n).unwrap_or(child);
            if !self.resolution(copath, &BTreeSet::new()).is_empty() {
                out.push(p);
            }
            child = p;
        }
        out
    }

    /// The child of `parent` that is not an ancestor of (or equal to) `node`.
    pub(crate) fn copath_child(parent: u32, node: u32) -> Result<u32, CheckError> {
        let (l, r) = tree_math::left(parent)
            .zip(tree_math::right(parent))
            .ok_or(CheckError::Protocol("leaf has no children"))?;
        Ok(if tree_math::is_in_subtree(l, node) {
            r
        } else {
            l
        })
    }
}

/// Verifies a leaf node's signature (RFC 9420 §7.2).
pub(crate) fn verify_leaf_signature(
    suite: &Suite,
    leaf: &LeafNode,
    group_id: &[u8],
    leaf_index: u32,
) -> Result<(), CheckError> {
    let tbs = leaf.tbs(group_id, leaf_index)?;
    suite
        .verify_with_label(&leaf.signature_key, b"LeafNodeTBS", &tbs, &leaf.signature)
        .map_err(|_| CheckError::Verify("leaf node signature"))
}
