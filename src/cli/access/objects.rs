//! The objects one account gives a review, read through the first of its
//! providers whose client builds: the objects its resources declare, those
//! `--target` names, those `--all-targets` lists, and, with `--grantee`, the
//! grantees' own objects (Snowflake) or the keys they resolve to. Each object in
//! scope becomes a read [`Job`].

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::api::Reason;
use crate::controller::Failure;
use crate::controller::clients::ProviderId;
use crate::vendor_api::{ResolvedTarget, Vendor, VendorError};

use super::grantees::{Reviewed, declares_a_name};
use super::scope::{Engine, Job, resource_name};

/// An account in scope: its providers and the resources on it.
pub(super) struct Account<K> {
    pub(super) providers: Vec<ProviderId>,
    pub(super) members: Vec<Arc<K>>,
}

impl Engine<'_> {
    /// The read jobs of one account (`targets`: this vendor's `--target`s, as
    /// given and as the vendor's id).
    pub(super) async fn account_jobs<K: Reviewed>(
        &mut self,
        account: Account<K>,
        targets: &[(String, String)],
        has_targets: bool,
    ) -> Vec<Job<K>> {
        let vendor_kind = K::VENDOR;
        let mut jobs = Vec::new();
        let names: Vec<String> = account
            .members
            .iter()
            .map(|member| resource_name(member.as_ref()))
            .collect();
        // The first provider of the account whose client builds reads for it.
        let mut failures = Vec::new();
        let mut reader = None;
        for id in &account.providers {
            match self.client(id).await {
                Ok(client) => match K::client(&client) {
                    Some(vendor) => {
                        reader = Some((id.clone(), vendor));
                        break;
                    }
                    None => failures.push((
                        id.clone(),
                        Failure::new(
                            Reason::ProviderNotFound,
                            format!("{id} is not a {vendor_kind} provider"),
                        ),
                    )),
                },
                Err(failure) => failures.push((id.clone(), failure)),
            }
        }
        let Some((provider, vendor)) = reader else {
            for (id, failure) in failures {
                self.error(vendor_kind, Some(&id), None, names.clone(), failure);
            }
            for (text, _) in targets {
                if let Some(named) = self.named.get_mut(text) {
                    named.failed = true;
                }
            }
            return Vec::new();
        };

        struct Object<K> {
            target: ResolvedTarget,
            members: Vec<Arc<K>>,
            declared: bool,
            listed: bool,
            named_as: Option<String>,
            grantee_of: Option<String>,
        }
        let mut objects: BTreeMap<String, Object<K>> = BTreeMap::new();
        let object = |objects: &mut BTreeMap<String, Object<K>>, target: ResolvedTarget| {
            objects
                .entry(target.id.clone())
                .or_insert_with(|| Object {
                    target,
                    members: Vec::new(),
                    declared: false,
                    listed: false,
                    named_as: None,
                    grantee_of: None,
                })
                .target
                .id
                .clone()
        };

        // Declared objects, resolved as the controller resolves them.
        let mut units: BTreeMap<String, Vec<Arc<K>>> = BTreeMap::new();
        for member in &account.members {
            units
                .entry(member.unit_key())
                .or_default()
                .push(member.clone());
        }
        for (unit, members) in units {
            let Some(first) = members.first() else {
                continue;
            };
            match vendor.resolve_target(&first.target()).await {
                Ok(target) => {
                    let id = object(&mut objects, target);
                    if let Some(found) = objects.get_mut(&id) {
                        found.declared = true;
                        found.members.extend(members);
                    }
                }
                Err(error) => self.error(
                    vendor_kind,
                    Some(&provider),
                    Some(unit),
                    members.iter().map(|m| resource_name(m.as_ref())).collect(),
                    error.into(),
                ),
            }
        }

        // Named objects.
        for (text, id) in targets {
            let named_text = text.clone();
            if let Some(named) = self.named.get_mut(&named_text) {
                named.tried = true;
            }
            match vendor.resolve_target(&K::target_named(id)).await {
                Ok(target) => {
                    let key = object(&mut objects, target);
                    if let Some(found) = objects.get_mut(&key) {
                        found.named_as = Some(named_text);
                    }
                }
                Err(VendorError::TargetNotFound { .. } | VendorError::GranteeNotFound { .. }) => {
                    if let Some(named) = self.named.get_mut(&named_text) {
                        named.not_found.push(provider.to_string());
                    }
                }
                Err(error) => {
                    if let Some(named) = self.named.get_mut(&named_text) {
                        named.failed = true;
                    }
                    self.error(
                        vendor_kind,
                        Some(&provider),
                        Some(id.clone()),
                        Vec::new(),
                        error.into(),
                    );
                }
            }
        }

        // Every object the provider lists.
        if self.options.all_targets {
            match vendor.list_targets().await {
                Ok(Some(listed)) => {
                    for target in listed {
                        let key = object(&mut objects, target);
                        if let Some(found) = objects.get_mut(&key) {
                            found.listed = true;
                        }
                    }
                }
                Ok(None) => self.report.notes.push(format!(
                    "{provider}: {vendor_kind} has no listing of every object, so --all-targets reviews only the objects the resources declare or --target names"
                )),
                Err(error) => self.error(
                    vendor_kind,
                    Some(&provider),
                    None,
                    Vec::new(),
                    Failure::from(error),
                ),
            }
        }

        // The grantees: objects where the object is the grantee, keys elsewhere.
        let mut filter = None;
        if !self.grantees.is_empty() {
            if K::OBJECT_IS_GRANTEE {
                let texts: Vec<String> = self.grantees.iter().map(|g| g.name.clone()).collect();
                for text in texts {
                    let Some(id) = K::grantee_object(&text) else {
                        continue;
                    };
                    match vendor.resolve_target(&K::target_named(&id)).await {
                        Ok(target) => {
                            let key = object(&mut objects, target);
                            if let Some(found) = objects.get_mut(&key) {
                                found.grantee_of = Some(text);
                            }
                        }
                        Err(error) => self.error(
                            vendor_kind,
                            Some(&provider),
                            Some(id),
                            Vec::new(),
                            error.into(),
                        ),
                    }
                }
            } else {
                match self.grantee_keys::<K>(&vendor, &provider).await {
                    Ok(keys) => filter = Some(keys),
                    Err(failure) => {
                        self.error(vendor_kind, Some(&provider), None, names.clone(), failure);
                        return Vec::new();
                    }
                }
            }
        }

        for (_, object) in objects {
            let in_scope = if K::OBJECT_IS_GRANTEE && !self.grantees.is_empty() {
                object.grantee_of.is_some()
            } else {
                object.named_as.is_some()
                    || (self.options.all_targets && (object.listed || object.declared))
                    || (!has_targets && object.declared)
            };
            if !in_scope {
                continue;
            }
            if let Some((keys, texts)) = &filter
                && keys.is_empty()
                && !declares_a_name::<K>(&object.members, texts)
            {
                // Nothing on it can be one of the grantees.
                continue;
            }
            jobs.push(Job {
                vendor: vendor.clone(),
                provider: provider.clone(),
                optional: !object.declared,
                target: object.target,
                members: object.members,
                named_as: object.named_as,
                grantee_of: object.grantee_of,
                filter: filter.clone(),
            });
        }
        jobs
    }
}
