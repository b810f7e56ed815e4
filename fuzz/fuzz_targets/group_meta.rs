//! `GroupMeta::decode` on arbitrary bytes (the private group-context extension every Welcome
//! and commit carries): never panics, and whatever decodes survives a round trip.

#![no_main]

use libfuzzer_sys::fuzz_target;
use qpq_core::GroupMeta;

fuzz_target!(init: qpq_fuzz::seeds::write_if_asked(qpq_fuzz::seeds::group_meta), |data: &[u8]| {
    let Ok(m) = GroupMeta::decode(data) else { return };
    let bytes = m.encode();
    let again = GroupMeta::decode(&bytes).expect("re-encoded metadata decodes");
    assert_eq!(again, m);
    assert_eq!(again.encode(), bytes, "encoding is deterministic");
});
