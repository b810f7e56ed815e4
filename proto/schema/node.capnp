# quicproquo NodeService: the one API spoken by browsers (through the gateway), native clients and,
# later, other servers. Everything a server stores arrives through this schema.
#
# Evolution rules (see ARCHITECTURE.md, "Protocol versioning"):
#   * never renumber or retype a field or method; add new ones with the next ordinal;
#   * new features get new methods or new interfaces reached from Session;
#   * `protocolVersion` below is bumped when a client must know about a change; servers keep
#     serving every version from `minProtocolVersion` up.
#
# Errors are Cap'n Proto exceptions whose reason starts with a stable code, then ": ", then a
# human sentence, e.g. "not_member: you are not a member of this conversation". Codes are listed
# in types/src/error_code.rs.

@0x99b9af36864462f8;

# Version 2 (2026-12-06): the login signature covers the user's own domain and a channel binding
# (`login_bytes` in types/src/domain.rs); version 1 logins are no longer accepted.
const protocolVersion :UInt16 = 2;
const minProtocolVersion :UInt16 = 2;

# A device of a user: `user` is "name@domain", `deviceId` 16 random bytes chosen by the device.
struct DeviceAddress {
  user @0 :Text;
  deviceId @1 :Data;
}

# A device record, signed by the owner's identity key (Ed25519) over the canonical encoding in
# proto/src/domain.rs (`DeviceRecord::signed_bytes`).
struct DeviceRecord {
  user @0 :Text;
  deviceId @1 :Data;
  deviceKey @2 :Data;       # Ed25519 public key of the device (its MLS signature key), 32 bytes
  createdAt @3 :UInt64;     # milliseconds since the Unix epoch, chosen by the signer
  signature @4 :Data;       # Ed25519 signature by the identity key, 64 bytes
}

# What an account's own devices learn of each of them besides its record.
struct DeviceAbout {
  label @0 :Data;           # ciphertext set by the device (`Session.setDeviceLabel`), or empty
  lastLogin @1 :UInt64;     # Unix ms of its last login, 0 before the first
}

# One message in a device's delivery queue.
struct Envelope {
  seq @0 :UInt64;           # per-device, strictly increasing
  channelId @1 :Data;
  sender @2 :DeviceAddress; # not set since protocol version 2: MLS authenticates every sender
  kind @3 :Kind;
  payload @4 :Data;         # an MLS message (TLS-serialised MlsMessage); opaque to the server
  serverTime @5 :UInt64;    # milliseconds since the Unix epoch when the server accepted it
  expiresAt @6 :UInt64;     # 0 = never; the server drops undelivered copies after this

  enum Kind {
    application @0;         # MLS PrivateMessage carrying an application message
    commit @1;              # MLS commit (handshake); ordered per channel by the server
    welcome @2;             # MLS Welcome for a device that was just added
    proposal @3;            # MLS proposal (reserved)
    devices @4;             # not MLS: the node says a member's devices changed (its account was
                            # restored, see restoreDevice); payload: that member's user name.
                            # A hint to read the directory again, nothing more.
    account @5;             # not MLS: another device of this account changed the account's own
                            # settings (setBlocked); empty, on the reserved channel id 0x00,
                            # which createChannel refuses. A hint to read them again.
  }
}

# A key package claimed for one device of a user.
struct ClaimedKeyPackage {
  deviceId @0 :Data;
  keyPackage @1 :Data;      # TLS-serialised KeyPackage
  lastResort @2 :Bool;      # true when the device had no one-time package left
}

# A commit for one channel at one epoch, with its side effects on routing.
struct CommitRequest {
  channelId @0 :Data;
  epoch @1 :UInt64;         # the epoch the commit was created in (the channel's current epoch)
  commit @2 :Data;          # MLS commit message, fanned out to every current member but the sender
  welcome @3 :Data;         # MLS Welcome for `addDevices`; empty when nobody is added
  addDevices @4 :List(DeviceAddress);
  removeDevices @5 :List(DeviceAddress);
  clientMsgId @6 :Data;     # 16 bytes; a retry with the same id returns the first outcome
}

struct ChannelInfo {
  channelId @0 :Data;
  epoch @1 :UInt64;
  members @2 :List(DeviceAddress);
  createdAt @3 :UInt64;
}

