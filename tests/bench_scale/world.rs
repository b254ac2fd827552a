//! The benchmark's world: the operator process, the in-memory API server served
//! over HTTP, the four emulators with their vendor objects, and the grant
//! resources it creates.

use super::*;

/// What each vendor's emulator knows, and the ids the resources name.
pub(crate) struct World {
    pub(crate) kube: FakeKube,
    pub(crate) sigma: support::sigma::SigmaEmulator,
    pub(crate) grafana: support::grafana::GrafanaEmulator,
    pub(crate) dremio: support::dremio::DremioEmulator,
    pub(crate) snowflake: support::snowflake::SnowflakeEmulator,
    pub(crate) sigma_members: Vec<String>,
    pub(crate) grafana_users: Vec<i64>,
    pub(crate) grafana_teams: Vec<i64>,
    pub(crate) objects: usize,
}

impl World {
    pub(crate) async fn new(objects: usize) -> World {
        grant_operator::install_crypto_provider();
        let kube = operator_kube();
        let sigma = support::sigma::SigmaEmulator::start().await;
        sigma.add_client(CLIENT_ID, CLIENT_SECRET);
        let grafana = support::grafana::GrafanaEmulator::start().await;
        grafana.add_token(1, GRAFANA_TOKEN);
        let dremio = support::dremio::DremioEmulator::start().await;
        dremio.add_token(DREMIO_TOKEN);
        let snowflake = support::snowflake::SnowflakeEmulator::start().await;
        seed_snowflake(&snowflake);

        for o in 0..objects {
            sigma.add_connection(&format!("conn-{o}"));
            grafana.add_datasource(1, &format!("ds-{o}"), &format!("Data source {o}"));
            dremio.add_object(
                &["Lake", "sales", &format!("table_{o}")],
                &["ALTER", "SELECT", "MANAGE_GRANTS"],
            );
            snowflake.add_role(&format!("ROLE_{o}"));
        }
        let sigma_members = (0..SIGMA_MEMBERS)
            .map(|m| sigma.add_member(&format!("member{m}@example.com")))
            .collect();
        let grafana_users = (0..GRAFANA_USERS)
            .map(|u| grafana.add_user(1, &format!("user{u}"), &format!("user{u}@example.com")))
            .collect();
        let grafana_teams = (0..GRAFANA_TEAMS)
            .map(|t| grafana.add_team(1, &format!("team-{t}")))
            .collect();
        for u in 0..DREMIO_USERS {
            dremio.add_user(&format!("user{u}"), &format!("user{u}@example.com"));
        }
        for r in 0..DREMIO_ROLES {
            dremio.add_role(&format!("role{r}"));
        }
        for t in 0..SNOWFLAKE_TABLES {
            snowflake.add_table(&format!("SALES.PUBLIC.T{t}"));
        }
        World {
            kube,
            sigma,
            grafana,
            dremio,
            snowflake,
            sigma_members,
            grafana_users,
            grafana_teams,
            objects,
        }
    }

    /// The namespace, Secrets and one provider per vendor, each with a rate limit.
    pub(crate) fn providers(&self) {
        let namespace = k8s_openapi::api::core::v1::Namespace {
            metadata: k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta {
                name: Some(NS.into()),
                ..Default::default()
            },
            ..Default::default()
        };
        self.kube.put(&namespace);
        let secret = |name: &str, data: &[(&str, &str)]| {
            let secret = k8s_openapi::api::core::v1::Secret {
                metadata: k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta {
                    name: Some(name.into()),
                    namespace: Some(NS.into()),
                    ..Default::default()
                },
                data: Some(
                    data.iter()
                        .map(|(k, v)| {
                            (
                                k.to_string(),
                                k8s_openapi::ByteString(v.as_bytes().to_vec()),
                            )
                        })
                        .collect(),
                ),
                ..Default::default()
            };
            self.kube.put(&secret);
        };
        secret(
            "sigma-api",
            &[("client-id", CLIENT_ID), ("client-secret", CLIENT_SECRET)],
        );
        secret("grafana-sa", &[("token", GRAFANA_TOKEN)]);
        secret("dremio-pat", &[("token", DREMIO_TOKEN)]);
        secret("snowflake-key", &[("private-key", SNOWFLAKE_KEY)]);
        let limited = |mut provider: GrantProvider| {
            provider.spec.rate_limit = Some(RateLimit {
                requests_per_second: RATE_LIMIT,
                burst: Some(RATE_LIMIT as i32),
            });
            provider.spec.request_timeout_seconds = Some(10);
            self.kube.put(&provider);
        };
        limited(sigma_provider(NS, "sigma", &self.sigma.url(), "sigma-api"));
        limited(grafana_provider(
            NS,
            "grafana",
            &self.grafana.url(),
            "grafana-sa",
            GrafanaPermissionsApi::AccessControl,
        ));
        limited(dremio_provider(
            NS,
            "dremio",
            &self.dremio.url(),
            "dremio-pat",
            None,
        ));
        limited(snowflake_provider(
            NS,
            "snowflake",
            &self.snowflake.url(),
            "snowflake-key",
            SnowflakeLogin::KeyPair,
            SnowflakeGrantsApi::RoleGrants,
        ));
    }

