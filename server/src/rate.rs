//! Rate limits: token buckets ([`TokenBucket`], shared with the gateway) keyed by account (or
//! one for the whole node), with time as an argument so tests drive them with a simulated
//! clock.
//!
//! A bucket holds at most `per_minute` tokens and refills continuously at `per_minute` a
//! minute; each request takes one. An empty bucket answers how long until the next token,
//! which the caller sends as `rate_limited: … retry after N ms`. Buckets live in this node's
//! memory only: on a cluster each node limits what it serves (a client on several nodes at
//! once gets the limit once per node).

use std::cell::RefCell;
use std::collections::HashMap;
use std::hash::Hash;

use qpq_proto::UserId;
use qpq_proto::TokenBucket;

/// Beyond this many keys, full buckets (keys idle for a minute or more) are forgotten.
const MAX_KEYS: usize = 100_000;

/// The node's rate limits, per minute.
#[derive(clap::Args, Clone, Debug)]
pub struct RateConfig {
    /// Registrations accepted per minute by this node (all addresses together: browsers
    /// reach it through a gateway, which limits per address).
    #[arg(long, env = "QPQ_RATE_REGISTRATIONS_PER_MIN", default_value_t = 60)]
    pub registrations_per_min: u32,

    /// Logins per minute per account.
    #[arg(long, env = "QPQ_RATE_LOGINS_PER_MIN", default_value_t = 30)]
    pub logins_per_min: u32,

    /// Key-package claims per minute per account (one claim covers all of a user's devices).
    #[arg(long, env = "QPQ_RATE_CLAIMS_PER_MIN", default_value_t = 300)]
    pub claims_per_min: u32,

    /// Messages and commits sent per minute per account.
    #[arg(long, env = "QPQ_RATE_SENDS_PER_MIN", default_value_t = 1200)]
    pub sends_per_min: u32,

    /// Link codes opened per minute per account (linking a device; at most three are open
    /// at once anyway).
    #[arg(long, env = "QPQ_RATE_LINKS_PER_MIN", default_value_t = 10)]
    pub links_per_min: u32,

    /// Blocks and unblocks per minute per account.
    #[arg(long, env = "QPQ_RATE_BLOCKS_PER_MIN", default_value_t = 60)]
    pub blocks_per_min: u32,

    /// Link requests (a new device handing in a link code) accepted per minute by this node,
    /// all callers together: they come before any login.
    #[arg(long, env = "QPQ_RATE_LINK_REQUESTS_PER_MIN", default_value_t = 120)]
    pub link_requests_per_min: u32,
}

/// Token buckets keyed by `K` (see [`TokenBucket`]).
pub struct RateLimiter<K> {
    per_minute: u32,
    buckets: RefCell<HashMap<K, TokenBucket>>,
}

impl<K: Hash + Eq + Clone> RateLimiter<K> {
    /// A limiter allowing `per_minute` requests a minute per key, all at once if saved up.
    /// Zero turns the limit off.
    pub fn new(per_minute: u32) -> Self {
        RateLimiter { per_minute, buckets: RefCell::new(HashMap::new()) }
    }

    /// Takes one token for `key` at `now` (ms), or says in how many ms one will be there.
    pub fn take(&self, key: &K, now: u64) -> Result<(), u64> {
        if self.per_minute == 0 {
            return Ok(());
        }
        let mut buckets = self.buckets.borrow_mut();
        if buckets.len() >= MAX_KEYS && !buckets.contains_key(key) {
            buckets.retain(|_, b| !b.is_full(self.per_minute, now));
        }
        buckets.entry(key.clone()).or_insert_with(|| TokenBucket::full(self.per_minute, now)).take(self.per_minute, now)
    }

    /// How many keys are remembered (for tests of the memory bound).
    pub fn keys(&self) -> usize {
        self.buckets.borrow().len()
    }
}

/// The limits a node applies.
pub(crate) struct NodeRates {
    registrations: RateLimiter<()>,
    logins: RateLimiter<UserId>,
    claims: RateLimiter<UserId>,
    sends: RateLimiter<UserId>,
    links: RateLimiter<UserId>,
    link_requests: RateLimiter<()>,
    blocks: RateLimiter<UserId>,
}

impl NodeRates {
    pub fn new(c: &RateConfig) -> Self {
        NodeRates {
            registrations: RateLimiter::new(c.registrations_per_min),
            logins: RateLimiter::new(c.logins_per_min),
            claims: RateLimiter::new(c.claims_per_min),
            sends: RateLimiter::new(c.sends_per_min),
            links: RateLimiter::new(c.links_per_min),
            link_requests: RateLimiter::new(c.link_requests_per_min),
            blocks: RateLimiter::new(c.blocks_per_min),
        }
    }

