//! Typed wrappers over the NodeService RPC: domain types in, domain types out.

use std::cell::RefCell;
use std::future::Future;
use std::rc::Rc;

use capnp_rpc::{rpc_twoparty_capnp::Side, twoparty, RpcSystem};
use futures::channel::oneshot;
use futures::future::{FutureExt, LocalBoxFuture, Shared};
use futures::io::{AsyncRead, AsyncWrite};
use qpq_core::{Outbound, OutboundOp, OutboundResult};
use qpq_proto::node_capnp::{listener, node_service, session, subscription};
use qpq_proto::{wire, ChannelId, DeviceId, DeviceRecord, Envelope, UserId, PROTOCOL_VERSION};

use crate::error::ClientError;

/// Largest message a client accepts from a server (deliveries are batched below this).
const MAX_INCOMING_BYTES: usize = 64 << 20;

/// An RPC connection to a server node over one byte stream.
#[derive(Clone)]
pub struct Connection {
    node: node_service::Client,
    closed: Shared<oneshot::Receiver<()>>,
    disconnect: Rc<RefCell<Option<LocalBoxFuture<'static, Result<(), capnp::Error>>>>>,
}

impl Connection {
    /// Sets up the RPC system over the stream. The returned future drives it and must be
    /// spawned; it ends when the stream closes.
    pub fn new<R, W>(reader: R, writer: W) -> (Connection, impl Future<Output = ()> + 'static)
    where
        R: AsyncRead + Unpin + 'static,
        W: AsyncWrite + Unpin + 'static,
    {
        let mut opts = capnp::message::ReaderOptions::new();
        opts.traversal_limit_in_words(Some(MAX_INCOMING_BYTES / 8)).nesting_limit(64);
        // One write per message (a WebSocket message, a WebTransport write), not one for the
        // segment table and more for the segments.
        let writer = crate::coalesce::Coalesce::new(writer);
        let network = twoparty::VatNetwork::new(reader, writer, Side::Client, opts);
        let mut rpc = RpcSystem::new(Box::new(network), None);
        let node: node_service::Client = rpc.bootstrap(Side::Server);
        let disconnect = Rc::new(RefCell::new(Some(rpc.get_disconnector().boxed_local())));
        let (tx, rx) = oneshot::channel();
        let driver = async move {
            let _ = rpc.await;
            let _ = tx.send(());
        };
        (Connection { node, closed: rx.shared(), disconnect }, driver)
    }

    /// Closes the stream (every capability on it stops working) and waits until it is
    /// closed.
    pub async fn close(&self) {
        let d = self.disconnect.borrow_mut().take();
        if let Some(d) = d {
            let _ = d.await;
        }
        self.closed().await;
    }

    /// Resolves when the stream has closed.
    pub fn closed(&self) -> impl Future<Output = ()> + 'static {
        self.closed.clone().map(|_| ())
    }

    /// Version handshake; returns the server's domain and clock.
    pub async fn hello(&self, client: &str) -> Result<(String, u64), ClientError> {
        let mut req = self.node.hello_request();
        req.get().set_protocol_version(PROTOCOL_VERSION);
        req.get().set_client(client);
        let resp = req.send().promise.await?;
        let r = resp.get()?;
        Ok((r.get_domain()?.to_string().map_err(|e| ClientError::Input(e.to_string()))?, r.get_server_time()))
    }

    /// Registers an identity with its first device.
    pub async fn register_identity(&self, identity_key: &[u8; 32], device: &DeviceRecord) -> Result<(), ClientError> {
        let mut req = self.node.register_identity_request();
        let mut p = req.get();
        p.set_user(device.user.as_str());
        p.set_identity_key(identity_key);
        wire::write_device_record(p.init_device(), device);
        req.send().promise.await?;
        Ok(())
    }

