//! Label and field selectors: parsing them from a query and matching an
//! object against them.

use std::collections::HashMap;

use serde_json::Value;

use super::ApiError;

#[derive(Default, Debug)]
pub(super) struct Selectors {
    labels: Vec<LabelReq>,
    fields: Vec<FieldReq>,
}

#[derive(Debug)]
enum LabelReq {
    Eq(String, String),
    Ne(String, String),
    Exists(String),
    NotExists(String),
    In(String, Vec<String>),
    NotIn(String, Vec<String>),
}

#[derive(Debug)]
struct FieldReq {
    path: String,
    value: String,
    negate: bool,
}

/// Split on commas that are not inside parentheses.
fn split_terms(s: &str) -> Vec<String> {
    let mut terms = Vec::new();
    let mut depth = 0i32;
    let mut cur = String::new();
    for c in s.chars() {
        match c {
            '(' => {
                depth += 1;
                cur.push(c);
            }
            ')' => {
                depth -= 1;
                cur.push(c);
            }
            ',' if depth == 0 => terms.push(std::mem::take(&mut cur)),
            _ => cur.push(c),
        }
    }
    terms.push(cur);
    terms
        .into_iter()
        .map(|t| t.trim().to_string())
        .filter(|t| !t.is_empty())
        .collect()
}

fn parse_set(s: &str) -> Result<Vec<String>, ApiError> {
    let s = s.trim();
    let inner = s
        .strip_prefix('(')
        .and_then(|s| s.strip_suffix(')'))
        .ok_or_else(|| ApiError::bad_request(format!("invalid label selector set {s:?}")))?;
    Ok(inner
        .split(',')
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
        .collect())
}

impl Selectors {
    pub(super) fn from_query(q: &HashMap<String, String>) -> Result<Selectors, ApiError> {
        let mut sel = Selectors::default();
        if let Some(ls) = q.get("labelSelector") {
            for term in split_terms(ls) {
                sel.labels.push(Self::parse_label_term(&term)?);
            }
        }
        if let Some(fs) = q.get("fieldSelector") {
            for term in split_terms(fs) {
                let (path, value, negate) = if let Some((p, v)) = term.split_once("!=") {
                    (p, v, true)
                } else if let Some((p, v)) = term.split_once("==") {
                    (p, v, false)
                } else if let Some((p, v)) = term.split_once('=') {
                    (p, v, false)
                } else {
                    return Err(ApiError::bad_request(format!(
                        "invalid field selector term {term:?}"
                    )));
                };
                sel.fields.push(FieldReq {
                    path: path.trim().to_string(),
                    value: value.trim().to_string(),
                    negate,
                });
            }
        }
        Ok(sel)
    }

    fn parse_label_term(term: &str) -> Result<LabelReq, ApiError> {
        if let Some(key) = term.strip_prefix('!') {
            return Ok(LabelReq::NotExists(key.trim().to_string()));
        }
        if let Some((k, set)) = term.split_once(" notin ") {
            return Ok(LabelReq::NotIn(k.trim().to_string(), parse_set(set)?));
        }
        if let Some((k, set)) = term.split_once(" in ") {
            return Ok(LabelReq::In(k.trim().to_string(), parse_set(set)?));
        }
        if let Some((k, v)) = term.split_once("!=") {
            return Ok(LabelReq::Ne(k.trim().to_string(), v.trim().to_string()));
        }
        if let Some((k, v)) = term.split_once("==").or_else(|| term.split_once('=')) {
            return Ok(LabelReq::Eq(k.trim().to_string(), v.trim().to_string()));
        }
        if term.contains(|c: char| c.is_whitespace() || "()<>".contains(c)) {
            return Err(ApiError::bad_request(format!(
                "unsupported label selector term {term:?}"
            )));
        }
        Ok(LabelReq::Exists(term.to_string()))
    }

    pub(super) fn matches(&self, obj: &Value) -> bool {
        let labels = obj.pointer("/metadata/labels").and_then(Value::as_object);
        let label = |k: &str| labels.and_then(|l| l.get(k)).and_then(Value::as_str);
        let labels_ok = self.labels.iter().all(|req| match req {
            LabelReq::Eq(k, v) => label(k) == Some(v.as_str()),
            LabelReq::Ne(k, v) => label(k) != Some(v.as_str()),
            LabelReq::Exists(k) => label(k).is_some(),
            LabelReq::NotExists(k) => label(k).is_none(),
            LabelReq::In(k, set) => label(k).is_some_and(|l| set.iter().any(|v| v == l)),
            LabelReq::NotIn(k, set) => label(k).is_none_or(|l| set.iter().all(|v| v != l)),
        });
        labels_ok
            && self.fields.iter().all(|req| {
                let pointer = format!("/{}", req.path.replace('.', "/"));
                let actual = match obj.pointer(&pointer) {
                    None | Some(Value::Null) => String::new(),
                    Some(Value::String(s)) => s.clone(),
                    Some(other) => other.to_string(),
                };
                (actual == req.value) != req.negate
            })
    }
}
