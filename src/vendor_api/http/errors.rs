//! What a call answers: the response ([`HttpResponse`]) or a [`CallError`], and
//! how each reads as a [`VendorError`] with the vendor's own message (never a
//! body or header that could carry credentials).

use std::time::Duration;

use reqwest::StatusCode;
use serde::de::DeserializeOwned;

use crate::api::VendorKind;
use crate::vendor_api::VendorError;

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

/// The vendor's error message: `message` (Sigma, Grafana, Snowflake), `errorMessage`
/// (Dremio), or the start of the body.
pub(super) fn error_message(body: &[u8]) -> String {
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
pub(super) fn describe_transport_error(error: &reqwest::Error) -> String {
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
