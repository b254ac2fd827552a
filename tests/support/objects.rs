//! The harness's cluster objects: namespaces, Secrets, providers and grant
//! resources put into the fake API server, and their status, conditions and
//! Events read back.

use super::*;

impl Harness {
    /// The `sigma-api` Secret with the emulator's API client.
    pub fn sigma_api_secret(&self) {
        self.secret(
            NS,
            "sigma-api",
            &[("client-id", CLIENT_ID), ("client-secret", CLIENT_SECRET)],
        );
    }

    /// The `sigma-api` Secret with the emulator's credentials, and the
    /// `sigma-prod` provider that uses it (not reconciled).
    pub fn sigma_prod_provider(&self) {
        self.sigma_api_secret();
        self.put(&self.sigma_provider(NS, "sigma-prod", "sigma-api"));
    }

    pub fn namespace(&self, name: &str, labels: &[(&str, &str)]) {
        let namespace = Namespace {
            metadata: ObjectMeta {
                name: Some(name.into()),
                labels: Some(
                    labels
                        .iter()
                        .map(|(k, v)| (k.to_string(), v.to_string()))
                        .collect(),
                ),
                ..ObjectMeta::default()
            },
            ..Namespace::default()
        };
        self.kube.put(&namespace);
    }

    pub fn secret(&self, namespace: &str, name: &str, data: &[(&str, &str)]) {
        self.kube.put(&secret_with_data(namespace, name, data));
    }

    /// A provider for this harness's emulator, with a short timeout and a high rate limit.
    pub fn sigma_provider(&self, namespace: &str, name: &str, secret: &str) -> GrantProvider {
        let mut provider = sigma_provider(namespace, name, &self.sigma.url(), secret);
        provider.spec.request_timeout_seconds = Some(5);
        provider.spec.rate_limit = Some(RateLimit {
            requests_per_second: 1000.0,
            burst: Some(1000),
        });
        provider
    }

    /// A Grafana provider for this harness's emulator (token in `secret`, key
    /// `token`; org 1), with a short timeout and a high rate limit.
    pub fn grafana_provider(
        &self,
        namespace: &str,
        name: &str,
        secret: &str,
        api: GrafanaPermissionsApi,
    ) -> GrantProvider {
        let mut provider = grafana_provider(namespace, name, &self.grafana.url(), secret, api);
        provider.spec.request_timeout_seconds = Some(5);
        provider.spec.rate_limit = Some(RateLimit {
            requests_per_second: 1000.0,
            burst: Some(1000),
        });
        provider
    }

    /// A Dremio provider for this harness's emulator: Software, or Cloud on
    /// [`DREMIO_PROJECT`]; token in `secret` (key `token`).
    pub fn dremio_provider(
        &self,
        namespace: &str,
        name: &str,
        secret: &str,
        cloud: bool,
    ) -> GrantProvider {
        let mut provider = dremio_provider(
            namespace,
            name,
            &self.dremio.url(),
            secret,
            cloud.then_some(DREMIO_PROJECT),
        );
        provider.spec.request_timeout_seconds = Some(5);
        provider.spec.rate_limit = Some(RateLimit {
            requests_per_second: 1000.0,
            burst: Some(1000),
        });
        provider
    }

    pub fn cluster_provider(
        &self,
        name: &str,
        secret_namespace: &str,
        secret: &str,
        selector: LabelSelector,
    ) -> ClusterGrantProvider {
        let value = |key: &str| SecretValue {
            secret_key_ref: ClusterSecretKeySelector {
                name: secret.into(),
                namespace: secret_namespace.into(),
                key: key.into(),
            },
        };
        ClusterGrantProvider::new(
            name,
            ClusterGrantProviderSpec {
                sigma: Some(SigmaProvider {
                    api_url: self.sigma.url(),
                    client_id: value("client-id"),
                    client_secret: value("client-secret"),
                }),
                grafana: None,
                snowflake: None,
                dremio: None,
                request_timeout_seconds: Some(5),
                rate_limit: None,
                ca_bundle: None,
                namespace_selector: selector,
            },
        )
    }

    /// Creates or replaces an object as given (status and finalizers included).
    pub fn put<K: Resource<DynamicType = ()> + serde::Serialize>(&self, object: &K) {
        self.kube.put(object);
    }

    pub fn get(&self, name: &str) -> Option<SigmaGrant> {
        self.get_of::<SigmaGrant>(name)
    }

    pub fn get_of<K: TestKind>(&self, name: &str) -> Option<K> {
        self.kube.get::<K>(Some(NS), name)
    }

    pub fn status(&self, name: &str) -> GrantStatus {
        self.status_of::<SigmaGrant>(name)
    }

    pub fn status_of<K: TestKind>(&self, name: &str) -> GrantStatus {
        self.get_of::<K>(name)
            .and_then(|grant| grant.status().cloned())
            .unwrap_or_default()
    }

    pub fn ready_condition(&self, name: &str) -> Condition {
        self.ready_of::<SigmaGrant>(name)
    }

