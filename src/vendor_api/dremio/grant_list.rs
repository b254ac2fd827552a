//! One object's grant list: read into live grants, compared, and merged with
//! planned changes (only the planned privileges go or come, every other entry
//! stays exactly as it was, unavailable privileges are refused by name).

use std::collections::{BTreeMap, BTreeSet};

use crate::plan::{Key, LiveGrant};
use crate::vendor_api::{Live, OtherEntry, OtherKind, VendorError};

use super::client::{Entry, GranteeType, ListedEntry, ObjectGrants};
use super::{Change, Privilege, VENDOR};

/// The key's grantee.
pub(super) fn parse_key(key: &str) -> Option<(GranteeType, String)> {
    let (kind, id) = key.split_once(':')?;
    let kind = match kind {
        "user" => GranteeType::User,
        "role" => GranteeType::Role,
        _ => return None,
    };
    (!id.is_empty()).then(|| (kind, id.to_string()))
}

pub(super) fn as_entries(listed: &[ListedEntry]) -> Vec<Entry> {
    listed
        .iter()
        .map(|entry| Entry {
            privileges: entry.privileges.clone(),
            grantee_type: entry.grantee_type.clone(),
            id: entry.id.clone(),
        })
        .collect()
}

/// Whether two lists grant the same (order aside).
pub(super) fn same(written: &[Entry], listed: &[ListedEntry]) -> bool {
    let normal = |entries: &[Entry]| {
        let mut normal: Vec<(String, String, BTreeSet<String>)> = entries
            .iter()
            .map(|e| {
                (
                    e.grantee_type.clone(),
                    e.id.clone(),
                    e.privileges.iter().cloned().collect(),
                )
            })
            .collect();
        normal.sort();
        normal
    };
    normal(written) == normal(&as_entries(listed))
}

/// Merges `changes` into the current list: every other entry is kept exactly as
/// it was, a changed grantee loses only the privileges planned to go and gains
/// the ones planned to come that the object offers. Returns the list to write
/// and the privileges refused as unavailable, by key.
pub(super) fn merge(
    object: &str,
    current: &ObjectGrants,
    changes: &[Change],
) -> (Vec<Entry>, BTreeMap<Key, VendorError>) {
    let available: BTreeSet<&str> = current
        .available_privileges
        .iter()
        .map(String::as_str)
        .collect();
    let mut refused = BTreeMap::new();
    let mut entries = as_entries(&current.grants);
    for change in changes {
        let unavailable: Vec<&str> = change
            .added
            .iter()
            .map(String::as_str)
            .filter(|privilege| !available.contains(privilege))
            .collect();
        if !unavailable.is_empty() {
            let offered: Vec<&str> = available.iter().copied().collect();
            refused.insert(
                change.key.clone(),
                VendorError::Invalid {
                    vendor: VENDOR,
                    operation: "put_grants",
                    message: format!(
                        "{} not available on catalog object {object} (available: {})",
                        unavailable.join(", "),
                        if offered.is_empty() {
                            "none".to_string()
                        } else {
                            offered.join(", ")
                        }
                    ),
                },
            );
        }
        let wire = change.grantee_type.wire();
        let position = entries
            .iter()
            .position(|entry| entry.grantee_type == wire && entry.id == change.id);
        let mut privileges = position
            .map(|index| entries[index].privileges.clone())
            .unwrap_or_default();
        privileges.retain(|privilege| !change.removed.contains(privilege));
        for privilege in &change.added {
            if available.contains(privilege.as_str()) && !privileges.contains(privilege) {
                privileges.push(privilege.clone());
            }
        }
        match (position, privileges.is_empty()) {
            (Some(index), true) => {
                entries.remove(index);
            }
            (Some(index), false) => entries[index].privileges = privileges,
            (None, true) => {}
            (None, false) => entries.push(Entry {
                privileges,
                grantee_type: wire.to_string(),
                id: change.id.clone(),
            }),
        }
    }
    (entries, refused)
}

/// The live grants of a listing. An entry of a grantee type other than `USER`
/// and `ROLE` (only a review reads one: the client refuses it otherwise) is a
/// `fixed` entry: the operator grants to users and roles only, and cannot
/// sync an object while such an entry is listed.
pub(super) fn live_of(entries: Vec<ListedEntry>) -> Live<Privilege> {
    let mut live = Live::default();
    for entry in entries {
        let Some(kind) = GranteeType::from_wire(&entry.grantee_type) else {
            let key = format!("{}:{}", entry.grantee_type.to_ascii_lowercase(), entry.id);
            for privilege in entry.privileges {
                live.others.push(OtherEntry {
                    key: key.clone(),
                    name: entry.name.clone().filter(|name| !name.is_empty()),
                    permission: privilege,
                    kind: OtherKind::Fixed,
                    detail: Some(format!(
                        "granteeType {}: the operator grants to users and roles only, and cannot sync an object listing it",
                        entry.grantee_type
                    )),
                });
            }
            continue;
        };
        let key = format!("{}:{}", kind.prefix(), entry.id);
        if let Some(name) = entry.name.filter(|name| !name.is_empty()) {
            live.names.insert(key.clone(), name);
        }
        for privilege in entry.privileges {
            live.grants.push(LiveGrant {
                key: key.clone(),
                perm: Privilege(privilege),
                vendor_id: None,
            });
        }
    }
    live.unmanaged = live.others.len();
    live
}