struct BlobInfo {
  blobId @0 :Data;
  size @1 :UInt64;
  chunkSize @2 :UInt32;
  chunksStored @3 :UInt32;  # chunks 0..chunksStored are present
  complete @4 :Bool;
}

# The unauthenticated entry point of a server node. Everything else is reached through the
# `Session` capability that `login` returns; there is no bearer token.
interface NodeService {
  # Version handshake. Clients call this first and stop if they are older than
  # `minProtocolVersion`.
  hello @0 (protocolVersion :UInt16, client :Text)
        -> (protocolVersion :UInt16, minProtocolVersion :UInt16, domain :Text, serverTime :UInt64);

  # Create `user` ("name@domain", the domain must be this server's) with its identity key and
  # its first device. Refused when the name is taken or in its cooling-off period after deletion.
  registerIdentity @1 (user :Text, identityKey :Data, device :DeviceRecord) -> ();

  # Challenge–response login with the device key: sign
  # `login_bytes(user, deviceId, nonce, binding)` with the device's Ed25519 key, where the bytes
  # name the user's own domain and `binding` is the TLS exporter value ("EXPORTER-qpq-login",
  # 32 bytes) of the QUIC connection when the client reaches the node directly, or empty when it
  # cannot read it (a browser). `login_failed` for a wrong signature or challenge;
  # `device_revoked` when the device is not registered (revoked, or its account deleted).
  challenge @2 (user :Text, deviceId :Data) -> (nonce :Data);
  login @3 (user :Text, deviceId :Data, nonce :Data, signature :Data) -> (session :Session);

  # Linking a device, the new device's side. A device of the account opens a link slot
  # (`Session.openLink`) and shows a link code; the new device derives the slot's name and a key
  # from that code, so the node sees only a slot name and ciphertext in both directions. The
  # code is good for ten minutes and one hand-over.
  # `linkRequest` puts the new device's request (ciphertext, at most 4 KiB) into an open slot
  # that has none yet; `no_such_link` when no such slot is open (a wrong, expired or used code).
  linkRequest @4 (slot :Data, request :Data) -> ();
  # The account device's answer, or empty while there is none yet. Reading a non-empty answer
  # closes the slot. `no_such_link` when no such slot is open.
  linkAnswer @5 (slot :Data) -> (answer :Data);

  # Restoring an account from a backup on a new device, when no device of it may be left.
  # `device` is the new device's record, signed by the identity key; `signature` is the identity
  # key's signature over `restore_bytes(device, nonce)` (types/src/domain.rs), `nonce` from
  # `challenge(user, device.deviceId)` on this stream. The node revokes every other device of the
  # account (their sessions close), registers this one, and queues a `devices` envelope for the
  # other members of every channel the account was in, so their clients add the new device.
  # `login_failed` for a wrong signature or challenge; `no_such_user`; rate-limited like logins.
  # Then the new device logs in as usual.
  restoreDevice @6 (user :Text, device :DeviceRecord, nonce :Data, signature :Data) -> ();

  # Reserved: @7 federation relay (server-to-server), @8 key-transparency log heads.
}

# What a logged-in device may do. Every method checks the caller against the data it touches,
# and that the calling device still exists: once it is revoked or its account deleted, every
# call fails with `device_revoked` and the node closes the session's stream. Bounds: a session
# has at most one subscription and a bounded number of calls in flight (`quota_exceeded`);
# accounts have quotas (queue depth per device, file bytes, key packages held:
# `quota_exceeded`) and rate limits (logins, claims, sends: `rate_limited`, whose sentence
# ends "retry after N ms"). Every envelope expires (the server's lifetime, 30 days by default).
interface Session {
  whoami @0 () -> (device :DeviceAddress);

  # --- devices (at most 5 per identity) ---
  # Devices of any user on this server, and its identity key, so clients can verify records.
  # For the caller's own account only, `about` has one entry per device, in the same order:
  # its label (ciphertext its devices made, see `setDeviceLabel`) and when it last logged in;
  # for anyone else's account it is empty.
  listDevices @1 (user :Text) -> (identityKey :Data, devices :List(DeviceRecord), about :List(DeviceAbout));
  addDevice @2 (device :DeviceRecord) -> ();
  revokeDevice @3 (deviceId :Data) -> ();

