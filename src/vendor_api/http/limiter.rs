//! The token bucket of one provider (its `rateLimit`), paused while a
//! `Retry-After` runs, with a bound on how long one call waits for a slot.

use std::num::NonZeroU32;
use std::sync::Mutex;
use std::time::Duration;

use governor::clock::Clock as _;
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use tokio::time::Instant;

use super::RateLimitConfig;

/// The longest wait for a slot of a provider's own token bucket inside one call.
/// The schema admits rates down to one call per 100 s; a bucket several callers
/// queue on can take longer than that, but never longer than this: the call then
/// fails with [`VendorError::RateLimited`] and its sync is retried later.
const MAX_BUCKET_WAIT: Duration = Duration::from_secs(600);

/// An optional token bucket, and a pause that a 429's `Retry-After` puts on every caller.
pub(super) struct Limiter {
    bucket: Option<DefaultDirectRateLimiter>,
    paused_until: Mutex<Option<Instant>>,
}

impl Limiter {
    /// A limiter for `limit`; `None` when the limit cannot admit a call at all (a
    /// rate that is zero, negative or not a number).
    pub(super) fn new(limit: Option<&RateLimitConfig>) -> Result<Limiter, String> {
        let bucket = match limit {
            None => None,
            Some(limit) => {
                let rate = limit.requests_per_second;
                if !(rate.is_finite() && rate >= MIN_RATE) {
                    return Err(format!(
                        "rateLimit.requestsPerSecond must be at least {MIN_RATE} (got {rate}): a smaller rate never admits a call"
                    ));
                }
                let period = Duration::from_secs_f64(1.0 / rate);
                let burst = NonZeroU32::new(limit.burst.max(1)).unwrap_or(NonZeroU32::MIN);
                let quota = Quota::with_period(period)
                    .unwrap_or_else(|| Quota::per_second(NonZeroU32::MIN))
                    .allow_burst(burst);
                Some(RateLimiter::direct(quota))
            }
        };
        Ok(Limiter {
            bucket,
            paused_until: Mutex::new(None),
        })
    }

    /// Waits for a slot. A pause longer than `max_wait` (or a bucket wait longer
    /// than [`MAX_BUCKET_WAIT`]) is not waited out: its remaining time comes back so
    /// the caller can give up and requeue instead.
    pub(super) async fn acquire(&self, max_wait: Duration) -> Result<(), Duration> {
        loop {
            let paused = *self.paused_until.lock().unwrap_or_else(|e| e.into_inner());
            match paused {
                Some(until) if until > Instant::now() => {
                    let left = until - Instant::now();
                    if left > max_wait {
                        return Err(left);
                    }
                    tokio::time::sleep_until(until).await;
                }
                _ => break,
            }
        }
        if let Some(bucket) = &self.bucket {
            let deadline = Instant::now() + MAX_BUCKET_WAIT;
            loop {
                match bucket.check() {
                    Ok(()) => break,
                    Err(not_until) => {
                        let wait = not_until.wait_time_from(bucket.clock().now());
                        let at = Instant::now() + wait;
                        if at > deadline {
                            return Err(wait);
                        }
                        tokio::time::sleep_until(at).await;
                    }
                }
            }
        }
        Ok(())
    }

    pub(super) fn pause(&self, wait: Duration) {
        let until = Instant::now() + wait;
        let mut paused = self.paused_until.lock().unwrap_or_else(|e| e.into_inner());
        if paused.is_none_or(|current| current < until) {
            *paused = Some(until);
        }
    }
}

/// The smallest rate a provider's `rateLimit` may set (the CRD's minimum too):
/// one call per 100 seconds.
pub const MIN_RATE: f64 = 0.01;