    /// Asks for a login challenge.
    pub async fn challenge(&self, user: &UserId, device: &DeviceId) -> Result<Vec<u8>, ClientError> {
        let mut req = self.node.challenge_request();
        req.get().set_user(user.as_str());
        req.get().set_device_id(&device.0);
        let resp = req.send().promise.await?;
        Ok(resp.get()?.get_nonce()?.to_vec())
    }

    /// Logs in with a signed challenge.
    pub async fn login(&self, user: &UserId, device: &DeviceId, nonce: &[u8], signature: &[u8; 64]) -> Result<Session, ClientError> {
        let mut req = self.node.login_request();
        let mut p = req.get();
        p.set_user(user.as_str());
        p.set_device_id(&device.0);
        p.set_nonce(nonce);
        p.set_signature(signature);
        let resp = req.send().promise.await?;
        Ok(Session { cap: resp.get()?.get_session()? })
    }

    /// Registers `device` in place of every other device of its account (restoring from a
    /// backup): `signature` is the identity key's over `restore_bytes(device, nonce)`, `nonce`
    /// from [`Connection::challenge`] for that device on this connection.
    pub async fn restore_device(&self, device: &DeviceRecord, nonce: &[u8], signature: &[u8; 64]) -> Result<(), ClientError> {
        let mut req = self.node.restore_device_request();
        let mut p = req.get();
        p.set_user(device.user.as_str());
        wire::write_device_record(p.reborrow().init_device(), device);
        p.set_nonce(nonce);
        p.set_signature(signature);
        req.send().promise.await?;
        Ok(())
    }

    /// Puts a new device's link request (ciphertext) into the open link slot `slot`.
    pub async fn put_link_request(&self, slot: &[u8; 32], request: &[u8]) -> Result<(), ClientError> {
        let mut req = self.node.link_request_request();
        req.get().set_slot(slot);
        req.get().set_request(request);
        req.send().promise.await?;
        Ok(())
    }

    /// The answer in the link slot `slot`, or `None` while there is none; reading one closes
    /// the slot.
    pub async fn take_link_answer(&self, slot: &[u8; 32]) -> Result<Option<Vec<u8>>, ClientError> {
        let mut req = self.node.link_answer_request();
        req.get().set_slot(slot);
        let resp = req.send().promise.await?;
        let answer = resp.get()?.get_answer()?;
        Ok((!answer.is_empty()).then(|| answer.to_vec()))
    }

    /// The raw bootstrap capability (for tests of the server's refusals).
    pub fn node_service(&self) -> node_service::Client {
        self.node.clone()
    }
}

/// A logged-in session of one device.
#[derive(Clone)]
pub struct Session {
    cap: session::Client,
}

/// A key package claimed for a device.
#[derive(Clone, Debug)]
pub struct ClaimedKeyPackage {
    /// The device.
    pub device: DeviceId,
    /// The package.
    pub key_package: Vec<u8>,
    /// True when it is the device's last-resort package.
    pub last_resort: bool,
}

impl Session {
    /// The raw capability (for tests of the server's refusals).
    pub fn capability(&self) -> session::Client {
        self.cap.clone()
    }

    /// A cheap round trip (used as a heartbeat).
    pub async fn whoami(&self) -> Result<(), ClientError> {
        self.cap.whoami_request().send().promise.await?;
        Ok(())
    }

    /// The identity key and device records of `user`.
    pub async fn list_devices(&self, user: &UserId) -> Result<([u8; 32], Vec<DeviceRecord>), ClientError> {
        let (ik, devices) = self.list_own_devices(user).await?;
        Ok((ik, devices.into_iter().map(|(record, _, _)| record).collect()))
    }

