//! `grant-operator demo`: the whole loop in the terminal, with no cluster and no
//! vendor account. Local sandboxes of every implemented vendor (the strict
//! emulators the tests use) stand in for the vendors; the manifests of
//! `examples/demo/` are planned and applied with the controller's own sync
//! engine, a grant is changed behind the operator's back and repaired, a
//! resource is deleted (its grants revoked, a shared grant kept), and an
//! unknown user is reported.

use std::sync::Arc;
use std::time::Duration;

use kube::ResourceExt;

use crate::metrics::Metrics;
use crate::sandbox::dremio::DremioEmulator;
use crate::sandbox::grafana::{self, GrafanaEmulator};
use crate::sandbox::sigma::SigmaEmulator;
use crate::sandbox::snowflake::SnowflakeEmulator;
use crate::vendor_api::http::RetryPolicy;

use super::manifests::Manifests;
use super::plan::{self, Report};
use super::secrets::CliSecrets;

const PROVIDERS: &str = include_str!("../../examples/demo/providers.yaml");
const GRANTS: &str = include_str!("../../examples/demo/grants.yaml");
const UNKNOWN_USER: &str = include_str!("../../examples/demo/unknown-user.yaml");
const CONNECTION: &str = "g3e8e8947-c9f5-43re-93b0-T80d0ddf5627";
const DATASOURCE: &str = "P8E80F9AEF21F6940";

/// The local stand-ins for the vendors (public so that a test can run the demo
/// on them and then read what each received).
pub struct Sandboxes {
    /// Sigma.
    pub sigma: SigmaEmulator,
    /// Grafana.
    pub grafana: GrafanaEmulator,
    /// Dremio.
    pub dremio: DremioEmulator,
    /// Snowflake.
    pub snowflake: SnowflakeEmulator,
    grafana_jane: i64,
}

impl Sandboxes {
    /// Starts every sandbox with the demo's accounts, objects and names.
    pub async fn start() -> Sandboxes {
        let sigma = SigmaEmulator::start().await;
        sigma.add_client("demo-client", "demo-client-secret");
        sigma.add_connection(CONNECTION);
        sigma.add_member("jane@example.com");
        sigma.add_member("joe@example.com");
        sigma.add_team("Finance");

        let grafana = GrafanaEmulator::start().await;
        grafana.add_token(1, "glsa_demo_token");
        grafana.add_datasource(1, DATASOURCE, "Prometheus");
        let grafana_jane = grafana.add_user(1, "jane", "jane@example.com");
        grafana.add_team(1, "SRE");

        let dremio = DremioEmulator::start().await;
        dremio.add_token("dremio-demo-pat");
        dremio.add_object(
            &["Samples", "samples.dremio.com", "zips.json"],
            &["ALTER", "SELECT", "MANAGE_GRANTS"],
        );
        dremio.add_role("analysts");
        dremio.add_user("jeansmith", "jean.smith@example.com");

        let snowflake = SnowflakeEmulator::start().await;
        snowflake.add_pat("snowflake-demo-pat");
        snowflake.add_role("ANALYST");
        snowflake.add_database("SALES");
        snowflake.add_schema("SALES.PUBLIC");
        Sandboxes {
            sigma,
            grafana,
            dremio,
            snowflake,
            grafana_jane,
        }
    }

    /// Points the demo's providers at the sandboxes.
    fn point(&self, manifests: &mut Manifests) {
        for provider in &mut manifests.providers {
            if let Some(sigma) = provider.spec.sigma.as_mut() {
                sigma.api_url = self.sigma.url();
            }
            if let Some(grafana) = provider.spec.grafana.as_mut() {
                grafana.url = self.grafana.url();
            }
            if let Some(dremio) = provider.spec.dremio.as_mut() {
                dremio.url = self.dremio.url();
            }
            if let Some(snowflake) = provider.spec.snowflake.as_mut() {
                snowflake.account_url = self.snowflake.url();
            }
        }
    }
}

/// Keeps each resource's status from a report, as the controller would write it
/// (the memory of what each resource holds).
fn remember(manifests: &mut Manifests, report: &Report) {
    for unit in &report.units {
        for result in &unit.results {
            manifests.set_status(unit.kind, &result.resource, &result.status);
        }
    }
}

fn step(number: usize, title: &str, explanation: &str) {
    println!("\n=== {number}. {title}");
    println!("{explanation}\n");
}

/// Runs the demo, printing as it goes.
pub async fn run() -> Result<(), String> {
    run_on(&Sandboxes::start().await).await
}

