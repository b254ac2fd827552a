//! Names beside ids: how a person reads a planner key.
//!
//! Keys are the vendors' ids (`member:Q176F1pT1NNVOWwYVwVnPF6SeE4M3`), which a
//! reviewer cannot read. Wherever a person reads a grantee (plan and apply
//! tables, the demo, status rows, Events, export), the name is shown beside the
//! id: as the manifest wrote it for declared grantees, or as the vendor lists it
//! for live grants nobody declares. Names are for people only: nothing is ever
//! planned, compared or keyed by them.

use std::collections::BTreeMap;

use crate::plan::Key;

/// Names of keys, for people (`member:Q176...` -> `jane@example.com`).
pub type Names = BTreeMap<Key, String>;

/// The bare name a declared label gives a key, when it says more than the key:
/// `member:jane@example.com` for `member:Q176...` gives `jane@example.com`; a
/// grantee declared by its id, or a label of another kind, gives nothing.
pub fn declared_name(label: &str, key: &str) -> Option<String> {
    if label == key {
        return None;
    }
    match (label.split_once(':'), key.split_once(':')) {
        (Some((label_kind, name)), Some((key_kind, id)))
            if label_kind == key_kind && name != id && !name.is_empty() =>
        {
            Some(name.to_string())
        }
        (None, _) if !label.is_empty() => Some(label.to_string()),
        _ => None,
    }
}

/// A key as a person reads it: `jane@example.com (member Q176...)`, or the key
/// itself when no name is known or the name is the id.
pub fn with_name(key: &str, name: Option<&str>) -> String {
    match name {
        Some(name) if !name.is_empty() && name != key => match key.split_once(':') {
            Some((kind, id)) if id != name => format!("{name} ({kind} {id})"),
            Some(_) => key.to_string(),
            None => format!("{name} ({key})"),
        },
        _ => key.to_string(),
    }
}

/// [`with_name`], looking the name up.
pub fn shown(key: &str, names: &Names) -> String {
    with_name(key, names.get(key).map(String::as_str))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_declared_name_is_the_label_without_its_kind() {
        assert_eq!(
            declared_name("member:jane@example.com", "member:Q176").as_deref(),
            Some("jane@example.com")
        );
        assert_eq!(
            declared_name("team:Analysts", "team:T1").as_deref(),
            Some("Analysts")
        );
    }

    #[test]
    fn an_id_says_nothing_more() {
        assert_eq!(declared_name("member:Q176", "member:Q176"), None);
        assert_eq!(declared_name("role:Viewer", "role:Viewer"), None);
        assert_eq!(declared_name("TABLE DB.S.T", "TABLE DB.S.T"), None);
        // Another kind: the label does not name this key.
        assert_eq!(declared_name("team:Analysts", "member:Q176"), None);
    }

    #[test]
    fn names_are_shown_beside_ids() {
        assert_eq!(
            with_name("member:Q176", Some("jane@example.com")),
            "jane@example.com (member Q176)"
        );
        assert_eq!(with_name("member:Q176", None), "member:Q176");
        assert_eq!(with_name("member:Q176", Some("Q176")), "member:Q176");
        assert_eq!(with_name("role:Viewer", Some("role:Viewer")), "role:Viewer");
        assert_eq!(with_name("42", Some("Sales")), "Sales (42)");
        let names = Names::from([("user:7".to_string(), "jane".to_string())]);
        assert_eq!(shown("user:7", &names), "jane (user 7)");
        assert_eq!(shown("user:8", &names), "user:8");
    }
}
