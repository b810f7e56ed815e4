//! The outer framing of the MLS messages a client hands the node (RFC 9420 §6, §12.4.3.1),
//! read without any key: wire format, group id, epoch and content type are in clear in every
//! `PrivateMessage` and `PublicMessage`. The node checks them before it stores or fans out
//! anything, so bytes that are not an MLS message of the channel — garbage, a commit for
//! another group or a later epoch, an application message sent as a commit — are refused with
//! `bad_mls_message` and change nothing. Commits come as `PublicMessage`s signed by a member
//! (the clients' wire-format policy; the group's metadata in them is sealed): a private commit
//! is refused. Whether the commit is valid is, for now, for the members to decide; a commit
//! they cannot process is skipped by them.

use qpq_proto::ChannelId;

/// `MLSMessage.wire_format` values (RFC 9420 §6).
const PUBLIC_MESSAGE: u16 = 1;
const PRIVATE_MESSAGE: u16 = 2;
const WELCOME: u16 = 3;
/// `ProtocolVersion.mls10`.
const MLS10: u16 = 1;

/// `ContentType` (RFC 9420 §6).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContentType {
    /// An application message.
    Application,
    /// A proposal.
    Proposal,
    /// A commit.
    Commit,
}

/// What the node can read of a framed MLS message without keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame<'a> {
    /// Whether it is a `PrivateMessage` (else a `PublicMessage`).
    pub private: bool,
    /// Whether a member of the group sent it (always so for a `PrivateMessage`; a
    /// `PublicMessage` may come from an external sender or a joiner).
    pub by_member: bool,
    /// Whether it is an external commit (sender type `new_member_commit`): a member rejoining,
    /// if the node's check of the group's state agrees.
    pub external_commit: bool,
    /// The MLS group id.
    pub group_id: &'a [u8],
    /// The epoch it was made in.
    pub epoch: u64,
    /// What it carries.
    pub content_type: ContentType,
}

/// Why bytes are not the message expected, in words for the `bad_mls_message` sentence.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct FrameError(String);

fn err(what: impl Into<String>) -> FrameError {
    FrameError(what.into())
}

/// A cursor over TLS presentation-language bytes.
struct Reader<'a> {
    b: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], FrameError> {
        if self.b.len() < n {
            return Err(err("it ends too early"));
        }
        let (head, rest) = self.b.split_at(n);
        self.b = rest;
        Ok(head)
    }

    fn u8(&mut self) -> Result<u8, FrameError> {
        Ok(self.take(1)?[0])
    }

    fn u16(&mut self) -> Result<u16, FrameError> {
        let b = self.take(2)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }

    fn u32(&mut self) -> Result<u32, FrameError> {
        let b = self.take(4)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn u64(&mut self) -> Result<u64, FrameError> {
        let b = self.take(8)?;
        Ok(u64::from_be_bytes(b.try_into().expect("8 bytes")))
    }

    /// A variable-length vector `<V>`: a QUIC-style variable-length integer (1, 2 or 4 bytes,
    /// minimally encoded, RFC 9420 §2.1.2) followed by that many bytes.
    fn vector(&mut self) -> Result<&'a [u8], FrameError> {
        let first = self.u8()?;
        let len = match first >> 6 {
            0 => u32::from(first & 0x3f),
            1 => {
                let v = (u32::from(first & 0x3f) << 8) | u32::from(self.u8()?);
                if v < 64 {
                    return Err(err("a length is not minimally encoded"));
                }
                v
            }
            2 => {
                let rest = self.take(3)?;
                let v = (u32::from(first & 0x3f) << 24)
                    | (u32::from(rest[0]) << 16)
                    | (u32::from(rest[1]) << 8)
                    | u32::from(rest[2]);
                if v < 16_384 {
                    return Err(err("a length is not minimally encoded"));
                }
                v
            }
            _ => return Err(err("a length uses the reserved 8-byte form")),
        };
        self.take(len as usize)
    }

    fn end(&self) -> Result<(), FrameError> {
        if self.b.is_empty() { Ok(()) } else { Err(err(format!("{} bytes follow the message", self.b.len()))) }
    }
}

fn header(r: &mut Reader<'_>) -> Result<u16, FrameError> {
    let version = r.u16()?;
    if version != MLS10 {
        return Err(err(format!("protocol version {version} is not MLS 1.0")));
    }
    r.u16()
}

fn content_type(v: u8) -> Result<ContentType, FrameError> {
    match v {
        1 => Ok(ContentType::Application),
        2 => Ok(ContentType::Proposal),
        3 => Ok(ContentType::Commit),
        _ => Err(err(format!("content type {v} is unknown"))),
    }
}

