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

use grant_operator::sandbox::emulator::Call;
use regex::Regex;
use serde_json::Value;

mod check;
mod responses;
mod schemas;
mod sources;

#[allow(unused_imports)] // not every test binary checks responses
pub use responses::response_fields;

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
