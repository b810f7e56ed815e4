//! Call signalling between simulated clients: signals travel inside MLS and reach the shell as
//! events, each call leaves one history entry (answered, declined, missed), a late offer does
//! not ring, a forged fingerprint is refused, and calls are limited to four people.

mod support;

use qpq_core::call::{CallId, CallPeer, CallSignal, IceCandidate, MAX_CALL_PARTICIPANTS, RING_TIMEOUT_MS};
use qpq_core::{Body, CallOutcome, Content, ConversationKind, EngineError, Event};
use qpq_types::{ChannelId, UserId};
use support::{SimClient, SimServer};

const FP: &str = "sha-256 0A:1B:2C:3D:4E:5F:60:71:82:93:A4:B5:C6:D7:E8:F9:0A:1B:2C:3D:4E:5F:60:71:82:93:A4:B5:C6:D7:E8:F9";

fn sdp(fp: &str) -> String {
    format!("v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=fingerprint:{fp}\r\n")
}

fn offer(call: CallId, to: UserId, video: bool) -> CallSignal {
    CallSignal::Offer { call, to: CallPeer { user: to, device: None }, video, sdp: sdp(FP), fingerprint: FP.into(), restart: false }
}

fn signal(c: &mut SimClient, s: &mut SimServer, conv: &ChannelId, sig: CallSignal) {
    c.engine.send_call_signal(conv, sig, s.time).unwrap();
    c.persist();
    c.pump(s);
}

/// The call signals among the events since the last call.
fn calls(c: &mut SimClient) -> Vec<(UserId, CallSignal)> {
    c.engine
        .drain_events()
        .into_iter()
        .filter_map(|e| match e {
            Event::Call { from, signal, .. } => Some((from.user, signal)),
            _ => None,
        })
        .collect()
}

fn outcome(c: &SimClient, conv: &ChannelId) -> (bool, CallOutcome) {
    let m = c.engine.history(conv).iter().rev().find(|m| matches!(m.content, Content::Call { .. })).expect("a call entry");
    match &m.content {
        Content::Call { outcome, .. } => (m.outgoing, outcome.clone()),
        _ => unreachable!(),
    }
}

fn pair(s: &mut SimServer) -> (SimClient, SimClient, ChannelId) {
    let mut alice = SimClient::new(s, "alice", 1);
    let mut bob = SimClient::new(s, "bob", 2);
    let conv = alice.start(s, ConversationKind::Direct, "", &[&bob]);
    bob.sync(s);
    alice.engine.drain_events();
    bob.engine.drain_events();
    (alice, bob, conv)
}

#[test]
fn an_answered_call_carries_every_signal_and_logs_one_entry() {
    let mut s = SimServer::default();
    let (mut alice, mut bob, conv) = pair(&mut s);
    let call = CallId([7; 16]);
    signal(&mut alice, &mut s, &conv, offer(call, bob.user(), true));
    assert_eq!(outcome(&alice, &conv), (true, CallOutcome::Ringing));
    bob.sync(&mut s);
    let got = calls(&mut bob);
    assert_eq!(got, vec![(alice.user(), offer(call, bob.user(), true))], "Bob rings with Alice's offer as sent");
    assert_eq!(outcome(&bob, &conv), (false, CallOutcome::Ringing));

    let to_alice = CallPeer { user: alice.user(), device: Some(alice.engine.device_id()) };
    let answer = CallSignal::Answer { call, to: to_alice.clone(), sdp: sdp(FP), fingerprint: FP.into() };
    signal(&mut bob, &mut s, &conv, answer.clone());
    let cands = CallSignal::Candidates {
        call,
        to: to_alice,
        candidates: vec![IceCandidate { mid: "0".into(), m_line: 0, line: "candidate:1 1 udp 1 10.0.0.2 4000 typ host".into() }],
    };
    signal(&mut bob, &mut s, &conv, cands.clone());
    alice.sync(&mut s);
    let got: Vec<CallSignal> = calls(&mut alice).into_iter().map(|(_, s)| s).collect();
    assert_eq!(got, vec![answer, cands]);
    assert_eq!(outcome(&alice, &conv), (true, CallOutcome::Answered));
    assert_eq!(outcome(&bob, &conv), (false, CallOutcome::Answered));

    // Hanging up after the call was answered leaves the entry as it is.
    signal(&mut alice, &mut s, &conv, CallSignal::Hangup { call });
    bob.sync(&mut s);
    assert_eq!(calls(&mut bob), vec![(alice.user(), CallSignal::Hangup { call })]);
    assert_eq!(outcome(&bob, &conv), (false, CallOutcome::Answered));
    let entries = bob.engine.history(&conv).iter().filter(|m| matches!(m.content, Content::Call { .. })).count();
    assert_eq!(entries, 1, "one entry per call");

    // The entries survive a reload.
    bob.reload();
    assert_eq!(outcome(&bob, &conv), (false, CallOutcome::Answered));
}

