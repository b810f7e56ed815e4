//! treekem.json: private TreeKEM state, processing UpdatePaths, merging
//! them into the tree, and creating new UpdatePaths (RFC 9420 §7). openmls
//! processes update paths only inside commits of a group it belongs to, so
//! TreeKEM is computed by `rfc::treekem` over the `openmls_rust_crypto`
//! primitives.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::Value;

use crate::{
    error::{expect_eq, CheckError},
    rfc::{
        codec::Reader,
        crypto::Suite,
        structs::{GroupContext, UpdatePath},
        tree::RatchetTree,
        tree_math,
        treekem::{self, node_key_pair, PrivateState},
    },
    vectors::json::{suite_of, typed, Hex},
};

#[derive(Deserialize)]
struct PathSecret {
    node: u32,
    path_secret: Hex,
}

#[derive(Deserialize)]
struct LeafPrivate {
    index: u32,
    encryption_priv: Hex,
    signature_priv: Hex,
    path_secrets: Vec<PathSecret>,
}

#[derive(Deserialize)]
struct UpdatePathCase {
    sender: u32,
    update_path: Hex,
    path_secrets: Vec<Option<Hex>>,
    commit_secret: Hex,
    tree_hash_after: Hex,
}

#[derive(Deserialize)]
struct Vector {
    group_id: Hex,
    epoch: u64,
    confirmed_transcript_hash: Hex,
    ratchet_tree: Hex,
    leaves_private: Vec<LeafPrivate>,
    update_paths: Vec<UpdatePathCase>,
}

/// Builds a member's private state and checks it against the public tree.
fn private_state(
    s: &Suite,
    tree: &RatchetTree,
    lp: &LeafPrivate,
) -> Result<PrivateState, CheckError> {
    let mut keys = BTreeMap::new();
    let leaf_node = tree_math::leaf_to_node(lp.index);
    let leaf_pub = tree
        .encryption_key(leaf_node)
        .ok_or(CheckError::Protocol("private state for a blank leaf"))?;
    s.check_key_pair(&lp.encryption_priv, leaf_pub)?;
    keys.insert(leaf_node, lp.encryption_priv.0.clone());
    for ps in &lp.path_secrets {
        let (private, public) = node_key_pair(s, &ps.path_secret)?;
        let tree_pub = tree
            .encryption_key(ps.node)
            .ok_or(CheckError::Protocol("path secret for a blank node"))?;
        if public != tree_pub {
            return Err(CheckError::mismatch(format!(
                "public key of node {} from its path secret",
                ps.node
            )));
        }
        keys.insert(ps.node, private);
    }
    Ok(PrivateState {
        leaf: lp.index,
        keys,
    })
}

pub(crate) fn check(v: &Value) -> Result<(), CheckError> {
    let s = suite_of(v)?;
    let t: Vector = typed(v)?;
    let tree = RatchetTree::parse(&t.ratchet_tree)?;
    let states: Vec<PrivateState> = t
        .leaves_private
        .iter()
        .map(|lp| private_state(&s, &tree, lp))
        .collect::<Result<_, _>>()?;
    let base_context = GroupContext {
        cipher_suite: s.id(),
        group_id: t.group_id.0.clone(),
        epoch: t.epoch,
        tree_hash: tree.root_hash(&s)?,
        confirmed_transcript_hash: t.confirmed_transcript_hash.0.clone(),
        extensions: Vec::new(),
    };

    for (n, case) in t.update_paths.iter().enumerate() {
        let at = |what: &str| format!("update path {n}: {what}");
        let mut r = Reader::new(&case.update_path);
        let path = UpdatePath::read(&mut r)?;
        r.finish("UpdatePath")?;
        if path.write()? != case.update_path.0 {
            return Err(CheckError::mismatch(at("UpdatePath re-encoding")));
        }

        let merged = treekem::merge_update_path(&s, &tree, case.sender, &path, &t.group_id)?;
        merged.verify_parent_hashes(&s)?;
        let tree_hash_after = merged.root_hash(&s)?;
        expect_eq(
            &at("tree_hash_after"),
            &tree_hash_after,
            &case.tree_hash_after,
        )?;
        let ctx = GroupContext {
            tree_hash: tree_hash_after,
            ..base_context.clone()
        }
        .encode()?;

        if case.path_secrets.len() != tree.n_leaves() as usize {
            return Err(CheckError::mismatch(at("path_secrets length")));
        }
        // Every non-blank leaf other than the sender decrypts its path secret.
        for (j, want) in case.path_secrets.iter().enumerate() {
            let receiver = j as u32 != case.sender && tree.leaf(j as u32).is_some();
            match (receiver, want) {
                (false, None) => continue,
                (false, Some(_)) => {
                    return Err(CheckError::mismatch(at(
                        "path secret for the sender or a blank leaf",
                    )))
                }
                (true, None) => {
                    return Err(CheckError::mismatch(at("no path secret for a member")))
                }
                (true, Some(want)) => {
                    let me = states
                        .iter()
                        .find(|st| st.leaf == j as u32)
                        .ok_or_else(|| CheckError::mismatch(at("no private state for a member")))?;
                    let (secret, commit_secret) =
                        treekem::decrypt_update_path(&s, &tree, case.sender, &path, me, &ctx)?;
                    expect_eq(&at(&format!("path secret for leaf {j}")), &secret, want)?;
                    expect_eq(&at("commit_secret"), &commit_secret, &case.commit_secret)?;
                }
            }
        }

        // A new UpdatePath from the same sender is processed by everyone else.
        let sender_priv = t
            .leaves_private
            .iter()
            .find(|lp| lp.index == case.sender)
            .ok_or_else(|| CheckError::mismatch(at("no private state for the sender")))?;
        let created = treekem::create_update_path(
            &s,
            &tree,
            case.sender,
            &sender_priv.signature_priv,
            &base_context,
        )?;
        let merged =
            treekem::merge_update_path(&s, &tree, case.sender, &created.path, &t.group_id)?;
        merged.verify_parent_hashes(&s)?;
        let ctx = GroupContext {
            tree_hash: merged.root_hash(&s)?,
            ..base_context.clone()
        }
        .encode()?;
        for me in states.iter().filter(|st| st.leaf != case.sender) {
            let (_, commit_secret) =
                treekem::decrypt_update_path(&s, &tree, case.sender, &created.path, me, &ctx)?;
            expect_eq(
                &at("new_commit_secret"),
                &commit_secret,
                &created.commit_secret,
            )?;
        }
    }
    Ok(())
}