    pub fn registration(&self, now: u64) -> Result<(), u64> {
        self.registrations.take(&(), now)
    }

    pub fn login(&self, user: &UserId, now: u64) -> Result<(), u64> {
        self.logins.take(user, now)
    }

    pub fn claim(&self, user: &UserId, now: u64) -> Result<(), u64> {
        self.claims.take(user, now)
    }

    pub fn send(&self, user: &UserId, now: u64) -> Result<(), u64> {
        self.sends.take(user, now)
    }

    /// Takes one of the account's link-code openings.
    pub fn open_link(&self, user: &UserId, now: u64) -> Result<(), u64> {
        self.links.take(user, now)
    }

    /// Takes one of the node's link requests (unauthenticated, so node-wide).
    pub fn link_request(&self, now: u64) -> Result<(), u64> {
        self.link_requests.take(&(), now)
    }

    /// Takes one of the account's blocks or unblocks.
    pub fn block(&self, user: &UserId, now: u64) -> Result<(), u64> {
        self.blocks.take(user, now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A simulated clock: milliseconds that only move when the test says so.
    struct Clock(u64);

    impl Clock {
        fn advance(&mut self, ms: u64) -> u64 {
            self.0 += ms;
            self.0
        }
    }

    #[test]
    fn a_burst_is_allowed_then_refused_with_the_time_to_the_next_token() {
        let mut clock = Clock(1_000_000);
        let limiter = RateLimiter::new(60); // one a second, 60 saved up
        for i in 0..60 {
            assert_eq!(limiter.take(&"alice", clock.0), Ok(()), "request {i} of the burst");
        }
        assert_eq!(limiter.take(&"alice", clock.0), Err(1000), "the 61st waits a whole second");
        assert_eq!(limiter.take(&"alice", clock.advance(400)), Err(600), "and less as time passes");
        assert_eq!(limiter.take(&"alice", clock.advance(600)), Ok(()), "one token a second comes back");
        assert!(limiter.take(&"alice", clock.0).is_err());
        // Other keys have their own buckets.
        assert_eq!(limiter.take(&"bob", clock.0), Ok(()));
    }

    #[test]
    fn buckets_refill_to_their_size_and_no_more() {
        let mut clock = Clock(0);
        let limiter = RateLimiter::new(6); // one every 10 s
        for _ in 0..6 {
            limiter.take(&1u8, clock.0).unwrap();
        }
        assert_eq!(limiter.take(&1u8, clock.0), Err(10_000));
        clock.advance(3_600_000); // an hour idle
        let granted = (0..100).filter(|_| limiter.take(&1u8, clock.0).is_ok()).count();
        assert_eq!(granted, 6, "an idle hour saves up one burst, not 360 requests");
    }

    #[test]
    fn a_steady_flood_gets_exactly_the_rate() {
        let mut clock = Clock(5);
        let limiter = RateLimiter::new(120); // two a second
        let mut granted = 0;
        // Ten requests every 100 ms for one simulated minute, after the burst is spent.
        for _ in 0..120 {
            limiter.take(&(), clock.0).unwrap();
        }
        for _ in 0..600 {
            clock.advance(100);
            granted += (0..10).filter(|_| limiter.take(&(), clock.0).is_ok()).count();
        }
        assert_eq!(granted, 120, "a minute of flooding gets 120 through");
    }

    #[test]
    fn zero_means_unlimited_and_time_going_backwards_does_not_panic() {
        let limiter = RateLimiter::new(0);
        assert!((0..10_000).all(|_| limiter.take(&(), 0).is_ok()));
        let limiter = RateLimiter::new(1);
        limiter.take(&(), 10_000).unwrap();
        assert_eq!(limiter.take(&(), 5_000), Err(60_000));
    }

    #[test]
    fn idle_keys_are_forgotten_when_there_are_too_many() {
        let mut clock = Clock(0);
        let limiter = RateLimiter::new(60);
        for k in 0..MAX_KEYS as u32 {
            limiter.take(&k, clock.0).unwrap();
        }
        assert_eq!(limiter.keys(), MAX_KEYS);
        clock.advance(60_000);
        limiter.take(&u32::MAX, clock.0).unwrap();
        assert_eq!(limiter.keys(), 1, "keys whose buckets refilled are dropped");
    }
}
