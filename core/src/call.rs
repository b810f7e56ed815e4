//! Call signalling: the WebRTC offer, answer, ICE candidates, hang-up, decline and busy of a
//! voice or video call, carried as application messages inside the conversation's MLS group.
//!
//! The server sees none of it (no SDP, no addresses): only the members can read or forge a
//! signal, so the DTLS fingerprint an offer or answer names is authenticated by MLS. The codec
//! checks that every `a=fingerprint` line of the SDP equals the fingerprint the signal carries
//! apart ([`CallSignal::fingerprint`]); the page then checks, once DTLS is up, that the
//! certificate the other side presented has that fingerprint.
//!
//! Each signal is its own application-message kind (numbers in `app_message.rs`: 9 offer, 10
//! answer, 11 candidates, 12 hang-up, 13 decline, 14 busy, 15 media state), so a client that
//! predates calls shows them as unsupported. Their bodies share one set of TLV tags:
//!
//! ```text
//! 1 call id (16 bytes) | 2 to: user (UTF-8) | 3 to: device (16 bytes) | 4 video (0/1)
//! 5 sdp (UTF-8) | 6 fingerprint ("sha-256 AB:CD:…") | 7 candidate (repeated: 1 mid, 2 m-line, 3 line)
//! 8 restart (0/1) | 9 muted (0/1) | 10 camera off (0/1)
//! ```
//!
//! A call is addressed: an offer to a user (any of their devices may answer; the first answer
//! wins), everything after it to the device that answered or offered. In a group each pair of
//! participants has its own offer and answer (a mesh of at most [`MAX_CALL_PARTICIPANTS`]).

use std::fmt;

use qpq_types::{DeviceId, UserId};
use serde::{Deserialize, Serialize};

use crate::tlv::{put_field, CodecError, Fields};

/// Most people in one call, the caller included: every participant sends its media to every
/// other one (a mesh), which a browser's uplink bears for a handful of people.
pub const MAX_CALL_PARTICIPANTS: usize = 4;

/// Longest SDP an offer or answer may carry, in bytes.
pub const MAX_SDP_BYTES: usize = 32 * 1024;

/// Most ICE candidates in one candidates message.
pub const MAX_CANDIDATES: usize = 32;

/// Longest candidate line (or media id), in bytes.
pub const MAX_CANDIDATE_BYTES: usize = 1024;

/// How long an offer rings before it counts as missed (ms). An offer that reaches a device
/// later than this (it was offline) is shown as a missed call and does not ring.
pub const RING_TIMEOUT_MS: u64 = 45_000;

/// Longest fingerprint value (`sha-512` in hex with colons is 191 bytes).
const MAX_FINGERPRINT_BYTES: usize = 256;

/// A call's id, chosen by the caller: 16 random bytes.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct CallId(pub [u8; 16]);

impl CallId {
    /// Lower-case hex.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// Parses hex of 16 bytes.
    pub fn from_hex(s: &str) -> Option<Self> {
        Some(CallId(hex::decode(s).ok()?.try_into().ok()?))
    }
}

impl fmt::Debug for CallId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CallId({})", &self.to_hex()[..8])
    }
}

/// Whom a signal is for: a user (an offer: any of their devices), or one device of theirs.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct CallPeer {
    /// The user.
    pub user: UserId,
    /// The device, once one answered (or for signals back to the offering device).
    pub device: Option<DeviceId>,
}

/// One ICE candidate as `RTCIceCandidate` gives it.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct IceCandidate {
    /// `sdpMid`.
    pub mid: String,
    /// `sdpMLineIndex`.
    pub m_line: u32,
    /// `candidate` (the `candidate:…` line).
    pub line: String,
}

