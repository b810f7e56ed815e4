//! What an account's own devices learn of each of them besides its record, for every
//! backend: the label a device sets for itself and when it last logged in.

use super::*;

/// `DeviceAbout` with `label` and `last_login`.
fn about(label: Option<&[u8]>, last_login: Millis) -> DeviceAbout {
    DeviceAbout { label: label.map(<[u8]>::to_vec), last_login }
}

/// What `devices_about` lists of `user`, without the records (checked once, in order).
async fn abouts(store: &dyn Storage, user: &UserId) -> Vec<DeviceAbout> {
    let listed = store.devices_about(user).await.expect("devices about");
    let records: Vec<DeviceRecord> = listed.iter().map(|(r, _)| r.clone()).collect();
    assert_eq!(records, store.devices(user).await.unwrap(), "the same records, in the same order, as `devices`");
    listed.into_iter().map(|(_, a)| a).collect()
}

pub(crate) async fn a_new_device_has_no_label_and_no_login(store: Arc<dyn Storage>) {
    let alice = register(&*store, "alice", 2).await;
    let u = &alice[0].user;
    assert_eq!(abouts(&*store, u).await, vec![about(None, 0), about(None, 0)]);
    store.add_device(&record(u, 3), MAX_DEVICES_PER_USER, Some(&alice[0]), T0).await.unwrap();
    assert_eq!(abouts(&*store, u).await, vec![about(None, 0); 3]);
    // A user without devices, or nobody at all, lists nothing.
    assert_eq!(store.devices_about(&user("nobody")).await.unwrap(), vec![]);
}

pub(crate) async fn a_label_is_stored_for_its_device_only_and_cleared(store: Arc<dyn Storage>) {
    let alice = register(&*store, "alice", 3).await;
    let bob = register(&*store, "bob", 1).await;
    let u = &alice[0].user;
    store.set_device_label(&alice[1], Some(b"sealed: laptop")).await.unwrap();
    assert_eq!(abouts(&*store, u).await, vec![about(None, 0), about(Some(b"sealed: laptop"), 0), about(None, 0)]);
    assert_eq!(abouts(&*store, &bob[0].user).await, vec![about(None, 0)], "another account's devices are untouched");

    // Setting again replaces it; another device's label is its own.
    store.set_device_label(&alice[1], Some(b"sealed: work laptop")).await.unwrap();
    store.set_device_label(&alice[2], Some(&[0xff; 256])).await.unwrap();
    assert_eq!(
        abouts(&*store, u).await,
        vec![about(None, 0), about(Some(b"sealed: work laptop"), 0), about(Some(&[0xff; 256]), 0)]
    );

    // `None` and an empty label both clear it (stored as no label at all).
    store.set_device_label(&alice[1], None).await.unwrap();
    store.set_device_label(&alice[2], Some(b"")).await.unwrap();
    assert_eq!(abouts(&*store, u).await, vec![about(None, 0); 3]);

    // Only a device that exists has a label: a gone one is refused as revoked.
    assert_eq!(store.set_device_label(&addr(u, 9), Some(b"ghost")).await, Err(StoreError::Revoked));
    assert_eq!(abouts(&*store, u).await.len(), 3);
}

pub(crate) async fn logins_are_recorded_per_device(store: Arc<dyn Storage>) {
    let alice = register(&*store, "alice", 2).await;
    let bob = register(&*store, "bob", 1).await;
    let u = &alice[0].user;
    store.touch_login(&alice[1], T0 + 10).await.unwrap();
    assert_eq!(abouts(&*store, u).await, vec![about(None, 0), about(None, T0 + 10)]);
    store.touch_login(&alice[0], T0 + 20).await.unwrap();
    store.touch_login(&alice[1], T0 + 30).await.unwrap();
    assert_eq!(abouts(&*store, u).await, vec![about(None, T0 + 20), about(None, T0 + 30)], "the latest login is kept");
    assert_eq!(abouts(&*store, &bob[0].user).await, vec![about(None, 0)], "another account's devices are untouched");

    // A label and a login are independent of each other.
    store.set_device_label(&alice[0], Some(b"sealed: phone")).await.unwrap();
    store.touch_login(&alice[0], T0 + 40).await.unwrap();
    assert_eq!(abouts(&*store, u).await, vec![about(Some(b"sealed: phone"), T0 + 40), about(None, T0 + 30)]);

    assert_eq!(store.touch_login(&addr(u, 9), T0).await, Err(StoreError::NoSuchDevice));
    assert_eq!(store.touch_login(&addr(&user("nobody"), 1), T0).await, Err(StoreError::NoSuchDevice));
}

pub(crate) async fn revoking_or_deleting_removes_label_and_login(store: Arc<dyn Storage>) {
    let alice = register(&*store, "alice", 2).await;
    let u = &alice[0].user;
    for d in &alice {
        store.set_device_label(d, Some(b"sealed")).await.unwrap();
        store.touch_login(d, T0 + 5).await.unwrap();
    }
    store.revoke_device(&alice[1], None).await.unwrap();
    assert_eq!(abouts(&*store, u).await, vec![about(Some(b"sealed"), T0 + 5)]);
    assert_eq!(store.set_device_label(&alice[1], Some(b"again")).await, Err(StoreError::Revoked));
    assert_eq!(store.touch_login(&alice[1], T0 + 6).await, Err(StoreError::NoSuchDevice));

    // Enrolled again, it is a new device: no label, never logged in.
    store.add_device(&record(u, 2), MAX_DEVICES_PER_USER, None, T0).await.unwrap();
    assert_eq!(abouts(&*store, u).await, vec![about(Some(b"sealed"), T0 + 5), about(None, 0)]);

    // Deleting the account takes everything; registered again, the name starts afresh.
    store.delete_user(u, T0 + 10, None).await.unwrap();
    assert_eq!(store.devices_about(u).await.unwrap(), vec![]);
    store.create_user(u, &identity(u), &record(u, 1), T0 + 20).await.unwrap();
    assert_eq!(abouts(&*store, u).await, vec![about(None, 0)]);
}
