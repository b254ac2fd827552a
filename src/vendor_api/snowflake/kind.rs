//! `SnowflakeGrant` as a grant kind: its unit (the grantee), its key (the
//! securable) and permissions (privileges with or without the grant option),
//! the status target and how a target is written back for `export`.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use crate::api::{
    GrantPolicy, GrantStatus, GrantTarget, ProviderConfig, SnowflakeGrant, SnowflakeGrantee,
    SnowflakeGranteeType, SnowflakeScopeType, SnowflakeTarget, VendorKind,
};
use crate::plan::{Key, LiveGrant};
use crate::vendor_api::{GrantKind, VendorClient, normalize_url};

use super::model::{
    BulkKind, Grantee, GranteeType, ScopeType, Securable, SnowflakePrivilege, plural, singular,
};
use super::{DeclaredSecurable, SnowflakeClient, auth};

pub(super) fn parse_grantee(declared: &SnowflakeGrantee) -> Result<Grantee, String> {
    let type_ = match declared.type_ {
        crate::api::SnowflakeGranteeType::Role => GranteeType::Role,
        crate::api::SnowflakeGranteeType::DatabaseRole => GranteeType::DatabaseRole,
        crate::api::SnowflakeGranteeType::User => GranteeType::User,
    };
    Grantee::parse(type_, &declared.name).map_err(|error| error.to_string())
}

/// The grantee's unit key, or the raw text when it does not parse (the sync then
/// reports why).
fn grantee_key(declared: &SnowflakeGrantee) -> String {
    parse_grantee(declared)
        .map(|grantee| grantee.key())
        .unwrap_or_else(|_| format!("{:?}:{}", declared.type_, declared.name))
}

/// The resource's securable.
fn declared_securable(grant: &SnowflakeGrant) -> DeclaredSecurable {
    let target = &grant.spec.target;
    let parsed = match (&target.securable, &target.all, &target.future) {
        (Some(securable), None, None) => {
            Securable::named(&securable.type_, &securable.name).map_err(|error| error.to_string())
        }
        (None, Some(bulk), None) | (None, None, Some(bulk)) => {
            let kind = if target.all.is_some() {
                BulkKind::All
            } else {
                BulkKind::Future
            };
            let scope = match bulk.in_.type_ {
                SnowflakeScopeType::Database => ScopeType::Database,
                SnowflakeScopeType::Schema => ScopeType::Schema,
            };
            Securable::bulk(kind, &bulk.securable_type, scope, &bulk.in_.name)
                .map_err(|error| error.to_string())
        }
        _ => Err("set exactly one of securable, all or future".to_string()),
    };
    DeclaredSecurable(parsed.map(|securable| match securable {
        // `TABLE` and `TABLES` alike: the key always carries the plural.
        Securable::Bulk {
            kind,
            plural: kind_plural,
            scope,
            scope_name,
        } => Securable::Bulk {
            kind,
            plural: plural(&singular(&kind_plural)),
            scope,
            scope_name,
        },
        named => named,
    }))
}

impl GrantKind for SnowflakeGrant {
    type Vendor = SnowflakeClient;
    const VENDOR: VendorKind = VendorKind::Snowflake;
    const KIND: &'static str = "SnowflakeGrant";

    fn policy(&self) -> &GrantPolicy {
        &self.spec.policy
    }

    fn status(&self) -> Option<&GrantStatus> {
        self.status.as_ref()
    }

    fn unit_key(&self) -> String {
        grantee_key(&self.spec.grantee)
    }

    fn unit_key_of(object: &serde_json::Value) -> Option<String> {
        let grantee: SnowflakeGrantee =
            serde_json::from_value(object["spec"]["grantee"].clone()).ok()?;
        Some(grantee_key(&grantee))
    }

    fn target(&self) -> SnowflakeGrantee {
        self.spec.grantee.clone()
    }

    fn declarations(&self) -> Vec<crate::vendor_api::Declared<Self>> {
        let securable = declared_securable(self);
        self.spec
            .privileges
            .iter()
            .map(|privilege| {
                (
                    securable.clone(),
                    SnowflakePrivilege::new(privilege, self.spec.with_grant_option),
                )
            })
            .collect()
    }

