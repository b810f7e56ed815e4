//! `AppMessage::decode` on arbitrary bytes: never panics, and whatever decodes survives a
//! round trip (re-encoding and decoding gives the same value, and encoding is then stable).

#![no_main]

use libfuzzer_sys::fuzz_target;
use qpq_core::{AppMessage, Body};

fuzz_target!(init: qpq_fuzz::seeds::write_if_asked(qpq_fuzz::seeds::app_message), |data: &[u8]| {
    let Ok(m) = AppMessage::decode(data) else { return };
    let bytes = m.encode();
    let again = AppMessage::decode(&bytes).expect("a re-encoded message decodes");
    // The brief's property exempts kinds this build does not know; for them only the kind
    // and header must survive (they do survive whole today).
    if let Body::Unsupported { kind } = m.body {
        assert_eq!(again.body, Body::Unsupported { kind });
        assert_eq!((again.id, again.sent_at), (m.id, m.sent_at));
    } else {
        assert_eq!(again, m);
    }
    assert_eq!(again.encode(), bytes, "encoding is deterministic");
});
