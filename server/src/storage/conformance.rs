//! The storage conformance suite: every rule of [`Storage`] written once, as functions over
//! `Arc<dyn Storage>`, and expanded by [`storage_conformance!`] into `#[tokio::test]`s for
//! each backend — SQLite on a fresh temporary file per test, PostgreSQL in a fresh database
//! `qpq_test_<random hex>` per test (on the server named by `QPQ_TEST_POSTGRES`, dropped
//! afterwards). PostgreSQL additionally runs the cluster tests at the end: several
//! `PgStorage` nodes on one database.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use qpq_proto::{
    ChannelId, ClientMsgId, DeviceAddress, DeviceId, DeviceRecord, Envelope, EnvelopeKind, UserId, MAX_DEVICES_PER_USER,
};
use sha2::{Digest, Sha256};
use tokio::sync::Barrier;

use super::{
    BlobRow, ChannelRow, Claimed, CommitInput, CommitOutcome, DeviceAbout, EnqueueInput, EnqueueOutcome, ExpiryStats,
    KeyPackageRow, Millis, PushSubscription, Storage, StoreError, Wake,
};

/// Every test, once per backend. `$make` is an `async fn() -> (Arc<dyn Storage>, Guard)`;
/// the guard owns the backend's temporary resources and removes them when dropped.
macro_rules! storage_conformance {
    ($backend:ident, $make:path) => {
        storage_conformance!(@tests $backend, $make;
            create_user_stores_identity_and_first_device,
            create_user_refuses_a_taken_name,
            deleted_name_is_reserved_until_the_reservation_passes,
            delete_user_removes_everything_of_theirs,
            add_device_enforces_the_device_limit,
            concurrent_adds_race_for_the_last_slot,
            devices_are_listed_in_creation_order,
            revoke_device_removes_queue_memberships_and_key_packages,
            restore_device_replaces_the_devices_and_tells_the_other_members,
            restore_device_refuses_unknown_users_and_registered_devices,
            claim_pops_one_time_packages_then_falls_back_to_last_resort,
            claim_skips_the_excepted_device_and_devices_without_packages,
            reused_key_package_is_refused_and_nothing_of_the_call_is_stored,
            concurrent_claims_never_hand_out_the_same_package,
            create_channel_is_idempotent_for_its_creator,
            commit_fans_out_welcomes_and_updates_membership,
            commit_refusals_change_nothing,
            commit_retry_is_a_duplicate_and_fans_out_nothing,
            group_info_is_kept_for_the_current_epoch_only,
            concurrent_commits_for_one_epoch_exactly_one_wins,
            enqueue_fans_out_to_every_member_but_the_sender,
            enqueue_retry_is_a_duplicate_and_refusals_are_typed,
            messages_older_than_the_latest_joiners_are_refused_and_a_retry_is_still_a_duplicate,
            calls_cancelled_at_any_point_lose_nothing_and_leave_the_store_usable,
            fetch_respects_order_limit_and_cursor,
            fetch_leaves_out_expired_envelopes,
            ack_deletes_and_sequence_numbers_are_never_reused,
            concurrent_enqueues_give_gap_free_increasing_sequences,
            concurrent_writes_are_readable_when_answered_and_a_refusal_undoes_only_itself,
            blob_chunks_are_stored_in_order_and_retries_are_accepted,
            bad_chunks_are_refused,
            blobs_expire,
            expire_removes_expired_envelopes_blobs_and_old_records,
            blobs_nobody_can_reach_are_collected,
            fetch_is_bounded_by_bytes,
            quotas_refuse_and_change_nothing,
            claimed_hashes_are_forgotten_after_their_retention,
            wakeups_name_the_recipients_of_enqueues_and_commits,
            push_subscriptions_are_stored_replaced_and_removed,
            queued_messages_wait_one_coalesced_push_per_subscribed_device,
            fetching_before_the_delay_cancels_the_push,
            failed_pushes_are_retried_leases_expire_and_gone_subscriptions_go,
            concurrent_claims_never_hand_out_the_same_push,
            the_vapid_key_is_kept_once_for_everyone,
            a_link_relays_one_request_and_one_answer_then_closes,
            a_link_takes_one_request_and_one_answer,
            expired_links_are_refused_and_swept,
            another_account_cannot_read_answer_or_close_a_link,
            an_account_has_at_most_three_open_links,
            deleting_an_account_or_its_device_ends_its_links,
            a_new_device_has_no_label_and_no_login,
            a_label_is_stored_for_its_device_only_and_cleared,
            logins_are_recorded_per_device,
            revoking_or_deleting_removes_label_and_login,
            a_block_is_kept_for_the_account_and_read_from_every_device,
            a_blocked_senders_messages_reach_no_device_of_the_blocker_in_a_one_to_one,
            blocks_change_no_delivery_in_a_conversation_of_three_accounts,
            a_commit_adding_a_device_of_an_account_that_blocks_the_committer_is_refused,
            an_account_blocks_at_most_its_bound,
            deleting_an_account_removes_its_blocks,
        );
    };
    (@tests $backend:ident, $make:path; $($name:ident),* $(,)?) => {
        mod $backend {
            use super::*;
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let (store, guard) = $make().await;
                    tokio::time::timeout(TEST_TIMEOUT, cases::$name(store))
                        .await
                        .expect("the test timed out");
                    drop(guard);
                }
            )*
        }
    };
}

storage_conformance!(sqlite, sqlite_backend::make);
storage_conformance!(postgres, postgres_backend::make);

/// A test that hangs (a lost wake-up, a deadlock) fails instead.
const TEST_TIMEOUT: Duration = Duration::from_secs(120);

/// How long a wake-up may take to arrive.
const WAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Server time at the start of every test.
const T0: Millis = 1_700_000_000_000;

/// How long after queueing the fixtures' messages wait for a push.
const PUSH_DELAY: Millis = 2_000;

// --- backends ------------------------------------------------------------------------------

mod sqlite_backend {
    use std::sync::Arc;

    use crate::storage::sqlite::SqliteStorage;
    use crate::storage::Storage;

    /// A fresh database file in a temporary directory (removed with the guard).
    pub(super) async fn make() -> (Arc<dyn Storage>, tempfile::TempDir) {
        let dir = tempfile::tempdir().expect("temporary directory");
        let path = dir.path().join("qpq.db");
        let store = SqliteStorage::open(path.to_str().expect("UTF-8 temp path")).await.expect("open SQLite");
        (Arc::new(store), dir)
    }
}

mod postgres_backend {
    use std::sync::Arc;

    use sqlx::{Connection, PgConnection};

    use crate::storage::postgres::PgStorage;
    use crate::storage::Storage;

    /// The server tests create their databases on.
    fn server_url() -> String {
        std::env::var("QPQ_TEST_POSTGRES").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
    }

    /// A database of its own for one test, dropped (connections and all) with the guard.
    pub(super) struct TestDatabase {
        server: String,
        name: String,
        /// The URL of the test database.
        pub(super) url: String,
    }

    impl TestDatabase {
        pub(super) async fn create() -> TestDatabase {
            let server = server_url();
            let name = format!("qpq_test_{}", hex::encode(rand::random::<[u8; 8]>()));
            let mut admin =
                PgConnection::connect(&server).await.expect("connect to the PostgreSQL server in QPQ_TEST_POSTGRES");
            sqlx::raw_sql(&format!("CREATE DATABASE {name}")).execute(&mut admin).await.expect("create test database");
            let _ = admin.close().await;
            let url = with_database(&server, &name);
            TestDatabase { server, name, url }
        }
    }

    impl Drop for TestDatabase {
        fn drop(&mut self) {
            let (server, name) = (self.server.clone(), self.name.clone());
            // Drop runs inside the test's runtime: do the async clean-up on a thread of its own.
            let dropped = std::thread::spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
                runtime.block_on(async {
                    let mut admin = PgConnection::connect(&server).await?;
                    sqlx::raw_sql(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")).execute(&mut admin).await?;
                    admin.close().await
                })?;
                Ok::<(), Box<dyn std::error::Error + Send + Sync>>(())
            })
            .join();
            if !matches!(dropped, Ok(Ok(()))) {
                eprintln!("could not drop test database {}", self.name);
            }
        }
    }

    /// `url` with its database replaced by `name`.
    fn with_database(url: &str, name: &str) -> String {
        let (base, query) = match url.split_once('?') {
            Some((base, query)) => (base, format!("?{query}")),
            None => (url, String::new()),
        };
        let authority_start = base.find("://").map_or(0, |i| i + 3);
        let host_end = base[authority_start..].find('/').map_or(base.len(), |i| authority_start + i);
        format!("{}/{name}{query}", &base[..host_end])
    }

    /// A node on a fresh database.
    pub(super) async fn make() -> (Arc<dyn Storage>, TestDatabase) {
        let db = TestDatabase::create().await;
        let store = PgStorage::connect(&db.url).await.expect("connect PgStorage");
        (Arc::new(store), db)
    }
}

// --- fixtures ------------------------------------------------------------------------------

fn user(name: &str) -> UserId {
    UserId::parse(&format!("{name}@example.org")).expect("valid user id")
}

fn addr(user: &UserId, n: u8) -> DeviceAddress {
    DeviceAddress { user: user.clone(), device: DeviceId([n; 16]) }
}

/// A device record (storage does not verify signatures, so any bytes do).
fn record(user: &UserId, n: u8) -> DeviceRecord {
    DeviceRecord {
        user: user.clone(),
        device_id: DeviceId([n; 16]),
        device_key: [n; 32],
        created_at: T0 - 1000 + u64::from(n),
        signature: [n; 64],
    }
}

fn identity(user: &UserId) -> [u8; 32] {
    Sha256::digest(user.as_str().as_bytes()).into()
}

/// Registers `name` with devices `1..=devices`; returns their addresses.
async fn register(store: &dyn Storage, name: &str, devices: u8) -> Vec<DeviceAddress> {
    let u = user(name);
    store.create_user(&u, &identity(&u), &record(&u, 1), T0).await.expect("create user");
    for n in 2..=devices {
        store.add_device(&record(&u, n), MAX_DEVICES_PER_USER, None, T0).await.expect("add device");
    }
    (1..=devices).map(|n| addr(&u, n)).collect()
}

fn key_package(tag: &str) -> KeyPackageRow {
    let data = format!("key package {tag}").into_bytes();
    KeyPackageRow { hash: Sha256::digest(&data).into(), data }
}

fn channel_id(n: u8) -> ChannelId {
    ChannelId::from_slice(&[n; 32]).expect("valid channel id")
}

fn msg_id(n: u32) -> ClientMsgId {
    let mut id = [0u8; 16];
    id[..4].copy_from_slice(&n.to_be_bytes());
    ClientMsgId(id)
}

fn commit_input(channel: &ChannelId, sender: &DeviceAddress, epoch: u64, msg: u32, now: Millis) -> CommitInput {
    CommitInput {
        channel: channel.clone(),
        sender: sender.clone(),
        epoch,
        commit: format!("commit {msg}").into_bytes(),
        welcome: Vec::new(),
        add: Vec::new(),
        remove: Vec::new(),
        joined_at: None,
        client_msg_id: msg_id(msg),
        expires_at: 0,
        max_queue: u64::MAX,
        now,
        push_at: now + PUSH_DELAY,
        group: Some(format!("group after {msg}").into_bytes()),
    }
}

/// An application message of epoch 1, the epoch [`group`] leaves a channel at (see [`at`]).
fn enqueue_input(
    channel: &ChannelId,
    sender: &DeviceAddress,
    msg: u32,
    expires_at: Millis,
    now: Millis,
) -> EnqueueInput {
    EnqueueInput {
        channel: channel.clone(),
        sender: sender.clone(),
        payload: format!("message {msg}").into_bytes(),
        epoch: 1,
        client_msg_id: msg_id(msg),
        expires_at,
        max_queue: u64::MAX,
        now,
        push_at: now + PUSH_DELAY,
    }
}

/// `input` as made in `epoch`.
fn at(epoch: u64, input: EnqueueInput) -> EnqueueInput {
    EnqueueInput { epoch, ..input }
}

/// Creates channel `n` with `members[0]` as creator and adds the others in one commit
/// (message id `1_000_000 + n`), leaving it at epoch 1 with their Welcomes queued.
async fn group(store: &dyn Storage, n: u8, members: &[DeviceAddress]) -> ChannelId {
    let channel = channel_id(n);
    store.create_channel(&channel, &members[0], Some(b"group 0"), T0).await.expect("create channel");
    let mut input = commit_input(&channel, &members[0], 0, 1_000_000 + u32::from(n), T0);
    input.add = members[1..].to_vec();
    input.joined_at = Some(1);
    input.welcome = b"welcome".to_vec();
    store.commit(&input).await.expect("initial commit");
    channel
}

/// Everything queued for `device`, from the start.
async fn queue(store: &dyn Storage, device: &DeviceAddress, now: Millis) -> Vec<Envelope> {
    store.fetch(device, 0, 10_000, u64::MAX, now).await.expect("fetch")
}