/// One call signal.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum CallSignal {
    /// "Let us talk": the offerer's session description. With `restart`, a new offer for a
    /// call already connected (an ICE restart after a network change); it does not ring.
    Offer {
        /// The call.
        call: CallId,
        /// Whom it is for.
        to: CallPeer,
        /// A video call (else voice only).
        video: bool,
        /// The SDP offer.
        sdp: String,
        /// Its DTLS fingerprint (`sha-256 AB:CD:…`), equal to every `a=fingerprint` line.
        fingerprint: String,
        /// An ICE restart of a connected call.
        restart: bool,
    },
    /// The answer to an offer.
    Answer {
        /// The call.
        call: CallId,
        /// The device that offered.
        to: CallPeer,
        /// The SDP answer.
        sdp: String,
        /// Its DTLS fingerprint.
        fingerprint: String,
    },
    /// ICE candidates found after the offer or answer was sent (trickle ICE).
    Candidates {
        /// The call.
        call: CallId,
        /// The device they are for.
        to: CallPeer,
        /// At most [`MAX_CANDIDATES`].
        candidates: Vec<IceCandidate>,
    },
    /// The sender leaves the call (or, as the caller before anyone answered, cancels it).
    Hangup {
        /// The call.
        call: CallId,
    },
    /// The sender does not take the call.
    Decline {
        /// The call.
        call: CallId,
        /// The device that offered.
        to: CallPeer,
    },
    /// The sender is in another call.
    Busy {
        /// The call.
        call: CallId,
        /// The device that offered.
        to: CallPeer,
    },
    /// The sender's microphone and camera, for everyone in the call: sent when either changes
    /// (the other side's media simply stops, so it is told why).
    Media {
        /// The call.
        call: CallId,
        /// The microphone is muted.
        muted: bool,
        /// The camera is off.
        camera_off: bool,
    },
}

impl CallSignal {
    /// The call this signal belongs to.
    pub fn call(&self) -> CallId {
        match self {
            CallSignal::Offer { call, .. }
            | CallSignal::Answer { call, .. }
            | CallSignal::Candidates { call, .. }
            | CallSignal::Hangup { call }
            | CallSignal::Decline { call, .. }
            | CallSignal::Busy { call, .. }
            | CallSignal::Media { call, .. } => *call,
        }
    }

    /// Whom the signal is for; `None` for a hang-up or a media state, which are for everyone
    /// in the call.
    pub fn to(&self) -> Option<&CallPeer> {
        match self {
            CallSignal::Offer { to, .. }
            | CallSignal::Answer { to, .. }
            | CallSignal::Candidates { to, .. }
            | CallSignal::Decline { to, .. }
            | CallSignal::Busy { to, .. } => Some(to),
            CallSignal::Hangup { .. } | CallSignal::Media { .. } => None,
        }
    }

    /// The DTLS fingerprint signalled with an offer or answer.
    pub fn fingerprint(&self) -> Option<&str> {
        match self {
            CallSignal::Offer { fingerprint, .. } | CallSignal::Answer { fingerprint, .. } => Some(fingerprint),
            _ => None,
        }
    }

    /// The name of the signal's kind ("offer", "answer", …).
    pub fn kind_name(&self) -> &'static str {
        match self {
            CallSignal::Offer { .. } => "offer",
            CallSignal::Answer { .. } => "answer",
            CallSignal::Candidates { .. } => "candidates",
            CallSignal::Hangup { .. } => "hangup",
            CallSignal::Decline { .. } => "decline",
            CallSignal::Busy { .. } => "busy",
            CallSignal::Media { .. } => "media",
        }
    }

    /// Checks the limits a receiver checks (sizes, the fingerprint against the SDP).
    pub fn validate(&self) -> Result<(), CodecError> {
        match self {
            CallSignal::Offer { sdp, fingerprint, .. } | CallSignal::Answer { sdp, fingerprint, .. } => {
                if sdp.len() > MAX_SDP_BYTES {
                    return Err(CodecError::Malformed("session description"));
                }
                match sdp_fingerprint(sdp) {
                    Some(f) if same_fingerprint(&f, fingerprint) => Ok(()),
                    _ => Err(CodecError::Malformed("DTLS fingerprint")),
                }
            }
            CallSignal::Candidates { candidates, .. } => {
                let too_long = |s: &str| s.len() > MAX_CANDIDATE_BYTES;
                if candidates.len() > MAX_CANDIDATES || candidates.iter().any(|c| too_long(&c.mid) || too_long(&c.line)) {
                    return Err(CodecError::Malformed("ICE candidates"));
                }
                Ok(())
            }
            _ => Ok(()),
        }
    }
}

