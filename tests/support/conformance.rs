//! Conformance: every request the operator sends to the Sigma and Snowflake
//! emulators, checked against the vendors' own OpenAPI definitions in
//! `../shared/vendor-apis/` (Sigma's `public-rest-api.json`, OpenAPI 3.1;
//! Snowflake's `*.yaml`, OpenAPI 3.0), which we did not write. The emulators
//! were written from the same reading as the clients, so they cannot catch a
//! request that both got wrong; the definitions can.
//!
//! For each recorded request ([`Call`]):
//! - the path matches one of the definition's path templates (a template
//!   parameter takes one path segment or part of one; the template with the
//!   most literal characters wins), and the method is defined there;
//! - path, query and header parameters: defined, and their values (path
//!   parameters percent-decoded, query values form-decoded, then read as the
//!   type the schema says) valid against the parameter's schema; required ones
//!   present; a non-array query parameter given once;
//! - the body: present when required, absent when the operation takes none,
//!   its `Content-Type` one the operation accepts, and the body valid against
//!   that media type's schema with every object schema closed (no property the
//!   definition does not name, read-only properties included) and enums,
//!   types and required properties checked;
//! - the auth: one of the operation's security requirements is met (HTTP
//!   Bearer, Basic, OAuth2 bearer), and where a scheme's description names a
//!   token-type header value (Snowflake's `X-Snowflake-Authorization-Token-Type`
//!   to `KEYPAIR_JWT`, `OAUTH` or `PROGRAMMATIC_ACCESS_TOKEN`), that header
//!   carries it.
//!
//! Schemas are validated with the `jsonschema` crate (draft 2020-12, formats
//! checked). Before that, a schema is made self-contained: every `$ref`
//! (within a file or across files, e.g. `common.yaml#/components/parameters/showLimit`)
//! is replaced by its target, OpenAPI 3.0's `nullable` becomes a `null` type,
//! and for requests each object schema gets `unevaluatedProperties: false` at
//! the level of its instance (so `allOf` parts still add up) with its
//! read-only properties removed. One rule is read from a definition's words
//! rather than its keywords: a string whose description says "Only X is
//! supported" (Snowflake's `user.yaml` says so of a user grant's
//! `securable_type`: `ROLE`) may only be X.
//!
//! [`response_fields`] is the static half: every field a client's response
//! wire type reads (its `schemars` schema) must exist in the response schema of
//! the operation that answers it.
//!
//! When `../shared/vendor-apis/` is absent (a clone outside this project),
//! [`definitions`] is `None`, the reason is printed once, and nothing is
//! checked.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use base64::Engine as _;
use grant_operator::sandbox::emulator::{Call, parse_pairs, percent_decode};
use regex::Regex;
use serde_json::{Map, Value, json};

/// The folder of the vendors' definitions, next to the repository.
pub fn vendor_apis_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/vendor-apis")
}

/// One vendor API: its operations, from one or more definition files.
pub struct Api {
    pub vendor: &'static str,
    operations: Vec<Operation>,
}

struct Operation {
    /// `file#operationId` (or method and template when it has none).
    name: String,
    method: String,
    template: String,
    pattern: Regex,
    template_params: Vec<String>,
    literal_len: usize,
    params: Vec<Param>,
    body: Option<Body>,
    /// Any one requirement, each met when all its schemes are.
    security: Vec<Vec<Scheme>>,
    /// Status -> the inlined schema of its `application/json` answer.
    responses: BTreeMap<String, Value>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Location {
    Path,
    Query,
    Header,
}

struct Param {
    name: String,
    location: Location,
    required: bool,
    array: bool,
    schema: Value,
    validator: jsonschema::Validator,
}

struct Body {
    required: bool,
    content: Vec<(String, jsonschema::Validator)>,
}

#[derive(Clone, Debug)]
struct Scheme {
    name: String,
    kind: SchemeKind,
    /// A header this scheme needs, with its value (from its description).
    token_type: Option<(String, String)>,
}

#[derive(Clone, Debug)]
enum SchemeKind {
    Bearer,
    Basic,
    ApiKey { location: String, name: String },
    Unsupported(String),
}

/// The definitions of every vendor that publishes one.
pub struct Definitions {
    pub sigma: Api,
    pub snowflake: Api,
}

/// The definitions, loaded once per test binary; `None` (with the reason
/// printed once) when `../shared/vendor-apis/` is absent.
pub fn definitions() -> Option<&'static Definitions> {
    static LOADED: OnceLock<Option<Definitions>> = OnceLock::new();
    LOADED
        .get_or_init(|| {
            let dir = vendor_apis_dir();
            if !dir.is_dir() {
                eprintln!(
                    "conformance: skipped, {} is absent (the vendors' API definitions are \
                     read from there at test time and are not part of this repository)",
                    dir.display()
                );
                return None;
            }
            Some(Definitions::load(&dir).unwrap_or_else(|error| {
                panic!(
                    "conformance: cannot read the definitions in {}: {error}",
                    dir.display()
                )
            }))
        })
        .as_ref()
}

