//! Engine state in IndexedDB, encrypted at rest.
//!
//! One database per browser profile and origin (`qpq`), two object stores:
//! - `kv`: the engine's entries; keys are the engine's byte keys (binary IndexedDB keys),
//!   values are `nonce(12) ‖ ChaCha20-Poly1305(value, aad = key)` under the data key;
//! - `meta`: `wrap`, a non-extractable AES-GCM `CryptoKey` (IndexedDB can store it, nobody can
//!   read its bytes), and `dek`, the 32-byte data key encrypted under it; or, with a passphrase
//!   lock, `lock` instead of both: the data key sealed under a key Argon2id derives from the
//!   passphrase (`qpq_client::passphrase`), so without the passphrase nothing opens.
//!
//! Once a passphrase was set (`names` in `meta`), the `kv` keys are not the engine's keys
//! (which name people, as in `k/<user>`) but HMAC-SHA256 of them under a key derived from the
//! data key (info `qpq names v1`), and each value carries its engine key inside the seal:
//! `ChaCha20-Poly1305(len(2) ‖ key ‖ value, aad = stored key)`.
//!
//! Downloaded files are kept by the page in their own database, sealed by [`Sealer`] under a
//! key derived from the data key (HKDF-SHA256, info `qpq downloads v1`), each chunk bound to
//! its file and place; see `api/files.rs`.
//!
//! Each changeset is written in one read-write transaction in which nothing but IndexedDB
//! requests is awaited (values are encrypted before it starts), so a reload or a crash
//! between steps never leaves half a step stored.

use std::future::Future;
use std::rc::Rc;

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
use hkdf::Hkdf;
use js_sys::{Object, Reflect, Uint8Array};
use qpq_core::Changeset;
use rexie::{ObjectStore, Rexie, TransactionMode};
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;

const DB_NAME: &str = "qpq";
const KV: &str = "kv";
const META: &str = "meta";

/// Why the store did not open.
#[derive(Debug)]
pub enum OpenError {
    /// A passphrase locks it and none was given.
    Locked,
    /// The passphrase given is not the one.
    WrongPassphrase,
    /// Anything else, in words.
    Failed(String),
}

impl From<String> for OpenError {
    fn from(s: String) -> Self {
        OpenError::Failed(s)
    }
}

/// The IndexedDB [`qpq_client::StateStore`].
#[derive(Clone)]
pub struct IdbStore {
    db: Rc<Rexie>,
    dek: Rc<zeroize::Zeroizing<[u8; 32]>>,
    values: Sealer,
    downloads: Sealer,
    /// The key the stored names are hashed under, once a passphrase was set.
    names: Rc<std::cell::RefCell<Option<zeroize::Zeroizing<[u8; 32]>>>>,
    /// Whether a passphrase locks the data key.
    locked: Rc<std::cell::Cell<bool>>,
    /// Writes and the switch to hashed names never overlap.
    writing: Rc<futures::lock::Mutex<()>>,
}

/// Authenticated encryption of values kept in this browser: `nonce(12) ‖ ChaCha20-Poly1305`,
/// with a caller-chosen associated text that says where the value belongs, so a value moved
/// to another place does not open.
#[derive(Clone)]
pub struct Sealer(ChaCha20Poly1305);

impl Sealer {
    fn new(key: &[u8; 32]) -> Sealer {
        Sealer(ChaCha20Poly1305::new(Key::from_slice(key)))
    }

    pub fn seal(&self, place: &[u8], value: &[u8]) -> Vec<u8> {
        let nonce: [u8; 12] = random();
        let ct = self
            .0
            .encrypt(Nonce::from_slice(&nonce), Payload { msg: value, aad: place })
            .expect("encryption of in-memory data cannot fail");
        [nonce.as_slice(), &ct].concat()
    }

    pub fn open(&self, place: &[u8], sealed: &[u8]) -> Result<Vec<u8>, String> {
        if sealed.len() < 12 + 16 {
            return Err("a stored value is damaged".into());
        }
        self.0
            .decrypt(Nonce::from_slice(&sealed[..12]), Payload { msg: &sealed[12..], aad: place })
            .map_err(|_| "a stored value does not decrypt (damaged or from another key)".to_string())
    }
}

