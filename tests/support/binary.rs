//! Running the `grant-operator` binary as a user would, and writing the
//! manifests it reads (for the tests of `plan`, `apply`, `export`, `access`).

use k8s_openapi::api::core::v1::Secret;
use serde_json::Value;

use grant_operator::api::{GrafanaPermissionsApi, GrantProvider, SnowflakeGrantsApi};

use super::{GRAFANA_TOKEN, Harness, NS, SnowflakeLogin};

/// What a run of the binary printed and returned.
pub struct Run {
    /// Exit code (-1 when killed by a signal).
    pub code: i32,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
}

impl Run {
    /// Standard output parsed as JSON, after checking the run exited 0.
    #[track_caller]
    pub fn json(&self) -> Value {
        assert_eq!(self.code, 0, "{}{}", self.stdout, self.stderr);
        serde_json::from_str(&self.stdout).unwrap()
    }
}

/// Runs the binary with `args`; `GRAFANA_TOKEN_FROM_ENV` holds the Grafana
/// emulator's token (for `--secret ...=env:GRAFANA_TOKEN_FROM_ENV`).
pub async fn cli(args: &[&str]) -> Run {
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_grant-operator"))
        .args(args)
        .env("GRAFANA_TOKEN_FROM_ENV", GRAFANA_TOKEN)
        .output()
        .await
        .expect("the binary runs");
    Run {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// A Secret of the test namespace with `stringData`.
pub fn secret(name: &str, data: &[(&str, &str)]) -> Secret {
    serde_json::from_value(serde_json::json!({
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name, "namespace": NS},
        "stringData": data.iter().map(|(k, v)| (k.to_string(), Value::from(*v))).collect::<serde_json::Map<_, _>>(),
    }))
    .unwrap()
}

/// Objects as one multi-document YAML file.
pub fn yaml<T: serde::Serialize>(objects: &[T]) -> String {
    objects
        .iter()
        .map(|object| serde_norway::to_string(object).unwrap())
        .collect::<Vec<_>>()
        .join("---\n")
}

/// The four providers as the test manifests declare them: Sigma `sigma-prod`
/// (without a rate limit), Grafana `grafana` (API detected), Dremio `dremio`,
/// and Snowflake `snowflake` logging in the `login` way with the Secret
/// `snowflake_secret`.
pub fn manifest_providers(
    h: &Harness,
    snowflake_secret: &str,
    login: SnowflakeLogin,
) -> Vec<GrantProvider> {
    let mut sigma = h.sigma_provider(NS, "sigma-prod", "sigma-api");
    sigma.spec.rate_limit = None;
    vec![
        sigma,
        h.grafana_provider(NS, "grafana", "grafana-sa", GrafanaPermissionsApi::Auto),
        h.dremio_provider(NS, "dremio", "dremio-pat", false),
        h.snowflake_provider(
            NS,
            "snowflake",
            snowflake_secret,
            login,
            SnowflakeGrantsApi::RoleGrants,
        ),
    ]
}
