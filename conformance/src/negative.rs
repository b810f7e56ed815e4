//! Negative cases built from the vectors: every MAC and AEAD tag truncated
//! or with a bit flipped, a PrivateMessage presented as a PublicMessage, and
//! messages replayed into another group (and into the same group after the
//! commit was merged). Each must come back as a `CheckError`, never a panic.
//!
//! Two layers are exercised: the RFC 9420 §6 implementation in
//! `rfc::framing` with the message-protection vector's epoch secrets, and
//! openmls itself (`MlsGroup::process_message`) with groups joined from the
//! passive-client vectors.

use serde_json::Value;

use crate::{
    error::CheckError,
    files::{VectorFile, VectorFiles},
    report::{Failure, NegativeReport},
    rfc::{
        codec::{self, Field, Reader},
        crypto::Suite,
        framing::{ContentType, EpochView, FramedContent, Sender},
    },
    vectors::{
        self,
        json::typed,
        message_protection,
        passive_client::{self, PassiveClient},
    },
    SHIPPED_SUITE,
};

/// A MAC or AEAD tag inside an encoded message: the `opaque<V>` field that
/// holds it and how many trailing bytes of that field are the tag.
#[derive(Clone, Copy)]
struct Tag {
    name: &'static str,
    field: Field,
    len: usize,
}

/// The four tamperings applied to every tag.
const MUTATIONS: [&str; 4] = [
    "truncated by one byte",
    "removed",
    "first bit flipped",
    "last bit flipped",
];

fn mutate(bytes: &[u8], tag: Tag, mutation: usize) -> Result<Vec<u8>, CheckError> {
    let f = tag.field;
    if tag.len == 0 || f.end - f.start < tag.len {
        return Err(CheckError::Protocol("field shorter than its tag"));
    }
    let truncate = |k: usize| -> Result<Vec<u8>, CheckError> {
        let len = (f.end - f.start).saturating_sub(k);
        Ok([
            &bytes[..f.header],
            &codec::varint(len)?,
            &bytes[f.start..f.start + len],
            &bytes[f.end..],
        ]
        .concat())
    };
    let flip = |pos: usize, bit: u8| {
        let mut out = bytes.to_vec();
        out[pos] ^= 1 << bit;
        out
    };
    let tag_start = f.end - tag.len;
    match mutation {
        0 => truncate(1),
        1 => truncate(tag.len),
        2 => Ok(flip(tag_start, 0)),
        _ => Ok(flip(f.end - 1, 7)),
    }
}

/// Tags of a `PublicMessage`: confirmation tag (commits) and membership tag.
fn public_tags(bytes: &[u8]) -> Result<Vec<Tag>, CheckError> {
    let mut r = Reader::new(bytes);
    r.u16()?;
    r.u16()?;
    let content = FramedContent::read(&mut r)?;
    r.field()?; // signature
    let mut tags = Vec::new();
    if content.content_type == ContentType::Commit {
        let field = r.field()?;
        tags.push(Tag {
            name: "confirmation tag",
            field,
            len: field.end - field.start,
        });
    }
    if let Sender::Member(_) = content.sender {
        let field = r.field()?;
        tags.push(Tag {
            name: "membership tag",
            field,
            len: field.end - field.start,
        });
    }
    r.finish("PublicMessage")?;
    Ok(tags)
}

/// AEAD tags of a `PrivateMessage`: sender data and content.
fn private_tags(bytes: &[u8], tag_len: usize) -> Result<Vec<Tag>, CheckError> {
    let mut r = Reader::new(bytes);
    r.u16()?;
    r.u16()?;
    r.vec()?; // group_id
    r.u64()?; // epoch
    r.u8()?; // content_type
    r.vec()?; // authenticated_data
    let sender_data = r.field()?;
    let ciphertext = r.field()?;
    r.finish("PrivateMessage")?;
    Ok(vec![
        Tag {
            name: "sender data AEAD tag",
            field: sender_data,
            len: tag_len,
        },
        Tag {
            name: "content AEAD tag",
            field: ciphertext,
            len: tag_len,
        },
    ])
}

/// Counts one kind of negative case.
struct Tally(NegativeReport);

impl Tally {
    fn new(name: &'static str) -> Self {
        Self(NegativeReport {
            name,
            executed: 0,
            rejected: 0,
            failures: Vec::new(),
        })
    }

    /// The case passes when `outcome` is an error.
    fn expect_rejected<T>(&mut self, label: impl Into<String>, outcome: Result<T, CheckError>) {
        self.0.executed += 1;
        match outcome {
            Err(_) => self.0.rejected += 1,
            Ok(_) => self.0.failures.push(Failure {
                index: None,
                error: CheckError::NotRejected(label.into()),
            }),
        }
    }

    fn setup_failed(&mut self, index: Option<usize>, error: CheckError) {
        self.0.failures.push(Failure { index, error });
    }
}

