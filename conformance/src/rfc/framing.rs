//! Message framing and protection (RFC 9420 §6): `PublicMessage` with its
//! signature and membership tag, `PrivateMessage` with sender-data and
//! content encryption.
//!
//! openmls only protects and unprotects messages inside a live group whose
//! secrets it derived itself; the message-protection vectors hand out the
//! epoch secrets directly, which openmls offers no public way to load. The
//! checks therefore run against this implementation of §6.

use crate::{
    error::CheckError,
    rfc::{
        codec::{Reader, Writer},
        crypto::Suite,
        secret_tree::{sender_data_key_nonce, RatchetKind, SecretTree},
        structs::{skip_commit, Proposal},
    },
};

/// `WireFormat` values (RFC 9420 §6).
pub(crate) const WIRE_PUBLIC: u16 = 1;
/// `mls_private_message`.
pub(crate) const WIRE_PRIVATE: u16 = 2;

/// `ContentType`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ContentType {
    Application,
    Proposal,
    Commit,
}

impl ContentType {
    fn from_u8(v: u8) -> Result<Self, CheckError> {
        match v {
            1 => Ok(Self::Application),
            2 => Ok(Self::Proposal),
            3 => Ok(Self::Commit),
            _ => Err(CheckError::Decode("ContentType", "unknown content type")),
        }
    }

    fn to_u8(self) -> u8 {
        match self {
            Self::Application => 1,
            Self::Proposal => 2,
            Self::Commit => 3,
        }
    }

    /// Reads the content body and returns its exact encoding.
    fn read_body(self, r: &mut Reader<'_>) -> Result<Vec<u8>, CheckError> {
        let (bytes, ()) = r.span(|r| {
            match self {
                Self::Application => {
                    r.vec()?;
                }
                Self::Proposal => {
                    Proposal::read(r)?;
                }
                Self::Commit => skip_commit(r)?,
            }
            Ok(())
        })?;
        Ok(bytes.to_vec())
    }
}

/// `Sender`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Sender {
    Member(u32),
    External(u32),
    NewMemberProposal,
    NewMemberCommit,
}

impl Sender {
    fn read(r: &mut Reader<'_>) -> Result<Self, CheckError> {
        match r.u8()? {
            1 => Ok(Self::Member(r.u32()?)),
            2 => Ok(Self::External(r.u32()?)),
            3 => Ok(Self::NewMemberProposal),
            4 => Ok(Self::NewMemberCommit),
            _ => Err(CheckError::Decode("Sender", "unknown sender type")),
        }
    }

    fn write(self, w: &mut Writer) {
        match self {
            Self::Member(i) => {
                w.u8(1).u32(i);
            }
            Self::External(i) => {
                w.u8(2).u32(i);
            }
            Self::NewMemberProposal => {
                w.u8(3);
            }
            Self::NewMemberCommit => {
                w.u8(4);
            }
        }
    }

    /// Whether `FramedContentTBS` includes the group context.
    fn signs_context(self) -> bool {
        matches!(self, Self::Member(_) | Self::NewMemberCommit)
    }
}

/// `FramedContent` (RFC 9420 §6).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct FramedContent {
    pub(crate) group_id: Vec<u8>,
    pub(crate) epoch: u64,
    pub(crate) sender: Sender,
    pub(crate) authenticated_data: Vec<u8>,
    pub(crate) content_type: ContentType,
    /// The encoded body: `opaque application_data<V>`, a `Proposal` or a `Commit`.
    pub(crate) body: Vec<u8>,
}

impl FramedContent {
    pub(crate) fn read(r: &mut Reader<'_>) -> Result<Self, CheckError> {
        let group_id = r.vec()?.to_vec();
        let epoch = r.u64()?;
        let sender = Sender::read(r)?;
        let authenticated_data = r.vec()?.to_vec();
        let content_type = ContentType::from_u8(r.u8()?)?;
        let body = content_type.read_body(r)?;
        Ok(Self {
            group_id,
            epoch,
            sender,
            authenticated_data,
            content_type,
            body,
        })
    }

