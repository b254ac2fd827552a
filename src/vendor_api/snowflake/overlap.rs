//! Keys that reach the same objects, pure.
//!
//! Snowflake keeps one privilege per object: `ALL TABLES IN SCHEMA S` is not a
//! grant of its own but the same per-table grants that `TABLE S.T1` names one
//! by one. So a revoke at one key can take what another key keeps: a revoke on
//! all objects of a scope strips every object in it, and a revoke on one
//! object strips what an `ALL` key covering it holds there. This module says
//! which objects a key reaches, what other keys keep on each, and how a
//! removal is cut down so nothing kept is ever revoked. (`FUTURE` keys hold the
//! scope's future grant, not existing objects: they keep nothing here.)
//!
//! [`WriteMemory`] is what the client remembers of its own writes that no
//! listing shows: what it applied at an `ALL` key whose scope holds no object,
//! and what it revoked at a key but left in place because another key keeps it.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use crate::plan::Key;

use super::identifiers::Name;
use super::model::{BulkKind, ScopeType, Securable, SnowflakePrivilege, plural};

/// Privileges as the planner closes them.
pub type Privileges = BTreeSet<SnowflakePrivilege>;

/// An object of a scope: its singular type (`TABLE`) and name.
pub type Object = (String, Name);

/// Whether the `ALL` securable `all` reaches the object `type_ name`.
pub fn covers(all: &Securable, type_: &str, name: &Name) -> bool {
    let Securable::Bulk {
        kind: BulkKind::All,
        plural: all_plural,
        scope,
        scope_name,
    } = all
    else {
        return false;
    };
    let depth = match scope {
        ScopeType::Database => 1,
        ScopeType::Schema => 2,
    };
    let parts = name.parts();
    *all_plural == plural(type_)
        && scope_name.parts().len() == depth
        && parts.len() > depth
        && parts[..depth] == scope_name.parts()[..]
}

/// Whether `other` can keep something on an object `all` reaches: a named
/// object in its scope, or an `ALL` key of the same type whose scope overlaps.
fn overlaps(all: &Securable, other: &Securable) -> bool {
    match (all, other) {
        (_, Securable::Named { type_, name }) => covers(all, type_, name),
        (
            Securable::Bulk {
                kind: BulkKind::All,
                plural: a,
                scope_name: a_scope,
                ..
            },
            Securable::Bulk {
                kind: BulkKind::All,
                plural: b,
                scope_name: b_scope,
                ..
            },
        ) => {
            let (a_parts, b_parts) = (a_scope.parts(), b_scope.parts());
            let shorter = a_parts.len().min(b_parts.len());
            a == b && a_parts[..shorter] == b_parts[..shorter]
        }
        _ => false,
    }
}

/// What one key keeps, read back from the plan (keys that are not
/// securables are left out).
#[derive(Debug, Default)]
pub struct Kept<'a> {
    keys: Vec<(Securable, &'a Privileges)>,
}

impl<'a> Kept<'a> {
    /// The plan's kept sets.
    pub fn new(kept: &'a BTreeMap<Key, Privileges>) -> Kept<'a> {
        Kept {
            keys: kept
                .iter()
                .filter_map(|(key, set)| Some((Securable::from_key(key)?, set)))
                .collect(),
        }
    }

    /// Whether any key other than `all` itself may keep something on an object
    /// of `all`'s scope (when none does, one bulk revoke is safe without
    /// listing the objects).
    pub fn touches(&self, all: &Securable) -> bool {
        self.keys
            .iter()
            .any(|(securable, _)| securable != all && overlaps(all, securable))
    }

    /// What other keys keep on the object `type_ name`: its own key, and every
    /// `ALL` key covering it. `except` is the key being written.
    pub fn on(&self, type_: &str, name: &Name, except: &Securable) -> Privileges {
        let mut out = Privileges::new();
        for (securable, set) in &self.keys {
            if securable == except {
                continue;
            }
            let reaches = match securable {
                Securable::Named {
                    type_: kept_type,
                    name: kept_name,
                } => kept_type == type_ && kept_name == name,
                all => covers(all, type_, name),
            };
            if reaches {
                out.extend(set.iter().cloned());
            }
        }
        out
    }
}

/// Privileges to take away at one securable: entirely, or only their grant option.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Removal {
    /// Privileges revoked entirely (with their grant option).
    pub full: Vec<String>,
    /// Privileges whose grant option alone is revoked.
    pub option_only: Vec<String>,
    /// Those of `full` held with the grant option.
    pub had_option: Vec<String>,
}