impl Definitions {
    fn load(dir: &Path) -> Result<Definitions, String> {
        let sigma_file = dir.join("sigma/public-rest-api.json");
        let sigma: Value = serde_json::from_str(&read(&sigma_file)?)
            .map_err(|error| format!("{}: {error}", sigma_file.display()))?;
        let sigma = Api::from_documents(
            "sigma",
            BTreeMap::from([("public-rest-api.json".to_string(), sigma)]),
        )?;

        let mut files = BTreeMap::new();
        let snowflake_dir = dir.join("snowflake");
        let mut names: Vec<PathBuf> = std::fs::read_dir(&snowflake_dir)
            .map_err(|error| format!("{}: {error}", snowflake_dir.display()))?
            .filter_map(|entry| entry.ok().map(|entry| entry.path()))
            .filter(|path| path.extension().is_some_and(|ext| ext == "yaml"))
            .collect();
        names.sort();
        for path in names {
            let document: Value = serde_norway::from_str(&read(&path)?)
                .map_err(|error| format!("{}: {error}", path.display()))?;
            let name = path
                .file_name()
                .map(|name| name.to_string_lossy().to_string())
                .unwrap_or_default();
            files.insert(name, document);
        }
        let snowflake = Api::from_documents("snowflake", files)?;
        Ok(Definitions { sigma, snowflake })
    }
}

fn read(path: &Path) -> Result<String, String> {
    std::fs::read_to_string(path).map_err(|error| format!("{}: {error}", path.display()))
}

// ---------------------------------------------------------------------------
// Loading: references, OpenAPI 3.0 schemas, closed request schemas
// ---------------------------------------------------------------------------

/// The definition files of one vendor, by file name.
struct Documents {
    files: BTreeMap<String, Value>,
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

