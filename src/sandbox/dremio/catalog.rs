//! Projects and the catalog: the project info, the catalog root and
//! objects looked up by path.

use axum::http::StatusCode;
use serde_json::{Value, json};

use crate::sandbox::emulator::{Answer, ApiError, json_response};

use super::routes::{bad_request, decode, not_found};
use super::{Object, State};

pub(super) fn project_info(raw: Option<&str>) -> Answer {
    let id = decode(raw.unwrap_or_default())?;
    Ok(json_response(
        StatusCode::OK,
        &json!({"id": id, "name": id}),
    ))
}

pub(super) fn catalog_root(st: &State) -> Answer {
    let data: Vec<Value> = st
        .objects
        .iter()
        .filter(|o| o.path.len() == 1)
        .map(|o| {
            json!({
                "id": o.id,
                "path": o.path,
                "type": "CONTAINER",
                "containerType": "SPACE",
            })
        })
        .collect();
    Ok(json_response(StatusCode::OK, &json!({"data": data})))
}

pub(super) fn object_json(object: &Object) -> Value {
    json!({
        "entityType": object.entity_type(),
        "id": object.id,
        "path": object.path,
        "tag": object.tag,
    })
}

pub(super) fn object_not_found(id: &str) -> ApiError {
    not_found(format!("Could not find entity with id [{id}]"))
}

pub(super) fn object_by_path(st: &State, raw: &[&str]) -> Answer {
    if raw.is_empty() || raw.iter().any(|p| p.is_empty()) {
        return Err(bad_request("Catalog path must not have empty parts"));
    }
    let path = raw
        .iter()
        .map(|p| decode(p))
        .collect::<Result<Vec<String>, ApiError>>()?;
    if path.iter().any(String::is_empty) {
        return Err(bad_request("Catalog path must not have empty parts"));
    }
    let object = st.objects.iter().find(|o| o.path == path).ok_or_else(|| {
        not_found(format!(
            "Could not find entity with path [{}]",
            path.join(", ")
        ))
    })?;
    Ok(json_response(StatusCode::OK, &object_json(object)))
}
