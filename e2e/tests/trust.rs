//! Members are who the directory says they are, end to end: a hostile client logged in to a
//! real node (its own registered account, speaking MLS without the engine's checks) commits a
//! leaf that claims to be Alice's device with its own key. The server cannot see inside and
//! accepts it; every honest client refuses it, says so, and the group goes on.

mod support;

#[path = "../../core/tests/support/hostile.rs"]
mod hostile;

use hostile::Hostile;
use qpq_core::{Content, OutboundResult, SystemEvent};
use qpq_proto::{ChannelId, DeviceAddress};
use support::*;

fn refused_notice(e: &qpq_core::Engine, conv: &ChannelId) -> bool {
    e.history(conv).iter().any(
        |m| matches!(&m.content, Content::System(SystemEvent::Undecryptable(w)) if w.contains("does not match the directory")),
    )
}

#[test]
fn a_forged_member_added_by_a_hostile_client_is_refused_by_everyone() {
    run(async {
        let dir = tempfile::tempdir().unwrap();
        let node = sqlite_node(dir.path());
        let alice = client(&node, dir.path(), "alice").await;
        let bob = client(&node, dir.path(), "bob").await;

        // Mallory registers her own account and logs in like any client.
        let mut mallory = Hostile::new(user("mallory"), 40);
        let conn = raw_connection(&node).await;
        let rpc = rpc(&conn).await;
        let (domain, _) = rpc.hello("hostile").await.unwrap();
        rpc.register_identity(&mallory.identity_key, &mallory.record).await.unwrap();
        let nonce = rpc.challenge(&mallory.addr.user, &mallory.addr.device).await.unwrap();
        let sig = mallory.sign_login(&domain, &nonce);
        let session = rpc.login(&mallory.addr.user, &mallory.addr.device, &nonce, &sig).await.unwrap();
        session.upload_key_packages(&mallory.key_packages(3), None).await.unwrap();

        let conv = alice.create_group("team", &[bob.user(), mallory.addr.user.clone()]).await.unwrap();
        wait_conversation(&bob, &conv).await;
        for _ in 0..100 {
            for env in session.fetch(0, 100).await.unwrap() {
                mallory.receive(&env);
            }
            if mallory.groups.contains_key(&conv) {
                break;
            }
            sleep(100).await;
        }
        assert!(mallory.groups.contains_key(&conv), "mallory joined");
        alice.send_text(&conv, "hello").await.unwrap();
        wait_texts(&bob, &conv, &["hello"]).await;

        // The forged "alice": Alice's device address, Mallory's key.
        let victim = DeviceAddress { user: alice.user(), device: alice.with_engine(|e| e.device_id()) };
        let (epoch, _) = session.channel_info(&conv).await.unwrap();
        let out = mallory.forged_add(&conv, epoch, &victim);
        let result = session.send_outbound(&out).await.unwrap();
        assert!(matches!(result, OutboundResult::Accepted { .. }), "the server cannot tell: {result:?}");
        mallory.settle(true);

        for c in [&alice, &bob] {
            assert!(c.wait_for(20_000, |e| refused_notice(e, &conv)).await, "{} refuses the forged member", c.user());
            assert_eq!(c.with_engine(|e| e.conversation(&conv).unwrap().members.len()), 3);
        }
        assert_eq!(
            alice.with_engine(|e| e.epoch_authenticator(&conv)),
            bob.with_engine(|e| e.epoch_authenticator(&conv))
        );

        // The group goes on: Bob removes Mallory (an honest commit, at the server's epoch),
        // and messages still flow.
        bob.remove_members(&conv, &[mallory.addr.user.clone()]).await.unwrap();
        wait_members(&alice, &conv, 2).await;
        wait_outbox_empty(&bob).await;
        assert_eq!(
            alice.with_engine(|e| e.epoch_authenticator(&conv)),
            bob.with_engine(|e| e.epoch_authenticator(&conv))
        );
        alice.send_text(&conv, "still here").await.unwrap();
        wait_texts(&bob, &conv, &["hello", "still here"]).await;
        assert!(texts(&alice, &conv).iter().all(|t| t == "hello" || t == "still here"));
    });
}
