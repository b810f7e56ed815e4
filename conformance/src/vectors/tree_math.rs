//! tree-math.json: array tree arithmetic (RFC 9420 Appendix C). openmls
//! keeps its tree math crate-private, so this checks the RFC formulas used
//! by the first-principles checks in this crate.

use serde::Deserialize;
use serde_json::Value;

use crate::{error::CheckError, rfc::tree_math, vectors::json::typed};

#[derive(Deserialize)]
struct Vector {
    n_leaves: u32,
    n_nodes: u32,
    root: u32,
    left: Vec<Option<u32>>,
    right: Vec<Option<u32>>,
    parent: Vec<Option<u32>>,
    sibling: Vec<Option<u32>>,
}

pub(crate) fn check(v: &Value) -> Result<(), CheckError> {
    let t: Vector = typed(v)?;
    let n = t.n_leaves;
    if tree_math::node_width(n) != t.n_nodes {
        return Err(CheckError::mismatch("n_nodes"));
    }
    if tree_math::root(n) != t.root {
        return Err(CheckError::mismatch("root"));
    }
    let width = t.n_nodes as usize;
    for (name, list) in [
        ("left", &t.left),
        ("right", &t.right),
        ("parent", &t.parent),
        ("sibling", &t.sibling),
    ] {
        if list.len() != width {
            return Err(CheckError::mismatch(format!(
                "{name} has {} entries, tree has {width} nodes",
                list.len()
            )));
        }
    }
    for x in 0..t.n_nodes {
        let i = x as usize;
        let checks = [
            ("left", tree_math::left(x), t.left[i]),
            ("right", tree_math::right(x), t.right[i]),
            ("parent", tree_math::parent(x, n), t.parent[i]),
            ("sibling", tree_math::sibling(x, n), t.sibling[i]),
        ];
        for (name, got, want) in checks {
            if got != want {
                return Err(CheckError::mismatch(format!("{name}[{x}]")));
            }
        }
    }
    Ok(())
}