    /// A user's devices, with what only the account's own devices are told: each one's label
    /// (ciphertext, empty when none) and last login (Unix ms, 0 before the first); for another
    /// user's devices both are empty.
    pub async fn list_own_devices(&self, user: &UserId) -> Result<([u8; 32], Vec<(DeviceRecord, Vec<u8>, u64)>), ClientError> {
        let mut req = self.cap.list_devices_request();
        req.get().set_user(user.as_str());
        let resp = req.send().promise.await?;
        let r = resp.get()?;
        let ik: [u8; 32] = r
            .get_identity_key()?
            .try_into()
            .map_err(|_| ClientError::Input("the server sent a malformed identity key".into()))?;
        let about = r.get_about()?;
        let mut out = Vec::new();
        for (i, d) in r.get_devices()?.iter().enumerate() {
            let record = wire::read_device_record(d)?;
            let (label, last) = if (i as u32) < about.len() {
                let a = about.get(i as u32);
                (a.get_label()?.to_vec(), a.get_last_login())
            } else {
                (Vec::new(), 0)
            };
            out.push((record, label, last));
        }
        Ok((ik, out))
    }

    /// Sets this device's label (ciphertext from `device_label::seal`; empty clears it).
    pub async fn set_device_label(&self, label: &[u8]) -> Result<(), ClientError> {
        let mut req = self.cap.set_device_label_request();
        req.get().set_label(label);
        req.send().promise.await?;
        Ok(())
    }

    /// Adds a device record (signed by our identity key).
    pub async fn add_device(&self, record: &DeviceRecord) -> Result<(), ClientError> {
        let mut req = self.cap.add_device_request();
        wire::write_device_record(req.get().init_device(), record);
        req.send().promise.await?;
        Ok(())
    }

    /// Blocks (or unblocks) `user` for this account.
    pub async fn set_blocked(&self, user: &UserId, blocked: bool) -> Result<(), ClientError> {
        let mut req = self.cap.set_blocked_request();
        req.get().set_user(user.as_str());
        req.get().set_blocked(blocked);
        req.send().promise.await?;
        Ok(())
    }

    /// The users this account blocks, as the node keeps them.
    pub async fn blocked_users(&self) -> Result<Vec<UserId>, ClientError> {
        let resp = self.cap.blocked_users_request().send().promise.await?;
        let list = resp.get()?.get_users()?;
        Ok(list.iter().map(|name| wire::read_user(name?, "users")).collect::<Result<Vec<_>, _>>()?)
    }

    /// Revokes one of our devices.
    pub async fn revoke_device(&self, device: &DeviceId) -> Result<(), ClientError> {
        let mut req = self.cap.revoke_device_request();
        req.get().set_device_id(&device.0);
        req.send().promise.await?;
        Ok(())
    }

    /// Uploads key packages; returns how many one-time packages the server holds.
    pub async fn upload_key_packages(&self, packages: &[Vec<u8>], last_resort: Option<&[u8]>) -> Result<u32, ClientError> {
        let mut req = self.cap.upload_key_packages_request();
        let mut p = req.get();
        {
            let mut list = p.reborrow().init_packages(packages.len() as u32);
            for (i, kp) in packages.iter().enumerate() {
                list.set(i as u32, kp);
            }
        }
        p.set_last_resort(last_resort.unwrap_or(&[]));
        let resp = req.send().promise.await?;
        Ok(resp.get()?.get_available())
    }

    /// Claims one key package per device of `user` (our own device excluded).
    pub async fn claim_key_packages(&self, user: &UserId) -> Result<Vec<ClaimedKeyPackage>, ClientError> {
        self.claim_key_packages_of(user, &[]).await
    }

