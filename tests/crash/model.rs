//! What the crash tests declare, and how a vendor's grants compare with it.
//!
//! Every vendor is seen the same way: a vendor object holds grants per *key*
//! (a grantee on a Sigma connection, a Grafana data source or a Dremio catalog
//! object; a securable of the Snowflake role `ANALYST`), and a key holds a set
//! of *atoms*. On the vendors with levels (Sigma, Grafana) a level is the
//! ladder up to it (`annotate` = {usage, annotate}); on the vendors with
//! privileges (Snowflake, Dremio) each privilege is an atom, and a Snowflake
//! privilege with grant option adds the atom `P WITH GRANT OPTION`. What the
//! resources declare and what the vendor holds are both [`Atoms`], so the end
//! state is one comparison and a revoke is an atom that disappears.

use std::collections::{BTreeMap, BTreeSet};

use grant_operator::api::{
    DremioGrant, GrafanaGrant, GrafanaPermission, GrafanaPermissionEntry, SigmaGrant,
    SigmaGrantEntry, SigmaPermission, SnowflakeGrant, SnowflakeGranteeType,
};

use crate::support::*;

/// A vendor the crash tests drive.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Vendor {
    Sigma,
    Grafana,
    Snowflake,
    Dremio,
}

/// Atoms by key.
pub type Atoms = BTreeMap<String, BTreeSet<String>>;

/// What one resource declares: key index -> permission.
pub type Spec = BTreeMap<usize, Perm>;

/// A declared permission of one key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Perm {
    /// An index into the vendor's ladder.
    Level(usize),
    /// Privileges (Snowflake, Dremio); `option`: with grant option (Snowflake).
    Privileges {
        set: BTreeSet<&'static str>,
        option: bool,
    },
}

/// Sigma: four members, then two teams.
const SIGMA_MEMBERS: usize = 4;
/// Grafana: four users, then two teams.
const GRAFANA_USERS: usize = 4;
/// Dremio: three users, then three roles.
const DREMIO_USERS: usize = 3;
const DREMIO_PRIVILEGES: [&str; 4] = ["SELECT", "ALTER", "INSERT", "UPDATE"];
/// Snowflake: securables of the role `ANALYST` (type, name, privileges).
pub const SNOWFLAKE_SECURABLES: [(&str, &str, &[&str]); 5] = [
    ("SCHEMA", "SALES.PUBLIC", &["USAGE", "MONITOR"]),
    ("DATABASE", "SALES", &["USAGE", "MONITOR"]),
    (
        "TABLE",
        "SALES.PUBLIC.ORDERS",
        &["SELECT", "INSERT", "UPDATE"],
    ),
    ("TABLE", "SALES.PUBLIC.CUSTOMERS", &["SELECT", "INSERT"]),
    ("VIEW", "SALES.PUBLIC.ORDERS_V", &["SELECT", "REFERENCES"]),
];
/// The grantee of every SnowflakeGrant.
pub const SNOWFLAKE_ROLE: &str = "ANALYST";

