//! Serving one request: recording it, firing faults and the interceptor,
//! handing it to the vendor in a task of its own with the observer around
//! it, and recording the final status.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use axum::body::{Body, Bytes};
use axum::extract::State as AxumState;
use axum::extract::connect_info::ConnectInfo;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;

use super::faults::{Call, FaultKind, Intercept, Stage};
use super::helpers::lock;
use super::listener::Connection;
use super::{Inner, Request, Vendor};

pub(super) async fn entry<V: Vendor>(
    AxumState(inner): AxumState<Arc<Inner<V>>>,
    req: axum::http::Request<Body>,
) -> Response {
    let at = Instant::now();
    let connection = req
        .extensions()
        .get::<ConnectInfo<Connection>>()
        .map(|info| info.0.closed.clone());
    let (parts, body) = req.into_parts();
    let method = parts.method;
    let headers = parts.headers;
    let path = parts.uri.path().to_string();
    let query = parts.uri.query().unwrap_or_default().to_string();
    let lossy = |v: &HeaderValue| String::from_utf8_lossy(v.as_bytes()).into_owned();
    let authorization = headers.get(header::AUTHORIZATION).map(lossy);
    let recorded_headers = headers
        .iter()
        .map(|(name, value)| (name.as_str().to_string(), lossy(value)))
        .collect();

    let declared_too_large = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .is_some_and(|n| n > V::MAX_BODY_BYTES as u64);
    let body: Result<Bytes, Response> = if declared_too_large {
        Err(V::error(
            StatusCode::PAYLOAD_TOO_LARGE,
            "request body too large",
        ))
    } else {
        axum::body::to_bytes(body, V::MAX_BODY_BYTES)
            .await
            .map_err(|_| {
                V::error(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "request body too large or unreadable",
                )
            })
    };

    let call = Call {
        method: method.as_str().to_string(),
        path: path.clone(),
        query: query.clone(),
        status: 0,
        body: body
            .as_ref()
            .ok()
            .filter(|b| !b.is_empty())
            .and_then(|b| V::recorded_body(&headers, b)),
        authorization,
        headers: recorded_headers,
        at,
    };
    let seq = lock(&inner.recorder).record(call.clone());
    let interceptor = lock(&inner.interceptor).clone();
    let intercept = match &interceptor {
        Some(interceptor) => interceptor(&call),
        None => Intercept::Pass,
    };

    // Handle in a task of its own so that a request is carried out (and
    // recorded) to the end even if the client disconnects, e.g. after a
    // client-side timeout during an injected delay.
    let task_inner = inner.clone();
    let job = tokio::spawn(async move {
        let outcome = match body {
            Ok(body) => {
                let request = Request {
                    method,
                    path,
                    query,
                    headers,
                    body,
                };
                match intercept {
                    Intercept::Pass => process(&task_inner, &request, &call).await,
                    Intercept::DropBefore(until) => {
                        until.await;
                        Outcome::Drop
                    }
                    Intercept::DropAfter(until) => {
                        let _ = handle(&task_inner, &request, &call);
                        until.await;
                        Outcome::Drop
                    }
                }
            }
            Err(response) => Outcome::Answer(response),
        };
        if let Outcome::Answer(response) = &outcome {
            lock(&task_inner.recorder).finish(seq, response.status().as_u16());
        }
        outcome
    });
    match job.await {
        Ok(Outcome::Answer(response)) => response,
        Ok(Outcome::Drop) => {
            // Aborting the connection makes hyper fail to write this answer and
            // close it: the client gets no answer at all.
            if let Some(closed) = &connection {
                closed.store(true, Ordering::SeqCst);
            }
            V::error(StatusCode::BAD_GATEWAY, "connection dropped")
        }
        Err(_) => {
            let response = V::error(StatusCode::INTERNAL_SERVER_ERROR, "emulator task failed");
            lock(&inner.recorder).finish(seq, response.status().as_u16());
            response
        }
    }
}

/// How a request ends: with an answer, or with its connection closed.
enum Outcome {
    Answer(Response),
    Drop,
}

async fn process<V: Vendor>(inner: &Inner<V>, request: &Request, call: &Call) -> Outcome {
    let fault = lock(&inner.recorder).take_fault(request.method.as_str(), &request.path);
    match fault {
        Some(FaultKind::Delay(d)) => tokio::time::sleep(d).await,
        Some(FaultKind::Status(code)) => {
            let status = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            return Outcome::Answer(V::error(
                status,
                &format!("injected fault: status {}", status.as_u16()),
            ));
        }
        Some(FaultKind::RateLimited { retry_after_secs }) => {
            let mut response = V::error(StatusCode::TOO_MANY_REQUESTS, "Too many requests");
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(retry_after_secs));
            return Outcome::Answer(response);
        }
        Some(FaultKind::DelayAnswer(d)) => {
            let response = handle(inner, request, call);
            tokio::time::sleep(d).await;
            return Outcome::Answer(response);
        }
        Some(FaultKind::DropBefore) => return Outcome::Drop,
        Some(FaultKind::DropAfter) => {
            let _ = handle(inner, request, call);
            return Outcome::Drop;
        }
        None => {}
    }
    Outcome::Answer(handle(inner, request, call))
}

/// The vendor handles a request, watched by the observer if there is one.
fn handle<V: Vendor>(inner: &Inner<V>, request: &Request, call: &Call) -> Response {
    let observer = lock(&inner.observer).clone();
    let Some(observer) = observer else {
        return inner.vendor.handle(request);
    };
    let _alone = lock(&inner.handling);
    observer(call, Stage::Before);
    let response = inner.vendor.handle(request);
    observer(
        call,
        Stage::After {
            status: response.status().as_u16(),
        },
    );
    response
}
