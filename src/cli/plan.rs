//! `plan` and `apply`: what the controller would do for the resources in some
//! manifests, computed with the same sync engine ([`crate::sync`]) and vendor
//! clients as the controller, without a cluster.
//!
//! Resources are grouped into units exactly as the controller groups them (per
//! provider and target). Only the resources in the manifests take part: a
//! resource absent from them is not deleted, and nothing it holds is protected
//! from an `Authoritative` resource that is in them.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use k8s_openapi::jiff::Timestamp;
use kube::ResourceExt;
use serde::Serialize;

use crate::api::{GrantStatus, GrantTarget, ProviderConfig, ProviderKind, Reason, vendor_of};
use crate::controller::Failure;
use crate::controller::clients::ProviderId;
use crate::metrics::Metrics;
use crate::names;
use crate::plan::{self, Declaration, Phase};
use crate::report::{Writes, member_status};
use crate::sync::{self, MemberInput};
use crate::vendor_api::http::RetryPolicy;
use crate::vendor_api::{GrantKind, Vendor, VendorClient};

use super::manifests::Manifests;
use super::providers::{self, ProviderSpec};
use super::secrets::CliSecrets;

/// What `plan` found (and `apply` did), for the table and for `-o json`.
#[derive(Serialize, Debug, Default)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    /// One entry per vendor object.
    pub units: Vec<UnitReport>,
    /// Grant resources of kinds this version cannot act on.
    pub unsupported: Vec<String>,
}

/// One vendor object and the resources on it.
#[derive(Serialize, Debug)]
#[serde(rename_all = "camelCase")]
pub struct UnitReport {
    /// The grant kind.
    pub kind: &'static str,
    /// The provider, as `Kind namespace/name`.
    pub provider: String,
    /// The target as the resources write it.
    pub target: String,
    /// The target's vendor ids, once resolved.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resolved: Option<GrantTarget>,
    /// The resources on it, as `namespace/name`.
    pub resources: Vec<String>,
    /// Writes the plan makes (or made).
    pub changes: Vec<ChangeReport>,
    /// Live grants left alone: keys nobody here declares (in `Additive` mode) and
    /// permissions the operator does not manage.
    pub left_alone: usize,
    /// Declared names that resolve to nothing.
    pub unresolved: Vec<String>,
    /// Why the object could not be planned.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<ErrorReport>,
    /// `apply` only: each resource's result, in the shape of its status.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub results: Vec<ResourceResult>,
}

/// One write.
#[derive(Serialize, Debug, Clone, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct ChangeReport {
    /// `grant`, `raise`, `lower`, `revoke` or `change`.
    pub action: &'static str,
    /// The grantee (or securable) key.
    pub grantee: String,
    /// The grantee as the manifests name it (or as the vendor lists it), when
    /// that is not its id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Live permissions before.
    pub from: Vec<String>,
    /// Permissions after.
    pub to: Vec<String>,
}

/// A failure with its contract reason.
#[derive(Serialize, Debug, Clone)]
pub struct ErrorReport {
    /// The reason (`Unauthorized`, `TargetNotFound`, ...).
    pub reason: String,
    /// What happened (never a secret).
    pub message: String,
}

/// One resource after `apply`.
#[derive(Serialize, Debug)]
pub struct ResourceResult {
    /// `namespace/name`.
    pub resource: String,
    /// Whether it got where it should (Synced; or, being deleted, everything it held revoked).
    pub done: bool,
    /// Its status as the controller would write it.
    pub status: GrantStatus,
}

impl Report {
    /// Writes planned (or made) in all.
    pub fn changes(&self) -> usize {
        self.units.iter().map(|unit| unit.changes.len()).sum()
    }

    /// Units that failed, names that do not resolve, and (after `apply`)
    /// resources that did not end up Synced.
    pub fn problems(&self) -> usize {
        self.units
            .iter()
            .map(|unit| {
                usize::from(unit.error.is_some())
                    + unit.unresolved.len()
                    + unit.results.iter().filter(|result| !result.done).count()
            })
            .sum()
    }

    /// `plan`: 1 on a problem, 2 when something would change, else 0.
    /// `apply`: 1 on a problem, else 0.
    pub fn exit_code(&self, applied: bool) -> u8 {
        if self.problems() > 0 {
            1
        } else if !applied && self.changes() > 0 {
            2
        } else {
            0
        }
    }
}

/// Plans (and with `apply`, carries out) the resources of `manifests`.
pub async fn run(
    manifests: &Manifests,
    secrets: &CliSecrets,
    apply: bool,
    metrics: &Arc<Metrics>,
    retry: &RetryPolicy,
) -> Report {
    run_deleting(manifests, secrets, apply, metrics, retry, &[]).await
}

