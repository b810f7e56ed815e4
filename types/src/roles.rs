//! Group roles, as the members' engines and the node both read them.
//!
//! A conversation's admins are listed in a group-context extension in clear (the node enforces
//! the roles, so it must read them; who administers a group is routing-level metadata, like
//! membership). Admins add and remove members, change the conversation's settings and make
//! others admins; members send, react and leave, and may remove their own account's other
//! devices. A listed admin who is no longer a member does not count; when no listed admin is
//! left, the member of the longest standing — the user of the lowest occupied leaf — is the
//! admin, so a group never ends up without one. A group without the extension (made before
//! roles) has no roles: every member may do everything.

use crate::UserId;

/// The group-context extension type listing the admins.
pub const ADMINS_EXTENSION: u16 = 0xF0A3;

/// Most admins one list may hold.
pub const MAX_ADMINS: usize = 1000;

/// The extension's bytes: a 2-byte count, then each admin's `name@domain` as a 2-byte length
/// and UTF-8.
pub fn encode_admins(admins: &[UserId]) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(&(admins.len() as u16).to_be_bytes());
    for a in admins {
        out.extend_from_slice(&(a.as_str().len() as u16).to_be_bytes());
        out.extend_from_slice(a.as_str().as_bytes());
    }
    out
}

/// Reads [`encode_admins`]'s bytes; `None` when they are not that (nothing may follow).
pub fn decode_admins(mut b: &[u8]) -> Option<Vec<UserId>> {
    let mut take = |n: usize| -> Option<&[u8]> {
        if b.len() < n {
            return None;
        }
        let (head, rest) = b.split_at(n);
        b = rest;
        Some(head)
    };
    let count = u16::from_be_bytes(take(2)?.try_into().ok()?) as usize;
    if count > MAX_ADMINS {
        return None;
    }
    let mut admins = Vec::with_capacity(count);
    for _ in 0..count {
        let len = u16::from_be_bytes(take(2)?.try_into().ok()?) as usize;
        let name = std::str::from_utf8(take(len)?).ok()?;
        admins.push(UserId::parse(name).ok()?);
    }
    b.is_empty().then_some(admins)
}

/// Who counts as admin: the listed admins that are members, or, when none is, the user of the
/// first of `members` (the members' users in leaf order).
pub fn effective_admins(listed: &[UserId], members: &[UserId]) -> Vec<UserId> {
    let mut present: Vec<UserId> = listed.iter().filter(|u| members.contains(u)).cloned().collect();
    present.sort();
    present.dedup();
    if present.is_empty() {
        present.extend(members.first().cloned());
    }
    present
}

/// Whether a commit keeps to the roles of a group that has them. `admins` are the effective
/// admins before it, `before` and `after` the members' users in leaf order before and after
/// it; `settings` says whether it changes the group context's extensions, `roles_kept`
/// whether the admins list is still there afterwards. Admins may do anything but drop the
/// roles; any other member may change devices (its own account's, or a member's restored
/// devices), not who is in the conversation, and no settings.
pub fn check_commit(
    admins: &[UserId],
    sender: &UserId,
    before: &[UserId],
    after: &[UserId],
    settings: bool,
    roles_kept: bool,
) -> Result<(), &'static str> {
    if !roles_kept {
        return Err("it removes the conversation's roles");
    }
    if admins.contains(sender) {
        return Ok(());
    }
    if settings {
        return Err("only the conversation's admins may change its settings or roles");
    }
    let people = |users: &[UserId]| {
        let mut v = users.to_vec();
        v.sort();
        v.dedup();
        v
    };
    if people(before) != people(after) {
        return Err("only the conversation's admins may add or remove members");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn u(s: &str) -> UserId {
        UserId::parse(s).unwrap()
    }

    #[test]
    fn admins_round_trip_and_bad_bytes_are_refused() {
        let list = vec![u("alice@example.org"), u("bob@example.org")];
        assert_eq!(decode_admins(&encode_admins(&list)), Some(list.clone()));
        assert_eq!(decode_admins(&encode_admins(&[])), Some(vec![]));
        let bytes = encode_admins(&list);
        assert_eq!(decode_admins(&bytes[..bytes.len() - 1]), None);
        assert_eq!(decode_admins(&[bytes.as_slice(), &[0]].concat()), None);
        assert_eq!(decode_admins(&[0, 1, 0, 3, b'n', b'o', b'@']), None);
    }

    #[test]
    fn members_change_devices_admins_change_people_and_settings() {
        let (a, b, c) = (u("alice@example.org"), u("bob@example.org"), u("carol@example.org"));
        let admins = [a.clone()];
        let team = [a.clone(), b.clone(), c.clone()];
        // Bob, a member, replaces his own devices or Carol's restored ones.
        assert_eq!(check_commit(&admins, &b, &team, &[a.clone(), b.clone(), b.clone(), c.clone()], false, true), Ok(()));
        assert!(check_commit(&admins, &b, &team, &[a.clone(), b.clone()], false, true).is_err(), "removes Carol");
        assert!(check_commit(&admins, &b, &team, &[a.clone(), b.clone(), c.clone(), u("d@example.org")], false, true).is_err());
        assert!(check_commit(&admins, &b, &team, &team, true, true).is_err(), "changes the timer");
        // Alice, the admin, may do all of it, but not drop the roles.
        assert_eq!(check_commit(&admins, &a, &team, &[a.clone(), b.clone()], true, true), Ok(()));
        assert!(check_commit(&admins, &a, &team, &team, true, false).is_err());
    }

    #[test]
    fn the_longest_standing_member_is_admin_when_no_listed_admin_is_left() {
        let (a, b, c) = (u("alice@example.org"), u("bob@example.org"), u("carol@example.org"));
        assert_eq!(effective_admins(&[a.clone()], &[a.clone(), b.clone(), c.clone()]), vec![a.clone()]);
        assert_eq!(effective_admins(&[a.clone(), c.clone()], &[b.clone(), c.clone()]), vec![c.clone()]);
        assert_eq!(effective_admins(&[a.clone()], &[c.clone(), b.clone(), c.clone()]), vec![c]);
        assert_eq!(effective_admins(&[a], &[]), Vec::<UserId>::new());
    }
}
