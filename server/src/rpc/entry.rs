//! The unauthenticated entry point: version handshake, registration, login.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::{Duration, Instant};

use capnp::capability::Rc as CapRc;
use ed25519_dalek::{Signature, VerifyingKey};
use qpq_proto::node_capnp::node_service;
use qpq_proto::{
    login_bytes, wire, DeviceId, ErrorCode, UserId, LOGIN_BINDING_LEN, MIN_PROTOCOL_VERSION, PROTOCOL_VERSION,
};
use rand::RngCore;

use super::delivery::StreamKill;
use super::session::SessionImpl;
use super::{now_ms, rate_err, store_err, Ctx};
use crate::metrics::track;

/// How long a login challenge stays valid.
const CHALLENGE_TTL: Duration = Duration::from_secs(60);

struct Challenge {
    user: UserId,
    device: DeviceId,
    nonce: [u8; 32],
    issued: Instant,
}

/// The bootstrap capability of a stream.
pub(crate) struct Entry {
    ctx: Rc<Ctx>,
    /// The one outstanding challenge of this stream; `login` consumes it.
    challenge: RefCell<Option<Challenge>>,
    /// Closes this stream once a device it logged in as is gone.
    kill: Rc<StreamKill>,
    /// The TLS exporter value of the connection (see `login_bytes`).
    binding: [u8; LOGIN_BINDING_LEN],
}

impl Entry {
    pub fn new(ctx: Rc<Ctx>, kill: Rc<StreamKill>, binding: [u8; LOGIN_BINDING_LEN]) -> Self {
        Entry { ctx, challenge: RefCell::new(None), kill, binding }
    }

    fn check_domain(&self, user: &UserId) -> Result<(), capnp::Error> {
        if user.domain() != self.ctx.config.domain {
            return Err(wire::error(
                ErrorCode::BadRequest,
                format!("this server is {}; its users are name@{}", self.ctx.config.domain, self.ctx.config.domain),
            ));
        }
        Ok(())
    }
}

