//! The one HTTP client every vendor uses.
//!
//! Per request: a per-provider token bucket (paused while a `Retry-After` is
//! running), a timeout, retries with exponential backoff ([`backoff_delay`], the
//! same formula as the reconcile queue's) and `Retry-After` honoured on 429 (up
//! to a bound; longer waits are handed back to the controller), a cap on the
//! body read, and one metric sample per attempt. Bodies and headers are never
//! logged: they may carry credentials.
//!
//! Whether a failed request is sent again depends on the call ([`Repeat`]):
//! a 429 or a refused connection means the vendor never carried the request
//! out, so any call is sent again. A 5xx answer means the vendor is done with
//! the request, but may have carried it out: a write that is the same when
//! repeated (idempotent) is sent again, any other is not. No answer at all (a
//! timeout, a connection lost mid-request) means the vendor may still be
//! carrying it out, at any later time: only reads are sent again; a write's
//! error goes back to the sync, which fences its target until such a request
//! can no longer land (see `controller::grant`), so that no later write is
//! overtaken by it. Each vendor client decides per call, with its reason.

use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use governor::clock::Clock as _;
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use reqwest::{RequestBuilder, StatusCode};
use serde::de::DeserializeOwned;
use tokio::time::Instant;
use tracing::{debug, warn};

use crate::api::VendorKind;
use crate::metrics::Metrics;

use super::VendorError;

/// Largest response body read (vendor listings are paged well below this).
const MAX_BODY: usize = 32 * 1024 * 1024;

/// How requests are retried.
#[derive(Clone, Debug)]
pub struct RetryPolicy {
    /// Tries in all, the first included.
    pub attempts: u32,
    /// Backoff ceiling of the first retry; doubles each retry.
    pub base: Duration,
    /// Backoff ceiling.
    pub max: Duration,
    /// The longest `Retry-After` waited inside one call; longer ones fail the call
    /// with [`VendorError::RateLimited`] so the controller requeues instead.
    pub max_retry_after: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            attempts: 5,
            base: Duration::from_millis(200),
            max: Duration::from_secs(10),
            max_retry_after: Duration::from_secs(30),
        }
    }
}

/// Whether a request may be sent again when its outcome is unknown.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Repeat {
    /// A read (or a request whose late effect harms nothing, such as asking for
    /// a token): retried after 5xx answers, timeouts and lost connections too.
    Read,
    /// A write with the same effect when repeated (setting a level, granting what
    /// is held, revoking what is gone): retried after a 5xx answer, never after
    /// no answer (it may still land later, after the repeat and after whatever
    /// the sync does next).
    Idempotent,
    /// A write that could do something else when repeated (create a second
    /// entry; replace a list with one computed from an older read): sent again
    /// only when the vendor surely did not carry it out (429, connection refused).
    OnlyIfNotCarriedOut,
}

/// The wait before retry number `attempt` (1 for the first retry): "equal
/// jitter", a random wait between half and all of `base * 2^(attempt-1)`, capped
/// at `max`. The lower half keeps retries from bunching up at zero; the random
/// upper half spreads callers that failed together. The vendor retries and the
/// reconcile queue's backoff both use it.
pub fn backoff_delay(base: Duration, max: Duration, attempt: u32) -> Duration {
    let ceiling = base
        .saturating_mul(2u32.saturating_pow(attempt.saturating_sub(1).min(30)))
        .min(max);
    let millis = ceiling.as_millis().max(1) as u64;
    Duration::from_millis(rand::random_range(millis.div_ceil(2)..=millis))
}

/// The longest wait for a slot of a provider's own token bucket inside one call.
/// The schema admits rates down to one call per 100 s; a bucket several callers
/// queue on can take longer than that, but never longer than this: the call then
/// fails with [`VendorError::RateLimited`] and its sync is retried later.
const MAX_BUCKET_WAIT: Duration = Duration::from_secs(600);

