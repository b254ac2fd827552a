//! Every CEL rule of every kind refuses the invalid samples and accepts the
//! valid ones.

use super::*;

fn sigma_provider() -> Value {
    json!({"apiUrl": "https://aws-api.sigmacomputing.com",
           "clientId": {"secretKeyRef": {"name": "s", "key": "id"}},
           "clientSecret": {"secretKeyRef": {"name": "s", "key": "secret"}}})
}

#[test]
fn provider_rules() {
    for kind in ["GrantProvider", "ClusterGrantProvider"] {
        let mut cel = Cel::new(if kind == "GrantProvider" {
            "GrantProvider"
        } else {
            "ClusterGrantProvider"
        });
        let extra = |mut spec: Value| {
            if kind == "ClusterGrantProvider" {
                spec["namespaceSelector"] = json!({});
            }
            spec
        };
        cel.valid(extra(json!({"sigma": sigma_provider()})));
        cel.valid(extra(json!({"grafana": {"url": "https://g", "token": {"secretKeyRef": {"name": "s", "key": "t"}}}})));
        cel.valid(extra(
            json!({"snowflake": {"accountUrl": "https://a", "account": "A-B", "user": "U",
            "programmaticAccessToken": {"secretKeyRef": {"name": "s", "key": "t"}}}}),
        ));
        cel.valid(extra(json!({"dremio": {"url": "https://d", "token": {"secretKeyRef": {"name": "s", "key": "t"}}}})));
        cel.invalid(extra(json!({})), "exactly one vendor block");
        cel.invalid(
            extra(json!({"sigma": sigma_provider(), "dremio": {"url": "https://d", "token": {"secretKeyRef": {"name": "s", "key": "t"}}}})),
            "exactly one vendor block",
        );
        cel.invalid(
            extra(json!({"grafana": {"url": "https://g", "token": {"secretKeyRef": {"name": "s", "key": "t"}},
                "basicAuth": {"username": {"secretKeyRef": {"name": "s", "key": "u"}}, "password": {"secretKeyRef": {"name": "s", "key": "p"}}}}})),
            "exactly one of token or basicAuth",
        );
        cel.invalid(
            extra(json!({"grafana": {"url": "https://g"}})),
            "exactly one of token or basicAuth",
        );
        cel.invalid(
            extra(
                json!({"snowflake": {"accountUrl": "https://a", "account": "A", "user": "U",
                "oauthToken": {"secretKeyRef": {"name": "s", "key": "t"}},
                "programmaticAccessToken": {"secretKeyRef": {"name": "s", "key": "t"}}}}),
            ),
            "exactly one of keyPair, oauthToken or programmaticAccessToken",
        );
        cel.all_rules_exercised();
    }
}

fn common() -> Value {
    json!({"providerRef": {"name": "p"}})
}

fn with(mut base: Value, extra: Value) -> Value {
    for (key, value) in extra.as_object().unwrap() {
        base[key] = value.clone();
    }
    base
}

#[test]
fn sigma_grant_rules() {
    let mut cel = Cel::new("SigmaGrant");
    let valid = with(
        common(),
        json!({"connectionId": "c1", "grants": [
        {"member": {"email": "jane@example.com"}, "permission": "annotate"},
        {"member": {"id": "D09b"}, "permission": "usage"},
        {"team": {"name": "Finance"}, "permission": "usage"},
        {"team": {"id": "88858466"}, "permission": "usage"}]}),
    );
    cel.valid(valid.clone());
    cel.valid(with(valid.clone(), json!({"syncInterval": "1s"})));
    cel.valid(with(valid.clone(), json!({"syncInterval": "1h30m"})));
    cel.invalid(
        with(common(), json!({"connectionId": "c1", "grants": [{"member": {"email": "a@b"}, "team": {"name": "T"}, "permission": "usage"}]})),
        "exactly one of member or team",
    );
    cel.invalid(
        with(
            common(),
            json!({"connectionId": "c1", "grants": [{"permission": "usage"}]}),
        ),
        "exactly one of member or team",
    );
    cel.invalid(
        with(common(), json!({"connectionId": "c1", "grants": [{"member": {"email": "a@b", "id": "x"}, "permission": "usage"}]})),
        "exactly one of id or email",
    );
    cel.invalid(
        with(
            common(),
            json!({"connectionId": "c1", "grants": [{"team": {}, "permission": "usage"}]}),
        ),
        "exactly one of id or name",
    );
    cel.invalid(
        with(valid.clone(), json!({"syncInterval": "500ms"})),
        "at least 1s",
    );
    cel.invalid_update(
        valid.clone(),
        with(valid, json!({"connectionId": "c2"})),
        "connectionId is immutable",
    );
    cel.all_rules_exercised();
}

