//! The authorization matrix, generated from the schema: every method of the `Session`
//! interface named in `proto/schema/node.capnp` is called over real QUIC against a real node
//! (SQLite, and PostgreSQL) by four callers who must not get what they ask for — nobody
//! logged in, another user (on the victim's channel, blob, device, account), a revoked
//! device and a device of a deleted account — and each refusal is checked by its code.
//!
//! The method list is read from the schema text, and each method is called through a
//! `match` on its name whose fallback fails the test: a method added to the schema without
//! a row here (and so without a decided check) fails this test.

mod support;
#[path = "support/raw_group.rs"]
mod raw_group;

use std::cell::Cell;
use std::rc::Rc;

use qpq_proto::node_capnp::{listener, session};
use qpq_proto::{wire, ChannelId, DeviceAddress, ErrorCode, RemoteError};
use qpq_server::{Config, RunningNode};
use support::raw::{login, raw_account, Login, RawDevice, RawUser};
use support::*;

/// The methods of `interface Session`, in schema order, read from the schema itself.
fn session_methods() -> Vec<String> {
    let schema = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../proto/schema/node.capnp"))
        .expect("the schema is readable");
    let start = schema.find("interface Session {").expect("the schema has interface Session");
    let body = &schema[start..];
    let end = body.find("\n}").expect("interface Session ends");
    let mut methods = Vec::new();
    for line in body[..end].lines().skip(1) {
        let line = line.trim();
        if line.starts_with('#') {
            continue;
        }
        // `name @N (params) -> (results);`
        let Some((name, rest)) = line.split_once(" @") else { continue };
        if name.chars().all(|c| c.is_ascii_alphanumeric()) && rest.starts_with(|c: char| c.is_ascii_digit()) {
            methods.push(name.to_string());
        }
    }
    assert!(methods.len() >= 19, "parsed {} Session methods from the schema: {methods:?}", methods.len());
    methods
}

/// A valid P-256 public key (the curve's generator point, uncompressed SEC1), for a push
/// subscription's `p256dh`.
const P256_GENERATOR: &str = "046b17d1f2e12c4247f8bce6e563a440f277037d812deb33a0f4a13945d898c2964fe342e2fe1a7f9b8ee7eb4a7c0f9e162bce33576b315ececbb6406837bf51f5";

/// What the victim owns, for the others to reach for.
struct Target {
    user: RawUser,
    device: DeviceAddress,
    channel: ChannelId,
    /// The GroupInfo the victim created the channel with.
    group_info: Vec<u8>,
    blob: [u8; 16],
    /// An open link slot of the victim's account holding a new device's request.
    link: [u8; 32],
}

/// The label the victim's device set (ciphertext, as far as the node knows).
const VICTIM_LABEL: &[u8] = b"alice's laptop, sealed for alice's devices";
/// The label another user sets through `setDeviceLabel`.
const MALLORY_LABEL: &[u8] = b"mallory's own device, sealed";

/// The labels of `user`'s devices as `s` sees them in `listDevices`: one per device for the
/// caller's own account (empty for a device without one), none for anyone else's.
async fn labels_of(s: &session::Client, user: &qpq_proto::UserId) -> Result<Vec<Vec<u8>>, capnp::Error> {
    let mut req = s.list_devices_request();
    req.get().set_user(user.as_str());
    let r = req.send().promise.await?;
    let about = r.get()?.get_about()?;
    about.iter().map(|a| Ok(a.get_label()?.to_vec())).collect()
}

/// The request a new device put into the victim's link slot.
const LINK_REQUEST: &[u8] = b"a new device's sealed link request";

/// A user the victim's account blocks (of another server: any name may be blocked).
const BLOCKED_BY_VICTIM: &str = "eve@elsewhere.example";

/// The users `s`'s account blocks, as `blockedUsers` lists them.
async fn blocked_of(s: &session::Client) -> Result<Vec<String>, capnp::Error> {
    let r = s.blocked_users_request().send().promise.await?;
    let users = r.get()?.get_users()?;
    users.iter().map(|u| Ok(u?.to_string().map_err(|e| capnp::Error::failed(e.to_string()))?)).collect()
}