    pub fn ready_of<K: TestKind>(&self, name: &str) -> Condition {
        let status = self.status_of::<K>(name);
        status
            .conditions
            .into_iter()
            .find(|condition| condition.type_ == READY)
            .unwrap_or_else(|| panic!("{name} has no Ready condition"))
    }

    /// Whether a condition of the grant `name` has `reason` (not while it has
    /// no status).
    pub fn has_reason<K: TestKind>(&self, name: &str, reason: &str) -> bool {
        self.get_of::<K>(name)
            .and_then(|grant| grant.status().cloned())
            .is_some_and(|status| status.conditions.iter().any(|c| c.reason == reason))
    }

    /// Whether a condition of the provider `name` of [`NS`] has `reason`.
    pub fn provider_has_reason(&self, name: &str, reason: &str) -> bool {
        self.kube
            .get::<GrantProvider>(Some(NS), name)
            .and_then(|provider| provider.status)
            .is_some_and(|status| status.conditions.iter().any(|c| c.reason == reason))
    }

    /// The `Ready` condition of `name` has `status` and `reason`; returns its
    /// message.
    #[track_caller]
    pub fn assert_ready_of<K: TestKind>(&self, name: &str, status: &str, reason: &str) -> String {
        let ready = self.ready_of::<K>(name);
        assert_eq!(
            (ready.status.as_str(), ready.reason.as_str()),
            (status, reason),
            "{name}: {}",
            ready.message
        );
        ready.message
    }

    /// Changes the spec of a grant (keeping its status and finalizers, like `kubectl apply`).
    pub fn edit(&self, name: &str, change: impl FnOnce(&mut SigmaGrantSpec)) {
        self.edit_of::<SigmaGrant>(name, |grant| change(&mut grant.spec));
    }

    /// Changes a grant of any kind (keeping its status and finalizers).
    pub fn edit_of<K: TestKind>(&self, name: &str, change: impl FnOnce(&mut K)) {
        let mut grant = self.get_of::<K>(name).expect("grant exists");
        change(&mut grant);
        self.kube.put(&grant);
    }

    pub fn delete(&self, name: &str) {
        self.delete_of::<SigmaGrant>(name);
    }

    pub fn delete_of<K: TestKind>(&self, name: &str) {
        self.kube.delete::<K>(Some(NS), name);
    }

    pub fn provider_ready(&self, namespace: &str, name: &str) -> Condition {
        self.kube
            .get::<GrantProvider>(Some(namespace), name)
            .and_then(|provider| provider.status)
            .and_then(|status| {
                status
                    .conditions
                    .into_iter()
                    .find(|condition| condition.type_ == READY)
            })
            .expect("provider has a Ready condition")
    }

    /// Events recorded for a grant: `(type, reason, note)`.
    pub fn events(&self, name: &str) -> Vec<(String, String, String)> {
        self.kube
            .list_json("events.k8s.io", "events")
            .into_iter()
            .filter(|event| event["regarding"]["name"] == name)
            .map(|event| {
                (
                    event["type"].as_str().unwrap_or_default().to_string(),
                    event["reason"].as_str().unwrap_or_default().to_string(),
                    event["note"].as_str().unwrap_or_default().to_string(),
                )
            })
            .collect()
    }

    // ----- reconciling -----
}

impl Harness {
    /// The Secret `secret` in [`NS`] with what `login` needs, and the provider
    /// `snowflake` that logs in with it on `api`.
    pub fn put_snowflake_provider(
        &self,
        secret: &str,
        login: SnowflakeLogin,
        api: grant_operator::api::SnowflakeGrantsApi,
    ) {
        self.snowflake_secret(NS, secret, login);
        self.put(&self.snowflake_provider(NS, "snowflake", secret, login, api));
    }

    /// The Secret `name` in `namespace` with what `login` needs
    /// (`private-key`, `passphrase`, `token`).
    pub fn snowflake_secret(&self, namespace: &str, name: &str, login: SnowflakeLogin) {
        match login {
            SnowflakeLogin::KeyPair => {
                self.secret(namespace, name, &[("private-key", SNOWFLAKE_KEY)])
            }
            SnowflakeLogin::EncryptedKeyPair => self.secret(
                namespace,
                name,
                &[
                    ("private-key", SNOWFLAKE_ENCRYPTED_KEY),
                    ("passphrase", SNOWFLAKE_PASSPHRASE.trim()),
                ],
            ),
            SnowflakeLogin::OAuth => self.secret(namespace, name, &[("token", SNOWFLAKE_OAUTH)]),
            SnowflakeLogin::Pat => self.secret(namespace, name, &[("token", SNOWFLAKE_PAT)]),
        }
    }

    /// A Snowflake provider for this harness's emulator, with a short timeout
    /// and a high rate limit.
    pub fn snowflake_provider(
        &self,
        namespace: &str,
        name: &str,
        secret: &str,
        login: SnowflakeLogin,
        api: SnowflakeGrantsApi,
    ) -> GrantProvider {
        let mut provider =
            snowflake_provider(namespace, name, &self.snowflake.url(), secret, login, api);
        provider.spec.request_timeout_seconds = Some(5);
        provider.spec.rate_limit = Some(RateLimit {
            requests_per_second: 1000.0,
            burst: Some(1000),
        });
        provider
    }
}