/// Runs the demo on sandboxes already started, printing as it goes.
pub async fn run_on(sandboxes: &Sandboxes) -> Result<(), String> {
    let started = std::time::Instant::now();
    let mut manifests = Manifests::default();
    for (name, text) in [
        ("examples/demo/providers.yaml", PROVIDERS),
        ("examples/demo/grants.yaml", GRANTS),
    ] {
        manifests
            .add_text(name, text)
            .map_err(|error| error.to_string())?;
    }
    sandboxes.point(&mut manifests);
    let secrets = CliSecrets::new(&manifests.secrets, Vec::new(), None);
    let metrics = Arc::new(Metrics::new());
    let retry = RetryPolicy {
        attempts: 3,
        base: Duration::from_millis(20),
        max: Duration::from_millis(200),
        max_retry_after: Duration::from_secs(2),
    };

    println!(
        "grant-operator demo: local sandboxes of Sigma, Grafana, Dremio and Snowflake are running;"
    );
    println!(
        "the manifests of examples/demo/ declare {} resources on them.",
        manifests.grant_count()
    );

    step(
        1,
        "plan",
        "What the controller would do: the vendors' live grants are read, nothing is written.\n(`grant-operator plan -f examples/demo/` does this against real vendors.)",
    );
    let report = plan::run(&manifests, &secrets, false, &metrics, &retry).await;
    print!("{}", plan::render(&report, false));

    step(
        2,
        "apply",
        "The same plan carried out; each resource's result is what its status would show.",
    );
    let report = plan::run(&manifests, &secrets, true, &metrics, &retry).await;
    print!("{}", plan::render(&report, true));
    remember(&mut manifests, &report);

    step(
        3,
        "drift",
        "Behind the operator's back, someone removes the Finance team's Sigma grant and\njane's Grafana permission. The next sync finds and repairs both.",
    );
    if let Some(finance) = sandboxes
        .sigma
        .grants(CONNECTION)
        .into_iter()
        .find(|grant| matches!(&grant.grantee, crate::sandbox::sigma::Grantee::Team(_)))
    {
        sandboxes
            .sigma
            .delete_grant_directly(CONNECTION, &finance.grant_id);
    }
    sandboxes
        .grafana
        .remove_directly(DATASOURCE, &grafana::Grantee::User(sandboxes.grafana_jane));
    let report = plan::run(&manifests, &secrets, true, &metrics, &retry).await;
    print!("{}", plan::render(&report, true));
    remember(&mut manifests, &report);

    step(
        4,
        "delete a resource",
        "analytics/finance-readers is deleted. Its finalizer revokes what it alone held (the\nFinance team) and lowers jane to what analytics/analysts still declares (usage).",
    );
    let deleting = vec!["analytics/finance-readers".to_string()];
    let report = plan::run_deleting(&manifests, &secrets, true, &metrics, &retry, &deleting).await;
    print!("{}", plan::render(&report, true));
    manifests
        .sigma
        .retain(|grant| grant.name_any() != "finance-readers");
    let live: Vec<String> = sandboxes
        .sigma
        .grants(CONNECTION)
        .into_iter()
        .map(|grant| {
            let grantee = match grant.grantee {
                crate::sandbox::sigma::Grantee::Member(id) => format!("member:{id}"),
                crate::sandbox::sigma::Grantee::Team(id) => format!("team:{id}"),
            };
            format!("{grantee} {}", grant.permission)
        })
        .collect();
    println!("Sigma connection now: {}", live.join(", "));

    step(
        5,
        "an unknown user",
        "A new resource names jane.doe@exmaple.com (a typo). The name resolves to nobody:\nit is reported (Ready=False, reason=GranteeNotFound in a cluster), never guessed.",
    );
    manifests
        .add_text("examples/demo/unknown-user.yaml", UNKNOWN_USER)
        .map_err(|error| error.to_string())?;
    sandboxes.point(&mut manifests);
    let report = plan::run(&manifests, &secrets, false, &metrics, &retry).await;
    print!("{}", plan::render(&report, false));

    println!(
        "\nDone in {:.1}s. To run the real operator:\n\
         \x20 kubectl apply --server-side -f crds/            # the CRDs\n\
         \x20 helm install grant-operator charts/grant-operator -n grant-operator --create-namespace\n\
         \x20 kubectl apply -f examples/sigma.yaml             # a provider, its Secret, grants\n\
         Or check manifests against real vendors first:\n\
         \x20 grant-operator plan -f examples/ --secret NAMESPACE/NAME/KEY=env:VARIABLE",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}