/// The one DTLS fingerprint an SDP names (`a=fingerprint:<hash> <hex>`, at session or media
/// level), as `"<hash> <HEX>"`; `None` when it names none or several different ones.
pub fn sdp_fingerprint(sdp: &str) -> Option<String> {
    let mut found: Option<String> = None;
    for line in sdp.lines() {
        let Some(v) = line.trim().strip_prefix("a=fingerprint:") else { continue };
        let (hash, value) = v.trim().split_once(' ')?;
        let f = format!("{} {}", hash.to_ascii_lowercase(), value.trim().to_ascii_uppercase());
        match &found {
            Some(prev) if *prev != f => return None,
            _ => found = Some(f),
        }
    }
    found
}

fn same_fingerprint(a: &str, b: &str) -> bool {
    let norm = |s: &str| s.split_once(' ').map(|(h, v)| (h.to_ascii_lowercase(), v.trim().to_ascii_uppercase()));
    norm(a).is_some() && norm(a) == norm(b)
}

// --- codec --------------------------------------------------------------------------------

/// The application-message kind numbers of the call signals.
pub(crate) mod kind {
    pub const OFFER: u64 = 9;
    pub const ANSWER: u64 = 10;
    pub const CANDIDATES: u64 = 11;
    pub const HANGUP: u64 = 12;
    pub const DECLINE: u64 = 13;
    pub const BUSY: u64 = 14;
    pub const MEDIA: u64 = 15;
}

mod tag {
    pub const CALL: u64 = 1;
    pub const TO_USER: u64 = 2;
    pub const TO_DEVICE: u64 = 3;
    pub const VIDEO: u64 = 4;
    pub const SDP: u64 = 5;
    pub const FINGERPRINT: u64 = 6;
    pub const CANDIDATE: u64 = 7;
    pub const RESTART: u64 = 8;
    pub const MUTED: u64 = 9;
    pub const CAMERA_OFF: u64 = 10;

    pub const CANDIDATE_MID: u64 = 1;
    pub const CANDIDATE_M_LINE: u64 = 2;
    pub const CANDIDATE_LINE: u64 = 3;
}

/// The kind number and body of a signal.
pub(crate) fn encode(signal: &CallSignal) -> (u64, Vec<u8>) {
    let mut b = Vec::new();
    put_field(&mut b, tag::CALL, &signal.call().0);
    if let Some(to) = signal.to() {
        put_field(&mut b, tag::TO_USER, to.user.as_str().as_bytes());
        if let Some(d) = &to.device {
            put_field(&mut b, tag::TO_DEVICE, &d.0);
        }
    }
    let kind = match signal {
        CallSignal::Offer { video, sdp, fingerprint, restart, .. } => {
            put_field(&mut b, tag::VIDEO, &[u8::from(*video)]);
            put_field(&mut b, tag::SDP, sdp.as_bytes());
            put_field(&mut b, tag::FINGERPRINT, fingerprint.as_bytes());
            if *restart {
                put_field(&mut b, tag::RESTART, &[1]);
            }
            kind::OFFER
        }
        CallSignal::Answer { sdp, fingerprint, .. } => {
            put_field(&mut b, tag::SDP, sdp.as_bytes());
            put_field(&mut b, tag::FINGERPRINT, fingerprint.as_bytes());
            kind::ANSWER
        }
        CallSignal::Candidates { candidates, .. } => {
            for c in candidates {
                let mut cb = Vec::new();
                put_field(&mut cb, tag::CANDIDATE_MID, c.mid.as_bytes());
                put_field(&mut cb, tag::CANDIDATE_M_LINE, &c.m_line.to_be_bytes());
                put_field(&mut cb, tag::CANDIDATE_LINE, c.line.as_bytes());
                put_field(&mut b, tag::CANDIDATE, &cb);
            }
            kind::CANDIDATES
        }
        CallSignal::Hangup { .. } => kind::HANGUP,
        CallSignal::Decline { .. } => kind::DECLINE,
        CallSignal::Busy { .. } => kind::BUSY,
        CallSignal::Media { muted, camera_off, .. } => {
            put_field(&mut b, tag::MUTED, &[u8::from(*muted)]);
            put_field(&mut b, tag::CAMERA_OFF, &[u8::from(*camera_off)]);
            kind::MEDIA
        }
    };
    (kind, b)
}

