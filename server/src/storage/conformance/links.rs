//! The link-slot rules of [`Storage`], for every backend: one request and one answer
//! relayed through a slot that lives ten minutes, is read once, and belongs to one account.

use super::*;

/// How long the fixtures' slots stay open (the node's ten minutes).
const TTL: Millis = 600_000;
/// The per-account limit the fixtures pass.
const MAX_OPEN: u32 = 3;

fn slot(n: u8) -> [u8; 32] {
    [n; 32]
}

/// Opens `slot(n)` for `owner`'s account at `now`, for [`TTL`].
async fn open(store: &dyn Storage, n: u8, owner: &DeviceAddress, now: Millis) {
    store.open_link(&slot(n), owner, MAX_OPEN, now, now + TTL).await.expect("open link");
}

pub(crate) async fn a_link_relays_one_request_and_one_answer_then_closes(store: Arc<dyn Storage>) {
    let alice = register(&*store, "alice", 2).await;
    open(&*store, 1, &alice[0], T0).await;
    let s = slot(1);
    assert_eq!(store.link_request(&s, &alice[0].user, T0).await, Ok(None), "no request yet");
    assert_eq!(store.take_link_answer(&s, T0).await, Ok(None), "no answer yet");
    assert_eq!(store.answer_link(&s, b"early", &alice[0], T0).await, Err(StoreError::NoSuchLink), "nothing to answer");

    store.put_link_request(&s, b"request", T0 + 1).await.unwrap();
    assert_eq!(store.link_request(&s, &alice[0].user, T0 + 2).await, Ok(Some(b"request".to_vec())));
    assert_eq!(store.take_link_answer(&s, T0 + 2).await, Ok(None), "a request alone is not an answer");
    // Any device of the account may answer (the one that showed the code, usually).
    store.answer_link(&s, b"answer", &alice[1], T0 + 3).await.unwrap();
    assert_eq!(store.link_request(&s, &alice[0].user, T0 + 3).await, Ok(Some(b"request".to_vec())));

    assert_eq!(store.take_link_answer(&s, T0 + 4).await, Ok(Some(b"answer".to_vec())));
    // Taking the answer closed the slot, for both sides.
    assert_eq!(store.take_link_answer(&s, T0 + 5).await, Err(StoreError::NoSuchLink), "an answer is read once");
    assert_eq!(store.link_request(&s, &alice[0].user, T0 + 5).await, Err(StoreError::NoSuchLink));
    assert_eq!(store.put_link_request(&s, b"again", T0 + 5).await, Err(StoreError::NoSuchLink));
    assert_eq!(store.answer_link(&s, b"again", &alice[0], T0 + 5).await, Err(StoreError::NoSuchLink));
    // Its name can be opened again.
    open(&*store, 1, &alice[0], T0 + 6).await;

    // A name nobody opened is no different from a used one.
    let never = slot(9);
    assert_eq!(store.put_link_request(&never, b"guess", T0).await, Err(StoreError::NoSuchLink));
    assert_eq!(store.take_link_answer(&never, T0).await, Err(StoreError::NoSuchLink));
    assert_eq!(store.link_request(&never, &alice[0].user, T0).await, Err(StoreError::NoSuchLink));
    store.close_link(&never, &alice[0]).await.expect("closing a slot that is not open is not an error");
}