    /// Claims one key package for each of `devices` of `user` (all its devices when empty;
    /// our own device excluded).
    pub async fn claim_key_packages_of(
        &self,
        user: &UserId,
        devices: &[DeviceId],
    ) -> Result<Vec<ClaimedKeyPackage>, ClientError> {
        let mut req = self.cap.claim_key_packages_request();
        req.get().set_user(user.as_str());
        if !devices.is_empty() {
            let mut list = req.get().init_devices(devices.len() as u32);
            for (i, d) in devices.iter().enumerate() {
                list.set(i as u32, &d.0);
            }
        }
        let resp = req.send().promise.await?;
        resp.get()?
            .get_packages()?
            .iter()
            .map(|c| {
                Ok(ClaimedKeyPackage {
                    device: wire::read_device_id(c.get_device_id()?, "deviceId")?,
                    key_package: c.get_key_package()?.to_vec(),
                    last_resort: c.get_last_resort(),
                })
            })
            .collect::<Result<_, capnp::Error>>()
            .map_err(Into::into)
    }

    /// How many one-time key packages the server holds for us.
    pub async fn key_package_count(&self) -> Result<u32, ClientError> {
        let resp = self.cap.key_package_count_request().send().promise.await?;
        Ok(resp.get()?.get_available())
    }

    /// A channel's epoch and member devices.
    pub async fn channel_info(&self, channel: &ChannelId) -> Result<(u64, Vec<qpq_proto::DeviceAddress>), ClientError> {
        let mut req = self.cap.channel_info_request();
        req.get().set_channel_id(channel.as_bytes());
        let resp = req.send().promise.await?;
        let info = resp.get()?.get_info()?;
        let members = info.get_members()?.iter().map(wire::read_device_address).collect::<Result<Vec<_>, _>>()?;
        Ok((info.get_epoch(), members))
    }

    /// The GroupInfo of the channel's current epoch that the server keeps, and the ratchet tree
    /// it holds: what a member that fell out of step rejoins from.
    pub async fn group_info(&self, channel: &ChannelId) -> Result<(Vec<u8>, Vec<u8>), ClientError> {
        let mut req = self.cap.group_info_request();
        req.get().set_channel_id(channel.as_bytes());
        let resp = req.send().promise.await?;
        let r = resp.get()?;
        Ok((r.get_group_info()?.to_vec(), r.get_ratchet_tree()?.to_vec()))
    }

    /// Performs an outbox item. A refusal by the server is an `Ok(Refused)`; only transport
    /// failures are errors.
    pub async fn send_outbound(&self, out: &Outbound) -> Result<OutboundResult, ClientError> {
        let r = match &out.op {
            OutboundOp::CreateChannel { channel, group_info } => {
                let mut req = self.cap.create_channel_request();
                req.get().set_channel_id(channel.as_bytes());
                req.get().set_group_info(group_info);
                req.send().promise.await.map(|_| 0)
            }
            OutboundOp::PutGroupInfo { channel, group_info } => {
                let mut req = self.cap.put_group_info_request();
                req.get().set_channel_id(channel.as_bytes());
                req.get().set_group_info(group_info);
                req.send().promise.await.map(|_| 0)
            }
            OutboundOp::Enqueue { channel, payload, ttl_secs } => {
                let mut req = self.cap.enqueue_request();
                let mut p = req.get();
                p.set_channel_id(channel.as_bytes());
                p.set_payload(payload);
                p.set_client_msg_id(&out.id.0);
                p.set_ttl_seconds(*ttl_secs);
                match req.send().promise.await {
                    Ok(resp) => Ok(resp.get()?.get_server_time()),
                    Err(e) => Err(e),
                }
            }
            OutboundOp::Commit { channel, epoch, commit, welcome, add, remove } => {
                let mut req = self.cap.commit_request();
                let mut r = req.get().init_request();
                r.set_channel_id(channel.as_bytes());
                r.set_epoch(*epoch);
                r.set_commit(commit);
                r.set_welcome(welcome);
                r.set_client_msg_id(&out.id.0);
                {
                    let mut l = r.reborrow().init_add_devices(add.len() as u32);
                    for (i, d) in add.iter().enumerate() {
                        wire::write_device_address(l.reborrow().get(i as u32), d);
                    }
                }
                let mut l = r.init_remove_devices(remove.len() as u32);
                for (i, d) in remove.iter().enumerate() {
                    wire::write_device_address(l.reborrow().get(i as u32), d);
                }
                match req.send().promise.await {
                    Ok(resp) => Ok(resp.get()?.get_server_time()),
                    Err(e) => Err(e),
                }
            }
        };
        match r {
            Ok(server_time) => Ok(OutboundResult::Accepted { server_time }),
            Err(e) => match ClientError::from(e) {
                // "Later" leaves the item in the outbox, to be sent again with the same id and
                // bytes (the server deduplicates); a refusal settles it.
                later if later.retry_after_ms().is_some() => Err(later),
                ClientError::Remote(r) => Ok(OutboundResult::Refused { code: r.code, message: r.message }),
                other => Err(other),
            },
        }
    }