/// What a call did.
#[derive(Debug, PartialEq)]
enum Outcome {
    /// Refused with this code.
    Refused(ErrorCode),
    /// Refused by the RPC layer: the capability does not have the method.
    Unimplemented,
    /// Answered; the text says what it answered (checked against the victim's state).
    Answered(String),
}

fn outcome(r: Result<String, capnp::Error>) -> Outcome {
    match r {
        Ok(s) => Outcome::Answered(s),
        Err(e) if e.kind == capnp::ErrorKind::Unimplemented || e.extra.contains("not implemented") => {
            Outcome::Unimplemented
        }
        Err(e) => match RemoteError::from_description(&e.extra).code {
            Some(code) => Outcome::Refused(code),
            None => panic!("a refusal without a code: {}", e.extra),
        },
    }
}

/// A listener that counts what it is given.
struct Counter(Rc<Cell<usize>>);

impl listener::Server for Counter {
    fn deliver(
        self: capnp::capability::Rc<Self>,
        params: listener::DeliverParams,
        _: listener::DeliverResults,
    ) -> impl std::future::Future<Output = Result<(), capnp::Error>> + 'static {
        let n = params.get().and_then(|p| p.get_envelopes()).map(|l| l.len() as usize);
        let count = self.0.clone();
        async move {
            count.set(count.get() + n?);
            Ok(())
        }
    }
}

