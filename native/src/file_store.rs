//! Engine state in one append-only file of checksummed changesets.
//!
//! Each [`qpq_core::Changeset`] is appended as one record (length, SHA-256 prefix, body) and
//! synced, so a crash leaves either the whole changeset or none of it: a torn last record fails
//! its checksum and is cut off on the next open. When the file grows to several times the live
//! data it is rewritten as a single snapshot record (written aside, synced, then renamed).

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use qpq_core::Changeset;
use sha2::{Digest, Sha256};

const MAGIC: &[u8] = b"QPQSTATE1\n";
const MAX_RECORD: usize = 1 << 30;

struct State {
    file: File,
    map: BTreeMap<Vec<u8>, Vec<u8>>,
    file_len: u64,
    live_len: u64,
}

/// A file-backed [`qpq_client::StateStore`].
pub struct FileStore {
    path: PathBuf,
    sync: bool,
    state: RefCell<State>,
}

impl FileStore {
    /// Opens (or creates) the store at `path`. With `sync`, every changeset is flushed to disk
    /// before `apply` returns.
    pub fn open(path: impl AsRef<Path>, sync: bool) -> std::io::Result<FileStore> {
        let path = path.as_ref().to_path_buf();
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let mut file = OpenOptions::new().read(true).write(true).create(true).truncate(false).open(&path)?;
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes)?;
        let mut map = BTreeMap::new();
        let good_len = if bytes.is_empty() {
            file.write_all(MAGIC)?;
            MAGIC.len() as u64
        } else if !bytes.starts_with(MAGIC) {
            return Err(std::io::Error::new(std::io::ErrorKind::InvalidData, format!("{} is not a qpq state file", path.display())));
        } else {
            replay(&bytes, &mut map) as u64
        };
        // Cut off a torn tail so appends follow the last good record.
        file.set_len(good_len)?;
        file.seek(SeekFrom::End(0))?;
        let live_len = live(&map);
        Ok(FileStore { path, sync, state: RefCell::new(State { file, map, file_len: good_len, live_len }) })
    }

    /// Where the file is.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Removes every entry (the account is gone).
    pub fn clear(&self) -> std::io::Result<()> {
        let mut st = self.state.borrow_mut();
        st.map.clear();
        st.file.set_len(0)?;
        st.file.seek(SeekFrom::Start(0))?;
        st.file.write_all(MAGIC)?;
        st.file.sync_all()?;
        st.file_len = MAGIC.len() as u64;
        st.live_len = 0;
        Ok(())
    }

    fn append(&self, cs: &Changeset) -> std::io::Result<()> {
        let body = encode(cs);
        let mut st = self.state.borrow_mut();
        let mut rec = Vec::with_capacity(body.len() + 12);
        rec.extend_from_slice(&(body.len() as u32).to_be_bytes());
        rec.extend_from_slice(&Sha256::digest(&body)[..8]);
        rec.extend_from_slice(&body);
        st.file.write_all(&rec)?;
        if self.sync {
            st.file.sync_data()?;
        }
        st.file_len += rec.len() as u64;
        for (k, v) in &cs.puts {
            st.map.insert(k.clone(), v.clone());
        }
        for k in &cs.deletes {
            st.map.remove(k);
        }
        st.live_len = live(&st.map);
        if st.file_len > 4 * st.live_len + (1 << 20) {
            drop(st);
            self.compact()?;
        }
        Ok(())
    }

    fn compact(&self) -> std::io::Result<()> {
        let mut st = self.state.borrow_mut();
        let snapshot = Changeset { puts: st.map.iter().map(|(k, v)| (k.clone(), v.clone())).collect(), deletes: vec![] };
        let body = encode(&snapshot);
        let tmp = self.path.with_extension("compact");
        {
            let mut f = File::create(&tmp)?;
            f.write_all(MAGIC)?;
            f.write_all(&(body.len() as u32).to_be_bytes())?;
            f.write_all(&Sha256::digest(&body)[..8])?;
            f.write_all(&body)?;
            f.sync_all()?;
        }
        std::fs::rename(&tmp, &self.path)?;
        let mut file = OpenOptions::new().read(true).write(true).open(&self.path)?;
        st.file_len = file.seek(SeekFrom::End(0))?;
        st.file = file;
        Ok(())
    }
}

