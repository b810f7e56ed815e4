//! Engine state in IndexedDB, encrypted at rest.
//!
//! One database per browser profile and origin (`qpq`), two object stores:
//! - `kv`: the engine's entries; keys are the engine's byte keys (binary IndexedDB keys),
//!   values are `nonce(12) ‖ ChaCha20-Poly1305(value, aad = key)` under the data key;
//! - `meta`: `wrap`, a non-extractable AES-GCM `CryptoKey` (IndexedDB can store it, nobody can
//!   read its bytes), and `dek`, the 32-byte data key encrypted under it.
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

/// The IndexedDB [`qpq_client::StateStore`].
#[derive(Clone)]
pub struct IdbStore {
    db: Rc<Rexie>,
    values: Sealer,
    downloads: Sealer,
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

fn random<const N: usize>() -> [u8; N] {
    let mut b = [0u8; N];
    getrandom_02::getrandom(&mut b).expect("the browser provides randomness");
    b
}

impl IdbStore {
    /// Opens (creating if needed) the database and its data key.
    pub async fn open() -> Result<IdbStore, String> {
        let db = Rexie::builder(DB_NAME)
            .version(1)
            .add_object_store(ObjectStore::new(KV))
            .add_object_store(ObjectStore::new(META))
            .build()
            .await
            .map_err(|e| err("cannot open the browser database", e))?;
        let dek = Self::data_key(&db).await?;
        let mut downloads = [0u8; 32];
        Hkdf::<sha2::Sha256>::new(None, &dek)
            .expand(b"qpq downloads v1", &mut downloads)
            .expect("32 bytes is a valid HKDF-SHA256 output length");
        Ok(IdbStore { db: Rc::new(db), values: Sealer::new(&dek), downloads: Sealer::new(&downloads) })
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
        let usages = js_sys::Array::of2(&"encrypt".into(), &"decrypt".into());
        let p = subtle.generate_key_with_object(&aes_gcm(None), false, &usages).map_err(|e| err("generate key", e))?;
        let wrap: web_sys::CryptoKey =
            JsFuture::from(p).await.map_err(|e| err("generate key", e))?.dyn_into().map_err(|_| "no key".to_string())?;
        let dek: [u8; 32] = random();
        let iv: [u8; 12] = random();
        let p = subtle
            .encrypt_with_object_and_u8_array(&aes_gcm(Some(&iv)), &wrap, &dek)
            .map_err(|e| err("encrypt", e))?;
        let sealed = Uint8Array::new(&JsFuture::from(p).await.map_err(|e| err("encrypt", e))?).to_vec();
        let stored = [iv.as_slice(), &sealed].concat();
        let tx = db.transaction(&[META], TransactionMode::ReadWrite).map_err(|e| err("store keys", e))?;
        let meta = tx.store(META).map_err(|e| err("store keys", e))?;
        meta.put(&wrap, Some(&"wrap".into())).await.map_err(|e| err("store keys", e))?;
        meta.put(&Uint8Array::from(stored.as_slice()), Some(&"dek".into())).await.map_err(|e| err("store keys", e))?;
        drop(meta);
        tx.done().await.map_err(|e| err("store keys", e))?;
        Ok(dek)
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
        keys.into_iter()
            .zip(values)
            .map(|(k, v)| {
                let k = Uint8Array::new(&k).to_vec();
                let v = self.values.open(&k, &Uint8Array::new(&v).to_vec())?;
                Ok((k, v))
            })
            .collect()
    }

    async fn apply_now(&self, changes: Changeset) -> Result<(), String> {
        // Encrypt first: nothing but IndexedDB requests may be awaited inside the transaction.
        let puts: Vec<(JsValue, Option<JsValue>)> = changes
            .puts
            .iter()
            .map(|(k, v)| (Uint8Array::from(self.values.seal(k, v).as_slice()).into(), Some(Uint8Array::from(k.as_slice()).into())))
            .collect();
        let deletes: Vec<JsValue> = changes.deletes.iter().map(|k| Uint8Array::from(k.as_slice()).into()).collect();
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
