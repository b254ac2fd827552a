//! The workload's shape: which grantees and levels each resource declares per
//! round, the minimum vendor writes that allows, and resources shaped as a real
//! API server sends them (`managedFields`, annotations, labels).

use super::*;

/// Requests per second each provider allows (`spec.rateLimit`).
pub(crate) const RATE_LIMIT: f64 = 50.0;

pub(crate) fn sigma_members_of(o: usize, round: usize) -> impl Iterator<Item = usize> {
    (0..2).map(move |k| (o * 13 + (round * 2 + k) % POOL) % SIGMA_MEMBERS)
}

/// A member's level on a connection is the same in every resource: no raises.
pub(crate) fn sigma_level(o: usize, m: usize) -> SigmaPermission {
    if (o + m).is_multiple_of(3) {
        SigmaPermission::Annotate
    } else {
        SigmaPermission::Usage
    }
}

pub(crate) fn grafana_grantees(o: usize, round: usize) -> (usize, usize) {
    (
        (o * 7 + round % POOL) % GRAFANA_USERS,
        (o + round) % GRAFANA_TEAMS,
    )
}

pub(crate) fn grafana_level(o: usize, user: usize) -> GrafanaPermission {
    if (o + user).is_multiple_of(3) {
        GrafanaPermission::Edit
    } else {
        GrafanaPermission::Query
    }
}

pub(crate) fn dremio_grantees(o: usize, round: usize) -> (usize, usize) {
    ((o * 3 + round) % DREMIO_USERS, (o + round) % DREMIO_ROLES)
}

pub(crate) fn snowflake_table(round: usize) -> usize {
    round % SNOWFLAKE_TABLES
}