/// The key each vendor object holds from the start and no resource ever
/// declares (created by "another administrator"), and its atoms.
pub fn outsider(vendor: Vendor) -> (&'static str, &'static [&'static str]) {
    match vendor {
        Vendor::Sigma => ("outsider", &["usage"]),
        Vendor::Grafana => ("outsider", &["Query", "Edit"]),
        Vendor::Dremio => ("outsiders", &["SELECT"]),
        Vendor::Snowflake => ("WAREHOUSE COMPUTE_WH", &["USAGE"]),
    }
}

impl Vendor {
    pub const ALL: [Vendor; 4] = [
        Vendor::Sigma,
        Vendor::Grafana,
        Vendor::Snowflake,
        Vendor::Dremio,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Vendor::Sigma => "sigma",
            Vendor::Grafana => "grafana",
            Vendor::Snowflake => "snowflake",
            Vendor::Dremio => "dremio",
        }
    }

    /// The plural of the grant kind.
    pub fn plural(self) -> &'static str {
        match self {
            Vendor::Sigma => "sigmagrants",
            Vendor::Grafana => "grafanagrants",
            Vendor::Snowflake => "snowflakegrants",
            Vendor::Dremio => "dremiogrants",
        }
    }

    /// The provider every resource of the vendor uses.
    pub fn provider(self) -> &'static str {
        match self {
            Vendor::Sigma => "sigma-prod",
            Vendor::Grafana => "grafana",
            Vendor::Snowflake => "snowflake",
            Vendor::Dremio => "dremio",
        }
    }

    /// The levels, lowest first, of a vendor with levels.
    pub fn ladder(self) -> Option<&'static [&'static str]> {
        match self {
            Vendor::Sigma => Some(&["usage", "annotate"]),
            Vendor::Grafana => Some(&["Query", "Edit", "Admin"]),
            Vendor::Snowflake | Vendor::Dremio => None,
        }
    }

    /// How many keys resources may declare.
    pub fn keys(self) -> usize {
        match self {
            Vendor::Sigma | Vendor::Grafana => 6,
            Vendor::Dremio => 6,
            Vendor::Snowflake => SNOWFLAKE_SECURABLES.len(),
        }
    }

    /// The label of a key, as [`Atoms`] show it.
    pub fn key_label(self, key: usize) -> String {
        match self {
            Vendor::Sigma if key < SIGMA_MEMBERS => format!("m{key}"),
            Vendor::Sigma => format!("team-{}", key - SIGMA_MEMBERS),
            Vendor::Grafana if key < GRAFANA_USERS => format!("u{key}"),
            Vendor::Grafana => format!("team-{}", key - GRAFANA_USERS),
            Vendor::Dremio if key < DREMIO_USERS => format!("u{key}"),
            Vendor::Dremio => format!("r{}", key - DREMIO_USERS),
            Vendor::Snowflake => {
                let (type_, name, _) = SNOWFLAKE_SECURABLES[key];
                format!("{type_} {name}")
            }
        }
    }

    /// The privileges a key may be declared with (vendors with privileges).
    pub fn privileges(self, key: usize) -> &'static [&'static str] {
        match self {
            Vendor::Snowflake => SNOWFLAKE_SECURABLES[key].2,
            Vendor::Dremio => &DREMIO_PRIVILEGES,
            Vendor::Sigma | Vendor::Grafana => &[],
        }
    }

    /// Whether a resource declares exactly one key (a SnowflakeGrant names one securable).
    pub fn one_key_per_resource(self) -> bool {
        self == Vendor::Snowflake
    }
}

/// The atoms of one declared permission.
pub fn perm_atoms(vendor: Vendor, perm: &Perm) -> BTreeSet<String> {
    match (perm, vendor.ladder()) {
        (Perm::Level(level), Some(ladder)) => {
            ladder[..=*level].iter().map(|l| l.to_string()).collect()
        }
        (Perm::Privileges { set, option }, _) => set
            .iter()
            .flat_map(|privilege| {
                let mut atoms = vec![privilege.to_string()];
                if *option {
                    atoms.push(format!("{privilege} WITH GRANT OPTION"));
                }
                atoms
            })
            .collect(),
        (Perm::Level(_), None) => BTreeSet::new(),
    }
}

/// The atoms a spec declares.
pub fn spec_atoms(vendor: Vendor, spec: &Spec) -> Atoms {
    let mut atoms = Atoms::new();
    for (key, perm) in spec {
        atoms
            .entry(vendor.key_label(*key))
            .or_default()
            .extend(perm_atoms(vendor, perm));
    }
    atoms
}

/// The union of `more` into `atoms`.
pub fn unite(atoms: &mut Atoms, more: &Atoms) {
    for (key, set) in more {
        atoms
            .entry(key.clone())
            .or_default()
            .extend(set.iter().cloned());
    }
}

/// The atoms of a live level or privilege (`SELECT WITH GRANT OPTION` holds `SELECT` too).
pub fn live_atoms(vendor: Vendor, held: &str) -> BTreeSet<String> {
    if let Some(ladder) = vendor.ladder() {
        return match ladder.iter().position(|level| *level == held) {
            Some(top) => ladder[..=top].iter().map(|l| l.to_string()).collect(),
            None => BTreeSet::from([held.to_string()]),
        };
    }
    match held.strip_suffix(" WITH GRANT OPTION") {
        Some(privilege) => BTreeSet::from([privilege.to_string(), held.to_string()]),
        None => BTreeSet::from([held.to_string()]),
    }
}

/// The highest level among `atoms` (vendors with levels).
pub fn top(vendor: Vendor, atoms: Option<&BTreeSet<String>>) -> Option<usize> {
    let ladder = vendor.ladder()?;
    let atoms = atoms?;
    ladder.iter().rposition(|level| atoms.contains(*level))
}

