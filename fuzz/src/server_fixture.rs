//! A real server node (`qpq_server::spawn`: QUIC on loopback, SQLite in a temporary directory)
//! and one QUIC connection to it. Each fuzz input is sent on a new bidirectional stream, which
//! the node serves as an RPC session of its own (`serve_stream`: the server's reader options,
//! its `NodeService` entry object and, after login, a `Session`) — the path every client
//! request takes. The server's state (accounts, channels, queues) carries over from input to
//! input, as on a real server.

use std::time::Duration;

use ed25519_dalek::{Signer as _, SigningKey};
use qpq_proto::node_capnp::node_service;
use qpq_proto::{login_bytes, DeviceId, DeviceRecord, UserId, LOGIN_BINDING_LEN, LOGIN_EXPORTER_LABEL};
use tokio_util::compat::{Compat, TokioAsyncReadCompatExt};

use crate::rpc_frames::{self, entry_method, prefix, Returned, Target, NODE_SERVICE};

/// How long the server may take to end a session after the client closed its side.
const SESSION_END: Duration = Duration::from_secs(30);

/// A registered account whose device the harness can log in with.
struct Account {
    user: UserId,
    identity: SigningKey,
    device_id: DeviceId,
    device: SigningKey,
}

impl Account {
    fn new(n: u32, domain: &str) -> Self {
        let user = UserId::parse(&format!("fuzz{n}@{domain}")).expect("user id");
        let mut a = [0x11u8; 32];
        a[..4].copy_from_slice(&n.to_le_bytes());
        let mut b = [0x22u8; 32];
        b[..4].copy_from_slice(&n.to_le_bytes());
        Account {
            user,
            identity: SigningKey::from_bytes(&a),
            device_id: DeviceId([3; 16]),
            device: SigningKey::from_bytes(&b),
        }
    }

    fn record(&self) -> DeviceRecord {
        let dk = self.device.verifying_key().to_bytes();
        let sig = self.identity.sign(&DeviceRecord::signed_bytes(&self.user, &self.device_id, &dk, 1));
        DeviceRecord {
            user: self.user.clone(),
            device_id: self.device_id,
            device_key: dk,
            created_at: 1,
            signature: sig.to_bytes(),
        }
    }
}

/// The running node and the harness's connection to it.
pub struct ServerFixture {
    rt: tokio::runtime::Runtime,
    node: qpq_server::RunningNode,
    endpoint: quinn::Endpoint,
    conn: quinn::Connection,
    domain: String,
    account: Account,
    accounts: u32,
    /// Inputs run so far with and without the login prefix.
    pub runs: (u64, u64),
}

type Reader = Compat<quinn::RecvStream>;