/// A client-side rate limit.
#[derive(Clone, Debug, PartialEq)]
pub struct RateLimitConfig {
    /// Sustained requests per second.
    pub requests_per_second: f64,
    /// Requests allowed at once after a quiet period.
    pub burst: u32,
}

/// Settings of one provider's client.
#[derive(Clone, Debug)]
pub struct HttpConfig {
    /// Timeout of one attempt.
    pub timeout: Duration,
    /// Client-side limit; `None` leaves the pace to the vendor (429 and `Retry-After`).
    pub rate_limit: Option<RateLimitConfig>,
    /// PEM bundle of extra trusted CAs.
    pub ca_pem: Option<Vec<u8>>,
    /// Retries.
    pub retry: RetryPolicy,
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            timeout: Duration::from_secs(30),
            rate_limit: None,
            ca_pem: None,
            retry: RetryPolicy::default(),
        }
    }
}

/// An optional token bucket, and a pause that a 429's `Retry-After` puts on every caller.
struct Limiter {
    bucket: Option<DefaultDirectRateLimiter>,
    paused_until: Mutex<Option<Instant>>,
}

impl Limiter {
    /// A limiter for `limit`; `None` when the limit cannot admit a call at all (a
    /// rate that is zero, negative or not a number).
    fn new(limit: Option<&RateLimitConfig>) -> Result<Limiter, String> {
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
    async fn acquire(&self, max_wait: Duration) -> Result<(), Duration> {
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

    fn pause(&self, wait: Duration) {
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

/// A response with its body read.
#[derive(Debug)]
pub struct HttpResponse {
    /// Status code.
    pub status: StatusCode,
    /// Body.
    pub body: bytes::Bytes,
    /// `Location` header (Snowflake's `202` answers point at their result with it).
    pub location: Option<String>,
    /// `Link` header (Snowflake pages long listings with it).
    pub link: Option<String>,
}

impl HttpResponse {
    /// Parses the body as JSON.
    pub fn json<T: DeserializeOwned>(
        &self,
        vendor: VendorKind,
        operation: &'static str,
    ) -> Result<T, VendorError> {
        serde_json::from_slice(&self.body).map_err(|error| VendorError::Protocol {
            vendor,
            operation,
            message: format!("unexpected response body: {error}"),
        })
    }
}

/// A request that failed for good.
#[derive(Debug)]
pub enum CallError {
    /// The vendor answered with an error status.
    Status {
        /// Status code.
        status: StatusCode,
        /// The vendor's error message, if its body had one.
        message: String,
        /// `Retry-After` of a 429.
        retry_after: Option<Duration>,
    },
    /// The request did not get an answer (timeout, connection error).
    Transport {
        /// What happened.
        message: String,
    },
    /// An answer came that this client cannot read (a body of another shape,
    /// a link elsewhere, a listing that never ends).
    Unreadable {
        /// What was wrong.
        message: String,
    },
}

impl CallError {
    /// The status code, when the vendor answered.
    pub fn status(&self) -> Option<StatusCode> {
        match self {
            CallError::Status { status, .. } => Some(*status),
            CallError::Transport { .. } | CallError::Unreadable { .. } => None,
        }
    }

    /// Maps the error to the contract's reasons the usual way: 401 Unauthorized,
    /// 403 Forbidden, 404 `not_found`, 409 Conflict, 429 RateLimited, other 4xx
    /// InvalidGrant, 5xx and transport errors VendorUnavailable.
    pub fn into_vendor_error(
        self,
        vendor: VendorKind,
        operation: &'static str,
        not_found: impl FnOnce(String) -> VendorError,
    ) -> VendorError {
        match self {
            CallError::Transport { message } => VendorError::NoAnswer {
                vendor,
                operation,
                message,
            },
            CallError::Unreadable { message } => VendorError::Protocol {
                vendor,
                operation,
                message,
            },
            CallError::Status {
                status,
                message,
                retry_after,
            } => match status.as_u16() {
                401 => VendorError::Unauthorized {
                    vendor,
                    operation,
                    message,
                },
                403 => VendorError::Forbidden {
                    vendor,
                    operation,
                    message,
                },
                404 => not_found(message),
                409 => VendorError::Conflict {
                    vendor,
                    operation,
                    message,
                },
                429 => VendorError::RateLimited {
                    vendor,
                    operation,
                    retry_after,
                },
                400..=499 => VendorError::Invalid {
                    vendor,
                    operation,
                    message: format!("{status}: {message}"),
                },
                504 => VendorError::NoAnswer {
                    vendor,
                    operation,
                    message: format!("{status}: {message}"),
                },
                _ => VendorError::Unavailable {
                    vendor,
                    operation,
                    message: format!("{status}: {message}"),
                },
            },
        }
    }
}

/// The HTTP client of one provider.
#[derive(Clone)]
pub struct HttpClient {
    client: reqwest::Client,
    vendor: VendorKind,
    timeout: Duration,
    limiter: Arc<Limiter>,
    retry: RetryPolicy,
    metrics: Arc<Metrics>,
}

impl std::fmt::Debug for HttpClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpClient")
            .field("vendor", &self.vendor)
            .finish_non_exhaustive()
    }
}

impl HttpClient {
    /// Builds a client; fails when the CA bundle is not valid PEM.
    pub fn new(
        vendor: VendorKind,
        config: &HttpConfig,
        metrics: Arc<Metrics>,
    ) -> Result<HttpClient, VendorError> {
        crate::install_crypto_provider();
        let mut builder = reqwest::Client::builder()
            .timeout(config.timeout)
            .connect_timeout(config.timeout.min(Duration::from_secs(10)))
            .user_agent(concat!("grant-operator/", env!("CARGO_PKG_VERSION")))
            .redirect(reqwest::redirect::Policy::none());
        if let Some(pem) = &config.ca_pem {
            let certificates = reqwest::Certificate::from_pem_bundle(pem).map_err(|error| {
                VendorError::Config {
                    vendor,
                    message: format!("caBundle is not a valid PEM certificate bundle: {error}"),
                }
            })?;
            if certificates.is_empty() {
                return Err(VendorError::Config {
                    vendor,
                    message: "caBundle holds no PEM certificate".into(),
                });
            }
            for certificate in certificates {
                builder = builder.add_root_certificate(certificate);
            }
        }
        let client = builder.build().map_err(|error| VendorError::Config {
            vendor,
            message: format!("cannot build the HTTP client: {error}"),
        })?;
        Ok(HttpClient {
            client,
            vendor,
            timeout: config.timeout,
            limiter: Arc::new(
                Limiter::new(config.rate_limit.as_ref())
                    .map_err(|message| VendorError::Config { vendor, message })?,
            ),
            retry: config.retry.clone(),
            metrics,
        })
    }

    /// The timeout of one attempt.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// The metrics this client counts into.
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// The underlying reqwest client, to build requests with.
    pub fn reqwest(&self) -> &reqwest::Client {
        &self.client
    }

    /// Sends a request built by `build` (called again for each attempt) and
    /// returns a 2xx answer, retrying as the module describes and `repeat` allows.
    pub async fn send(
        &self,
        operation: &'static str,
        repeat: Repeat,
        build: impl Fn(&reqwest::Client) -> RequestBuilder,
    ) -> Result<HttpResponse, CallError> {
        let vendor = self.vendor.as_str();
        let mut attempt = 0u32;
        loop {
            attempt += 1;
            let last = attempt >= self.retry.attempts;
            if let Err(left) = self.limiter.acquire(self.retry.max_retry_after).await {
                debug!(vendor, operation, wait = ?left, "not sent: the vendor asked to wait");
                return Err(CallError::Status {
                    status: StatusCode::TOO_MANY_REQUESTS,
                    message: "not sent: the vendor asked to wait (Retry-After)".into(),
                    retry_after: Some(left),
                });
            }
            let started = Instant::now();
            let outcome = match build(&self.client).send().await {
                Ok(response) => {
                    let status = response.status();
                    let retry_after = retry_after(response.headers());
                    let header = |name| {
                        response
                            .headers()
                            .get(name)
                            .and_then(|value: &reqwest::header::HeaderValue| value.to_str().ok())
                            .map(str::to_string)
                    };
                    let headers = (
                        header(reqwest::header::LOCATION),
                        header(reqwest::header::LINK),
                    );
                    match read_body(response).await {
                        Ok(body) => Ok((status, body, retry_after, headers)),
                        Err(error) => Err(error),
                    }
                }
                Err(error) => Err(error),
            };
            let elapsed = started.elapsed();
            self.metrics
                .vendor_call_duration(vendor, operation, elapsed);
            match outcome {
                Ok((status, body, _, (location, link))) if status.is_success() => {
                    self.metrics.vendor_call(vendor, operation, "success");
                    debug!(vendor, operation, %status, ?elapsed, "vendor call");
                    return Ok(HttpResponse {
                        status,
                        body,
                        location,
                        link,
                    });
                }
                Ok((status, body, retry_after, _)) => {
                    let message = error_message(&body);
                    self.metrics
                        .vendor_call(vendor, operation, status_outcome(status));
                    debug!(vendor, operation, %status, ?elapsed, "vendor call failed");
                    if status == StatusCode::TOO_MANY_REQUESTS {
                        let wait = retry_after.unwrap_or_else(|| self.backoff(attempt));
                        self.limiter.pause(wait);
                        if last || wait > self.retry.max_retry_after {
                            return Err(CallError::Status {
                                status,
                                message,
                                retry_after: Some(wait),
                            });
                        }
                        warn!(vendor, operation, wait = ?wait, "rate limited by the vendor; waiting");
                        tokio::time::sleep(wait).await;
                        continue;
                    }
                    if status.is_server_error() && !last && repeat != Repeat::OnlyIfNotCarriedOut {
                        let wait = self.backoff(attempt);
                        warn!(vendor, operation, %status, retry_in = ?wait, "vendor error; retrying");
                        tokio::time::sleep(wait).await;
                        continue;
                    }
                    return Err(CallError::Status {
                        status,
                        message,
                        retry_after: None,
                    });
                }
                Err(error) => {
                    let outcome = if error.is_timeout() {
                        "timeout"
                    } else {
                        "connection_error"
                    };
                    self.metrics.vendor_call(vendor, operation, outcome);
                    let message = describe_transport_error(&error);
                    // A refused connection never reached the vendor; anything else
                    // (a timeout, a connection lost mid-request) may have.
                    let unsent = error.is_connect() && !error.is_timeout();
                    if !last && (repeat == Repeat::Read || unsent) {
                        let wait = self.backoff(attempt);
                        warn!(vendor, operation, error = %message, retry_in = ?wait, "vendor unreachable; retrying");
                        tokio::time::sleep(wait).await;
                        continue;
                    }
                    return Err(CallError::Transport { message });
                }
            }
        }
    }

    fn backoff(&self, attempt: u32) -> Duration {
        backoff_delay(self.retry.base, self.retry.max, attempt)
    }
}

/// Reads a body of at most [`MAX_BODY`] bytes, whether or not the answer declares
/// its length (a chunked answer is counted as it arrives).
async fn read_body(mut response: reqwest::Response) -> Result<bytes::Bytes, reqwest::Error> {
    // Refuse to buffer absurd bodies; surfaces as a protocol error upstream.
    let too_large = || bytes::Bytes::from_static(b"{\"message\":\"response too large\"}");
    if response
        .content_length()
        .is_some_and(|len| len as usize > MAX_BODY)
    {
        return Ok(too_large());
    }
    let mut body = bytes::BytesMut::new();
    while let Some(chunk) = response.chunk().await? {
        if body.len() + chunk.len() > MAX_BODY {
            return Ok(too_large());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body.freeze())
}

fn status_outcome(status: StatusCode) -> &'static str {
    match status.as_u16() {
        401 => "unauthorized",
        403 => "forbidden",
        404 => "not_found",
        429 => "rate_limited",
        400..=499 => "client_error",
        _ => "server_error",
    }
}

/// `Retry-After` as seconds or an HTTP date.
pub(crate) fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    let value = headers
        .get(reqwest::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let date = jiff::fmt::rfc2822::parse(value).ok()?;
    let wait = date.timestamp().duration_since(jiff::Timestamp::now());
    Some(Duration::try_from(wait).unwrap_or(Duration::ZERO))
}

/// The vendor's error message: `message` (Sigma, Grafana, Snowflake), `errorMessage`
/// (Dremio), or the start of the body.
fn error_message(body: &[u8]) -> String {
    if let Ok(value) = serde_json::from_slice::<serde_json::Value>(body) {
        for field in ["message", "errorMessage", "error"] {
            if let Some(text) = value.get(field).and_then(|v| v.as_str()) {
                return truncate(text);
            }
        }
    }
    let text = String::from_utf8_lossy(body);
    if text.trim().is_empty() {
        "no error message".into()
    } else {
        truncate(text.trim())
    }
}

fn truncate(text: &str) -> String {
    const MAX: usize = 300;
    if text.len() <= MAX {
        text.to_string()
    } else {
        let mut end = MAX;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        format!("{}...", &text[..end])
    }
}

/// A transport error without the URL (it may carry query parameters such as emails).
fn describe_transport_error(error: &reqwest::Error) -> String {
    let kind = if error.is_timeout() {
        "timed out"
    } else if error.is_connect() {
        "could not connect"
    } else if error.is_body() || error.is_decode() {
        "broken response"
    } else {
        "request failed"
    };
    let mut source = std::error::Error::source(error);
    let mut detail = String::new();
    while let Some(cause) = source {
        detail = cause.to_string();
        source = cause.source();
    }
    if detail.is_empty() {
        kind.to_string()
    } else {
        format!("{kind}: {detail}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vendor_error_messages_are_extracted() {
        assert_eq!(error_message(br#"{"message":"bad","code":"x"}"#), "bad");
        assert_eq!(error_message(br#"{"errorMessage":"nope"}"#), "nope");
        assert_eq!(error_message(b"plain text"), "plain text");
        assert_eq!(error_message(b""), "no error message");
        assert!(error_message("x".repeat(1000).as_bytes()).ends_with("..."));
    }

    #[test]
    fn every_status_outcome_is_a_documented_label_value() {
        for status in 400..=599 {
            let outcome = status_outcome(StatusCode::from_u16(status).unwrap());
            assert!(
                crate::metrics::VENDOR_OUTCOMES.contains(&outcome),
                "{status}: {outcome}"
            );
        }
    }

    #[test]
    fn retry_after_parses_seconds_and_dates() {
        let mut headers = reqwest::header::HeaderMap::new();
        headers.insert(reqwest::header::RETRY_AFTER, "7".parse().unwrap());
        assert_eq!(retry_after(&headers), Some(Duration::from_secs(7)));
        headers.insert(
            reqwest::header::RETRY_AFTER,
            "Sun, 06 Nov 1994 08:49:37 GMT".parse().unwrap(),
        );
        assert_eq!(retry_after(&headers), Some(Duration::ZERO));
        headers.insert(reqwest::header::RETRY_AFTER, "soon".parse().unwrap());
        assert_eq!(retry_after(&headers), None);
    }

    #[test]
    fn status_errors_map_to_contract_reasons() {
        use crate::api::Reason;
        let map = |status: u16| {
            CallError::Status {
                status: StatusCode::from_u16(status).unwrap(),
                message: "m".into(),
                retry_after: None,
            }
            .into_vendor_error(VendorKind::Sigma, "op", |message| {
                VendorError::TargetNotFound {
                    vendor: VendorKind::Sigma,
                    what: message,
                }
            })
            .reason()
        };
        assert_eq!(map(400), Reason::InvalidGrant);
        assert_eq!(map(401), Reason::Unauthorized);
        assert_eq!(map(403), Reason::Forbidden);
        assert_eq!(map(404), Reason::TargetNotFound);
        assert_eq!(map(409), Reason::Conflict);
        assert_eq!(map(429), Reason::RateLimited);
        assert_eq!(map(500), Reason::VendorUnavailable);
        assert_eq!(map(503), Reason::VendorUnavailable);
        let transport = CallError::Transport {
            message: "timed out".into(),
        }
        .into_vendor_error(VendorKind::Sigma, "op", |_| unreachable!());
        assert_eq!(transport.reason(), Reason::VendorUnavailable);
    }

    #[test]
    fn backoff_grows_and_is_capped() {
        let client = HttpClient::new(
            VendorKind::Sigma,
            &HttpConfig {
                retry: RetryPolicy {
                    base: Duration::from_millis(100),
                    max: Duration::from_millis(1000),
                    ..RetryPolicy::default()
                },
                ..HttpConfig::default()
            },
            Arc::new(Metrics::new()),
        )
        .unwrap();
        for _ in 0..50 {
            let first = client.backoff(1);
            assert!(first >= Duration::from_millis(50) && first <= Duration::from_millis(100));
            let late = client.backoff(10);
            assert!(late >= Duration::from_millis(500) && late <= Duration::from_millis(1000));
        }
    }

    #[test]
    fn a_rate_that_never_admits_a_call_is_refused() {
        for rate in [0.0, -1.0, 0.001, f64::NAN, f64::INFINITY] {
            let config = HttpConfig {
                rate_limit: Some(RateLimitConfig {
                    requests_per_second: rate,
                    burst: 1,
                }),
                ..HttpConfig::default()
            };
            let error = HttpClient::new(VendorKind::Sigma, &config, Arc::new(Metrics::new()))
                .expect_err("refused");
            assert!(
                error.to_string().contains("requestsPerSecond"),
                "{rate}: {error}"
            );
        }
        let config = HttpConfig {
            rate_limit: Some(RateLimitConfig {
                requests_per_second: MIN_RATE,
                burst: 1,
            }),
            ..HttpConfig::default()
        };
        assert!(HttpClient::new(VendorKind::Sigma, &config, Arc::new(Metrics::new())).is_ok());
    }

    #[test]
    fn the_backoff_is_equal_jitter_for_vendor_calls_and_reconciles_alike() {
        let (base, max) = (Duration::from_millis(100), Duration::from_secs(1));
        for attempt in 1..=8u32 {
            let ceiling = (base * 2u32.pow(attempt - 1)).min(max);
            for _ in 0..20 {
                let wait = backoff_delay(base, max, attempt);
                assert!(
                    wait >= ceiling / 2 && wait <= ceiling,
                    "{attempt}: {wait:?}"
                );
            }
        }
        assert!(backoff_delay(base, max, u32::MAX) <= max);
    }

    /// An answer without `Content-Length` (chunked) larger than the cap is not
    /// read into memory.
    #[tokio::test]
    async fn a_chunked_body_is_capped_too() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.unwrap();
            let mut request = [0u8; 4096];
            let _ = socket.read(&mut request).await;
            let head = "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n";
            if socket.write_all(head.as_bytes()).await.is_err() {
                return;
            }
            let chunk = vec![b' '; 1024 * 1024];
            for _ in 0..(MAX_BODY / chunk.len() + 2) {
                let frame = format!("{:x}\r\n", chunk.len());
                if socket.write_all(frame.as_bytes()).await.is_err()
                    || socket.write_all(&chunk).await.is_err()
                    || socket.write_all(b"\r\n").await.is_err()
                {
                    return;
                }
            }
            let _ = socket.write_all(b"0\r\n\r\n").await;
        });
        let client = HttpClient::new(
            VendorKind::Sigma,
            &HttpConfig::default(),
            Arc::new(Metrics::new()),
        )
        .unwrap();
        let url = format!("http://{address}/big");
        let response = client
            .send("read", Repeat::Read, |client| client.get(&url))
            .await
            .unwrap();
        assert!(
            response.body.len() < 1024,
            "{} bytes read",
            response.body.len()
        );
        assert!(
            String::from_utf8_lossy(&response.body).contains("too large"),
            "{:?}",
            String::from_utf8_lossy(&response.body)
        );
    }

    /// A server that answers every request with `answer` (`None`: never
    /// answers), counting the requests.
    async fn server(answer: Option<&'static str>) -> (String, Arc<std::sync::atomic::AtomicUsize>) {
        use std::sync::atomic::{AtomicUsize, Ordering};
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/x", listener.local_addr().unwrap());
        let count = Arc::new(AtomicUsize::new(0));
        let seen = count.clone();
        tokio::spawn(async move {
            loop {
                let Ok((mut socket, _)) = listener.accept().await else {
                    return;
                };
                let seen = seen.clone();
                tokio::spawn(async move {
                    let mut request = [0u8; 4096];
                    while let Ok(read) = socket.read(&mut request).await {
                        if read == 0 {
                            return;
                        }
                        seen.fetch_add(1, Ordering::SeqCst);
                        match answer {
                            Some(status) => {
                                let reply =
                                    format!("HTTP/1.1 {status}\r\ncontent-length: 2\r\n\r\n{{}}");
                                if socket.write_all(reply.as_bytes()).await.is_err() {
                                    return;
                                }
                            }
                            None => tokio::time::sleep(Duration::from_secs(3600)).await,
                        }
                    }
                });
            }
        });
        (url, count)
    }

    #[tokio::test]
    async fn a_write_that_got_no_answer_is_never_sent_again() {
        use std::sync::atomic::Ordering;
        let config = HttpConfig {
            timeout: Duration::from_millis(200),
            retry: RetryPolicy {
                attempts: 3,
                base: Duration::from_millis(1),
                max: Duration::from_millis(5),
                ..RetryPolicy::default()
            },
            ..HttpConfig::default()
        };
        let client = HttpClient::new(VendorKind::Sigma, &config, Arc::new(Metrics::new())).unwrap();
        // No answer: a read is sent again, a write never (it may still land).
        for (repeat, sent) in [
            (Repeat::Read, 3),
            (Repeat::Idempotent, 1),
            (Repeat::OnlyIfNotCarriedOut, 1),
        ] {
            let (url, count) = server(None).await;
            let error = client
                .send("call", repeat, |client| client.post(&url))
                .await
                .unwrap_err();
            assert!(matches!(error, CallError::Transport { .. }), "{error:?}");
            assert_eq!(count.load(Ordering::SeqCst), sent, "{repeat:?}");
        }
        // A 5xx answer: the vendor is done with it; only a write that could do
        // something else when repeated is not sent again.
        for (repeat, sent) in [
            (Repeat::Read, 3),
            (Repeat::Idempotent, 3),
            (Repeat::OnlyIfNotCarriedOut, 1),
        ] {
            let (url, count) = server(Some("503 Service Unavailable")).await;
            client
                .send("call", repeat, |client| client.post(&url))
                .await
                .unwrap_err();
            assert_eq!(count.load(Ordering::SeqCst), sent, "{repeat:?}");
        }
    }

    #[test]
    fn invalid_ca_bundles_are_refused() {
        let config = HttpConfig {
            ca_pem: Some(b"not a certificate".to_vec()),
            ..HttpConfig::default()
        };
        let error =
            HttpClient::new(VendorKind::Sigma, &config, Arc::new(Metrics::new())).unwrap_err();
        assert!(error.to_string().contains("caBundle"), "{error}");
    }
}