    pub(crate) fn encode(&self) -> Result<Vec<u8>, CheckError> {
        let mut w = Writer::new();
        w.vec(&self.group_id)?.u64(self.epoch);
        self.sender.write(&mut w);
        w.vec(&self.authenticated_data)?
            .u8(self.content_type.to_u8())
            .raw(&self.body);
        Ok(w.finish())
    }

    /// The application data, for application content.
    pub(crate) fn application_data(&self) -> Result<Vec<u8>, CheckError> {
        if self.content_type != ContentType::Application {
            return Err(CheckError::Protocol("not application content"));
        }
        let mut r = Reader::new(&self.body);
        let data = r.vec()?.to_vec();
        r.finish("application_data")?;
        Ok(data)
    }
}

/// `FramedContentAuthData`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct AuthData {
    pub(crate) signature: Vec<u8>,
    pub(crate) confirmation_tag: Option<Vec<u8>>,
}

impl AuthData {
    pub(crate) fn read(r: &mut Reader<'_>, content_type: ContentType) -> Result<Self, CheckError> {
        let signature = r.vec()?.to_vec();
        let confirmation_tag = match content_type {
            ContentType::Commit => Some(r.vec()?.to_vec()),
            _ => None,
        };
        Ok(Self {
            signature,
            confirmation_tag,
        })
    }

    pub(crate) fn encode(&self) -> Result<Vec<u8>, CheckError> {
        let mut w = Writer::new();
        w.vec(&self.signature)?;
        if let Some(tag) = &self.confirmation_tag {
            w.vec(tag)?;
        }
        Ok(w.finish())
    }
}

/// What a receiver knows about the epoch it unprotects messages in.
pub(crate) struct EpochView<'a> {
    pub(crate) suite: &'a Suite,
    /// The encoded `GroupContext`.
    pub(crate) group_context: Vec<u8>,
    pub(crate) group_id: Vec<u8>,
    pub(crate) epoch: u64,
    pub(crate) membership_key: Vec<u8>,
    pub(crate) sender_data_secret: Vec<u8>,
    pub(crate) encryption_secret: Vec<u8>,
    pub(crate) members: u32,
}

