//! The emulators' side: what each holds live, and the Snowflake account seeded
//! for the tests.

use super::*;

/// A fault for an emulator: `kind` answers the next `times` `method` requests
/// whose path starts with `path_prefix`.
pub fn fault(
    method: &str,
    path_prefix: &str,
    times: usize,
    kind: emulator::FaultKind,
) -> emulator::Fault {
    emulator::Fault {
        method: Some(method.into()),
        path_prefix: path_prefix.into(),
        times,
        kind,
    }
}

impl Harness {
    /// Grants of a Dremio catalog object as `(grantee key, privileges sorted)` sorted.
    pub fn dremio_live(&self, object: &str) -> Vec<(String, Vec<String>)> {
        let mut live: Vec<(String, Vec<String>)> = self
            .dremio
            .grants(object)
            .into_iter()
            .map(|entry| {
                let kind = match entry.grantee_type {
                    dremio::GranteeType::User => "user",
                    dremio::GranteeType::Role => "role",
                };
                let mut privileges = entry.privileges.clone();
                privileges.sort();
                (format!("{kind}:{}", entry.id), privileges)
            })
            .collect();
        live.sort();
        live
    }

    /// Managed, non-inherited permissions of a Grafana data source as
    /// `(grantee key, level)` sorted: what the operator may change.
    pub fn grafana_live(&self, uid: &str) -> Vec<(String, String)> {
        let mut live: Vec<(String, String)> = self
            .grafana
            .permissions(uid)
            .into_iter()
            .filter(|entry| entry.managed && !entry.inherited)
            .map(|entry| {
                let grantee = match entry.grantee {
                    grafana::Grantee::User(id) => format!("user:{id}"),
                    grafana::Grantee::Team(id) => format!("team:{id}"),
                    grafana::Grantee::BuiltIn(role) => format!("role:{role}"),
                };
                (grantee, entry.permission.name().to_string())
            })
            .collect();
        live.sort();
        live
    }

    /// Grants on the connection as `(grantee, permission)` sorted, for comparisons.
    pub fn live(&self) -> Vec<(String, String)> {
        let mut live: Vec<(String, String)> = self
            .sigma
            .grants(CONNECTION)
            .into_iter()
            .map(|grant| {
                let grantee = match grant.grantee {
                    sigma::Grantee::Member(id) => format!("member:{id}"),
                    sigma::Grantee::Team(id) => format!("team:{id}"),
                };
                (grantee, grant.permission)
            })
            .collect();
        live.sort();
        live
    }
}

/// How a Snowflake provider logs in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SnowflakeLogin {
    /// Key pair, unencrypted PKCS#8.
    KeyPair,
    /// Key pair, encrypted PKCS#8 and a passphrase.
    EncryptedKeyPair,
    OAuth,
    Pat,
}

/// The emulator's account: the operator's key-pair user and tokens, roles
/// `ANALYST`, `LOADER` and `"My Role"`, database role `SALES.READER`, user `JANE`,
/// database `SALES` with schemas `PUBLIC` (tables `ORDERS`, `CUSTOMERS`, view
/// `ORDERS_V`) and `"Mixed Case"` (table `"Line Items"`), warehouse `COMPUTE_WH`.
pub fn seed_snowflake(snowflake: &SnowflakeEmulator) {
    snowflake.add_key_user(SNOWFLAKE_ACCOUNT, SNOWFLAKE_USER, SNOWFLAKE_PUBLIC_KEY);
    snowflake.add_oauth_token(SNOWFLAKE_OAUTH);
    snowflake.add_pat(SNOWFLAKE_PAT);
    for role in ["ANALYST", "LOADER", r#""My Role""#] {
        snowflake.add_role(role);
    }
    snowflake.add_database_role("SALES.READER");
    snowflake.add_user("JANE");
    snowflake.add_table("SALES.PUBLIC.ORDERS");
    snowflake.add_table("SALES.PUBLIC.CUSTOMERS");
    snowflake.add_view("SALES.PUBLIC.ORDERS_V");
    snowflake.add_table(r#"SALES."Mixed Case"."Line Items""#);
    snowflake.add_warehouse("COMPUTE_WH");
}

/// The Sigma emulator as the benchmarks load it: connections `conn-0` on, 50
/// members (their ids are returned) and 100 ms on every API call.
pub fn slow_sigma(emulator: &SigmaEmulator, connections: usize) -> Vec<String> {
    for c in 0..connections {
        emulator.add_connection(&format!("conn-{c}"));
    }
    let members = (0..50)
        .map(|i| emulator.add_member(&format!("user{i}@example.com")))
        .collect();
    emulator.inject(sigma::Fault {
        method: None,
        path_prefix: "/v2/".into(),
        times: usize::MAX,
        kind: sigma::FaultKind::Delay(Duration::from_millis(100)),
    });
    members
}

/// The `i`-th grant of a benchmark on [`slow_sigma`]: `g{i}`, on connection
/// `conn-{i % connections}`, granting `Usage` to one of `members` in turn.
pub fn spread_grant(i: usize, members: &[String], connections: usize) -> SigmaGrant {
    let mut grant = sigma_grant(
        &format!("g{i}"),
        vec![member_id(
            &members[i % members.len()],
            SigmaPermission::Usage,
        )],
    );
    grant.spec.connection_id = format!("conn-{}", i % connections);
    grant
}
