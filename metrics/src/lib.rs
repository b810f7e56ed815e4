//! Metrics for operating a cluster: counters, gauges and histograms, labelled, rendered in the
//! Prometheus text exposition format (version 0.0.4), and [`http::serve`], the listener that
//! answers `/metrics`, `/livez` and `/readyz` on an operator's address.
//!
//! A [`Registry`] holds families; a family holds one series per label-value combination,
//! created on first use. Every value is an atomic, so a series handle can be kept and updated
//! from any thread without a lock; looking a series up by its label values takes the family's
//! lock once. Label values must come from small fixed sets (method names, error codes,
//! transports): never a user, device or address, which would both leak who talks to whom and
//! grow without bound.

pub mod http;
mod text;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Bucket bounds in seconds for request latencies: 0.5 ms to 10 s.
pub const LATENCY_BUCKETS: &[f64] =
    &[0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];

/// A value that only goes up.
#[derive(Default, Debug)]
pub struct Counter(AtomicU64);

impl Counter {
    /// Adds one.
    pub fn inc(&self) {
        self.add(1);
    }

    /// Adds `n`.
    pub fn add(&self, n: u64) {
        self.0.fetch_add(n, Ordering::Relaxed);
    }

    /// The value now.
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// A value that goes up and down.
#[derive(Default, Debug)]
pub struct Gauge(AtomicI64);

impl Gauge {
    /// Sets the value.
    pub fn set(&self, v: i64) {
        self.0.store(v, Ordering::Relaxed);
    }

    /// Adds `d` (which may be negative).
    pub fn add(&self, d: i64) {
        self.0.fetch_add(d, Ordering::Relaxed);
    }

    /// The value now.
    pub fn get(&self) -> i64 {
        self.0.load(Ordering::Relaxed)
    }

    /// Adds one now and takes it away again when the returned guard is dropped: a gauge of
    /// things alive (sessions, calls in flight).
    pub fn track(self: &Arc<Self>) -> GaugeGuard {
        self.add(1);
        GaugeGuard(self.clone())
    }
}

/// Holds one unit of a [`Gauge`] (see [`Gauge::track`]).
#[derive(Debug)]
pub struct GaugeGuard(Arc<Gauge>);

impl Drop for GaugeGuard {
    fn drop(&mut self) {
        self.0.add(-1);
    }
}

/// Observations counted in cumulative buckets, with their sum and count.
#[derive(Debug)]
pub struct Histogram {
    bounds: &'static [f64],
    /// Per bucket (not cumulative), plus one for +Inf.
    counts: Box<[AtomicU64]>,
    /// The sum, in nanounits (so that it can be an integer atomic).
    sum_nanos: AtomicU64,
}

impl Histogram {
    fn new(bounds: &'static [f64]) -> Self {
        debug_assert!(bounds.windows(2).all(|w| w[0] < w[1]), "bucket bounds ascend");
        Histogram {
            bounds,
            counts: (0..=bounds.len()).map(|_| AtomicU64::new(0)).collect(),
            sum_nanos: AtomicU64::new(0),
        }
    }

    /// Records one observation.
    pub fn observe(&self, v: f64) {
        let v = if v.is_finite() && v > 0.0 { v } else { 0.0 };
        let i = self.bounds.iter().position(|b| v <= *b).unwrap_or(self.bounds.len());
        self.counts[i].fetch_add(1, Ordering::Relaxed);
        self.sum_nanos.fetch_add((v * 1e9) as u64, Ordering::Relaxed);
    }

    /// Records a duration in seconds.
    pub fn observe_duration(&self, d: Duration) {
        self.observe(d.as_secs_f64());
    }

