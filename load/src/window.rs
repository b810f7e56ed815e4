//! The measurement window both paths share: a warm-up, then a timed span in which latencies
//! are recorded, then a stop that lets what is in flight finish. Rates are counts taken at the
//! window's two edges, divided by its length.

use std::cell::{Cell, RefCell};
use std::time::{Duration, Instant};

/// Whether senders go on, and whether what they finish now counts.
#[derive(Default)]
pub struct Window {
    measuring: Cell<bool>,
    stopped: Cell<bool>,
    latencies_us: RefCell<Vec<u32>>,
}

impl Window {
    /// True once the senders should take no new message.
    pub fn stopped(&self) -> bool {
        self.stopped.get()
    }

    /// Records one round trip that started at `started`, if the window is open.
    pub fn record(&self, started: Instant) {
        if self.measuring.get() {
            let us = started.elapsed().as_micros().min(u128::from(u32::MAX)) as u32;
            self.latencies_us.borrow_mut().push(us);
        }
    }

    /// Sleeps through the warm-up and the window, calling `count` at the window's edges;
    /// returns the two counts and the window's exact length. Senders are stopped at the end.
    pub async fn run<T>(&self, warmup: Duration, span: Duration, mut count: impl FnMut() -> T) -> (T, T, f64) {
        tokio::time::sleep(warmup).await;
        let first = count();
        let t = Instant::now();
        self.measuring.set(true);
        tokio::time::sleep(span).await;
        self.measuring.set(false);
        let second = count();
        let secs = t.elapsed().as_secs_f64();
        self.stopped.set(true);
        (first, second, secs)
    }

    /// The recorded round trips.
    pub fn latencies(&self) -> Latencies {
        Latencies::from_micros(std::mem::take(&mut *self.latencies_us.borrow_mut()))
    }
}

/// Round-trip percentiles, in milliseconds.
#[derive(Clone, Copy, Debug, Default)]
pub struct Latencies {
    /// Median.
    pub p50: f64,
    /// 90th percentile.
    pub p90: f64,
    /// 99th percentile.
    pub p99: f64,
    /// Slowest.
    pub max: f64,
}

impl Latencies {
    fn from_micros(mut v: Vec<u32>) -> Latencies {
        if v.is_empty() {
            return Latencies::default();
        }
        v.sort_unstable();
        let at = |q: f64| f64::from(v[((v.len() - 1) as f64 * q).round() as usize]) / 1000.0;
        Latencies { p50: at(0.5), p90: at(0.9), p99: at(0.99), max: at(1.0) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_pick_from_the_sorted_samples() {
        let l = Latencies::from_micros((1..=100).rev().map(|ms| ms * 1000).collect());
        assert_eq!((l.p50, l.p90, l.p99, l.max), (51.0, 90.0, 99.0, 100.0));
        assert_eq!(Latencies::from_micros(vec![]).max, 0.0);
    }
}
