//! Blocking, for every backend: an account's list (the same from each of its devices), what
//! it does to fan-out in a conversation of two accounts and in larger ones, the commits it
//! refuses, its bound, and what deleting an account does to it.

use super::*;
use crate::storage::PushSubscription;

/// A generous bound for the tests that are not about it.
const MAX: usize = 100;

/// The names `device`'s account blocks, as that device reads them.
async fn blocked(store: &dyn Storage, device: &DeviceAddress) -> Vec<String> {
    let users = store.blocked_users(device).await.expect("blocked users");
    users.iter().map(|u| u.as_str().to_owned()).collect()
}

/// The `Account` hints queued for `device`: each must be empty, on the reserved channel.
async fn account_hints(store: &dyn Storage, device: &DeviceAddress) -> usize {
    let hints: Vec<Envelope> = queue(store, device, T0).await.into_iter().filter(|e| e.kind == EnvelopeKind::Account).collect();
    assert!(hints.iter().all(|e| e.channel == ChannelId::account() && e.payload.is_empty()), "{hints:?}");
    hints.len()
}

/// The application messages queued for `device` (payloads).
async fn messages(store: &dyn Storage, device: &DeviceAddress) -> Vec<Vec<u8>> {
    let queued = queue(store, device, T0).await;
    queued.into_iter().filter(|e| e.kind == EnvelopeKind::Application).map(|e| e.payload).collect()
}

pub(crate) async fn a_block_is_kept_for_the_account_and_read_from_every_device(store: Arc<dyn Storage>) {
    let alice = register(&*store, "alice", 2).await;
    let bob = register(&*store, "bob", 1).await;
    let carol = &user("carol");
    assert_eq!(blocked(&*store, &alice[0]).await, Vec::<String>::new());

    // Blocked from one device, the list is the account's: the other device reads the same.
    store.set_blocked(&alice[0], carol, true, MAX, T0, 0).await.unwrap();
    assert_eq!(blocked(&*store, &alice[0]).await, vec!["carol@example.org"]);
    assert_eq!(blocked(&*store, &alice[1]).await, vec!["carol@example.org"], "synced to the second device");
    assert_eq!(blocked(&*store, &bob[0]).await, Vec::<String>::new(), "another account's list is its own");
    // The other device is told to read the list again; the blocking one and other accounts not.
    assert_eq!(account_hints(&*store, &alice[1]).await, 1);
    assert_eq!(account_hints(&*store, &alice[0]).await, 0);
    assert_eq!(account_hints(&*store, &bob[0]).await, 0);

    // Any name may be blocked, registered or not, of another server too; the list is sorted.
    let remote = UserId::parse("zed@elsewhere.example").unwrap();
    store.set_blocked(&alice[1], &remote, true, MAX, T0 + 1, 0).await.unwrap();
    store.set_blocked(&alice[1], &user("aaron"), true, MAX, T0 + 2, 0).await.unwrap();
    // Blocking again changes nothing.
    store.set_blocked(&alice[1], carol, true, MAX, T0 + 3, 0).await.unwrap();
    let all = vec!["aaron@example.org", "carol@example.org", "zed@elsewhere.example"];
    assert_eq!(blocked(&*store, &alice[0]).await, all);
    assert_eq!(blocked(&*store, &alice[1]).await, all);
    // Two changes from the second device: two hints for the first; the repeat told nobody.
    assert_eq!(account_hints(&*store, &alice[0]).await, 2);
    assert_eq!(account_hints(&*store, &alice[1]).await, 1);

    // Unblocking from either device lifts it for the account; unblocking twice is no error.
    store.set_blocked(&alice[1], carol, false, MAX, T0 + 4, 0).await.unwrap();
    store.set_blocked(&alice[0], carol, false, MAX, T0 + 5, 0).await.unwrap();
    store.set_blocked(&alice[0], &user("nobody"), false, MAX, T0 + 6, 0).await.unwrap();
    assert_eq!(blocked(&*store, &alice[0]).await, vec!["aaron@example.org", "zed@elsewhere.example"]);
    assert_eq!(blocked(&*store, &alice[1]).await, vec!["aaron@example.org", "zed@elsewhere.example"]);
    // Only the unblock that lifted something was told (by the second device, to the first).
    assert_eq!(account_hints(&*store, &alice[0]).await, 3);
    assert_eq!(account_hints(&*store, &alice[1]).await, 1);

    // Oneself: refused, nothing stored.
    assert_eq!(store.set_blocked(&alice[0], &alice[0].user, true, MAX, T0, 0).await, Err(StoreError::BlockSelf));
    assert_eq!(blocked(&*store, &alice[0]).await.len(), 2);

    // A gone device neither blocks nor reads.
    store.revoke_device(&alice[1], None).await.unwrap();
    assert_eq!(store.set_blocked(&alice[1], carol, true, MAX, T0, 0).await, Err(StoreError::Revoked));
    assert_eq!(store.blocked_users(&alice[1]).await, Err(StoreError::Revoked));
    let ghost = addr(&user("ghost"), 1);
    assert_eq!(store.set_blocked(&ghost, carol, true, MAX, T0, 0).await, Err(StoreError::Revoked));
    assert_eq!(store.blocked_users(&ghost).await, Err(StoreError::Revoked));
}

