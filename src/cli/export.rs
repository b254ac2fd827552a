//! `export`: grant resources that declare exactly the live grants of some vendor
//! objects, ready to commit and adopt. Grantees are written by id, so the
//! resources resolve without look-ups and `plan` on them shows no change.

use std::sync::Arc;

use serde::Serialize;

use crate::api::{
    DeletionPolicy, GrantPolicy, ManagementPolicy, Mode, ProviderKind, ProviderRef, VendorKind,
    vendor_of,
};
use crate::controller::clients::build_client;
use crate::metrics::Metrics;
use crate::names;
use crate::vendor_api::http::RetryPolicy;
use crate::vendor_api::{GrantKind, Live, ResolvedTarget, Vendor, VendorClient};

use super::manifests::Manifests;
use super::secrets::CliSecrets;

/// Which provider to read through.
#[derive(Clone, Debug)]
pub enum ProviderChoice {
    /// `--provider NAMESPACE/NAME`.
    Namespaced {
        /// Namespace.
        namespace: String,
        /// Name.
        name: String,
    },
    /// `--cluster-provider NAME`.
    Cluster(String),
}

/// Reads the live grants of `targets` (vendor ids: a Sigma connection id, a
/// Grafana data source uid, a Dremio catalog object id, a Snowflake grantee as
/// `ROLE:NAME`, `DATABASE_ROLE:DB.NAME` or `USER:NAME`; every object the
/// provider can list when empty) and returns resources declaring exactly them,
/// in `namespace`.
pub async fn run(
    manifests: &Manifests,
    secrets: &CliSecrets,
    provider: &ProviderChoice,
    targets: &[String],
    namespace: Option<&str>,
    metrics: &Arc<Metrics>,
    retry: &RetryPolicy,
) -> Result<Vec<Exported>, String> {
    let (client, provider_ref, own_namespace) = match provider {
        ProviderChoice::Namespaced {
            namespace: provider_namespace,
            name,
        } => {
            let provider = manifests
                .providers
                .iter()
                .find(|p| {
                    p.metadata.name.as_deref() == Some(name.as_str())
                        && p.metadata.namespace.as_deref() == Some(provider_namespace.as_str())
                })
                .ok_or_else(|| {
                    format!("GrantProvider {provider_namespace}/{name} is not in the manifests")
                })?;
            let client = build_client(
                &provider.spec,
                Some(provider_namespace),
                secrets,
                metrics,
                retry,
            )
            .await
            .map_err(|failure| format!("{}: {}", failure.reason.as_str(), failure.message))?;
            (
                (client, vendor_of(&provider.spec)),
                ProviderRef {
                    kind: ProviderKind::GrantProvider,
                    name: name.clone(),
                },
                provider_namespace.clone(),
            )
        }
        ProviderChoice::Cluster(name) => {
            let provider = manifests
                .cluster_providers
                .iter()
                .find(|p| p.metadata.name.as_deref() == Some(name.as_str()))
                .ok_or_else(|| format!("ClusterGrantProvider {name} is not in the manifests"))?;
            let client = build_client(&provider.spec, None, secrets, metrics, retry)
                .await
                .map_err(|failure| format!("{}: {}", failure.reason.as_str(), failure.message))?;
            (
                (client, vendor_of(&provider.spec)),
                ProviderRef {
                    kind: ProviderKind::ClusterGrantProvider,
                    name: name.clone(),
                },
                super::manifests::DEFAULT_NAMESPACE.to_string(),
            )
        }
    };
    let namespace = namespace.unwrap_or(&own_namespace);
    let policy = GrantPolicy {
        provider_ref,
        mode: Mode::Additive,
        deletion_policy: DeletionPolicy::Delete,
        management_policy: ManagementPolicy::Manage,
        suspend: false,
        sync_interval: None,
        expires_at: None,
    };
    let (client, vendor) = client;
    macro_rules! export_vendor {
        ([$($module:ident $kind:ident $grant:ident $block:ident $title:literal),* $(,)?]) => {
            match vendor {
                $(Some(VendorKind::$kind) => {
                    export::<crate::api::$grant>(&client, policy, targets, namespace).await
                })*
                other => Err(format!(
                    "export does not support {} providers yet",
                    other.map(|vendor| vendor.to_string()).unwrap_or_default()
                )),
            }
        };
    }
    crate::vendors::vendors!(export_vendor)
}

/// One exported resource, with the comments YAML shows above it: who the ids
/// it declares are, as the vendor lists them (a manifest of ids alone says
/// nothing to a reviewer).
#[derive(Debug, Clone)]
pub struct Exported {
    /// The resource.
    pub resource: serde_json::Value,
    /// Comment lines (without `#`).
    pub comments: Vec<String>,
}