    /// Envelopes after `after`.
    pub async fn fetch(&self, after: u64, limit: u32) -> Result<Vec<Envelope>, ClientError> {
        let mut req = self.cap.fetch_request();
        req.get().set_after(after);
        req.get().set_limit(limit);
        let resp = req.send().promise.await?;
        Ok(resp.get()?.get_envelopes()?.iter().map(wire::read_envelope).collect::<Result<Vec<_>, _>>()?)
    }

    /// Acknowledges (deletes) envelopes up to `up_to`.
    pub async fn ack(&self, up_to: u64) -> Result<(), ClientError> {
        let mut req = self.cap.ack_request();
        req.get().set_up_to(up_to);
        req.send().promise.await?;
        Ok(())
    }

    /// Subscribes `listener` to deliveries after `after`. Keep the handle: dropping it ends
    /// the subscription.
    pub async fn subscribe(&self, listener: listener::Client, after: u64) -> Result<subscription::Client, ClientError> {
        let mut req = self.cap.subscribe_request();
        req.get().set_listener(listener);
        req.get().set_after(after);
        let resp = req.send().promise.await?;
        Ok(resp.get()?.get_handle()?)
    }

    /// Creates an empty blob in `channel` that lives `ttl_secs` (0: the server's retention);
    /// returns its id.
    pub async fn create_blob(&self, channel: &ChannelId, size: u64, chunk_size: u32, ttl_secs: u32) -> Result<[u8; 16], ClientError> {
        let mut req = self.cap.create_blob_request();
        req.get().set_channel_id(channel.as_bytes());
        req.get().set_size(size);
        req.get().set_chunk_size(chunk_size);
        req.get().set_ttl_seconds(ttl_secs);
        let resp = req.send().promise.await?;
        blob_id(resp.get()?.get_info()?.get_blob_id()?)
    }

    /// Stores one chunk; returns how many chunks are stored.
    pub async fn put_chunk(&self, blob: &[u8; 16], index: u32, data: &[u8]) -> Result<u32, ClientError> {
        let mut req = self.cap.put_chunk_request();
        req.get().set_blob_id(blob);
        req.get().set_index(index);
        req.get().set_data(data);
        let resp = req.send().promise.await?;
        Ok(resp.get()?.get_info()?.get_chunks_stored())
    }

    /// How many chunks of a blob the server holds (to resume an upload).
    pub async fn blob_chunks_stored(&self, blob: &[u8; 16]) -> Result<u32, ClientError> {
        let mut req = self.cap.blob_info_request();
        req.get().set_blob_id(blob);
        let resp = req.send().promise.await?;
        Ok(resp.get()?.get_info()?.get_chunks_stored())
    }

    /// Reads one chunk.
    pub async fn get_chunk(&self, blob: &[u8; 16], index: u32) -> Result<Vec<u8>, ClientError> {
        let mut req = self.cap.get_chunk_request();
        req.get().set_blob_id(blob);
        req.get().set_index(index);
        let resp = req.send().promise.await?;
        Ok(resp.get()?.get_data()?.to_vec())
    }

