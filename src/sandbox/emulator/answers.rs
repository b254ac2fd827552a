//! Answers: [`ApiError`] and [`Answer`], JSON and empty answers, `405` with
//! `Allow`, and how a body is shown in the call log.

use axum::body::{Body, Bytes};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::response::Response;
use serde_json::Value;

use super::Vendor;

/// An error answer not yet rendered in a vendor's shape.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub message: String,
}

/// A handler's result: an answer, or an error to render.
pub type Answer = Result<Response, ApiError>;

pub fn err(status: StatusCode, message: impl Into<String>) -> ApiError {
    ApiError {
        status,
        message: message.into(),
    }
}

impl ApiError {
    /// Renders with the vendor's error shape.
    pub fn into_response<V: Vendor>(self) -> Response {
        V::error(self.status, &self.message)
    }
}

/// A JSON answer with `Content-Type: application/json`.
pub fn json_response(status: StatusCode, body: &Value) -> Response {
    let mut response = Response::new(Body::from(body.to_string()));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

/// An empty answer with this status (e.g. 204).
pub fn empty_response(status: StatusCode) -> Response {
    let mut response = Response::new(Body::empty());
    *response.status_mut() = status;
    response
}

/// The vendor's 405 answer, with an `Allow` header listing `allowed`.
pub fn method_not_allowed<V: Vendor>(allowed: &[Method], message: &str) -> Response {
    let allow = allowed
        .iter()
        .map(Method::as_str)
        .collect::<Vec<_>>()
        .join(", ");
    let mut response = V::error(StatusCode::METHOD_NOT_ALLOWED, message);
    if let Ok(v) = HeaderValue::from_str(&allow) {
        response.headers_mut().insert(header::ALLOW, v);
    }
    response
}

/// The parsed JSON of a body, or its raw text if it is not JSON; `None` if
/// empty.
pub fn json_or_text(bytes: &Bytes) -> Option<Value> {
    if bytes.is_empty() {
        return None;
    }
    match serde_json::from_slice::<Value>(bytes) {
        Ok(v) => Some(v),
        Err(_) => Some(Value::String(String::from_utf8_lossy(bytes).into_owned())),
    }
}
