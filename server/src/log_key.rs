//! Pseudonyms for logs: a keyed hash of user names under a secret of this node.
//!
//! Logs must let an operator follow one account through a node's lines without naming the
//! person. A plain hash of a name is no pseudonym — anyone with a list of names can hash them
//! all and read the log. So the name is hashed with HMAC-SHA256 under 32 random bytes that the
//! node creates once in its data directory (`log-key`, readable by its owner only) and never
//! shows; only the first 8 bytes of the tag are printed.

use std::path::Path;

use anyhow::Context as _;
use hmac::{Hmac, Mac as _};
use rand::RngCore as _;
use sha2::Sha256;

/// File name of the secret in the data directory.
const FILE: &str = "log-key";

/// The node's secret for log pseudonyms.
pub(crate) struct LogKey([u8; 32]);

impl LogKey {
    /// Loads the secret from `dir`, or creates it there on the node's first start.
    pub fn load_or_create(dir: &Path) -> anyhow::Result<LogKey> {
        let path = dir.join(FILE);
        match std::fs::read(&path) {
            Ok(bytes) => {
                let key: [u8; 32] = bytes
                    .try_into()
                    .map_err(|_| anyhow::anyhow!("{} is damaged (not 32 bytes); delete it to make a new one", path.display()))?;
                Ok(LogKey(key))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let mut key = [0u8; 32];
                rand::rngs::OsRng.fill_bytes(&mut key);
                std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
                qpq_quic::write_private(&path, &key)?;
                Ok(LogKey(key))
            }
            Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
        }
    }

    /// The pseudonym of `name` in this node's logs: 16 hex digits.
    pub fn pseudonym(&self, name: &str) -> String {
        let mut mac = <Hmac<Sha256>>::new_from_slice(&self.0).expect("HMAC takes any key length");
        mac.update(name.as_bytes());
        hex::encode(&mac.finalize().into_bytes()[..8])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pseudonyms_are_stable_per_node_and_differ_between_nodes() {
        let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let k1 = LogKey::load_or_create(a.path()).unwrap();
        let k1_again = LogKey::load_or_create(a.path()).unwrap();
        let k2 = LogKey::load_or_create(b.path()).unwrap();
        let name = "alice@example.org";
        assert_eq!(k1.pseudonym(name), k1_again.pseudonym(name));
        assert_ne!(k1.pseudonym(name), k2.pseudonym(name));
        assert_ne!(k1.pseudonym(name), k1.pseudonym("bob@example.org"));
        assert_eq!(k1.pseudonym(name).len(), 16);
        // Not the unkeyed hash a dictionary could reverse.
        use sha2::Digest as _;
        let plain = hex::encode(&sha2::Sha256::digest(name.as_bytes())[..8]);
        assert_ne!(k1.pseudonym(name), plain);
    }

    #[cfg(unix)]
    #[test]
    fn the_secret_is_readable_by_the_owner_only_and_a_damaged_one_is_refused() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().unwrap();
        LogKey::load_or_create(dir.path()).unwrap();
        let mode = std::fs::metadata(dir.path().join(FILE)).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        std::fs::write(dir.path().join(FILE), b"short").unwrap();
        let err = LogKey::load_or_create(dir.path()).err().expect("damaged key refused").to_string();
        assert!(err.contains("damaged"), "{err}");
    }
}