/// Calls `method` on `s`, reaching for `t`'s things. Every method of the schema must have a
/// row here.
async fn call(method: &str, s: &session::Client, t: &Target) -> Result<String, capnp::Error> {
    match method {
        "whoami" => {
            let r = s.whoami_request().send().promise.await?;
            let me = wire::read_device_address(r.get()?.get_device()?)?;
            Ok(format!("whoami {me}"))
        }
        "listDevices" => {
            let mut req = s.list_devices_request();
            req.get().set_user(t.user.id.as_str());
            let r = req.send().promise.await?;
            let r = r.get()?;
            Ok(format!("listDevices {} {}", r.get_devices()?.len(), r.get_about()?.len()))
        }
        "addDevice" => {
            let mut req = s.add_device_request();
            wire::write_device_record(req.get().init_device(), &t.user.device(9).record);
            req.send().promise.await?;
            Ok("addDevice".into())
        }
        "revokeDevice" => {
            let mut req = s.revoke_device_request();
            req.get().set_device_id(&t.device.device.0);
            req.send().promise.await?;
            Ok("revokeDevice".into())
        }
        "uploadKeyPackages" => {
            let mut req = s.upload_key_packages_request();
            req.get().init_packages(1).set(0, b"an opaque key package of the caller");
            let r = req.send().promise.await?;
            Ok(format!("uploadKeyPackages {}", r.get()?.get_available()))
        }
        "claimKeyPackages" => {
            let mut req = s.claim_key_packages_request();
            req.get().set_user(t.user.id.as_str());
            let r = req.send().promise.await?;
            Ok(format!("claimKeyPackages {}", r.get()?.get_packages()?.len()))
        }
        "keyPackageCount" => {
            let r = s.key_package_count_request().send().promise.await?;
            Ok(format!("keyPackageCount {}", r.get()?.get_available()))
        }
        "createChannel" => {
            let mut req = s.create_channel_request();
            req.get().set_channel_id(t.channel.as_bytes());
            req.get().set_group_info(&t.group_info);
            req.send().promise.await?;
            Ok("createChannel".into())
        }
        "channelInfo" => {
            let mut req = s.channel_info_request();
            req.get().set_channel_id(t.channel.as_bytes());
            req.send().promise.await?;
            Ok("channelInfo".into())
        }
        "commit" => {
            let mut req = s.commit_request();
            let mut r = req.get().init_request();
            r.set_channel_id(t.channel.as_bytes());
            r.set_epoch(0);
            r.set_commit(&mls::commit(&t.channel, 0, b"a commit"));
            r.set_client_msg_id(&[0xc0; 16]);
            req.send().promise.await?;
            Ok("commit".into())
        }
        "enqueue" => {
            let mut req = s.enqueue_request();
            req.get().set_channel_id(t.channel.as_bytes());
            req.get().set_payload(&mls::application(&t.channel, 0, b"a message"));
            req.get().set_client_msg_id(&[0xe0; 16]);
            req.send().promise.await?;
            Ok("enqueue".into())
        }
        "fetch" => {
            let mut req = s.fetch_request();
            req.get().set_limit(100);
            let r = req.send().promise.await?;
            Ok(format!("fetch {}", r.get()?.get_envelopes()?.len()))
        }
        "ack" => {
            let mut req = s.ack_request();
            req.get().set_up_to(u64::MAX);
            req.send().promise.await?;
            Ok("ack".into())
        }
        "subscribe" => {
            let count = Rc::new(Cell::new(0));
            let mut req = s.subscribe_request();
            req.get().set_listener(capnp_rpc::new_client(Counter(count.clone())));
            let r = req.send().promise.await?;
            let _handle = r.get()?.get_handle()?;
            sleep(300).await;
            Ok(format!("subscribe {}", count.get()))
        }
        "createBlob" => {
            let mut req = s.create_blob_request();
            req.get().set_channel_id(t.channel.as_bytes());
            req.get().set_size(4);
            req.get().set_chunk_size(4);
            req.send().promise.await?;
            Ok("createBlob".into())
        }
        "putChunk" => {
            let mut req = s.put_chunk_request();
            req.get().set_blob_id(&t.blob);
            req.get().set_index(1);
            req.get().set_data(b"evil");
            req.send().promise.await?;
            Ok("putChunk".into())
        }
        "getChunk" => {
            let mut req = s.get_chunk_request();
            req.get().set_blob_id(&t.blob);
            req.get().set_index(0);
            let r = req.send().promise.await?;
            Ok(format!("getChunk {}", r.get()?.get_data()?.len()))
        }
        "blobInfo" => {
            let mut req = s.blob_info_request();
            req.get().set_blob_id(&t.blob);
            req.send().promise.await?;
            Ok("blobInfo".into())
        }
        "deleteAccount" => {
            s.delete_account_request().send().promise.await?;
            Ok("deleteAccount".into())
        }
        "setPushSubscription" => {
            let mut req = s.set_push_subscription_request();
            req.get().set_endpoint("https://push.example/authorization-matrix");
            req.get().set_p256dh(&hex::decode(P256_GENERATOR).expect("hex"));
            req.get().set_auth(&[7; 16]);
            req.send().promise.await?;
            Ok("setPushSubscription".into())
        }
        "removePushSubscription" => {
            s.remove_push_subscription_request().send().promise.await?;
            Ok("removePushSubscription".into())
        }
        "vapidPublicKey" => {
            let r = s.vapid_public_key_request().send().promise.await?;
            Ok(format!("vapidPublicKey {}", r.get()?.get_key()?.len()))
        }
        "iceServers" => {
            let r = s.ice_servers_request().send().promise.await?;
            let r = r.get()?;
            let servers = r.get_servers()?;
            // The TURN entry's username is "<expiry>:<the caller's pseudonym>": never another's.
            let turn_user = servers.get(servers.len() - 1).get_username()?.to_string().unwrap_or_default();
            let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
            let fresh = r.get_expires_at() > now;
            Ok(format!("iceServers {} {}", servers.len(), fresh && turn_user.starts_with(&format!("{}:", r.get_expires_at()))))
        }
        "setDeviceLabel" => {
            let mut req = s.set_device_label_request();
            req.get().set_label(MALLORY_LABEL);
            req.send().promise.await?;
            // It labelled the caller's own device: that is where the label shows.
            let r = s.whoami_request().send().promise.await?;
            let me = wire::read_device_address(r.get()?.get_device()?)?;
            let labels = labels_of(s, &me.user).await?;
            Ok(format!("setDeviceLabel {}", labels == vec![MALLORY_LABEL.to_vec()]))
        }
        "openLink" => {
            // The victim's slot name: taken, whoever asks.
            let mut req = s.open_link_request();
            req.get().set_slot(&t.link);
            let r = req.send().promise.await?;
            Ok(format!("openLink {}", r.get()?.get_expires_at() > 0))
        }
        "linkRequest" => {
            let mut req = s.link_request_request();
            req.get().set_slot(&t.link);
            let r = req.send().promise.await?;
            Ok(format!("linkRequest {}", r.get()?.get_request()?.len()))
        }
        "answerLink" => {
            let mut req = s.answer_link_request();
            req.get().set_slot(&t.link);
            req.get().set_answer(b"an answer sealed to the attacker's own keys");
            req.send().promise.await?;
            Ok("answerLink".into())
        }
        "closeLink" => {
            let mut req = s.close_link_request();
            req.get().set_slot(&t.link);
            req.send().promise.await?;
            Ok("closeLink".into())
        }
        "setBlocked" => {
            // Tries to lift the victim's block: a block is the calling account's, so only the
            // caller's own list could change (the victim's is checked by `victim_untouched`).
            let mut req = s.set_blocked_request();
            req.get().set_user(BLOCKED_BY_VICTIM);
            req.get().set_blocked(false);
            req.send().promise.await?;
            Ok("setBlocked".into())
        }
        "blockedUsers" => Ok(format!("blockedUsers {:?}", blocked_of(s).await?)),
        "putGroupInfo" => {
            let mut req = s.put_group_info_request();
            req.get().set_channel_id(t.channel.as_bytes());
            req.get().set_group_info(&t.group_info);
            req.send().promise.await?;
            Ok("putGroupInfo".into())
        }
        "groupInfo" => {
            let mut req = s.group_info_request();
            req.get().set_channel_id(t.channel.as_bytes());
            let r = req.send().promise.await?;
            Ok(format!("groupInfo {}", r.get()?.get_group_info()?.len()))
        }
        other => panic!("the schema's Session.{other} has no row in the authorization matrix: decide who may call it and add it"),
    }
}

