//! MLS-framed stand-ins for the node-level tests that drive the schema without an engine: the
//! clear framing a node reads (RFC 9420 §6: version, wire format, group id, epoch, sender,
//! content type) around opaque bytes where the rest would be, for what the node only frames
//! (application messages, Welcomes). Real groups, whose commits the node validates, are in
//! `raw_group.rs`.

use qpq_proto::ChannelId;

fn vector(out: &mut Vec<u8>, b: &[u8]) {
    match b.len() {
        n if n < 64 => out.push(n as u8),
        n if n < 16_384 => out.extend_from_slice(&((n as u16) | 0x4000).to_be_bytes()),
        n => out.extend_from_slice(&((n as u32) | 0x8000_0000).to_be_bytes()),
    }
    out.extend_from_slice(b);
}

/// A `PrivateMessage` of `channel` at `epoch` with `content_type` (1 application, 3 commit)
/// whose ciphertext is `body`.
pub fn private(channel: &ChannelId, epoch: u64, content_type: u8, body: &[u8]) -> Vec<u8> {
    let mut m = vec![0, 1, 0, 2];
    vector(&mut m, channel.as_bytes());
    m.extend_from_slice(&epoch.to_be_bytes());
    m.push(content_type);
    vector(&mut m, b"");
    vector(&mut m, &[0x5e; 16]);
    vector(&mut m, body);
    m
}

/// A commit of `channel` made in `epoch` by the member at leaf 0: a `PublicMessage` head
/// (RFC 9420 §6.2) followed by `body` where the commit, signature and tags would be.
pub fn commit(channel: &ChannelId, epoch: u64, body: &[u8]) -> Vec<u8> {
    let mut m = vec![0, 1, 0, 1];
    vector(&mut m, channel.as_bytes());
    m.extend_from_slice(&epoch.to_be_bytes());
    m.push(1); // sender type: member
    m.extend_from_slice(&0u32.to_be_bytes());
    vector(&mut m, b"");
    m.push(3); // content type: commit
    m.extend_from_slice(body);
    m
}

/// An application message of `channel` made in `epoch` (the node queues only the channel's
/// current epoch's).
pub fn application(channel: &ChannelId, epoch: u64, body: &[u8]) -> Vec<u8> {
    private(channel, epoch, 1, body)
}

/// A Welcome whose encrypted group info is `body`.
pub fn welcome(body: &[u8]) -> Vec<u8> {
    let mut m = vec![0, 1, 0, 3, 0, 1];
    vector(&mut m, &[0x3c; 40]);
    vector(&mut m, body);
    m
}