    /// Opens the link slot `slot` for this account; returns when it closes (Unix ms).
    pub async fn open_link(&self, slot: &[u8; 32]) -> Result<u64, ClientError> {
        let mut req = self.cap.open_link_request();
        req.get().set_slot(slot);
        let resp = req.send().promise.await?;
        Ok(resp.get()?.get_expires_at())
    }

    /// The request in this account's link slot `slot`, or `None` while there is none.
    pub async fn link_request(&self, slot: &[u8; 32]) -> Result<Option<Vec<u8>>, ClientError> {
        let mut req = self.cap.link_request_request();
        req.get().set_slot(slot);
        let resp = req.send().promise.await?;
        let request = resp.get()?.get_request()?;
        Ok((!request.is_empty()).then(|| request.to_vec()))
    }

    /// Answers the request in this account's link slot `slot`.
    pub async fn answer_link(&self, slot: &[u8; 32], answer: &[u8]) -> Result<(), ClientError> {
        let mut req = self.cap.answer_link_request();
        req.get().set_slot(slot);
        req.get().set_answer(answer);
        req.send().promise.await?;
        Ok(())
    }

    /// Closes this account's link slot `slot` early.
    pub async fn close_link(&self, slot: &[u8; 32]) -> Result<(), ClientError> {
        let mut req = self.cap.close_link_request();
        req.get().set_slot(slot);
        req.send().promise.await?;
        Ok(())
    }

    /// Deletes the account (identity, devices, queues, key packages, blobs).
    pub async fn delete_account(&self) -> Result<(), ClientError> {
        self.cap.delete_account_request().send().promise.await?;
        Ok(())
    }

    /// Registers or refreshes this device's Web Push subscription.
    pub async fn set_push_subscription(&self, endpoint: &str, p256dh: &[u8], auth: &[u8]) -> Result<(), ClientError> {
        let mut req = self.cap.set_push_subscription_request();
        req.get().set_endpoint(endpoint);
        req.get().set_p256dh(p256dh);
        req.get().set_auth(auth);
        req.send().promise.await?;
        Ok(())
    }

    /// Removes this device's Web Push subscription.
    pub async fn remove_push_subscription(&self) -> Result<(), ClientError> {
        self.cap.remove_push_subscription_request().send().promise.await?;
        Ok(())
    }

    /// The server's VAPID public key (65 bytes), to subscribe with.
    pub async fn vapid_public_key(&self) -> Result<Vec<u8>, ClientError> {
        let resp = self.cap.vapid_public_key_request().send().promise.await?;
        Ok(resp.get()?.get_key()?.to_vec())
    }

    /// The STUN/TURN servers for calls (TURN ones with short-lived credentials) and when
    /// those credentials expire (Unix seconds, 0 when none).
    pub async fn ice_servers(&self) -> Result<(Vec<IceServer>, u64), ClientError> {
        let resp = self.cap.ice_servers_request().send().promise.await?;
        let r = resp.get()?;
        let text = |t: capnp::text::Reader<'_>| t.to_string().map_err(|e| ClientError::Input(e.to_string()));
        let mut servers = Vec::new();
        for s in r.get_servers()? {
            let urls = s.get_urls()?.iter().map(|u| text(u?)).collect::<Result<Vec<_>, _>>()?;
            servers.push(IceServer { urls, username: text(s.get_username()?)?, credential: text(s.get_credential()?)? });
        }
        Ok((servers, r.get_expires_at()))
    }
}

/// One STUN or TURN server for WebRTC (`RTCIceServer`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IceServer {
    /// `stun:`/`turn:` URLs.
    pub urls: Vec<String>,
    /// TURN username ("" for STUN).
    pub username: String,
    /// TURN credential ("" for STUN).
    pub credential: String,
}

fn blob_id(d: &[u8]) -> Result<[u8; 16], ClientError> {
    d.try_into().map_err(|_| ClientError::Input("the server sent a malformed blob id".into()))
}