/// What another user gets: a refusal, or an answer about their own things only (checked
/// against the victim's state afterwards by `victim_untouched`).
fn expected_for_another_user(method: &str, mallory: &DeviceAddress) -> Outcome {
    use ErrorCode::*;
    match method {
        "whoami" => Outcome::Answered(format!("whoami {mallory}")),
        // The directory is public: anyone may read a user's device records to verify them;
        // their labels and last logins are for the account's own devices (none here).
        "listDevices" => Outcome::Answered("listDevices 1 0".into()),
        "addDevice" => Outcome::Refused(BadRequest),
        // Names a device id of the caller's own account, which has no such device.
        "revokeDevice" => Outcome::Refused(NoSuchDevice),
        // Key packages go to the caller's own device.
        "uploadKeyPackages" => Outcome::Answered("uploadKeyPackages 1".into()),
        // Claiming is how a chat with someone starts (rate limited per account).
        "claimKeyPackages" => Outcome::Answered("claimKeyPackages 1".into()),
        "keyPackageCount" => Outcome::Answered("keyPackageCount 1".into()),
        "createChannel" => Outcome::Refused(ChannelExists),
        "channelInfo" | "commit" | "enqueue" | "createBlob" | "putChunk" | "getChunk" | "blobInfo" | "putGroupInfo"
        | "groupInfo" => Outcome::Refused(NotMember),
        // The caller's own (empty) queue, never the victim's.
        "fetch" => Outcome::Answered("fetch 0".into()),
        "ack" => Outcome::Answered("ack".into()),
        "subscribe" => Outcome::Answered("subscribe 0".into()),
        // Deletes the caller's own account only.
        "deleteAccount" => Outcome::Answered("deleteAccount".into()),
        // A push subscription belongs to the calling device; the VAPID key is the cluster's.
        "setPushSubscription" => Outcome::Answered("setPushSubscription".into()),
        "removePushSubscription" => Outcome::Answered("removePushSubscription".into()),
        "vapidPublicKey" => Outcome::Answered("vapidPublicKey 65".into()),
        // The node's STUN/TURN servers, with TURN credentials derived for the caller.
        "iceServers" => Outcome::Answered("iceServers 2 true".into()),
        // Labels the calling device only (the victim's labels are checked by
        // `victim_untouched`).
        "setDeviceLabel" => Outcome::Answered("setDeviceLabel true".into()),
        // A link slot is its account's: another account cannot take its name, read its
        // request or answer it (`no_such_link`, as if it did not exist), and closing it
        // closes nothing of the caller's (checked by `victim_untouched`).
        "openLink" => Outcome::Refused(BadRequest),
        "linkRequest" | "answerLink" => Outcome::Refused(NoSuchLink),
        "closeLink" => Outcome::Answered("closeLink".into()),
        // Blocks are the calling account's: another user sets and reads its own list only
        // (empty here), never the victim's.
        "setBlocked" => Outcome::Answered("setBlocked".into()),
        "blockedUsers" => Outcome::Answered("blockedUsers []".into()),
        other => panic!("the schema's Session.{other} has no expected outcome for another user: add one"),
    }
}