/// Runs one IndexedDB step to its end even when its caller stops waiting for it (a connection
/// attempt given up, a stopped client): the step's requests keep their callbacks until the
/// browser answers, so no answer ever reaches a callback already freed (which the browser
/// reports as an uncaught "closure invoked … after being dropped"), and a write once begun is
/// committed or aborted as a whole by the browser, never left to chance.
async fn to_completion<T: 'static>(step: impl Future<Output = Result<T, String>> + 'static) -> Result<T, String> {
    let (tx, rx) = futures::channel::oneshot::channel();
    wasm_bindgen_futures::spawn_local(async move {
        let _ = tx.send(step.await);
    });
    rx.await.unwrap_or_else(|_| Err("the browser database step did not finish".into()))
}

fn err(what: &str, e: impl std::fmt::Debug) -> String {
    format!("{what}: {e:?}")
}

fn subtle() -> Result<web_sys::SubtleCrypto, String> {
    let crypto = Reflect::get(&js_sys::global(), &JsValue::from_str("crypto")).map_err(|e| err("no crypto", e))?;
    let crypto: web_sys::Crypto = crypto.dyn_into().map_err(|_| "this browser has no WebCrypto".to_string())?;
    Ok(crypto.subtle())
}

fn aes_gcm(iv: Option<&[u8]>) -> Object {
    let o = Object::new();
    let _ = Reflect::set(&o, &"name".into(), &"AES-GCM".into());
    if let Some(iv) = iv {
        let _ = Reflect::set(&o, &"iv".into(), &Uint8Array::from(iv).into());
    } else {
        let _ = Reflect::set(&o, &"length".into(), &JsValue::from_f64(256.0));
    }
    o
}

/// The stored key of an engine key in the hashed-names format.
fn hash_name(names: &[u8; 32], key: &[u8]) -> [u8; 32] {
    use hmac::Mac;
    let mut mac = <hmac::Hmac<sha2::Sha256> as Mac>::new_from_slice(names).expect("HMAC takes any key size");
    mac.update(key);
    mac.finalize().into_bytes().into()
}

fn random<const N: usize>() -> [u8; N] {
    let mut b = [0u8; N];
    getrandom_02::getrandom(&mut b).expect("the browser provides randomness");
    b
}

fn hkdf32(ikm: &[u8], info: &[u8]) -> zeroize::Zeroizing<[u8; 32]> {
    let mut out = zeroize::Zeroizing::new([0u8; 32]);
    Hkdf::<sha2::Sha256>::new(None, ikm).expand(info, out.as_mut()).expect("32 bytes is a valid HKDF-SHA256 output length");
    out
}

async fn meta_get(db: &Rexie, key: &str) -> Result<Option<JsValue>, String> {
    let tx = db.transaction(&[META], TransactionMode::ReadOnly).map_err(|e| err("read keys", e))?;
    let meta = tx.store(META).map_err(|e| err("read keys", e))?;
    let v = meta.get(key.into()).await.map_err(|e| err("read keys", e))?;
    drop(meta);
    let _ = tx.done().await;
    Ok(v)
}

impl IdbStore {
    /// Opens (creating if needed) the database and its data key; with a passphrase lock,
    /// `passphrase` opens it (else [`OpenError::Locked`]).
    pub async fn open(passphrase: Option<&str>) -> Result<IdbStore, OpenError> {
        let db = Rexie::builder(DB_NAME)
            .version(1)
            .add_object_store(ObjectStore::new(KV))
            .add_object_store(ObjectStore::new(META))
            .build()
            .await
            .map_err(|e| err("cannot open the browser database", e))?;
        let lock = meta_get(&db, "lock").await?;
        let has_lock = lock.is_some();
        let dek = match lock {
            Some(lock) => {
                let Some(passphrase) = passphrase else { return Err(OpenError::Locked) };
                let lock = Uint8Array::new(&lock).to_vec();
                qpq_client::passphrase::unlock(&lock, passphrase).map_err(|e| match e {
                    qpq_client::passphrase::LockError::WrongPassphrase => OpenError::WrongPassphrase,
                    other => OpenError::Failed(other.to_string()),
                })?
            }
            None => zeroize::Zeroizing::new(Self::data_key(&db).await?),
        };
        let names = meta_get(&db, "names").await?.map(|_| hkdf32(dek.as_ref(), b"qpq names v1"));
        let downloads = hkdf32(dek.as_ref(), b"qpq downloads v1");
        Ok(IdbStore {
            db: Rc::new(db),
            values: Sealer::new(&dek),
            downloads: Sealer::new(&downloads),
            names: Rc::new(std::cell::RefCell::new(names)),
            locked: Rc::new(std::cell::Cell::new(has_lock)),
            dek: Rc::new(dek),
            writing: Rc::default(),
        })
    }

