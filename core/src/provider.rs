//! The OpenMLS provider of the engine: RustCrypto for cryptography and an in-memory key–value
//! storage whose changes are collected after each engine step.
//!
//! openmls's `StorageProvider` is synchronous while the browser's IndexedDB is asynchronous, so
//! the engine keeps all MLS state in memory and the shell writes each step's changes in one
//! transaction. The changes are found by comparing the map with what was last handed out, which
//! keeps this independent of how openmls lays out its keys.

use std::collections::HashMap;

use openmls_memory_storage::MemoryStorage;
use openmls_rust_crypto::RustCrypto;
use openmls_traits::OpenMlsProvider;

/// The engine's `OpenMlsProvider`.
#[derive(Debug, Default)]
pub(crate) struct Provider {
    crypto: RustCrypto,
    storage: MemoryStorage,
    /// Copy of the storage as of the last `take_changes`, i.e. what the shell has persisted.
    persisted: HashMap<Vec<u8>, Vec<u8>>,
}

/// What changed in MLS storage since the last call.
#[derive(Debug, Default)]
pub(crate) struct StorageDiff {
    pub puts: Vec<(Vec<u8>, Vec<u8>)>,
    pub deletes: Vec<Vec<u8>>,
}

impl Provider {
    /// A provider whose storage holds `entries` (as persisted earlier).
    pub fn with_entries(entries: impl IntoIterator<Item = (Vec<u8>, Vec<u8>)>) -> Self {
        let map: HashMap<Vec<u8>, Vec<u8>> = entries.into_iter().collect();
        let storage = MemoryStorage::default();
        *storage.values.write().expect("storage lock") = map.clone();
        Provider { crypto: RustCrypto::default(), storage, persisted: map }
    }

    /// Collects the changes since the previous call and treats them as persisted.
    pub fn take_diff(&mut self) -> StorageDiff {
        let current = self.storage.values.read().expect("storage lock");
        let mut diff = StorageDiff::default();
        for (k, v) in current.iter() {
            if self.persisted.get(k) != Some(v) {
                diff.puts.push((k.clone(), v.clone()));
            }
        }
        for k in self.persisted.keys() {
            if !current.contains_key(k) {
                diff.deletes.push(k.clone());
            }
        }
        drop(current);
        for (k, v) in &diff.puts {
            self.persisted.insert(k.clone(), v.clone());
        }
        for k in &diff.deletes {
            self.persisted.remove(k);
        }
        diff
    }

    /// A copy of the whole MLS storage, to undo a step that must leave no trace (a message held
    /// until the directory answers, or refused after openmls consumed secrets for it).
    pub fn snapshot(&self) -> HashMap<Vec<u8>, Vec<u8>> {
        self.storage.values.read().expect("storage lock").clone()
    }

    /// Puts back a [`Provider::snapshot`].
    pub fn restore(&self, snapshot: HashMap<Vec<u8>, Vec<u8>>) {
        *self.storage.values.write().expect("storage lock") = snapshot;
    }

    /// Number of stored entries (for tests and diagnostics).
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.storage.values.read().expect("storage lock").len()
    }
}

impl OpenMlsProvider for Provider {
    type CryptoProvider = RustCrypto;
    type RandProvider = RustCrypto;
    type StorageProvider = MemoryStorage;

    fn storage(&self) -> &Self::StorageProvider {
        &self.storage
    }

    fn crypto(&self) -> &Self::CryptoProvider {
        &self.crypto
    }

    fn rand(&self) -> &Self::RandProvider {
        &self.crypto
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn diff_reports_puts_and_deletes_once() {
        let mut p = Provider::with_entries(vec![(b"a".to_vec(), b"1".to_vec())]);
        assert!(p.take_diff().puts.is_empty());
        {
            let mut v = p.storage.values.write().unwrap();
            v.insert(b"b".to_vec(), b"2".to_vec());
            v.insert(b"a".to_vec(), b"3".to_vec());
        }
        let d = p.take_diff();
        assert_eq!(d.puts.len(), 2);
        assert!(d.deletes.is_empty());
        p.storage.values.write().unwrap().remove(&b"a".to_vec());
        let d = p.take_diff();
        assert!(d.puts.is_empty());
        assert_eq!(d.deletes, vec![b"a".to_vec()]);
        assert!(p.take_diff().deletes.is_empty());
        assert_eq!(p.len(), 1);
    }
}
