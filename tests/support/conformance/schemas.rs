//! Loading: `$ref`s resolved within and across files, OpenAPI 3.0 schemas
//! as JSON Schema 2020-12, closed request schemas, validators, and path
//! templates as patterns.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::OnceLock;

use regex::Regex;
use serde_json::{Map, Value, json};

/// The definition files of one vendor, by file name.
pub(super) struct Documents {
    pub(super) files: BTreeMap<String, Value>,
}

impl Documents {
    /// The target of `reference` made in `file`, and the file it is in.
    fn target(&self, file: &str, reference: &str) -> Result<(String, Value), String> {
        let (file_part, pointer) = reference.split_once('#').unwrap_or((reference, ""));
        let target_file = if file_part.is_empty() {
            file.to_string()
        } else {
            file_part.trim_start_matches("./").to_string()
        };
        let document = self
            .files
            .get(&target_file)
            .ok_or_else(|| format!("$ref {reference:?} in {file}: no file {target_file}"))?;
        // Sigma writes some pointers without the leading slash (`#components/...`).
        let pointer = if pointer.is_empty() || pointer.starts_with('/') {
            pointer.to_string()
        } else {
            format!("/{pointer}")
        };
        let value = document
            .pointer(&pointer)
            .ok_or_else(|| format!("$ref {reference:?} in {file}: nothing at {pointer}"))?;
        Ok((target_file, value.clone()))
    }

    /// `value` with every `$ref` replaced by its target, recursively. A
    /// reference to itself (directly or not) becomes `{}`, noted in `cycles`.
    fn inline(
        &self,
        file: &str,
        value: &Value,
        stack: &mut Vec<String>,
        cycles: &mut BTreeSet<String>,
    ) -> Result<Value, String> {
        match value {
            Value::Object(map) => {
                if let Some(Value::String(reference)) = map.get("$ref") {
                    let (target_file, target) = self.target(file, reference)?;
                    let key = format!(
                        "{target_file}{}",
                        reference.split_once('#').map(|(_, p)| p).unwrap_or("")
                    );
                    if stack.contains(&key) {
                        cycles.insert(key);
                        return Ok(json!({}));
                    }
                    stack.push(key);
                    let inlined = self.inline(&target_file, &target, stack, cycles);
                    stack.pop();
                    return inlined;
                }
                let mut out = Map::new();
                for (key, child) in map {
                    out.insert(key.clone(), self.inline(file, child, stack, cycles)?);
                }
                Ok(Value::Object(out))
            }
            Value::Array(items) => items
                .iter()
                .map(|item| self.inline(file, item, stack, cycles))
                .collect::<Result<Vec<_>, _>>()
                .map(Value::Array),
            other => Ok(other.clone()),
        }
    }

    pub(super) fn inlined(&self, file: &str, value: &Value) -> Result<Value, String> {
        self.inline(file, value, &mut Vec::new(), &mut BTreeSet::new())
    }
}

/// Keywords whose value is one subschema.
const ONE_SUBSCHEMA: &[&str] = &[
    "additionalProperties",
    "items",
    "contains",
    "propertyNames",
    "not",
    "if",
    "then",
    "else",
    "unevaluatedProperties",
    "unevaluatedItems",
];
/// Keywords whose value is an array of subschemas.
const SUBSCHEMA_LISTS: &[&str] = &["allOf", "anyOf", "oneOf", "prefixItems"];
/// Keywords whose value maps names to subschemas.
const SUBSCHEMA_MAPS: &[&str] = &[
    "properties",
    "patternProperties",
    "dependentSchemas",
    "$defs",
    "definitions",
];

/// Applies `change` to every schema object of `schema` (outermost first).
fn each_schema(schema: &mut Value, change: &mut impl FnMut(&mut Map<String, Value>)) {
    let Value::Object(map) = schema else {
        return;
    };
    change(map);
    for key in ONE_SUBSCHEMA {
        if let Some(child) = map.get_mut(*key) {
            each_schema(child, change);
        }
    }
    for key in SUBSCHEMA_LISTS {
        if let Some(Value::Array(children)) = map.get_mut(*key) {
            children
                .iter_mut()
                .for_each(|child| each_schema(child, change));
        }
    }
    for key in SUBSCHEMA_MAPS {
        if let Some(Value::Object(children)) = map.get_mut(*key) {
            children
                .values_mut()
                .for_each(|child| each_schema(child, change));
        }
    }
}