    /// True when a passphrase locks this browser's data.
    pub fn has_passphrase(&self) -> bool {
        self.locked.get()
    }

    /// Locks the data key with `passphrase` (or changes it): the key the browser could unwrap
    /// by itself is deleted, and stored names are hashed from now on (existing entries are
    /// rewritten in the same transaction).
    pub async fn set_passphrase(&self, passphrase: &str) -> Result<(), String> {
        let lock = qpq_client::passphrase::lock(&self.dek, passphrase).map_err(|e| e.to_string())?;
        let this = self.clone();
        to_completion(async move {
            let _writing = this.writing.lock().await;
            let hashed = this.names.borrow().is_some();
            let names = hkdf32(this.dek.as_slice(), b"qpq names v1");
            let rewrite = if hashed { None } else { Some(this.load_now().await?) };
            let rows: Vec<(JsValue, Option<JsValue>)> = rewrite
                .unwrap_or_default()
                .iter()
                .map(|(k, v)| this.hashed_row(&names, k, v))
                .collect();
            let tx = this.db.transaction(&[KV, META], TransactionMode::ReadWrite).map_err(|e| err("lock", e))?;
            let kv = tx.store(KV).map_err(|e| err("lock", e))?;
            if !hashed {
                kv.clear().await.map_err(|e| err("lock", e))?;
                kv.put_all(rows.into_iter()).await.map_err(|e| err("lock", e))?;
            }
            drop(kv);
            let meta = tx.store(META).map_err(|e| err("lock", e))?;
            meta.put(&Uint8Array::from(lock.as_slice()), Some(&"lock".into())).await.map_err(|e| err("lock", e))?;
            meta.put(&Uint8Array::from([1u8].as_slice()), Some(&"names".into())).await.map_err(|e| err("lock", e))?;
            meta.delete("wrap".into()).await.map_err(|e| err("lock", e))?;
            meta.delete("dek".into()).await.map_err(|e| err("lock", e))?;
            drop(meta);
            if !tx.done().await.map_err(|e| err("lock", e))?.is_committed() {
                return Err("the browser did not store the passphrase lock".into());
            }
            *this.names.borrow_mut() = Some(names);
            this.locked.set(true);
            Ok(())
        })
        .await
    }

    /// Takes the passphrase lock off: the browser keeps the data key wrapped by a key of its
    /// own again (stored names stay hashed).
    pub async fn remove_passphrase(&self) -> Result<(), String> {
        let this = self.clone();
        to_completion(async move {
            let _writing = this.writing.lock().await;
            let (wrap, dek) = Self::wrap_data_key(&this.dek).await?;
            let tx = this.db.transaction(&[META], TransactionMode::ReadWrite).map_err(|e| err("unlock", e))?;
            let meta = tx.store(META).map_err(|e| err("unlock", e))?;
            meta.put(&wrap, Some(&"wrap".into())).await.map_err(|e| err("unlock", e))?;
            meta.put(&Uint8Array::from(dek.as_slice()), Some(&"dek".into())).await.map_err(|e| err("unlock", e))?;
            meta.delete("lock".into()).await.map_err(|e| err("unlock", e))?;
            drop(meta);
            tx.done().await.map_err(|e| err("unlock", e))?;
            this.locked.set(false);
            Ok(())
        })
        .await
    }