/// The victim's things are as they were: its device and its label, key packages, channel,
/// blob, queue, link slot and blocks.
async fn victim_untouched(node: &RunningNode, victim: &RawDevice, t: &Target) {
    let v = login(node, victim).await;
    let (_, devices) = v.session.list_devices(&t.user.id).await.unwrap();
    assert_eq!(devices.len(), 1, "the victim still has exactly its one live device");
    let labels = labels_of(&v.session.capability(), &t.user.id).await.unwrap();
    assert_eq!(labels, vec![VICTIM_LABEL.to_vec()], "the victim's device label is unchanged");
    assert_eq!(v.session.key_package_count().await.unwrap(), 2, "the victim's key packages: one claimed by another, one left");
    let (epoch, members) = v.session.channel_info(&t.channel).await.unwrap();
    assert_eq!((epoch, members), (0, vec![t.device.clone()]), "the victim's channel is unchanged");
    let (info, _) = v.session.group_info(&t.channel).await.unwrap();
    assert_eq!(info, t.group_info, "the GroupInfo kept for the victim's channel is hers");
    assert_eq!(v.session.get_chunk(&t.blob, 0).await.unwrap(), b"mine".to_vec());
    assert_eq!(v.session.blob_chunks_stored(&t.blob).await.unwrap(), 1, "nobody wrote into the victim's blob");
    assert_eq!(v.session.fetch(0, 100).await.unwrap(), vec![], "nothing was queued for the victim");
    let mut req = v.session.capability().link_request_request();
    req.get().set_slot(&t.link);
    let r = req.send().promise.await.expect("the victim's link slot is still open");
    assert_eq!(r.get().unwrap().get_request().unwrap(), LINK_REQUEST, "the new device's request is still there");
    let stranger = rpc(&raw_connection(node).await).await;
    let mut req = stranger.node_service().link_answer_request();
    req.get().set_slot(&t.link);
    let r = req.send().promise.await.expect("the new device polls the slot");
    assert!(r.get().unwrap().get_answer().unwrap().is_empty(), "nobody answered the victim's link request");
    let blocked = blocked_of(&v.session.capability()).await.unwrap();
    assert_eq!(blocked, vec![BLOCKED_BY_VICTIM.to_string()], "the victim's blocks are unchanged");
}

fn node_with(dir: &std::path::Path, database: Option<String>) -> RunningNode {
    let mut c = Config::for_tests(dir);
    c.database = database;
    // Sessions of revoked devices stay open here, so their calls reach the per-call check
    // that stands behind the instant close (tested in revocation.rs).
    c.close_revoked_sessions = false;
    c.stun_url = vec!["stun:127.0.0.1:3478".into()];
    c.turn_url = vec!["turn:127.0.0.1:3478?transport=udp".into()];
    c.turn_secret = Some("matrix-secret".into());
    qpq_server::spawn(c).expect("node starts")
}

