//! Base64url (RFC 4648 §5) as the Push API spells keys: `PushSubscription.toJSON().keys` and
//! the `applicationServerKey` a page subscribes with. Unpadded out; padding and the standard
//! alphabet accepted in. Kept apart from `api/` so it is tested natively.

/// Decodes base64url (or standard base64), padding optional; `None` on any other character.
pub fn decode(text: &str) -> Option<Vec<u8>> {
    let mut bits: u32 = 0;
    let mut count = 0;
    let mut out = Vec::with_capacity(text.len() * 3 / 4);
    for c in text.trim_end_matches('=').bytes() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'-' | b'+' => 62,
            b'_' | b'/' => 63,
            _ => return None,
        };
        bits = (bits << 6) | u32::from(v);
        count += 6;
        if count >= 8 {
            count -= 8;
            out.push((bits >> count) as u8);
        }
    }
    Some(out)
}

/// Encodes as unpadded base64url.
pub fn encode(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let n = chunk.iter().enumerate().fold(0u32, |acc, (i, b)| acc | (u32::from(*b) << (16 - 8 * i)));
        for i in 0..=chunk.len() {
            out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
        }
    }
    out
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