pub(crate) async fn a_blocked_senders_messages_reach_no_device_of_the_blocker_in_a_one_to_one(store: Arc<dyn Storage>) {
    let alice = register(&*store, "alice", 2).await;
    let carol = register(&*store, "carol", 2).await;
    let channel = group(&*store, 1, &[alice.clone(), carol.clone()].concat()).await;
    // The setup Welcomes were queued before anyone subscribed: nothing waits.
    let subscription = |n: u8| PushSubscription {
        endpoint: format!("https://push.example.net/sub/{n}"),
        p256dh: [n; 65],
        auth: [n; 16],
    };
    store.set_push_subscription(&alice[0], &subscription(1), T0).await.unwrap();
    store.set_push_subscription(&alice[1], &subscription(2), T0).await.unwrap();
    store.set_blocked(&alice[1], &carol[0].user, true, MAX, T0, 0).await.unwrap();

    // Carol's call succeeds as if nothing happened; her own other device gets the message.
    let mut rx = store.wakeups();
    let sent = store.enqueue(&enqueue_input(&channel, &carol[0], 1, 0, T0 + 7)).await.unwrap();
    assert_eq!(sent, EnqueueOutcome { server_time: T0 + 7, duplicate: false });
    assert_eq!(messages(&*store, &alice[0]).await, Vec::<Vec<u8>>::new(), "nothing queued for the blocker");
    assert_eq!(messages(&*store, &alice[1]).await, Vec::<Vec<u8>>::new(), "nor for the blocker's other device");
    assert_eq!(messages(&*store, &carol[1]).await, vec![b"message 1".to_vec()]);
    expect_wakeups(&mut rx, std::slice::from_ref(&carol[1])).await;
    assert!(rx.try_recv().is_err(), "the blocker's devices are not woken");
    assert_eq!(store.next_push_due().await.unwrap(), None, "nor pushed");
    // A retry is answered as the first attempt was.
    let retry = store.enqueue(&enqueue_input(&channel, &carol[0], 1, 0, T0 + 50)).await.unwrap();
    assert_eq!(retry, EnqueueOutcome { server_time: T0 + 7, duplicate: true });

    // A block is one way: Alice's messages reach Carol, and commits still reach everyone (the
    // MLS group stays in step).
    store.enqueue(&enqueue_input(&channel, &alice[0], 2, 0, T0 + 8)).await.unwrap();
    assert_eq!(messages(&*store, &carol[0]).await, vec![b"message 2".to_vec()]);
    store.commit(&commit_input(&channel, &carol[0], 1, 3, T0 + 9)).await.unwrap();
    for device in &alice {
        let commits: Vec<Envelope> =
            queue(&*store, device, T0).await.into_iter().filter(|e| e.kind == EnvelopeKind::Commit).collect();
        assert_eq!(commits.len(), 1, "the blocked user's commit reaches the blocker's devices");
    }

    // Alice's devices read their queues (her second one was pushed for her own message 2).
    for device in &alice {
        store.ack(device, u64::MAX).await.unwrap();
    }
    assert_eq!(store.next_push_due().await.unwrap(), None);

    // Unblocked, new messages are delivered again; what was dropped stays dropped.
    store.set_blocked(&alice[0], &carol[0].user, false, MAX, T0, 0).await.unwrap();
    store.enqueue(&enqueue_input(&channel, &carol[0], 4, 0, T0 + 10)).await.unwrap();
    for device in &alice {
        assert_eq!(messages(&*store, device).await, vec![b"message 4".to_vec()]);
    }
    assert_eq!(store.next_push_due().await.unwrap(), Some(T0 + 10 + PUSH_DELAY), "and pushed");
}