/// The (kind, payload) of everything queued for `device` after its setup Welcome.
async fn received(store: &dyn Storage, device: &DeviceAddress) -> Vec<(EnvelopeKind, Vec<u8>)> {
    queue(store, device, T0)
        .await
        .into_iter()
        .filter(|e| e.payload != b"welcome")
        .map(|e| (e.kind, e.payload))
        .collect()
}

fn sorted(mut devices: Vec<DeviceAddress>) -> Vec<DeviceAddress> {
    devices.sort();
    devices
}

/// Waits until "new envelopes" wake-ups for all of `expected` arrived; fails on any other
/// wake-up or a timeout.
async fn expect_wakeups(rx: &mut tokio::sync::broadcast::Receiver<Wake>, expected: &[DeviceAddress]) {
    let wakes: Vec<Wake> = expected.iter().map(|d| Wake::Queue(d.device)).collect();
    expect_wakes(rx, &wakes).await;
}

/// Waits until all of `expected` arrived; fails on any other wake-up or a timeout. Wake-ups
/// name device ids only, and the tests' users share ids (`[n; 16]`), so they are compared as
/// a multiset.
async fn expect_wakes(rx: &mut tokio::sync::broadcast::Receiver<Wake>, expected: &[Wake]) {
    let mut want: Vec<String> = expected.iter().map(|w| format!("{w:?}")).collect();
    want.sort();
    let mut seen = Vec::new();
    while seen.len() < want.len() {
        let wake = tokio::time::timeout(WAKE_TIMEOUT, rx.recv())
            .await
            .unwrap_or_else(|_| panic!("no wake-up within {WAKE_TIMEOUT:?}; got {seen:?}, want {want:?}"))
            .expect("wake-up channel open");
        seen.push(format!("{wake:?}"));
    }
    seen.sort();
    assert_eq!(seen, want, "the wake-ups");
}

/// Waits for `Wake::Gone(device)`, skipping "new envelopes" wake-ups (late ones from
/// earlier steps may still arrive from another node).
async fn expect_gone(rx: &mut tokio::sync::broadcast::Receiver<Wake>, device: DeviceId) {
    loop {
        let wake = tokio::time::timeout(WAKE_TIMEOUT, rx.recv())
            .await
            .unwrap_or_else(|_| panic!("no Gone wake-up within {WAKE_TIMEOUT:?}"))
            .expect("wake-up channel open");
        match wake {
            Wake::Gone(d) if d == device => return,
            Wake::Queue(_) => continue,
            other => panic!("unexpected wake-up {other:?}"),
        }
    }
}

