//! Where the command-line tools read Secret values: only from places the user
//! named — Secrets in the manifests, `--secret` values from the environment or
//! files, and with `--secrets-from-cluster` the current kube context.

use std::collections::HashMap;

use k8s_openapi::api::core::v1::Secret;
use secrecy::SecretString;

use crate::credentials::{
    CredentialError, SecretSource, read_from_cluster, secret_key, secret_text,
};

/// One `--secret NAMESPACE/NAME/KEY=env:VAR|file:PATH`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SecretOverride {
    namespace: String,
    name: String,
    key: String,
    from: ValueFrom,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum ValueFrom {
    Env(String),
    File(std::path::PathBuf),
}

impl std::str::FromStr for SecretOverride {
    type Err = String;
    fn from_str(text: &str) -> Result<Self, String> {
        let usage = "expected NAMESPACE/NAME/KEY=env:VARIABLE or NAMESPACE/NAME/KEY=file:PATH";
        let (reference, from) = text.split_once('=').ok_or(usage)?;
        let parts: Vec<&str> = reference.split('/').collect();
        let [namespace, name, key] = parts.as_slice() else {
            return Err(usage.into());
        };
        if namespace.is_empty() || name.is_empty() || key.is_empty() {
            return Err(usage.into());
        }
        let from = if let Some(variable) = from.strip_prefix("env:") {
            ValueFrom::Env(variable.to_string())
        } else if let Some(path) = from.strip_prefix("file:") {
            ValueFrom::File(path.into())
        } else {
            return Err(usage.into());
        };
        Ok(SecretOverride {
            namespace: namespace.to_string(),
            name: name.to_string(),
            key: key.to_string(),
            from,
        })
    }
}

/// The Secret values the tools may use.
pub struct CliSecrets {
    manifests: HashMap<(String, String), Secret>,
    overrides: Vec<SecretOverride>,
    cluster: Option<kube::Client>,
}

impl CliSecrets {
    /// Secrets from the manifests, `--secret` overrides (which win), and the
    /// cluster when a client is given.
    pub fn new(
        manifests: &[Secret],
        overrides: Vec<SecretOverride>,
        cluster: Option<kube::Client>,
    ) -> CliSecrets {
        CliSecrets {
            manifests: manifests
                .iter()
                .map(|secret| {
                    (
                        (
                            secret.metadata.namespace.clone().unwrap_or_default(),
                            secret.metadata.name.clone().unwrap_or_default(),
                        ),
                        secret.clone(),
                    )
                })
                .collect(),
            overrides,
            cluster,
        }
    }
}

impl SecretSource for CliSecrets {
    async fn read_key(
        &self,
        namespace: &str,
        name: &str,
        key: &str,
    ) -> Result<SecretString, CredentialError> {
        if let Some(found) = self
            .overrides
            .iter()
            .find(|o| o.namespace == namespace && o.name == name && o.key == key)
        {
            let bad = |problem| CredentialError::BadValue {
                namespace: namespace.to_string(),
                name: name.to_string(),
                key: key.to_string(),
                problem,
            };
            let bytes = match &found.from {
                ValueFrom::Env(variable) => std::env::var(variable)
                    .map_err(|_| bad("named with --secret env:, but that variable is not set"))?
                    .into_bytes(),
                ValueFrom::File(path) => std::fs::read(path)
                    .map_err(|_| bad("named with --secret file:, but that file cannot be read"))?,
            };
            return secret_text(bytes, namespace, name, key);
        }
        if let Some(secret) = self
            .manifests
            .get(&(namespace.to_string(), name.to_string()))
        {
            return secret_key(secret, namespace, name, key);
        }
        match &self.cluster {
            Some(client) => read_from_cluster(client, namespace, name, key).await,
            None => Err(CredentialError::SecretNotFound {
                namespace: namespace.to_string(),
                name: name.to_string(),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::ExposeSecret;

    #[test]
    fn overrides_parse() {
        let parsed: SecretOverride = "ns/s/token=env:TOKEN"
            .parse()
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(parsed.from, ValueFrom::Env("TOKEN".into()));
        assert!("ns/s=env:X".parse::<SecretOverride>().is_err());
        assert!("ns/s/k=literal".parse::<SecretOverride>().is_err());
        assert!("ns//k=env:X".parse::<SecretOverride>().is_err());
    }

    #[tokio::test]
    async fn values_come_only_from_named_places() {
        let secret: Secret = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "s", "namespace": "ns"},
            "stringData": {"token": "from-manifest\n"}
        }))
        .unwrap_or_default();
        let dir =
            std::env::temp_dir().join(format!("grant-operator-secret-{}", std::process::id()));
        std::fs::write(&dir, "from-file").unwrap_or_default();
        let secrets = CliSecrets::new(
            &[secret],
            vec![
                format!("ns/other/key=file:{}", dir.display())
                    .parse()
                    .unwrap_or_else(|e| panic!("{e}")),
            ],
            None,
        );
        let value = secrets
            .read_key("ns", "s", "token")
            .await
            .map(|v| v.expose_secret().to_string());
        assert_eq!(value.ok().as_deref(), Some("from-manifest"));
        let value = secrets
            .read_key("ns", "other", "key")
            .await
            .map(|v| v.expose_secret().to_string());
        assert_eq!(value.ok().as_deref(), Some("from-file"));
        assert!(matches!(
            secrets.read_key("ns", "missing", "key").await,
            Err(CredentialError::SecretNotFound { .. })
        ));
        let _ = std::fs::remove_file(dir);
    }
}