impl Removal {
    /// Whether nothing is taken.
    pub fn is_empty(&self) -> bool {
        self.full.is_empty() && self.option_only.is_empty()
    }

    /// What is left of this removal on an object where `kept` is kept: a
    /// privilege kept with its grant option is not touched; one kept without
    /// it loses only the grant option (if the removal takes one).
    pub fn sparing(&self, kept: &Privileges) -> Removal {
        let holds = |name: &str, grant_option| {
            kept.contains(&SnowflakePrivilege {
                name: name.to_string(),
                grant_option,
            })
        };
        let mut out = Removal::default();
        for name in &self.full {
            if holds(name, true) {
                continue;
            }
            if holds(name, false) {
                if self.had_option.contains(name) {
                    out.option_only.push(name.clone());
                }
            } else {
                out.full.push(name.clone());
                if self.had_option.contains(name) {
                    out.had_option.push(name.clone());
                }
            }
        }
        for name in &self.option_only {
            if !holds(name, true) {
                out.option_only.push(name.clone());
            }
        }
        out.option_only.sort();
        out.option_only.dedup();
        out
    }
}

impl Removal {
    /// What of this removal stays in place where only `taken` of it is taken
    /// (closed, as the planner writes privileges).
    pub fn spared_by(&self, taken: &Removal) -> Privileges {
        let mut out = Privileges::new();
        let privilege = |name: &String, grant_option| SnowflakePrivilege {
            name: name.clone(),
            grant_option,
        };
        for name in &self.full {
            if taken.full.contains(name) {
                continue;
            }
            out.insert(privilege(name, false));
            if self.had_option.contains(name) && !taken.option_only.contains(name) {
                out.insert(privilege(name, true));
            }
        }
        for name in &self.option_only {
            if !taken.option_only.contains(name) {
                out.insert(privilege(name, true));
            }
        }
        out
    }
}

/// How a removal at an `ALL` key is carried out.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AllRevocation {
    /// One bulk revoke on the scope: no object keeps anything it takes.
    Bulk,
    /// Object by object, each with what it may lose (objects that lose nothing
    /// are left out).
    PerObject {
        /// The objects and what each loses.
        objects: Vec<(Object, Removal)>,
        /// What stays on some object for another key.
        spared: Privileges,
    },
}

/// How `removal` at the `ALL` key `all` spares what other keys keep on `objects`.
pub fn revoke_all(
    all: &Securable,
    removal: &Removal,
    objects: &[Object],
    kept: &Kept<'_>,
) -> AllRevocation {
    let mut per_object = Vec::new();
    let mut spared = Privileges::new();
    for (type_, name) in objects {
        let left = removal.sparing(&kept.on(type_, name, all));
        spared.extend(removal.spared_by(&left));
        if !left.is_empty() {
            per_object.push(((type_.clone(), name.clone()), left));
        }
    }
    if spared.is_empty() {
        AllRevocation::Bulk
    } else {
        AllRevocation::PerObject {
            objects: per_object,
            spared,
        }
    }
}

/// One key's memory.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct Remembered {
    /// `ALL` keys: the privileges last applied, the live ones when the scope
    /// holds no object (a bulk grant on nothing shows nowhere).
    applied: Privileges,
    /// Privileges revoked at the key but left on objects another key keeps:
    /// not live at this key, although its objects still hold them.
    spared: Privileges,
}

/// What the client remembers of its own writes that no listing shows, by
/// grantee and key. In memory only: after a restart the first sync grants an
/// empty scope's `ALL` key once more and revokes a spared key once more, both
/// of which change nothing. Entries go when their key is revoked without
/// sparing, and when a read of their grantee no longer knows their key, so the
/// memory never outgrows the keys the grantees' resources name.
#[derive(Debug, Default)]
pub struct WriteMemory {
    entries: HashMap<(String, Key), Remembered>,
}

impl WriteMemory {
    /// Records a successful write at `key` of `grantee` (an `ALL` key when
    /// `all`): `target` is what the key holds now, `spared` what was revoked at
    /// it but left on objects other keys keep.
    pub fn wrote(
        &mut self,
        grantee: &str,
        key: &Key,
        all: bool,
        target: &Privileges,
        spared: &Privileges,
    ) {
        let id = (grantee.to_string(), key.clone());
        let mut entry = self.entries.remove(&id).unwrap_or_default();
        if all {
            entry.applied = target.clone();
        }
        entry.spared.extend(spared.iter().cloned());
        entry.spared = entry.spared.difference(target).cloned().collect();
        if entry != Remembered::default() {
            self.entries.insert(id, entry);
        }
    }

