//! The Web Push rules of [`Storage`], for every backend: subscriptions, one coalesced
//! waiting push per device, leases, outcomes, and the one VAPID key.

use super::*;
use crate::storage::{PushJob, PushOutcome, PushSubscription, VapidKeyRow};

/// The delay the fixtures give pushes (`push_at = now + PUSH_DELAY`).
const DELAY: Millis = PUSH_DELAY;
/// A claim's lease in these tests.
const LEASE: Millis = 60_000;

fn subscription(n: u8) -> PushSubscription {
    PushSubscription { endpoint: format!("https://push.example.net/sub/{n}"), p256dh: [n; 65], auth: [n; 16] }
}

async fn claim(store: &dyn Storage, now: Millis) -> Vec<PushJob> {
    store.claim_pushes(now, now + LEASE, 100).await.expect("claim pushes")
}

/// Alice and Bob (two devices) in channel 1; only Bob's first device subscribed.
async fn setup(store: &dyn Storage) -> (DeviceAddress, Vec<DeviceAddress>, ChannelId) {
    let alice = register(store, "alice", 1).await.remove(0);
    let bob = register(store, "bob", 2).await;
    let mut members = vec![alice.clone()];
    members.extend(bob.iter().cloned());
    let channel = group(store, 1, &members).await;
    // The setup Welcomes were queued before anyone subscribed: nothing waits.
    store.set_push_subscription(&bob[0], &subscription(1), T0).await.expect("subscribe");
    (alice, bob, channel)
}

pub(crate) async fn push_subscriptions_are_stored_replaced_and_removed(store: Arc<dyn Storage>) {
    let bob = register(&*store, "bob", 2).await;
    assert_eq!(store.push_subscription(&bob[0]).await.unwrap(), None);
    store.set_push_subscription(&bob[0], &subscription(1), T0).await.unwrap();
    assert_eq!(store.push_subscription(&bob[0]).await.unwrap(), Some(subscription(1)));
    store.set_push_subscription(&bob[0], &subscription(2), T0).await.unwrap();
    assert_eq!(store.push_subscription(&bob[0]).await.unwrap(), Some(subscription(2)), "a refresh replaces");
    assert_eq!(store.push_subscription(&bob[1]).await.unwrap(), None, "per device");
    store.remove_push_subscription(&bob[0]).await.unwrap();
    assert_eq!(store.push_subscription(&bob[0]).await.unwrap(), None);
    store.remove_push_subscription(&bob[0]).await.expect("removing twice is not an error");

    let ghost = addr(&user("ghost"), 9);
    assert_eq!(store.set_push_subscription(&ghost, &subscription(3), T0).await, Err(StoreError::NoSuchDevice));
    store.set_push_subscription(&bob[1], &subscription(4), T0).await.unwrap();
    store.revoke_device(&bob[1], None).await.unwrap();
    assert_eq!(store.push_subscription(&bob[1]).await.unwrap(), None, "a revoked device's subscription goes");
}

pub(crate) async fn queued_messages_wait_one_coalesced_push_per_subscribed_device(store: Arc<dyn Storage>) {
    let (alice, bob, channel) = setup(&*store).await;
    assert_eq!(store.next_push_due().await.unwrap(), None);
    for msg in 1..=3 {
        store.enqueue(&enqueue_input(&channel, &alice, msg, 0, T0)).await.unwrap();
    }
    assert_eq!(store.next_push_due().await.unwrap(), Some(T0 + DELAY));
    assert!(claim(&*store, T0 + DELAY - 1).await.is_empty(), "not due before the delay");
    let jobs = claim(&*store, T0 + DELAY).await;
    assert_eq!(jobs.len(), 1, "three messages, one push, for the subscribed device only");
    assert_eq!(jobs[0].subscription, subscription(1));
    assert_eq!(jobs[0].attempts, 0);
    assert!(claim(&*store, T0 + DELAY).await.is_empty(), "a claimed push is not handed out twice");

    store.finish_push(&jobs[0], PushOutcome::Sent).await.unwrap();
    assert_eq!(store.next_push_due().await.unwrap(), None);
    store.enqueue(&enqueue_input(&channel, &alice, 4, 0, T0 + 10)).await.unwrap();
    assert_eq!(store.next_push_due().await.unwrap(), None, "a notified device is not pushed again");

    // Bob's device comes for its queue: the next message pushes again.
    let last = queue(&*store, &bob[0], T0).await.last().map(|e| e.seq).unwrap();
    store.ack(&bob[0], last).await.unwrap();
    store.enqueue(&enqueue_input(&channel, &alice, 5, 0, T0 + 20)).await.unwrap();
    let jobs = claim(&*store, T0 + 20 + DELAY).await;
    assert_eq!(jobs.len(), 1);

    // Commits wake nobody; a Welcome wakes the added device.
    store.finish_push(&jobs[0], PushOutcome::Sent).await.unwrap();
    let carol = register(&*store, "carol", 1).await.remove(0);
    store.set_push_subscription(&carol, &subscription(7), T0).await.unwrap();
    let mut input = commit_input(&channel, &alice, 1, 6, T0 + 30);
    input.add = vec![carol.clone()];
    input.welcome = b"welcome carol".to_vec();
    store.commit(&input).await.unwrap();
    let jobs = claim(&*store, T0 + 30 + DELAY).await;
    assert_eq!(jobs.iter().map(|j| j.subscription.clone()).collect::<Vec<_>>(), vec![subscription(7)]);
}

