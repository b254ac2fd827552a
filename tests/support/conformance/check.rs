//! An [`Api`] built from its definition files, and one request checked
//! against it: the operation its path and method select, its parameters,
//! body and auth (security schemes and what meets them).

use std::collections::BTreeMap;
use std::sync::OnceLock;

use base64::Engine as _;
use grant_operator::sandbox::emulator::{Call, parse_pairs, percent_decode};
use regex::Regex;
use serde_json::{Value, json};

use super::schemas::Documents;
use super::sources::{METHODS, Source};
use super::{Api, Location, Operation, Param, Scheme, SchemeKind};

impl Api {
    pub(super) fn from_documents(
        vendor: &'static str,
        files: BTreeMap<String, Value>,
    ) -> Result<Api, String> {
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