/// Decodes the body of a call kind; `None` when `kind` is not one.
pub(crate) fn decode(kind: u64, body: &[u8]) -> Option<Result<CallSignal, CodecError>> {
    if !(kind::OFFER..=kind::MEDIA).contains(&kind) {
        return None;
    }
    Some(decode_body(kind, body))
}

fn text(v: &[u8], max: usize, what: &'static str) -> Result<String, CodecError> {
    if v.len() > max {
        return Err(CodecError::Malformed(what));
    }
    String::from_utf8(v.to_vec()).map_err(|_| CodecError::Malformed(what))
}

fn flag(v: &[u8], what: &'static str) -> Result<bool, CodecError> {
    match v {
        [0] => Ok(false),
        [1] => Ok(true),
        _ => Err(CodecError::Malformed(what)),
    }
}

fn decode_body(kind: u64, body: &[u8]) -> Result<CallSignal, CodecError> {
    let (mut call, mut user, mut device, mut video, mut sdp, mut fingerprint, mut restart) =
        (None, None, None, false, None, None, false);
    let (mut muted, mut camera_off) = (false, false);
    let mut candidates = Vec::new();
    for field in Fields::new(body) {
        let (t, v) = field?;
        match t {
            tag::CALL => call = Some(CallId(v.try_into().map_err(|_| CodecError::Malformed("call id"))?)),
            tag::TO_USER => {
                let s = text(v, 512, "call peer")?;
                user = Some(UserId::parse(&s).map_err(|_| CodecError::Malformed("call peer"))?);
            }
            tag::TO_DEVICE => device = Some(DeviceId(v.try_into().map_err(|_| CodecError::Malformed("call device"))?)),
            tag::VIDEO => video = flag(v, "video flag")?,
            tag::SDP => sdp = Some(text(v, MAX_SDP_BYTES, "session description")?),
            tag::FINGERPRINT => fingerprint = Some(text(v, MAX_FINGERPRINT_BYTES, "DTLS fingerprint")?),
            tag::RESTART => restart = flag(v, "restart flag")?,
            tag::MUTED => muted = flag(v, "muted flag")?,
            tag::CAMERA_OFF => camera_off = flag(v, "camera flag")?,
            tag::CANDIDATE => {
                if candidates.len() == MAX_CANDIDATES {
                    return Err(CodecError::Malformed("ICE candidates"));
                }
                candidates.push(decode_candidate(v)?);
            }
            _ => {}
        }
    }
    let call = call.ok_or(CodecError::Missing("call id"))?;
    let to = || -> Result<CallPeer, CodecError> {
        Ok(CallPeer { user: user.clone().ok_or(CodecError::Missing("call peer"))?, device })
    };
    let sdp = || sdp.clone().ok_or(CodecError::Missing("session description"));
    let fingerprint = || fingerprint.clone().ok_or(CodecError::Missing("DTLS fingerprint"));
    let signal = match kind {
        kind::OFFER => CallSignal::Offer { call, to: to()?, video, sdp: sdp()?, fingerprint: fingerprint()?, restart },
        kind::ANSWER => CallSignal::Answer { call, to: to()?, sdp: sdp()?, fingerprint: fingerprint()? },
        kind::CANDIDATES => CallSignal::Candidates { call, to: to()?, candidates },
        kind::HANGUP => CallSignal::Hangup { call },
        kind::DECLINE => CallSignal::Decline { call, to: to()? },
        kind::BUSY => CallSignal::Busy { call, to: to()? },
        _ => CallSignal::Media { call, muted, camera_off },
    };
    signal.validate()?;
    Ok(signal)
}