impl qpq_client::StateStore for FileStore {
    async fn load(&self) -> Result<Vec<(Vec<u8>, Vec<u8>)>, String> {
        Ok(self.state.borrow().map.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
    }

    async fn apply(&self, changes: Changeset) -> Result<(), String> {
        self.append(&changes).map_err(|e| format!("{}: {e}", self.path.display()))
    }
}

fn live(map: &BTreeMap<Vec<u8>, Vec<u8>>) -> u64 {
    map.iter().map(|(k, v)| (k.len() + v.len() + 8) as u64).sum()
}

fn encode(cs: &Changeset) -> Vec<u8> {
    let mut b = Vec::new();
    b.extend_from_slice(&(cs.puts.len() as u32).to_be_bytes());
    for (k, v) in &cs.puts {
        b.extend_from_slice(&(k.len() as u32).to_be_bytes());
        b.extend_from_slice(k);
        b.extend_from_slice(&(v.len() as u32).to_be_bytes());
        b.extend_from_slice(v);
    }
    b.extend_from_slice(&(cs.deletes.len() as u32).to_be_bytes());
    for k in &cs.deletes {
        b.extend_from_slice(&(k.len() as u32).to_be_bytes());
        b.extend_from_slice(k);
    }
    b
}

/// Applies every intact record to `map`; returns the length of the intact prefix.
fn replay(bytes: &[u8], map: &mut BTreeMap<Vec<u8>, Vec<u8>>) -> usize {
    let mut pos = MAGIC.len();
    loop {
        let Some(head) = bytes.get(pos..pos + 12) else { return pos };
        let len = u32::from_be_bytes(head[..4].try_into().expect("4 bytes")) as usize;
        if len > MAX_RECORD {
            return pos;
        }
        let Some(body) = bytes.get(pos + 12..pos + 12 + len) else { return pos };
        if Sha256::digest(body)[..8] != head[4..12] {
            return pos;
        }
        let Some(cs) = decode(body) else { return pos };
        for (k, v) in cs.puts {
            map.insert(k, v);
        }
        for k in cs.deletes {
            map.remove(&k);
        }
        pos += 12 + len;
    }
}

fn decode(mut b: &[u8]) -> Option<Changeset> {
    fn take<'a>(b: &mut &'a [u8], n: usize) -> Option<&'a [u8]> {
        if b.len() < n {
            return None;
        }
        let (h, t) = b.split_at(n);
        *b = t;
        Some(h)
    }
    fn u32_(b: &mut &[u8]) -> Option<usize> {
        Some(u32::from_be_bytes(take(b, 4)?.try_into().ok()?) as usize)
    }
    let mut cs = Changeset::default();
    for _ in 0..u32_(&mut b)? {
        let kl = u32_(&mut b)?;
        let k = take(&mut b, kl)?.to_vec();
        let vl = u32_(&mut b)?;
        let v = take(&mut b, vl)?.to_vec();
        cs.puts.push((k, v));
    }
    for _ in 0..u32_(&mut b)? {
        let kl = u32_(&mut b)?;
        cs.deletes.push(take(&mut b, kl)?.to_vec());
    }
    b.is_empty().then_some(cs)
}

#[cfg(test)]
mod tests {
    use super::*;
    use qpq_client::StateStore;

    fn cs(puts: &[(&str, &str)], dels: &[&str]) -> Changeset {
        Changeset {
            puts: puts.iter().map(|(k, v)| (k.as_bytes().to_vec(), v.as_bytes().to_vec())).collect(),
            deletes: dels.iter().map(|k| k.as_bytes().to_vec()).collect(),
        }
    }

    fn block<F: std::future::Future>(f: F) -> F::Output {
        futures::executor::block_on(f)
    }

    #[test]
    fn changesets_survive_reopen_and_a_torn_tail_is_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("s.log");
        {
            let s = FileStore::open(&p, true).unwrap();
            block(s.apply(cs(&[("a", "1"), ("b", "2")], &[]))).unwrap();
            block(s.apply(cs(&[("c", "3")], &["a"]))).unwrap();
        }
        // Simulate a crash in the middle of writing a third record.
        let good = std::fs::metadata(&p).unwrap().len();
        {
            let mut f = OpenOptions::new().append(true).open(&p).unwrap();
            f.write_all(&[0, 0, 0, 40, 1, 2, 3]).unwrap();
        }
        let s = FileStore::open(&p, true).unwrap();
        let got = block(s.load()).unwrap();
        assert_eq!(got, vec![(b"b".to_vec(), b"2".to_vec()), (b"c".to_vec(), b"3".to_vec())]);
        assert_eq!(std::fs::metadata(&p).unwrap().len(), good);
        block(s.apply(cs(&[("d", "4")], &[]))).unwrap();
        drop(s);
        assert_eq!(block(FileStore::open(&p, true).unwrap().load()).unwrap().len(), 3);
    }

    #[test]
    fn compaction_keeps_the_data() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("s.log");
        let s = FileStore::open(&p, false).unwrap();
        let big = "x".repeat(10_000);
        for i in 0..400 {
            block(s.apply(cs(&[("k", &format!("{i}{big}"))], &[]))).unwrap();
        }
        assert!(std::fs::metadata(&p).unwrap().len() < 2_000_000, "compacted");
        drop(s);
        let got = block(FileStore::open(&p, false).unwrap().load()).unwrap();
        assert_eq!(got.len(), 1);
        assert!(got[0].1.starts_with(b"399"));
    }
}
