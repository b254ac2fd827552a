//! The Argo CD health check (`deploy/argocd/health.lua`) in Lua 5.1, the
//! language of Argo CD's gopher-lua, over sample resources in every state of the
//! contract; and the `argocd-cm` snippet carries that script for every kind.

use std::path::PathBuf;

use mlua::serde::SerializeOptions;
use mlua::{Lua, LuaSerdeExt, Table};
use serde_json::{Value, json};

fn read(path: &str) -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(path);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Runs the health check as Argo CD does: the resource in the global `obj`.
fn health(resource: &Value) -> (String, String) {
    let lua = Lua::new();
    let options = SerializeOptions::new()
        .serialize_none_to_null(false)
        .serialize_unit_to_null(false);
    let obj = lua.to_value_with(resource, options).unwrap();
    lua.globals().set("obj", obj).unwrap();
    let hs: Table = lua
        .load(read("deploy/argocd/health.lua"))
        .set_name("health.lua")
        .eval()
        .unwrap_or_else(|e| panic!("health.lua failed on {resource}: {e}"));
    let status: String = hs.get("status").unwrap();
    let message: Option<String> = hs.get("message").unwrap();
    (status, message.unwrap_or_default())
}

fn grant(kind: &str, generation: i64, status: Option<Value>) -> Value {
    let mut object = json!({
        "apiVersion": "grantoperator.dev/v1alpha1",
        "kind": kind,
        "metadata": { "name": "readers", "namespace": "analytics", "generation": generation },
        "spec": {},
    });
    if let Some(status) = status {
        object["status"] = status;
    }
    object
}

fn ready(status: &str, reason: &str, message: &str, generation: i64) -> Value {
    json!({
        "observedGeneration": generation,
        "conditions": [{
            "type": "Ready",
            "status": status,
            "reason": reason,
            "message": message,
            "observedGeneration": generation,
            "lastTransitionTime": "2025-01-01T00:00:00Z",
        }],
        "grants": [],
    })
}

const KINDS: [&str; 6] = [
    "GrantProvider",
    "ClusterGrantProvider",
    "SigmaGrant",
    "GrafanaGrant",
    "SnowflakeGrant",
    "DremioGrant",
];

#[test]
fn every_state_of_the_contract_maps_to_its_argo_cd_health() {
    for kind in KINDS {
        let cases = [
            (grant(kind, 1, None), "Progressing", "no status yet"),
            (
                grant(kind, 1, Some(json!({}))),
                "Progressing",
                "empty status",
            ),
            (
                grant(kind, 1, Some(json!({ "conditions": [] }))),
                "Progressing",
                "no Ready condition",
            ),
            (
                grant(
                    kind,
                    1,
                    Some(ready("Unknown", "Progressing", "first sync under way", 1)),
                ),
                "Progressing",
                "first sync",
            ),
            (
                grant(
                    kind,
                    3,
                    Some(ready("True", "Synced", "3 of 3 grants applied", 2)),
                ),
                "Progressing",
                "observedGeneration behind generation",
            ),
            (
                grant(
                    kind,
                    2,
                    Some(ready("True", "Synced", "3 of 3 grants applied", 2)),
                ),
                "Healthy",
                "synced",
            ),
            (
                grant(
                    kind,
                    2,
                    Some(ready("True", "Authenticated", "token obtained", 2)),
                ),
                "Healthy",
                "provider authenticated",
            ),
            (
                grant(
                    kind,
                    1,
                    Some(ready("True", "Suspended", "reconciliation is suspended", 1)),
                ),
                "Suspended",
                "suspended while Ready",
            ),
            (
                grant(
                    kind,
                    1,
                    Some(ready(
                        "False",
                        "Suspended",
                        "reconciliation is suspended",
                        1,
                    )),
                ),
                "Suspended",
                "suspended while not Ready",
            ),
            (
                grant(
                    kind,
                    1,
                    Some(ready("False", "Expired", "expired; grants revoked", 1)),
                ),
                "Suspended",
                "expired",
            ),
            (
                grant(
                    kind,
                    1,
                    Some(ready(
                        "False",
                        "GranteeNotFound",
                        "jane@example.com does not exist",
                        1,
                    )),
                ),
                "Degraded",
                "a failure",
            ),
            (
                grant(
                    kind,
                    1,
                    Some(ready("False", "DriftDetected", "1 grant differs", 1)),
                ),
                "Degraded",
                "drift in Observe mode",
            ),
            (
                grant(
                    kind,
                    1,
                    Some(ready("False", "Deleting", "provider unavailable", 1)),
                ),
                "Degraded",
                "deletion blocked",
            ),
            (
                grant(kind, 1, Some(ready("False", "Unauthorized", "401", 1))),
                "Degraded",
                "provider refused",
            ),
        ];
        for (resource, expected, what) in cases {
            let (status, message) = health(&resource);
            assert_eq!(status, expected, "{kind}: {what}: {message}");
            assert!(!message.is_empty(), "{kind}: {what}: a message");
        }
    }
}

#[test]
fn the_message_carries_the_reason_and_the_operators_message() {
    let (_, message) = health(&grant(
        "SigmaGrant",
        1,
        Some(ready(
            "False",
            "GranteeNotFound",
            "jane@example.com does not exist",
            1,
        )),
    ));
    assert_eq!(message, "GranteeNotFound: jane@example.com does not exist");
}

#[test]
fn an_older_status_without_observed_generation_uses_the_conditions() {
    let mut status = ready("True", "Synced", "ok", 4);
    status.as_object_mut().unwrap().remove("observedGeneration");
    assert_eq!(
        health(&grant("SigmaGrant", 4, Some(status.clone()))).0,
        "Healthy"
    );
    assert_eq!(
        health(&grant("SigmaGrant", 5, Some(status))).0,
        "Progressing"
    );
}

#[test]
fn argocd_cm_carries_the_script_for_every_kind() {
    let cm: Value = serde_norway::from_str(&read("deploy/argocd/argocd-cm.yaml")).unwrap();
    let data = cm["data"].as_object().unwrap();
    let script = read("deploy/argocd/health.lua");
    assert_eq!(data.len(), KINDS.len());
    for kind in KINDS {
        let key = format!("resource.customizations.health.grantoperator.dev_{kind}");
        assert_eq!(
            data.get(&key).and_then(Value::as_str),
            Some(script.as_str()),
            "{key} holds health.lua verbatim"
        );
    }
}

#[test]
fn the_example_applications_use_server_side_apply_for_the_crds() {
    let text = read("deploy/argocd/application.yaml");
    let apps: Vec<Value> = text
        .split("\n---\n")
        .map(|doc| serde_norway::from_str(doc).unwrap())
        .collect();
    let crds = apps
        .iter()
        .find(|app| app["spec"]["source"]["path"] == "crds")
        .expect("an Application for the CRDs");
    let options = crds["spec"]["syncPolicy"]["syncOptions"].to_string();
    assert!(options.contains("ServerSideApply=true") && options.contains("Prune=false"));
    assert!(
        crds["metadata"]["finalizers"].is_null(),
        "no cascading deletion of CRDs"
    );
    let chart = apps
        .iter()
        .find(|app| app["spec"]["source"]["path"] == "charts/grant-operator")
        .expect("an Application for the chart");
    assert_eq!(chart["spec"]["source"]["helm"]["skipCrds"], true);
}