    /// A stored row of the hashed-names format.
    fn hashed_row(&self, names: &[u8; 32], key: &[u8], value: &[u8]) -> (JsValue, Option<JsValue>) {
        let stored = hash_name(names, key);
        let mut plain = zeroize::Zeroizing::new(Vec::with_capacity(2 + key.len() + value.len()));
        plain.extend_from_slice(&(key.len() as u16).to_be_bytes());
        plain.extend_from_slice(key);
        plain.extend_from_slice(value);
        let sealed = self.values.seal(&stored, &plain);
        (Uint8Array::from(sealed.as_slice()).into(), Some(Uint8Array::from(stored.as_slice()).into()))
    }

    /// The sealer of downloaded files (a key of its own, derived from the data key).
    pub fn downloads(&self) -> Sealer {
        self.downloads.clone()
    }

    /// Removes every entry and the keys (after the account was deleted).
    pub async fn clear(&self) -> Result<(), String> {
        let this = self.clone();
        to_completion(async move { this.clear_now().await }).await
    }

    async fn clear_now(&self) -> Result<(), String> {
        let tx = self.db.transaction(&[KV, META], TransactionMode::ReadWrite).map_err(|e| err("clear", e))?;
        tx.store(KV).map_err(|e| err("clear", e))?.clear().await.map_err(|e| err("clear", e))?;
        tx.store(META).map_err(|e| err("clear", e))?.clear().await.map_err(|e| err("clear", e))?;
        tx.done().await.map_err(|e| err("clear", e))?;
        Ok(())
    }

    /// True when the database holds an account.
    pub async fn is_empty(&self) -> Result<bool, String> {
        let tx = self.db.transaction(&[KV], TransactionMode::ReadOnly).map_err(|e| err("read", e))?;
        let n = tx.store(KV).map_err(|e| err("read", e))?.count(None).await.map_err(|e| err("read", e))?;
        Ok(n == 0)
    }

    async fn data_key(db: &Rexie) -> Result<[u8; 32], String> {
        let subtle = subtle()?;
        let tx = db.transaction(&[META], TransactionMode::ReadOnly).map_err(|e| err("read keys", e))?;
        let meta = tx.store(META).map_err(|e| err("read keys", e))?;
        let wrap = meta.get("wrap".into()).await.map_err(|e| err("read keys", e))?;
        let dek = meta.get("dek".into()).await.map_err(|e| err("read keys", e))?;
        drop(meta);
        let _ = tx.done().await;
        if let (Some(wrap), Some(dek)) = (wrap, dek) {
            let wrap: web_sys::CryptoKey = wrap.dyn_into().map_err(|_| "the stored key is damaged".to_string())?;
            let sealed = Uint8Array::new(&dek).to_vec();
            if sealed.len() < 12 {
                return Err("the stored data key is damaged".into());
            }
            let p = subtle
                .decrypt_with_object_and_u8_array(&aes_gcm(Some(&sealed[..12])), &wrap, &sealed[12..])
                .map_err(|e| err("decrypt", e))?;
            let plain = JsFuture::from(p).await.map_err(|_| "the data key cannot be unwrapped".to_string())?;
            let plain = Uint8Array::new(&plain).to_vec();
            return plain.try_into().map_err(|_| "the data key has the wrong size".to_string());
        }
        // First use: a non-extractable wrapping key and a fresh data key.
        let dek: [u8; 32] = random();
        let (wrap, stored) = Self::wrap_data_key(&dek).await?;
        let tx = db.transaction(&[META], TransactionMode::ReadWrite).map_err(|e| err("store keys", e))?;
        let meta = tx.store(META).map_err(|e| err("store keys", e))?;
        meta.put(&wrap, Some(&"wrap".into())).await.map_err(|e| err("store keys", e))?;
        meta.put(&Uint8Array::from(stored.as_slice()), Some(&"dek".into())).await.map_err(|e| err("store keys", e))?;
        drop(meta);
        tx.done().await.map_err(|e| err("store keys", e))?;
        Ok(dek)
    }
}