  # --- key packages ---
  uploadKeyPackages @4 (packages :List(Data), lastResort :Data) -> (available :UInt32);
  # One package for every device of `user` (the caller's own device is skipped), or, when
  # `devices` is not empty, for those of its devices only (adding a user's new device to
  # conversations takes a package of that device alone).
  claimKeyPackages @5 (user :Text, devices :List(Data)) -> (packages :List(ClaimedKeyPackage));
  keyPackageCount @6 () -> (available :UInt32);

  # --- channels (one per MLS group; channelId is the MLS group id) ---
  # `groupInfo` is the new MLS group's GroupInfo (an MLSMessage) with its ratchet tree, at
  # epoch 0, signed by the caller's device, whose leaf is the only one: the node keeps the
  # group's public state from it and validates every commit against that state (a commit
  # must verify, its new leaves must carry the keys the directory holds for the devices they
  # name, and `addDevices`/`removeDevices` must equal its proposals; else `bad_mls_message`).
  createChannel @7 (channelId :Data, groupInfo :Data) -> (info :ChannelInfo);
  channelInfo @8 (channelId :Data) -> (info :ChannelInfo);
  # The node reads the clear MLS framing of what it is handed: the commit must be a commit of
  # this channel (its MLS group id) made in `epoch` or before, the Welcome a whole MLS Welcome, and an
  # enqueued payload an encrypted application message of the channel; anything else is refused
  # with `bad_mls_message` and changes nothing.
  commit @9 (request :CommitRequest) -> (epoch :UInt64, serverTime :UInt64);
  # Fan an application message out to every member device but the sender's.
  enqueue @10 (channelId :Data, payload :Data, clientMsgId :Data, ttlSeconds :UInt32)
          -> (serverTime :UInt64, duplicate :Bool);

  # --- delivery queue of the calling device ---
  # At most `limit` envelopes and, past the first, at most `maxBytes` of payload (0: the
  # server's bound, 4 MiB; larger values are lowered to it). The bound is applied in the
  # server's query, so a large queue costs the server no more than one answer.
  fetch @11 (after :UInt64, limit :UInt32, maxBytes :UInt32) -> (envelopes :List(Envelope));
  ack @12 (upTo :UInt64) -> ();
  # The server calls `listener.deliver` with every envelope after `after`, in order, then with
  # each new one as it arrives, waiting for each call to return before the next; what the
  # answer says is stored is acknowledged. Dropping the returned handle (or the connection)
  # ends the subscription.
  subscribe @13 (listener :Listener, after :UInt64) -> (handle :Subscription);

  # --- blobs: encrypted client-side, stored in chunks, readable by members of `channelId` ---
  # `ttlSeconds` (0: the server's retention) shortens the blob's life, e.g. to the
  # conversation's disappearing-message timer.
  createBlob @14 (channelId :Data, size :UInt64, chunkSize :UInt32, ttlSeconds :UInt32) -> (info :BlobInfo);
  putChunk @15 (blobId :Data, index :UInt32, data :Data) -> (info :BlobInfo);
  getChunk @16 (blobId :Data, index :UInt32) -> (data :Data);
  blobInfo @17 (blobId :Data) -> (info :BlobInfo);

  # --- account ---
  # Removes identity, devices, key packages, queues, memberships and blobs. The name can be
  # registered again only after the server's cooling-off period.
  deleteAccount @18 () -> ();

  # --- Web Push (RFC 8030, with RFC 8291 payload encryption and RFC 8292 VAPID) ---
  # Registers (or refreshes: the same call again replaces it) the push subscription of the
  # calling device, as `PushSubscription` gives it: the push service's `endpoint` (an https
  # URL), `p256dh` (the browser's P-256 public key, 65 bytes uncompressed) and `auth` (16
  # bytes). When something is queued for this device and no session of it picks it up, the
  # cluster sends one push whose payload carries no message content.
  setPushSubscription @19 (endpoint :Text, p256dh :Data, auth :Data) -> ();
  # Removes the calling device's push subscription (nothing to do when it has none).
  removePushSubscription @20 () -> ();
  # The cluster's VAPID public key (P-256, 65 bytes uncompressed): the
  # `applicationServerKey` to subscribe with.
  vapidPublicKey @21 () -> (key :Data);

