//! Builders of providers, grant resources and grantees for every vendor.

use super::*;

/// A `GrantProvider` for Sigma at `api_url`, with credentials in `secret`
/// (keys `client-id` and `client-secret`).
pub fn sigma_provider(namespace: &str, name: &str, api_url: &str, secret: &str) -> GrantProvider {
    let mut provider = GrantProvider::new(
        name,
        GrantProviderSpec {
            sigma: Some(SigmaProvider {
                api_url: api_url.into(),
                client_id: secret_value(secret, "client-id"),
                client_secret: secret_value(secret, "client-secret"),
            }),
            grafana: None,
            snowflake: None,
            dremio: None,
            request_timeout_seconds: None,
            rate_limit: None,
            ca_bundle: None,
        },
    );
    provider.metadata.namespace = Some(namespace.into());
    provider
}

/// A `GrantProvider` for Grafana at `url` (org 1), with a service account token
/// in `secret` (key `token`).
pub fn grafana_provider(
    namespace: &str,
    name: &str,
    url: &str,
    secret: &str,
    api: GrafanaPermissionsApi,
) -> GrantProvider {
    let mut provider = sigma_provider(namespace, name, "https://unused", secret);
    provider.spec.sigma = None;
    provider.spec.grafana = Some(GrafanaProvider {
        url: url.into(),
        org_id: Some(1),
        permissions_api: api,
        token: Some(secret_value(secret, "token")),
        basic_auth: None,
    });
    provider
}

pub fn secret_value(secret: &str, key: &str) -> SecretValue<SecretKeySelector> {
    SecretValue {
        secret_key_ref: SecretKeySelector {
            name: secret.into(),
            key: key.into(),
        },
    }
}

pub fn policy(provider: &str) -> GrantPolicy {
    GrantPolicy {
        provider_ref: ProviderRef {
            kind: ProviderKind::GrantProvider,
            name: provider.into(),
        },
        mode: Mode::Additive,
        deletion_policy: DeletionPolicy::Delete,
        management_policy: ManagementPolicy::Manage,
        suspend: false,
        sync_interval: Some("1m".into()),
        expires_at: None,
    }
}

pub fn member(email: &str, permission: SigmaPermission) -> SigmaGrantEntry {
    SigmaGrantEntry {
        member: Some(SigmaMemberRef {
            id: None,
            email: Some(email.into()),
        }),
        team: None,
        permission,
    }
}

pub fn member_id(id: &str, permission: SigmaPermission) -> SigmaGrantEntry {
    SigmaGrantEntry {
        member: Some(SigmaMemberRef {
            id: Some(id.into()),
            email: None,
        }),
        team: None,
        permission,
    }
}

pub fn team(name: &str, permission: SigmaPermission) -> SigmaGrantEntry {
    SigmaGrantEntry {
        member: None,
        team: Some(SigmaTeamRef {
            id: None,
            name: Some(name.into()),
        }),
        permission,
    }
}

/// The resource most Sigma tests start from: `readers`, granting
/// jane@example.com `usage`.
pub fn jane_readers() -> SigmaGrant {
    sigma_grant(
        "readers",
        vec![member("jane@example.com", SigmaPermission::Usage)],
    )
}

/// A SigmaGrant in [`NS`] on [`CONNECTION`] through `sigma-prod`.
pub fn sigma_grant(name: &str, grants: Vec<SigmaGrantEntry>) -> SigmaGrant {
    let mut grant = SigmaGrant::new(
        name,
        SigmaGrantSpec {
            policy: policy("sigma-prod"),
            connection_id: CONNECTION.into(),
            grants,
        },
    );
    grant.metadata.namespace = Some(NS.into());
    grant
}

/// A `GrantProvider` for Dremio at `url` (Cloud when `project` is set), with a
/// personal access token in `secret` (key `token`).
pub fn dremio_provider(
    namespace: &str,
    name: &str,
    url: &str,
    secret: &str,
    project: Option<&str>,
) -> GrantProvider {
    let mut provider = sigma_provider(namespace, name, "https://unused", secret);
    provider.spec.sigma = None;
    provider.spec.dremio = Some(DremioProvider {
        url: url.into(),
        project_id: project.map(String::from),
        token: secret_value(secret, "token"),
    });
    provider
}

/// A DremioGrant in [`NS`] on [`DREMIO_PATH`] through the provider `dremio`.
pub fn dremio_grant(name: &str, grants: Vec<DremioGrantEntry>) -> DremioGrant {
    let mut grant = DremioGrant::new(
        name,
        DremioGrantSpec {
            policy: policy("dremio"),
            catalog_object: DremioCatalogObjectRef {
                path: Some(DREMIO_PATH.iter().map(|part| part.to_string()).collect()),
                id: None,
            },
            grants,
        },
    );
    grant.metadata.namespace = Some(NS.into());
    grant
}

fn principal(name: &str) -> Option<DremioPrincipalRef> {
    Some(DremioPrincipalRef {
        name: Some(name.into()),
        id: None,
    })
}

fn privileges(privileges: &[&str]) -> Vec<String> {
    privileges.iter().map(|p| p.to_string()).collect()
}

/// `user: { name }` with `privileges`.
pub fn dremio_user(name: &str, granted: &[&str]) -> DremioGrantEntry {
    DremioGrantEntry {
        user: principal(name),
        role: None,
        privileges: privileges(granted),
    }
}

/// `role: { name }` with `privileges`.
pub fn dremio_role(name: &str, granted: &[&str]) -> DremioGrantEntry {
    DremioGrantEntry {
        user: None,
        role: principal(name),
        privileges: privileges(granted),
    }
}

