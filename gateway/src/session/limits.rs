//! Admission of sessions: at most so many at once in total and per client IP address (for
//! IPv6, per /64 network: one subscriber usually holds a whole /64), and at most so many new
//! ones a minute per address (a [`TokenBucket`] per address, time as an argument).
//!
//! A [`SessionPermit`] is taken before the WebSocket upgrade (so a refusal is a plain HTTP
//! status) and held by the session until it ends; dropping it frees the slot. Permits also
//! carry a [`TaskTracker`] token, so a shutdown can wait for every session to finish.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use qpq_types::TokenBucket;

use tokio::sync::watch;
use tokio_util::task::task_tracker::TaskTrackerToken;
use tokio_util::task::TaskTracker;

/// Why a session was not admitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum LimitRefusal {
    /// The gateway has as many sessions as it allows.
    #[error("the gateway is full; try again shortly")]
    Full,
    /// This address has as many sessions as one address may have.
    #[error("too many sessions from your address; close some and try again")]
    TooManyFromAddress,
    /// This address opened as many sessions as it may in a minute.
    #[error("too many new sessions from your address; retry after {retry_after_ms} ms")]
    RateLimited {
        /// When the next session will be admitted.
        retry_after_ms: u64,
    },
}

/// Beyond this many addresses, those whose buckets refilled are forgotten.
const MAX_RATE_KEYS: usize = 100_000;

struct Counts {
    total: usize,
    by_ip: HashMap<IpAddr, usize>,
    /// `total`, for whoever watches it.
    watch: watch::Sender<usize>,
}

/// Counts sessions and admits new ones within the limits.
#[derive(Clone)]
pub struct SessionLimiter {
    max_total: usize,
    max_per_ip: usize,
    counts: Arc<Mutex<Counts>>,
    tracker: TaskTracker,
    /// New sessions per minute per address (0: unlimited).
    opens_per_min: u32,
    opens: Arc<Mutex<HashMap<IpAddr, TokenBucket>>>,
    /// The clock's zero: admission times are ms since then.
    epoch: Instant,
}

impl SessionLimiter {
    /// A limiter allowing `max_total` sessions, `max_per_ip` from one address.
    pub fn new(max_total: usize, max_per_ip: usize) -> Self {
        let counts = Counts { total: 0, by_ip: HashMap::new(), watch: watch::channel(0).0 };
        SessionLimiter {
            max_total,
            max_per_ip,
            counts: Arc::new(Mutex::new(counts)),
            tracker: TaskTracker::new(),
            opens_per_min: 0,
            opens: Arc::default(),
            epoch: Instant::now(),
        }
    }

    /// Also limits new sessions to `per_min` a minute per address (0: unlimited).
    pub fn with_rate(mut self, per_min: u32) -> Self {
        self.opens_per_min = per_min;
        self
    }

    /// Admits a session from `ip`, or says why not.
    pub fn admit(&self, ip: IpAddr) -> Result<SessionPermit, LimitRefusal> {
        let now = self.epoch.elapsed().as_millis() as u64;
        self.admit_at(ip, now)
    }

    /// Admits a session from `ip` at `now` (ms on any clock that only moves forward), or says
    /// why not.
    pub fn admit_at(&self, ip: IpAddr, now: u64) -> Result<SessionPermit, LimitRefusal> {
        let ip = bucket(ip);
        if self.opens_per_min > 0 {
            let mut opens = self.opens.lock().unwrap_or_else(|e| e.into_inner());
            if opens.len() >= MAX_RATE_KEYS && !opens.contains_key(&ip) {
                opens.retain(|_, b| !b.is_full(self.opens_per_min, now));
            }
            let b = opens.entry(ip).or_insert_with(|| TokenBucket::full(self.opens_per_min, now));
            b.take(self.opens_per_min, now).map_err(|retry_after_ms| LimitRefusal::RateLimited { retry_after_ms })?;
        }
        let mut c = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        if c.total >= self.max_total {
            return Err(LimitRefusal::Full);
        }
        let n = c.by_ip.entry(ip).or_insert(0);
        if *n >= self.max_per_ip {
            return Err(LimitRefusal::TooManyFromAddress);
        }
        *n += 1;
        c.total += 1;
        c.watch.send_replace(c.total);
        Ok(SessionPermit { ip, counts: self.counts.clone(), _token: self.tracker.token(), alive: None })
    }

    /// Sessions open now.
    pub fn active(&self) -> usize {
        self.counts.lock().unwrap_or_else(|e| e.into_inner()).total
    }