    /// How many observations were made.
    pub fn count(&self) -> u64 {
        self.counts.iter().map(|c| c.load(Ordering::Relaxed)).sum()
    }
}

/// One kind of metric a family can hold.
pub trait Metric: Send + Sync + 'static {
    /// `counter`, `gauge` or `histogram`.
    const KIND: &'static str;
    /// A fresh series.
    fn create(buckets: &'static [f64]) -> Self;
    /// Appends the series' lines for `name` with its labels already rendered (`{a="b"}` or empty).
    fn render(&self, out: &mut String, name: &str, labels: &str);
}

impl Metric for Counter {
    const KIND: &'static str = "counter";
    fn create(_: &'static [f64]) -> Self {
        Counter::default()
    }
    fn render(&self, out: &mut String, name: &str, labels: &str) {
        let _ = writeln!(out, "{name}{labels} {}", self.get());
    }
}

impl Metric for Gauge {
    const KIND: &'static str = "gauge";
    fn create(_: &'static [f64]) -> Self {
        Gauge::default()
    }
    fn render(&self, out: &mut String, name: &str, labels: &str) {
        let _ = writeln!(out, "{name}{labels} {}", self.get());
    }
}

impl Metric for Histogram {
    const KIND: &'static str = "histogram";
    fn create(buckets: &'static [f64]) -> Self {
        Histogram::new(buckets)
    }
    fn render(&self, out: &mut String, name: &str, labels: &str) {
        let mut cumulative = 0u64;
        for (i, c) in self.counts.iter().enumerate() {
            cumulative += c.load(Ordering::Relaxed);
            let le = match self.bounds.get(i) {
                Some(b) => text::number(*b),
                None => "+Inf".to_string(),
            };
            let _ = writeln!(out, "{name}_bucket{} {cumulative}", text::with_label(labels, "le", &le));
        }
        let sum = self.sum_nanos.load(Ordering::Relaxed) as f64 / 1e9;
        let _ = writeln!(out, "{name}_sum{labels} {}", text::number(sum));
        let _ = writeln!(out, "{name}_count{labels} {cumulative}");
    }
}

/// A named metric with a fixed list of label names and one series per label-value combination.
pub struct Family<M: Metric> {
    name: &'static str,
    help: &'static str,
    labels: &'static [&'static str],
    buckets: &'static [f64],
    /// Keyed by the label values joined with U+001F, which no label value holds.
    series: Mutex<BTreeMap<String, Series<M>>>,
}

/// One series of a family: its label values and the metric.
type Series<M> = (Vec<String>, Arc<M>);

impl<M: Metric> Family<M> {
    /// The series for these label values (as many as the family has label names), created at
    /// zero on first use.
    pub fn with(&self, values: &[&str]) -> Arc<M> {
        assert_eq!(values.len(), self.labels.len(), "{}: label values must match the label names", self.name);
        let key = values.join("\u{1f}");
        let mut series = self.series.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((_, m)) = series.get(&key) {
            return m.clone();
        }
        let m = Arc::new(M::create(self.buckets));
        series.insert(key, (values.iter().map(|v| v.to_string()).collect(), m.clone()));
        m
    }
}

/// Renders itself into the exposition text.
trait Render: Send + Sync {
    fn render(&self, out: &mut String);
}

impl<M: Metric> Render for Family<M> {
    fn render(&self, out: &mut String) {
        let _ = writeln!(out, "# HELP {} {}", self.name, text::help(self.help));
        let _ = writeln!(out, "# TYPE {} {}", self.name, M::KIND);
        let series = self.series.lock().unwrap_or_else(|p| p.into_inner());
        for (values, m) in series.values() {
            m.render(out, self.name, &text::labels(self.labels, values));
        }
    }
}

/// Every metric of one process part (a node, a gateway).
#[derive(Default)]
pub struct Registry {
    families: Mutex<Vec<Arc<dyn Render>>>,
}