fn decode_candidate(v: &[u8]) -> Result<IceCandidate, CodecError> {
    let (mut mid, mut m_line, mut line) = (String::new(), 0u32, None);
    for field in Fields::new(v) {
        let (t, v) = field?;
        match t {
            tag::CANDIDATE_MID => mid = text(v, MAX_CANDIDATE_BYTES, "ICE candidate")?,
            tag::CANDIDATE_M_LINE => {
                m_line = u32::from_be_bytes(v.try_into().map_err(|_| CodecError::Malformed("ICE candidate"))?)
            }
            tag::CANDIDATE_LINE => line = Some(text(v, MAX_CANDIDATE_BYTES, "ICE candidate")?),
            _ => {}
        }
    }
    Ok(IceCandidate { mid, m_line, line: line.ok_or(CodecError::Missing("ICE candidate"))? })
}

#[cfg(test)]
mod tests {
    use super::*;

    const FP: &str = "sha-256 0A:1B:2C:3D:4E:5F:60:71:82:93:A4:B5:C6:D7:E8:F9:0A:1B:2C:3D:4E:5F:60:71:82:93:A4:B5:C6:D7:E8:F9";

    fn sdp(fp: &str) -> String {
        format!("v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=fingerprint:{fp}\r\na=setup:actpass\r\n")
    }

    fn bob() -> CallPeer {
        CallPeer { user: UserId::parse("bob@x").unwrap(), device: None }
    }

    #[test]
    fn the_fingerprint_is_read_from_the_sdp() {
        assert_eq!(sdp_fingerprint(&sdp(FP)).as_deref(), Some(FP));
        assert_eq!(sdp_fingerprint(&sdp(&FP.to_lowercase().replace("sha-256", "SHA-256"))).as_deref(), Some(FP));
        assert_eq!(sdp_fingerprint("v=0\r\n"), None);
        // Two different fingerprints in one description: refused rather than guessed.
        let two = format!("{}a=fingerprint:sha-256 00:11\r\n", sdp(FP));
        assert_eq!(sdp_fingerprint(&two), None);
    }

    #[test]
    fn an_offer_whose_sdp_names_another_fingerprint_is_refused() {
        let good = CallSignal::Offer {
            call: CallId([1; 16]),
            to: bob(),
            video: true,
            sdp: sdp(FP),
            fingerprint: FP.into(),
            restart: false,
        };
        assert_eq!(good.validate(), Ok(()));
        let (k, b) = encode(&good);
        assert_eq!(decode(k, &b), Some(Ok(good)));
        let forged = CallSignal::Answer {
            call: CallId([1; 16]),
            to: bob(),
            sdp: sdp(&FP.replace("0A:1B", "FF:FF")),
            fingerprint: FP.into(),
        };
        let (k, b) = encode(&forged);
        assert_eq!(decode(k, &b), Some(Err(CodecError::Malformed("DTLS fingerprint"))));
    }

    #[test]
    fn candidates_are_bounded() {
        let c = IceCandidate { mid: "0".into(), m_line: 0, line: "candidate:1 1 udp 2122260223 10.0.0.1 5000 typ host".into() };
        let ok = CallSignal::Candidates { call: CallId([2; 16]), to: bob(), candidates: vec![c.clone(); MAX_CANDIDATES] };
        let (k, b) = encode(&ok);
        assert_eq!(decode(k, &b), Some(Ok(ok)));
        let too_many = CallSignal::Candidates { call: CallId([2; 16]), to: bob(), candidates: vec![c; MAX_CANDIDATES + 1] };
        let (k, b) = encode(&too_many);
        assert_eq!(decode(k, &b), Some(Err(CodecError::Malformed("ICE candidates"))));
    }

    #[test]
    fn not_a_call_kind_is_left_to_the_caller() {
        assert_eq!(decode(8, &[]), None);
        assert_eq!(decode(16, &[]), None);
        assert_eq!(decode(kind::HANGUP, &[]), Some(Err(CodecError::Missing("call id"))));
        assert_eq!(decode(kind::DECLINE, &[1, 16, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]), Some(Err(CodecError::Missing("call peer"))));
    }
}
