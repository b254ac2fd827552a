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
//!
//! This module owns the client, its configuration, the retry policy and
//! [`ApiRoot`] (a client and its base URL, on which each vendor client is built);
//! `limiter` the per-provider token bucket; `errors` the answers and errors of
//! a call ([`HttpResponse`], [`CallError`]) and how they read as vendor errors.

mod errors;
mod limiter;
#[cfg(test)]
mod tests;

use std::sync::Arc;
use std::time::Duration;

use reqwest::{RequestBuilder, StatusCode};
use tokio::time::Instant;
use tracing::{debug, warn};

use crate::api::VendorKind;
use crate::metrics::Metrics;

use self::errors::{describe_transport_error, error_message};
use self::limiter::Limiter;
use super::VendorError;

pub use errors::{CallError, HttpResponse};
pub use limiter::MIN_RATE;

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

/// Where a vendor client's calls go: the provider's HTTP client and the base
/// URL every path is put after. Each vendor's client is built on one.
pub struct ApiRoot {
    http: HttpClient,
    base: String,
}

impl ApiRoot {
    /// The root at `url` (its trailing `/`s dropped, so paths begin with one).
    pub fn new(http: HttpClient, url: &str) -> ApiRoot {
        ApiRoot {
            http,
            base: url.trim_end_matches('/').to_string(),
        }
    }

    /// The HTTP client.
    pub fn http(&self) -> &HttpClient {
        &self.http
    }

    /// The base URL.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// The URL of `path` (which begins with `/`).
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
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