/// [`run`], with the resources named `namespace/name` in `deleting` taking part
/// as resources being deleted (their held grants revoked as the controller's
/// finalizer would, except what the others still declare).
pub async fn run_deleting(
    manifests: &Manifests,
    secrets: &CliSecrets,
    apply: bool,
    metrics: &Arc<Metrics>,
    retry: &RetryPolicy,
    deleting: &[String],
) -> Report {
    let mut engine = Engine {
        manifests,
        secrets,
        apply,
        metrics,
        retry,
        deleting,
        clients: HashMap::new(),
        report: Report {
            units: Vec::new(),
            unsupported: manifests.unsupported.clone(),
        },
    };
    macro_rules! every_kind {
        ([$($module:ident $kind:ident $grant:ident $block:ident $title:literal),* $(,)?]) => {
            $(engine.kind(&manifests.$module).await;)*
        };
    }
    crate::vendors::vendors!(every_kind);
    engine.report
}

struct Engine<'a> {
    manifests: &'a Manifests,
    deleting: &'a [String],
    secrets: &'a CliSecrets,
    apply: bool,
    metrics: &'a Arc<Metrics>,
    retry: &'a RetryPolicy,
    clients: HashMap<ProviderId, Result<VendorClient, Failure>>,
    report: Report,
}