async fn matrix(node: &RunningNode) {
    let methods = session_methods();

    // The victim: Alice, with a channel, a blob in it and key packages.
    let (alice, alice_devices) = raw_account(node, "alice", 11, 2).await;
    let a1 = login(node, &alice_devices[0]).await;
    let channel = ChannelId::from_slice(&[0xa1; 32]).unwrap();
    let (_, group_info) = raw_group::RawGroup::create(&alice_devices[0], &channel);
    let mut req = a1.session.capability().create_channel_request();
    req.get().set_channel_id(channel.as_bytes());
    req.get().set_group_info(&group_info);
    req.send().promise.await.expect("alice creates her channel");
    let mut req = a1.session.capability().put_group_info_request();
    req.get().set_channel_id(channel.as_bytes());
    req.get().set_group_info(&group_info);
    req.send().promise.await.expect("alice hands in her channel's GroupInfo");
    let blob = a1.session.create_blob(&channel, 4, 4, 0).await.unwrap();
    a1.session.put_chunk(&blob, 0, b"mine").await.unwrap();
    a1.session.upload_key_packages(&[b"alice kp 1".to_vec(), b"alice kp 2".to_vec(), b"alice kp 3".to_vec()], None).await.unwrap();
    let mut req = a1.session.capability().set_device_label_request();
    req.get().set_label(VICTIM_LABEL);
    req.send().promise.await.expect("alice labels her device");
    // Alice shows a link code; a new device has handed in its request.
    let link = [0x1c; 32];
    let mut req = a1.session.capability().open_link_request();
    req.get().set_slot(&link);
    req.send().promise.await.expect("alice opens a link slot");
    let new_device = rpc(&raw_connection(node).await).await;
    let mut req = new_device.node_service().link_request_request();
    req.get().set_slot(&link);
    req.get().set_request(LINK_REQUEST);
    req.send().promise.await.expect("the new device hands in its request");
    let mut req = a1.session.capability().set_blocked_request();
    req.get().set_user(BLOCKED_BY_VICTIM);
    req.get().set_blocked(true);
    req.send().promise.await.expect("alice blocks someone");
    let t = Target { user: alice, device: alice_devices[0].addr(), channel, group_info, blob, link };

    // A revoked device: Alice's second, logged in before Alice revokes it.
    let revoked = login(node, &alice_devices[1]).await;
    a1.session.revoke_device(&alice_devices[1].addr().device).await.unwrap();
    // A device of a deleted account: Dave's second, logged in before his first deletes it all.
    let (_, dave) = raw_account(node, "dave", 13, 2).await;
    let deleted = login(node, &dave[1]).await;
    login(node, &dave[0]).await.session.delete_account().await.unwrap();
    // Nobody: the bootstrap capability of a fresh stream, used as if it were a Session.
    let anonymous = rpc(&raw_connection(node).await).await;
    let nobody: session::Client = capnp::capability::FromClientHook::new(anonymous.node_service().client.hook);
    // Another user.
    let (_, mallory_devices) = raw_account(node, "mallory", 17, 1).await;
    let mallory: Login = login(node, &mallory_devices[0]).await;

    let mut checked = 0;
    for m in &methods {
        let got = outcome(call(m, &nobody, &t).await);
        assert_eq!(got, Outcome::Unimplemented, "Session.{m} without logging in");
        let got = outcome(call(m, &revoked.session.capability(), &t).await);
        assert_eq!(got, Outcome::Refused(ErrorCode::DeviceRevoked), "Session.{m} from a revoked device");
        let got = outcome(call(m, &deleted.session.capability(), &t).await);
        assert_eq!(got, Outcome::Refused(ErrorCode::DeviceRevoked), "Session.{m} from a deleted account");
        checked += 1;
    }
    // Another user last, deleting the account at the very end.
    let mut order: Vec<&String> = methods.iter().collect();
    order.sort_by_key(|m| *m == "deleteAccount");
    for m in order {
        let got = outcome(call(m, &mallory.session.capability(), &t).await);
        assert_eq!(got, expected_for_another_user(m, &mallory_devices[0].addr()), "Session.{m} as another user");
    }
    assert_eq!(checked, methods.len());
    victim_untouched(node, &alice_devices[0], &t).await;
    // After her deleteAccount, Mallory's own session is refused too.
    let got = outcome(call("whoami", &mallory.session.capability(), &t).await);
    assert_eq!(got, Outcome::Refused(ErrorCode::DeviceRevoked));
    drop((a1, revoked, deleted, anonymous));
}

#[test]
fn every_session_method_refuses_the_unauthorized_on_sqlite() {
    run(async {
        let dir = tempfile::tempdir().unwrap();
        let node = node_with(dir.path(), None);
        matrix(&node).await;
        node.stop();
    });
}