fn shipped_vectors(
    files: &VectorFiles<'_>,
    file: VectorFile,
) -> Result<Vec<(usize, Value)>, CheckError> {
    let sel = vectors::select(files, file)?;
    let shipped = u64::from(SHIPPED_SUITE);
    Ok(sel
        .run
        .into_iter()
        .filter(|i| sel.vectors[*i].get("cipher_suite").and_then(Value::as_u64) == Some(shipped))
        .map(|i| (i, sel.vectors[i].clone()))
        .collect())
}

/// Cases against `rfc::framing` with the message-protection vector.
fn message_protection_cases(files: &VectorFiles<'_>) -> Vec<NegativeReport> {
    let mut tags =
        Tally::new("message-protection (RFC 9420 §6): MAC/AEAD tag truncated or bit-flipped");
    let mut as_public =
        Tally::new("message-protection (RFC 9420 §6): private message presented as public");
    let mut as_public_openmls =
        Tally::new("message-protection (openmls decode): private message presented as public");
    let mut other_group =
        Tally::new("message-protection (RFC 9420 §6): message replayed into another group");
    let result = (|| -> Result<(), CheckError> {
        let vectors = shipped_vectors(files, VectorFile::MessageProtection)?;
        if vectors.is_empty() {
            return Err(CheckError::Protocol(
                "no message-protection vector for the shipped suite",
            ));
        }
        for (_, v) in vectors {
            let (suite, t) = message_protection::parse(&v)?;
            mp_vector_cases(
                &suite,
                &t,
                &mut tags,
                &mut as_public,
                &mut as_public_openmls,
                &mut other_group,
            )?;
        }
        Ok(())
    })();
    if let Err(e) = result {
        tags.setup_failed(None, e);
    }
    vec![tags.0, as_public.0, as_public_openmls.0, other_group.0]
}

fn mp_vector_cases(
    suite: &Suite,
    t: &message_protection::Vector,
    tags: &mut Tally,
    as_public: &mut Tally,
    as_public_openmls: &mut Tally,
    other_group: &mut Tally,
) -> Result<(), CheckError> {
    let view = t.view(suite)?;
    let key = &t.signature_pub;
    let aead_tag = suite.cs.aead_algorithm().tag_size();
    let public: [(&str, &[u8]); 2] = [
        ("proposal_pub", &t.proposal_pub),
        ("commit_pub", &t.commit_pub),
    ];
    let private: [(&str, &[u8]); 3] = [
        ("proposal_priv", &t.proposal_priv),
        ("commit_priv", &t.commit_priv),
        ("application_priv", &t.application_priv),
    ];

    for (name, msg) in public {
        view.unprotect_public(msg, key)?; // the untouched message is accepted
        for tag in public_tags(msg)? {
            for (m, what) in MUTATIONS.iter().enumerate() {
                let bad = mutate(msg, tag, m)?;
                tags.expect_rejected(
                    format!("{name}: {} {what}", tag.name),
                    view.unprotect_public(&bad, key),
                );
            }
        }
    }
    for (name, msg) in private {
        view.unprotect_private(msg, key)?;
        for tag in private_tags(msg, aead_tag)? {
            for (m, what) in MUTATIONS.iter().enumerate() {
                let bad = mutate(msg, tag, m)?;
                tags.expect_rejected(
                    format!("{name}: {} {what}", tag.name),
                    view.unprotect_private(&bad, key),
                );
            }
        }
        // wire_format private_message (2) rewritten to public_message (1).
        let mut rewired = msg.to_vec();
        rewired
            .get_mut(2..4)
            .ok_or(CheckError::Decode("MLSMessage", "truncated"))?
            .copy_from_slice(&1u16.to_be_bytes());
        as_public.expect_rejected(name, view.unprotect_public(&rewired, key));
        as_public_openmls.expect_rejected(name, passive_client::decode_message(&rewired));
    }

    // Another group: a different group id (so a different group context),
    // with the message unchanged and with its group id rewritten.
    let mut other_id = t.group_id.0.clone();
    if let Some(b) = other_id.first_mut() {
        *b ^= 0xff;
    }
    let other = EpochView {
        group_context: crate::rfc::structs::GroupContext {
            cipher_suite: suite.id(),
            group_id: other_id.clone(),
            epoch: t.epoch,
            tree_hash: t.tree_hash.0.clone(),
            confirmed_transcript_hash: t.confirmed_transcript_hash.0.clone(),
            extensions: Vec::new(),
        }
        .encode()?,
        group_id: other_id.clone(),
        ..t.view(suite)?
    };
    let rewrite_group_id = |msg: &[u8]| -> Result<Vec<u8>, CheckError> {
        let mut r = Reader::new(msg);
        r.u16()?;
        r.u16()?;
        let f = r.field()?;
        Ok([&msg[..f.start], &other_id, &msg[f.end..]].concat())
    };
    for (name, msg) in public {
        other_group.expect_rejected(format!("{name} as sent"), other.unprotect_public(msg, key));
        let moved = rewrite_group_id(msg)?;
        other_group.expect_rejected(
            format!("{name} with group id rewritten"),
            other.unprotect_public(&moved, key),
        );
    }
    for (name, msg) in private {
        other_group.expect_rejected(format!("{name} as sent"), other.unprotect_private(msg, key));
        let moved = rewrite_group_id(msg)?;
        other_group.expect_rejected(
            format!("{name} with group id rewritten"),
            other.unprotect_private(&moved, key),
        );
    }
    Ok(())
}

