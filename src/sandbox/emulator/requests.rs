//! Reading requests: the `Authorization` header, unknown body keys, media
//! types, percent-decoding, path segments and query strings.

use std::collections::HashMap;

use axum::http::{HeaderMap, HeaderValue, header};
use serde_json::{Map, Value};

/// Why the `Authorization` header could not be split.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AuthHeaderError {
    /// Sent more than once.
    Repeated,
    /// Not text, or not `<scheme> <credentials>`.
    Malformed,
}

/// The one `Authorization` header as `(scheme, credentials)`, credentials
/// trimmed; `None` if absent.
pub fn authorization(headers: &HeaderMap) -> Result<Option<(String, String)>, AuthHeaderError> {
    let values: Vec<&HeaderValue> = headers.get_all(header::AUTHORIZATION).iter().collect();
    let value = match values.as_slice() {
        [] => return Ok(None),
        [one] => *one,
        _ => return Err(AuthHeaderError::Repeated),
    };
    let value = value.to_str().map_err(|_| AuthHeaderError::Malformed)?;
    let (scheme, credentials) = value.split_once(' ').ok_or(AuthHeaderError::Malformed)?;
    Ok(Some((scheme.to_string(), credentials.trim().to_string())))
}

/// The first key of `object` that is not in `allowed`.
pub fn unknown_key<'a>(object: &'a Map<String, Value>, allowed: &[&str]) -> Option<&'a str> {
    object
        .keys()
        .map(String::as_str)
        .find(|k| !allowed.contains(k))
}

/// Whether the media type of `Content-Type` is `expected` (parameters such as
/// `charset` ignored).
pub fn media_type_is(headers: &HeaderMap, expected: &str) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.split(';')
                .next()
                .unwrap_or_default()
                .trim()
                .eq_ignore_ascii_case(expected)
        })
}

/// Decodes `%XX` (and `+` as space when `plus_as_space`); malformed escapes
/// and invalid UTF-8 are errors.
pub fn percent_decode(s: &str, plus_as_space: bool) -> Result<String, String> {
    fn hex(b: u8) -> Option<u8> {
        match b {
            b'0'..=b'9' => Some(b - b'0'),
            b'a'..=b'f' => Some(b - b'a' + 10),
            b'A'..=b'F' => Some(b - b'A' + 10),
            _ => None,
        }
    }
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        match b {
            b'+' if plus_as_space => {
                out.push(b' ');
                i += 1;
            }
            b'%' => {
                let hi = bytes.get(i + 1).copied().and_then(hex);
                let lo = bytes.get(i + 2).copied().and_then(hex);
                match (hi, lo) {
                    (Some(hi), Some(lo)) => out.push(hi << 4 | lo),
                    _ => return Err(format!("malformed percent-encoding in {s:?}")),
                }
                i += 3;
            }
            _ => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).map_err(|_| format!("invalid UTF-8 in {s:?}"))
}

/// A non-empty decoded path segment (`+` stays `+`), or `None`.
pub fn path_segment(raw: &str) -> Option<String> {
    percent_decode(raw, false).ok().filter(|d| !d.is_empty())
}

/// The segments of `path` after `prefix`, or `None` if it does not start with
/// it or has an empty segment.
pub fn segments<'a>(path: &'a str, prefix: &str) -> Option<Vec<&'a str>> {
    let segs: Vec<&str> = path.strip_prefix(prefix)?.split('/').collect();
    if segs.iter().any(|s| s.is_empty()) {
        return None;
    }
    Some(segs)
}

/// Parses `a=1&b=2` (query string or form body).
pub fn parse_pairs(text: &str) -> Result<Vec<(String, String)>, String> {
    text.split('&')
        .filter(|part| !part.is_empty())
        .map(|part| {
            let (k, v) = part.split_once('=').unwrap_or((part, ""));
            Ok((percent_decode(k, true)?, percent_decode(v, true)?))
        })
        .collect()
}

/// Parses into a map, rejecting unknown and repeated parameters.
pub fn params(text: &str, allowed: &[&str]) -> Result<HashMap<String, String>, String> {
    let mut map = HashMap::new();
    for (k, v) in parse_pairs(text)? {
        if !allowed.contains(&k.as_str()) {
            return Err(format!("unknown parameter: {k}"));
        }
        if map.insert(k.clone(), v).is_some() {
            return Err(format!("parameter given more than once: {k}"));
        }
    }
    Ok(map)
}