/// A one-line rendering of atoms: `m0=usage,annotate u1=Query`.
pub fn show(atoms: &Atoms) -> String {
    if atoms.is_empty() {
        return "(none)".into();
    }
    atoms
        .iter()
        .map(|(key, set)| {
            format!(
                "{key}={}",
                set.iter().cloned().collect::<Vec<_>>().join(",")
            )
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// A one-line rendering of a spec.
pub fn show_spec(vendor: Vendor, spec: &Spec) -> String {
    spec.iter()
        .map(|(key, perm)| {
            let perm = match (perm, vendor.ladder()) {
                (Perm::Level(level), Some(ladder)) => ladder[*level].to_string(),
                (Perm::Privileges { set, option }, _) => format!(
                    "[{}]{}",
                    set.iter().cloned().collect::<Vec<_>>().join(","),
                    if *option { "+grant option" } else { "" }
                ),
                (Perm::Level(level), None) => level.to_string(),
            };
            format!("{}:{perm}", vendor.key_label(*key))
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// A level permission.
pub fn level(level: usize) -> Perm {
    Perm::Level(level)
}

/// A privileges permission.
pub fn privileges(set: &[&'static str], option: bool) -> Perm {
    Perm::Privileges {
        set: set.iter().copied().collect(),
        option,
    }
}

/// How often resources of the crash tests resync.
pub const SYNC_INTERVAL: &str = "2s";

/// The resource `name` of `vendor` declaring `spec`, as JSON to store.
pub fn resource(vendor: Vendor, name: &str, spec: &Spec) -> serde_json::Value {
    let json = |value: serde_json::Result<serde_json::Value>| value.expect("resource serializes");
    match vendor {
        Vendor::Sigma => {
            let entries: Vec<SigmaGrantEntry> = spec
                .iter()
                .map(|(key, perm)| {
                    let permission = match perm {
                        Perm::Level(0) => SigmaPermission::Usage,
                        _ => SigmaPermission::Annotate,
                    };
                    if *key < SIGMA_MEMBERS {
                        member(&format!("m{key}@example.com"), permission)
                    } else {
                        team(&format!("team-{}", key - SIGMA_MEMBERS), permission)
                    }
                })
                .collect();
            let mut grant: SigmaGrant = sigma_grant(name, entries);
            grant.spec.policy.sync_interval = Some(SYNC_INTERVAL.into());
            json(serde_json::to_value(&grant))
        }
        Vendor::Grafana => {
            let entries: Vec<GrafanaPermissionEntry> = spec
                .iter()
                .map(|(key, perm)| {
                    let permission = match perm {
                        Perm::Level(0) => GrafanaPermission::Query,
                        Perm::Level(1) => GrafanaPermission::Edit,
                        _ => GrafanaPermission::Admin,
                    };
                    if *key < GRAFANA_USERS {
                        user_login(&format!("u{key}"), permission)
                    } else {
                        team_name(&format!("team-{}", key - GRAFANA_USERS), permission)
                    }
                })
                .collect();
            let mut grant: GrafanaGrant = grafana_grant(name, entries);
            grant.spec.policy.sync_interval = Some(SYNC_INTERVAL.into());
            json(serde_json::to_value(&grant))
        }
        Vendor::Dremio => {
            let entries = spec
                .iter()
                .map(|(key, perm)| {
                    let set: Vec<&str> = match perm {
                        Perm::Privileges { set, .. } => set.iter().copied().collect(),
                        Perm::Level(_) => Vec::new(),
                    };
                    if *key < DREMIO_USERS {
                        dremio_user(&format!("u{key}"), &set)
                    } else {
                        dremio_role(&format!("r{}", key - DREMIO_USERS), &set)
                    }
                })
                .collect();
            let mut grant: DremioGrant = dremio_grant(name, entries);
            grant.spec.policy.sync_interval = Some(SYNC_INTERVAL.into());
            json(serde_json::to_value(&grant))
        }
        Vendor::Snowflake => {
            let (key, perm) = spec
                .iter()
                .next()
                .expect("a SnowflakeGrant declares one securable");
            let (type_, securable, _) = SNOWFLAKE_SECURABLES[*key];
            let (set, option): (Vec<&str>, bool) = match perm {
                Perm::Privileges { set, option } => (set.iter().copied().collect(), *option),
                Perm::Level(_) => (Vec::new(), false),
            };
            let mut grant: SnowflakeGrant = snowflake_grant(
                name,
                (SnowflakeGranteeType::Role, SNOWFLAKE_ROLE),
                target_securable(type_, securable),
                &set,
                option,
            );
            grant.spec.policy.sync_interval = Some(SYNC_INTERVAL.into());
            json(serde_json::to_value(&grant))
        }
    }
}
