//! The cluster's push sender. Every node runs [`run`]; the one that holds the sender role
//! (`Storage::lead_pushes`) claims due pushes under a lease, sends them, and records how
//! each ended: sent (the device is marked notified, so later messages ride on this wake-up
//! until it fetches), gone (404 or 410: the subscription is removed), or a failure worth
//! retrying, with exponential backoff and jitter (honouring `Retry-After`), given up after
//! [`MAX_ATTEMPTS`]. It sleeps until the next push is due or storage announces new
//! envelopes; it never polls faster than that.

use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use futures::stream::{self, StreamExt as _};
use rand::Rng as _;
use tokio::sync::broadcast;

use super::http::{self, PushRequest, PushResponse};
use super::{PushError, PushSettings, Vapid, PADDED_LEN, WAKE_HINT};
use crate::metrics::NodeMetrics;
use crate::storage::{PushJob, PushOutcome, Storage};

/// Pushes claimed at once.
const BATCH: u32 = 64;
/// Pushes in flight at once.
const CONCURRENCY: usize = 8;
/// How long a claim is held: longer than a request may take.
const LEASE: Duration = Duration::from_secs(60);
/// How often a node without the role tries to take it.
const LEAD_RETRY: Duration = Duration::from_secs(5);
/// Longest sleep between looks at the schedule.
const IDLE: Duration = Duration::from_secs(30);
/// Attempts before a push is given up.
pub const MAX_ATTEMPTS: u32 = 8;
/// First retry delay; doubled per attempt up to [`BACKOFF_LAST`].
const BACKOFF_FIRST: Duration = Duration::from_secs(1);
const BACKOFF_LAST: Duration = Duration::from_secs(300);
/// A topic (RFC 8030 §5.4): a waiting push at the push service is replaced, not repeated.
const TOPIC: &str = "qpq-wake";
/// Urgency (RFC 8030 §5.3): a person is waiting for a message.
const URGENCY: &str = "high";

/// Sends the cluster's pushes while this node holds the role; runs until dropped.
pub(crate) async fn run(storage: Arc<dyn Storage>, vapid: Rc<Vapid>, settings: PushSettings, metrics: Arc<NodeMetrics>) {
    let tls = http::tls_config();
    let mut wakeups = storage.wakeups();
    loop {
        let leadership = match storage.lead_pushes().await {
            Ok(Some(l)) => l,
            Ok(None) => {
                tokio::time::sleep(LEAD_RETRY).await;
                continue;
            }
            Err(e) => {
                tracing::warn!(error = %e, "could not take the push sender role; trying again");
                tokio::time::sleep(LEAD_RETRY).await;
                continue;
            }
        };
        tracing::debug!("this node sends the cluster's pushes");
        if let Err(e) = lead(&*storage, &vapid, &settings, &tls, &mut wakeups, &metrics).await {
            tracing::warn!(error = %e, "push sending stopped; starting again");
            tokio::time::sleep(BACKOFF_FIRST).await;
        }
        drop(leadership);
    }
}

/// The sender's loop while it holds the role; returns on a storage failure.
async fn lead(
    storage: &dyn Storage,
    vapid: &Vapid,
    settings: &PushSettings,
    tls: &Arc<rustls::ClientConfig>,
    wakeups: &mut broadcast::Receiver<crate::storage::Wake>,
    metrics: &NodeMetrics,
) -> Result<(), crate::storage::StoreError> {
    loop {
        let now = crate::storage::now_ms();
        let jobs = storage.claim_pushes(now, now + LEASE.as_millis() as u64, BATCH).await?;
        let claimed = jobs.len();
        let outcomes: Vec<(PushJob, PushOutcome)> = stream::iter(jobs)
            .map(|job| async move {
                let outcome = send(&job, vapid, settings, tls).await;
                (job, outcome)
            })
            .buffer_unordered(CONCURRENCY)
            .collect()
            .await;
        for (job, outcome) in &outcomes {
            let name = match outcome {
                PushOutcome::Sent => "sent",
                PushOutcome::Gone => "gone",
                PushOutcome::RetryAt(_) => "retry",
                PushOutcome::GiveUp => "dropped",
            };
            metrics.pushes.with(&[name]).inc();
            storage.finish_push(job, *outcome).await?;
        }
        if claimed == BATCH as usize {
            continue;
        }
        let now = crate::storage::now_ms();
        let wait = match storage.next_push_due().await? {
            Some(due) => Duration::from_millis(due.saturating_sub(now)).min(IDLE),
            None => IDLE,
        };
        if wait.is_zero() {
            continue;
        }
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            // Something was queued: a push may now be waiting (due after the node's delay).
            r = wakeups.recv() => {
                if matches!(r, Err(broadcast::error::RecvError::Closed)) {
                    tokio::time::sleep(wait).await;
                }
            }
        }
    }
}

