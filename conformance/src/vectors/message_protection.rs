//! message-protection.json: PublicMessage signatures and membership tags,
//! PrivateMessage sender-data and content encryption (RFC 9420 §6). The
//! vectors hand out raw epoch secrets, which openmls cannot load into a
//! group through its public API, so §6 is implemented in `rfc::framing`
//! over the `openmls_rust_crypto` primitives and checked here.

use serde::Deserialize;
use serde_json::Value;

use crate::{
    error::{expect_eq, CheckError},
    rfc::{
        codec::Writer,
        crypto::Suite,
        framing::{ContentType, EpochView, FramedContent, Sender},
        structs::GroupContext,
    },
    vectors::json::{suite_of, typed, Hex},
};

/// The message-protection vector.
#[derive(Deserialize)]
pub(crate) struct Vector {
    pub(crate) group_id: Hex,
    pub(crate) epoch: u64,
    pub(crate) tree_hash: Hex,
    pub(crate) confirmed_transcript_hash: Hex,
    pub(crate) signature_priv: Hex,
    pub(crate) signature_pub: Hex,
    pub(crate) encryption_secret: Hex,
    pub(crate) sender_data_secret: Hex,
    pub(crate) membership_key: Hex,
    pub(crate) proposal: Hex,
    pub(crate) proposal_pub: Hex,
    pub(crate) proposal_priv: Hex,
    pub(crate) commit: Hex,
    pub(crate) commit_pub: Hex,
    pub(crate) commit_priv: Hex,
    pub(crate) application: Hex,
    pub(crate) application_priv: Hex,
}

/// The sender of every message in these vectors.
pub(crate) const SENDER_LEAF: u32 = 1;

impl Vector {
    /// The receiver's view of the epoch: a two-member group.
    pub(crate) fn view<'s>(&self, suite: &'s Suite) -> Result<EpochView<'s>, CheckError> {
        let ctx = GroupContext {
            cipher_suite: suite.id(),
            group_id: self.group_id.0.clone(),
            epoch: self.epoch,
            tree_hash: self.tree_hash.0.clone(),
            confirmed_transcript_hash: self.confirmed_transcript_hash.0.clone(),
            extensions: Vec::new(),
        };
        Ok(EpochView {
            suite,
            group_context: ctx.encode()?,
            group_id: self.group_id.0.clone(),
            epoch: self.epoch,
            membership_key: self.membership_key.0.clone(),
            sender_data_secret: self.sender_data_secret.0.clone(),
            encryption_secret: self.encryption_secret.0.clone(),
            members: 2,
        })
    }

    fn content(&self, content_type: ContentType, body: Vec<u8>) -> FramedContent {
        FramedContent {
            group_id: self.group_id.0.clone(),
            epoch: self.epoch,
            sender: Sender::Member(SENDER_LEAF),
            authenticated_data: Vec::new(),
            content_type,
            body,
        }
    }
}

pub(crate) fn parse(v: &Value) -> Result<(Suite, Vector), CheckError> {
    Ok((suite_of(v)?, typed(v)?))
}

pub(crate) fn check(v: &Value) -> Result<(), CheckError> {
    let (s, t) = parse(v)?;
    let view = t.view(&s)?;
    let public = &t.signature_pub;

    // Proposal and commit: the vector's PublicMessages verify and carry the raw value.
    let (content, _) = view.unprotect_public(&t.proposal_pub, public)?;
    expect_eq("proposal_pub content", &content.body, &t.proposal)?;
    let (content, commit_auth) = view.unprotect_public(&t.commit_pub, public)?;
    expect_eq("commit_pub content", &content.body, &t.commit)?;

    // Our own PublicMessages verify. The confirmation tag of a commit needs
    // the confirmation key, which the vector does not give; the tag from the
    // vector's own commit is reused.
    let mine = view.protect_public(
        &t.content(ContentType::Proposal, t.proposal.0.clone()),
        &t.signature_priv,
        None,
    )?;
    let (content, _) = view.unprotect_public(&mine, public)?;
    expect_eq("own proposal PublicMessage", &content.body, &t.proposal)?;
    let mine = view.protect_public(
        &t.content(ContentType::Commit, t.commit.0.clone()),
        &t.signature_priv,
        commit_auth.confirmation_tag.clone(),
    )?;
    let (content, _) = view.unprotect_public(&mine, public)?;
    expect_eq("own commit PublicMessage", &content.body, &t.commit)?;

    // Application data must not be protected as a PublicMessage.
    let app_body = Writer::new().vec(&t.application)?.finish();
    if view
        .protect_public(
            &t.content(ContentType::Application, app_body.clone()),
            &t.signature_priv,
            None,
        )
        .is_ok()
    {
        return Err(CheckError::NotRejected(
            "application data as PublicMessage".into(),
        ));
    }

    // The vector's PrivateMessages decrypt and verify.
    let (content, _) = view.unprotect_private(&t.proposal_priv, public)?;
    expect_eq("proposal_priv content", &content.body, &t.proposal)?;
    let (content, _) = view.unprotect_private(&t.commit_priv, public)?;
    expect_eq("commit_priv content", &content.body, &t.commit)?;
    let (content, _) = view.unprotect_private(&t.application_priv, public)?;
    expect_eq(
        "application_priv content",
        &content.application_data()?,
        &t.application,
    )?;

    // Our own PrivateMessages decrypt and verify.
    let guard = [0x5a, 0x17, 0x00, 0xc3];
    for (ct, body, tag) in [
        (ContentType::Proposal, t.proposal.0.clone(), None),
        (
            ContentType::Commit,
            t.commit.0.clone(),
            commit_auth.confirmation_tag.clone(),
        ),
        (ContentType::Application, app_body, None),
    ] {
        let framed = t.content(ct, body);
        let mine = view.protect_private(&framed, &t.signature_priv, tag, 3, guard)?;
        let (content, _) = view.unprotect_private(&mine, public)?;
        if content != framed {
            return Err(CheckError::mismatch(format!(
                "own {ct:?} PrivateMessage round trip"
            )));
        }
    }
    Ok(())
}
