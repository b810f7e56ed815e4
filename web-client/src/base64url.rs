//! Base64url (RFC 4648 §5) as the Push API spells keys: `PushSubscription.toJSON().keys` and
//! the `applicationServerKey` a page subscribes with. Unpadded out; padding and the standard
//! alphabet accepted in. Kept apart from `api/` so it is tested natively.

use base64::alphabet::URL_SAFE;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig, URL_SAFE_NO_PAD};
use base64::engine::DecodePaddingMode;
use base64::Engine as _;

/// base64url with or without padding, for reading.
const LENIENT: GeneralPurpose =
    GeneralPurpose::new(&URL_SAFE, GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent));

/// Decodes base64url (or standard base64), padding optional; `None` on any other character.
pub fn decode(text: &str) -> Option<Vec<u8>> {
    let url: String = text.chars().map(|c| if c == '+' { '-' } else if c == '/' { '_' } else { c }).collect();
    LENIENT.decode(url).ok()
}

/// Encodes as unpadded base64url.
pub fn encode(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_reads_push_keys() {
        for len in 0..70u8 {
            let bytes: Vec<u8> = (0..len).map(|i| i.wrapping_mul(37).wrapping_add(len)).collect();
            let text = encode(&bytes);
            assert!(!text.contains(['=', '+', '/']));
            assert_eq!(decode(&text), Some(bytes));
        }
        // RFC 8291 Appendix A's auth secret and user-agent key, as a browser gives them.
        assert_eq!(decode("BTBZMqHH6r4Tts7J_aSIgg").map(|v| v.len()), Some(16));
        let ua = decode("BCVxsr7N_eNgVRqvHtD0zTZsEc6-VV-JvLexhqUzORcxaOzi6-AYWXvTBHm4bjyPjs7Vd8pZGH6SRpkNtoIAiw4");
        assert_eq!(ua.as_ref().map(|v| (v.len(), v[0])), Some((65, 4)));
        assert_eq!(decode("AQ=="), Some(vec![1]));
        assert_eq!(decode("not base64!"), None);
    }
}
