//! Array-based binary tree arithmetic (RFC 9420 §4.2 and Appendix C).
//!
//! Node indices run over a full tree of `n_leaves` leaves (a power of two):
//! leaves at even indices, parents at odd ones.

/// The level of a node: 0 for leaves, the number of trailing one bits.
pub(crate) fn level(x: u32) -> u32 {
    x.trailing_ones()
}

/// Number of nodes in a tree with `n_leaves` leaves.
pub(crate) fn node_width(n_leaves: u32) -> u32 {
    if n_leaves == 0 {
        0
    } else {
        (n_leaves - 1).saturating_mul(2).saturating_add(1)
    }
}

/// The root of a tree with `n_leaves` leaves.
pub(crate) fn root(n_leaves: u32) -> u32 {
    let w = node_width(n_leaves);
    if w == 0 {
        return 0;
    }
    (1u32 << (31 - w.leading_zeros())) - 1
}

/// Levels this arithmetic handles; indices at or above `2^30` (beyond any
/// tree the vectors or a real group describe) yield `None` instead of an
/// overflowing shift.
const MAX_LEVEL: u32 = 30;

/// The left child, or `None` for a leaf.
pub(crate) fn left(x: u32) -> Option<u32> {
    let k = level(x);
    (k > 0 && k <= MAX_LEVEL).then(|| x ^ (1 << (k - 1)))
}

/// The right child, or `None` for a leaf.
pub(crate) fn right(x: u32) -> Option<u32> {
    let k = level(x);
    (k > 0 && k <= MAX_LEVEL).then(|| x ^ (3 << (k - 1)))
}

/// The parent, or `None` for the root.
pub(crate) fn parent(x: u32, n_leaves: u32) -> Option<u32> {
    let k = level(x);
    if x == root(n_leaves) || k >= MAX_LEVEL {
        return None;
    }
    let b = (x >> (k + 1)) & 1;
    Some((x | (1 << k)) ^ (b << (k + 1)))
}

/// The other child of the parent, or `None` for the root.
pub(crate) fn sibling(x: u32, n_leaves: u32) -> Option<u32> {
    let p = parent(x, n_leaves)?;
    if x < p {
        right(p)
    } else {
        left(p)
    }
}

/// The parents from `x`'s parent up to the root.
pub(crate) fn direct_path(x: u32, n_leaves: u32) -> Vec<u32> {
    let mut out = Vec::new();
    let mut cur = x;
    while let Some(p) = parent(cur, n_leaves) {
        out.push(p);
        cur = p;
    }
    out
}

/// Whether `ancestor` is `x` or one of its ancestors.
pub(crate) fn is_in_subtree(ancestor: u32, x: u32) -> bool {
    let k = level(ancestor);
    if k > MAX_LEVEL {
        return false;
    }
    // The subtree of `ancestor` spans [ancestor - (2^k - 1), ancestor + (2^k - 1)].
    let span = (1u32 << k) - 1;
    x >= ancestor.saturating_sub(span) && x <= ancestor.saturating_add(span)
}

/// Node index of a leaf (saturating, so an absurd leaf index from a
/// message lands outside every tree instead of overflowing).
pub(crate) fn leaf_to_node(leaf: u32) -> u32 {
    leaf.saturating_mul(2)
}
