//! A local RFC 8030 push service for the tests: the browser vendor's part, which is the one
//! thing the tests mock. It hands out subscriptions (a fresh P-256 key pair and auth secret
//! per subscription, as a browser would create), receives the node's `POST`s, and checks
//! each against the RFCs before it counts it: the VAPID header (RFC 8292: an ES256 JWT that
//! verifies under the key `k`, `aud` this service's origin, `exp` within 24 hours, a
//! `mailto:`/`https:` `sub`), the `TTL` and `Urgency` headers (RFC 8030 §5.2–5.3), and the
//! `aes128gcm` body (RFC 8291/8188), which it decrypts with the subscription's private key.
//! A subscription can be told to answer 410 Gone.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aes_gcm::aead::{Aead, KeyInit};
use aes_gcm::{Aes128Gcm, Nonce};
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::Router;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use hkdf::Hkdf;
use p256::ecdsa::signature::Verifier as _;
use p256::ecdsa::{Signature, VerifyingKey};
use p256::elliptic_curve::sec1::ToEncodedPoint;
use p256::{PublicKey, SecretKey};
use sha2::Sha256;

/// One push as the service received and checked it.
#[derive(Clone, Debug)]
pub struct ReceivedPush {
    /// Which subscription.
    pub subscription: String,
    /// The decrypted payload (padding removed).
    pub plaintext: Vec<u8>,
    /// The encrypted body's length.
    pub body_len: usize,
    /// `TTL`.
    pub ttl: u64,
    /// `Urgency`.
    pub urgency: String,
    /// The VAPID public key (`k`).
    pub vapid_key: Vec<u8>,
    /// The JWT's `sub`.
    pub contact: String,
}

/// A subscription as a browser's `PushSubscription` gives it, with the private half the
/// browser keeps.
pub struct TestSubscription {
    pub id: String,
    pub endpoint: String,
    pub p256dh: [u8; 65],
    pub auth: [u8; 16],
}

struct Keys {
    private: SecretKey,
    public: [u8; 65],
    auth: [u8; 16],
    gone: bool,
}

#[derive(Default)]
struct Shared {
    keys: HashMap<String, Keys>,
    received: Vec<ReceivedPush>,
    /// Requests refused, with the reason (a check failed).
    refused: Vec<String>,
}

/// The running service.
#[derive(Clone)]
pub struct PushService {
    addr: SocketAddr,
    shared: Arc<Mutex<Shared>>,
}

impl PushService {
    /// Starts on a free port of 127.0.0.1 (on the current runtime).
    pub async fn start() -> PushService {
        let shared = Arc::new(Mutex::new(Shared::default()));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind the push service");
        let addr = listener.local_addr().expect("address");
        let state = (shared.clone(), format!("http://{addr}"));
        let app = Router::new().route("/push/{id}", post(receive)).with_state(state);
        tokio::spawn(async move {
            axum::serve(listener, app).await.expect("push service");
        });
        PushService { addr, shared }
    }