pub(crate) async fn fetching_before_the_delay_cancels_the_push(store: Arc<dyn Storage>) {
    let (alice, bob, channel) = setup(&*store).await;
    store.enqueue(&enqueue_input(&channel, &alice, 1, 0, T0)).await.unwrap();
    // A live session receives the message and acknowledges it at once.
    let last = queue(&*store, &bob[0], T0).await.last().map(|e| e.seq).unwrap();
    store.ack(&bob[0], last).await.unwrap();
    assert!(claim(&*store, T0 + DELAY).await.is_empty());
    assert_eq!(store.next_push_due().await.unwrap(), None);
}

pub(crate) async fn failed_pushes_are_retried_leases_expire_and_gone_subscriptions_go(store: Arc<dyn Storage>) {
    let (alice, bob, channel) = setup(&*store).await;
    store.enqueue(&enqueue_input(&channel, &alice, 1, 0, T0)).await.unwrap();
    let t = T0 + DELAY;
    let job = claim(&*store, t).await.remove(0);
    // A sender that dies holding the claim loses nothing: the lease runs out.
    assert_eq!(store.next_push_due().await.unwrap(), Some(t + LEASE));
    let again = claim(&*store, t + LEASE).await;
    assert_eq!(again, vec![job.clone()]);

    store.finish_push(&again[0], PushOutcome::RetryAt(t + LEASE + 5_000)).await.unwrap();
    assert!(claim(&*store, t + LEASE + 4_999).await.is_empty());
    let retried = claim(&*store, t + LEASE + 5_000).await;
    assert_eq!(retried.len(), 1);
    assert_eq!(retried[0].attempts, 1, "the failure was counted");

    store.finish_push(&retried[0], PushOutcome::GiveUp).await.unwrap();
    assert_eq!(store.next_push_due().await.unwrap(), None);
    assert_eq!(store.push_subscription(&bob[0]).await.unwrap(), Some(subscription(1)), "giving up keeps it");

    // Gone removes the subscription it was sent to, but not one registered since.
    store.enqueue(&enqueue_input(&channel, &alice, 2, 0, T0)).await.unwrap();
    let job = claim(&*store, t).await.remove(0);
    store.set_push_subscription(&bob[0], &subscription(2), T0 + 1).await.unwrap();
    store.finish_push(&job, PushOutcome::Gone).await.unwrap();
    assert_eq!(store.push_subscription(&bob[0]).await.unwrap(), Some(subscription(2)));
    store.enqueue(&enqueue_input(&channel, &alice, 3, 0, T0)).await.unwrap();
    let job = claim(&*store, t).await.remove(0);
    assert_eq!(job.subscription, subscription(2));
    store.finish_push(&job, PushOutcome::Gone).await.unwrap();
    assert_eq!(store.push_subscription(&bob[0]).await.unwrap(), None);
    assert_eq!(store.next_push_due().await.unwrap(), None);
}

pub(crate) async fn concurrent_claims_never_hand_out_the_same_push(store: Arc<dyn Storage>) {
    let alice = register(&*store, "alice", 1).await.remove(0);
    let mut members = vec![alice.clone()];
    for n in 0..12u8 {
        let d = register(&*store, &format!("user{n}"), 1).await.remove(0);
        store.set_push_subscription(&d, &subscription(n), T0).await.unwrap();
        members.push(d);
    }
    let channel = group(&*store, 1, &members).await;
    store.enqueue(&enqueue_input(&channel, &alice, 1, 0, T0)).await.unwrap();
    let mut tasks = Vec::new();
    for _ in 0..4 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let mut mine = Vec::new();
            loop {
                let got = store.claim_pushes(T0 + DELAY, T0 + DELAY + LEASE, 2).await.expect("claim");
                if got.is_empty() {
                    return mine;
                }
                mine.extend(got.into_iter().map(|j| j.subscription.endpoint));
            }
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.unwrap());
    }
    let distinct: BTreeSet<String> = all.iter().cloned().collect();
    assert_eq!(all.len(), 12, "every push claimed once");
    assert_eq!(distinct.len(), 12);
}

pub(crate) async fn the_vapid_key_is_kept_once_for_everyone(store: Arc<dyn Storage>) {
    let first = VapidKeyRow { private_key: [1; 32], public_key: [4; 65] };
    let second = VapidKeyRow { private_key: [2; 32], public_key: [5; 65] };
    assert_eq!(store.vapid_key(&first, T0).await.unwrap(), first);
    assert_eq!(store.vapid_key(&second, T0 + 1).await.unwrap(), first, "the stored key wins");
    assert!(store.lead_pushes().await.unwrap().is_some(), "a lone node is the sender");
}
