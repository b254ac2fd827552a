//! Pagination: the `limit` parameter, the page window behind `page`
//! tokens, and the `{entries, nextPage}` answer.

use std::collections::HashMap;

use axum::http::StatusCode;
use axum::response::Response;
use serde_json::{Value, json};

use crate::sandbox::emulator::{ApiError, err, json_response};

use super::{DEFAULT_LIMIT, MAX_LIMIT, State};

fn parse_limit(raw: Option<&String>) -> Result<usize, String> {
    let Some(raw) = raw else {
        return Ok(DEFAULT_LIMIT);
    };
    let msg = || format!("limit must be an integer from 1 to {MAX_LIMIT}, got {raw:?}");
    if raw.is_empty() || !raw.bytes().all(|b| b.is_ascii_digit()) {
        return Err(msg());
    }
    match raw.parse::<usize>() {
        Ok(n) if (1..=MAX_LIMIT).contains(&n) => Ok(n),
        _ => Err(msg()),
    }
}

/// Resolves `limit` and `page` into `[start, end)` of a listing of `total`
/// items, and issues the next page token if there is more.
pub(super) fn page_window(
    st: &mut State,
    q: &HashMap<String, String>,
    scope: &str,
    total: usize,
) -> Result<(usize, usize, Option<String>), ApiError> {
    let limit = parse_limit(q.get("limit")).map_err(|m| err(StatusCode::BAD_REQUEST, &m))?;
    let size = limit.min(st.page_size_cap).max(1);
    let token = q.get("page");
    st.page_tokens
        .page(scope, token.map(String::as_str), size, total)
        .ok_or_else(|| {
            err(
                StatusCode::BAD_REQUEST,
                format!(
                    "invalid page token: {:?}",
                    token.cloned().unwrap_or_default()
                ),
            )
        })
}

pub(super) fn list_response(entries: Vec<Value>, next: Option<String>) -> Response {
    json_response(
        StatusCode::OK,
        &json!({
            "entries": entries,
            "hasMore": next.is_some(),
            "nextPage": next,
        }),
    )
}
