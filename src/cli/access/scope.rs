//! Scope: which vendor objects are read, through which provider, for which
//! resources (declared, `--target`, `--all-targets`, `--grantee`), and how what
//! each read gave is gathered into the report.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use kube::{Resource, ResourceExt};

use crate::api::{ProviderKind, Reason, VendorKind, vendor_of};
use crate::controller::Failure;
use crate::controller::clients::ProviderId;
use crate::metrics::Metrics;
use crate::vendor_api::http::RetryPolicy;
use crate::vendor_api::{ResolvedTarget, VendorClient};

use crate::cli::manifests::Manifests;
use crate::cli::providers::ProviderSpec;
use crate::cli::secrets::CliSecrets;

use super::Options;
use super::grantees::{GranteeFilter, Reviewed};
use super::objects::Account;
use super::read::JobResult;
use super::report::{GranteeMatch, GranteeMatches, ReadError, Report, vendor_order};
use super::sources::{ProviderEntry, endpoint};

/// What became of a `--target` on the providers of its vendor.
#[derive(Default)]
pub(super) struct NamedTarget {
    pub(super) vendor: Option<VendorKind>,
    pub(super) found: Vec<String>,
    pub(super) not_found: Vec<String>,
    pub(super) tried: bool,
    pub(super) failed: bool,
}

/// One vendor object to read.
pub(super) struct Job<K: Reviewed> {
    pub(super) vendor: Arc<K::Vendor>,
    pub(super) provider: ProviderId,
    pub(super) target: ResolvedTarget,
    pub(super) members: Vec<Arc<K>>,
    /// Read only because it was named, listed or is a `--grantee`: not finding it
    /// is not an error by itself.
    pub(super) optional: bool,
    /// The `--target` that named it.
    pub(super) named_as: Option<String>,
    /// The `--grantee` it is (Snowflake).
    pub(super) grantee_of: Option<String>,
    /// With `--grantee`: the keys it resolved to, and the texts (for declared
    /// names that do not resolve).
    pub(super) filter: Option<GranteeFilter>,
}

pub(super) struct Engine<'a> {
    pub(super) manifests: &'a Manifests,
    pub(super) secrets: &'a CliSecrets,
    pub(super) options: &'a Options,
    pub(super) metrics: &'a Arc<Metrics>,
    pub(super) retry: &'a RetryPolicy,
    pub(super) providers: Vec<ProviderEntry<'a>>,
    pub(super) clients: HashMap<ProviderId, Result<VendorClient, Failure>>,
    /// `--target`s: the text as given and the vendor's id it names.
    pub(super) targets: Vec<(String, String)>,
    pub(super) named: BTreeMap<String, NamedTarget>,
    pub(super) grantees: Vec<GranteeMatches>,
    pub(super) report: Report,
}

pub(super) fn vendor_named(text: &str) -> Option<VendorKind> {
    VendorKind::ALL
        .iter()
        .copied()
        .find(|vendor| vendor.as_str() == text)
}