    /// The origin pushes must name as their audience.
    pub fn origin(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// A new subscription, as `PushManager.subscribe` would create.
    pub fn subscribe(&self) -> TestSubscription {
        let private = SecretKey::random(&mut rand::rngs::OsRng);
        let public: [u8; 65] = private.public_key().to_encoded_point(false).as_bytes().try_into().expect("65 bytes");
        let auth: [u8; 16] = rand::random();
        let id = hex::encode(rand::random::<[u8; 12]>());
        self.shared.lock().unwrap().keys.insert(id.clone(), Keys { private, public, auth, gone: false });
        TestSubscription { endpoint: format!("{}/push/{id}", self.origin()), id, p256dh: public, auth }
    }

    /// From now on, pushes to `id` are answered 410 Gone (the browser unsubscribed).
    pub fn make_gone(&self, id: &str) {
        self.shared.lock().unwrap().keys.get_mut(id).expect("known subscription").gone = true;
    }

    /// Every push accepted so far.
    pub fn received(&self) -> Vec<ReceivedPush> {
        self.shared.lock().unwrap().received.clone()
    }

    /// Pushes accepted for `id`.
    pub fn received_for(&self, id: &str) -> Vec<ReceivedPush> {
        self.received().into_iter().filter(|p| p.subscription == id).collect()
    }

    /// Requests that failed a check (none, when the node follows the RFCs).
    pub fn refused(&self) -> Vec<String> {
        self.shared.lock().unwrap().refused.clone()
    }

    /// Waits until `id` has received `n` pushes (or panics after `timeout`).
    pub async fn wait_for(&self, id: &str, n: usize, timeout: Duration) -> Vec<ReceivedPush> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let got = self.received_for(id);
            if got.len() >= n {
                return got;
            }
            assert!(self.refused().is_empty(), "the push service refused requests: {:?}", self.refused());
            assert!(tokio::time::Instant::now() < deadline, "{n} push(es) expected within {timeout:?}, got {}", got.len());
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

type AppState = (Arc<Mutex<Shared>>, String);

async fn receive(State((shared, origin)): State<AppState>, Path(id): Path<String>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let mut s = shared.lock().unwrap();
    let Some(keys) = s.keys.get(&id) else {
        return StatusCode::NOT_FOUND;
    };
    if keys.gone {
        return StatusCode::GONE;
    }
    match check(&headers, &body, keys, &origin) {
        Ok(mut push) => {
            push.subscription = id;
            s.received.push(push);
            StatusCode::CREATED
        }
        Err(why) => {
            s.refused.push(why);
            StatusCode::BAD_REQUEST
        }
    }
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Result<&'a str, String> {
    headers.get(name).and_then(|v| v.to_str().ok()).ok_or_else(|| format!("no {name} header"))
}

/// Every check of one request; the received push when all pass.
fn check(headers: &HeaderMap, body: &[u8], keys: &Keys, origin: &str) -> Result<ReceivedPush, String> {
    // RFC 8030 §5.2: TTL is required.
    let ttl: u64 = header(headers, "ttl")?.parse().map_err(|_| "TTL is not a number".to_string())?;
    // RFC 8030 §5.3.
    let urgency = header(headers, "urgency")?.to_string();
    if !["very-low", "low", "normal", "high"].contains(&urgency.as_str()) {
        return Err(format!("Urgency {urgency:?} is not one of RFC 8030's"));
    }
    // RFC 8291 §4.
    if header(headers, "content-encoding")? != "aes128gcm" {
        return Err("Content-Encoding is not aes128gcm".into());
    }
    let (vapid_key, contact) = check_vapid(header(headers, "authorization")?, origin)?;
    let plaintext = decrypt(body, keys)?;
    Ok(ReceivedPush { subscription: String::new(), plaintext, body_len: body.len(), ttl, urgency, vapid_key, contact })
}

/// RFC 8292 §2–3: `vapid t=<JWT>, k=<key>`.
fn check_vapid(authorization: &str, origin: &str) -> Result<(Vec<u8>, String), String> {
    let rest = authorization.strip_prefix("vapid ").ok_or("the Authorization scheme is not vapid")?;
    let mut t = None;
    let mut k = None;
    for param in rest.split(',') {
        match param.trim().split_once('=') {
            Some(("t", v)) => t = Some(v),
            Some(("k", v)) => k = Some(v),
            _ => return Err(format!("unexpected Authorization parameter {param:?}")),
        }
    }
    let (t, k) = (t.ok_or("no t")?, k.ok_or("no k")?);
    let key_bytes = URL_SAFE_NO_PAD.decode(k).map_err(|_| "k is not base64url")?;
    let key = VerifyingKey::from_sec1_bytes(&key_bytes).map_err(|_| "k is not a P-256 key")?;
    let parts: Vec<&str> = t.split('.').collect();
    if parts.len() != 3 {
        return Err("t is not a JWS compact serialisation".into());
    }
    let json = |part: &str| -> Result<serde_json::Value, String> {
        let bytes = URL_SAFE_NO_PAD.decode(part).map_err(|_| "JWT part is not base64url")?;
        serde_json::from_slice(&bytes).map_err(|_| "JWT part is not JSON".to_string())
    };
    let (jose, claims) = (json(parts[0])?, json(parts[1])?);
    if jose["alg"] != "ES256" {
        return Err("alg is not ES256".into());
    }
    let sig = URL_SAFE_NO_PAD.decode(parts[2]).map_err(|_| "signature is not base64url")?;
    let sig = Signature::from_slice(&sig).map_err(|_| "signature is not 64 bytes R || S")?;
    key.verify(format!("{}.{}", parts[0], parts[1]).as_bytes(), &sig).map_err(|_| "the JWT signature does not verify")?;
    if claims["aud"] != origin {
        return Err(format!("aud {} is not {origin}", claims["aud"]));
    }
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs();
    let exp = claims["exp"].as_u64().ok_or("no exp")?;
    if exp <= now || exp > now + 24 * 3600 {
        return Err(format!("exp is {} s from now; RFC 8292 allows at most 24 hours", exp as i64 - now as i64));
    }
    let sub = claims["sub"].as_str().ok_or("no sub")?.to_string();
    if !(sub.starts_with("mailto:") || sub.starts_with("https://")) {
        return Err(format!("sub {sub:?} is not a mailto: or https: contact"));
    }
    Ok((key_bytes, sub))
}

/// The user agent's side of RFC 8291 §3.4 and RFC 8188 §2: one record.
fn decrypt(body: &[u8], keys: &Keys) -> Result<Vec<u8>, String> {
    if body.len() < 21 {
        return Err("the body is shorter than its header".into());
    }
    let salt = &body[..16];
    let rs = u32::from_be_bytes(body[16..20].try_into().unwrap()) as usize;
    let idlen = body[20] as usize;
    let keyid = body.get(21..21 + idlen).ok_or("the body is shorter than its key id")?;
    let record = &body[21 + idlen..];
    if record.len() > rs || record.len() < 17 {
        return Err("the record does not fit the record size".into());
    }
    let as_public = PublicKey::from_sec1_bytes(keyid).map_err(|_| "the key id is not a P-256 key")?;
    let shared = p256::ecdh::diffie_hellman(keys.private.to_nonzero_scalar(), as_public.as_affine());
    let mut key_info = b"WebPush: info\0".to_vec();
    key_info.extend_from_slice(&keys.public);
    key_info.extend_from_slice(keyid);
    let mut ikm = [0u8; 32];
    Hkdf::<Sha256>::new(Some(&keys.auth), shared.raw_secret_bytes()).expand(&key_info, &mut ikm).unwrap();
    let prk = Hkdf::<Sha256>::new(Some(salt), &ikm);
    let mut cek = [0u8; 16];
    prk.expand(b"Content-Encoding: aes128gcm\0", &mut cek).unwrap();
    let mut nonce = [0u8; 12];
    prk.expand(b"Content-Encoding: nonce\0", &mut nonce).unwrap();
    let mut padded = Aes128Gcm::new_from_slice(&cek)
        .unwrap()
        .decrypt(Nonce::from_slice(&nonce), record)
        .map_err(|_| "the record does not decrypt with the subscription's keys")?;
    while padded.last() == Some(&0) {
        padded.pop();
    }
    if padded.pop() != Some(2) {
        return Err("the only record does not end with the last-record delimiter".into());
    }
    Ok(padded)
}
