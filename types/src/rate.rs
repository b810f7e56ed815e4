//! A token bucket with time as an argument: the arithmetic of every rate limit (the node's per
//! account, the gateway's per address), shared so both answer alike and tests drive it with a
//! simulated clock.
//!
//! A bucket holds at most `per_minute` tokens and refills continuously at `per_minute` a
//! minute; each request takes one. An empty bucket says how long until the next token.

/// One key's bucket. Starts full.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TokenBucket {
    /// Tokens, in thousandths.
    milli: u64,
    /// When `milli` was last brought up to date (ms; any clock that only moves forward).
    at: u64,
}

impl TokenBucket {
    /// A full bucket of `per_minute` tokens at `now`.
    pub fn full(per_minute: u32, now: u64) -> Self {
        TokenBucket { milli: u64::from(per_minute) * 1000, at: now }
    }

    /// The tokens (thousandths) at `now`.
    fn level(&self, per_minute: u32, now: u64) -> u64 {
        let per_minute = u64::from(per_minute);
        let elapsed = now.saturating_sub(self.at);
        // per_minute * 1000 thousandths per 60_000 ms = per_minute thousandths per 60 ms.
        let gained = elapsed.saturating_mul(per_minute) / 60;
        self.milli.saturating_add(gained).min(per_minute * 1000)
    }

    /// True when the bucket has refilled completely by `now` (its key can be forgotten).
    pub fn is_full(&self, per_minute: u32, now: u64) -> bool {
        self.level(per_minute, now) >= u64::from(per_minute) * 1000
    }

    /// Takes one token at `now`, or says in how many ms one will be there. A rate of zero
    /// allows everything.
    pub fn take(&mut self, per_minute: u32, now: u64) -> Result<(), u64> {
        if per_minute == 0 {
            return Ok(());
        }
        self.milli = self.level(per_minute, now);
        self.at = self.at.max(now);
        if self.milli >= 1000 {
            self.milli -= 1000;
            Ok(())
        } else {
            // One token (1000 thousandths) every 60_000 / per_minute ms.
            let missing = 1000 - self.milli;
            Err((missing * 60_000).div_ceil(u64::from(per_minute) * 1000).max(1))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_then_the_time_to_the_next_token() {
        let mut b = TokenBucket::full(60, 1_000);
        for _ in 0..60 {
            b.take(60, 1_000).unwrap();
        }
        assert_eq!(b.take(60, 1_000), Err(1_000));
        assert_eq!(b.take(60, 1_400), Err(600));
        assert_eq!(b.take(60, 2_000), Ok(()));
        assert!(!b.is_full(60, 2_000));
        assert!(b.is_full(60, 62_000));
    }
}
