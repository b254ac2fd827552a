//! The [`tower::Service`] a [`kube::Client`] talks to, and the response
//! bodies it answers with (whole JSON or a stream).

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use futures::{Stream, StreamExt};
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, StreamBody};
use serde_json::Value;

use super::{ApiError, FakeKubeService, Hold, RecordedCall, ResBody};

impl tower::Service<Request<kube::client::Body>> for FakeKubeService {
    type Response = Response<ResBody>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<kube::client::Body>) -> Self::Future {
        let inner = self.inner.clone();
        Box::pin(async move {
            let (parts, body) = req.into_parts();
            let body = match body.collect().await {
                Ok(collected) => collected.to_bytes(),
                Err(err) => {
                    let e = ApiError::bad_request(format!("failed to read request body: {err}"));
                    return Ok(json_response(400, &e.to_status()));
                }
            };
            let interceptor = inner
                .interceptor
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clone();
            let hold = match interceptor {
                Some(interceptor) => interceptor(&RecordedCall {
                    method: parts.method.as_str().to_string(),
                    path: parts.uri.path().to_string(),
                    query: parts.uri.query().unwrap_or_default().to_string(),
                    content_type: parts
                        .headers
                        .get(http::header::CONTENT_TYPE)
                        .and_then(|v| v.to_str().ok())
                        .map(str::to_string),
                    body: serde_json::from_slice(&body).ok(),
                    status: 0,
                }),
                None => Hold::Pass,
            };
            match hold {
                Hold::Pass => Ok(inner.serve(parts, body)),
                Hold::Before(until) => {
                    until.await;
                    let e = ApiError::new(
                        503,
                        "ServiceUnavailable",
                        "the request was held and dropped",
                    );
                    Ok(json_response(503, &e.to_status()))
                }
                Hold::After(until) => {
                    let response = inner.serve(parts, body);
                    until.await;
                    Ok(response)
                }
            }
        })
    }
}

pub(super) fn json_response(code: u16, value: &Value) -> Response<ResBody> {
    let bytes = serde_json::to_vec(value).expect("JSON serializes");
    Response::builder()
        .status(StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR))
        .header(http::header::CONTENT_TYPE, "application/json")
        .body(Full::new(Bytes::from(bytes)).boxed_unsync())
        .expect("valid response")
}

/// Wrap a stream of chunks into a response body. `http_body::Frame` is not
/// re-exported by the crates we depend on, so each data frame is obtained from a
/// `Full` body (which yields its single frame immediately).
pub(super) fn streaming_body(chunks: impl Stream<Item = Bytes> + Send + 'static) -> ResBody {
    StreamBody::new(chunks.filter_map(|chunk| async move {
        let mut full = Full::new(chunk);
        full.frame().await
    }))
    .boxed_unsync()
}
