//! The unauthenticated entry point: version handshake, registration, login, the new
//! device's side of linking a device, and restoring an account on a new device.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::{Duration, Instant};

use capnp::capability::Rc as CapRc;
use ed25519_dalek::{Signature, VerifyingKey};
use qpq_proto::node_capnp::node_service;
use qpq_proto::{
    login_bytes, restore_bytes, wire, DeviceId, ErrorCode, UserId, LOGIN_BINDING_LEN, MIN_PROTOCOL_VERSION,
    PROTOCOL_VERSION,
};
use rand::RngCore;

use super::delivery::StreamKill;
use super::links::{check_payload, read_slot, MAX_LINK_REQUEST_BYTES};
use super::session::SessionImpl;
use super::{now_ms, rate_err, store_err, Ctx};
use crate::metrics::track;
use crate::storage::StoreError;

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

    /// Takes this stream's challenge (single use, whatever the caller does with it) and checks
    /// it was issued for `user` and `device`, with `nonce`, and has not expired.
    fn take_challenge(&self, user: &UserId, device: &DeviceId, nonce: &[u8]) -> bool {
        self.challenge.borrow_mut().take().is_some_and(|c| {
            c.user == *user && c.device == *device && c.nonce.as_slice() == nonce && c.issued.elapsed() <= CHALLENGE_TTL
        })
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
            if !self.take_challenge(&user, &device, nonce) {
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
            // When it last logged in is shown to the account's devices (`listDevices`). It is
            // metadata: a failure to record it is logged and the login goes on, unless the
            // device is gone meanwhile (revoked between the read above and now).
            match self.ctx.storage.touch_login(&addr, now_ms()).await {
                Ok(()) => {}
                Err(StoreError::NoSuchDevice) => return Err(gone()),
                Err(e) => {
                    let who = self.ctx.log_key.pseudonym(user.as_str());
                    tracing::warn!(user = %who, error = %e, "could not record the login time; logging in anyway");
                }
            }
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

    fn restore_device(
        self: CapRc<Self>,
        params: node_service::RestoreDeviceParams,
        _results: node_service::RestoreDeviceResults,
    ) -> impl std::future::Future<Output = Result<(), capnp::Error>> + 'static {
        track(self.ctx.metrics.clone(), "restoreDevice", async move {
            let failed = || wire::error(ErrorCode::LoginFailed, "restore failed: expired challenge or wrong signature");
            let p = params.get()?;
            let user = wire::read_user(p.get_user()?, "user")?;
            let record = wire::read_device_record(p.get_device()?)?;
            let nonce = p.get_nonce()?;
            let sig: [u8; 64] = p.get_signature()?.try_into().map_err(|_| wire::bad("signature", "must be 64 bytes"))?;
            // As for a login: the challenge is single-use whatever the outcome, and was
            // issued on this stream for this user and the new device's id.
            let fresh = self.take_challenge(&user, &record.device_id, nonce);
            self.check_domain(&user)?;
            if record.user != user {
                return Err(wire::bad("device", "the record names another user"));
            }
            if !fresh {
                return Err(failed());
            }
            self.ctx.rates.login(&user, now_ms()).map_err(|ms| rate_err("logins", ms))?;
            let ik = self
                .ctx
                .storage
                .identity_key(&user)
                .await
                .map_err(|e| store_err("identity_key", e))?
                .ok_or_else(|| wire::error(ErrorCode::NoSuchUser, format!("{user} is not registered here")))?;
            record.verify(&ik).map_err(|_| {
                wire::error(ErrorCode::BadSignature, "the device record is not signed by the identity key")
            })?;
            // Only the identity key restores: its signature covers the new record, this
            // server's domain and the stream's single-use nonce.
            let key = VerifyingKey::from_bytes(&ik).map_err(|_| failed())?;
            key.verify_strict(&restore_bytes(&record, nonce), &Signature::from_bytes(&sig)).map_err(|_| failed())?;
            let now = now_ms();
            // The `devices` envelopes expire like every other (`--envelope-days`; 0 = never).
            let lifetime = self.ctx.config.envelope_days.saturating_mul(86_400_000);
            let expires_at = if lifetime == 0 { 0 } else { now.saturating_add(lifetime) };
            // The removed devices' sessions close through their `Wake::Gone`, as on a revocation.
            self.ctx
                .storage
                .restore_device(&record, now, expires_at)
                .await
                .map_err(|e| store_err("restore_device", e))?;
            tracing::info!(user = %self.ctx.log_key.pseudonym(user.as_str()), "account restored on a new device");
            Ok(())
        })
    }

    fn link_request(
        self: CapRc<Self>,
        params: node_service::LinkRequestParams,
        _results: node_service::LinkRequestResults,
    ) -> impl std::future::Future<Output = Result<(), capnp::Error>> + 'static {
        track(self.ctx.metrics.clone(), "linkRequest", async move {
            let p = params.get()?;
            let slot = read_slot(p.get_slot()?)?;
            let request = p.get_request()?;
            check_payload("request", request, MAX_LINK_REQUEST_BYTES)?;
            // Before any login, so limited for the whole node, like registrations.
            self.ctx.rates.link_request(now_ms()).map_err(|ms| rate_err("link requests", ms))?;
            self.ctx
                .storage
                .put_link_request(&slot, request, now_ms())
                .await
                .map_err(|e| store_err("put_link_request", e))
        })
    }

    fn link_answer(
        self: CapRc<Self>,
        params: node_service::LinkAnswerParams,
        mut results: node_service::LinkAnswerResults,
    ) -> impl std::future::Future<Output = Result<(), capnp::Error>> + 'static {
        // Polled about once a second by a device waiting to be linked, so not rate-limited:
        // while there is no answer it is one indexed read and no write, and the gateway
        // limits browsers per address.
        track(self.ctx.metrics.clone(), "linkAnswer", async move {
            let slot = read_slot(params.get()?.get_slot()?)?;
            let answer = self
                .ctx
                .storage
                .take_link_answer(&slot, now_ms())
                .await
                .map_err(|e| store_err("take_link_answer", e))?;
            results.get().set_answer(answer.as_deref().unwrap_or_default());
            Ok(())
        })
    }
}