/// Reads `device`'s queue while writers add `total` envelopes: every batch must continue
/// exactly where the last ended (no gaps, nothing out of order), until `total` were seen.
async fn read_gap_free(store: Arc<dyn Storage>, device: DeviceAddress, first: u64, total: u64) -> Vec<Envelope> {
    let mut cursor = first - 1;
    let mut seen = Vec::new();
    while seen.len() < usize::try_from(total).expect("small total") {
        let batch = store.fetch(&device, cursor, 1000, u64::MAX, T0).await.expect("fetch");
        for envelope in batch {
            assert_eq!(envelope.seq, cursor + 1, "sequence numbers must become visible in order, without gaps");
            cursor = envelope.seq;
            seen.push(envelope);
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    seen
}

mod about;
mod blocks;
mod links;
mod push;

mod cases {
    use super::*;

    pub(super) use super::about::*;
    pub(super) use super::blocks::*;
    pub(super) use super::links::*;
    pub(super) use super::push::*;

    // --- identities and devices ---------------------------------------------------------

    pub(super) async fn create_user_stores_identity_and_first_device(store: Arc<dyn Storage>) {
        let alice = user("alice");
        store.create_user(&alice, &identity(&alice), &record(&alice, 1), T0).await.unwrap();
        assert_eq!(store.identity_key(&alice).await.unwrap(), Some(identity(&alice)));
        assert_eq!(store.devices(&alice).await.unwrap(), vec![record(&alice, 1)]);
        assert_eq!(store.device(&addr(&alice, 1)).await.unwrap(), Some(record(&alice, 1)));

        let bob = user("bob");
        assert_eq!(store.identity_key(&bob).await.unwrap(), None);
        assert_eq!(store.devices(&bob).await.unwrap(), vec![]);
        assert_eq!(store.device(&addr(&alice, 2)).await.unwrap(), None);
        // The first device must belong to the user being created.
        assert_eq!(store.create_user(&bob, &identity(&bob), &record(&alice, 2), T0).await, Err(StoreError::NoSuchUser));
        assert_eq!(store.identity_key(&bob).await.unwrap(), None);
        assert_eq!(store.device(&addr(&alice, 2)).await.unwrap(), None);
    }

    pub(super) async fn create_user_refuses_a_taken_name(store: Arc<dyn Storage>) {
        let alice = user("alice");
        store.create_user(&alice, &identity(&alice), &record(&alice, 1), T0).await.unwrap();
        assert_eq!(store.create_user(&alice, &[9; 32], &record(&alice, 2), T0 + 1).await, Err(StoreError::UserExists));
        assert_eq!(store.identity_key(&alice).await.unwrap(), Some(identity(&alice)));
        assert_eq!(store.devices(&alice).await.unwrap(), vec![record(&alice, 1)]);
    }

    pub(super) async fn deleted_name_is_reserved_until_the_reservation_passes(store: Arc<dyn Storage>) {
        let alice = user("alice");
        register(&*store, "alice", 1).await;
        store.delete_user(&alice, T0 + 1000, None).await.unwrap();
        assert_eq!(store.identity_key(&alice).await.unwrap(), None);
        for now in [T0 + 1, T0 + 999] {
            assert_eq!(
                store.create_user(&alice, &[7; 32], &record(&alice, 3), now).await,
                Err(StoreError::UserExists),
                "still reserved at {now}"
            );
        }
        store.create_user(&alice, &[7; 32], &record(&alice, 3), T0 + 1000).await.unwrap();
        assert_eq!(store.identity_key(&alice).await.unwrap(), Some([7; 32]));
        assert_eq!(store.devices(&alice).await.unwrap(), vec![record(&alice, 3)]);
        assert_eq!(store.delete_user(&user("nobody"), T0, None).await, Err(StoreError::NoSuchUser));
    }

    pub(super) async fn delete_user_removes_everything_of_theirs(store: Arc<dyn Storage>) {
        let alice = register(&*store, "alice", 2).await;
        let bob = register(&*store, "bob", 1).await;
        let channel = group(&*store, 1, &[bob[0].clone(), alice[0].clone(), alice[1].clone()]).await;
        store.add_key_packages(&alice[0], &[key_package("a1")], Some(&key_package("a-last")), u32::MAX).await.unwrap();
        store.add_key_packages(&bob[0], &[key_package("b1")], None, u32::MAX).await.unwrap();
        store.enqueue(&enqueue_input(&channel, &bob[0], 1, 0, T0)).await.unwrap();
        let blob = |id: u8| BlobRow {
            id: [id; 16],
            channel: channel.clone(),
            size: 3,
            chunk_size: 4,
            chunks_stored: 0,
            expires_at: 0,
        };
        store.create_blob(&blob(1), &alice[0], u64::MAX, T0).await.unwrap();
        store.create_blob(&blob(2), &bob[0], u64::MAX, T0).await.unwrap();

        store.delete_user(&alice[0].user, T0 + 100, None).await.unwrap();

        assert_eq!(store.identity_key(&alice[0].user).await.unwrap(), None);
        assert_eq!(store.devices(&alice[0].user).await.unwrap(), vec![]);
        assert_eq!(store.device(&alice[1]).await.unwrap(), None);
        // Every device of the account is gone: calls made as one of them are refused.
        assert_eq!(store.key_package_count(&alice[0]).await, Err(StoreError::Revoked));
        assert_eq!(store.fetch(&alice[1], 0, 100, u64::MAX, T0).await, Err(StoreError::Revoked));
        assert_eq!(store.caller_alive(&alice[0]).await, Err(StoreError::Revoked));
        assert_eq!(store.claim_key_packages(&bob[0].user, Some(&alice[0]), &[], T0).await, Err(StoreError::Revoked));
        assert_eq!(store.claim_key_packages(&alice[0].user, None, &[], T0).await, Err(StoreError::NoSuchUser));
        assert_eq!(store.channel(&channel).await.unwrap().unwrap().members, vec![bob[0].clone()]);
        assert_eq!(store.blob(&[1; 16], T0).await.unwrap(), None);
        // Bob's things stay.
        assert!(store.blob(&[2; 16], T0).await.unwrap().is_some());
        assert_eq!(store.key_package_count(&bob[0]).await.unwrap(), 1);
        assert_eq!(store.devices(&bob[0].user).await.unwrap(), vec![record(&bob[0].user, 1)]);

        // Registering the name again later starts from nothing.
        register_at(&*store, "alice", T0 + 100).await;
        assert_eq!(store.key_package_count(&alice[0]).await.unwrap(), 0);
        assert_eq!(store.fetch(&alice[0], 0, 100, u64::MAX, T0).await.unwrap(), vec![]);
        assert_eq!(store.channel(&channel).await.unwrap().unwrap().members, vec![bob[0].clone()]);
    }

    async fn register_at(store: &dyn Storage, name: &str, now: Millis) {
        let u = user(name);
        store.create_user(&u, &identity(&u), &record(&u, 1), now).await.expect("create user");
    }

    pub(super) async fn add_device_enforces_the_device_limit(store: Arc<dyn Storage>) {
        let alice = register(&*store, "alice", 1).await[0].user.clone();
        for n in 2..=5 {
            store.add_device(&record(&alice, n), MAX_DEVICES_PER_USER, None, T0).await.unwrap();
        }
        assert_eq!(store.devices(&alice).await.unwrap().len(), 5);
        assert_eq!(
            store.add_device(&record(&alice, 6), MAX_DEVICES_PER_USER, None, T0).await,
            Err(StoreError::TooManyDevices)
        );
        assert_eq!(store.add_device(&record(&alice, 3), MAX_DEVICES_PER_USER, None, T0).await, Err(StoreError::DeviceExists));
        assert_eq!(
            store.add_device(&record(&user("nobody"), 1), MAX_DEVICES_PER_USER, None, T0).await,
            Err(StoreError::NoSuchUser)
        );
        assert_eq!(store.devices(&alice).await.unwrap().len(), 5);
        store.revoke_device(&addr(&alice, 2), None).await.unwrap();
        store.add_device(&record(&alice, 6), MAX_DEVICES_PER_USER, None, T0).await.unwrap();
        assert_eq!(store.devices(&alice).await.unwrap().len(), 5);
    }

    pub(super) async fn concurrent_adds_race_for_the_last_slot(store: Arc<dyn Storage>) {
        for round in 0..4u8 {
            let name = format!("racer{round}");
            let u = register(&*store, &name, 4).await[0].user.clone();
            let racers = 2 + usize::from(round);
            let barrier = Arc::new(Barrier::new(racers));
            let tasks: Vec<_> = (0..racers)
                .map(|i| {
                    let (store, barrier, rec) = (store.clone(), barrier.clone(), record(&u, 10 + i as u8));
                    tokio::spawn(async move {
                        barrier.wait().await;
                        store.add_device(&rec, MAX_DEVICES_PER_USER, None, T0).await
                    })
                })
                .collect();
            let mut accepted = 0;
            for task in tasks {
                match task.await.unwrap() {
                    Ok(()) => accepted += 1,
                    Err(e) => assert_eq!(e, StoreError::TooManyDevices),
                }
            }
            assert_eq!(accepted, 1, "exactly one of {racers} concurrent adds gets the last slot");
            assert_eq!(store.devices(&u).await.unwrap().len(), MAX_DEVICES_PER_USER);
        }
    }

    pub(super) async fn devices_are_listed_in_creation_order(store: Arc<dyn Storage>) {
        let alice = user("alice");
        store.create_user(&alice, &identity(&alice), &record(&alice, 9), T0).await.unwrap();
        for n in [3, 7, 1] {
            let mut rec = record(&alice, n);
            rec.created_at = T0 - u64::from(n); // signing times do not decide the order
            store.add_device(&rec, MAX_DEVICES_PER_USER, None, T0).await.unwrap();
        }
        let ids: Vec<u8> = store.devices(&alice).await.unwrap().iter().map(|d| d.device_id.0[0]).collect();
        assert_eq!(ids, vec![9, 3, 7, 1]);
    }

    pub(super) async fn revoke_device_removes_queue_memberships_and_key_packages(store: Arc<dyn Storage>) {
        let alice = register(&*store, "alice", 2).await;
        let bob = register(&*store, "bob", 1).await;
        let channel = group(&*store, 1, &[bob[0].clone(), alice[0].clone(), alice[1].clone()]).await;
        store.add_key_packages(&alice[1], &[key_package("a")], Some(&key_package("last")), u32::MAX).await.unwrap();
        store.enqueue(&enqueue_input(&channel, &bob[0], 1, 0, T0)).await.unwrap();
        assert_eq!(queue(&*store, &alice[1], T0).await.len(), 2);

        store.revoke_device(&alice[1], None).await.unwrap();

        assert_eq!(store.device(&alice[1]).await.unwrap(), None);
        assert_eq!(store.devices(&alice[0].user).await.unwrap(), vec![record(&alice[0].user, 1)]);
        // The revoked device's calls are refused; its key packages are gone.
        assert_eq!(store.key_package_count(&alice[1]).await, Err(StoreError::Revoked));
        assert_eq!(store.fetch(&alice[1], 0, 100, u64::MAX, T0).await, Err(StoreError::Revoked));
        assert_eq!(store.ack(&alice[1], u64::MAX).await, Err(StoreError::Revoked));
        assert_eq!(store.claim_key_packages(&alice[0].user, None, &[], T0).await.unwrap(), vec![]);
        assert_eq!(
            store.channel(&channel).await.unwrap().unwrap().members,
            sorted(vec![alice[0].clone(), bob[0].clone()])
        );
        assert_eq!(store.enqueue(&enqueue_input(&channel, &alice[1], 2, 0, T0)).await, Err(StoreError::Revoked));
        assert_eq!(store.commit(&commit_input(&channel, &alice[1], 1, 9, T0)).await, Err(StoreError::Revoked));
        // Gone is said first, also where the channel is missing too.
        let nowhere = ChannelId::from_slice(&[0xee; 32]).unwrap();
        assert_eq!(store.enqueue(&enqueue_input(&nowhere, &alice[1], 2, 0, T0)).await, Err(StoreError::Revoked));
        assert_eq!(store.commit(&commit_input(&nowhere, &alice[1], 1, 9, T0)).await, Err(StoreError::Revoked));
        assert_eq!(
            store.add_device(&record(&alice[0].user, 3), MAX_DEVICES_PER_USER, Some(&alice[1]), T0).await,
            Err(StoreError::Revoked)
        );
        assert_eq!(store.revoke_device(&alice[0], Some(&alice[1])).await, Err(StoreError::Revoked));
        assert_eq!(store.delete_user(&alice[0].user, T0, Some(&alice[1])).await, Err(StoreError::Revoked));
        assert!(store.device(&alice[0]).await.unwrap().is_some(), "the revoked device changed nothing");
        assert_eq!(store.revoke_device(&alice[1], None).await, Err(StoreError::NoSuchDevice));

        // Enrolled again, it is a new device: no queue, no membership, no packages.
        store.add_device(&record(&alice[0].user, 2), MAX_DEVICES_PER_USER, None, T0).await.unwrap();
        assert_eq!(store.fetch(&alice[1], 0, 100, u64::MAX, T0).await.unwrap(), vec![]);
        assert_eq!(store.key_package_count(&alice[1]).await.unwrap(), 0);
        assert_eq!(store.enqueue(&enqueue_input(&channel, &alice[1], 3, 0, T0)).await, Err(StoreError::NotMember));
    }

    /// Alice (two devices) shares channel 1 with Bob and channel 3 (through her second
    /// device) with Bob and Carol; channel 2 is Alice's alone. Bob's device is subscribed to
    /// Web Push. Returns Alice's devices, Bob's, Carol's and the three channels.
    async fn restore_fixture(
        store: &dyn Storage,
    ) -> (Vec<DeviceAddress>, DeviceAddress, DeviceAddress, [ChannelId; 3]) {
        let alice = register(store, "alice", 2).await;
        let bob = register(store, "bob", 1).await.remove(0);
        let carol = register(store, "carol", 1).await.remove(0);
        let shared = group(store, 1, &[bob.clone(), alice[0].clone(), alice[1].clone()]).await;
        let alone = group(store, 2, &[alice[0].clone(), alice[1].clone()]).await;
        let three = group(store, 3, &[alice[1].clone(), bob.clone(), carol.clone()]).await;
        store.add_key_packages(&alice[0], &[key_package("a")], Some(&key_package("last")), u32::MAX).await.unwrap();
        store.enqueue(&enqueue_input(&shared, &bob, 1, 0, T0)).await.unwrap();
        let endpoint = "https://push.example.net/bob".to_owned();
        let subscription = PushSubscription { endpoint, p256dh: [4; 65], auth: [4; 16] };
        store.set_push_subscription(&bob, &subscription, T0).await.unwrap();
        (alice, bob, carol, [shared, alone, three])
    }

    /// The channels of the `devices` envelopes queued for `device`, checking each one's
    /// payload (the restored user's name) and times.
    async fn devices_hints(
        store: &dyn Storage,
        device: &DeviceAddress,
        user: &UserId,
        now: Millis,
        expires_at: Millis,
    ) -> Vec<ChannelId> {
        let mut channels = Vec::new();
        for e in queue(store, device, now).await.into_iter().filter(|e| e.kind == EnvelopeKind::Devices) {
            assert_eq!(e.payload, user.as_str().as_bytes(), "the payload is the restored user's name");
            assert_eq!((e.server_time, e.expires_at), (now, expires_at));
            channels.push(e.channel);
        }
        channels.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
        channels
    }

    pub(super) async fn restore_device_replaces_the_devices_and_tells_the_other_members(store: Arc<dyn Storage>) {
        let (alice, bob, carol, [shared, alone, three]) = restore_fixture(&*store).await;
        let u = alice[0].user.clone();
        let before = received(&*store, &bob).await;
        let mut rx = store.wakeups();
        let (now, expires_at) = (T0 + 10, T0 + 10 + 30 * 86_400_000);

        store.restore_device(&record(&u, 9), now, expires_at).await.unwrap();

        // The old devices are gone with everything of theirs; the new one is all there is.
        for old in &alice {
            assert_eq!(store.device(old).await.unwrap(), None);
            assert_eq!(store.fetch(old, 0, 100, u64::MAX, now).await, Err(StoreError::Revoked));
            assert_eq!(store.key_package_count(old).await, Err(StoreError::Revoked));
        }
        let new = addr(&u, 9);
        assert_eq!(store.devices(&u).await.unwrap(), vec![record(&u, 9)]);
        assert_eq!(store.device(&new).await.unwrap(), Some(record(&u, 9)));
        assert_eq!(store.identity_key(&u).await.unwrap(), Some(identity(&u)), "the identity stays");
        assert_eq!(store.fetch(&new, 0, 100, u64::MAX, now).await.unwrap(), vec![], "the new device has no queue");
        assert_eq!(store.key_package_count(&new).await.unwrap(), 0);
        assert_eq!(store.claim_key_packages(&u, None, &[], now).await.unwrap(), vec![]);
        // Nor any membership: the others add it once they have read the directory again.
        assert_eq!(store.channel(&shared).await.unwrap().unwrap().members, vec![bob.clone()]);
        assert_eq!(store.channel(&alone).await.unwrap().unwrap().members, vec![]);
        assert_eq!(store.channel(&three).await.unwrap().unwrap().members, sorted(vec![bob.clone(), carol.clone()]));
        assert_eq!(store.enqueue(&enqueue_input(&shared, &new, 2, 0, now)).await, Err(StoreError::NotMember));

        // One `devices` envelope per shared channel, for the other accounts' devices only.
        assert_eq!(devices_hints(&*store, &bob, &u, now, expires_at).await, vec![shared.clone(), three.clone()]);
        assert_eq!(devices_hints(&*store, &carol, &u, now, expires_at).await, vec![three.clone()]);
        assert_eq!(received(&*store, &bob).await.len(), before.len() + 2, "nothing else is queued for Bob");
        let gone = [Wake::Gone(alice[0].device), Wake::Gone(alice[1].device)];
        expect_wakes(&mut rx, &[gone[0], gone[1], Wake::Queue(bob.device), Wake::Queue(carol.device)]).await;
        assert!(rx.try_recv().is_err(), "nothing else is announced");
        // A hint is not worth a Web Push.
        assert_eq!(store.next_push_due().await.unwrap(), None);

        // Restored again, from a device in no channel: nobody is told anything.
        store.restore_device(&record(&u, 10), now, expires_at).await.unwrap();
        assert_eq!(store.devices(&u).await.unwrap(), vec![record(&u, 10)]);
        assert_eq!(store.device(&new).await.unwrap(), None);
        expect_wakes(&mut rx, &[Wake::Gone(new.device)]).await;
        assert_eq!(devices_hints(&*store, &bob, &u, now, expires_at).await.len(), 2);
        assert_eq!(devices_hints(&*store, &carol, &u, now, expires_at).await.len(), 1);
    }

    pub(super) async fn restore_device_refuses_unknown_users_and_registered_devices(store: Arc<dyn Storage>) {
        let (alice, bob, _, _) = restore_fixture(&*store).await;
        let u = alice[0].user.clone();
        let nobody = user("nobody");
        assert_eq!(store.restore_device(&record(&nobody, 1), T0, 0).await, Err(StoreError::NoSuchUser));
        assert_eq!(store.devices(&nobody).await.unwrap(), vec![]);
        assert_eq!(store.identity_key(&nobody).await.unwrap(), None);

        // A device id the account has already: refused, and nothing of the call is done.
        assert_eq!(store.restore_device(&record(&u, 2), T0, 0).await, Err(StoreError::DeviceExists));
        assert_eq!(store.devices(&u).await.unwrap(), vec![record(&u, 1), record(&u, 2)]);
        assert_eq!(store.key_package_count(&alice[0]).await.unwrap(), 1);
        assert_eq!(devices_hints(&*store, &bob, &u, T0, 0).await, vec![]);

        // The same new device again, once restored.
        store.restore_device(&record(&u, 9), T0, 0).await.unwrap();
        assert_eq!(store.restore_device(&record(&u, 9), T0, 0).await, Err(StoreError::DeviceExists));
        assert_eq!(store.devices(&u).await.unwrap(), vec![record(&u, 9)]);
        assert_eq!(devices_hints(&*store, &bob, &u, T0, 0).await.len(), 2, "told once per channel, not again");
    }

    // --- key packages -------------------------------------------------------------------

    pub(super) async fn claim_pops_one_time_packages_then_falls_back_to_last_resort(store: Arc<dyn Storage>) {
        let alice = register(&*store, "alice", 2).await;
        let u = &alice[0].user;
        let left = store
            .add_key_packages(&alice[0], &[key_package("a"), key_package("b")], Some(&key_package("last")), u32::MAX)
            .await
            .unwrap();
        assert_eq!(left, 2);
        let one_time = |tag: &str| Claimed { device: alice[0].device, data: key_package(tag).data, last_resort: false };
        let last = Claimed { device: alice[0].device, data: key_package("last").data, last_resort: true };

        assert_eq!(store.claim_key_packages(u, None, &[], T0).await.unwrap(), vec![one_time("a")]);
        assert_eq!(store.key_package_count(&alice[0]).await.unwrap(), 1);
        assert_eq!(store.claim_key_packages(u, None, &[], T0).await.unwrap(), vec![one_time("b")]);
        assert_eq!(store.key_package_count(&alice[0]).await.unwrap(), 0);
        // The last-resort package is handed out and kept.
        assert_eq!(store.claim_key_packages(u, None, &[], T0).await.unwrap(), vec![last.clone()]);
        assert_eq!(store.claim_key_packages(u, None, &[], T0).await.unwrap(), vec![last]);

        // A new last-resort package replaces the old one.
        assert_eq!(store.add_key_packages(&alice[0], &[], Some(&key_package("last 2")), u32::MAX).await.unwrap(), 0);
        let claimed = store.claim_key_packages(u, None, &[], T0).await.unwrap();
        assert_eq!(
            claimed,
            vec![Claimed { device: alice[0].device, data: key_package("last 2").data, last_resort: true }]
        );
        // A retried upload of a package still waiting stores it once.
        store.add_key_packages(&alice[0], &[key_package("c")], None, u32::MAX).await.unwrap();
        assert_eq!(store.add_key_packages(&alice[0], &[key_package("c")], None, u32::MAX).await.unwrap(), 1);
    }

    pub(super) async fn claim_skips_the_excepted_device_and_devices_without_packages(store: Arc<dyn Storage>) {
        let alice = register(&*store, "alice", 4).await;
        let bob = register(&*store, "bob", 1).await;
        let u = &alice[0].user;
        for (n, device) in alice.iter().enumerate().take(3) {
            store.add_key_packages(device, &[key_package(&format!("a{n}"))], None, u32::MAX).await.unwrap();
        }
        // Device 4 has no packages at all and is left out.
        let claimed = store.claim_key_packages(u, Some(&alice[0]), &[], T0).await.unwrap();
        let devices: Vec<DeviceId> = claimed.iter().map(|c| c.device).collect();
        assert_eq!(devices, vec![alice[1].device, alice[2].device]);
        assert_eq!(claimed[0].data, key_package("a1").data);
        assert_eq!(store.key_package_count(&alice[0]).await.unwrap(), 1);
        // Excepting another user's device excepts nothing here.
        let claimed = store.claim_key_packages(u, Some(&bob[0]), &[], T0).await.unwrap();
        assert_eq!(claimed.iter().map(|c| c.device).collect::<Vec<_>>(), vec![alice[0].device]);
        assert_eq!(store.claim_key_packages(&user("nobody"), None, &[], T0).await, Err(StoreError::NoSuchUser));
        assert_eq!(store.claim_key_packages(&bob[0].user, None, &[], T0).await.unwrap(), vec![]);
        // Naming devices claims for those only: the others keep their packages.
        for (n, device) in alice.iter().enumerate().take(3) {
            store.add_key_packages(device, &[key_package(&format!("b{n}"))], None, u32::MAX).await.unwrap();
        }
        let claimed = store.claim_key_packages(u, Some(&bob[0]), &[alice[2].device], T0).await.unwrap();
        assert_eq!(claimed.iter().map(|c| c.device).collect::<Vec<_>>(), vec![alice[2].device]);
        assert_eq!(store.key_package_count(&alice[1]).await.unwrap(), 1, "a device not named keeps its package");
    }

    pub(super) async fn reused_key_package_is_refused_and_nothing_of_the_call_is_stored(store: Arc<dyn Storage>) {
        let alice = register(&*store, "alice", 2).await;
        let u = &alice[0].user;
        store.add_key_packages(&alice[0], &[key_package("a"), key_package("b")], None, u32::MAX).await.unwrap();
        store.claim_key_packages(u, None, &[], T0).await.unwrap(); // hands out "a"

        for (packages, last_resort) in
            [(vec![key_package("c"), key_package("a")], None), (vec![key_package("d")], Some(key_package("a")))]
        {
            assert_eq!(
                store.add_key_packages(&alice[0], &packages, last_resort.as_ref(), u32::MAX).await,
                Err(StoreError::KeyPackageReused)
            );
        }
        // On another device of the same user too.
        assert_eq!(
            store.add_key_packages(&alice[1], &[key_package("a")], None, u32::MAX).await,
            Err(StoreError::KeyPackageReused)
        );
        assert_eq!(store.key_package_count(&alice[0]).await.unwrap(), 1);
        assert_eq!(store.key_package_count(&alice[1]).await.unwrap(), 0);
        let claimed = store.claim_key_packages(u, None, &[], T0).await.unwrap();
        assert_eq!(claimed.iter().map(|c| c.data.clone()).collect::<Vec<_>>(), vec![key_package("b").data]);
        // Neither "c", "d" nor a last-resort package was stored.
        assert_eq!(store.claim_key_packages(u, None, &[], T0).await.unwrap(), vec![]);
        assert_eq!(
            store.add_key_packages(&addr(&user("nobody"), 1), &[key_package("e")], None, u32::MAX).await,
            Err(StoreError::Revoked)
        );
    }

    pub(super) async fn concurrent_claims_never_hand_out_the_same_package(store: Arc<dyn Storage>) {
        let alice = register(&*store, "alice", 1).await;
        let packages: Vec<KeyPackageRow> = (0..20).map(|n| key_package(&format!("p{n}"))).collect();
        store.add_key_packages(&alice[0], &packages, Some(&key_package("last")), u32::MAX).await.unwrap();
        let claimers = 26;
        let barrier = Arc::new(Barrier::new(claimers));
        let tasks: Vec<_> = (0..claimers)
            .map(|_| {
                let (store, barrier, u) = (store.clone(), barrier.clone(), alice[0].user.clone());
                tokio::spawn(async move {
                    barrier.wait().await;
                    store.claim_key_packages(&u, None, &[], T0).await
                })
            })
            .collect();
        let mut one_time = BTreeSet::new();
        let mut last_resort = 0;
        for task in tasks {
            let claimed = task.await.unwrap().unwrap();
            assert_eq!(claimed.len(), 1);
            if claimed[0].last_resort {
                assert_eq!(claimed[0].data, key_package("last").data);
                last_resort += 1;
            } else {
                assert!(one_time.insert(claimed[0].data.clone()), "a one-time package was handed out twice");
            }
        }
        assert_eq!(one_time.len(), 20);
        assert_eq!(last_resort, claimers - 20);
        assert_eq!(store.key_package_count(&alice[0]).await.unwrap(), 0);
    }

    // --- channels and commits -----------------------------------------------------------

    pub(super) async fn create_channel_is_idempotent_for_its_creator(store: Arc<dyn Storage>) {
        let alice = register(&*store, "alice", 1).await;
        let bob = register(&*store, "bob", 1).await;
        let channel = channel_id(1);
        let row = store.create_channel(&channel, &alice[0], Some(b"group 0"), T0).await.unwrap();
        let expected = ChannelRow { id: channel.clone(), epoch: 0, created_at: T0, members: vec![alice[0].clone()] };
        assert_eq!(row, expected);
        assert_eq!(store.create_channel(&channel, &alice[0], Some(b"group 0"), T0 + 5).await.unwrap(), expected);
        assert_eq!(store.channel(&channel).await.unwrap(), Some(expected));
        assert_eq!(store.create_channel(&channel, &bob[0], Some(b"group 0"), T0).await, Err(StoreError::ChannelExists));
        assert_eq!(
            store.create_channel(&channel_id(2), &addr(&user("nobody"), 1), None, T0).await,
            Err(StoreError::Revoked)
        );
        assert_eq!(store.channel(&channel_id(2)).await.unwrap(), None);
        // A retry after the channel moved on returns it as it is now.
        let mut input = commit_input(&channel, &alice[0], 0, 1, T0);
        input.add = vec![bob[0].clone()];
        store.commit(&input).await.unwrap();
        let row = store.create_channel(&channel, &alice[0], Some(b"another group"), T0 + 9).await.unwrap();
        assert_eq!((row.epoch, row.members), (1, sorted(vec![alice[0].clone(), bob[0].clone()])));
        assert_eq!(store.group_state(&channel).await.unwrap().as_deref(), Some(&b"group after 1"[..]));
        // A channel made without a group state (before the node kept one) has none.
        store.create_channel(&channel_id(3), &alice[0], None, T0).await.unwrap();
        assert_eq!(store.group_state(&channel_id(3)).await.unwrap(), None);
    }

    pub(super) async fn commit_fans_out_welcomes_and_updates_membership(store: Arc<dyn Storage>) {
        let [alice, bob, carol, dave] = [
            register(&*store, "alice", 1).await.remove(0),
            register(&*store, "bob", 1).await.remove(0),
            register(&*store, "carol", 1).await.remove(0),
            register(&*store, "dave", 1).await.remove(0),
        ];
        let channel = channel_id(1);
        store.create_channel(&channel, &alice, Some(b"group 0"), T0).await.unwrap();
        let mut first = commit_input(&channel, &alice, 0, 1, T0 + 1);
        first.add = vec![bob.clone(), carol.clone()];
        first.welcome = b"W1".to_vec();
        assert_eq!(
            store.commit(&first).await.unwrap(),
            CommitOutcome { epoch: 1, server_time: T0 + 1, duplicate: false }
        );
        // Added devices get only the Welcome; nobody else was a member but the sender.
        assert_eq!(received(&*store, &alice).await, vec![]);
        for device in [&bob, &carol] {
            let queued = queue(&*store, device, T0).await;
            assert_eq!(queued.len(), 1);
            let envelope = &queued[0];
            assert_eq!((envelope.kind, envelope.payload.as_slice()), (EnvelopeKind::Welcome, &b"W1"[..]));
            assert_eq!(&envelope.channel, &channel);
            assert_eq!((envelope.server_time, envelope.expires_at), (T0 + 1, 0));
        }
        let members = sorted(vec![alice.clone(), bob.clone(), carol.clone()]);
        assert_eq!(store.channel(&channel).await.unwrap().unwrap().members, members);

        let mut second = commit_input(&channel, &bob, 1, 2, T0 + 2);
        second.add = vec![dave.clone()];
        second.remove = vec![carol.clone()];
        second.welcome = b"W2".to_vec();
        assert_eq!(store.commit(&second).await.unwrap().epoch, 2);
        let commit = (EnvelopeKind::Commit, b"commit 2".to_vec());
        assert_eq!(received(&*store, &alice).await, vec![commit.clone()]);
        let w1 = (EnvelopeKind::Welcome, b"W1".to_vec());
        assert_eq!(received(&*store, &bob).await, vec![w1.clone()], "the sender gets nothing new");
        assert_eq!(received(&*store, &carol).await, vec![w1, commit], "a removed device still gets the commit");
        let dave_queue = queue(&*store, &dave, T0).await;
        assert_eq!(dave_queue.len(), 1, "an added device gets the Welcome only");
        assert_eq!(dave_queue[0].kind, EnvelopeKind::Welcome);
        assert_eq!(dave_queue[0].payload, b"W2");
        let row = store.channel(&channel).await.unwrap().unwrap();
        assert_eq!((row.epoch, row.members), (2, sorted(vec![alice.clone(), bob.clone(), dave.clone()])));
        assert_eq!(store.enqueue(&enqueue_input(&channel, &carol, 3, 0, T0)).await, Err(StoreError::NotMember));
        store.enqueue(&enqueue_input(&channel, &dave, 4, 0, T0)).await.unwrap();
    }

    pub(super) async fn commit_refusals_change_nothing(store: Arc<dyn Storage>) {
        let alice = register(&*store, "alice", 1).await.remove(0);
        let bob = register(&*store, "bob", 1).await.remove(0);
        let channel = channel_id(1);
        store.create_channel(&channel, &alice, Some(b"group 0"), T0).await.unwrap();

        let mut unknown_channel = commit_input(&channel_id(9), &alice, 0, 1, T0);
        unknown_channel.add = vec![bob.clone()];
        assert_eq!(store.commit(&unknown_channel).await, Err(StoreError::NoSuchChannel));
        assert_eq!(store.commit(&commit_input(&channel, &bob, 0, 2, T0)).await, Err(StoreError::NotMember));
        let mut stale = commit_input(&channel, &alice, 5, 3, T0);
        stale.add = vec![bob.clone()];
        assert_eq!(store.commit(&stale).await, Err(StoreError::StaleEpoch { current: 0 }));
        let mut unknown_device = commit_input(&channel, &alice, 0, 4, T0);
        unknown_device.add = vec![bob.clone(), addr(&user("nobody"), 1)];
        assert_eq!(store.commit(&unknown_device).await, Err(StoreError::NoSuchDevice));

        let row = store.channel(&channel).await.unwrap().unwrap();
        assert_eq!((row.epoch, row.members), (0, vec![alice.clone()]));
        assert_eq!(queue(&*store, &bob, T0).await, vec![]);
        assert_eq!(store.group_state(&channel).await.unwrap().as_deref(), Some(&b"group 0"[..]));
        // A refused id is not spent: the same id goes through once the commit is right.
        let mut fixed = commit_input(&channel, &alice, 0, 3, T0);
        fixed.add = vec![bob.clone()];
        assert!(!store.commit(&fixed).await.unwrap().duplicate);
        assert_eq!(
            store.commit(&commit_input(&channel, &alice, 0, 5, T0)).await,
            Err(StoreError::StaleEpoch { current: 1 })
        );
        // The group's state is the accepted commit's, whatever came after.
        assert_eq!(store.group_state(&channel).await.unwrap().as_deref(), Some(&b"group after 3"[..]));
        assert_eq!(store.group_state(&channel_id(9)).await.unwrap(), None);
    }

    pub(super) async fn commit_retry_is_a_duplicate_and_fans_out_nothing(store: Arc<dyn Storage>) {
        let alice = register(&*store, "alice", 1).await.remove(0);
        let bob = register(&*store, "bob", 1).await.remove(0);
        let channel = channel_id(1);
        store.create_channel(&channel, &alice, Some(b"group 0"), T0).await.unwrap();
        let mut input = commit_input(&channel, &alice, 0, 1, T0 + 1);
        input.add = vec![bob.clone()];
        input.welcome = b"W".to_vec();
        let first = store.commit(&input).await.unwrap();
        assert_eq!(first, CommitOutcome { epoch: 1, server_time: T0 + 1, duplicate: false });

        let mut rx = store.wakeups();
        let mut retry = input.clone();
        retry.now = T0 + 50;
        assert_eq!(store.commit(&retry).await.unwrap(), CommitOutcome { duplicate: true, ..first.clone() });
        // Still a duplicate after the channel moved on.
        store.commit(&commit_input(&channel, &bob, 1, 7, T0 + 60)).await.unwrap();
        assert_eq!(store.commit(&retry).await.unwrap(), CommitOutcome { duplicate: true, ..first });
        assert_eq!(queue(&*store, &bob, T0).await.len(), 1, "one Welcome, not two");
        assert_eq!(received(&*store, &alice).await, vec![(EnvelopeKind::Commit, b"commit 7".to_vec())]);
        assert_eq!(store.channel(&channel).await.unwrap().unwrap().epoch, 2);
        assert_eq!(store.group_state(&channel).await.unwrap().as_deref(), Some(&b"group after 7"[..]));
        // Only the second commit woke anyone.
        expect_wakeups(&mut rx, std::slice::from_ref(&alice)).await;
        assert!(rx.try_recv().is_err(), "a duplicate wakes nobody");
    }

    pub(super) async fn group_info_is_kept_for_the_current_epoch_only(store: Arc<dyn Storage>) {
        let alice = register(&*store, "alice", 1).await.remove(0);
        let bob = register(&*store, "bob", 1).await.remove(0);
        let channel = channel_id(1);
        store.create_channel(&channel, &alice, Some(b"group 0"), T0).await.unwrap();
        assert_eq!(store.group_info(&channel).await.unwrap(), Some((b"group 0".to_vec(), None)));
        store.put_group_info(&channel, &alice, 0, b"info 0").await.unwrap();
        assert_eq!(store.group_info(&channel).await.unwrap(), Some((b"group 0".to_vec(), Some(b"info 0".to_vec()))));
        assert_eq!(store.put_group_info(&channel, &bob, 0, b"bob's").await, Err(StoreError::NotMember));
        assert_eq!(store.put_group_info(&channel, &alice, 3, b"later").await, Err(StoreError::StaleEpoch { current: 0 }));
        assert_eq!(store.put_group_info(&channel_id(2), &alice, 0, b"x").await, Err(StoreError::NoSuchChannel));

        // A commit makes the kept GroupInfo stale: it is gone until a member hands in the next.
        let mut add = commit_input(&channel, &alice, 0, 1, T0);
        add.add = vec![bob.clone()];
        store.commit(&add).await.unwrap();
        assert_eq!(store.group_info(&channel).await.unwrap(), Some((b"group after 1".to_vec(), None)));
        assert_eq!(store.put_group_info(&channel, &bob, 0, b"late").await, Err(StoreError::StaleEpoch { current: 1 }));
        store.put_group_info(&channel, &bob, 1, b"info 1").await.unwrap();
        assert_eq!(store.group_info(&channel).await.unwrap().unwrap().1.as_deref(), Some(&b"info 1"[..]));
        assert_eq!(store.group_info(&channel_id(2)).await.unwrap(), None);
    }

    pub(super) async fn concurrent_commits_for_one_epoch_exactly_one_wins(store: Arc<dyn Storage>) {
        let members: Vec<DeviceAddress> = [
            register(&*store, "alice", 2).await,
            register(&*store, "bob", 1).await,
            register(&*store, "carol", 1).await,
        ]
        .concat();
        let channel = group(&*store, 1, &members).await;
        for epoch in 1..=5u64 {
            let barrier = Arc::new(Barrier::new(members.len()));
            let tasks: Vec<_> = members
                .iter()
                .enumerate()
                .map(|(i, sender)| {
                    let input = commit_input(&channel, sender, epoch, (epoch * 100) as u32 + i as u32, T0 + epoch);
                    let (store, barrier) = (store.clone(), barrier.clone());
                    tokio::spawn(async move {
                        barrier.wait().await;
                        store.commit(&input).await
                    })
                })
                .collect();
            let mut winners = Vec::new();
            for (i, task) in tasks.into_iter().enumerate() {
                match task.await.unwrap() {
                    Ok(outcome) => {
                        assert_eq!(outcome.epoch, epoch + 1);
                        winners.push(i);
                    }
                    Err(e) => assert_eq!(e, StoreError::StaleEpoch { current: epoch + 1 }),
                }
            }
            assert_eq!(winners.len(), 1, "exactly one commit per epoch is accepted");
            assert_eq!(store.channel(&channel).await.unwrap().unwrap().epoch, epoch + 1);
        }
        // Each accepted commit reached every member but its sender; refused ones reached nobody.
        let total: usize = {
            let mut n = 0;
            for device in &members {
                n += queue(&*store, device, T0).await.iter().filter(|e| e.kind == EnvelopeKind::Commit).count();
            }
            n
        };
        assert_eq!(total, 5 * (members.len() - 1));
    }

    // --- enqueue and delivery queues ------------------------------------------------------

    pub(super) async fn enqueue_fans_out_to_every_member_but_the_sender(store: Arc<dyn Storage>) {
        let alice = register(&*store, "alice", 2).await;
        let bob = register(&*store, "bob", 1).await;
        let members = [alice.clone(), bob.clone()].concat();
        let channel = group(&*store, 1, &members).await;
        let input = enqueue_input(&channel, &alice[0], 1, T0 + 1000, T0 + 7);
        assert_eq!(store.enqueue(&input).await.unwrap(), EnqueueOutcome { server_time: T0 + 7, duplicate: false });
        assert_eq!(received(&*store, &alice[0]).await, vec![]);
        for device in [&alice[1], &bob[0]] {
            let envelopes: Vec<Envelope> =
                queue(&*store, device, T0).await.into_iter().filter(|e| e.kind == EnvelopeKind::Application).collect();
            assert_eq!(envelopes.len(), 1);
            let e = &envelopes[0];
            assert_eq!((&e.channel, e.payload.as_slice()), (&channel, &b"message 1"[..]));
            assert_eq!((e.server_time, e.expires_at), (T0 + 7, T0 + 1000));
        }
        let mut waiting = 0;
        for device in &members {
            waiting += queue(&*store, device, T0).await.len() as u64;
        }
        assert_eq!(store.queued_envelopes().await.unwrap(), waiting, "the queue depth counts every device's queue");
        store.ack(&bob[0], u64::MAX).await.unwrap();
        let bobs = queue(&*store, &bob[0], T0).await.len() as u64;
        assert_eq!(bobs, 0);
        assert!(store.queued_envelopes().await.unwrap() < waiting, "acknowledged envelopes leave the count");
    }

    pub(super) async fn enqueue_retry_is_a_duplicate_and_refusals_are_typed(store: Arc<dyn Storage>) {
        let alice = register(&*store, "alice", 1).await.remove(0);
        let bob = register(&*store, "bob", 1).await.remove(0);
        let carol = register(&*store, "carol", 1).await.remove(0);
        let channel = group(&*store, 1, &[alice.clone(), bob.clone()]).await;
        store.enqueue(&enqueue_input(&channel, &alice, 1, 0, T0 + 1)).await.unwrap();
        let mut rx = store.wakeups();
        assert_eq!(
            store.enqueue(&enqueue_input(&channel, &alice, 1, 0, T0 + 99)).await.unwrap(),
            EnqueueOutcome { server_time: T0 + 1, duplicate: true }
        );
        assert_eq!(received(&*store, &bob).await.len(), 1);
        assert!(rx.try_recv().is_err(), "a duplicate wakes nobody");
        // Idempotency keys are per sender device.
        assert!(!store.enqueue(&enqueue_input(&channel, &bob, 1, 0, T0 + 2)).await.unwrap().duplicate);
        assert_eq!(received(&*store, &alice).await.len(), 1);

        assert_eq!(
            store.enqueue(&enqueue_input(&channel_id(9), &alice, 2, 0, T0)).await,
            Err(StoreError::NoSuchChannel)
        );
        assert_eq!(store.enqueue(&enqueue_input(&channel, &carol, 3, 0, T0)).await, Err(StoreError::NotMember));
        assert_eq!(
            store.enqueue(&enqueue_input(&channel, &addr(&user("nobody"), 1), 4, 0, T0)).await,
            Err(StoreError::Revoked),
            "a sender that does not exist is refused before anything else"
        );
        assert_eq!(queue(&*store, &carol, T0).await, vec![]);
    }

    pub(super) async fn messages_older_than_the_latest_joiners_are_refused_and_a_retry_is_still_a_duplicate(
        store: Arc<dyn Storage>,
    ) {
        let alice = register(&*store, "alice", 1).await.remove(0);
        let bob = register(&*store, "bob", 1).await.remove(0);
        let carol = register(&*store, "carol", 1).await.remove(0);
        let channel = group(&*store, 1, &[alice.clone(), bob.clone()]).await;
        // Alice's message of epoch 1 is accepted. Bob's key update (epoch 2) adds nobody: a
        // message of epoch 1 after it is still one every member reads.
        store.enqueue(&enqueue_input(&channel, &alice, 1, 0, T0 + 1)).await.unwrap();
        store.commit(&commit_input(&channel, &bob, 1, 2, T0 + 2)).await.unwrap();
        assert!(!store.enqueue(&enqueue_input(&channel, &alice, 3, 0, T0 + 2)).await.unwrap().duplicate);
        // Bob adds Carol (epoch 3; she joins in it).
        let mut add = commit_input(&channel, &bob, 2, 4, T0 + 3);
        add.add = vec![carol.clone()];
        add.welcome = b"W".to_vec();
        add.joined_at = Some(3);
        store.commit(&add).await.unwrap();
        let before = (received(&*store, &bob).await, received(&*store, &carol).await);

        // A message Alice made before she had that commit would be unreadable for Carol.
        let mut rx = store.wakeups();
        for epoch in [1, 2] {
            assert_eq!(
                store.enqueue(&at(epoch, enqueue_input(&channel, &alice, 5, 0, T0 + 4))).await,
                Err(StoreError::StaleEpoch { current: 3 })
            );
        }
        assert_eq!(
            store.enqueue(&at(7, enqueue_input(&channel, &alice, 6, 0, T0 + 4))).await,
            Err(StoreError::FutureEpoch { sent: 7, current: 3 })
        );
        assert_eq!((received(&*store, &bob).await, received(&*store, &carol).await), before, "nothing queued");
        assert!(rx.try_recv().is_err(), "a refusal wakes nobody");
        // Retries of messages accepted before are still duplicates, not stale.
        assert_eq!(
            store.enqueue(&enqueue_input(&channel, &alice, 1, 0, T0 + 5)).await.unwrap(),
            EnqueueOutcome { server_time: T0 + 1, duplicate: true }
        );
        assert!(store.enqueue(&enqueue_input(&channel, &alice, 3, 0, T0 + 5)).await.unwrap().duplicate);
        // The refused id is not spent: encrypted again in epoch 3, it goes to Bob and Carol.
        assert!(!store.enqueue(&at(3, enqueue_input(&channel, &alice, 5, 0, T0 + 6))).await.unwrap().duplicate);
        let message = (EnvelopeKind::Application, b"message 5".to_vec());
        assert_eq!(received(&*store, &bob).await.last(), Some(&message));
        assert_eq!(received(&*store, &carol).await.last(), Some(&message));
        // The joining epoch never goes down: a commit that names an earlier one (members who
        // refused a commit count behind) leaves it where it is.
        let mut behind = commit_input(&channel, &bob, 3, 8, T0 + 7);
        behind.joined_at = Some(2);
        store.commit(&behind).await.unwrap();
        assert_eq!(
            store.enqueue(&at(2, enqueue_input(&channel, &alice, 9, 0, T0 + 8))).await,
            Err(StoreError::StaleEpoch { current: 4 })
        );
    }

    /// Runs `call` until it is done, or drops it (`None`) instead of polling it again once it
    /// has been pending `times` times.
    async fn pending_at_most<F: std::future::Future>(times: u32, call: F) -> Option<F::Output> {
        let mut call = std::pin::pin!(call);
        let mut left = times;
        std::future::poll_fn(move |cx| {
            if left == 0 {
                return std::task::Poll::Ready(None);
            }
            match call.as_mut().poll(cx) {
                std::task::Poll::Ready(out) => std::task::Poll::Ready(Some(out)),
                std::task::Poll::Pending => {
                    left -= 1;
                    if left == 0 {
                        // Polled once more only to say it is dropped.
                        cx.waker().wake_by_ref();
                    }
                    std::task::Poll::Pending
                }
            }
        })
        .await
    }

    /// A caller dropped mid-call (a client that disconnects) may cancel a write at any point:
    /// before, during or after its `BEGIN`, a statement or its `COMMIT`. Each cancelled call
    /// either happened or did not, the next write works, and sending the same ids again
    /// leaves exactly one copy of each message.
    pub(super) async fn calls_cancelled_at_any_point_lose_nothing_and_leave_the_store_usable(store: Arc<dyn Storage>) {
        const CALLS: u32 = 600;
        let alice = register(&*store, "alice", 1).await.remove(0);
        let bob = register(&*store, "bob", 1).await.remove(0);
        let channel = group(&*store, 1, &[alice.clone(), bob.clone()]).await;
        let mut cancelled = 0;
        for n in 1..=CALLS {
            // Waits of 0 to ~1.5 ms, and at most 1 to 4 times pending (a backend whose
            // statements take microseconds is done within the timer's millisecond): calls are
            // dropped at each of their awaits.
            let wait = Duration::from_micros(u64::from(n % 61) * 25);
            let input = enqueue_input(&channel, &alice, n, 0, T0 + u64::from(n));
            match tokio::time::timeout(wait, pending_at_most(1 + n % 4, store.enqueue(&input))).await {
                Ok(Some(_)) => {}
                Ok(None) | Err(_) => cancelled += 1,
            }
            store.set_blocked(&alice, &user("mallory"), n % 2 == 0, 10, T0, 0).await.unwrap_or_else(|e| {
                panic!("a write after call {n} (cancelled {cancelled} so far) fails: {e}")
            });
        }
        assert!(cancelled > 0, "some calls were cancelled");
        for n in 1..=CALLS {
            store.enqueue(&enqueue_input(&channel, &alice, n, 0, T0 + u64::from(n))).await.expect("sent again");
        }
        let mut got: Vec<Vec<u8>> = received(&*store, &bob).await.into_iter().filter(|(k, _)| *k == EnvelopeKind::Application).map(|(_, p)| p).collect();
        got.sort();
        let mut want: Vec<Vec<u8>> = (1..=CALLS).map(|n| format!("message {n}").into_bytes()).collect();
        want.sort();
        assert_eq!(got, want, "every message once");
    }

    pub(super) async fn fetch_respects_order_limit_and_cursor(store: Arc<dyn Storage>) {
        let alice = register(&*store, "alice", 1).await.remove(0);
        let bob = register(&*store, "bob", 1).await.remove(0);
        let channel = group(&*store, 1, &[alice.clone(), bob.clone()]).await;
        let welcome_seq = queue(&*store, &bob, T0).await[0].seq;
        for n in 1..=5 {
            store.enqueue(&enqueue_input(&channel, &alice, n, 0, T0)).await.unwrap();
        }
        let all = store.fetch(&bob, welcome_seq, 100, u64::MAX, T0).await.unwrap();
        let payloads: Vec<Vec<u8>> = all.iter().map(|e| e.payload.clone()).collect();
        assert_eq!(payloads, (1..=5).map(|n| format!("message {n}").into_bytes()).collect::<Vec<_>>());
        assert!(all.windows(2).all(|w| w[0].seq < w[1].seq), "in increasing order");
        assert!(all[0].seq > welcome_seq);

        let first = store.fetch(&bob, welcome_seq, 2, u64::MAX, T0).await.unwrap();
        assert_eq!(first, all[..2].to_vec());
        let rest = store.fetch(&bob, first[1].seq, 10, u64::MAX, T0).await.unwrap();
        assert_eq!(rest, all[2..].to_vec());
        assert_eq!(store.fetch(&bob, all[4].seq, 10, u64::MAX, T0).await.unwrap(), vec![]);
        assert_eq!(store.fetch(&bob, 0, 0, u64::MAX, T0).await.unwrap(), vec![]);
        assert_eq!(store.fetch(&bob, u64::MAX, 10, u64::MAX, T0).await.unwrap(), vec![]);
        assert_eq!(store.fetch(&addr(&user("nobody"), 1), 0, 10, u64::MAX, T0).await, Err(StoreError::Revoked));
    }

    pub(super) async fn fetch_leaves_out_expired_envelopes(store: Arc<dyn Storage>) {
        let alice = register(&*store, "alice", 1).await.remove(0);
        let bob = register(&*store, "bob", 1).await.remove(0);
        let channel = group(&*store, 1, &[alice.clone(), bob.clone()]).await;
        store.enqueue(&enqueue_input(&channel, &alice, 1, T0 + 100, T0)).await.unwrap();
        store.enqueue(&enqueue_input(&channel, &alice, 2, 0, T0)).await.unwrap();
        store.enqueue(&enqueue_input(&channel, &alice, 3, T0 + 200, T0)).await.unwrap();
        let payloads = |envelopes: Vec<Envelope>| -> Vec<Vec<u8>> {
            envelopes.into_iter().filter(|e| e.kind == EnvelopeKind::Application).map(|e| e.payload).collect()
        };
        let m = |n: u32| format!("message {n}").into_bytes();
        assert_eq!(payloads(queue(&*store, &bob, T0 + 99).await), vec![m(1), m(2), m(3)]);
        assert_eq!(payloads(queue(&*store, &bob, T0 + 100).await), vec![m(2), m(3)]);
        assert_eq!(payloads(queue(&*store, &bob, T0 + 10_000).await), vec![m(2)]);
    }

    pub(super) async fn ack_deletes_and_sequence_numbers_are_never_reused(store: Arc<dyn Storage>) {
        let alice = register(&*store, "alice", 1).await.remove(0);
        let bob = register(&*store, "bob", 1).await.remove(0);
        let channel = group(&*store, 1, &[alice.clone(), bob.clone()]).await;
        for n in 1..=3 {
            store.enqueue(&enqueue_input(&channel, &alice, n, 0, T0)).await.unwrap();
        }
        let all = queue(&*store, &bob, T0).await;
        assert_eq!(all.len(), 4);
        store.ack(&bob, all[2].seq).await.unwrap();
        assert_eq!(queue(&*store, &bob, T0).await, vec![all[3].clone()]);
        store.ack(&bob, all[3].seq).await.unwrap();
        assert_eq!(queue(&*store, &bob, T0).await, vec![]);
        store.enqueue(&enqueue_input(&channel, &alice, 4, 0, T0)).await.unwrap();
        let next = queue(&*store, &bob, T0).await;
        assert_eq!(next.len(), 1);
        assert!(next[0].seq > all[3].seq, "a sequence number is never reused after an ack");
        // Acking someone else's range or an unknown device changes nothing else.
        store.ack(&alice, u64::MAX).await.unwrap();
        assert_eq!(store.ack(&addr(&user("nobody"), 1), u64::MAX).await, Err(StoreError::Revoked));
        assert_eq!(queue(&*store, &bob, T0).await, next);
    }

    pub(super) async fn concurrent_enqueues_give_gap_free_increasing_sequences(store: Arc<dyn Storage>) {
        let alice = register(&*store, "alice", 3).await;
        let bob = register(&*store, "bob", 1).await.remove(0);
        let members: Vec<DeviceAddress> = std::iter::once(bob.clone()).chain(alice.iter().cloned()).collect();
        let channel = group(&*store, 1, &members).await;
        let first = queue(&*store, &bob, T0).await.last().map_or(1, |e| e.seq + 1);
        let (writers, each) = (alice.len() as u32, 20u32);
        let reader = tokio::spawn(read_gap_free(store.clone(), bob.clone(), first, u64::from(writers * each)));
        let tasks: Vec<_> = alice
            .iter()
            .enumerate()
            .map(|(w, sender)| {
                let (store, sender, channel) = (store.clone(), sender.clone(), channel.clone());
                tokio::spawn(async move {
                    for n in 0..each {
                        let msg = (w as u32) * 1000 + n;
                        store.enqueue(&enqueue_input(&channel, &sender, msg, 0, T0)).await.unwrap();
                    }
                })
            })
            .collect();
        for task in tasks {
            task.await.unwrap();
        }
        let seen = reader.await.unwrap();
        // Each writer's messages arrive in the order it sent them.
        for w in 0..alice.len() {
            let sent: Vec<Vec<u8>> =
                (0..each).map(|n| format!("message {}", w as u32 * 1000 + n).into_bytes()).collect();
            let mine: Vec<Vec<u8>> = seen.iter().map(|e| e.payload.clone()).filter(|p| sent.contains(p)).collect();
            assert_eq!(mine, sent);
        }
    }

    /// Writes that run together (one batch on SQLite) are each readable, by a reader that sees
    /// only committed data, as soon as they are answered; a refused one among them changes
    /// nothing and takes nothing from the others.
    pub(super) async fn concurrent_writes_are_readable_when_answered_and_a_refusal_undoes_only_itself(
        store: Arc<dyn Storage>,
    ) {
        const EACH: u32 = 30;
        let alice = register(&*store, "alice", 3).await;
        let bob = register(&*store, "bob", 1).await.remove(0);
        let carol = register(&*store, "carol", 1).await.remove(0);
        let members: Vec<DeviceAddress> = std::iter::once(bob.clone()).chain(alice.iter().cloned()).collect();
        let channel = group(&*store, 1, &members).await;
        let tasks: Vec<_> = alice
            .iter()
            .cloned()
            .chain(std::iter::once(carol.clone()))
            .enumerate()
            .map(|(w, sender)| {
                let (store, channel, bob) = (store.clone(), channel.clone(), bob.clone());
                tokio::spawn(async move {
                    for n in 0..EACH {
                        let msg = w as u32 * 1000 + n;
                        let sent = store.enqueue(&enqueue_input(&channel, &sender, msg, 0, T0)).await;
                        if w == 3 {
                            // Carol is no member: refused, every time.
                            assert!(matches!(sent, Err(StoreError::NotMember)), "{sent:?}");
                            continue;
                        }
                        sent.unwrap();
                        let payload = format!("message {msg}").into_bytes();
                        assert!(
                            queue(&*store, &bob, T0).await.iter().any(|e| e.payload == payload),
                            "message {msg} was answered before a reader could see it"
                        );
                    }
                })
            })
            .collect();
        for task in tasks {
            task.await.unwrap();
        }
        let got = received(&*store, &bob).await.into_iter().filter(|(k, _)| *k == EnvelopeKind::Application).count();
        assert_eq!(got, 3 * EACH as usize, "every accepted message once, nothing of the refused ones");
    }

    // --- blobs --------------------------------------------------------------------------

    async fn blob_fixture(store: &dyn Storage, expires_at: Millis) -> (DeviceAddress, BlobRow) {
        let alice = register(store, "alice", 1).await.remove(0);
        let channel = channel_id(1);
        store.create_channel(&channel, &alice, Some(b"group 0"), T0).await.unwrap();
        let blob = BlobRow { id: [5; 16], channel, size: 10, chunk_size: 4, chunks_stored: 0, expires_at };
        store.create_blob(&blob, &alice, u64::MAX, T0).await.unwrap();
        (alice, blob)
    }

    pub(super) async fn blob_chunks_are_stored_in_order_and_retries_are_accepted(store: Arc<dyn Storage>) {
        let (alice, blob) = blob_fixture(&*store, 0).await;
        let id = blob.id;
        assert_eq!(store.blob(&id, T0).await.unwrap(), Some(blob.clone()));
        let chunks: [&[u8]; 3] = [b"0123", b"4567", b"89"];
        let row = store.put_chunk(&id, 0, chunks[0], None, T0).await.unwrap();
        assert_eq!((row.chunks_stored, row.complete()), (1, false));
        assert_eq!(store.put_chunk(&id, 0, chunks[0], None, T0).await.unwrap().chunks_stored, 1, "a retry is accepted");
        store.put_chunk(&id, 1, chunks[1], None, T0).await.unwrap();
        let row = store.put_chunk(&id, 2, chunks[2], None, T0).await.unwrap();
        assert_eq!(row, BlobRow { chunks_stored: 3, ..blob.clone() });
        assert!(row.complete());
        assert_eq!(store.put_chunk(&id, 1, chunks[1], None, T0).await.unwrap(), row);
        assert_eq!(store.blob(&id, T0).await.unwrap(), Some(row));
        for (i, chunk) in chunks.iter().enumerate() {
            assert_eq!(store.get_chunk(&id, i as u32, T0).await.unwrap().as_deref(), Some(*chunk));
        }
        assert_eq!(store.get_chunk(&id, 3, T0).await.unwrap(), None);
        assert_eq!(store.get_chunk(&[6; 16], 0, T0).await.unwrap(), None);
        assert_eq!(store.blob(&[6; 16], T0).await.unwrap(), None);

        // An empty file is complete at once.
        let empty = BlobRow { id: [7; 16], size: 0, chunk_size: 4, ..blob.clone() };
        store.create_blob(&empty, &alice, u64::MAX, T0).await.unwrap();
        assert!(store.blob(&empty.id, T0).await.unwrap().unwrap().complete());
        let unknown_channel = BlobRow { id: [8; 16], channel: channel_id(9), ..blob };
        assert_eq!(store.create_blob(&unknown_channel, &alice, u64::MAX, T0).await, Err(StoreError::NoSuchChannel));
    }

    pub(super) async fn bad_chunks_are_refused(store: Arc<dyn Storage>) {
        let (alice, blob) = blob_fixture(&*store, 0).await;
        let id = blob.id;
        let bad = |r: Result<BlobRow, StoreError>| matches!(r, Err(StoreError::BadChunk(_)));
        assert!(bad(store.put_chunk(&id, 1, b"4567", None, T0).await), "out of order");
        assert!(bad(store.put_chunk(&id, 0, b"012", None, T0).await), "too short");
        assert!(bad(store.put_chunk(&id, 0, b"01234", None, T0).await), "too long");
        store.put_chunk(&id, 0, b"0123", None, T0).await.unwrap();
        assert!(bad(store.put_chunk(&id, 0, b"0124", None, T0).await), "different bytes");
        assert!(bad(store.put_chunk(&id, 2, b"89", None, T0).await), "skips a chunk");
        store.put_chunk(&id, 1, b"4567", None, T0).await.unwrap();
        assert!(bad(store.put_chunk(&id, 2, b"8", None, T0).await), "short last chunk");
        store.put_chunk(&id, 2, b"89", None, T0).await.unwrap();
        assert!(bad(store.put_chunk(&id, 3, b"", None, T0).await), "past the end");
        assert_eq!(store.put_chunk(&[6; 16], 0, b"0123", None, T0).await, Err(StoreError::NoSuchBlob));
        assert_eq!(store.get_chunk(&id, 0, T0).await.unwrap().as_deref(), Some(&b"0123"[..]));
        assert_eq!(store.blob(&id, T0).await.unwrap().unwrap().chunks_stored, 3);

        let zero = BlobRow { id: [9; 16], chunk_size: 0, ..blob.clone() };
        assert!(matches!(store.create_blob(&zero, &alice, u64::MAX, T0).await, Err(StoreError::BadChunk(_))));
        let huge = BlobRow { id: [10; 16], size: u64::MAX, chunk_size: 1, ..blob };
        assert!(matches!(store.create_blob(&huge, &alice, u64::MAX, T0).await, Err(StoreError::BadChunk(_))));
        assert_eq!(store.blob(&[9; 16], T0).await.unwrap(), None);
    }

    pub(super) async fn blobs_expire(store: Arc<dyn Storage>) {
        let (_, blob) = blob_fixture(&*store, T0 + 100).await;
        let id = blob.id;
        store.put_chunk(&id, 0, b"0123", None, T0 + 99).await.unwrap();
        assert!(store.blob(&id, T0 + 99).await.unwrap().is_some());
        assert_eq!(store.blob(&id, T0 + 100).await.unwrap(), None);
        assert_eq!(store.get_chunk(&id, 0, T0 + 100).await.unwrap(), None);
        assert_eq!(store.put_chunk(&id, 1, b"4567", None, T0 + 100).await, Err(StoreError::NoSuchBlob));
        assert_eq!(store.expire(T0 + 99, 0, 0).await.unwrap().blobs, 0);
        assert_eq!(store.expire(T0 + 100, 0, 0).await.unwrap().blobs, 1);
        assert_eq!(store.blob(&id, T0).await.unwrap(), None, "gone, not only hidden");
        assert_eq!(store.get_chunk(&id, 0, T0).await.unwrap(), None);
    }

    // --- maintenance and wake-ups ---------------------------------------------------------

    pub(super) async fn expire_removes_expired_envelopes_blobs_and_old_records(store: Arc<dyn Storage>) {
        let alice = register(&*store, "alice", 1).await.remove(0);
        let bob = register(&*store, "bob", 1).await.remove(0);
        let carol = register(&*store, "carol", 1).await.remove(0);
        let channel = group(&*store, 1, &[alice.clone(), bob.clone(), carol.clone()]).await; // record at T0
        store.enqueue(&enqueue_input(&channel, &alice, 1, T0 + 100, T0 + 10)).await.unwrap(); // 2 copies
        store.enqueue(&enqueue_input(&channel, &alice, 2, 0, T0 + 60)).await.unwrap();
        let blob = BlobRow {
            id: [1; 16],
            channel: channel.clone(),
            size: 1,
            chunk_size: 1,
            chunks_stored: 0,
            expires_at: T0 + 100,
        };
        store.create_blob(&blob, &alice, u64::MAX, T0).await.unwrap();
        store.put_chunk(&blob.id, 0, b"x", None, T0).await.unwrap();

        let stats = store.expire(T0 + 100, T0 + 50, 0).await.unwrap();
        assert_eq!(stats, ExpiryStats { envelopes: 2, blobs: 1, records: 2, channels: 0, claimed: 0, links: 0 });
        assert_eq!(store.expire(T0 + 100, T0 + 50, 0).await.unwrap(), Default::default());
        // The envelopes are gone even for a reader with an older clock.
        let left: Vec<Vec<u8>> = received(&*store, &bob).await.into_iter().map(|(_, p)| p).collect();
        assert_eq!(left, vec![b"message 2".to_vec()]);
        assert_eq!(store.blob(&blob.id, T0).await.unwrap(), None);
        // The idempotency record of message 1 is gone, that of message 2 kept.
        assert!(!store.enqueue(&enqueue_input(&channel, &alice, 1, 0, T0 + 200)).await.unwrap().duplicate);
        assert!(store.enqueue(&enqueue_input(&channel, &alice, 2, 0, T0 + 200)).await.unwrap().duplicate);
    }

    pub(super) async fn blobs_nobody_can_reach_are_collected(store: Arc<dyn Storage>) {
        let alice = register(&*store, "alice", 1).await.remove(0);
        let bob = register(&*store, "bob", 1).await.remove(0);
        let kept = group(&*store, 1, &[alice.clone(), bob.clone()]).await;
        let emptied = group(&*store, 2, &[alice.clone(), bob.clone()]).await;
        for (id, channel) in [([1; 16], &kept), ([2; 16], &emptied)] {
            let blob = BlobRow { id, channel: channel.clone(), size: 1, chunk_size: 1, chunks_stored: 0, expires_at: 0 };
            store.create_blob(&blob, &alice, u64::MAX, T0).await.unwrap();
            store.put_chunk(&id, 0, b"x", None, T0).await.unwrap();
        }
        // Both members leave the second channel: its blob can no longer be read by anyone.
        let mut leave = commit_input(&emptied, &alice, 1, 50, T0);
        leave.remove = vec![alice.clone(), bob.clone()];
        store.commit(&leave).await.unwrap();
        let stats = store.expire(T0, 0, 0).await.unwrap();
        assert_eq!(stats.blobs, 1);
        assert_eq!(stats.channels, 1, "the channel without members is pruned");
        assert_eq!(store.channel(&emptied).await.unwrap(), None);
        assert!(store.channel(&kept).await.unwrap().is_some(), "a channel with members stays");
        assert_eq!(store.blob(&[2; 16], T0).await.unwrap(), None);
        assert!(store.blob(&[1; 16], T0).await.unwrap().is_some(), "a blob of a live channel stays");
        assert_eq!(store.get_chunk(&[1; 16], 0, T0).await.unwrap(), Some(b"x".to_vec()));
    }

    pub(super) async fn fetch_is_bounded_by_bytes(store: Arc<dyn Storage>) {
        let alice = register(&*store, "alice", 1).await.remove(0);
        let bob = register(&*store, "bob", 1).await.remove(0);
        let channel = group(&*store, 1, &[alice.clone(), bob.clone()]).await;
        let welcome = queue(&*store, &bob, T0).await[0].seq;
        for n in 0..5u8 {
            let mut input = enqueue_input(&channel, &alice, u32::from(n) + 1, 0, T0);
            input.payload = vec![n; 100];
            store.enqueue(&input).await.unwrap();
        }
        let sizes = |envs: Vec<Envelope>| envs.iter().map(|e| e.payload.len()).collect::<Vec<_>>();
        let got = store.fetch(&bob, welcome, 100, 250, T0).await.unwrap();
        assert_eq!(sizes(got), vec![100, 100], "a third envelope would pass 250 bytes");
        let got = store.fetch(&bob, welcome, 100, 300, T0).await.unwrap();
        assert_eq!(sizes(got), vec![100, 100, 100]);
        let got = store.fetch(&bob, welcome, 100, 1, T0).await.unwrap();
        assert_eq!(sizes(got), vec![100], "the first envelope comes whatever its size");
        let got = store.fetch(&bob, welcome, 2, 10_000, T0).await.unwrap();
        assert_eq!(sizes(got), vec![100, 100], "the count limit still holds");
        let all = store.fetch(&bob, welcome, 100, u64::MAX, T0).await.unwrap();
        let first = store.fetch(&bob, welcome, 100, 200, T0).await.unwrap();
        let rest = store.fetch(&bob, first.last().unwrap().seq, 100, 10_000, T0).await.unwrap();
        assert_eq!([first, rest].concat(), all, "batches continue where the last ended");
    }

    pub(super) async fn claimed_hashes_are_forgotten_after_their_retention(store: Arc<dyn Storage>) {
        let alice = register(&*store, "alice", 1).await.remove(0);
        store.add_key_packages(&alice, &[key_package("old")], None, u32::MAX).await.unwrap();
        store.claim_key_packages(&alice.user, None, &[], T0 + 10).await.unwrap();
        let old = [key_package("old")];
        let again = || store.add_key_packages(&alice, &old, None, u32::MAX);
        assert_eq!(again().await, Err(StoreError::KeyPackageReused));
        assert_eq!(store.expire(T0 + 20, 0, T0 + 10).await.unwrap().claimed, 0, "claimed at the horizon: kept");
        assert_eq!(again().await, Err(StoreError::KeyPackageReused));
        assert_eq!(store.expire(T0 + 20, 0, T0 + 11).await.unwrap().claimed, 1);
        assert_eq!(again().await, Ok(1), "a hash past its retention is forgotten");
    }

    pub(super) async fn quotas_refuse_and_change_nothing(store: Arc<dyn Storage>) {
        let alice = register(&*store, "alice", 1).await.remove(0);
        let bob = register(&*store, "bob", 1).await.remove(0);
        // Key packages held per device.
        let packages: Vec<KeyPackageRow> = (0..3).map(|n| key_package(&format!("q{n}"))).collect();
        assert!(matches!(store.add_key_packages(&alice, &packages, None, 2).await, Err(StoreError::QuotaExceeded(_))));
        assert_eq!(store.key_package_count(&alice).await.unwrap(), 0, "nothing of the refused upload is stored");
        assert_eq!(store.add_key_packages(&alice, &packages[..2], None, 2).await.unwrap(), 2);
        assert!(matches!(
            store.add_key_packages(&alice, &packages[2..], None, 2).await,
            Err(StoreError::QuotaExceeded(_))
        ));

        // Queue depth per device: bob holds the Welcome, so two more fill a queue of three.
        let channel = group(&*store, 1, &[alice.clone(), bob.clone()]).await;
        let send = |msg: u32| {
            let mut input = enqueue_input(&channel, &alice, msg, 0, T0);
            input.max_queue = 3;
            input
        };
        store.enqueue(&send(1)).await.unwrap();
        store.enqueue(&send(2)).await.unwrap();
        assert!(matches!(store.enqueue(&send(3)).await, Err(StoreError::QuotaExceeded(_))));
        assert_eq!(queue(&*store, &bob, T0).await.len(), 3, "the refused message was not queued");
        let mut commit = commit_input(&channel, &alice, 1, 4, T0);
        commit.max_queue = 3;
        assert!(matches!(store.commit(&commit).await, Err(StoreError::QuotaExceeded(_))));
        assert_eq!(store.channel(&channel).await.unwrap().unwrap().epoch, 1, "the refused commit took no epoch");
        // Once bob catches up there is room again.
        let last = queue(&*store, &bob, T0).await.last().unwrap().seq;
        store.ack(&bob, last).await.unwrap();
        store.enqueue(&send(5)).await.unwrap();
        // Removing a device whose queue is full is always possible.
        store.enqueue(&send(6)).await.unwrap();
        store.enqueue(&send(7)).await.unwrap();
        commit.remove = vec![bob.clone()];
        commit.client_msg_id = msg_id(8);
        store.commit(&commit).await.unwrap();

        // File bytes per account.
        let blob = |id: u8, size: u64| BlobRow { id: [id; 16], channel: channel.clone(), size, chunk_size: 4, chunks_stored: 0, expires_at: 0 };
        store.create_blob(&blob(1, 6), &alice, 10, T0).await.unwrap();
        assert!(matches!(store.create_blob(&blob(2, 6), &alice, 10, T0).await, Err(StoreError::QuotaExceeded(_))));
        assert_eq!(store.blob(&[2; 16], T0).await.unwrap(), None);
        store.create_blob(&blob(3, 4), &alice, 10, T0).await.unwrap();
    }

    pub(super) async fn wakeups_name_the_recipients_of_enqueues_and_commits(store: Arc<dyn Storage>) {
        let alice = register(&*store, "alice", 2).await;
        let bob = register(&*store, "bob", 1).await.remove(0);
        let carol = register(&*store, "carol", 1).await.remove(0);
        let channel = group(&*store, 1, &[alice[0].clone(), alice[1].clone(), bob.clone()]).await;
        let mut rx = store.wakeups();
        store.enqueue(&enqueue_input(&channel, &alice[0], 1, 0, T0)).await.unwrap();
        expect_wakeups(&mut rx, &[alice[1].clone(), bob.clone()]).await;
        let mut input = commit_input(&channel, &bob, 1, 2, T0);
        input.add = vec![carol.clone()];
        input.remove = vec![alice[1].clone()];
        store.commit(&input).await.unwrap();
        expect_wakeups(&mut rx, &[alice[0].clone(), alice[1].clone(), carol.clone()]).await;
        assert!(rx.try_recv().is_err(), "nobody else is woken");
        // A revocation and a deletion announce the devices that are gone.
        store.revoke_device(&alice[1], Some(&alice[0])).await.unwrap();
        expect_wakes(&mut rx, &[Wake::Gone(alice[1].device)]).await;
        let dave = register(&*store, "dave", 2).await;
        store.delete_user(&dave[0].user, T0, Some(&dave[1])).await.unwrap();
        expect_wakes(&mut rx, &[Wake::Gone(dave[0].device), Wake::Gone(dave[1].device)]).await;
        assert!(rx.try_recv().is_err(), "nothing else is announced");
    }
}

// --- PostgreSQL: several nodes on one database ---------------------------------------------

mod postgres_cluster {
    use sqlx::Connection;

    use super::postgres_backend::TestDatabase;
    use super::*;
    use crate::storage::postgres::PgStorage;

    /// The NATS server the wake-up bus tests use (scripts/lib.sh `ensure_nats` starts it).
    const NATS: &str = "nats://127.0.0.1:4222";

    async fn nodes(n: usize) -> (Vec<Arc<dyn Storage>>, TestDatabase) {
        nodes_on(n, None).await
    }

    /// `n` nodes on one new database, waking each other through NATS at `nats` if given.
    async fn nodes_on(n: usize, nats: Option<&str>) -> (Vec<Arc<dyn Storage>>, TestDatabase) {
        let db = TestDatabase::create().await;
        let mut nodes: Vec<Arc<dyn Storage>> = Vec::new();
        for _ in 0..n {
            nodes.push(Arc::new(PgStorage::connect_with_bus(&db.url, nats).await.expect("connect node")));
        }
        (nodes, db)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn nodes_starting_together_migrate_once() {
        let db = TestDatabase::create().await;
        let (a, b, c) =
            tokio::join!(PgStorage::connect(&db.url), PgStorage::connect(&db.url), PgStorage::connect(&db.url));
        let (a, b, _c) = (a.expect("node a"), b.expect("node b"), c.expect("node c"));
        register(&a, "alice", 1).await;
        assert_eq!(b.identity_key(&user("alice")).await.unwrap(), Some(identity(&user("alice"))));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_enqueue_on_one_node_wakes_subscribers_of_another() {
        let (nodes, db) = nodes(2).await;
        let mut notifications = sqlx::postgres::PgListener::connect(&db.url).await.expect("listen");
        notifications.listen("qpq_wakeup").await.expect("listen");
        wakes_cross_nodes(&nodes).await;
        let n = tokio::time::timeout(WAKE_TIMEOUT, notifications.recv()).await;
        assert!(matches!(n, Ok(Ok(_))), "the wake-ups went by NOTIFY");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn with_nats_as_the_bus_an_enqueue_on_one_node_wakes_subscribers_of_another_and_nothing_is_notified() {
        let (nodes, db) = nodes_on(2, Some(NATS)).await;
        let mut notifications = sqlx::postgres::PgListener::connect(&db.url).await.expect("listen");
        notifications.listen("qpq_wakeup").await.expect("listen");
        wakes_cross_nodes(&nodes).await;
        let n = tokio::time::timeout(Duration::from_millis(500), notifications.recv()).await;
        assert!(n.is_err(), "no NOTIFY when NATS carries the wake-ups: {n:?}");
        // Another cluster (another database) on the same NATS server hears none of them.
        let (other, _other_db) = nodes_on(1, Some(NATS)).await;
        let mut rx = other[0].wakeups();
        let alice = register(&*nodes[0], "dora", 1).await.remove(0);
        let erin = register(&*nodes[0], "erin", 1).await.remove(0);
        let channel = group(&*nodes[0], 9, &[alice.clone(), erin.clone()]).await;
        store_enqueue(&nodes[0], &channel, &alice, 1).await;
        let heard = tokio::time::timeout(Duration::from_millis(500), rx.recv()).await;
        assert!(heard.is_err(), "another cluster's node was woken: {heard:?}");
    }

    /// A TCP relay to the NATS server whose connections can be cut, as a network fault
    /// would; it keeps accepting, so the client reconnects through it.
    struct Relay {
        url: String,
        connections: Arc<std::sync::Mutex<Vec<tokio::task::JoinHandle<()>>>>,
        accept: tokio::task::JoinHandle<()>,
    }

    impl Relay {
        async fn start() -> Relay {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let url = format!("nats://{}", listener.local_addr().unwrap());
            let connections = Arc::new(std::sync::Mutex::new(Vec::new()));
            let held = connections.clone();
            let accept = tokio::spawn(async move {
                while let Ok((mut client, _)) = listener.accept().await {
                    let relay = tokio::spawn(async move {
                        let mut server = tokio::net::TcpStream::connect("127.0.0.1:4222").await.unwrap();
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                    });
                    held.lock().unwrap().push(relay);
                }
            });
            Relay { url, connections, accept }
        }

        /// Closes every relayed connection; returns how many there were.
        fn cut(&self) -> usize {
            let cut: Vec<_> = self.connections.lock().unwrap().drain(..).collect();
            cut.iter().for_each(|c| c.abort());
            cut.len()
        }
    }

    impl Drop for Relay {
        fn drop(&mut self) {
            self.accept.abort();
            self.cut();
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_node_that_lost_nats_resyncs_once_it_is_subscribed_again_and_not_before() {
        let relay = Relay::start().await;
        let db = TestDatabase::create().await;
        let a: Arc<dyn Storage> = Arc::new(PgStorage::connect_with_bus(&db.url, Some(NATS)).await.expect("node a"));
        let b = PgStorage::connect_with_bus(&db.url, Some(&relay.url)).await.expect("node b");
        let mut rx = b.wakeups();
        let alice = register(&*a, "alice", 1).await.remove(0);
        let bob = register(&*a, "bob", 1).await.remove(0);
        let channel = group(&*a, 1, &[alice.clone(), bob.clone()]).await;
        // The first connection missed nothing: no resync for it (the wake-ups of the group's
        // making may still come in meanwhile).
        let resyncs = |rx: &mut tokio::sync::broadcast::Receiver<Wake>| {
            std::iter::from_fn(|| rx.try_recv().ok()).filter(|w| matches!(w, Wake::Resync)).count()
        };
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert_eq!(resyncs(&mut rx), 0, "a resync without a loss");

        assert_eq!(relay.cut(), 1, "node b's one connection to NATS was cut");
        tokio::time::timeout(Duration::from_secs(30), async {
            while !matches!(rx.recv().await, Ok(Wake::Resync)) {}
        })
        .await
        .expect("a resync after the bus came back");
        // Subscribed again by the time it said so: the very next wake-up arrives.
        store_enqueue(&a, &channel, &alice, 1).await;
        expect_wakeups(&mut rx, std::slice::from_ref(&bob)).await;
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert_eq!(resyncs(&mut rx), 0, "one resync per loss");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_nats_bus_is_refused_for_sqlite_and_an_unreachable_one_is_said() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("n.sqlite").display());
        let e = crate::storage::open(&url, Some(NATS)).await.err().expect("refused");
        assert!(e.to_string().contains("PostgreSQL"), "{e}");
        let db = TestDatabase::create().await;
        let e = PgStorage::connect_with_bus(&db.url, Some("nats://127.0.0.1:1")).await.err().expect("refused");
        assert!(e.to_string().contains("cannot reach the NATS server"), "{e}");
    }

    /// An enqueue, a commit and a revocation on the first node wake the second's subscribers.
    async fn wakes_cross_nodes(nodes: &[Arc<dyn Storage>]) {
        let (a, b) = (&nodes[0], &nodes[1]);
        let alice = register(&**a, "alice", 1).await.remove(0);
        let bob = register(&**a, "bob", 1).await.remove(0);
        let channel = group(&**a, 1, &[alice.clone(), bob.clone()]).await;
        let mut rx = b.wakeups();
        store_enqueue(a, &channel, &alice, 1).await;
        expect_wakeups(&mut rx, std::slice::from_ref(&bob)).await;
        // Commits too, with the Welcome's recipient.
        let carol = register(&**a, "carol", 1).await.remove(0);
        let mut input = commit_input(&channel, &alice, 1, 2, T0);
        input.add = vec![carol.clone()];
        a.commit(&input).await.unwrap();
        expect_wakeups(&mut rx, &[bob.clone(), carol.clone()]).await;
        assert_eq!(queue(&**b, &carol, T0).await.len(), 1);
        // A revocation on one node is heard on the other.
        a.revoke_device(&carol, None).await.unwrap();
        expect_gone(&mut rx, carol.device).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn one_node_at_a_time_is_the_push_sender() {
        let (nodes, _db) = nodes(2).await;
        let held = nodes[0].lead_pushes().await.unwrap().expect("the first node takes the role");
        assert!(nodes[1].lead_pushes().await.unwrap().is_none(), "the second does not");
        assert!(nodes[0].lead_pushes().await.unwrap().is_none(), "nor another connection of the first");
        drop(held);
        let taken = tokio::time::timeout(Duration::from_secs(10), async {
            loop {
                if let Some(l) = nodes[1].lead_pushes().await.unwrap() {
                    return l;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        })
        .await
        .expect("the role passes on once given up");
        drop(taken);
    }

    async fn store_enqueue(store: &Arc<dyn Storage>, channel: &ChannelId, sender: &DeviceAddress, msg: u32) {
        store.enqueue(&enqueue_input(channel, sender, msg, 0, T0)).await.expect("enqueue");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_enqueues_from_two_nodes_are_gap_free() {
        let (nodes, _db) = nodes(2).await;
        let senders = register(&*nodes[0], "alice", 4).await;
        let bob = register(&*nodes[0], "bob", 1).await.remove(0);
        let members: Vec<DeviceAddress> = std::iter::once(bob.clone()).chain(senders.iter().cloned()).collect();
        let channel = group(&*nodes[0], 1, &members).await;
        let first = queue(&*nodes[0], &bob, T0).await.last().map_or(1, |e| e.seq + 1);
        let each = 25u32;
        // The reader is on the second node while both nodes write.
        let reader =
            tokio::spawn(read_gap_free(nodes[1].clone(), bob.clone(), first, u64::from(each) * senders.len() as u64));
        let tasks: Vec<_> = senders
            .iter()
            .enumerate()
            .map(|(w, sender)| {
                let (node, sender, channel) = (nodes[w % 2].clone(), sender.clone(), channel.clone());
                tokio::spawn(async move {
                    for n in 0..each {
                        node.enqueue(&enqueue_input(&channel, &sender, w as u32 * 1000 + n, 0, T0)).await.unwrap();
                    }
                })
            })
            .collect();
        for task in tasks {
            task.await.unwrap();
        }
        let seen = reader.await.unwrap();
        assert_eq!(seen.len(), each as usize * senders.len());
        assert_eq!(seen.last().unwrap().seq, first + seen.len() as u64 - 1);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_commits_on_two_nodes_exactly_one_wins() {
        let (nodes, _db) = nodes(2).await;
        let members = [register(&*nodes[0], "alice", 2).await, register(&*nodes[0], "bob", 2).await].concat();
        let channel = group(&*nodes[0], 1, &members).await;
        for epoch in 1..=5u64 {
            let barrier = Arc::new(Barrier::new(members.len()));
            let tasks: Vec<_> = members
                .iter()
                .enumerate()
                .map(|(i, sender)| {
                    let input = commit_input(&channel, sender, epoch, (epoch * 100) as u32 + i as u32, T0);
                    let (node, barrier) = (nodes[i % 2].clone(), barrier.clone());
                    tokio::spawn(async move {
                        barrier.wait().await;
                        node.commit(&input).await
                    })
                })
                .collect();
            let mut accepted = 0;
            for task in tasks {
                match task.await.unwrap() {
                    Ok(_) => accepted += 1,
                    Err(e) => assert_eq!(e, StoreError::StaleEpoch { current: epoch + 1 }),
                }
            }
            assert_eq!(accepted, 1);
        }
        assert_eq!(nodes[1].channel(&channel).await.unwrap().unwrap().epoch, 6);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_claims_on_two_nodes_never_share_a_package() {
        let (nodes, _db) = nodes(2).await;
        let alice = register(&*nodes[0], "alice", 1).await.remove(0);
        let packages: Vec<KeyPackageRow> = (0..16).map(|n| key_package(&format!("p{n}"))).collect();
        nodes[0].add_key_packages(&alice, &packages, None, u32::MAX).await.unwrap();
        let barrier = Arc::new(Barrier::new(20));
        let tasks: Vec<_> = (0..20)
            .map(|i| {
                let (node, barrier, u) = (nodes[i % 2].clone(), barrier.clone(), alice.user.clone());
                tokio::spawn(async move {
                    barrier.wait().await;
                    node.claim_key_packages(&u, None, &[], T0).await
                })
            })
            .collect();
        let mut handed_out = BTreeSet::new();
        let mut empty = 0;
        for task in tasks {
            match task.await.unwrap().unwrap().as_slice() {
                [] => empty += 1,
                [one] => assert!(handed_out.insert(one.data.clone()), "handed out twice"),
                more => panic!("one device, {} packages", more.len()),
            }
        }
        assert_eq!((handed_out.len(), empty), (16, 4));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_listener_reconnects_after_losing_its_connection() {
        let (nodes, db) = nodes(2).await;
        let (a, b) = (&nodes[0], &nodes[1]);
        let alice = register(&**a, "alice", 1).await.remove(0);
        let bob = register(&**a, "bob", 1).await.remove(0);
        let channel = group(&**a, 1, &[alice.clone(), bob.clone()]).await;
        let mut rx = b.wakeups();

        let mut admin = sqlx::PgConnection::connect(&db.url).await.unwrap();
        let killed: Vec<bool> = sqlx::query_scalar(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
             WHERE datname = current_database() AND application_name = $1",
        )
        .bind("qpq-wakeup-listener")
        .fetch_all(&mut admin)
        .await
        .unwrap();
        assert_eq!(killed, vec![true, true], "both nodes' listeners were cut off");

        // Wake-ups sent while a listener reconnects are lost, so it says "resync" (everything
        // may have been missed) — but only once it listens again: the very first wake-up
        // sent after the resync arrives. (A resync sent before LISTEN is back would let a
        // subscriber fetch, then sleep through the messages queued in between.)
        tokio::time::timeout(Duration::from_secs(30), async {
            while !matches!(rx.recv().await, Ok(Wake::Resync)) {}
        })
        .await
        .expect("a resync after the listener lost its connection");
        store_enqueue(a, &channel, &alice, 1).await;
        let arrived = tokio::time::timeout(Duration::from_secs(5), async {
            loop {
                if let Ok(wake @ Wake::Queue(_)) = rx.recv().await {
                    return wake;
                }
            }
        })
        .await
        .expect("the first wake-up after the resync arrives");
        assert_eq!(arrived, Wake::Queue(bob.device));
    }
}