impl Registry {
    /// A new, empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    fn family<M: Metric>(
        &self,
        name: &'static str,
        help: &'static str,
        labels: &'static [&'static str],
        buckets: &'static [f64],
    ) -> Arc<Family<M>> {
        assert!(text::valid_name(name), "metric name {name:?}");
        assert!(labels.iter().all(|l| text::valid_name(l) && *l != "le"), "label names of {name}");
        let f = Arc::new(Family { name, help, labels, buckets, series: Mutex::new(BTreeMap::new()) });
        self.families.lock().unwrap_or_else(|p| p.into_inner()).push(f.clone());
        f
    }

    /// A counter family.
    pub fn counters(&self, name: &'static str, help: &'static str, labels: &'static [&'static str]) -> Arc<Family<Counter>> {
        self.family(name, help, labels, &[])
    }

    /// A gauge family.
    pub fn gauges(&self, name: &'static str, help: &'static str, labels: &'static [&'static str]) -> Arc<Family<Gauge>> {
        self.family(name, help, labels, &[])
    }

    /// A histogram family with these bucket bounds.
    pub fn histograms(
        &self,
        name: &'static str,
        help: &'static str,
        labels: &'static [&'static str],
        buckets: &'static [f64],
    ) -> Arc<Family<Histogram>> {
        self.family(name, help, labels, buckets)
    }

    /// A single counter without labels.
    pub fn counter(&self, name: &'static str, help: &'static str) -> Arc<Counter> {
        self.counters(name, help, &[]).with(&[])
    }

    /// A single gauge without labels.
    pub fn gauge(&self, name: &'static str, help: &'static str) -> Arc<Gauge> {
        self.gauges(name, help, &[]).with(&[])
    }

    /// The exposition text of every family, in registration order.
    pub fn render(&self) -> String {
        let mut out = String::new();
        for f in self.families.lock().unwrap_or_else(|p| p.into_inner()).iter() {
            f.render(&mut out);
        }
        out
    }
}

/// The content type of [`Registry::render`]'s text.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_gauges_and_histograms() {
        let r = Registry::new();
        let calls = r.counters("qpq_calls_total", "Calls served.", &["method", "outcome"]);
        calls.with(&["send", "ok"]).add(3);
        calls.with(&["send", "rate_limited"]).inc();
        let sessions = r.gauge("qpq_sessions", "Sessions open.");
        let held = Arc::new(Gauge::default());
        drop(held.track());
        sessions.set(7);
        let latency = r.histograms("qpq_latency_seconds", "Latency.", &["method"], &[0.01, 0.1]);
        let h = latency.with(&["send"]);
        h.observe(0.005);
        h.observe(0.05);
        h.observe(3.0);
        let text = r.render();
        let expected = "\
# HELP qpq_calls_total Calls served.
# TYPE qpq_calls_total counter
qpq_calls_total{method=\"send\",outcome=\"ok\"} 3
qpq_calls_total{method=\"send\",outcome=\"rate_limited\"} 1
# HELP qpq_sessions Sessions open.
# TYPE qpq_sessions gauge
qpq_sessions 7
# HELP qpq_latency_seconds Latency.
# TYPE qpq_latency_seconds histogram
qpq_latency_seconds_bucket{method=\"send\",le=\"0.01\"} 1
qpq_latency_seconds_bucket{method=\"send\",le=\"0.1\"} 2
qpq_latency_seconds_bucket{method=\"send\",le=\"+Inf\"} 3
qpq_latency_seconds_sum{method=\"send\"} 3.055
qpq_latency_seconds_count{method=\"send\"} 3
";
        assert_eq!(text, expected);
        assert_eq!(held.get(), 0, "the guard gave its unit back");
        assert_eq!(h.count(), 3);
    }

    #[test]
    fn label_values_are_escaped() {
        let r = Registry::new();
        r.counters("qpq_x_total", "Help with \\ and\nnewline.", &["v"]).with(&["a\"b\\c\nd"]).inc();
        let text = r.render();
        assert!(text.contains("# HELP qpq_x_total Help with \\\\ and\\nnewline.\n"), "{text}");
        assert!(text.contains("qpq_x_total{v=\"a\\\"b\\\\c\\nd\"} 1\n"), "{text}");
    }

    #[test]
    #[should_panic(expected = "label values must match")]
    fn wrong_number_of_label_values_is_a_bug() {
        Registry::new().counters("qpq_y_total", "y", &["a"]).with(&[]);
    }

    #[test]
    fn negative_and_odd_observations_count_as_zero() {
        let h = Histogram::new(&[1.0]);
        h.observe(-1.0);
        h.observe(f64::NAN);
        let mut out = String::new();
        h.render(&mut out, "h", "");
        assert_eq!(out, "h_bucket{le=\"1\"} 2\nh_bucket{le=\"+Inf\"} 2\nh_sum 0\nh_count 2\n");
    }
}
