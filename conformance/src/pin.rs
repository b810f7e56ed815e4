//! SHA-256 pinning of the vector files. The digests are kept here as well as
//! in `SHA256SUMS`, so a changed vector file fails even if `SHA256SUMS` was
//! regenerated along with it.

use sha2::{Digest, Sha256};

use crate::{error::CheckError, files::VectorFile, files::VectorFiles};

/// The digests of mlswg/mls-implementations `test-vectors/` at commit cfd45028.
const PINNED: [(&str, &str); 16] = [
    (
        "crypto-basics.json",
        "17cfcf89af9f51d0f2aa7af77f6f9ec99376a039214b6d42a6f11646b83e8c29",
    ),
    (
        "deserialization.json",
        "1e394706e79f77df71454e5970f2aa736d4ab8b6c7e3219dd5609992388a953e",
    ),
    (
        "key-schedule.json",
        "05aa9a68bd2538ace72d8c53375984cc728ef62220ebf314df675708546d97a7",
    ),
    (
        "message-protection.json",
        "f7c1ae62ce63c3003e526d539c99f2b1444f65ee0a487d3a5667d46867526c45",
    ),
    (
        "messages.json",
        "b194abe1561995223482dbad51c180146920dc2f637e74d01e07a388308791fb",
    ),
    (
        "passive-client-handling-commit.json",
        "b24949fdf857bf79d511f57504a8bdc7ce3247eb199684745e439c11b1a1da21",
    ),
    (
        "passive-client-random.json",
        "0095d863e9d316872e237fc708debcd20ba2687ee905a3e831f97dd3e578d3c1",
    ),
    (
        "passive-client-welcome.json",
        "92ebb04b67b1aca4290965ae363650921842ceebe275bd79a2733414078d849c",
    ),
    (
        "psk_secret.json",
        "2b534969dba0b65a04b7d790496af5c0ccdb472b3fc4ca25c8c82df3e8523784",
    ),
    (
        "secret-tree.json",
        "08f92e6272452e2c832e32d38e16cf0c4aa28967e47d3842c60bc354c6b67a94",
    ),
    (
        "transcript-hashes.json",
        "58046b58fbd98519b4e60953a105f550e4b427e2b140ea67dedcb751260eecb8",
    ),
    (
        "tree-math.json",
        "27f04891f56106593b74b674445f01b845e173953770c084deb2f8cf5592e2fc",
    ),
    (
        "tree-operations.json",
        "9a25f8720714d1256ba2dad8d83a660ba0bae0d33ed15c682b9d74a5d67aad0a",
    ),
    (
        "tree-validation.json",
        "b66a432d93b520623f0640835ed43b9dfc95e116b8be081d81581d7c11e67a37",
    ),
    (
        "treekem.json",
        "d8bbdf78394797f21db7476fd286af6830ebcb18d2e3b2c839fecd4eb11056f8",
    ),
    (
        "welcome.json",
        "06be9d5c99817ef2545e4b15b8e73fd9b604685a8e55b59ca168eda98e236502",
    ),
];

fn pinned(name: &str) -> Option<&'static str> {
    PINNED.iter().find(|(n, _)| *n == name).map(|(_, h)| *h)
}

/// Checks that `SHA256SUMS` lists exactly the pinned digests and that the
/// file's bytes hash to its digest.
pub(crate) fn check(files: &VectorFiles<'_>, file: VectorFile) -> Result<(), CheckError> {
    let want = pinned(file.name()).ok_or(CheckError::Protocol("file is not pinned"))?;
    let sums = std::str::from_utf8(files.sha256sums)
        .map_err(|_| CheckError::Json("SHA256SUMS is not UTF-8".into()))?;
    let listed = sums
        .lines()
        .filter_map(|l| l.split_once(char::is_whitespace))
        .find(|(_, name)| name.trim_start().trim_start_matches('*') == file.name())
        .map(|(digest, _)| digest)
        .ok_or_else(|| {
            CheckError::Mismatch(format!("{} is not listed in SHA256SUMS", file.name()))
        })?;
    if listed != want {
        return Err(CheckError::Mismatch(format!(
            "SHA256SUMS entry for {} differs from the pinned digest",
            file.name()
        )));
    }
    let got = hex::encode(Sha256::digest(files.get(file)));
    if got != want {
        return Err(CheckError::Mismatch(format!(
            "{} does not match its pinned SHA-256",
            file.name()
        )));
    }
    Ok(())
}
