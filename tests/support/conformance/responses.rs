//! Responses, the static half: every field a client's response wire type
//! reads must exist in the response schema of the operation that answers it.

use serde_json::Value;

use super::Api;

/// Resolves `#/$defs/...` references of a `schemars` schema.
fn ours<'a>(root: &'a Value, schema: &'a Value) -> &'a Value {
    match schema.get("$ref").and_then(Value::as_str) {
        Some(reference) => reference
            .strip_prefix('#')
            .and_then(|pointer| root.pointer(pointer))
            .map(|target| ours(root, target))
            .unwrap_or(schema),
        None => schema,
    }
}

/// The schemas a value of `schema` may take: itself and the parts of its
/// `allOf`/`anyOf`/`oneOf`, recursively.
fn alternatives(schema: &Value) -> Vec<&Value> {
    let mut out = vec![schema];
    for key in ["allOf", "anyOf", "oneOf"] {
        for part in schema
            .get(key)
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            out.extend(alternatives(part));
        }
    }
    out
}

/// Every field our schema reads that theirs does not define, as a path.
fn missing_fields(root: &Value, our: &Value, theirs: &[&Value], at: &str, out: &mut Vec<String>) {
    let our = ours(root, our);
    let our_parts: Vec<&Value> = alternatives(our)
        .into_iter()
        .map(|s| ours(root, s))
        .collect();
    let their_parts: Vec<&Value> = theirs.iter().flat_map(|s| alternatives(s)).collect();
    for part in &our_parts {
        if let Some(Value::Object(properties)) = part.get("properties") {
            for (name, schema) in properties {
                let defined: Vec<&Value> = their_parts
                    .iter()
                    .filter_map(|t| t.get("properties").and_then(|p| p.get(name)))
                    .collect();
                let path = format!("{at}.{name}");
                if defined.is_empty() {
                    out.push(path);
                } else {
                    missing_fields(root, schema, &defined, &path, out);
                }
            }
        }
        if let Some(items) = part.get("items") {
            let their_items: Vec<&Value> =
                their_parts.iter().filter_map(|t| t.get("items")).collect();
            if !their_items.is_empty() {
                missing_fields(root, items, &their_items, &format!("{at}[]"), out);
            } else if ours(root, items).get("properties").is_some() {
                out.push(format!("{at}[] (the answer holds no array here)"));
            }
        }
    }
}

/// The fields `wire` (a client's response type, as its `schemars` schema)
/// reads that the response schema of `method template` answering `status`
/// does not define; `Err` when the definition has no such response.
pub fn response_fields(
    api: &Api,
    method: &str,
    template: &str,
    status: &str,
    wire: &Value,
) -> Result<Vec<String>, String> {
    let theirs = api
        .response_schema(method, template, status)
        .ok_or_else(|| {
            format!(
                "{} defines no {status} JSON answer of {method} {template}",
                api.vendor
            )
        })?;
    let mut out = Vec::new();
    missing_fields(wire, wire, &[theirs], "", &mut out);
    Ok(out)
}
