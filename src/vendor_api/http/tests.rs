//! Unit tests of the HTTP client: errors and their reasons, Retry-After,
//! backoff, rate limits, body caps, repeats and CA bundles.

use std::sync::Arc;
use std::time::Duration;

use reqwest::StatusCode;

use crate::api::VendorKind;
use crate::metrics::Metrics;
use crate::vendor_api::VendorError;

use super::errors::{CallError, error_message};
use super::limiter::MIN_RATE;
use super::{
    HttpClient, HttpConfig, MAX_BODY, RateLimitConfig, Repeat, RetryPolicy, backoff_delay,
    retry_after, status_outcome,
};

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
    let error = HttpClient::new(VendorKind::Sigma, &config, Arc::new(Metrics::new())).unwrap_err();
    assert!(error.to_string().contains("caBundle"), "{error}");
}