/// Sends one push and says how it ended.
async fn send(job: &PushJob, vapid: &Vapid, settings: &PushSettings, tls: &Arc<rustls::ClientConfig>) -> PushOutcome {
    let sub = &job.subscription;
    let prepared = (|| -> Result<(Vec<u8>, String), PushError> {
        let body = super::encrypt(&sub.p256dh, &sub.auth, WAKE_HINT, PADDED_LEN, &mut rand::rngs::OsRng)?;
        let authorization = vapid.authorization(&sub.endpoint, crate::storage::now_ms() / 1000)?;
        Ok((body, authorization))
    })();
    let (body, authorization) = match prepared {
        Ok(p) => p,
        Err(e) => {
            tracing::warn!(error = %e, "a push could not be prepared; dropped");
            return PushOutcome::GiveUp;
        }
    };
    let request = PushRequest {
        endpoint: &sub.endpoint,
        authorization: &authorization,
        ttl_secs: settings.ttl_secs,
        urgency: URGENCY,
        topic: TOPIC,
        body: &body,
    };
    let response = http::post(&request, tls, settings.allow_http).await;
    let outcome = outcome(job.attempts, &response, crate::storage::now_ms());
    match (&response, outcome) {
        (Ok(r), PushOutcome::Sent) => tracing::debug!(status = r.status, "push sent"),
        (Ok(r), _) => tracing::info!(status = r.status, attempts = job.attempts + 1, ?outcome, "push refused"),
        (Err(e), _) => tracing::info!(error = %e, attempts = job.attempts + 1, ?outcome, "push failed"),
    }
    outcome
}

/// What to do after a push service's answer (RFC 8030 §5, §6.2, §8.3).
fn outcome(attempts: u32, response: &Result<PushResponse, PushError>, now: u64) -> PushOutcome {
    let retry = |after: Option<Duration>| {
        if attempts + 1 >= MAX_ATTEMPTS {
            return PushOutcome::GiveUp;
        }
        let backoff = BACKOFF_FIRST.saturating_mul(1 << attempts.min(16)).min(BACKOFF_LAST);
        let jitter = Duration::from_millis(rand::thread_rng().gen_range(0..=backoff.as_millis() as u64 / 4));
        let wait = after.unwrap_or(backoff + jitter).min(BACKOFF_LAST * 4);
        PushOutcome::RetryAt(now + wait.as_millis() as u64)
    };
    match response {
        Ok(r) if (200..300).contains(&r.status) => PushOutcome::Sent,
        Ok(r) if r.status == 404 || r.status == 410 => PushOutcome::Gone,
        Ok(r) if r.status == 429 || r.status >= 500 => retry(r.retry_after),
        // 400, 401, 403, 413…: this request will not succeed as it is.
        Ok(_) => PushOutcome::GiveUp,
        Err(PushError::Unreachable(_)) => retry(None),
        Err(_) => PushOutcome::GiveUp,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(status: u16, retry_after: Option<u64>) -> Result<PushResponse, PushError> {
        Ok(PushResponse { status, retry_after: retry_after.map(Duration::from_secs) })
    }

    #[test]
    fn answers_map_to_outcomes_with_backoff() {
        assert_eq!(outcome(0, &answer(201, None), 0), PushOutcome::Sent);
        assert_eq!(outcome(0, &answer(404, None), 0), PushOutcome::Gone);
        assert_eq!(outcome(0, &answer(410, None), 0), PushOutcome::Gone);
        assert_eq!(outcome(0, &answer(400, None), 0), PushOutcome::GiveUp);
        assert_eq!(outcome(0, &answer(429, Some(7)), 1000), PushOutcome::RetryAt(8000));
        let first = match outcome(0, &answer(503, None), 0) {
            PushOutcome::RetryAt(t) => t,
            other => panic!("{other:?}"),
        };
        assert!((1000..=1250).contains(&first), "first retry after about a second, got {first}");
        let later = match outcome(5, &Err(PushError::Unreachable("x")), 0) {
            PushOutcome::RetryAt(t) => t,
            other => panic!("{other:?}"),
        };
        assert!((32_000..=40_000).contains(&later), "doubling backoff, got {later}");
        assert_eq!(outcome(MAX_ATTEMPTS - 1, &answer(503, None), 0), PushOutcome::GiveUp);
    }
}
