//! tree-validation.json: resolutions, per-node tree hashes, parent-hash
//! validity and leaf signatures of a ratchet tree (RFC 9420 §4.1.1, §7.8,
//! §7.9.2, §7.2). openmls validates trees only while joining a group, with
//! a GroupInfo these vectors do not have, and does not expose resolutions
//! or per-node hashes, so `rfc::tree` computes them.

use std::collections::BTreeSet;

use serde::Deserialize;
use serde_json::Value;

use crate::{
    error::CheckError,
    rfc::tree::RatchetTree,
    vectors::json::{suite_of, typed, Hex},
};

#[derive(Deserialize)]
struct Vector {
    tree: Hex,
    group_id: Hex,
    resolutions: Vec<Vec<u32>>,
    tree_hashes: Vec<Hex>,
}

pub(crate) fn check(v: &Value) -> Result<(), CheckError> {
    let s = suite_of(v)?;
    let t: Vector = typed(v)?;
    let tree = RatchetTree::parse(&t.tree)?;
    if t.resolutions.len() != tree.node_count() || t.tree_hashes.len() != tree.node_count() {
        return Err(CheckError::mismatch("number of nodes"));
    }
    let none = BTreeSet::new();
    for i in 0..tree.node_count() as u32 {
        if tree.resolution(i, &none) != t.resolutions[i as usize] {
            return Err(CheckError::mismatch(format!("resolution of node {i}")));
        }
        if tree.tree_hash(&s, i, &none)? != t.tree_hashes[i as usize].0 {
            return Err(CheckError::mismatch(format!("tree hash of node {i}")));
        }
    }
    tree.verify_parent_hashes(&s)?;
    tree.verify_leaf_signatures(&s, &t.group_id)?;
    Ok(())
}