async fn read_until_return(
    r: &mut Reader,
    question: u32,
    data: impl Fn(capnp::any_pointer::Reader<'_>) -> capnp::Result<Vec<u8>>,
) -> Result<Returned, String> {
    loop {
        let msg = capnp_futures::serialize::try_read_message(&mut *r, rpc_frames::client_reader_options())
            .await
            .map_err(|e| format!("reading the server's answer: {e}"))?
            .ok_or("the server closed the stream")?;
        if let Some((id, what)) = rpc_frames::parse_return(&msg, &data).map_err(|e| e.to_string())? {
            if id == question {
                return Ok(what);
            }
        }
    }
}

fn nonce_of(p: capnp::any_pointer::Reader<'_>) -> capnp::Result<Vec<u8>> {
    Ok(p.get_as::<node_service::challenge_results::Reader>()?.get_nonce()?.to_vec())
}

fn nothing(_: capnp::any_pointer::Reader<'_>) -> capnp::Result<Vec<u8>> {
    Ok(Vec::new())
}

impl ServerFixture {
    /// Starts the node in a fresh directory under the system temporary directory.
    pub fn start() -> Self {
        let dir = std::env::temp_dir().join(format!("qpq-fuzz-server-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("temporary directory");
        let mut config = qpq_server::Config::for_tests(&dir);
        // Every input logs in again: the per-account login limit would turn most of them
        // into `rate_limited` refusals and leave the session paths unfuzzed.
        config.rates.logins_per_min = 0;
        let domain = config.domain.clone();
        let node = qpq_server::spawn(config).expect("the server starts");
        // A worker thread keeps the QUIC connection alive between inputs.
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().expect("runtime");
        let trust = qpq_quic::Trust::Pinned(vec![node.fingerprint_bytes()]);
        let endpoint = rt.block_on(async {
            let mut e = qpq_quic::client_endpoint(node.addr()).expect("client endpoint");
            e.set_default_client_config(
                qpq_quic::client_config(&trust, qpq_quic::ALPN_NODE, Duration::from_secs(60)).expect("client config"),
            );
            e
        });
        let conn = rt.block_on(Self::connect(&endpoint, &node)).expect("connects to the node");
        let account = Account::new(0, &domain);
        let mut fx = ServerFixture { rt, node, endpoint, conn, domain, account, accounts: 0, runs: (0, 0) };
        fx.register().expect("registers the harness account");
        fx
    }

    async fn connect(endpoint: &quinn::Endpoint, node: &qpq_server::RunningNode) -> Result<quinn::Connection, String> {
        endpoint.connect(node.addr(), "localhost").map_err(|e| e.to_string())?.await.map_err(|e| e.to_string())
    }

    async fn stream(&mut self) -> (quinn::SendStream, quinn::RecvStream) {
        if let Ok(s) = self.conn.open_bi().await {
            return s;
        }
        self.conn = Self::connect(&self.endpoint, &self.node).await.expect("reconnects to the node");
        self.conn.open_bi().await.expect("opens a stream")
    }

    /// Registers the current account (a fresh name each time it is called again).
    fn register(&mut self) -> Result<(), String> {
        let record = self.account.record();
        let ik = self.account.identity.verifying_key().to_bytes();
        let user = self.account.user.clone();
        let mut frames = rpc_frames::bootstrap(prefix::BOOTSTRAP);
        frames.extend(rpc_frames::call::<node_service::register_identity_params::Owned>(
            1,
            Target::entry(prefix::BOOTSTRAP),
            NODE_SERVICE,
            entry_method::REGISTER_IDENTITY,
            &[],
            |mut p| {
                p.set_user(user.as_str());
                p.set_identity_key(&ik);
                qpq_proto::wire::write_device_record(p.init_device(), &record);
            },
        ));
        let rt = self.rt.handle().clone();
        rt.block_on(async {
            let (mut send, recv) = self.stream().await;
            send.write_all(&frames).await.map_err(|e| e.to_string())?;
            let mut r = recv.compat();
            let what = read_until_return(&mut r, 1, nothing).await?;
            let _ = send.finish();
            match what {
                Returned::Results { .. } => Ok(()),
                other => Err(format!("registration refused: {other:?}")),
            }
        })
    }

    /// The login prefix on a fresh stream: `Bootstrap`, `challenge`, `login` (questions 0–2),
    /// each answer awaited. `Ok(None)` when the account no longer logs in (the fuzzer deleted
    /// it or revoked its device).
    async fn login(&mut self) -> Result<Option<(quinn::SendStream, Reader)>, String> {
        let (mut send, recv) = self.stream().await;
        let mut r = recv.compat();
        let (user, device_id) = (self.account.user.clone(), self.account.device_id);
        let mut frames = rpc_frames::bootstrap(prefix::BOOTSTRAP);
        frames.extend(rpc_frames::call::<node_service::challenge_params::Owned>(
            prefix::CHALLENGE,
            Target::entry(prefix::BOOTSTRAP),
            NODE_SERVICE,
            entry_method::CHALLENGE,
            &[],
            |mut p| {
                p.set_user(user.as_str());
                p.set_device_id(&device_id.0);
            },
        ));
        send.write_all(&frames).await.map_err(|e| e.to_string())?;
        let nonce = match read_until_return(&mut r, prefix::CHALLENGE, nonce_of).await? {
            Returned::Results { data: Some(n), .. } => n,
            other => return Err(format!("challenge refused: {other:?}")),
        };
        let mut binding = [0u8; LOGIN_BINDING_LEN];
        self.conn.export_keying_material(&mut binding, LOGIN_EXPORTER_LABEL, b"").map_err(|_| "no TLS exporter")?;
        let sig = self.account.device.sign(&login_bytes(&user, &device_id, &nonce, &binding)).to_bytes();
        let frame = rpc_frames::call::<node_service::login_params::Owned>(
            prefix::LOGIN,
            Target::entry(prefix::BOOTSTRAP),
            NODE_SERVICE,
            entry_method::LOGIN,
            &[],
            |mut p| {
                p.set_user(user.as_str());
                p.set_device_id(&device_id.0);
                p.set_nonce(&nonce);
                p.set_signature(&sig);
            },
        );
        send.write_all(&frame).await.map_err(|e| e.to_string())?;
        match read_until_return(&mut r, prefix::LOGIN, nothing).await? {
            Returned::Results { .. } => Ok(Some((send, r))),
            Returned::Exception(e) if e.contains("login_failed") || e.contains("device_revoked") => Ok(None),
            other => Err(format!("login refused: {other:?}")),
        }
    }

    /// Sends `bytes` on a new stream — after the login prefix when `logged_in` — closes the
    /// sending side and waits until the server has ended the session.
    ///
    /// # Panics
    /// When the harness itself cannot reach the server, or the server does not end the session
    /// within [`SESSION_END`] of the client closing its side.
    pub fn run(&mut self, logged_in: bool, bytes: &[u8]) {
        let (send, recv) = if logged_in {
            self.runs.0 += 1;
            let mut attempt = 0;
            let rt = self.rt.handle().clone();
            loop {
                match rt.block_on(self.login()) {
                    Ok(Some((send, r))) => break (send, r.into_inner()),
                    Ok(None) if attempt == 0 => {
                        attempt += 1;
                        self.accounts += 1;
                        self.account = Account::new(self.accounts, &self.domain);
                        self.register().expect("registers a new harness account");
                    }
                    Ok(None) => panic!("a freshly registered account cannot log in"),
                    Err(e) => panic!("login prefix failed: {e}"),
                }
            }
        } else {
            self.runs.1 += 1;
            let rt = self.rt.handle().clone();
            rt.block_on(self.stream())
        };
        let bytes = bytes.to_vec();
        let ended = self.rt.block_on(async move {
            let mut send = send;
            let mut recv = recv;
            let write = async move {
                // Errors mean the server stopped reading (it ended the session early): fine.
                let _ = send.write_all(&bytes).await;
                let _ = send.finish();
            };
            let drain = async move {
                let mut buf = vec![0u8; 64 << 10];
                while let Ok(Some(_)) = recv.read(&mut buf).await {}
            };
            tokio::time::timeout(SESSION_END, async { tokio::join!(write, drain) }).await
        });
        assert!(ended.is_ok(), "the server did not end the session within {SESSION_END:?} after the client closed it");
    }
}