    /// What an `ALL` key of `grantee` holds when its scope has no object.
    pub fn vacuous(&self, grantee: &str, key: &Key) -> Privileges {
        self.entries
            .get(&(grantee.to_string(), key.clone()))
            .map(|entry| entry.applied.clone())
            .unwrap_or_default()
    }

    /// Privileges revoked at `key` but left on objects others keep.
    pub fn spared(&self, grantee: &str, key: &Key) -> Privileges {
        self.entries
            .get(&(grantee.to_string(), key.clone()))
            .map(|entry| entry.spared.clone())
            .unwrap_or_default()
    }

    /// Forgets the keys of `grantee` that a read no longer knows (no resource
    /// declares or holds them any more).
    pub fn forget_unknown(&mut self, grantee: &str, known: &[Key]) {
        let known: BTreeSet<&Key> = known.iter().collect();
        self.entries
            .retain(|(owner, key), _| owner != grantee || known.contains(key));
    }

    /// How many keys are remembered.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether nothing is remembered.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vendor_api::snowflake::identifiers::parse;

    fn key(text: &str) -> Securable {
        Securable::from_key(text).unwrap()
    }

    fn privileges(list: &[(&str, bool)]) -> Privileges {
        list.iter()
            .flat_map(|(name, option)| {
                crate::plan::Permission::closure(&SnowflakePrivilege::new(name, *option))
            })
            .collect()
    }

    fn object(type_: &str, name: &str) -> Object {
        (type_.to_string(), parse(name).unwrap())
    }