#[test]
fn every_session_method_refuses_the_unauthorized_on_postgres() {
    run(async {
        let db = create_database().await;
        let dir = tempfile::tempdir().unwrap();
        let node = node_with(dir.path(), Some(db.url.clone()));
        matrix(&node).await;
        node.stop();
        db.drop_database().await;
    });
}

/// What `listDevices` tells `s` of `user`: (label, lastLogin) per device, in the order of
/// the records, whose ids come first.
async fn about_of(s: &session::Client, user: &qpq_proto::UserId) -> (Vec<[u8; 16]>, Vec<(Vec<u8>, u64)>) {
    let mut req = s.list_devices_request();
    req.get().set_user(user.as_str());
    let r = req.send().promise.await.expect("listDevices");
    let r = r.get().unwrap();
    let ids = r.get_devices().unwrap().iter().map(|d| d.get_device_id().unwrap().try_into().unwrap()).collect();
    let about = r.get_about().unwrap().iter().map(|a| (a.get_label().unwrap().to_vec(), a.get_last_login())).collect();
    (ids, about)
}

/// Device labels and last logins are the account's own: a device labels itself (at most 256
/// bytes, empty clears it), every device of the account sees every label and last login, in
/// the order of the records, and anyone else sees neither.
#[test]
fn device_labels_and_last_logins_are_shown_to_the_accounts_own_devices_only() {
    run(async {
        let dir = tempfile::tempdir().unwrap();
        let node = node_with(dir.path(), None);
        let (alice, devices) = raw_account(&node, "alice", 21, 2).await;
        let before = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as u64;
        let a2 = login(&node, &devices[1]).await;
        let a1 = login(&node, &devices[0]).await;
        let (s1, s2) = (a1.session.capability(), a2.session.capability());

        let set = |s: &session::Client, label: Vec<u8>| {
            let mut req = s.set_device_label_request();
            req.get().set_label(&label);
            req.send().promise
        };
        set(&s2, b"sealed: phone".to_vec()).await.expect("a device labels itself");
        let (ids, about) = about_of(&s1, &alice.id).await;
        assert_eq!(ids, vec![devices[0].addr().device.0, devices[1].addr().device.0]);
        assert_eq!(about.len(), 2, "one entry per device");
        assert_eq!(about[0].0, b"", "the first device has no label");
        assert_eq!(about[1].0, b"sealed: phone", "another device of the account sees the label");
        assert!(about.iter().all(|(_, at)| *at >= before), "both logged in just now: {about:?}");

        // At most 256 bytes; an empty label clears it.
        set(&s1, vec![0xab; 256]).await.expect("256 bytes are accepted");
        let e = set(&s1, vec![0xab; 257]).await.err().expect("257 bytes are refused");
        assert_eq!(RemoteError::from_description(&e.extra).code, Some(ErrorCode::TooLarge));
        set(&s2, Vec::new()).await.expect("an empty label clears it");
        let (_, about) = about_of(&s2, &alice.id).await;
        assert_eq!((about[0].0.clone(), about[1].0.clone()), (vec![0xab; 256], Vec::new()));

        // Another account sees the records, never labels or last logins.
        let (_, bob) = raw_account(&node, "bob", 22, 1).await;
        let b = login(&node, &bob[0]).await;
        let (ids, about) = about_of(&b.session.capability(), &alice.id).await;
        assert_eq!((ids.len(), about.len()), (2, 0));
        node.stop();
    });
}

#[test]
fn the_matrix_reads_every_method_from_the_schema() {
    let methods = session_methods();
    assert_eq!(methods.first().map(String::as_str), Some("whoami"));
    for m in [
        "revokeDevice",
        "enqueue",
        "fetch",
        "subscribe",
        "getChunk",
        "deleteAccount",
        "setBlocked",
        "blockedUsers",
    ] {
        assert!(methods.iter().any(|x| x == m), "{m} is read from the schema");
    }
    let listener_methods = methods.iter().filter(|m| *m == "deliver").count();
    assert_eq!(listener_methods, 0, "methods of other interfaces are not read as Session's");
}
