//! Reading what the vendors hold: each emulator's grants projected onto the
//! model's keys and atoms (with grants held twice noted), and what the world
//! expects them to hold.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use crate::model::*;
use crate::support::dremio::DremioEmulator;
use crate::support::grafana::GrafanaEmulator;
use crate::support::sigma::SigmaEmulator;
use crate::support::snowflake::SnowflakeEmulator;
use crate::support::{CONNECTION, DATASOURCE_UID, grafana, sigma};

use super::World;

/// What a vendor holds: atoms, and keys held by more than one grant.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Live {
    pub atoms: Atoms,
    pub duplicates: Vec<String>,
}

/// Vendor ids -> key labels.
pub(super) type Labels = Arc<HashMap<String, String>>;

pub(super) fn project_sigma(emulator: &SigmaEmulator, labels: &Labels) -> Live {
    let mut live = Live::default();
    let mut seen = BTreeSet::new();
    for grant in emulator.grants(CONNECTION) {
        let id = match &grant.grantee {
            sigma::Grantee::Member(id) | sigma::Grantee::Team(id) => id.clone(),
        };
        let key = labels.get(&id).cloned().unwrap_or(id);
        if !seen.insert(key.clone()) {
            live.duplicates.push(format!("{key} holds two grants"));
        }
        live.atoms
            .entry(key)
            .or_default()
            .extend(live_atoms(Vendor::Sigma, &grant.permission));
    }
    live
}

pub(super) fn project_grafana(emulator: &GrafanaEmulator, labels: &Labels) -> Live {
    let mut live = Live::default();
    let mut seen = BTreeSet::new();
    for entry in emulator.permissions(DATASOURCE_UID) {
        if !entry.managed || entry.inherited {
            continue;
        }
        let id = match &entry.grantee {
            grafana::Grantee::User(id) => format!("user:{id}"),
            grafana::Grantee::Team(id) => format!("team:{id}"),
            grafana::Grantee::BuiltIn(role) => format!("role:{role}"),
        };
        let key = labels.get(&id).cloned().unwrap_or(id);
        if !seen.insert(key.clone()) {
            live.duplicates.push(format!("{key} holds two entries"));
        }
        live.atoms
            .entry(key)
            .or_default()
            .extend(live_atoms(Vendor::Grafana, entry.permission.name()));
    }
    live
}

pub(super) fn project_dremio(emulator: &DremioEmulator, object: &str, labels: &Labels) -> Live {
    let mut live = Live::default();
    let mut seen = BTreeSet::new();
    for entry in emulator.grants(object) {
        let key = labels.get(&entry.id).cloned().unwrap_or(entry.id.clone());
        if !seen.insert(key.clone()) {
            live.duplicates.push(format!("{key} holds two entries"));
        }
        let atoms = live.atoms.entry(key.clone()).or_default();
        for privilege in &entry.privileges {
            if !atoms.insert(privilege.clone()) {
                live.duplicates
                    .push(format!("{key} holds {privilege} twice"));
            }
        }
    }
    live
}

pub(super) fn project_snowflake(emulator: &SnowflakeEmulator) -> Live {
    let mut live = Live::default();
    let mut seen = BTreeSet::new();
    for (securable, privilege) in emulator.live("ROLE", SNOWFLAKE_ROLE) {
        if !seen.insert((securable.clone(), privilege.clone())) {
            live.duplicates
                .push(format!("{securable} holds {privilege} twice"));
        }
        live.atoms
            .entry(securable)
            .or_default()
            .extend(live_atoms(Vendor::Snowflake, &privilege));
    }
    live
}

impl World {
    /// What `vendor` holds now.
    pub fn live(&self, vendor: Vendor) -> Live {
        let labels = self.labels.get(&vendor).cloned().unwrap_or_default();
        match vendor {
            Vendor::Sigma => self
                .sigma
                .as_ref()
                .map(|e| project_sigma(e, &labels))
                .unwrap_or_default(),
            Vendor::Grafana => self
                .grafana
                .as_ref()
                .map(|e| project_grafana(e, &labels))
                .unwrap_or_default(),
            Vendor::Dremio => self
                .dremio
                .as_ref()
                .map(|e| project_dremio(e, &self.dremio_object, &labels))
                .unwrap_or_default(),
            Vendor::Snowflake => self
                .snowflake
                .as_ref()
                .map(|e| project_snowflake(e))
                .unwrap_or_default(),
        }
    }

    /// The key label of a status row's grantee (`member:ID`, `user:ID`, a securable).
    pub fn row_label(&self, vendor: Vendor, grantee: &str) -> String {
        let labels = self.labels.get(&vendor);
        let lookup = |text: &str| labels.and_then(|labels| labels.get(text)).cloned();
        lookup(grantee)
            .or_else(|| grantee.split_once(':').and_then(|(_, id)| lookup(id)))
            .unwrap_or_else(|| grantee.to_string())
    }

    /// The union of the surviving declarations of `vendor`, plus the outsider's grant.
    pub fn expected(&self, vendor: Vendor) -> Atoms {
        let mut atoms = Atoms::new();
        for ((v, _), declared) in &self.resources {
            if *v == vendor && !declared.deleted {
                unite(&mut atoms, &spec_atoms(vendor, &declared.spec));
            }
        }
        let (key, held) = outsider(vendor);
        atoms
            .entry(key.to_string())
            .or_default()
            .extend(held.iter().map(|atom| atom.to_string()));
        atoms
    }
}