#[test]
fn declined_unanswered_and_late_calls() {
    let mut s = SimServer::default();
    let (mut alice, mut bob, conv) = pair(&mut s);
    s.time = 1_700_000_000_000;
    let to_alice = CallPeer { user: alice.user(), device: Some(alice.engine.device_id()) };

    // Declined.
    let call = CallId([1; 16]);
    signal(&mut alice, &mut s, &conv, offer(call, bob.user(), false));
    bob.sync(&mut s);
    signal(&mut bob, &mut s, &conv, CallSignal::Decline { call, to: to_alice.clone() });
    alice.sync(&mut s);
    assert_eq!(outcome(&bob, &conv), (false, CallOutcome::Declined));
    assert_eq!(outcome(&alice, &conv), (true, CallOutcome::Declined));

    // Unanswered: Alice hangs up while it rings; Bob sees a missed call, counted unread.
    let call = CallId([2; 16]);
    signal(&mut alice, &mut s, &conv, offer(call, bob.user(), true));
    bob.sync(&mut s);
    bob.engine.mark_read(&conv);
    signal(&mut alice, &mut s, &conv, CallSignal::Hangup { call });
    bob.sync(&mut s);
    assert_eq!(outcome(&bob, &conv), (false, CallOutcome::Missed));
    assert_eq!(outcome(&alice, &conv), (true, CallOutcome::Missed));
    assert_eq!(bob.engine.conversation(&conv).unwrap().unread, 1);

    // An offer that reaches Bob after the ring timeout does not ring: a missed call at once.
    let call = CallId([3; 16]);
    signal(&mut alice, &mut s, &conv, offer(call, bob.user(), true));
    s.time += RING_TIMEOUT_MS + 1;
    bob.engine.drain_events();
    bob.sync(&mut s);
    assert!(calls(&mut bob).is_empty(), "a late offer does not ring");
    assert_eq!(outcome(&bob, &conv), (false, CallOutcome::Missed));

    // Ringing out here without an answer logs it as missed too.
    let call = CallId([4; 16]);
    signal(&mut alice, &mut s, &conv, offer(call, bob.user(), true));
    bob.sync(&mut s);
    bob.engine.call_rang_out(&conv, call);
    assert_eq!(outcome(&bob, &conv), (false, CallOutcome::Missed));
}

#[test]
fn a_forged_fingerprint_and_too_many_people_are_refused() {
    let mut s = SimServer::default();
    let (mut alice, _bob, conv) = pair(&mut s);
    let bad = CallSignal::Offer {
        call: CallId([9; 16]),
        to: CallPeer { user: alice.user(), device: None },
        video: false,
        sdp: sdp(&FP.replace("0A:1B", "FF:FF")),
        fingerprint: FP.into(),
        restart: false,
    };
    assert!(matches!(alice.engine.send_call_signal(&conv, bad.clone(), s.time), Err(EngineError::Codec(_))));

    // A member who skips the check (sends the message as it is) reaches nobody: the receiver
    // refuses it and nothing rings.
    let mut s = SimServer::default();
    let (mut alice, mut bob, conv) = pair(&mut s);
    alice.engine.send_unchecked(&conv, Body::Call(bad), s.time).unwrap();
    alice.persist();
    alice.pump(&mut s);
    bob.sync(&mut s);
    assert!(calls(&mut bob).is_empty());
    assert!(!bob.engine.history(&conv).iter().any(|m| matches!(m.content, Content::Call { .. })));

    // Five people: more than a mesh call allows.
    let mut s = SimServer::default();
    let mut a = SimClient::new(&mut s, "a", 1);
    let others: Vec<SimClient> = (0..MAX_CALL_PARTICIPANTS as u8).map(|i| SimClient::new(&mut s, &format!("m{i}"), 10 + i)).collect();
    let refs: Vec<&SimClient> = others.iter().collect();
    let conv = a.start(&mut s, ConversationKind::Group, "Five", &refs);
    let err = a.engine.send_call_signal(&conv, offer(CallId([5; 16]), others[0].user(), false), s.time).unwrap_err();
    assert!(err.to_string().contains("at most 4 people"), "{err}");
}

#[test]
fn a_group_call_reaches_each_member_addressed_and_the_others_see_it() {
    let mut s = SimServer::default();
    let mut alice = SimClient::new(&mut s, "alice", 1);
    let mut bob = SimClient::new(&mut s, "bob", 2);
    let mut carol = SimClient::new(&mut s, "carol", 3);
    let conv = alice.start(&mut s, ConversationKind::Group, "Team", &[&bob, &carol]);
    bob.sync(&mut s);
    carol.sync(&mut s);
    let call = CallId([6; 16]);
    signal(&mut alice, &mut s, &conv, offer(call, bob.user(), true));
    signal(&mut alice, &mut s, &conv, offer(call, carol.user(), true));
    bob.engine.drain_events();
    bob.sync(&mut s);
    carol.sync(&mut s);
    // Everyone sees both offers (MLS goes to the whole group); each is addressed.
    let to: Vec<UserId> = calls(&mut bob).into_iter().map(|(_, s)| s.to().unwrap().user.clone()).collect();
    assert_eq!(to, vec![bob.user(), carol.user()]);
    assert_eq!(outcome(&carol, &conv), (false, CallOutcome::Ringing));
    let entries = carol.engine.history(&conv).iter().filter(|m| matches!(m.content, Content::Call { .. })).count();
    assert_eq!(entries, 1);
}