    pub(crate) fn providers_ready(&self) -> bool {
        ["sigma", "grafana", "dremio", "snowflake"]
            .iter()
            .all(|name| {
                self.kube
                    .get::<GrantProvider>(Some(NS), name)
                    .and_then(|provider| provider.status)
                    .is_some_and(|status| {
                        status
                            .conditions
                            .iter()
                            .any(|c| c.type_ == READY && c.status == "True")
                    })
            })
    }

    /// Every vendor call is answered after `rtt`.
    pub(crate) fn delay_every_call(&self, rtt: Duration) {
        let fault = |prefix: &str| support::emulator::Fault {
            method: None,
            path_prefix: prefix.into(),
            times: usize::MAX,
            kind: support::emulator::FaultKind::Delay(rtt),
        };
        self.sigma.inject(fault("/"));
        self.grafana.inject(fault("/"));
        self.dremio.inject(fault("/"));
        self.snowflake.inject(fault("/"));
    }

    /// Creates resource `index` (vendor `index % 4`) and returns its plural and name.
    pub(crate) fn create(&self, index: usize, interval: &str) -> (usize, String) {
        let vendor = index % 4;
        let j = index / 4;
        let o = j % self.objects;
        let round = j / self.objects;
        let name = format!("{}-{j}", VENDORS[vendor].to_lowercase());
        let with = |policy: &mut GrantPolicy, provider: &str| {
            policy.provider_ref.name = provider.into();
            policy.sync_interval = Some(interval.into());
        };
        match vendor {
            0 => {
                let grants = sigma_members_of(o, round)
                    .map(|m| member_id(&self.sigma_members[m], sigma_level(o, m)))
                    .collect();
                let mut grant = sigma_grant(&name, grants);
                grant.metadata.name = Some(name.clone());
                grant.spec.connection_id = format!("conn-{o}");
                with(&mut grant.spec.policy, "sigma");
                self.kube.put(&realistic(grant, "spec.connectionId"));
            }
            1 => {
                let (user, team) = grafana_grantees(o, round);
                let grants = vec![
                    user_id(self.grafana_users[user], grafana_level(o, user)),
                    GrafanaPermissionEntry {
                        user: None,
                        team: Some(GrafanaTeamRef {
                            name: None,
                            id: Some(self.grafana_teams[team]),
                        }),
                        role: None,
                        permission: GrafanaPermission::Query,
                    },
                ];
                let mut grant = grafana_grant(&name, grants);
                grant.spec.datasource.uid = Some(format!("ds-{o}"));
                with(&mut grant.spec.policy, "grafana");
                self.kube.put(&realistic(grant, "spec.datasource"));
            }
            2 => {
                let (user, role) = dremio_grantees(o, round);
                let mut grant = dremio_grant(
                    &name,
                    vec![
                        dremio_role(&format!("role{role}"), &["SELECT"]),
                        dremio_user(&format!("user{user}"), &["SELECT", "ALTER"]),
                    ],
                );
                grant.spec.catalog_object.path =
                    Some(vec!["Lake".into(), "sales".into(), format!("table_{o}")]);
                with(&mut grant.spec.policy, "dremio");
                self.kube.put(&realistic(grant, "spec.catalogObject"));
            }
            _ => {
                let mut grant = snowflake_grant(
                    &name,
                    (SnowflakeGranteeType::Role, &format!("ROLE_{o}")),
                    target_securable(
                        "TABLE",
                        &format!("SALES.PUBLIC.T{}", snowflake_table(round)),
                    ),
                    &["SELECT", "INSERT"],
                    false,
                );
                with(&mut grant.spec.policy, "snowflake");
                self.kube.put(&realistic(grant, "spec.grantee"));
            }
        }
        (vendor, name)
    }
}