impl<'a> Engine<'a> {
    pub(super) fn new(
        manifests: &'a Manifests,
        secrets: &'a CliSecrets,
        options: &'a Options,
        metrics: &'a Arc<Metrics>,
        retry: &'a RetryPolicy,
    ) -> Result<Engine<'a>, String> {
        let mut providers: Vec<ProviderEntry<'a>> = manifests
            .providers
            .iter()
            .map(|provider| ProviderEntry {
                id: ProviderId {
                    kind: ProviderKind::GrantProvider,
                    namespace: provider.namespace(),
                    name: provider.name_any(),
                },
                vendor: vendor_of(&provider.spec),
                spec: ProviderSpec::Namespaced(provider),
                in_scope: true,
            })
            .chain(
                manifests
                    .cluster_providers
                    .iter()
                    .map(|provider| ProviderEntry {
                        id: ProviderId {
                            kind: ProviderKind::ClusterGrantProvider,
                            namespace: None,
                            name: provider.name_any(),
                        },
                        vendor: vendor_of(&provider.spec),
                        spec: ProviderSpec::Cluster(provider),
                        in_scope: true,
                    }),
            )
            .collect();
        providers.sort_by_key(|entry| entry.id.to_string());
        if !options.providers.is_empty() {
            for wanted in &options.providers {
                if !providers.iter().any(|entry| &entry.id == wanted) {
                    return Err(format!("{wanted} is not in the sources"));
                }
            }
            for entry in &mut providers {
                entry.in_scope = options.providers.contains(&entry.id);
            }
        }
        let mut vendors: Vec<VendorKind> = Vec::new();
        for vendor in providers
            .iter()
            .filter(|entry| entry.in_scope)
            .filter_map(|entry| entry.vendor)
        {
            if !vendors.contains(&vendor) {
                vendors.push(vendor);
            }
        }
        vendors.sort_by_key(|vendor| vendor_order(vendor.as_str()));
        let mut targets = Vec::new();
        let mut named = BTreeMap::new();
        for text in &options.targets {
            let (vendor, id) = match text.split_once(':') {
                Some((prefix, id)) if vendor_named(prefix).is_some() && !id.is_empty() => {
                    (vendor_named(prefix), id.to_string())
                }
                _ => (None, text.clone()),
            };
            if vendor.is_none() && vendors.len() > 1 {
                let listed: Vec<&str> = vendors.iter().map(|vendor| vendor.as_str()).collect();
                return Err(format!(
                    "--target {text}: the providers in scope reach several vendors ({}); write VENDOR:ID (for example {}:{text}), or name the provider with --provider",
                    listed.join(", "),
                    listed[0]
                ));
            }
            named.insert(
                text.clone(),
                NamedTarget {
                    vendor: vendor.or_else(|| vendors.first().copied()),
                    ..NamedTarget::default()
                },
            );
            targets.push((text.clone(), id));
        }
        let grantees = options
            .grantees
            .iter()
            .map(|name| GranteeMatches {
                name: name.clone(),
                matches: Vec::new(),
            })
            .collect();
        Ok(Engine {
            manifests,
            secrets,
            options,
            metrics,
            retry,
            providers,
            clients: HashMap::new(),
            targets,
            named,
            grantees,
            report: Report::default(),
        })
    }

    pub(super) fn error(
        &mut self,
        vendor: VendorKind,
        provider: Option<&ProviderId>,
        target: Option<String>,
        resources: Vec<String>,
        failure: Failure,
    ) {
        self.report.errors.push(ReadError {
            vendor: vendor.as_str(),
            provider: provider.map(ToString::to_string),
            target,
            resources,
            reason: failure.reason.as_str().to_string(),
            message: failure.message,
        });
    }

    /// Scope, clients, targets and look-ups of one kind: the objects to read.
    pub(super) async fn prepare<K: Reviewed>(&mut self, resources: &[K]) -> Vec<Job<K>> {
        let vendor_kind = K::VENDOR;
        let has_targets = !self.targets.is_empty();
        // This vendor's `--target`s: (text as given, the vendor's id).
        let targets: Vec<(String, String)> = self
            .targets
            .iter()
            .filter(|(text, _)| {
                self.named
                    .get(text)
                    .is_some_and(|named| named.vendor == Some(vendor_kind))
            })
            .cloned()
            .collect();

        // The accounts in scope, each with its providers and the resources on it.
        // Whether the resources' own objects are in scope (so problems of a
        // resource are problems of the review).
        let declared_in_scope = !has_targets || self.options.all_targets;
        let report_resources = declared_in_scope && self.options.providers.is_empty();
        let grantee_objects = self
            .grantees
            .iter()
            .any(|grantee| K::grantee_object(&grantee.name).is_some());
        let mut accounts: BTreeMap<String, Account<K>> = BTreeMap::new();
        for entry in self
            .providers
            .iter()
            .filter(|entry| entry.in_scope && entry.vendor == Some(vendor_kind))
        {
            accounts
                .entry(endpoint::<K>(entry))
                .or_insert_with(|| Account {
                    providers: Vec::new(),
                    members: Vec::new(),
                })
                .providers
                .push(entry.id.clone());
        }
        for object in resources {
            let namespace = object.namespace().unwrap_or_default();
            let name = resource_name(object);
            let id = ProviderId::of_ref(&object.policy().provider_ref, &namespace);
            let found = self
                .providers
                .iter()
                .find(|entry| entry.id == id)
                .map(|entry| (entry.vendor, entry.spec, endpoint::<K>(entry)));
            let (spec, account) = match found {
                Some((vendor, spec, account)) if vendor == Some(vendor_kind) => (spec, account),
                found => {
                    if report_resources {
                        let message = match found {
                            None => format!("{id} is not in the sources"),
                            Some(_) => format!("{id} is not a {vendor_kind} provider"),
                        };
                        self.error(
                            vendor_kind,
                            Some(&id),
                            None,
                            vec![name],
                            Failure::new(Reason::ProviderNotFound, message),
                        );
                    }
                    continue;
                }
            };
            let admitted = match spec {
                ProviderSpec::Cluster(provider) => self.admits(provider, &namespace),
                ProviderSpec::Namespaced(_) => Ok(()),
            };
            let Some(account) = accounts.get_mut(&account) else {
                // Reached through no provider in scope.
                continue;
            };
            match admitted {
                Ok(()) => account.members.push(Arc::new(object.clone())),
                Err(failure) if report_resources => {
                    self.error(vendor_kind, Some(&id), None, vec![name], failure)
                }
                Err(_) => {}
            }
        }

        let mut jobs = Vec::new();
        for (_, account) in accounts {
            // An account that can add nothing to the review is not even logged in to.
            let needed = if K::OBJECT_IS_GRANTEE && !self.grantees.is_empty() {
                grantee_objects
            } else {
                !targets.is_empty()
                    || self.options.all_targets
                    || (!has_targets && !account.members.is_empty())
            };
            if !needed {
                continue;
            }
            jobs.extend(self.account_jobs(account, &targets, has_targets).await);
        }
        // A vendor with no provider in scope cannot read what is named for it.
        for (text, _) in &targets {
            if let Some(named) = self.named.get_mut(text)
                && !named.tried
                && !named.failed
            {
                named.failed = true;
                self.report.errors.push(ReadError {
                    vendor: vendor_kind.as_str(),
                    provider: None,
                    target: Some(text.clone()),
                    resources: Vec::new(),
                    reason: Reason::ProviderNotFound.as_str().to_string(),
                    message: format!("no {vendor_kind} provider in scope to read it through"),
                });
            }
        }
        jobs
    }

    pub(super) fn absorb(&mut self, result: JobResult) {
        self.report.summary.objects += 1;
        if let Some(text) = &result.named_as
            && let Some(named) = self.named.get_mut(text)
        {
            if result.not_found {
                named.not_found.push(result.provider.clone());
            } else if result.error.is_some() {
                named.failed = true;
            } else {
                named.found.push(result.provider.clone());
            }
        }
        if let Some((text, id)) = &result.grantee_of
            && !result.not_found
            && result.error.is_none()
            && let Some(grantee) = self.grantees.iter_mut().find(|g| &g.name == text)
        {
            grantee.matches.push(GranteeMatch {
                vendor: result.vendor.as_str(),
                provider: result.provider.clone(),
                id: id.clone(),
            });
        }
        self.report.rows.extend(result.rows);
        self.report.errors.extend(result.error);
    }

    pub(super) fn finish(mut self) -> Report {
        for (text, named) in std::mem::take(&mut self.named) {
            let vendor = named.vendor.map(VendorKind::as_str).unwrap_or("any");
            if !named.found.is_empty() {
                for provider in &named.not_found {
                    self.report
                        .notes
                        .push(format!("--target {text} is not on {provider}"));
                }
            } else if named.vendor.is_none() {
                self.report.errors.push(ReadError {
                    vendor,
                    provider: None,
                    target: Some(text.clone()),
                    resources: Vec::new(),
                    reason: Reason::ProviderNotFound.as_str().to_string(),
                    message: "no provider in scope to read it through".to_string(),
                });
            } else if !named.failed {
                let through = if named.not_found.is_empty() {
                    String::new()
                } else {
                    format!(" ({})", named.not_found.join(", "))
                };
                self.report.errors.push(ReadError {
                    vendor,
                    provider: None,
                    target: Some(text.clone()),
                    resources: Vec::new(),
                    reason: Reason::TargetNotFound.as_str().to_string(),
                    message: format!(
                        "{text} was not found through any {vendor} provider in scope{through}"
                    ),
                });
            }
        }
        for grantee in &mut self.grantees {
            grantee.matches.sort();
        }
        self.report.grantees = self.grantees;
        self.report.rows.sort_by(|a, b| {
            (
                vendor_order(a.vendor),
                &a.provider,
                &a.target,
                &a.grantee,
                &a.permission,
                a.state,
            )
                .cmp(&(
                    vendor_order(b.vendor),
                    &b.provider,
                    &b.target,
                    &b.grantee,
                    &b.permission,
                    b.state,
                ))
        });
        self.report.summarize();
        self.report
    }
}

pub(super) fn resource_name<K: Resource>(object: &K) -> String {
    format!(
        "{}/{}",
        object.meta().namespace.clone().unwrap_or_default(),
        object.meta().name.clone().unwrap_or_default()
    )
}