#[test]
fn grafana_grant_rules() {
    let mut cel = Cel::new("GrafanaGrant");
    let valid = with(
        common(),
        json!({"datasource": {"uid": "P8E80F9AEF21F6940"}, "permissions": [
        {"user": {"login": "jane"}, "permission": "Query"},
        {"user": {"email": "jane@example.com"}, "permission": "Edit"},
        {"user": {"id": 7}, "permission": "Admin"},
        {"team": {"name": "SRE"}, "permission": "Query"},
        {"team": {"id": 3}, "permission": "Query"},
        {"role": "Viewer", "permission": "Query"}]}),
    );
    cel.valid(valid.clone());
    cel.invalid(
        with(common(), json!({"datasource": {"uid": "a", "name": "b"}})),
        "exactly one of uid, name or id",
    );
    cel.invalid(
        with(common(), json!({"datasource": {}})),
        "exactly one of uid, name or id",
    );
    cel.invalid(
        with(common(), json!({"datasource": {"id": 1}, "permissions": [{"user": {"id": 1}, "role": "Viewer", "permission": "Query"}]})),
        "exactly one of user, team or role",
    );
    cel.invalid(
        with(common(), json!({"datasource": {"id": 1}, "permissions": [{"user": {"login": "a", "id": 1}, "permission": "Query"}]})),
        "exactly one of login, email or id",
    );
    cel.invalid(
        with(common(), json!({"datasource": {"id": 1}, "permissions": [{"team": {"name": "a", "id": 1}, "permission": "Query"}]})),
        "exactly one of name or id",
    );
    cel.invalid(
        with(valid.clone(), json!({"syncInterval": "0s"})),
        "at least 1s",
    );
    cel.invalid_update(
        valid.clone(),
        with(valid, json!({"datasource": {"name": "Prometheus"}})),
        "datasource is immutable",
    );
    cel.all_rules_exercised();
}