    /// The number of sessions open, as it changes (for monitoring, and for tests to wait on).
    pub fn watch(&self) -> watch::Receiver<usize> {
        self.counts.lock().unwrap_or_else(|e| e.into_inner()).watch.subscribe()
    }

    /// Waits until every permit handed out has been dropped. New permits may still be taken
    /// meanwhile; callers stop admitting first.
    pub async fn drained(&self) {
        self.tracker.close();
        self.tracker.wait().await;
    }
}

/// What sessions are counted under: an IPv4 address, or an IPv6 address's /64 network.
fn bucket(ip: IpAddr) -> IpAddr {
    match ip.to_canonical() {
        IpAddr::V6(v6) => {
            let s = v6.segments();
            IpAddr::V6(Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
        }
        v4 => v4,
    }
}

/// One admitted session; frees its slot when dropped.
pub struct SessionPermit {
    ip: IpAddr,
    counts: Arc<Mutex<Counts>>,
    _token: TaskTrackerToken,
    /// Counts the session in a gauge of its transport while it lives.
    alive: Option<qpq_metrics::GaugeGuard>,
}

impl SessionPermit {
    /// Counts this session in `gauge` until the permit is dropped.
    pub fn count_in(&mut self, gauge: &Arc<qpq_metrics::Gauge>) {
        self.alive = Some(gauge.track());
    }
}

impl Drop for SessionPermit {
    fn drop(&mut self) {
        let mut c = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        c.total -= 1;
        c.watch.send_replace(c.total);
        if let Some(n) = c.by_ip.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                c.by_ip.remove(&self.ip);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_apply_per_address_and_in_total_and_free_on_drop() {
        let l = SessionLimiter::new(3, 2);
        let (a, b): (IpAddr, IpAddr) = ("10.0.0.1".parse().unwrap(), "10.0.0.2".parse().unwrap());
        let a1 = l.admit(a).unwrap();
        let _a2 = l.admit(a).unwrap();
        assert_eq!(l.admit(a).err(), Some(LimitRefusal::TooManyFromAddress));
        let _b1 = l.admit(b).unwrap();
        assert_eq!(l.admit(b).err(), Some(LimitRefusal::Full));
        assert_eq!(l.active(), 3);
        drop(a1);
        assert_eq!(l.active(), 2);
        assert!(l.admit(a).is_ok(), "a freed slot is reusable");
    }

    #[test]
    fn ipv6_addresses_count_per_64_network() {
        let l = SessionLimiter::new(10, 1);
        let _a = l.admit("2001:db8:1:2::1".parse().unwrap()).unwrap();
        let same_net = l.admit("2001:db8:1:2:ffff::7".parse().unwrap());
        assert_eq!(same_net.err(), Some(LimitRefusal::TooManyFromAddress));
        assert!(l.admit("2001:db8:1:3::1".parse().unwrap()).is_ok(), "another /64");
        let _v4 = l.admit("192.0.2.1".parse().unwrap()).unwrap();
        assert_eq!(l.admit("::ffff:192.0.2.1".parse().unwrap()).err(), Some(LimitRefusal::TooManyFromAddress));
    }

    #[test]
    fn new_sessions_per_address_are_rate_limited_on_a_simulated_clock() {
        let l = SessionLimiter::new(1000, 1000).with_rate(6); // one every 10 s, 6 saved up
        let (a, b): (IpAddr, IpAddr) = ("10.0.0.1".parse().unwrap(), "10.0.0.2".parse().unwrap());
        let mut held = Vec::new();
        for _ in 0..6 {
            held.push(l.admit_at(a, 0).unwrap());
        }
        assert_eq!(l.admit_at(a, 0).err(), Some(LimitRefusal::RateLimited { retry_after_ms: 10_000 }));
        assert_eq!(l.admit_at(a, 4_000).err(), Some(LimitRefusal::RateLimited { retry_after_ms: 6_000 }));
        let _b = l.admit_at(b, 4_000).expect("another address has its own bucket");
        drop(held);
        assert!(l.admit_at(a, 4_000).is_err(), "closing sessions does not refill the rate");
        let _a = l.admit_at(a, 10_000).expect("time does");
        assert_eq!(l.active(), 2);
    }

    #[tokio::test]
    async fn drained_waits_for_the_last_permit() {
        let l = SessionLimiter::new(10, 10);
        let p = l.admit("10.0.0.1".parse().unwrap()).unwrap();
        let l2 = l.clone();
        let waiter = tokio::spawn(async move { l2.drained().await });
        tokio::task::yield_now().await;
        assert!(!waiter.is_finished());
        drop(p);
        waiter.await.unwrap();
        assert_eq!(l.active(), 0);
    }
}