impl Engine<'_> {
    async fn kind<K: GrantKind>(&mut self, objects: &[K]) {
        type Members<K> = (ProviderId, Vec<Arc<K>>);
        let mut units: BTreeMap<(String, String), Members<K>> = BTreeMap::new();
        for object in objects {
            let namespace = object.namespace().unwrap_or_default();
            let id = ProviderId::of_ref(&object.policy().provider_ref, &namespace);
            units
                .entry((id.to_string(), object.unit_key()))
                .or_insert_with(|| (id, Vec::new()))
                .1
                .push(Arc::new(object.clone()));
        }
        for ((provider, target), (id, members)) in units {
            let mut unit = UnitReport {
                kind: K::KIND,
                provider,
                target,
                resolved: None,
                resources: members.iter().map(|m| resource_name(m.as_ref())).collect(),
                changes: Vec::new(),
                left_alone: 0,
                unresolved: Vec::new(),
                error: None,
                results: Vec::new(),
            };
            if let Err(failure) = self.unit::<K>(&id, &members, &mut unit).await {
                unit.error = Some(ErrorReport {
                    reason: failure.reason.as_str().to_string(),
                    message: failure.message,
                });
            }
            self.report.units.push(unit);
        }
    }

    async fn unit<K: GrantKind>(
        &mut self,
        id: &ProviderId,
        members: &[Arc<K>],
        unit: &mut UnitReport,
    ) -> Result<(), Failure> {
        let now = Timestamp::now();
        let inputs: Vec<MemberInput<K>> = members
            .iter()
            .filter(|member| !member.policy().suspend)
            .map(|member| MemberInput {
                object: member.clone(),
                phase: if self.deleting.contains(&resource_name(member.as_ref())) {
                    Phase::Deleting
                } else if member
                    .policy()
                    .expires_at
                    .as_ref()
                    .is_some_and(|at| at.0 <= now)
                {
                    Phase::Expired
                } else {
                    Phase::Active
                },
                previous_rows: member
                    .status()
                    .map(|status| status.grants.clone())
                    .unwrap_or_default(),
            })
            .collect();
        let Some(first) = inputs.first() else {
            return Err(Failure::new(
                Reason::Suspended,
                "every resource on this target is suspended",
            ));
        };
        let client = self
            .client::<K>(id, &first.object.namespace().unwrap_or_default())
            .await?;
        let vendor = K::client(&client).ok_or_else(|| {
            Failure::new(
                Reason::ProviderNotFound,
                format!("{id} is not a {} provider", K::VENDOR),
            )
        })?;
        let target = vendor.resolve_target(&first.object.target()).await?;
        unit.resolved = Some(target.status.clone());
        let ran = sync::run::<K>(
            vendor.as_ref(),
            &target,
            &inputs,
            Vec::new(),
            self.apply,
            plan::Watch::at(Timestamp::now()),
            &mut sync::NothingToRecord,
        )
        .await?;
        let observed = &ran.observed;
        unit.changes = observed
            .plan
            .actions
            .iter()
            .map(|action| ChangeReport {
                action: action.kind().as_str(),
                grantee: action.key.clone(),
                name: observed.names.get(&action.key).cloned(),
                from: plan::maximal(&action.live)
                    .iter()
                    .map(|p| p.to_string())
                    .collect(),
                to: plan::maximal(&action.target)
                    .iter()
                    .map(|p| p.to_string())
                    .collect(),
            })
            .collect();
        unit.left_alone = observed.plan.unmanaged + observed.live.unmanaged;
        unit.unresolved = observed
            .input
            .members
            .iter()
            .flat_map(|member| member.declarations.iter())
            .filter_map(|declaration| match declaration {
                Declaration::Unresolved { label, .. } => Some(label.clone()),
                Declaration::Resolved { .. } => None,
            })
            .collect::<std::collections::BTreeSet<String>>()
            .into_iter()
            .collect();
        let Some(carried) = &ran.carried else {
            return Ok(());
        };
        for ((input, member), report) in
            observed.input.members.iter().zip(&inputs).zip(&ran.reports)
        {
            let writes = Writes {
                plan: &observed.plan,
                failures: &carried.failures,
                uncertain: &carried.uncertain,
                confirmed: carried.read_back_error.is_none(),
                // Nothing records intents from the command line.
                intent_until: Timestamp::now(),
                names: &observed.names,
            };
            let (status, result, _) = member_status::<K>(
                member.object.as_ref(),
                member.phase,
                input,
                report,
                &writes,
                &target,
                now,
                Timestamp::now(),
            );
            unit.results.push(ResourceResult {
                resource: resource_name(member.object.as_ref()),
                done: result.is_ok(),
                status,
            });
        }
        Ok(())
    }

    /// The provider's client, built once per provider.
    async fn client<K: GrantKind>(
        &mut self,
        id: &ProviderId,
        namespace: &str,
    ) -> Result<VendorClient, Failure> {
        if let Some(client) = self.clients.get(id) {
            return client.clone();
        }
        let client = self.build::<K>(id, namespace).await;
        self.clients.insert(id.clone(), client.clone());
        client
    }

    async fn build<K: GrantKind>(
        &self,
        id: &ProviderId,
        namespace: &str,
    ) -> Result<VendorClient, Failure> {
        let not_found = || {
            Failure::new(
                Reason::ProviderNotFound,
                format!("{id} is not in the manifests"),
            )
        };
        let provider = match id.kind {
            ProviderKind::GrantProvider => {
                let provider = self
                    .manifests
                    .providers
                    .iter()
                    .find(|p| {
                        p.name_any() == id.name
                            && p.namespace().as_deref() == id.namespace.as_deref()
                    })
                    .ok_or_else(not_found)?;
                self.check_vendor::<K, _>(id, &provider.spec)?;
                ProviderSpec::Namespaced(provider)
            }
            ProviderKind::ClusterGrantProvider => {
                let provider = self
                    .manifests
                    .cluster_providers
                    .iter()
                    .find(|p| p.name_any() == id.name)
                    .ok_or_else(not_found)?;
                self.check_vendor::<K, _>(id, &provider.spec)?;
                providers::admits(
                    self.manifests,
                    provider,
                    &id.to_string(),
                    namespace,
                    "its namespaceSelector does not match the labels of the Namespace in the manifests, or the Namespace is not in them",
                )?;
                ProviderSpec::Cluster(provider)
            }
        };
        provider
            .client(id, self.secrets, self.metrics, self.retry)
            .await
    }

    fn check_vendor<K: GrantKind, P: ProviderConfig>(
        &self,
        id: &ProviderId,
        spec: &P,
    ) -> Result<(), Failure> {
        if vendor_of(spec) == Some(K::VENDOR) {
            Ok(())
        } else {
            Err(Failure::new(
                Reason::ProviderNotFound,
                format!("{id} is not a {} provider", K::VENDOR),
            ))
        }
    }
}

fn resource_name<K: GrantKind>(object: &K) -> String {
    format!(
        "{}/{}",
        object.namespace().unwrap_or_default(),
        object.name_any()
    )
}