impl IdbStore {
    /// A new non-extractable wrapping key, and `dek` sealed under it (`iv ‖ AES-GCM`).
    async fn wrap_data_key(dek: &[u8; 32]) -> Result<(web_sys::CryptoKey, Vec<u8>), String> {
        let subtle = subtle()?;
        let usages = js_sys::Array::of2(&"encrypt".into(), &"decrypt".into());
        let p = subtle.generate_key_with_object(&aes_gcm(None), false, &usages).map_err(|e| err("generate key", e))?;
        let wrap: web_sys::CryptoKey =
            JsFuture::from(p).await.map_err(|e| err("generate key", e))?.dyn_into().map_err(|_| "no key".to_string())?;
        let iv: [u8; 12] = random();
        let p = subtle
            .encrypt_with_object_and_u8_array(&aes_gcm(Some(&iv)), &wrap, dek)
            .map_err(|e| err("encrypt", e))?;
        let sealed = Uint8Array::new(&JsFuture::from(p).await.map_err(|e| err("encrypt", e))?).to_vec();
        Ok((wrap, [iv.as_slice(), &sealed].concat()))
    }
}

impl qpq_client::StateStore for IdbStore {
    async fn load(&self) -> Result<Vec<(Vec<u8>, Vec<u8>)>, String> {
        let this = self.clone();
        to_completion(async move { this.load_now().await }).await
    }

    async fn apply(&self, changes: Changeset) -> Result<(), String> {
        let this = self.clone();
        to_completion(async move { this.apply_now(changes).await }).await
    }
}

impl IdbStore {
    async fn load_now(&self) -> Result<Vec<(Vec<u8>, Vec<u8>)>, String> {
        let tx = self.db.transaction(&[KV], TransactionMode::ReadOnly).map_err(|e| err("read", e))?;
        let store = tx.store(KV).map_err(|e| err("read", e))?;
        let keys = store.get_all_keys(None, None).await.map_err(|e| err("read", e))?;
        let values = store.get_all(None, None).await.map_err(|e| err("read", e))?;
        if keys.len() != values.len() {
            return Err("the browser database changed while being read".into());
        }
        let hashed = self.names.borrow().is_some();
        keys.into_iter()
            .zip(values)
            .map(|(k, v)| {
                let k = Uint8Array::new(&k).to_vec();
                let v = self.values.open(&k, &Uint8Array::new(&v).to_vec())?;
                if !hashed {
                    return Ok((k, v));
                }
                let n = u16::from_be_bytes(v.get(..2).ok_or("a stored value is damaged")?.try_into().expect("2 bytes"));
                let key = v.get(2..2 + n as usize).ok_or("a stored value is damaged")?.to_vec();
                Ok((key, v[2 + n as usize..].to_vec()))
            })
            .collect()
    }

    async fn apply_now(&self, changes: Changeset) -> Result<(), String> {
        let _writing = self.writing.lock().await;
        // Encrypt first: nothing but IndexedDB requests may be awaited inside the transaction.
        let names = self.names.borrow().clone();
        let (puts, deletes): (Vec<(JsValue, Option<JsValue>)>, Vec<JsValue>) = match &names {
            None => (
                changes
                    .puts
                    .iter()
                    .map(|(k, v)| {
                        (Uint8Array::from(self.values.seal(k, v).as_slice()).into(), Some(Uint8Array::from(k.as_slice()).into()))
                    })
                    .collect(),
                changes.deletes.iter().map(|k| Uint8Array::from(k.as_slice()).into()).collect(),
            ),
            Some(names) => (
                changes.puts.iter().map(|(k, v)| self.hashed_row(names, k, v)).collect(),
                changes.deletes.iter().map(|k| Uint8Array::from(hash_name(names, k).as_slice()).into()).collect(),
            ),
        };
        let tx = self.db.transaction(&[KV], TransactionMode::ReadWrite).map_err(|e| err("write", e))?;
        let store = tx.store(KV).map_err(|e| err("write", e))?;
        store.put_all(puts.into_iter()).await.map_err(|e| err("write", e))?;
        for k in deletes {
            store.delete(k).await.map_err(|e| err("write", e))?;
        }
        drop(store);
        let r = tx.done().await.map_err(|e| err("write", e))?;
        if r.is_committed() {
            Ok(())
        } else {
            Err("the browser aborted the write (is the disk full?)".into())
        }
    }
}