    fn inlined(&self, file: &str, value: &Value) -> Result<Value, String> {
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
fn from_openapi_30(schema: &mut Value) {
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
fn only_supported(schema: &mut Value) {
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
fn close(schema: &mut Value, instance_root: bool) {
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

fn validator(schema: &Value) -> Result<jsonschema::Validator, String> {
    jsonschema::draft202012::options()
        .should_validate_formats(true)
        .should_ignore_unknown_formats(true)
        .build(schema)
        .map_err(|error| format!("schema {schema}: {error}"))
}

/// `/a/{b}/c:{d}` as an anchored pattern; `{...}` takes one segment or part of one.
fn template_pattern(template: &str) -> (Regex, Vec<String>, usize) {
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

const METHODS: &[&str] = &["get", "put", "post", "delete", "patch", "head", "options"];

/// What every operation of one definition file shares.
struct Source<'a> {
    file: &'a str,
    /// OpenAPI 3.0 (Snowflake): schemas need [`from_openapi_30`].
    openapi_30: bool,
    schemes: BTreeMap<String, Scheme>,
    /// The document's `security`, for operations without their own.
    security: Value,
}

impl Source<'_> {
    fn schema(&self, schema: Option<&Value>) -> Value {
        let mut schema = schema.cloned().unwrap_or(json!({}));
        if self.openapi_30 {
            from_openapi_30(&mut schema);
        }
        schema
    }

    /// An operation of a path item whose references are inlined.
    fn operation(
        &self,
        template: &str,
        method: &str,
        item: &Value,
        op: &Value,
    ) -> Result<Operation, String> {
        let name = format!(
            "{}#{}",
            self.file,
            op.get("operationId")
                .and_then(Value::as_str)
                .map(String::from)
                .unwrap_or_else(|| format!("{} {template}", method.to_uppercase()))
        );
        let (pattern, template_params, literal_len) = template_pattern(template);
        Ok(Operation {
            name,
            method: method.to_uppercase(),
            template: template.to_string(),
            pattern,
            template_params,
            literal_len,
            params: self.params(item, op)?,
            body: self.body(op)?,
            security: self.security(op),
            responses: self.responses(op),
        })
    }

    /// The parameters of an operation; its own override the path item's of the
    /// same name and place.
    fn params(&self, item: &Value, op: &Value) -> Result<Vec<Param>, String> {
        let mut declared: Vec<&Value> = Vec::new();
        for param in [op, item]
            .into_iter()
            .filter_map(|holder| holder.get("parameters").and_then(Value::as_array))
            .flatten()
        {
            let key = |p: &Value| (p.get("name").cloned(), p.get("in").cloned());
            if !declared.iter().any(|seen| key(seen) == key(param)) {
                declared.push(param);
            }
        }
        let mut params = Vec::new();
        for param in declared {
            let location = match param.get("in").and_then(Value::as_str) {
                Some("path") => Location::Path,
                Some("query") => Location::Query,
                Some("header") => Location::Header,
                _ => continue,
            };
            let schema = self.schema(param.get("schema"));
            params.push(Param {
                name: param
                    .get("name")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string(),
                location,
                required: param.get("required") == Some(&Value::Bool(true))
                    || location == Location::Path,
                array: schema.get("type") == Some(&json!("array")),
                validator: validator(&schema)?,
                schema,
            });
        }
        Ok(params)
    }

    /// The request body: each media type's schema, closed.
    fn body(&self, op: &Value) -> Result<Option<Body>, String> {
        let Some(request_body) = op.get("requestBody") else {
            return Ok(None);
        };
        let mut content = Vec::new();
        for (media, entry) in request_body
            .get("content")
            .and_then(Value::as_object)
            .into_iter()
            .flatten()
        {
            let mut schema = self.schema(entry.get("schema"));
            only_supported(&mut schema);
            close(&mut schema, true);
            content.push((media.clone(), validator(&schema)?));
        }
        Ok(Some(Body {
            required: request_body.get("required") == Some(&Value::Bool(true)),
            content,
        }))
    }

    /// The security requirements: any one, each met when all its schemes are.
    fn security(&self, op: &Value) -> Vec<Vec<Scheme>> {
        let scheme = |name: &String| {
            self.schemes.get(name).cloned().unwrap_or(Scheme {
                name: name.clone(),
                kind: SchemeKind::Unsupported("undefined scheme".into()),
                token_type: None,
            })
        };
        op.get("security")
            .unwrap_or(&self.security)
            .as_array()
            .into_iter()
            .flatten()
            .map(|requirement| {
                requirement
                    .as_object()
                    .into_iter()
                    .flatten()
                    .map(|(name, _)| scheme(name))
                    .collect()
            })
            .collect()
    }

    /// The `application/json` answer schemas, by status.
    fn responses(&self, op: &Value) -> BTreeMap<String, Value> {
        op.get("responses")
            .and_then(Value::as_object)
            .into_iter()
            .flatten()
            .filter_map(|(status, response)| {
                let schema = response.pointer("/content/application~1json/schema")?;
                Some((status.clone(), self.schema(Some(schema))))
            })
            .collect()
    }
}

impl Api {
    fn from_documents(vendor: &'static str, files: BTreeMap<String, Value>) -> Result<Api, String> {
        let documents = Documents { files };
        let mut operations = Vec::new();
        for (file, document) in &documents.files {
            let Some(Value::Object(paths)) = document.get("paths") else {
                continue;
            };
            let source = Source {
                file,
                openapi_30: document
                    .get("openapi")
                    .and_then(Value::as_str)
                    .is_some_and(|version| version.starts_with("3.0")),
                schemes: security_schemes(&documents, file, document)?,
                security: document.get("security").cloned().unwrap_or(json!([])),
            };
            for (template, item) in paths {
                let item = documents.inlined(file, item)?;
                for method in METHODS {
                    if let Some(op) = item.get(*method) {
                        operations.push(source.operation(template, method, &item, op)?);
                    }
                }
            }
        }
        Ok(Api { vendor, operations })
    }

    /// The operation a request path and method reach, or the rule it breaks.
    fn operation(&self, method: &str, path: &str) -> Result<(&Operation, Vec<String>), String> {
        let mut matching: Vec<(&Operation, Vec<String>)> = self
            .operations
            .iter()
            .filter_map(|op| {
                let captures = op.pattern.captures(path)?;
                let values = (1..captures.len())
                    .map(|i| {
                        captures
                            .get(i)
                            .map(|m| m.as_str().to_string())
                            .unwrap_or_default()
                    })
                    .collect();
                Some((op, values))
            })
            .collect();
        if matching.is_empty() {
            return Err(format!("path {path} matches no path of the definition"));
        }
        let best = matching
            .iter()
            .filter(|(op, _)| op.method.eq_ignore_ascii_case(method))
            .map(|(op, _)| op.literal_len)
            .max();
        let Some(best) = best else {
            let mut templates: Vec<String> = matching
                .iter()
                .map(|(op, _)| format!("{} {}", op.method, op.template))
                .collect();
            templates.sort();
            templates.dedup();
            return Err(format!(
                "method {method} is not defined for {path} (defined: {})",
                templates.join(", ")
            ));
        };
        matching.retain(|(op, _)| op.method.eq_ignore_ascii_case(method) && op.literal_len == best);
        Ok(matching.swap_remove(0))
    }

    /// Every rule of the definition `call` breaks (empty when it conforms).
    pub fn check(&self, call: &Call) -> Vec<String> {
        let (op, values) = match self.operation(&call.method, &call.path) {
            Ok(found) => found,
            Err(rule) => return vec![rule],
        };
        let mut broken = Vec::new();
        let mut rule = |text: String| broken.push(format!("{}: {text}", op.name));

        // Path parameters.
        for (name, raw) in op.template_params.iter().zip(values) {
            let Some(param) = op
                .params
                .iter()
                .find(|p| p.location == Location::Path && &p.name == name)
            else {
                rule(format!("path parameter {name} is not declared"));
                continue;
            };
            match percent_decode(&raw, false) {
                Ok(value) => check_value(param, &value, &mut rule),
                Err(error) => rule(format!("path parameter {name}: {error}")),
            }
        }

        // Query parameters.
        match parse_pairs(&call.query) {
            Err(error) => rule(format!("query: {error}")),
            Ok(pairs) => {
                let mut given: BTreeMap<String, Vec<String>> = BTreeMap::new();
                for (name, value) in pairs {
                    given.entry(name).or_default().push(value);
                }
                for (name, values) in &given {
                    let Some(param) = op
                        .params
                        .iter()
                        .find(|p| p.location == Location::Query && &p.name == name)
                    else {
                        rule(format!("query parameter {name} is not defined"));
                        continue;
                    };
                    if param.array {
                        let items: Vec<Value> = values
                            .iter()
                            .map(|v| typed(param.schema.get("items").unwrap_or(&json!({})), v))
                            .collect();
                        report(param, &Value::Array(items), &mut rule);
                    } else if values.len() > 1 {
                        rule(format!(
                            "query parameter {name} is given {} times",
                            values.len()
                        ));
                    } else {
                        for value in values {
                            check_value(param, value, &mut rule);
                        }
                    }
                }
                for param in op.params.iter().filter(|p| p.location == Location::Query) {
                    if param.required && !given.contains_key(&param.name) {
                        rule(format!(
                            "required query parameter {} is missing",
                            param.name
                        ));
                    }
                }
            }
        }

        // Header parameters.
        for param in op.params.iter().filter(|p| p.location == Location::Header) {
            match call.header(&param.name) {
                Some(value) => check_value(param, value, &mut rule),
                None if param.required => {
                    rule(format!("required header {} is missing", param.name))
                }
                None => {}
            }
        }

        // Body.
        let media = call.header("content-type").map(|value| {
            value
                .split(';')
                .next()
                .unwrap_or_default()
                .trim()
                .to_ascii_lowercase()
        });
        match (&op.body, &call.body) {
            (None, Some(_)) => rule("the operation takes no request body, one was sent".into()),
            (Some(body), None) if body.required => {
                rule("the required request body is missing".into())
            }
            (Some(body), Some(sent)) => {
                let media = media.unwrap_or_default();
                match body
                    .content
                    .iter()
                    .find(|(accepted, _)| media_matches(accepted, &media))
                {
                    None => rule(format!(
                        "Content-Type {media:?} is not one the operation accepts ({})",
                        body.content
                            .iter()
                            .map(|(m, _)| m.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    )),
                    Some((accepted, validator)) => {
                        if accepted.contains("json") && sent.is_string() {
                            rule("the body is not JSON".into());
                        } else {
                            for error in validator.iter_errors(sent) {
                                rule(format!(
                                    "body {}: {error}",
                                    pointer_or_root(&error.instance_path().to_string())
                                ));
                            }
                        }
                    }
                }
            }
            _ => {}
        }

        // Auth.
        if !op.security.is_empty()
            && !op
                .security
                .iter()
                .any(|all| all.iter().all(|s| met(s, call)))
        {
            let wanted: Vec<String> = op
                .security
                .iter()
                .map(|all| {
                    all.iter()
                        .map(|s| match &s.token_type {
                            Some((header, value)) => format!("{} ({header}: {value})", s.name),
                            None => s.name.clone(),
                        })
                        .collect::<Vec<_>>()
                        .join(" + ")
                })
                .collect();
            let scheme = call
                .header("authorization")
                .and_then(|value| value.split_whitespace().next())
                .unwrap_or("none");
            let token_type = call
                .header("x-snowflake-authorization-token-type")
                .map(|value| format!(", X-Snowflake-Authorization-Token-Type {value:?}"))
                .unwrap_or_default();
            rule(format!(
                "no security requirement is met (Authorization scheme {scheme}{token_type}; \
                 allowed: {})",
                wanted.join(" | ")
            ));
        }
        broken
    }

    /// The inlined response schema of `method template` answering `status`.
    pub fn response_schema(&self, method: &str, template: &str, status: &str) -> Option<&Value> {
        self.operations
            .iter()
            .find(|op| op.method.eq_ignore_ascii_case(method) && op.template == template)
            .and_then(|op| op.responses.get(status))
    }
}

fn media_matches(accepted: &str, media: &str) -> bool {
    accepted == "*/*"
        || accepted.eq_ignore_ascii_case(media)
        || accepted
            .strip_suffix("/*")
            .is_some_and(|prefix| media.starts_with(&format!("{prefix}/")))
}

fn pointer_or_root(pointer: &str) -> String {
    if pointer.is_empty() {
        "(root)".into()
    } else {
        pointer.to_string()
    }
}

/// A text value read as the type its schema says (what a server does with a
/// path, query or header parameter); a text that is not of that type stays text,
/// so the schema refuses it.
fn typed(schema: &Value, text: &str) -> Value {
    let kinds: Vec<&str> = match schema.get("type") {
        Some(Value::String(kind)) => vec![kind.as_str()],
        Some(Value::Array(kinds)) => kinds.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    };
    if kinds.contains(&"integer")
        && let Ok(n) = text.parse::<i64>()
    {
        return json!(n);
    }
    if kinds.contains(&"number")
        && let Some(number) = text
            .parse::<f64>()
            .ok()
            .and_then(serde_json::Number::from_f64)
    {
        return Value::Number(number);
    }
    if kinds.contains(&"boolean") && (text == "true" || text == "false") {
        return Value::Bool(text == "true");
    }
    Value::String(text.to_string())
}

fn check_value(param: &Param, text: &str, rule: &mut impl FnMut(String)) {
    report(param, &typed(&param.schema, text), rule);
}

fn report(param: &Param, value: &Value, rule: &mut impl FnMut(String)) {
    let place = match param.location {
        Location::Path => "path parameter",
        Location::Query => "query parameter",
        Location::Header => "header",
    };
    for error in param.validator.iter_errors(value) {
        rule(format!("{place} {} = {value}: {error}", param.name));
    }
}

/// Whether `call` meets `scheme`.
fn met(scheme: &Scheme, call: &Call) -> bool {
    let authorization = call.header("authorization").unwrap_or_default();
    let (kind, credentials) = authorization
        .split_once(' ')
        .map(|(kind, rest)| (kind, rest.trim()))
        .unwrap_or((authorization, ""));
    let shape = match &scheme.kind {
        SchemeKind::Bearer => kind.eq_ignore_ascii_case("bearer") && !credentials.is_empty(),
        SchemeKind::Basic => {
            kind.eq_ignore_ascii_case("basic")
                && base64::engine::general_purpose::STANDARD
                    .decode(credentials)
                    .ok()
                    .and_then(|bytes| String::from_utf8(bytes).ok())
                    .is_some_and(|pair| pair.contains(':'))
        }
        SchemeKind::ApiKey { location, name } => match location.as_str() {
            "header" => call.header(name).is_some(),
            "query" => parse_pairs(&call.query)
                .map(|pairs| pairs.iter().any(|(k, _)| k == name))
                .unwrap_or(false),
            _ => false,
        },
        SchemeKind::Unsupported(_) => false,
    };
    shape
        && scheme
            .token_type
            .as_ref()
            .is_none_or(|(header, value)| call.header(header) == Some(value.as_str()))
}

/// The security schemes of a document, by name (references resolved).
fn security_schemes(
    documents: &Documents,
    file: &str,
    document: &Value,
) -> Result<BTreeMap<String, Scheme>, String> {
    static TOKEN_TYPE: OnceLock<Regex> = OnceLock::new();
    let token_type = TOKEN_TYPE.get_or_init(|| {
        Regex::new(r"`([A-Za-z][A-Za-z-]*)` to `([A-Z_]+)`").expect("a valid pattern")
    });
    let mut schemes = BTreeMap::new();
    let Some(Value::Object(declared)) = document.pointer("/components/securitySchemes") else {
        return Ok(schemes);
    };
    for (name, scheme) in declared {
        let scheme = documents.inlined(file, scheme)?;
        let text = |key: &str| {
            scheme
                .get(key)
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string()
        };
        let kind = match (
            text("type").as_str(),
            text("scheme").to_ascii_lowercase().as_str(),
        ) {
            ("http", "bearer") | ("oauth2", _) | ("openIdConnect", _) => SchemeKind::Bearer,
            ("http", "basic") => SchemeKind::Basic,
            ("apiKey", _) => SchemeKind::ApiKey {
                location: text("in"),
                name: text("name"),
            },
            (other, sub) => SchemeKind::Unsupported(format!("{other} {sub}")),
        };
        let description = text("description");
        let token_type = token_type
            .captures(&description)
            .map(|found| (found[1].to_string(), found[2].to_string()));
        schemes.insert(
            name.clone(),
            Scheme {
                name: name.clone(),
                kind,
                token_type,
            },
        );
    }
    Ok(schemes)
}

// ---------------------------------------------------------------------------
// Checking the calls of a scenario
// ---------------------------------------------------------------------------

/// How a request is shown in a failure: method, path, query and body.
fn shown(call: &Call) -> String {
    let query = if call.query.is_empty() {
        String::new()
    } else {
        format!("?{}", call.query)
    };
    let body = call
        .body
        .as_ref()
        .map(|body| format!(" body {body}"))
        .unwrap_or_default();
    format!("{} {}{query}{body}", call.method, call.path)
}

/// Every violation of `calls` against `api`, one line each: the scenario, the
/// request and the rule. Identical lines (the same request sent again) once.
pub fn violations(scenario: &str, api: &Api, calls: &[Call]) -> Vec<String> {
    let mut seen = BTreeSet::new();
    let mut out = Vec::new();
    for call in calls {
        for rule in api.check(call) {
            let line = format!("{scenario}: {} {}: {rule}", api.vendor, shown(call));
            if seen.insert(line.clone()) {
                out.push(line);
            }
        }
    }
    out
}

/// Checks the Sigma and Snowflake calls of a scenario; panics listing every
/// violation. Does nothing (after saying why once) without the definitions.
pub fn assert_conform(scenario: &str, sigma: &[Call], snowflake: &[Call]) {
    let Some(definitions) = definitions() else {
        return;
    };
    let mut all = violations(scenario, &definitions.sigma, sigma);
    all.extend(violations(scenario, &definitions.snowflake, snowflake));
    if !all.is_empty() {
        panic!(
            "{} request(s) depart from the vendors' own API definitions ({}):\n  {}",
            all.len(),
            vendor_apis_dir().display(),
            all.join("\n  ")
        );
    }
}

/// The name of the running test (libtest names its thread after it).
pub fn scenario() -> String {
    std::thread::current()
        .name()
        .unwrap_or("unnamed scenario")
        .to_string()
}

// ---------------------------------------------------------------------------
// Responses: the fields a client reads
// ---------------------------------------------------------------------------

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