/// The human-readable table of a report.
pub fn render(report: &Report, applied: bool) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    let mut totals: BTreeMap<&str, usize> = BTreeMap::new();
    for unit in &report.units {
        let target = target_shown(unit);
        let _ = writeln!(out, "{} on {target} via {}", unit.kind, unit.provider);
        let _ = writeln!(out, "  resources: {}", unit.resources.join(", "));
        if let Some(error) = &unit.error {
            let _ = writeln!(out, "  ! {}: {}", error.reason, error.message);
        }
        for change in &unit.changes {
            *totals.entry(change.action).or_default() += 1;
            let sign = match change.action {
                "grant" => "+",
                "revoke" => "-",
                "raise" => "^",
                "lower" => "v",
                _ => "~",
            };
            let what = match (change.from.is_empty(), change.to.is_empty()) {
                (true, _) => change.to.join(", "),
                (_, true) => change.from.join(", "),
                _ => format!("{} -> {}", change.from.join(", "), change.to.join(", ")),
            };
            let _ = writeln!(
                out,
                "  {sign} {:<7} {:<40} {what}",
                change.action,
                names::with_name(&change.grantee, change.name.as_deref())
            );
        }
        for name in &unit.unresolved {
            let _ = writeln!(out, "  ? not found: {name}");
        }
        if unit.left_alone > 0 {
            let _ = writeln!(
                out,
                "  = {} live grant(s) left alone (not declared here, or not managed)",
                unit.left_alone
            );
        }
        if unit.error.is_none() && unit.changes.is_empty() && unit.unresolved.is_empty() {
            let _ = writeln!(out, "  no change");
        }
        for result in &unit.results {
            let ready = result
                .status
                .conditions
                .iter()
                .find(|condition| condition.type_ == crate::api::READY);
            let _ = writeln!(
                out,
                "  {}: {} ({})",
                result.resource,
                ready.map(|c| c.reason.as_str()).unwrap_or("Unknown"),
                ready.map(|c| c.message.as_str()).unwrap_or_default()
            );
            for row in &result.status.grants {
                let _ = writeln!(
                    out,
                    "      {:<8} {:<40} {:<10} {}",
                    format!("{:?}", row.state),
                    names::with_name(&row.grantee, row.name.as_deref()),
                    row.permission,
                    row.message
                );
            }
        }
        out.push('\n');
    }
    for unsupported in &report.unsupported {
        let _ = writeln!(
            out,
            "skipped (this version cannot act on it yet): {unsupported}"
        );
    }
    let count = |action| totals.get(action).copied().unwrap_or_default();
    let _ = writeln!(
        out,
        "{}: {} to grant, {} to raise, {} to lower, {} to change, {} to revoke on {} vendor object(s); {} problem(s).",
        if applied { "Applied" } else { "Plan" },
        count("grant"),
        count("raise"),
        count("lower"),
        count("change"),
        count("revoke"),
        report.units.len(),
        report.problems()
    );
    out
}

/// The vendor object of a unit as people read it: its id, with the name the
/// manifests give it beside the id when they name it otherwise (a Dremio path,
/// a Grafana data source name).
fn target_shown(unit: &UnitReport) -> String {
    let Some(resolved) = &unit.resolved else {
        return unit.target.clone();
    };
    let written = unit
        .target
        .split_once(':')
        .map_or(unit.target.as_str(), |(_, rest)| rest);
    let (kind, id) = if let Some(id) = &resolved.connection_id {
        ("connection", id)
    } else if let Some(uid) = &resolved.datasource_uid {
        ("data source", uid)
    } else if let Some(id) = &resolved.catalog_object_id {
        ("catalog object", id)
    } else if let Some(grantee) = &resolved.grantee {
        // A Snowflake grantee's name is its id.
        return format!("grantee {grantee}");
    } else {
        return unit.target.clone();
    };
    // A Dremio path is keyed as its JSON list of parts; people read it joined.
    let joined = serde_json::from_str::<Vec<String>>(written).map(|parts| parts.join("/"));
    let written = joined.as_deref().unwrap_or(written);
    let numeric = resolved.datasource_id.map(|id| id.to_string());
    if written == id || Some(written) == numeric.as_deref() {
        format!("{kind} {id}")
    } else {
        format!("{kind} {written} ({id})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes_follow_the_contract() {
        let mut report = Report::default();
        assert_eq!(report.exit_code(false), 0);
        report.units.push(UnitReport {
            kind: "SigmaGrant",
            provider: "GrantProvider a/p".into(),
            target: "c".into(),
            resolved: None,
            resources: vec!["a/g".into()],
            changes: vec![ChangeReport {
                action: "grant",
                grantee: "member:x".into(),
                name: Some("jane@example.com".into()),
                from: vec![],
                to: vec!["usage".into()],
            }],
            left_alone: 0,
            unresolved: vec![],
            error: None,
            results: vec![],
        });
        assert_eq!(report.exit_code(false), 2);
        assert_eq!(report.exit_code(true), 0);
        report.units[0].unresolved.push("member:nobody".into());
        assert_eq!(report.exit_code(false), 1);
        let table = render(&report, false);
        assert!(table.contains("? not found: member:nobody"), "{table}");
        assert!(
            table.contains("+ grant   jane@example.com (member x)"),
            "{table}"
        );
    }
}