/// A GrafanaGrant in [`NS`] on [`DATASOURCE_UID`] through the provider `grafana`.
pub fn grafana_grant(name: &str, permissions: Vec<GrafanaPermissionEntry>) -> GrafanaGrant {
    let mut grant = GrafanaGrant::new(
        name,
        GrafanaGrantSpec {
            policy: policy("grafana"),
            datasource: GrafanaDatasourceRef {
                uid: Some(DATASOURCE_UID.into()),
                name: None,
                id: None,
            },
            permissions,
        },
    );
    grant.metadata.namespace = Some(NS.into());
    grant
}

fn grafana_user(
    login: Option<&str>,
    email: Option<&str>,
    id: Option<i64>,
    permission: GrafanaPermission,
) -> GrafanaPermissionEntry {
    GrafanaPermissionEntry {
        user: Some(GrafanaUserRef {
            login: login.map(String::from),
            email: email.map(String::from),
            id,
        }),
        team: None,
        role: None,
        permission,
    }
}

/// `user: { login }`.
pub fn user_login(login: &str, permission: GrafanaPermission) -> GrafanaPermissionEntry {
    grafana_user(Some(login), None, None, permission)
}

/// `user: { email }`.
pub fn user_email(email: &str, permission: GrafanaPermission) -> GrafanaPermissionEntry {
    grafana_user(None, Some(email), None, permission)
}

/// `user: { id }`.
pub fn user_id(id: i64, permission: GrafanaPermission) -> GrafanaPermissionEntry {
    grafana_user(None, None, Some(id), permission)
}

/// `team: { name }`.
pub fn team_name(name: &str, permission: GrafanaPermission) -> GrafanaPermissionEntry {
    GrafanaPermissionEntry {
        user: None,
        team: Some(GrafanaTeamRef {
            name: Some(name.into()),
            id: None,
        }),
        role: None,
        permission,
    }
}

/// `role: Viewer | Editor | Admin`.
pub fn built_in(role: GrafanaBuiltInRole, permission: GrafanaPermission) -> GrafanaPermissionEntry {
    GrafanaPermissionEntry {
        user: None,
        team: None,
        role: Some(role),
        permission,
    }
}

/// A `GrantProvider` for Snowflake at `url` logging in as [`SNOWFLAKE_USER`] of
/// [`SNOWFLAKE_ACCOUNT`] the `login` way, credentials in `secret`.
pub fn snowflake_provider(
    namespace: &str,
    name: &str,
    url: &str,
    secret: &str,
    login: SnowflakeLogin,
    api: SnowflakeGrantsApi,
) -> GrantProvider {
    let mut provider = sigma_provider(namespace, name, "https://unused", secret);
    provider.spec.sigma = None;
    let key_pair = match login {
        SnowflakeLogin::KeyPair => Some(SnowflakeKeyPair {
            private_key: secret_value(secret, "private-key"),
            passphrase: None,
        }),
        SnowflakeLogin::EncryptedKeyPair => Some(SnowflakeKeyPair {
            private_key: secret_value(secret, "private-key"),
            passphrase: Some(secret_value(secret, "passphrase")),
        }),
        _ => None,
    };
    provider.spec.snowflake = Some(SnowflakeProvider {
        account_url: url.into(),
        account: SNOWFLAKE_ACCOUNT.into(),
        user: SNOWFLAKE_USER.into(),
        key_pair,
        oauth_token: (login == SnowflakeLogin::OAuth).then(|| secret_value(secret, "token")),
        programmatic_access_token: (login == SnowflakeLogin::Pat)
            .then(|| secret_value(secret, "token")),
        grants_api: api,
    });
    provider
}

/// A SnowflakeGrant in [`NS`] through the provider `snowflake`: `grantee`
/// (`ROLE`, `DATABASE_ROLE` or `USER`), privileges on `target`.
pub fn snowflake_grant(
    name: &str,
    grantee: (SnowflakeGranteeType, &str),
    target: SnowflakeTarget,
    privileges: &[&str],
    with_grant_option: bool,
) -> SnowflakeGrant {
    let mut grant = SnowflakeGrant::new(
        name,
        SnowflakeGrantSpec {
            policy: policy("snowflake"),
            grantee: SnowflakeGrantee {
                type_: grantee.0,
                name: grantee.1.into(),
            },
            target,
            privileges: privileges.iter().map(|p| p.to_string()).collect(),
            with_grant_option,
        },
    );
    grant.metadata.namespace = Some(NS.into());
    grant
}

/// `target: { securable: { type, name } }`.
pub fn target_securable(type_: &str, name: &str) -> SnowflakeTarget {
    SnowflakeTarget {
        securable: Some(SnowflakeSecurable {
            type_: type_.into(),
            name: name.into(),
        }),
        all: None,
        future: None,
    }
}

fn bulk(securable_type: &str, scope: SnowflakeScopeType, name: &str) -> SnowflakeBulk {
    SnowflakeBulk {
        securable_type: securable_type.into(),
        in_: SnowflakeScope {
            type_: scope,
            name: name.into(),
        },
    }
}

/// `target: { all: { securableType, in: { type, name } } }`.
pub fn target_all(securable_type: &str, scope: SnowflakeScopeType, name: &str) -> SnowflakeTarget {
    SnowflakeTarget {
        securable: None,
        all: Some(bulk(securable_type, scope, name)),
        future: None,
    }
}

/// `target: { future: { securableType, in: { type, name } } }`.
pub fn target_future(
    securable_type: &str,
    scope: SnowflakeScopeType,
    name: &str,
) -> SnowflakeTarget {
    SnowflakeTarget {
        securable: None,
        all: None,
        future: Some(bulk(securable_type, scope, name)),
    }
}