pub(crate) async fn a_link_takes_one_request_and_one_answer(store: Arc<dyn Storage>) {
    let alice = register(&*store, "alice", 1).await.remove(0);
    let bob = register(&*store, "bob", 1).await.remove(0);
    open(&*store, 1, &alice, T0).await;
    let s = slot(1);
    store.put_link_request(&s, b"first", T0).await.unwrap();
    assert_eq!(store.put_link_request(&s, b"second", T0).await, Err(StoreError::NoSuchLink), "one request per slot");
    assert_eq!(store.link_request(&s, &alice.user, T0).await, Ok(Some(b"first".to_vec())), "the first is kept");
    store.answer_link(&s, b"answer", &alice, T0).await.unwrap();
    assert_eq!(store.answer_link(&s, b"other", &alice, T0).await, Err(StoreError::LinkAnswered));
    // An open slot's name is taken, for its account and every other.
    assert_eq!(store.open_link(&s, &alice, MAX_OPEN, T0, T0 + TTL).await, Err(StoreError::LinkExists));
    assert_eq!(store.open_link(&s, &bob, MAX_OPEN, T0, T0 + TTL).await, Err(StoreError::LinkExists));
    assert_eq!(store.take_link_answer(&s, T0).await, Ok(Some(b"answer".to_vec())), "the first answer is kept");

    // Racing new devices: exactly one request is stored; racing takers: one gets the answer.
    open(&*store, 2, &alice, T0).await;
    let racers = 8;
    let barrier = Arc::new(Barrier::new(racers));
    let tasks: Vec<_> = (0..racers)
        .map(|i| {
            let (store, barrier) = (store.clone(), barrier.clone());
            tokio::spawn(async move {
                barrier.wait().await;
                store.put_link_request(&slot(2), &[i as u8 + 1], T0).await
            })
        })
        .collect();
    let mut stored = 0;
    for t in tasks {
        match t.await.unwrap() {
            Ok(()) => stored += 1,
            Err(e) => assert_eq!(e, StoreError::NoSuchLink),
        }
    }
    assert_eq!(stored, 1, "exactly one request is stored");
    store.answer_link(&slot(2), b"answer", &alice, T0).await.unwrap();
    let barrier = Arc::new(Barrier::new(racers));
    let tasks: Vec<_> = (0..racers)
        .map(|_| {
            let (store, barrier) = (store.clone(), barrier.clone());
            tokio::spawn(async move {
                barrier.wait().await;
                store.take_link_answer(&slot(2), T0).await
            })
        })
        .collect();
    let mut taken = 0;
    for t in tasks {
        match t.await.unwrap() {
            Ok(Some(a)) => {
                assert_eq!(a, b"answer".to_vec());
                taken += 1;
            }
            Ok(None) => panic!("the answer was there"),
            Err(e) => assert_eq!(e, StoreError::NoSuchLink),
        }
    }
    assert_eq!(taken, 1, "exactly one taker gets the answer");
}

pub(crate) async fn expired_links_are_refused_and_swept(store: Arc<dyn Storage>) {
    let alice = register(&*store, "alice", 1).await.remove(0);
    let end = T0 + TTL;
    open(&*store, 1, &alice, T0).await; // empty when it expires
    open(&*store, 2, &alice, T0).await; // answered when it expires
    store.put_link_request(&slot(2), b"request", T0).await.unwrap();
    store.answer_link(&slot(2), b"answer", &alice, T0).await.unwrap();

    assert_eq!(store.put_link_request(&slot(1), b"late", end - 1).await, Ok(()), "open until its end");
    open(&*store, 3, &alice, T0).await;
    assert_eq!(store.put_link_request(&slot(3), b"late", end).await, Err(StoreError::NoSuchLink));
    assert_eq!(store.link_request(&slot(1), &alice.user, end).await, Err(StoreError::NoSuchLink));
    assert_eq!(store.answer_link(&slot(1), b"late", &alice, end).await, Err(StoreError::NoSuchLink));
    assert_eq!(store.take_link_answer(&slot(2), end).await, Err(StoreError::NoSuchLink), "an answer expires too");
    assert_eq!(store.take_link_answer(&slot(2), end - 1).await, Ok(Some(b"answer".to_vec())));

    // Expired slots are not counted against the account, and their names are free again.
    open(&*store, 4, &alice, end).await;
    open(&*store, 5, &alice, end).await;
    open(&*store, 1, &alice, end).await;
    assert_eq!(store.link_request(&slot(1), &alice.user, end).await, Ok(None), "a fresh slot, not the old one");

    // The sweep removes what expired (slot 3), and nothing open.
    let stats = store.expire(end, 0, 0).await.unwrap();
    assert_eq!(stats.links, 1);
    assert_eq!(store.expire(end, 0, 0).await.unwrap().links, 0);
    let stats = store.expire(end + TTL, 0, 0).await.unwrap();
    assert_eq!(stats, ExpiryStats { links: 3, ..Default::default() });
}

