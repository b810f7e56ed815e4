//! Hand-built Cap'n Proto RPC messages (the `rpc.capnp` protocol, as framed on a two-party
//! stream), so that a fuzz input can be a raw byte stream and still reach the server's
//! methods: the harness writes a valid prefix (bootstrap, login) and the input follows.

use capnp::message::{Builder, HeapAllocator, ReaderOptions};
use capnp::traits::{HasTypeId, Owned};
use capnp_rpc::rpc_capnp::{cap_descriptor, message, return_};
use qpq_proto::node_capnp::{node_service, session};

/// `NodeService`'s interface id.
pub const NODE_SERVICE: u64 = <node_service::Client as HasTypeId>::TYPE_ID;
/// `Session`'s interface id.
pub const SESSION: u64 = <session::Client as HasTypeId>::TYPE_ID;

/// Method ordinals of `NodeService` (see `proto/schema/node.capnp`).
pub mod entry_method {
    /// `hello @0`.
    pub const HELLO: u16 = 0;
    /// `registerIdentity @1`.
    pub const REGISTER_IDENTITY: u16 = 1;
    /// `challenge @2`.
    pub const CHALLENGE: u16 = 2;
    /// `login @3`.
    pub const LOGIN: u16 = 3;
}

/// The question ids the login prefix uses; a fuzz input continuing a logged-in stream starts
/// its own questions at [`FIRST_FREE_QUESTION`].
pub mod prefix {
    /// `Bootstrap` (the `NodeService` entry object).
    pub const BOOTSTRAP: u32 = 0;
    /// `challenge`.
    pub const CHALLENGE: u32 = 1;
    /// `login`; its result's pointer field 0 is the `Session`.
    pub const LOGIN: u32 = 2;
}

/// First question id free after the login prefix.
pub const FIRST_FREE_QUESTION: u32 = 3;

/// What a call is addressed to.
#[derive(Clone, Copy, Debug)]
pub enum Target {
    /// The result of an earlier question (promise pipelining), optionally one pointer field of
    /// it (e.g. `login`'s `session`).
    Answer {
        /// The question.
        question: u32,
        /// The pointer field of its result, if not the result itself.
        field: Option<u16>,
    },
    /// A capability the other side exported under this id.
    Import(u32),
}

impl Target {
    /// The `NodeService` bootstrap object asked for with question `q`.
    pub fn entry(q: u32) -> Self {
        Target::Answer { question: q, field: None }
    }

    /// The `Session` returned by the `login` of the prefix.
    pub fn session() -> Self {
        Target::Answer { question: prefix::LOGIN, field: Some(0) }
    }
}

fn frame(m: &Builder<HeapAllocator>) -> Vec<u8> {
    capnp::serialize::write_message_to_words(m)
}

/// `Bootstrap` with question id `question`.
pub fn bootstrap(question: u32) -> Vec<u8> {
    let mut m = Builder::new_default();
    m.init_root::<message::Builder>().init_bootstrap().set_question_id(question);
    frame(&m)
}

/// `Finish` for `question`.
pub fn finish(question: u32) -> Vec<u8> {
    let mut m = Builder::new_default();
    m.init_root::<message::Builder>().init_finish().set_question_id(question);
    frame(&m)
}

/// A `Call` whose parameters (of type `P`) are filled by `fill`. `caps` are export ids of
/// capabilities hosted by the caller, listed in the parameters' cap table.
pub fn call<P: Owned>(
    question: u32,
    target: Target,
    interface_id: u64,
    method_id: u16,
    caps: &[u32],
    fill: impl FnOnce(P::Builder<'_>),
) -> Vec<u8> {
    let mut m = Builder::new_default();
    {
        let mut c = m.init_root::<message::Builder>().init_call();
        c.set_question_id(question);
        c.set_interface_id(interface_id);
        c.set_method_id(method_id);
        {
            let mut t = c.reborrow().init_target();
            match target {
                Target::Answer { question, field } => {
                    let mut pa = t.init_promised_answer();
                    pa.set_question_id(question);
                    if let Some(f) = field {
                        pa.init_transform(1).get(0).set_get_pointer_field(f);
                    }
                }
                Target::Import(id) => t.set_imported_cap(id),
            }
        }
        c.reborrow().init_send_results_to().set_caller(());
        let mut p = c.init_params();
        fill(p.reborrow().init_content().init_as::<P::Builder<'_>>());
        let mut table = p.init_cap_table(caps.len() as u32);
        for (i, id) in caps.iter().enumerate() {
            table.reborrow().get(i as u32).set_sender_hosted(*id);
        }
    }
    frame(&m)
}

/// Replaces the first 8-byte word equal to `marker` in `frame`'s body with a capability
/// pointer to cap-table entry `index`. Builders cannot write a capability pointer without a
/// live capability, so frames that pass one (`subscribe`'s listener) are patched: the caller
/// puts `marker` in the word before the pointer (the struct's last data word) and this writes
/// the pointer right after it.
pub fn patch_capability_after(frame: &mut [u8], marker: u64, index: u32) -> bool {
    let words = frame.len() / 8;
    for w in 0..words.saturating_sub(1) {
        let at = w * 8;
        if frame[at..at + 8] == marker.to_le_bytes() {
            // A capability pointer: kind 3 ("other"), subkind 0, the index in the upper half.
            let ptr: u64 = 3 | (u64::from(index) << 32);
            frame[at + 8..at + 16].copy_from_slice(&ptr.to_le_bytes());
            return true;
        }
    }
    false
}

/// What a `Return` said.
#[derive(Debug)]
pub enum Returned {
    /// Results.
    Results {
        /// What the caller's reader took from the result struct (e.g. `challenge`'s nonce).
        data: Option<Vec<u8>>,
        /// The first cap-table entry, if it is sender-hosted or a sender promise.
        export: Option<u32>,
    },
    /// An exception, with its reason.
    Exception(String),
    /// Anything else (cancelled, take-from-other-question, …).
    Other,
}

/// Reads an RPC message: `Some((answer_id, what))` when it is a `Return`, `None` otherwise.
/// `data` reads what the caller wants from the result struct.
pub fn parse_return(
    msg: &capnp::message::Reader<capnp::serialize::OwnedSegments>,
    data: impl FnOnce(capnp::any_pointer::Reader<'_>) -> capnp::Result<Vec<u8>>,
) -> capnp::Result<Option<(u32, Returned)>> {
    let root: message::Reader = msg.get_root()?;
    let message::Return(r) = root.which()? else { return Ok(None) };
    let r = r?;
    let id = r.get_answer_id();
    let what = match r.which()? {
        return_::Results(p) => {
            let p = p?;
            let export = match p.get_cap_table()?.iter().next().map(|c| c.which()) {
                Some(Ok(cap_descriptor::SenderHosted(id))) | Some(Ok(cap_descriptor::SenderPromise(id))) => Some(id),
                _ => None,
            };
            Returned::Results { data: data(p.get_content()).ok(), export }
        }
        return_::Exception(e) => Returned::Exception(e?.get_reason()?.to_string().unwrap_or_default()),
        _ => Returned::Other,
    };
    Ok(Some((id, what)))
}

/// Reader options of a client: generous, only to read the server's answers.
pub fn client_reader_options() -> ReaderOptions {
    let mut o = ReaderOptions::new();
    o.traversal_limit_in_words(Some(64 << 20));
    o
}
