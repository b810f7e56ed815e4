//! The message-size limit on a byte stream.
//!
//! A WebSocket has frames, so `--max-message-bytes` caps each one. A WebTransport stream is
//! only bytes; to apply the same limit the gateway follows the Cap'n Proto *stream framing*
//! — the segment table in front of every message (segment count − 1 as a 32-bit
//! little-endian word, then each segment's size in 8-byte words, padded to 8 bytes) — and
//! refuses a message whose table announces more than the limit. It reads those length
//! prefixes and nothing else: the message contents pass uninterpreted.
//!
//! Together with capped reads and QUIC flow control (a session's stream window is the same
//! limit), a browser can make the gateway hold at most that many bytes of its input, and a
//! node never receives a message bigger than that through the gateway.

/// A message announced more bytes than allowed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TooBig {
    /// What its segment table announces (table included), at least.
    pub announced: u64,
}

/// Follows Cap'n Proto stream framing across arbitrary chunks.
#[derive(Clone, Debug)]
pub struct MessageSizeGuard {
    max: u64,
    state: State,
}

#[derive(Clone, Debug)]
enum State {
    /// Reading the 4-byte segment count.
    Count { word: [u8; 4], have: usize },
    /// Reading the segment sizes.
    Table { segments: u64, read: u64, word: [u8; 4], have: usize, body_words: u64 },
    /// Skipping padding and segments.
    Skip { left: u64 },
}

const START: State = State::Count { word: [0; 4], have: 0 };

impl MessageSizeGuard {
    /// A guard refusing messages over `max` bytes.
    pub fn new(max: usize) -> Self {
        MessageSizeGuard { max: max as u64, state: START }
    }

    /// Takes the next bytes of the stream; fails when a message announced in them is over
    /// the limit (the guard is then spent: the session ends).
    pub fn feed(&mut self, mut bytes: &[u8]) -> Result<(), TooBig> {
        while !bytes.is_empty() {
            match &mut self.state {
                State::Count { word, have } => {
                    let n = (4 - *have).min(bytes.len());
                    word[*have..*have + n].copy_from_slice(&bytes[..n]);
                    *have += n;
                    bytes = &bytes[n..];
                    if *have == 4 {
                        let segments = u32::from_le_bytes(*word) as u64 + 1;
                        let table = table_bytes(segments);
                        if table > self.max {
                            return Err(TooBig { announced: table });
                        }
                        self.state = State::Table { segments, read: 0, word: [0; 4], have: 0, body_words: 0 };
                    }
                }
                State::Table { segments, read, word, have, body_words } => {
                    let n = (4 - *have).min(bytes.len());
                    word[*have..*have + n].copy_from_slice(&bytes[..n]);
                    *have += n;
                    bytes = &bytes[n..];
                    if *have < 4 {
                        continue;
                    }
                    *have = 0;
                    *read += 1;
                    *body_words += u32::from_le_bytes(*word) as u64;
                    let total = table_bytes(*segments) + *body_words * 8;
                    if total > self.max {
                        return Err(TooBig { announced: total });
                    }
                    if *read == *segments {
                        // Padding (4 bytes when the table has an odd number of words) and the
                        // segments; the count and sizes are already consumed.
                        let left = table_bytes(*segments) - 4 * (1 + *segments) + *body_words * 8;
                        self.state = if left == 0 { START } else { State::Skip { left } };
                    }
                }
                State::Skip { left } => {
                    let n = (*left).min(bytes.len() as u64);
                    *left -= n;
                    bytes = &bytes[n as usize..];
                    if *left == 0 {
                        self.state = START;
                    }
                }
            }
        }
        Ok(())
    }
}

/// Bytes of a segment table for `segments` segments, padding included.
fn table_bytes(segments: u64) -> u64 {
    (4 * (1 + segments)).div_ceil(8) * 8
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A framed message with segments of the given sizes (in words), filled with `fill`.
    fn message(sizes: &[u32], fill: u8) -> Vec<u8> {
        let mut m = ((sizes.len() - 1) as u32).to_le_bytes().to_vec();
        for s in sizes {
            m.extend(s.to_le_bytes());
        }
        if !m.len().is_multiple_of(8) {
            m.extend([0; 4]);
        }
        let words: u32 = sizes.iter().sum();
        m.extend(std::iter::repeat_n(fill, words as usize * 8));
        m
    }

    #[test]
    fn messages_within_the_limit_pass_in_any_chunking() {
        let mut stream = message(&[3], 0xff);
        stream.extend(message(&[1, 2], 0x01));
        stream.extend(message(&[0, 0, 5], 0x00));
        // 8 + 24, 16 + 24 and 16 + 40 bytes: the largest is 56.
        for chunk in [1, 3, 5, 7, 64, stream.len()] {
            let mut g = MessageSizeGuard::new(56);
            for c in stream.chunks(chunk) {
                g.feed(c).unwrap_or_else(|e| panic!("chunks of {chunk}: {e:?}"));
            }
            assert!(matches!(g.state, State::Count { have: 0, .. }), "ends between messages");
        }
    }

    #[test]
    fn a_message_over_the_limit_is_refused_from_its_table() {
        let mut g = MessageSizeGuard::new(1 << 10);
        g.feed(&message(&[100], 0)).unwrap();
        // Only the table of the next message: 8 + 8 × 200 bytes announced.
        let big = message(&[200], 0);
        assert_eq!(g.feed(&big[..8]), Err(TooBig { announced: 8 + 1600 }));
    }

    #[test]
    fn garbage_counts_as_a_huge_table_not_a_panic() {
        let mut g = MessageSizeGuard::new(4 << 20);
        let e = g.feed(&[0xff; 64]).unwrap_err();
        assert!(e.announced > 4 << 20);
        // Many segments whose sizes add up past the limit, even without overflow.
        let mut g = MessageSizeGuard::new(4 << 20);
        let mut table = 511u32.to_le_bytes().to_vec();
        table.extend(std::iter::repeat_n(0xff, 4 * 512));
        assert!(g.feed(&table).is_err());
    }
}
