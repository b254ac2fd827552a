//! Reading the operations of one definition file: parameters, request
//! bodies, security requirements and responses.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::schemas::{close, from_openapi_30, only_supported, template_pattern, validator};
use super::{Body, Location, Operation, Param, Scheme, SchemeKind};

pub(super) const METHODS: &[&str] = &["get", "put", "post", "delete", "patch", "head", "options"];

/// What every operation of one definition file shares.
pub(super) struct Source<'a> {
    pub(super) file: &'a str,
    /// OpenAPI 3.0 (Snowflake): schemas need [`from_openapi_30`].
    pub(super) openapi_30: bool,
    pub(super) schemes: BTreeMap<String, Scheme>,
    /// The document's `security`, for operations without their own.
    pub(super) security: Value,
}

impl Source<'_> {
    pub(super) fn schema(&self, schema: Option<&Value>) -> Value {
        let mut schema = schema.cloned().unwrap_or(json!({}));
        if self.openapi_30 {
            from_openapi_30(&mut schema);
        }
        schema
    }

    /// An operation of a path item whose references are inlined.
    pub(super) fn operation(
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
    pub(super) fn params(&self, item: &Value, op: &Value) -> Result<Vec<Param>, String> {
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
    pub(super) fn body(&self, op: &Value) -> Result<Option<Body>, String> {
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
    pub(super) fn security(&self, op: &Value) -> Vec<Vec<Scheme>> {
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
    pub(super) fn responses(&self, op: &Value) -> BTreeMap<String, Value> {
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