#[test]
fn snowflake_grant_rules() {
    let mut cel = Cel::new("SnowflakeGrant");
    let valid = with(
        common(),
        json!({"grantee": {"type": "ROLE", "name": "ANALYST"},
        "target": {"securable": {"type": "SCHEMA", "name": "SALES.PUBLIC"}}, "privileges": ["USAGE"]}),
    );
    cel.valid(valid.clone());
    cel.valid(with(common(), json!({"grantee": {"type": "DATABASE_ROLE", "name": "SALES.READER"},
        "target": {"future": {"securableType": "TABLES", "in": {"type": "SCHEMA", "name": "SALES.PUBLIC"}}}, "privileges": ["SELECT"]})));
    // Role grants: the roles a user holds, and the role hierarchy.
    cel.valid(with(
        common(),
        json!({"grantee": {"type": "USER", "name": "\"jane\""},
        "target": {"securable": {"type": "ROLE", "name": "ANALYST"}}, "privileges": ["USAGE"]}),
    ));
    cel.valid(with(common(), json!({"grantee": {"type": "USER", "name": "JANE"},
        "target": {"securable": {"type": "role", "name": "ANALYST"}}, "privileges": ["usage"], "withGrantOption": false})));
    cel.valid(with(
        common(),
        json!({"grantee": {"type": "ROLE", "name": "ANALYST"},
        "target": {"securable": {"type": "ROLE", "name": "READER"}}, "privileges": ["USAGE"]}),
    ));
    cel.valid(with(common(), json!({"grantee": {"type": "ROLE", "name": "ANALYST"},
        "target": {"securable": {"type": "DATABASE ROLE", "name": "SALES.READER"}}, "privileges": ["USAGE"]})));
    cel.valid(with(common(), json!({"grantee": {"type": "DATABASE_ROLE", "name": "SALES.WRITER"},
        "target": {"securable": {"type": "database role", "name": "SALES.READER"}}, "privileges": ["USAGE"]})));
    let user = |target: Value, privileges: Value| {
        with(
            common(),
            json!({"grantee": {"type": "USER", "name": "JANE"}, "target": target, "privileges": privileges}),
        )
    };
    for target in [
        json!({"securable": {"type": "SCHEMA", "name": "SALES.PUBLIC"}}),
        json!({"securable": {"type": "DATABASE ROLE", "name": "SALES.READER"}}),
        json!({"all": {"securableType": "TABLES", "in": {"type": "DATABASE", "name": "SALES"}}}),
        json!({"future": {"securableType": "TABLES", "in": {"type": "DATABASE", "name": "SALES"}}}),
    ] {
        cel.invalid(
            user(target, json!(["USAGE"])),
            "Snowflake grants roles, not privileges, to users: a USER grantee takes only target.securable of type ROLE",
        );
    }
    let role_grant = |securable_type: &str, privileges: Value, option: bool| {
        with(
            common(),
            json!({"grantee": {"type": "ROLE", "name": "ANALYST"},
                "target": {"securable": {"type": securable_type, "name": "SALES.READER"}},
                "privileges": privileges, "withGrantOption": option}),
        )
    };
    for (securable_type, privileges, option) in [
        ("ROLE", json!(["USAGE", "MONITOR"]), false),
        ("Role", json!(["SELECT"]), false),
        ("DATABASE ROLE", json!(["USAGE"]), true),
        ("database role", json!(["OWNERSHIP"]), false),
    ] {
        cel.invalid(
            role_grant(securable_type, privileges, option),
            "a role is granted whole, not privilege by privilege",
        );
    }
    cel.invalid(
        user(
            json!({"securable": {"type": "ROLE", "name": "ANALYST"}}),
            json!(["USAGE", "MONITOR"]),
        ),
        "privileges is exactly [USAGE] and withGrantOption is false",
    );
    cel.invalid(
        with(
            common(),
            json!({"grantee": {"type": "DATABASE_ROLE", "name": "SALES.WRITER"},
            "target": {"securable": {"type": "ROLE", "name": "ANALYST"}}, "privileges": ["USAGE"]}),
        ),
        "an account role cannot be granted to a database role",
    );
    cel.invalid(
        with(common(), json!({"grantee": {"type": "ROLE", "name": "ANALYST"},
            "target": {"securable": {"type": "DATABASE ROLE", "name": "READER"}}, "privileges": ["USAGE"]})),
        "a DATABASE ROLE securable is named DATABASE.ROLE",
    );
    cel.invalid(
        with(
            common(),
            json!({"grantee": {"type": "ROLE", "name": "A"}, "target": {}, "privileges": ["USAGE"]}),
        ),
        "exactly one of securable, all or future",
    );
    cel.invalid(
        with(common(), json!({"grantee": {"type": "ROLE", "name": "A"},
            "target": {"securable": {"type": "SCHEMA", "name": "S.P"}, "future": {"securableType": "TABLES", "in": {"type": "DATABASE", "name": "S"}}},
            "privileges": ["USAGE"]})),
        "exactly one of securable, all or future",
    );
    cel.invalid(
        with(
            common(),
            json!({"grantee": {"type": "DATABASE_ROLE", "name": "READER"},
            "target": {"securable": {"type": "SCHEMA", "name": "S.P"}}, "privileges": ["USAGE"]}),
        ),
        "a DATABASE_ROLE is named DATABASE.ROLE",
    );
    cel.invalid(
        with(common(), json!({"grantee": {"type": "ROLE", "name": "A"},
            "target": {"all": {"securableType": "TABLES", "in": {"type": "SCHEMA", "name": "PUBLIC"}}}, "privileges": ["SELECT"]})),
        "a SCHEMA scope is named DATABASE.SCHEMA",
    );
    cel.invalid(
        with(valid.clone(), json!({"syncInterval": "0.5s"})),
        "at least 1s",
    );
    cel.invalid_update(
        valid.clone(),
        with(
            valid.clone(),
            json!({"grantee": {"type": "ROLE", "name": "OTHER"}}),
        ),
        "grantee is immutable",
    );
    cel.invalid_update(
        valid.clone(),
        with(
            valid,
            json!({"target": {"securable": {"type": "SCHEMA", "name": "SALES.OTHER"}}}),
        ),
        "target is immutable",
    );
    cel.all_rules_exercised();
}

#[test]
fn dremio_grant_rules() {
    let mut cel = Cel::new("DremioGrant");
    let valid = with(
        common(),
        json!({"catalogObject": {"path": ["Samples", "samples.dremio.com", "zips.json"]}, "grants": [
        {"user": {"name": "jeansmith"}, "privileges": ["SELECT"]},
        {"role": {"id": "0f2d94e0-bb5e-4c03-8c6f-62d379d10889"}, "privileges": ["SELECT", "ALTER"]}]}),
    );
    cel.valid(valid.clone());
    cel.invalid(
        with(
            common(),
            json!({"catalogObject": {"path": ["a"], "id": "x"}}),
        ),
        "exactly one of path or id",
    );
    cel.invalid(
        with(common(), json!({"catalogObject": {"id": "x"}, "grants": [{"user": {"name": "a"}, "role": {"name": "b"}, "privileges": ["SELECT"]}]})),
        "exactly one of user or role",
    );
    cel.invalid(
        with(common(), json!({"catalogObject": {"id": "x"}, "grants": [{"user": {"name": "a", "id": "b"}, "privileges": ["SELECT"]}]})),
        "exactly one of name or id",
    );
    cel.invalid(
        with(valid.clone(), json!({"syncInterval": "999ms"})),
        "at least 1s",
    );
    cel.invalid_update(
        valid.clone(),
        with(valid, json!({"catalogObject": {"id": "other"}})),
        "catalogObject is immutable",
    );
    cel.all_rules_exercised();
}