impl node_service::Server for Entry {
    fn hello(
        self: CapRc<Self>,
        params: node_service::HelloParams,
        mut results: node_service::HelloResults,
    ) -> impl std::future::Future<Output = Result<(), capnp::Error>> + 'static {
        track(self.ctx.metrics.clone(), "hello", async move {
            let v = params.get()?.get_protocol_version();
            if v < MIN_PROTOCOL_VERSION {
                return Err(wire::error(
                    ErrorCode::Unsupported,
                    format!("protocol version {v} is too old; this server needs {MIN_PROTOCOL_VERSION} or newer"),
                ));
            }
            let mut r = results.get();
            r.set_protocol_version(PROTOCOL_VERSION);
            r.set_min_protocol_version(MIN_PROTOCOL_VERSION);
            r.set_domain(self.ctx.config.domain.as_str());
            r.set_server_time(now_ms());
            Ok(())
        })
    }

    fn register_identity(
        self: CapRc<Self>,
        params: node_service::RegisterIdentityParams,
        _results: node_service::RegisterIdentityResults,
    ) -> impl std::future::Future<Output = Result<(), capnp::Error>> + 'static {
        track(self.ctx.metrics.clone(), "registerIdentity", async move {
            let p = params.get()?;
            let user = wire::read_user(p.get_user()?, "user")?;
            self.check_domain(&user)?;
            let ik: [u8; 32] = p
                .get_identity_key()?
                .try_into()
                .map_err(|_| wire::bad("identityKey", "must be 32 bytes"))?;
            VerifyingKey::from_bytes(&ik).map_err(|_| wire::bad("identityKey", "not an Ed25519 key"))?;
            let device = wire::read_device_record(p.get_device()?)?;
            if device.user != user {
                return Err(wire::bad("device", "the record names another user"));
            }
            device
                .verify(&ik)
                .map_err(|_| wire::error(ErrorCode::BadSignature, "the device record is not signed by the identity key"))?;
            self.ctx.rates.registration(now_ms()).map_err(|ms| rate_err("registrations", ms))?;
            self.ctx
                .storage
                .create_user(&user, &ik, &device, now_ms())
                .await
                .map_err(|e| store_err("create_user", e))?;
            tracing::info!(user = %self.ctx.log_key.pseudonym(user.as_str()), "registered");
            Ok(())
        })
    }

    fn challenge(
        self: CapRc<Self>,
        params: node_service::ChallengeParams,
        mut results: node_service::ChallengeResults,
    ) -> impl std::future::Future<Output = Result<(), capnp::Error>> + 'static {
        track(self.ctx.metrics.clone(), "challenge", async move {
            let p = params.get()?;
            let user = wire::read_user(p.get_user()?, "user")?;
            let device = wire::read_device_id(p.get_device_id()?, "deviceId")?;
            let mut nonce = [0u8; 32];
            rand::thread_rng().fill_bytes(&mut nonce);
            *self.challenge.borrow_mut() = Some(Challenge { user, device, nonce, issued: Instant::now() });
            results.get().set_nonce(&nonce);
            Ok(())
        })
    }

    fn login(
        self: CapRc<Self>,
        params: node_service::LoginParams,
        mut results: node_service::LoginResults,
    ) -> impl std::future::Future<Output = Result<(), capnp::Error>> + 'static {
        track(self.ctx.metrics.clone(), "login", async move {
            let failed = || wire::error(ErrorCode::LoginFailed, "login failed: unknown device, expired challenge or wrong signature");
            let p = params.get()?;
            let user = wire::read_user(p.get_user()?, "user")?;
            let device = wire::read_device_id(p.get_device_id()?, "deviceId")?;
            let nonce = p.get_nonce()?;
            let sig: [u8; 64] = p.get_signature()?.try_into().map_err(|_| wire::bad("signature", "must be 64 bytes"))?;
            // The challenge is single-use whatever the outcome.
            let challenge = self.challenge.borrow_mut().take().ok_or_else(failed)?;
            if challenge.user != user
                || challenge.device != device
                || challenge.nonce.as_slice() != nonce
                || challenge.issued.elapsed() > CHALLENGE_TTL
            {
                return Err(failed());
            }
            // The signature names the user's own domain: a login meant for another server
            // (which could have relayed this server's nonce) does not verify here.
            if user.domain() != self.ctx.config.domain {
                return Err(failed());
            }
            let addr = qpq_proto::DeviceAddress { user: user.clone(), device };
            self.ctx.rates.login(&user, now_ms()).map_err(|ms| rate_err("logins", ms))?;
            // A revoked device, or one of a deleted account, has no record: it cannot log in,
            // and is told so (a client stops trying; it learns nothing it did not know).
            let gone = || {
                let why = "this device is not registered: it was removed from its account, or the account was deleted";
                wire::error(ErrorCode::DeviceRevoked, why)
            };
            let record = self.ctx.storage.device(&addr).await.map_err(|e| store_err("device", e))?.ok_or_else(gone)?;
            let key = VerifyingKey::from_bytes(&record.device_key).map_err(|_| failed())?;
            // A client on a direct QUIC connection signs the connection's TLS exporter value,
            // so a signature relayed from another connection does not verify. A browser
            // cannot read the exporter of its WebTransport or WebSocket connection (and the
            // gateway's connection to this node is not the browser's): its login binds no
            // channel, only this stream's single-use nonce.
            let sig = Signature::from_bytes(&sig);
            key.verify_strict(&login_bytes(&user, &device, nonce, &self.binding), &sig)
                .or_else(|_| key.verify_strict(&login_bytes(&user, &device, nonce, &[]), &sig))
                .map_err(|_| failed())?;
            tracing::debug!(user = %self.ctx.log_key.pseudonym(user.as_str()), "logged in");
            if self.ctx.config.close_revoked_sessions {
                self.ctx.hub.watch_session(&addr, &self.kill);
            }
            let session: qpq_proto::node_capnp::session::Client =
                capnp_rpc::new_client(SessionImpl::new(self.ctx.clone(), addr));
            results.get().set_session(session);
            Ok(())
        })
    }
}