    fn grantee_label(grantee: &DeclaredSecurable) -> String {
        match &grantee.0 {
            Ok(securable) => securable.key(),
            Err(message) => message.clone(),
        }
    }

    fn target_status(&self, resolved: &GrantTarget) -> GrantTarget {
        GrantTarget {
            securable: declared_securable(self).0.ok().map(|s| s.key()),
            ..resolved.clone()
        }
    }

    fn authoritative_keys(&self) -> Option<Vec<Key>> {
        Some(
            declared_securable(self)
                .0
                .map(|s| s.key())
                .into_iter()
                .collect(),
        )
    }

    fn endpoint<P: ProviderConfig>(provider: &P) -> Option<String> {
        provider.snowflake().map(|snowflake| {
            format!(
                "{}#account={}",
                normalize_url(&snowflake.account_url),
                auth::account_identifier(&snowflake.account)
            )
        })
    }

    fn client(client: &VendorClient) -> Option<Arc<SnowflakeClient>> {
        match client {
            VendorClient::Snowflake(client) => Some(client.clone()),
            _ => None,
        }
    }

    fn target_named(id: &str) -> SnowflakeGrantee {
        // `export --target ROLE:ANALYST` (or `DATABASE_ROLE:DB.ROLE`, `USER:NAME`).
        let (type_, name) = id.split_once(':').unwrap_or(("ROLE", id));
        let type_ = match type_ {
            "DATABASE_ROLE" => SnowflakeGranteeType::DatabaseRole,
            "USER" => SnowflakeGranteeType::User,
            _ => SnowflakeGranteeType::Role,
        };
        SnowflakeGrantee {
            type_,
            name: name.to_string(),
        }
    }

    fn declaring(
        policy: GrantPolicy,
        id: &str,
        live: &[LiveGrant<SnowflakePrivilege>],
    ) -> Vec<SnowflakeGrant> {
        let grantee = Self::target_named(id);
        // Per securable: the privileges held with the grant option, and those without.
        let mut by_key: BTreeMap<Key, (BTreeSet<String>, BTreeSet<String>)> = BTreeMap::new();
        for grant in live {
            // OWNERSHIP is transferred, never granted: it is not declared.
            if grant.perm.name == "OWNERSHIP" {
                continue;
            }
            let (with, without) = by_key.entry(grant.key.clone()).or_default();
            if grant.perm.grant_option {
                with.insert(grant.perm.name.clone());
            } else {
                without.insert(grant.perm.name.clone());
            }
        }
        let mut out = Vec::new();
        for (key, (with, without)) in by_key {
            let Some(securable) = Securable::from_key(&key) else {
                continue;
            };
            let target = match &securable {
                Securable::Named { type_, name } => SnowflakeTarget {
                    securable: Some(crate::api::SnowflakeSecurable {
                        type_: type_.clone(),
                        name: name.sql(),
                    }),
                    all: None,
                    future: None,
                },
                Securable::Bulk {
                    kind,
                    plural,
                    scope,
                    scope_name,
                } => {
                    let bulk = crate::api::SnowflakeBulk {
                        securable_type: plural.clone(),
                        in_: crate::api::SnowflakeScope {
                            type_: match scope {
                                ScopeType::Database => SnowflakeScopeType::Database,
                                ScopeType::Schema => SnowflakeScopeType::Schema,
                            },
                            name: scope_name.sql(),
                        },
                    };
                    match kind {
                        BulkKind::All => SnowflakeTarget {
                            securable: None,
                            all: Some(bulk),
                            future: None,
                        },
                        BulkKind::Future => SnowflakeTarget {
                            securable: None,
                            all: None,
                            future: Some(bulk),
                        },
                    }
                }
            };
            let without: Vec<String> = without.difference(&with).cloned().collect();
            for (privileges, with_grant_option) in [
                (with.into_iter().collect::<Vec<_>>(), true),
                (without, false),
            ] {
                if privileges.is_empty() {
                    continue;
                }
                out.push(SnowflakeGrant::new(
                    "",
                    crate::api::SnowflakeGrantSpec {
                        policy: policy.clone(),
                        grantee: grantee.clone(),
                        target: target.clone(),
                        privileges,
                        with_grant_option,
                    },
                ));
            }
        }
        out
    }
}