/// The comments of the resources exported from one vendor object: its name, and
/// the names the listing shows for the grantee ids.
fn comments<P>(vendor: &str, target: &ResolvedTarget, live: &Live<P>) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(name) = &target.name {
        out.push(format!("{vendor} object {name} ({})", target.id));
    }
    let named: Vec<String> = live
        .grants
        .iter()
        .filter_map(|grant| {
            let name = live.names.get(&grant.key)?;
            (name != &grant.key).then(|| format!("  {}", names::with_name(&grant.key, Some(name))))
        })
        .collect::<std::collections::BTreeSet<String>>()
        .into_iter()
        .collect();
    if !named.is_empty() {
        out.push(format!("grantees as {vendor} lists them:"));
        out.extend(named);
    }
    out
}

async fn export<K: GrantKind + Serialize>(
    client: &VendorClient,
    policy: GrantPolicy,
    targets: &[String],
    namespace: &str,
) -> Result<Vec<Exported>, String> {
    let vendor = K::client(client).ok_or_else(|| format!("not a {} provider", K::VENDOR))?;
    let listed: Vec<String>;
    let targets = if targets.is_empty() {
        listed = vendor
            .list_targets()
            .await
            .map_err(|error| error.to_string())?
            .ok_or_else(|| {
                format!(
                    "{} has no listing of every object: name the objects to export with --target",
                    K::VENDOR
                )
            })?
            .into_iter()
            .map(|target| target.id)
            .collect();
        &listed
    } else {
        targets
    };
    let mut out = Vec::new();
    for id in targets {
        let target = vendor
            .resolve_target(&K::target_named(id))
            .await
            .map_err(|error| format!("{id}: {error}"))?;
        let live = vendor
            .read(&target, &[])
            .await
            .map_err(|error| format!("{id}: {error}"))?;
        let comments = comments(K::VENDOR.as_str(), &target, &live);
        let resources = K::declaring(policy.clone(), &target.id, &live.grants);
        let several = resources.len() > 1;
        for (index, mut resource) in resources.into_iter().enumerate() {
            let name = if several {
                resource_name(K::KIND, &format!("{id}-{}", index + 1))
            } else {
                resource_name(K::KIND, id)
            };
            resource.meta_mut().name = Some(name);
            resource.meta_mut().namespace = Some(namespace.to_string());
            let mut value = serde_json::to_value(&resource).map_err(|error| error.to_string())?;
            if let Some(object) = value.as_object_mut() {
                object.remove("status");
            }
            out.push(Exported {
                resource: value,
                comments: comments.clone(),
            });
        }
    }
    Ok(out)
}

/// A DNS-1123 name for an exported resource: kind and id, lower-cased.
fn resource_name(kind: &str, id: &str) -> String {
    let prefix = kind.trim_end_matches("Grant").to_ascii_lowercase();
    let mut name: String = format!("{prefix}-{id}")
        .to_ascii_lowercase()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    name.truncate(63);
    name.trim_matches('-').to_string()
}

/// The resources as multi-document YAML that YAML 1.1 readers (kubectl, Helm,
/// Argo CD) read as written.
pub fn to_yaml(resources: &[Exported]) -> Result<String, String> {
    let mut out = String::new();
    for Exported { resource, comments } in resources {
        out.push_str("---\n");
        for line in comments {
            out.push_str("# ");
            out.push_str(line);
            out.push('\n');
        }
        out.push_str(
            &crate::yaml::to_kubernetes_yaml(resource).map_err(|error| error.to_string())?,
        );
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exported_yaml_quotes_what_yaml_1_1_reads_differently() {
        let resource = serde_json::json!({
            "kind": "SnowflakeGrant",
            "spec": {"on": {"securable": {"type": "SCHEMA", "name": "SALES.PUBLIC"}}, "privileges": ["USAGE"]}
        });
        let yaml = to_yaml(&[Exported {
            resource,
            comments: vec!["grantees as sigma lists them:".into()],
        }])
        .unwrap();
        assert!(
            yaml.starts_with("---\n# grantees as sigma lists them:\n"),
            "{yaml}"
        );
        assert!(yaml.contains("\n  \"on\":\n"), "{yaml}");
        assert!(
            crate::yaml::ambiguous_plain_scalars(&yaml)
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn names_are_dns_labels() {
        assert_eq!(
            resource_name("SigmaGrant", "g3e8e8947-C9F5_43re"),
            "sigma-g3e8e8947-c9f5-43re"
        );
        assert_eq!(
            resource_name("GrafanaGrant", "P8E80F9AEF21F6940"),
            "grafana-p8e80f9aef21f6940"
        );
        assert!(resource_name("DremioGrant", &"x".repeat(100)).len() <= 63);
    }
}