/// Reads the clear framing of a `PrivateMessage` (whole, nothing may follow it) or the
/// `FramedContent` head of a `PublicMessage`.
pub fn read_frame(bytes: &[u8]) -> Result<Frame<'_>, FrameError> {
    let mut r = Reader { b: bytes };
    match header(&mut r)? {
        PRIVATE_MESSAGE => {
            let group_id = r.vector()?;
            let epoch = r.u64()?;
            let content_type = content_type(r.u8()?)?;
            r.vector()?; // authenticated_data
            r.vector()?; // encrypted_sender_data
            r.vector()?; // ciphertext
            r.end()?;
            Ok(Frame { private: true, by_member: true, external_commit: false, group_id, epoch, content_type })
        }
        PUBLIC_MESSAGE => {
            let group_id = r.vector()?;
            let epoch = r.u64()?;
            let sender = r.u8()?;
            match sender {
                1 | 2 => {
                    r.u32()?; // the member's leaf index, or the external sender's index
                }
                3 | 4 => {} // new_member_proposal, new_member_commit
                t => return Err(err(format!("sender type {t} is unknown"))),
            }
            let (by_member, external_commit) = (sender == 1, sender == 4);
            r.vector()?; // authenticated_data
            let content_type = content_type(r.u8()?)?;
            Ok(Frame { private: false, by_member, external_commit, group_id, epoch, content_type })
        }
        WELCOME => Err(err("it is a Welcome")),
        w => Err(err(format!("wire format {w} is not a framed message"))),
    }
}

/// Checks that `bytes` is a member's commit (or an external commit, which only the check of the
/// group's state can accept, as a member's rejoin) of `channel`, sent as a `PublicMessage`, made
/// in the channel's epoch `epoch` or before.
///
/// The channel's epoch counts every commit the node accepted; the MLS epoch counts those the
/// members could process, so it may lag behind (a commit the members refused still took a
/// channel epoch, see the engine's `refused_commits`), never run ahead.
pub fn check_commit(bytes: &[u8], channel: &ChannelId, epoch: u64) -> Result<CommitFrame, FrameError> {
    let f = read_frame(bytes)?;
    if f.content_type != ContentType::Commit {
        return Err(err(format!("it is {:?}, not a commit", f.content_type).to_lowercase()));
    }
    if f.private {
        return Err(err("it is encrypted; commits are sent as MLS PublicMessages"));
    }
    if !f.by_member && !f.external_commit {
        return Err(err("it does not come from a member of the group"));
    }
    check_group(&f, channel)?;
    if f.epoch > epoch {
        return Err(err(format!("it was made in epoch {}, after the conversation's epoch {epoch}", f.epoch)));
    }
    Ok(CommitFrame { epoch: f.epoch, external: f.external_commit })
}

/// What the framing of a checked commit says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CommitFrame {
    /// The epoch it was made in (at most the request's).
    pub epoch: u64,
    /// A member rejoining by an external commit.
    pub external: bool,
}

/// Checks that `bytes` is an encrypted application message of `channel`; returns the epoch
/// it was made in.
pub fn check_application(bytes: &[u8], channel: &ChannelId) -> Result<u64, FrameError> {
    let f = read_frame(bytes)?;
    if f.content_type != ContentType::Application || !f.private {
        return Err(err("it is not an encrypted application message"));
    }
    check_group(&f, channel)?;
    Ok(f.epoch)
}

fn check_group(f: &Frame<'_>, channel: &ChannelId) -> Result<(), FrameError> {
    if f.group_id != channel.as_bytes() {
        return Err(err("it belongs to another group"));
    }
    Ok(())
}