  # --- calls (WebRTC; signalling travels inside MLS, never through these methods) ---
  # The STUN and TURN servers to use, TURN ones with credentials valid until `expiresAt` (Unix
  # seconds; 0 when there are none): username "<expiry>:<pseudonym>", credential
  # base64(HMAC-SHA1(secret shared with the TURN server, username)). Empty when the node knows
  # no ICE servers (calls then connect directly or not at all).
  iceServers @22 () -> (servers :List(IceServer), expiresAt :UInt64);

  # Sets the calling device's label: what its account's devices call it ("Chromium on
  # Linux"), encrypted by them under a key of the account (at most 256 bytes; empty clears
  # it). The node stores it and shows it to the account's own devices only.
  setDeviceLabel @27 (label :Data) -> ();

  # --- linking a device, the account's side (see NodeService.linkRequest) ---
  # Opens the slot `slot` (32 bytes) for the node's link lifetime (`--link-secs`, ten minutes
  # by default); returns when it closes (Unix ms). At most
  # three slots of an account are open at once (`quota_exceeded`); `bad_request` when the name
  # is taken.
  openLink @23 (slot :Data) -> (expiresAt :UInt64);
  # The new device's request in one of this account's open slots, or empty while there is
  # none yet; `no_such_link` when the slot is not open (expired, or closed by its answer) or is
  # another account's.
  linkRequest @24 (slot :Data) -> (request :Data);
  # Answers the request in one of this account's open slots (at most 64 KiB of ciphertext),
  # once; `no_such_link` when the slot is not open or holds no request, `bad_request` when it was
  # answered already.
  answerLink @25 (slot :Data, answer :Data) -> ();
  # Closes one of this account's slots early (the person cancelled); nothing to do when it is
  # not open.
  closeLink @26 (slot :Data) -> ();

  # --- blocking (per account, enforced by the node) ---
  # The calling device's account blocks `user` ("name@domain", of this server or another; it
  # need not exist), or, with `blocked` false, unblocks them; setting what is already set
  # changes nothing. While `user` is blocked, what they send in a conversation of only the two
  # accounts reaches none of the account's devices (their call succeeds as usual), and their
  # commits adding a device of the account are refused with `not_allowed`; in conversations
  # with more people delivery is unchanged (hiding them there is the clients' business).
  # `bad_request` for oneself; at most `--max-blocks-per-account` (10,000 by default) blocked users
  # (`quota_exceeded`); rate-limited per account.
  setBlocked @28 (user :Text, blocked :Bool) -> ();
  # The users the calling device's account blocks, sorted by name: every device of the account
  # reads the same list.
  blockedUsers @29 () -> (users :List(Text));

  # --- rejoining a group (RFC 9420 §12.4.3.2 external commits, resync) ---
  # The GroupInfo (an MLSMessage, without the ratchet tree) of the channel's current epoch, signed
  # by the calling member's leaf, as its committer hands it in right after its commit. The node
  # checks the group context and the signature against the group it keeps and keeps the
  # latest; an accepted commit makes it stale (cleared). `stale_epoch` when the channel has moved
  # on.
  putGroupInfo @30 (channelId :Data, groupInfo :Data) -> ();
  # What a member that cannot process a commit needs to rejoin by an external commit that
  # replaces its own leaf: the kept GroupInfo and the ratchet tree the node holds (TLS-serialised
  # RatchetTree). Members only; `no_such_channel` when no GroupInfo of the current epoch is kept.
  groupInfo @31 (channelId :Data) -> (groupInfo :Data, ratchetTree :Data);

  # Reserved for later features (each will get its own ordinal here):
  # contacts, profiles, group roles, key transparency.
}

# One entry of WebRTC's `RTCConfiguration.iceServers`.
struct IceServer {
  urls @0 :List(Text);
  username @1 :Text;
  credential @2 :Text;
}

interface Listener {
  # `stored`: the highest sequence number the listener has kept for good (0: none); the node
  # acknowledges up to it as `ack` would, so a listener need not call `ack` for deliveries.
  deliver @0 (envelopes :List(Envelope)) -> (stored :UInt64);
}

interface Subscription {}