/// Cases against openmls with groups joined from the passive-client vectors.
fn passive_client_cases(files: &VectorFiles<'_>) -> Vec<NegativeReport> {
    let mut tags = Tally::new(
        "passive client (openmls): membership/confirmation tag truncated or bit-flipped",
    );
    let mut other_group =
        Tally::new("passive client (openmls): commit replayed into another group");
    let mut replay = Tally::new("passive client (openmls): commit replayed after it was merged");
    let result = (|| -> Result<(), CheckError> {
        let mut cases: Vec<(usize, passive_client::Vector)> = Vec::new();
        for (i, v) in shipped_vectors(files, VectorFile::PassiveClientHandlingCommit)? {
            let t: passive_client::Vector = typed(&v)?;
            if !t.epochs.is_empty() {
                cases.push((i, t));
            }
        }
        if cases.len() < 2 {
            return Err(CheckError::Protocol(
                "too few passive-client vectors for the shipped suite",
            ));
        }
        // Receivers in other groups: the passive-client-welcome groups (the
        // handling-commit vectors all start from one and the same group).
        let mut others = Vec::new();
        for (i, v) in shipped_vectors(files, VectorFile::PassiveClientWelcome)? {
            let t: passive_client::Vector = typed(&v)?;
            others.push((i, PassiveClient::join(&t)?));
        }
        if others.is_empty() {
            return Err(CheckError::Protocol(
                "no passive-client-welcome group to replay into",
            ));
        }
        for (k, (from, t)) in cases.iter().enumerate() {
            let n = others.len();
            let (to, receiver) = &mut others[k % n];
            let commit = &t.epochs[0].commit;
            if passive_client::group_id_of(commit)? == receiver.group_id() {
                return Err(CheckError::Protocol("replay target is the same group"));
            }
            other_group.expect_rejected(
                format!(
                    "commit of handling-commit vector {from} into the group of welcome vector {to}"
                ),
                receiver.process(commit),
            );
        }
        let clients: Vec<_> = cases
            .iter()
            .map(|(i, t)| (*i, PassiveClient::join(t).map_err(|e| (*i, e))))
            .collect();
        for ((i, t), (_, client)) in cases.iter().zip(clients) {
            match client {
                Ok(mut client) => {
                    if let Err(e) = follow_with_tampering(&mut client, t, &mut tags, &mut replay) {
                        tags.setup_failed(Some(*i), e);
                    }
                }
                Err((i, e)) => tags.setup_failed(Some(i), e),
            }
        }
        Ok(())
    })();
    if let Err(e) = result {
        tags.setup_failed(None, e);
    }
    vec![tags.0, other_group.0, replay.0]
}

/// Follows the group, offering every tampered variant of each message
/// before the genuine one, and the genuine commit again after merging it.
fn follow_with_tampering(
    client: &mut PassiveClient,
    t: &passive_client::Vector,
    tags: &mut Tally,
    replay: &mut Tally,
) -> Result<(), CheckError> {
    for (n, epoch) in t.epochs.iter().enumerate() {
        let messages = epoch
            .proposals
            .iter()
            .map(|p| ("proposal", p))
            .chain([("commit", &epoch.commit)]);
        for (kind, msg) in messages {
            for tag in public_tags(msg)? {
                for (m, what) in MUTATIONS.iter().enumerate() {
                    let bad = mutate(msg, tag, m)?;
                    tags.expect_rejected(
                        format!("epoch {n} {kind}: {} {what}", tag.name),
                        client.process(&bad),
                    );
                }
            }
            client.process(msg)?;
        }
        if client.epoch_authenticator() != epoch.epoch_authenticator.0 {
            return Err(CheckError::mismatch(format!(
                "epoch {n}: epoch_authenticator after tampering"
            )));
        }
        replay.expect_rejected(format!("epoch {n} commit"), client.process(&epoch.commit));
    }
    Ok(())
}

pub(crate) fn run(files: &VectorFiles<'_>) -> Vec<NegativeReport> {
    let mut out = message_protection_cases(files);
    out.extend(passive_client_cases(files));
    out
}