/// Checks that `bytes` is a whole MLS `Welcome`: cipher suite, group secrets, encrypted group
/// info, nothing after.
pub fn check_welcome(bytes: &[u8]) -> Result<(), FrameError> {
    let mut r = Reader { b: bytes };
    let wire_format = header(&mut r)?;
    if wire_format != WELCOME {
        return Err(err(format!("wire format {wire_format} is not a Welcome")));
    }
    r.u16()?; // cipher_suite
    r.vector()?; // secrets
    r.vector()?; // encrypted_group_info
    r.end()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vector(out: &mut Vec<u8>, b: &[u8]) {
        match b.len() {
            n if n < 64 => out.push(n as u8),
            n if n < 16_384 => out.extend_from_slice(&((n as u16) | 0x4000).to_be_bytes()),
            n => out.extend_from_slice(&((n as u32) | 0x8000_0000).to_be_bytes()),
        }
        out.extend_from_slice(b);
    }

    fn private(group: &[u8], epoch: u64, content: u8, ciphertext: &[u8]) -> Vec<u8> {
        let mut m = vec![0, 1, 0, 2];
        vector(&mut m, group);
        m.extend_from_slice(&epoch.to_be_bytes());
        m.push(content);
        vector(&mut m, b"");
        vector(&mut m, &[7; 20]);
        vector(&mut m, ciphertext);
        m
    }

    /// A `PublicMessage` head (sender type `sender`, leaf 0) followed by `rest`.
    fn public(group: &[u8], epoch: u64, sender: u8, content: u8, rest: &[u8]) -> Vec<u8> {
        let mut m = vec![0, 1, 0, 1];
        vector(&mut m, group);
        m.extend_from_slice(&epoch.to_be_bytes());
        m.push(sender);
        if sender <= 2 {
            m.extend_from_slice(&0u32.to_be_bytes());
        }
        vector(&mut m, b"");
        m.push(content);
        m.extend_from_slice(rest);
        m
    }

    fn channel() -> ChannelId {
        ChannelId::from_slice(&[9; 16]).unwrap()
    }

    #[test]
    fn a_commit_of_the_channel_at_its_epoch_passes() {
        let c = channel();
        let member = CommitFrame { epoch: 4, external: false };
        assert_eq!(check_commit(&public(c.as_bytes(), 4, 1, 3, &[1; 300]), &c, 4).unwrap(), member);
        check_commit(&public(c.as_bytes(), 4, 1, 3, &[1; 20_000]), &c, 4).unwrap();
        // Behind the channel's epoch after commits the members refused.
        assert_eq!(check_commit(&public(c.as_bytes(), 2, 1, 3, &[1; 300]), &c, 4).unwrap().epoch, 2);
        // An external commit passes the framing; the group's state decides.
        assert!(read_frame(&public(c.as_bytes(), 4, 4, 3, &[1; 30])).unwrap().external_commit);
        assert!(check_commit(&public(c.as_bytes(), 4, 4, 3, &[1; 30]), &c, 4).unwrap().external);
    }

    #[test]
    fn garbage_other_groups_epochs_and_kinds_are_refused_in_words() {
        let c = channel();
        let cases: [(Vec<u8>, &str); 11] = [
            (b"a commit".to_vec(), "is not MLS 1.0"),
            (vec![0, 1, 0, 2, 16], "ends too early"),
            (public(&[8; 16], 4, 1, 3, b"x"), "another group"),
            (public(c.as_bytes(), 5, 1, 3, b"x"), "epoch 5, after the conversation's epoch 4"),
            (public(c.as_bytes(), 4, 1, 1, b"x"), "not a commit"),
            (public(c.as_bytes(), 4, 1, 2, b"x"), "proposal, not a commit"),
            (private(c.as_bytes(), 4, 3, b"x"), "encrypted; commits are sent as MLS PublicMessages"),
            (public(c.as_bytes(), 4, 3, 3, b"x"), "not come from a member"),
            (public(c.as_bytes(), 4, 2, 3, b"x"), "not come from a member"),
            ([private(c.as_bytes(), 4, 1, b"x"), vec![0]].concat(), "1 bytes follow"),
            ([&[0, 1, 0, 2, 0x40, 5][..], &[0; 5]].concat(), "not minimally encoded"),
        ];
        for (bytes, words) in cases {
            let e = check_commit(&bytes, &c, 4).unwrap_err().to_string();
            assert!(e.contains(words), "{e:?} should say {words:?}");
        }
    }

    #[test]
    fn application_messages_and_welcomes_are_checked_for_what_they_are() {
        let c = channel();
        assert_eq!(check_application(&private(c.as_bytes(), 2, 1, b"hello"), &c).unwrap(), 2, "its epoch");
        assert!(check_application(&private(c.as_bytes(), 2, 3, b"x"), &c).is_err());
        assert!(check_application(&private(&[1; 16], 2, 1, b"x"), &c).is_err());
        // Application messages are never sent in clear.
        assert!(check_application(&public(c.as_bytes(), 2, 1, 1, b"x"), &c).is_err());
        let mut w = vec![0, 1, 0, 3, 0, 1];
        vector(&mut w, &[5; 100]);
        vector(&mut w, &[6; 70]);
        check_welcome(&w).unwrap();
        assert!(check_welcome(&w[..w.len() - 1]).is_err());
        assert!(check_welcome(&private(c.as_bytes(), 2, 1, b"x")).is_err());
    }
}
