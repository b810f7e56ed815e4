//! Accounts and devices without an engine: Ed25519 keys, signed device records and a login
//! over a raw RPC stream, for tests that call the `Session` capability directly (the
//! authorization matrix, revocation). The server treats key packages and MLS messages as
//! opaque bytes, so these devices send bytes of their own.

use std::time::{SystemTime, UNIX_EPOCH};

use ed25519_dalek::{Signer, SigningKey};
use qpq_client::{Connection, Session};
use qpq_proto::{login_bytes, DeviceAddress, DeviceId, DeviceRecord, UserId};
use qpq_server::RunningNode;

use super::{raw_connection, rpc, user};

/// One device: its address and its key.
pub struct RawDevice {
    pub record: DeviceRecord,
    pub key: SigningKey,
}

impl RawDevice {
    pub fn addr(&self) -> DeviceAddress {
        self.record.address()
    }
}

/// A user with its identity key, able to sign records for new devices.
pub struct RawUser {
    pub id: UserId,
    pub identity: SigningKey,
    seed: u8,
}

fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() as u64
}

impl RawUser {
    /// `name@localhost` with keys derived from `seed` (tests pick distinct seeds).
    pub fn new(name: &str, seed: u8) -> RawUser {
        RawUser { id: user(name), identity: SigningKey::from_bytes(&[seed; 32]), seed }
    }

    /// Device `n` of this user, its record signed by the identity key.
    pub fn device(&self, n: u8) -> RawDevice {
        let mut secret = [n; 32];
        secret[0] = self.seed;
        secret[1] = 0xd5;
        let key = SigningKey::from_bytes(&secret);
        // Distinct per user, so no two test users share a device id.
        let mut id = [n; 16];
        id[0] = self.seed;
        let device_id = DeviceId(id);
        let device_key = key.verifying_key().to_bytes();
        let created_at = now_ms();
        let signature =
            self.identity.sign(&DeviceRecord::signed_bytes(&self.id, &device_id, &device_key, created_at)).to_bytes();
        RawDevice { record: DeviceRecord { user: self.id.clone(), device_id, device_key, created_at, signature }, key }
    }

    /// Registers the user with `first` as its first device.
    pub async fn register(&self, conn: &Connection, first: &RawDevice) {
        conn.register_identity(&self.identity.verifying_key().to_bytes(), &first.record).await.expect("registers");
    }
}

/// A logged-in device: its QUIC connection, the RPC stream and the session.
pub struct Login {
    pub quic: quinn::Connection,
    pub conn: Connection,
    pub session: Session,
}

/// Logs `device` in on a fresh connection to `node`.
pub async fn login(node: &RunningNode, device: &RawDevice) -> Login {
    let quic = raw_connection(node).await;
    let conn = rpc(&quic).await;
    let session = try_login(&conn, device).await.expect("logs in");
    Login { quic, conn, session }
}

/// Challenge–response login of `device` on `conn`, binding no channel (as a browser does).
pub async fn try_login(conn: &Connection, device: &RawDevice) -> Result<Session, qpq_client::ClientError> {
    conn.hello("raw").await?;
    let addr = device.addr();
    let nonce = conn.challenge(&addr.user, &addr.device).await?;
    let sig = device.key.sign(&login_bytes(&addr.user, &addr.device, &nonce, &[])).to_bytes();
    conn.login(&addr.user, &addr.device, &nonce, &sig).await
}

/// Registers `name` on `node` with `devices` devices (the first registers, it adds the
/// others) and returns the user with its devices.
pub async fn raw_account(node: &RunningNode, name: &str, seed: u8, devices: u8) -> (RawUser, Vec<RawDevice>) {
    let u = RawUser::new(name, seed);
    let all: Vec<RawDevice> = (1..=devices).map(|n| u.device(n)).collect();
    let quic = raw_connection(node).await;
    let conn = rpc(&quic).await;
    u.register(&conn, &all[0]).await;
    let session = try_login(&conn, &all[0]).await.expect("first device logs in");
    for d in &all[1..] {
        session.add_device(&d.record).await.expect("adds a device");
    }
    conn.close().await;
    (u, all)
}