    #[test]
    fn all_keys_cover_the_objects_of_their_scope() {
        let in_schema = key("ALL TABLES IN SCHEMA S.P");
        let in_database = key("ALL TABLES IN DATABASE S");
        let schemas = key("ALL SCHEMAS IN DATABASE S");
        let t1 = parse("S.P.T1").unwrap();
        assert!(covers(&in_schema, "TABLE", &t1));
        assert!(covers(&in_database, "TABLE", &t1));
        assert!(!covers(&in_schema, "VIEW", &t1));
        assert!(!covers(&in_schema, "TABLE", &parse("S.Q.T1").unwrap()));
        assert!(!covers(&in_database, "TABLE", &parse("R.P.T1").unwrap()));
        assert!(covers(&schemas, "SCHEMA", &parse("S.P").unwrap()));
        assert!(!covers(&key("FUTURE TABLES IN SCHEMA S.P"), "TABLE", &t1));
        assert!(!covers(&key("TABLE S.P.T1"), "TABLE", &t1));
        assert!(covers(
            &key(r#"ALL TABLES IN SCHEMA S."My Schema""#),
            "TABLE",
            &parse(r#"s."My Schema".t"#).unwrap()
        ));
    }

    #[test]
    fn what_other_keys_keep_on_an_object() {
        let kept = BTreeMap::from([
            (
                "ALL TABLES IN SCHEMA S.P".to_string(),
                privileges(&[("SELECT", false)]),
            ),
            (
                "ALL TABLES IN DATABASE S".to_string(),
                privileges(&[("INSERT", true)]),
            ),
            ("TABLE S.P.T1".to_string(), privileges(&[("UPDATE", false)])),
            ("TABLE S.Q.T9".to_string(), privileges(&[("DELETE", false)])),
            (
                "FUTURE TABLES IN SCHEMA S.P".to_string(),
                privileges(&[("TRUNCATE", false)]),
            ),
            (
                "member:not-a-securable".to_string(),
                privileges(&[("USAGE", false)]),
            ),
        ]);
        let kept = Kept::new(&kept);
        let this = key("ALL TABLES IN SCHEMA S.P");
        assert_eq!(
            kept.on("TABLE", &parse("S.P.T1").unwrap(), &this),
            privileges(&[("INSERT", true), ("UPDATE", false)]),
            "the key being written does not count; FUTURE keeps nothing existing"
        );
        assert!(kept.touches(&this));
        assert!(kept.touches(&key("ALL TABLES IN SCHEMA S.Q")));
        assert!(!kept.touches(&key("ALL VIEWS IN SCHEMA S.P")));
        assert!(!kept.touches(&key("ALL TABLES IN DATABASE R")));
    }

    #[test]
    fn a_revoke_on_all_objects_spares_what_others_keep() {
        let all = key("ALL TABLES IN SCHEMA S.P");
        let objects = [
            object("TABLE", "S.P.T1"),
            object("TABLE", "S.P.T2"),
            object("TABLE", "S.P.T3"),
        ];
        let removal = Removal {
            full: vec!["SELECT".into()],
            ..Removal::default()
        };
        let nothing = BTreeMap::new();
        assert!(!Kept::new(&nothing).touches(&all));
        assert_eq!(
            revoke_all(&all, &removal, &objects, &Kept::new(&nothing)),
            AllRevocation::Bulk
        );
        let kept = BTreeMap::from([
            ("TABLE S.P.T1".to_string(), privileges(&[("SELECT", false)])),
            ("TABLE S.P.T2".to_string(), privileges(&[("INSERT", false)])),
        ]);
        assert_eq!(
            revoke_all(&all, &removal, &objects, &Kept::new(&kept)),
            AllRevocation::PerObject {
                objects: vec![
                    (objects[1].clone(), removal.clone()),
                    (objects[2].clone(), removal.clone()),
                ],
                spared: privileges(&[("SELECT", false)]),
            }
        );
        // A key keeping the privilege without the option loses only the option.
        let with_option = Removal {
            full: vec!["SELECT".into()],
            option_only: vec!["INSERT".into()],
            had_option: vec!["SELECT".into()],
        };
        let kept = BTreeMap::from([
            ("TABLE S.P.T1".to_string(), privileges(&[("SELECT", false)])),
            (
                "TABLE S.P.T2".to_string(),
                privileges(&[("INSERT", true), ("SELECT", true)]),
            ),
        ]);
        assert_eq!(
            revoke_all(&all, &with_option, &objects, &Kept::new(&kept)),
            AllRevocation::PerObject {
                objects: vec![
                    (
                        objects[0].clone(),
                        Removal {
                            option_only: vec!["INSERT".into(), "SELECT".into()],
                            ..Removal::default()
                        }
                    ),
                    (objects[2].clone(), with_option.clone()),
                ],
                // T1 keeps SELECT (not its option); T2 keeps both with the option.
                spared: [
                    SnowflakePrivilege::new("SELECT", false),
                    SnowflakePrivilege::new("SELECT", true),
                    SnowflakePrivilege::new("INSERT", true),
                ]
                .into(),
            }
        );
    }

    #[test]
    fn the_write_memory_shrinks() {
        let mut memory = WriteMemory::default();
        let (all, other) = (
            "ALL TABLES IN SCHEMA S.P".to_string(),
            "ALL VIEWS IN SCHEMA S.P".to_string(),
        );
        let select = privileges(&[("SELECT", false)]);
        let none = Privileges::new();
        // Applied on an empty scope: remembered as live.
        memory.wrote("ROLE:A", &all, true, &select, &none);
        memory.wrote("ROLE:A", &other, true, &select, &none);
        memory.wrote("ROLE:B", &all, true, &select, &none);
        assert_eq!(memory.vacuous("ROLE:A", &all), select);
        assert_eq!(memory.len(), 3);
        // Revoked without sparing: forgotten.
        memory.wrote("ROLE:A", &all, true, &none, &none);
        assert_eq!(memory.vacuous("ROLE:A", &all), none);
        assert_eq!(memory.len(), 2);
        // Revoked with objects spared: remembered as not live here ...
        memory.wrote("ROLE:B", &all, true, &none, &select);
        assert_eq!(memory.spared("ROLE:B", &all), select);
        assert_eq!(memory.len(), 2);
        // ... until granted again,
        memory.wrote("ROLE:B", &all, true, &select, &none);
        assert_eq!(memory.spared("ROLE:B", &all), none);
        // or until a read of the grantee no longer knows the key.
        memory.wrote("ROLE:B", &"TABLE S.P.T1".to_string(), false, &none, &select);
        assert_eq!(memory.len(), 3);
        memory.forget_unknown("ROLE:A", &[]);
        assert_eq!(memory.len(), 2, "ROLE:A's keys are no longer named");
        memory.forget_unknown("ROLE:B", std::slice::from_ref(&all));
        assert_eq!(memory.len(), 1);
        memory.forget_unknown("ROLE:B", &[]);
        assert!(memory.is_empty());
    }
}