pub(crate) async fn blocks_change_no_delivery_in_a_conversation_of_three_accounts(store: Arc<dyn Storage>) {
    let alice = register(&*store, "alice", 2).await;
    let bob = register(&*store, "bob", 1).await;
    let carol = register(&*store, "carol", 1).await;
    let channel = group(&*store, 1, &[alice.clone(), bob.clone(), carol.clone()].concat()).await;
    store.set_blocked(&alice[0], &carol[0].user, true, MAX, T0, 0).await.unwrap();
    store.set_blocked(&bob[0], &carol[0].user, true, MAX, T0, 0).await.unwrap();

    store.enqueue(&enqueue_input(&channel, &carol[0], 1, 0, T0 + 1)).await.unwrap();
    // Every member gets it; the blockers' clients hide it.
    for device in [&alice[0], &alice[1], &bob[0]] {
        assert_eq!(messages(&*store, device).await, vec![b"message 1".to_vec()]);
    }

    // Once Bob has left, it is a conversation of two accounts: the block applies again.
    let mut leave = commit_input(&channel, &bob[0], 1, 2, T0 + 2);
    leave.remove = vec![bob[0].clone()];
    store.commit(&leave).await.unwrap();
    store.enqueue(&enqueue_input(&channel, &carol[0], 3, 0, T0 + 3)).await.unwrap();
    for device in &alice {
        assert_eq!(messages(&*store, device).await, vec![b"message 1".to_vec()], "nothing new for Alice");
    }
}

pub(crate) async fn a_commit_adding_a_device_of_an_account_that_blocks_the_committer_is_refused(
    store: Arc<dyn Storage>,
) {
    let alice = register(&*store, "alice", 2).await;
    let bob = register(&*store, "bob", 1).await;
    let carol = register(&*store, "carol", 2).await;
    store.set_blocked(&alice[1], &carol[0].user, true, MAX, T0, 0).await.unwrap();

    // Carol starts a conversation and tries to add Alice (with Bob).
    let channel = channel_id(2);
    store.create_channel(&channel, &carol[0], Some(b"group 0"), T0).await.unwrap();
    let mut input = commit_input(&channel, &carol[0], 0, 1, T0 + 1);
    input.add = vec![bob[0].clone(), alice[0].clone()];
    input.welcome = b"W".to_vec();
    let refused = store.commit(&input).await;
    assert_eq!(
        refused,
        Err(StoreError::NotAllowed("alice@example.org cannot be added to this conversation".into()))
    );
    let sentence = refused.unwrap_err().to_string();
    assert!(!sentence.contains("block"), "the refusal does not say why: {sentence}");

    // Nothing changed, and the refused message id is not spent.
    let row = store.channel(&channel).await.unwrap().unwrap();
    assert_eq!((row.epoch, row.members), (0, vec![carol[0].clone()]));
    for device in [&alice[0], &alice[1], &bob[0]] {
        let queued = queue(&*store, device, T0).await;
        assert!(queued.iter().all(|e| e.kind == EnvelopeKind::Account), "nothing queued but the block's hint: {queued:?}");
    }
    input.add = vec![bob[0].clone()];
    assert_eq!(store.commit(&input).await.unwrap().epoch, 1, "without Alice it goes through");

    // Any device of the blocking account is refused, in a new or an existing conversation.
    let mut again = commit_input(&channel, &carol[0], 1, 2, T0 + 2);
    again.add = vec![alice[1].clone()];
    again.welcome = b"W".to_vec();
    assert!(matches!(store.commit(&again).await, Err(StoreError::NotAllowed(_))));
    // Carol may still add her own devices; the blocker may add Carol.
    again.add = vec![carol[1].clone()];
    assert_eq!(store.commit(&again).await.unwrap().epoch, 2);
    let theirs = channel_id(3);
    store.create_channel(&theirs, &alice[0], Some(b"group 0"), T0).await.unwrap();
    let mut add_carol = commit_input(&theirs, &alice[0], 0, 3, T0 + 3);
    add_carol.add = vec![carol[0].clone()];
    add_carol.welcome = b"W".to_vec();
    assert_eq!(store.commit(&add_carol).await.unwrap().epoch, 1);

    // Unblocked, Alice can be added.
    store.set_blocked(&alice[0], &carol[0].user, false, MAX, T0, 0).await.unwrap();
    let mut add_alice = commit_input(&channel, &carol[0], 2, 4, T0 + 4);
    add_alice.add = alice.clone();
    add_alice.welcome = b"W".to_vec();
    assert_eq!(store.commit(&add_alice).await.unwrap().epoch, 3);
}