/// The fewest vendor writes that bring each vendor to what the resources declare,
/// when resources arrive one after another and each must become Ready on its own
/// (a resource cannot wait for declarations that do not exist yet), using each
/// API's largest batch:
/// - Sigma: one `POST .../grants` per resource that brings new grants to its
///   connection (up to 100 grants per call; a resource has two);
/// - Grafana: one call per new grantee-level on a data source (the API sets one
///   grantee's level per call);
/// - Dremio: one `PUT .../grants` per resource that brings new privileges to its
///   object (the PUT replaces the whole list, so one call carries them all);
/// - Snowflake: one call per new (grantee, securable): one call grants every
///   privilege on one securable to one grantee.
///
/// Levels and privileges of a grantee on an object are the same in every resource
/// here, so no raise or lower is ever needed. Syncs that serve several resources
/// at once can go below this (one write for several arrivals).
#[derive(Default)]
pub(crate) struct Minimum {
    pub(crate) sigma: BTreeSet<(usize, usize)>,
    pub(crate) grafana: BTreeSet<(usize, &'static str, usize)>,
    pub(crate) dremio: BTreeSet<(usize, &'static str, usize)>,
    pub(crate) snowflake: BTreeSet<(usize, usize)>,
    pub(crate) writes: [u64; 4],
}

impl Minimum {
    pub(crate) fn arrive(&mut self, index: usize, objects: usize) {
        let vendor = index % 4;
        let j = index / 4;
        let (o, round) = (j % objects, j / objects);
        match vendor {
            0 => {
                let new = sigma_members_of(o, round)
                    .filter(|m| self.sigma.insert((o, *m)))
                    .count();
                self.writes[0] += new.div_ceil(100) as u64;
            }
            1 => {
                let (user, team) = grafana_grantees(o, round);
                self.writes[1] += u64::from(self.grafana.insert((o, "user", user)))
                    + u64::from(self.grafana.insert((o, "team", team)));
            }
            2 => {
                let (user, role) = dremio_grantees(o, round);
                let new =
                    self.dremio.insert((o, "user", user)) | self.dremio.insert((o, "role", role));
                self.writes[2] += u64::from(new);
            }
            _ => {
                self.writes[3] += u64::from(self.snowflake.insert((o, snowflake_table(round))));
            }
        }
    }
}

/// The object as a real API server sends it after Argo CD (server-side apply),
/// `kubectl apply` and the operator wrote it.
pub(crate) fn realistic<K>(object: K, target_field: &str) -> K
where
    K: kube::Resource<DynamicType = ()> + serde::Serialize + serde::de::DeserializeOwned,
{
    let mut value = serde_json::to_value(&object).expect("serializes");
    let name = value["metadata"]["name"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let kind = K::kind(&()).to_string();
    let api_version = K::api_version(&()).to_string();
    let tracking = format!("data-access:{GROUP}/{kind}:{NS}/{name}");
    let labels = json!({
        "app.kubernetes.io/instance": "data-access",
        "app.kubernetes.io/managed-by": "argocd",
        "app.kubernetes.io/part-of": "analytics-platform",
        "team": format!("team-{}", name.len() % 7),
    });
    let applied = json!({
        "apiVersion": api_version,
        "kind": kind,
        "metadata": {
            "annotations": {"argocd.argoproj.io/tracking-id": tracking},
            "labels": labels,
            "name": name,
            "namespace": NS,
        },
        "spec": value["spec"],
    });
    let time = "2026-01-15T09:30:00Z";
    let label_fields: serde_json::Map<String, Value> = labels
        .as_object()
        .map(|labels| {
            labels
                .keys()
                .map(|k| (format!("f:{k}"), json!({})))
                .collect()
        })
        .unwrap_or_default();
    let target_key = target_field.trim_start_matches("spec.");
    let managed = json!([
        {
            "manager": "argocd-controller",
            "operation": "Apply",
            "apiVersion": api_version,
            "time": time,
            "fieldsType": "FieldsV1",
            "fieldsV1": {
                "f:metadata": {
                    "f:annotations": {"f:argocd.argoproj.io/tracking-id": {}},
                    "f:labels": label_fields,
                },
                "f:spec": fields_v1(&value["spec"]),
            },
        },
        {
            "manager": "kubectl-client-side-apply",
            "operation": "Update",
            "apiVersion": api_version,
            "time": time,
            "fieldsType": "FieldsV1",
            "fieldsV1": {
                "f:metadata": {
                    "f:annotations": {".": {}, "f:kubectl.kubernetes.io/last-applied-configuration": {}},
                },
            },
        },
        {
            "manager": "grant-operator",
            "operation": "Update",
            "apiVersion": api_version,
            "time": time,
            "fieldsType": "FieldsV1",
            "fieldsV1": {"f:metadata": {"f:finalizers": {".": {}, "v:\"grantoperator.dev/revoke\"": {}}}},
        },
        {
            "manager": "grant-operator",
            "operation": "Apply",
            "apiVersion": api_version,
            "time": time,
            "fieldsType": "FieldsV1",
            "subresource": "status",
            "fieldsV1": {"f:status": {
                "f:conditions": {"k:{\"type\":\"Ready\"}": {
                    ".": {}, "f:lastTransitionTime": {}, "f:message": {}, "f:observedGeneration": {},
                    "f:reason": {}, "f:status": {}, "f:type": {},
                }},
                "f:driftCorrections": {},
                "f:grants": {},
                "f:lastSyncTime": {},
                "f:observedGeneration": {},
                "f:target": {format!("f:{target_key}"): {}},
            }},
        },
    ]);
    let metadata = value["metadata"].as_object_mut().expect("metadata");
    metadata.insert("labels".into(), labels);
    metadata.insert(
        "annotations".into(),
        json!({
            "argocd.argoproj.io/tracking-id": tracking,
            "kubectl.kubernetes.io/last-applied-configuration": format!("{applied}\n"),
        }),
    );
    metadata.insert("managedFields".into(), managed);
    serde_json::from_value(value).expect("deserializes")
}

/// The FieldsV1 set of a value (lists atomic, as the CRDs declare them).
pub(crate) fn fields_v1(value: &Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(key, child)| (format!("f:{key}"), fields_v1(child)))
                .collect(),
        ),
        _ => json!({}),
    }
}