impl EpochView<'_> {
    /// `FramedContentTBS` for `content` sent with `wire_format`.
    fn content_tbs(
        &self,
        wire_format: u16,
        content: &FramedContent,
    ) -> Result<Vec<u8>, CheckError> {
        let mut w = Writer::new();
        w.u16(1).u16(wire_format).raw(&content.encode()?);
        if content.sender.signs_context() {
            w.raw(&self.group_context);
        }
        Ok(w.finish())
    }

    fn check_group_and_epoch(&self, group_id: &[u8], epoch: u64) -> Result<(), CheckError> {
        if group_id != self.group_id {
            return Err(CheckError::Protocol("message for another group"));
        }
        if epoch != self.epoch {
            return Err(CheckError::Protocol("message for another epoch"));
        }
        Ok(())
    }

    fn sign(
        &self,
        wire_format: u16,
        content: &FramedContent,
        signature_priv: &[u8],
    ) -> Result<Vec<u8>, CheckError> {
        let tbs = self.content_tbs(wire_format, content)?;
        self.suite
            .sign_with_label(signature_priv, b"FramedContentTBS", &tbs)
    }

    fn verify(
        &self,
        wire_format: u16,
        content: &FramedContent,
        signature: &[u8],
        signature_pub: &[u8],
    ) -> Result<(), CheckError> {
        let tbs = self.content_tbs(wire_format, content)?;
        self.suite
            .verify_with_label(signature_pub, b"FramedContentTBS", &tbs, signature)
            .map_err(|_| CheckError::Verify("FramedContentTBS signature"))
    }

    fn membership_tag(&self, content_tbs: &[u8], auth: &AuthData) -> Result<Vec<u8>, CheckError> {
        // AuthenticatedContentTBM { FramedContentTBS content_tbs; FramedContentAuthData auth; }
        self.suite.mac(
            &self.membership_key,
            &[content_tbs, &auth.encode()?].concat(),
        )
    }

    /// Builds and signs a `PublicMessage` (RFC 9420 §6.2). Application data
    /// must never be sent this way.
    pub(crate) fn protect_public(
        &self,
        content: &FramedContent,
        signature_priv: &[u8],
        confirmation_tag: Option<Vec<u8>>,
    ) -> Result<Vec<u8>, CheckError> {
        if content.content_type == ContentType::Application {
            return Err(CheckError::Protocol(
                "application data must be sent as a PrivateMessage",
            ));
        }
        let auth = AuthData {
            signature: self.sign(WIRE_PUBLIC, content, signature_priv)?,
            confirmation_tag,
        };
        let mut w = Writer::new();
        w.u16(1)
            .u16(WIRE_PUBLIC)
            .raw(&content.encode()?)
            .raw(&auth.encode()?);
        if let Sender::Member(_) = content.sender {
            let tbs = self.content_tbs(WIRE_PUBLIC, content)?;
            w.vec(&self.membership_tag(&tbs, &auth)?)?;
        }
        Ok(w.finish())
    }

    /// Verifies a `PublicMessage` and returns its content.
    pub(crate) fn unprotect_public(
        &self,
        message: &[u8],
        signature_pub: &[u8],
    ) -> Result<(FramedContent, AuthData), CheckError> {
        let mut r = Reader::new(message);
        if r.u16()? != 1 {
            return Err(CheckError::Decode("MLSMessage", "version is not mls10"));
        }
        if r.u16()? != WIRE_PUBLIC {
            return Err(CheckError::Protocol("not a PublicMessage"));
        }
        let content = FramedContent::read(&mut r)?;
        let auth = AuthData::read(&mut r, content.content_type)?;
        let membership_tag = match content.sender {
            Sender::Member(_) => Some(r.vec()?.to_vec()),
            _ => None,
        };
        r.finish("PublicMessage")?;
        self.check_group_and_epoch(&content.group_id, content.epoch)?;
        if content.content_type == ContentType::Application {
            return Err(CheckError::Protocol(
                "application data received as a PublicMessage",
            ));
        }
        let Sender::Member(leaf) = content.sender else {
            return Err(CheckError::Protocol("sender is not a member"));
        };
        if leaf >= self.members {
            return Err(CheckError::Protocol("sender leaf outside the group"));
        }
        let tbs = self.content_tbs(WIRE_PUBLIC, &content)?;
        let want = self.membership_tag(&tbs, &auth)?;
        if membership_tag.as_deref() != Some(want.as_slice()) {
            return Err(CheckError::Verify("membership tag"));
        }
        self.verify(WIRE_PUBLIC, &content, &auth.signature, signature_pub)?;
        Ok((content, auth))
    }

    fn sender_data_aad(
        group_id: &[u8],
        epoch: u64,
        ct: ContentType,
    ) -> Result<Vec<u8>, CheckError> {
        Ok(Writer::new()
            .vec(group_id)?
            .u64(epoch)
            .u8(ct.to_u8())
            .finish())
    }

    fn content_aad(
        group_id: &[u8],
        epoch: u64,
        ct: ContentType,
        authenticated_data: &[u8],
    ) -> Result<Vec<u8>, CheckError> {
        Ok(Writer::new()
            .vec(group_id)?
            .u64(epoch)
            .u8(ct.to_u8())
            .vec(authenticated_data)?
            .finish())
    }

    fn ratchet_kind(ct: ContentType) -> RatchetKind {
        match ct {
            ContentType::Application => RatchetKind::Application,
            _ => RatchetKind::Handshake,
        }
    }

    /// Builds, signs and encrypts a `PrivateMessage` (RFC 9420 §6.3) from a
    /// fresh secret tree at `generation`.
    pub(crate) fn protect_private(
        &self,
        content: &FramedContent,
        signature_priv: &[u8],
        confirmation_tag: Option<Vec<u8>>,
        generation: u32,
        reuse_guard: [u8; 4],
    ) -> Result<Vec<u8>, CheckError> {
        let Sender::Member(leaf) = content.sender else {
            return Err(CheckError::Protocol("only members send PrivateMessages"));
        };
        let auth = AuthData {
            signature: self.sign(WIRE_PRIVATE, content, signature_priv)?,
            confirmation_tag,
        };
        // PrivateMessageContent { body; auth; padding } with no padding.
        let plaintext = [content.body.as_slice(), &auth.encode()?].concat();
        let tree = SecretTree::new(self.suite, &self.encryption_secret, self.members);
        let kn = tree.key_nonce(leaf, Self::ratchet_kind(content.content_type), generation)?;
        let mut nonce = kn.nonce;
        for (n, g) in nonce.iter_mut().zip(reuse_guard) {
            *n ^= g;
        }
        let aad = Self::content_aad(
            &content.group_id,
            content.epoch,
            content.content_type,
            &content.authenticated_data,
        )?;
        let ciphertext = self.suite.aead_seal(&kn.key, &nonce, &aad, &plaintext)?;
        let sender_data = Writer::new()
            .u32(leaf)
            .u32(generation)
            .raw(&reuse_guard)
            .finish();
        let sd = sender_data_key_nonce(self.suite, &self.sender_data_secret, &ciphertext)?;
        let sd_aad = Self::sender_data_aad(&content.group_id, content.epoch, content.content_type)?;
        let encrypted_sender_data =
            self.suite
                .aead_seal(&sd.key, &sd.nonce, &sd_aad, &sender_data)?;
        Ok(Writer::new()
            .u16(1)
            .u16(WIRE_PRIVATE)
            .vec(&content.group_id)?
            .u64(content.epoch)
            .u8(content.content_type.to_u8())
            .vec(&content.authenticated_data)?
            .vec(&encrypted_sender_data)?
            .vec(&ciphertext)?
            .finish())
    }

    /// Decrypts and verifies a `PrivateMessage` and returns its content.
    pub(crate) fn unprotect_private(
        &self,
        message: &[u8],
        signature_pub: &[u8],
    ) -> Result<(FramedContent, AuthData), CheckError> {
        let mut r = Reader::new(message);
        if r.u16()? != 1 {
            return Err(CheckError::Decode("MLSMessage", "version is not mls10"));
        }
        if r.u16()? != WIRE_PRIVATE {
            return Err(CheckError::Protocol("not a PrivateMessage"));
        }
        let group_id = r.vec()?.to_vec();
        let epoch = r.u64()?;
        let content_type = ContentType::from_u8(r.u8()?)?;
        let authenticated_data = r.vec()?.to_vec();
        let encrypted_sender_data = r.vec()?;
        let ciphertext = r.vec()?;
        r.finish("PrivateMessage")?;
        self.check_group_and_epoch(&group_id, epoch)?;

        let sd = sender_data_key_nonce(self.suite, &self.sender_data_secret, ciphertext)?;
        let sd_aad = Self::sender_data_aad(&group_id, epoch, content_type)?;
        let sender_data = self
            .suite
            .aead_open(&sd.key, &sd.nonce, &sd_aad, encrypted_sender_data)
            .map_err(|_| CheckError::Verify("sender data AEAD tag"))?;
        let mut sdr = Reader::new(&sender_data);
        let leaf = sdr.u32()?;
        let generation = sdr.u32()?;
        let reuse_guard = sdr.bytes(4)?;
        sdr.finish("SenderData")?;
        if leaf >= self.members {
            return Err(CheckError::Protocol("sender leaf outside the group"));
        }

        let tree = SecretTree::new(self.suite, &self.encryption_secret, self.members);
        let kn = tree.key_nonce(leaf, Self::ratchet_kind(content_type), generation)?;
        let mut nonce = kn.nonce;
        for (n, g) in nonce.iter_mut().zip(reuse_guard) {
            *n ^= g;
        }
        let aad = Self::content_aad(&group_id, epoch, content_type, &authenticated_data)?;
        let plaintext = self
            .suite
            .aead_open(&kn.key, &nonce, &aad, ciphertext)
            .map_err(|_| CheckError::Verify("content AEAD tag"))?;

        let mut pr = Reader::new(&plaintext);
        let body = content_type.read_body(&mut pr)?;
        let auth = AuthData::read(&mut pr, content_type)?;
        while !pr.is_empty() {
            if pr.u8()? != 0 {
                return Err(CheckError::Protocol("non-zero padding"));
            }
        }
        let content = FramedContent {
            group_id,
            epoch,
            sender: Sender::Member(leaf),
            authenticated_data,
            content_type,
            body,
        };
        self.verify(WIRE_PRIVATE, &content, &auth.signature, signature_pub)?;
        Ok((content, auth))
    }
}
