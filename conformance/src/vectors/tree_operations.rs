//! tree-operations.json: applying Add, Update and Remove proposals to a
//! ratchet tree and the resulting tree hash (RFC 9420 §7.8, §12.1). openmls
//! applies proposals only inside a group it is a member of, so the changes
//! are made on `rfc::tree` and compared byte for byte.

use serde::Deserialize;
use serde_json::Value;

use crate::{
    error::{expect_eq, CheckError},
    rfc::{codec::Reader, structs::Proposal, tree::RatchetTree},
    vectors::json::{suite_of, typed, Hex},
};

#[derive(Deserialize)]
struct Vector {
    tree_before: Hex,
    proposal: Hex,
    proposal_sender: u32,
    tree_hash_before: Hex,
    tree_after: Hex,
    tree_hash_after: Hex,
}

pub(crate) fn check(v: &Value) -> Result<(), CheckError> {
    let s = suite_of(v)?;
    let t: Vector = typed(v)?;
    let mut tree = RatchetTree::parse(&t.tree_before)?;
    expect_eq(
        "tree_before re-encoding",
        &tree.serialize()?,
        &t.tree_before,
    )?;
    expect_eq(
        "tree_hash_before",
        &tree.root_hash(&s)?,
        &t.tree_hash_before,
    )?;

    let mut r = Reader::new(&t.proposal);
    let proposal = Proposal::read(&mut r)?;
    r.finish("Proposal")?;
    match proposal {
        Proposal::Add(kp) => {
            tree.add_leaf(kp.leaf_node)?;
        }
        Proposal::Update(leaf) => tree.update_leaf(t.proposal_sender, leaf)?,
        Proposal::Remove(leaf) => tree.remove_leaf(leaf)?,
        Proposal::Other => return Err(CheckError::Protocol("proposal does not change the tree")),
    }
    expect_eq("tree_after", &tree.serialize()?, &t.tree_after)?;
    expect_eq("tree_hash_after", &tree.root_hash(&s)?, &t.tree_hash_after)?;
    Ok(())
}