pub(crate) async fn an_account_blocks_at_most_its_bound(store: Arc<dyn Storage>) {
    let alice = register(&*store, "alice", 2).await;
    for name in ["u1", "u2", "u3"] {
        store.set_blocked(&alice[0], &user(name), true, 3, T0, 0).await.unwrap();
    }
    let refused = store.set_blocked(&alice[1], &user("u4"), true, 3, T0, 0).await;
    assert!(matches!(refused, Err(StoreError::QuotaExceeded(_))), "{refused:?}");
    assert_eq!(blocked(&*store, &alice[0]).await, vec!["u1@example.org", "u2@example.org", "u3@example.org"]);
    // At the bound, blocking someone already blocked changes nothing and is no error.
    store.set_blocked(&alice[1], &user("u2"), true, 3, T0, 0).await.unwrap();
    // Room again after an unblock.
    store.set_blocked(&alice[1], &user("u1"), false, 3, T0, 0).await.unwrap();
    store.set_blocked(&alice[1], &user("u4"), true, 3, T0, 0).await.unwrap();
    assert_eq!(blocked(&*store, &alice[0]).await, vec!["u2@example.org", "u3@example.org", "u4@example.org"]);
}

pub(crate) async fn deleting_an_account_removes_its_blocks(store: Arc<dyn Storage>) {
    let alice = register(&*store, "alice", 1).await.remove(0);
    let carol = register(&*store, "carol", 1).await.remove(0);
    store.set_blocked(&alice, &carol.user, true, MAX, T0, 0).await.unwrap();
    store.set_blocked(&alice, &user("dave"), true, MAX, T0, 0).await.unwrap();
    store.set_blocked(&carol, &alice.user, true, MAX, T0, 0).await.unwrap();

    store.delete_user(&alice.user, T0 + 10, Some(&alice)).await.unwrap();
    // Registered again, the name starts with no blocks.
    store.create_user(&alice.user, &identity(&alice.user), &record(&alice.user, 1), T0 + 20).await.unwrap();
    assert_eq!(blocked(&*store, &alice).await, Vec::<String>::new());
    // A block of the deleted account's name is its blocker's, and stays.
    assert_eq!(blocked(&*store, &carol).await, vec!["alice@example.org"]);
    // Nothing refers to the old account's rows: Carol may start a conversation with Alice.
    let channel = channel_id(4);
    store.create_channel(&channel, &carol, Some(b"group 0"), T0).await.unwrap();
    let mut add = commit_input(&channel, &carol, 0, 1, T0 + 30);
    add.add = vec![alice.clone()];
    add.welcome = b"W".to_vec();
    store.commit(&add).await.unwrap();
    store.enqueue(&enqueue_input(&channel, &carol, 2, 0, T0 + 31)).await.unwrap();
    assert_eq!(messages(&*store, &alice).await, vec![b"message 2".to_vec()]);
}