pub(crate) async fn another_account_cannot_read_answer_or_close_a_link(store: Arc<dyn Storage>) {
    let alice = register(&*store, "alice", 1).await.remove(0);
    let mallory = register(&*store, "mallory", 1).await.remove(0);
    open(&*store, 1, &alice, T0).await;
    let s = slot(1);
    assert_eq!(store.link_request(&s, &mallory.user, T0).await, Err(StoreError::NoSuchLink), "even while empty");
    store.put_link_request(&s, b"request", T0).await.unwrap();
    assert_eq!(store.link_request(&s, &mallory.user, T0).await, Err(StoreError::NoSuchLink));
    assert_eq!(store.answer_link(&s, b"evil", &mallory, T0).await, Err(StoreError::NoSuchLink));
    store.close_link(&s, &mallory).await.expect("nothing of the caller's to close");
    // Alice's slot is as it was.
    assert_eq!(store.link_request(&s, &alice.user, T0).await, Ok(Some(b"request".to_vec())));
    assert_eq!(store.take_link_answer(&s, T0).await, Ok(None), "nobody answered");
    store.answer_link(&s, b"answer", &alice, T0).await.unwrap();
    // Alice may close her own slot.
    store.close_link(&s, &alice).await.unwrap();
    assert_eq!(store.take_link_answer(&s, T0).await, Err(StoreError::NoSuchLink), "closed before it was read");
}

pub(crate) async fn an_account_has_at_most_three_open_links(store: Arc<dyn Storage>) {
    let alice = register(&*store, "alice", 2).await;
    let bob = register(&*store, "bob", 1).await.remove(0);
    open(&*store, 1, &alice[0], T0).await;
    open(&*store, 2, &alice[1], T0).await;
    open(&*store, 3, &alice[0], T0).await;
    // Per account, whichever device opened them.
    let refused = store.open_link(&slot(4), &alice[1], MAX_OPEN, T0, T0 + TTL).await;
    assert!(matches!(refused, Err(StoreError::QuotaExceeded(_))), "{refused:?}");
    assert_eq!(store.put_link_request(&slot(4), b"request", T0).await, Err(StoreError::NoSuchLink), "not opened");
    open(&*store, 4, &bob, T0).await; // another account's limit is its own
    store.close_link(&slot(2), &alice[0]).await.unwrap();
    open(&*store, 5, &alice[0], T0).await;
    // A slot whose answer was taken is closed too.
    store.put_link_request(&slot(1), b"request", T0).await.unwrap();
    store.answer_link(&slot(1), b"answer", &alice[0], T0).await.unwrap();
    store.take_link_answer(&slot(1), T0).await.unwrap();
    open(&*store, 6, &alice[0], T0).await;
    let refused = store.open_link(&slot(7), &alice[0], MAX_OPEN, T0, T0 + TTL).await;
    assert!(matches!(refused, Err(StoreError::QuotaExceeded(_))), "{refused:?}");
}

pub(crate) async fn deleting_an_account_or_its_device_ends_its_links(store: Arc<dyn Storage>) {
    let alice = register(&*store, "alice", 2).await;
    open(&*store, 1, &alice[0], T0).await;
    open(&*store, 2, &alice[0], T0).await;
    store.put_link_request(&slot(2), b"request", T0).await.unwrap();

    // A revoked device can do nothing with its account's slots; the slots stay the account's.
    store.revoke_device(&alice[1], None).await.unwrap();
    assert_eq!(store.open_link(&slot(3), &alice[1], MAX_OPEN, T0, T0 + TTL).await, Err(StoreError::Revoked));
    assert_eq!(store.answer_link(&slot(2), b"answer", &alice[1], T0).await, Err(StoreError::Revoked));
    assert_eq!(store.close_link(&slot(1), &alice[1]).await, Err(StoreError::Revoked));
    assert_eq!(store.link_request(&slot(2), &alice[0].user, T0).await, Ok(Some(b"request".to_vec())));

    store.delete_user(&alice[0].user, T0 + 1000, None).await.unwrap();
    assert_eq!(store.put_link_request(&slot(1), b"request", T0).await, Err(StoreError::NoSuchLink));
    assert_eq!(store.take_link_answer(&slot(2), T0).await, Err(StoreError::NoSuchLink));
    assert_eq!(store.expire(T0 + TTL, 0, 0).await.unwrap().links, 0, "the slots went with the account");
    // The names are free for another account.
    let bob = register(&*store, "bob", 1).await.remove(0);
    open(&*store, 1, &bob, T0).await;
    open(&*store, 2, &bob, T0).await;
}