/// An OpenAPI 3.0 schema object as JSON Schema 2020-12.
pub(super) fn from_openapi_30(schema: &mut Value) {
    each_schema(schema, &mut |map| {
        if map.remove("nullable") == Some(Value::Bool(true)) {
            match map.get_mut("type") {
                Some(Value::String(kind)) => {
                    let kind = kind.clone();
                    map.insert("type".into(), json!([kind, "null"]));
                }
                Some(Value::Array(kinds)) => kinds.push(json!("null")),
                _ => {}
            }
            if let Some(Value::Array(values)) = map.get_mut("enum") {
                values.push(Value::Null);
            }
        }
        for (bound, exclusive) in [
            ("minimum", "exclusiveMinimum"),
            ("maximum", "exclusiveMaximum"),
        ] {
            if map.get(exclusive) == Some(&Value::Bool(true)) {
                let value = map.remove(bound).unwrap_or(Value::Null);
                map.insert(exclusive.into(), value);
            } else if map.get(exclusive) == Some(&Value::Bool(false)) {
                map.remove(exclusive);
            }
        }
        for annotation in ["example", "discriminator", "xml", "externalDocs"] {
            map.remove(annotation);
        }
    });
}

/// A string whose description says "Only X is supported" may only be X.
pub(super) fn only_supported(schema: &mut Value) {
    static ONLY: OnceLock<Regex> = OnceLock::new();
    let only = ONLY.get_or_init(|| {
        Regex::new(r"Only `?([A-Za-z_][A-Za-z0-9_ ]*?)`? is supported").expect("a valid pattern")
    });
    each_schema(schema, &mut |map| {
        let is_string = map.get("type") == Some(&json!("string"));
        let value = map
            .get("description")
            .and_then(Value::as_str)
            .and_then(|text| only.captures(text))
            .map(|found| found[1].to_string());
        if let (true, Some(value), false) = (is_string, value, map.contains_key("enum")) {
            map.insert("enum".into(), json!([value]));
        }
    });
}

/// Whether a schema describes objects with named properties (itself or
/// through its `allOf`/`anyOf`/`oneOf` parts).
fn names_properties(schema: &Value) -> bool {
    let Value::Object(map) = schema else {
        return false;
    };
    map.contains_key("properties")
        || SUBSCHEMA_LISTS
            .iter()
            .filter(|key| **key != "prefixItems")
            .filter_map(|key| map.get(*key).and_then(Value::as_array))
            .any(|parts| parts.iter().any(names_properties))
}

/// A request schema closed: read-only properties removed, and every object
/// instance allowed only the properties its schema names. `unevaluatedProperties`
/// goes on the schema of the instance itself, never on an `allOf`/`oneOf`
/// part, so properties named by the parts together are all allowed.
pub(super) fn close(schema: &mut Value, instance_root: bool) {
    let Value::Object(map) = schema else {
        return;
    };
    if let Some(Value::Object(properties)) = map.get_mut("properties") {
        properties.retain(|_, property| property.get("readOnly") != Some(&Value::Bool(true)));
    }
    if instance_root
        && names_properties(&Value::Object(map.clone()))
        && !map.contains_key("additionalProperties")
        && !map.contains_key("unevaluatedProperties")
    {
        map.insert("unevaluatedProperties".into(), Value::Bool(false));
    }
    for key in ["additionalProperties", "items", "contains"] {
        if let Some(child) = map.get_mut(key) {
            close(child, true);
        }
    }
    if let Some(Value::Array(children)) = map.get_mut("prefixItems") {
        children.iter_mut().for_each(|child| close(child, true));
    }
    for key in ["properties", "patternProperties"] {
        if let Some(Value::Object(children)) = map.get_mut(key) {
            children.values_mut().for_each(|child| close(child, true));
        }
    }
    for key in ["allOf", "anyOf", "oneOf"] {
        if let Some(Value::Array(children)) = map.get_mut(key) {
            children.iter_mut().for_each(|child| close(child, false));
        }
    }
    for key in ["not", "if", "then", "else"] {
        if let Some(child) = map.get_mut(key) {
            close(child, false);
        }
    }
}

pub(super) fn validator(schema: &Value) -> Result<jsonschema::Validator, String> {
    jsonschema::draft202012::options()
        .should_validate_formats(true)
        .should_ignore_unknown_formats(true)
        .build(schema)
        .map_err(|error| format!("schema {schema}: {error}"))
}

/// `/a/{b}/c:{d}` as an anchored pattern; `{...}` takes one segment or part of one.
pub(super) fn template_pattern(template: &str) -> (Regex, Vec<String>, usize) {
    let placeholder = Regex::new(r"\{([^}/]+)\}").expect("a valid pattern");
    let mut pattern = String::from("^");
    let mut names = Vec::new();
    let mut literal = 0;
    let mut last = 0;
    for found in placeholder.captures_iter(template) {
        let whole = found.get(0).expect("group 0");
        let text = &template[last..whole.start()];
        literal += text.len();
        pattern.push_str(&regex::escape(text));
        pattern.push_str("([^/]+)");
        names.push(found[1].to_string());
        last = whole.end();
    }
    literal += template.len() - last;
    pattern.push_str(&regex::escape(&template[last..]));
    pattern.push('$');
    (
        Regex::new(&pattern).expect("an escaped template is a valid pattern"),
        names,
        literal,
    )
}
