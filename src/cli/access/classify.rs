//! Comparison of declared and live grants of one object with the planner's
//! closure of levels and privilege sets, and the rows it makes.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use k8s_openapi::jiff::Timestamp;

use crate::api::DeletionPolicy;
use crate::plan::{self, Key, LiveGrant, Permission};
use crate::sync::PermOf;
use crate::vendor_api::{GrantKind, Live, OtherEntry, OtherKind, Vendor};

use super::grantees::Reviewed;
use super::report::{Named, Row, State};
use super::scope::{Job, resource_name};

/// Where a resource stands for the review.
pub(super) struct MemberInfo {
    pub(super) name: String,
    /// `expiresAt` in the future.
    pub(super) expires_at: Option<Timestamp>,
    /// Why it declares nothing any more (expired, being deleted), and when it expired.
    pub(super) ended: Option<(String, Option<Timestamp>)>,
}

pub(super) fn member_info<K: GrantKind>(member: &K, now: Timestamp) -> MemberInfo {
    let policy = member.policy();
    let expires_at = policy.expires_at.as_ref().map(|at| at.0);
    let deleting = member.meta().deletion_timestamp.is_some()
        && policy.deletion_policy == DeletionPolicy::Delete;
    let ended = match expires_at {
        Some(at) if at <= now => Some((format!("expired at {at}"), Some(at))),
        _ if deleting => Some(("is being deleted".to_string(), None)),
        _ => None,
    };
    MemberInfo {
        name: resource_name(member),
        expires_at: expires_at.filter(|at| *at > now),
        ended,
    }
}

/// The review's rows of one object read.
pub(super) fn compare<K: Reviewed>(
    job: &Job<K>,
    keys: &HashMap<<K::Vendor as Vendor>::Grantee, Option<Key>>,
    live: &Live<PermOf<K>>,
    now: Timestamp,
) -> Vec<Row> {
    let infos: Vec<MemberInfo> = job
        .members
        .iter()
        .map(|member| member_info(member.as_ref(), now))
        .collect();
    let mut declared = Vec::new();
    let mut ended = Vec::new();
    let mut declared_names: BTreeMap<Key, String> = BTreeMap::new();
    // Declared names that do not resolve: (name, permission) -> members.
    let mut unresolved: BTreeMap<(String, String), Vec<usize>> = BTreeMap::new();
    for (index, member) in job.members.iter().enumerate() {
        for (grantee, perm) in member.declarations() {
            match keys.get(&grantee).cloned().flatten() {
                Some(key) => {
                    if let Some(name) = K::declared_name(&grantee) {
                        declared_names.entry(key.clone()).or_insert(name);
                    }
                    if infos[index].ended.is_some() {
                        ended.push((key, perm, index));
                    } else {
                        declared.push((key, perm, index));
                    }
                }
                None if infos[index].ended.is_none() => {
                    let name =
                        K::declared_name(&grantee).unwrap_or_else(|| K::grantee_label(&grantee));
                    unresolved
                        .entry((name, perm.to_string()))
                        .or_default()
                        .push(index);
                }
                None => {}
            }
        }
    }

    let name_of = |key: &Key| -> Option<String> {
        declared_names
            .get(key)
            .or_else(|| live.names.get(key))
            .cloned()
    };
    let place = |key: &Key, name: Option<String>| -> (Named, Named) {
        if K::OBJECT_IS_GRANTEE {
            (
                Named {
                    id: Some(key.clone()),
                    name: None,
                },
                Named {
                    id: Some(job.target.id.clone()),
                    name: job.target.name.clone(),
                },
            )
        } else {
            (
                Named {
                    id: Some(job.target.id.clone()),
                    name: job.target.name.clone(),
                },
                Named {
                    id: Some(key.clone()),
                    name,
                },
            )
        }
    };
    let names_of = |members: &[usize]| -> Vec<String> {
        let mut names: Vec<String> = members.iter().map(|i| infos[*i].name.clone()).collect();
        names.sort();
        names.dedup();
        names
    };
    let wanted = |key: &Key| -> bool {
        job.filter
            .as_ref()
            .is_none_or(|(keys, _)| keys.contains(key))
    };

    let mut rows = Vec::new();
    for found in classify(&declared, &ended, &live.grants) {
        if !wanted(&found.key) {
            continue;
        }
        let (target, grantee) = place(&found.key, name_of(&found.key));
        let mut row = Row {
            vendor: K::VENDOR.as_str(),
            provider: job.provider.to_string(),
            target,
            grantee,
            permission: found.perm.to_string(),
            state: State::Drifted,
            resources: names_of(&found.declarers),
            expires_at: None,
            detail: String::new(),
        };
        match &found.kind {
            Found::Managed => {
                let ends: Vec<Option<Timestamp>> =
                    found.exact.iter().map(|i| infos[*i].expires_at).collect();
                if !ends.is_empty() && ends.iter().all(Option::is_some) {
                    let last = ends.into_iter().flatten().max();
                    row.state = State::Expiring;
                    row.expires_at = last.map(|at| at.to_string());
                    row.detail = "revoked when the last declaring resource expires".to_string();
                } else {
                    row.state = State::Managed;
                }
            }
            Found::Lower(declared) => {
                row.detail = format!("live at a lower level than declared ({})", joined(declared));
            }
            Found::Higher(declared) => {
                row.detail = format!(
                    "live at a higher level than declared ({})",
                    joined(declared)
                );
            }
            Found::NotLive => {
                row.detail = "declared, not live".to_string();
            }
            Found::Ended => {
                let whys: Vec<String> = found
                    .declarers
                    .iter()
                    .filter_map(|i| {
                        infos[*i]
                            .ended
                            .as_ref()
                            .map(|(why, _)| format!("{} {why}", infos[*i].name))
                    })
                    .collect();
                row.expires_at = found
                    .declarers
                    .iter()
                    .filter_map(|i| infos[*i].ended.as_ref().and_then(|(_, at)| *at))
                    .max()
                    .map(|at| at.to_string());
                row.detail = format!(
                    "still live, but no resource declares it any more: {}",
                    whys.join("; ")
                );
            }
            Found::Unmanaged => {
                row.state = State::Unmanaged;
            }
        }
        rows.push(row);
    }

    for ((name, permission), members) in unresolved {
        if let Some((_, texts)) = &job.filter
            && !texts.iter().any(|text| text.eq_ignore_ascii_case(&name))
        {
            continue;
        }
        rows.push(Row {
            vendor: K::VENDOR.as_str(),
            provider: job.provider.to_string(),
            target: Named {
                id: Some(job.target.id.clone()),
                name: job.target.name.clone(),
            },
            grantee: Named {
                id: None,
                name: Some(name.clone()),
            },
            permission,
            state: State::Drifted,
            resources: names_of(&members),
            expires_at: None,
            detail: format!("declared, but {name} is not found on {}", K::VENDOR),
        });
    }

    for other in &live.others {
        if !wanted(&other.key) {
            continue;
        }
        let name = other.name.clone().or_else(|| name_of(&other.key));
        let (target, grantee) = place(&other.key, name);
        rows.push(Row {
            vendor: K::VENDOR.as_str(),
            provider: job.provider.to_string(),
            target,
            grantee,
            permission: other.permission.clone(),
            state: other.kind.into(),
            resources: Vec::new(),
            expires_at: None,
            detail: other_detail(other),
        });
    }
    rows
}

pub(super) fn other_detail(other: &OtherEntry) -> String {
    let what = match other.kind {
        OtherKind::Inherited => "inherited; changed where it is set",
        OtherKind::Fixed => "not a grant the operator manages",
    };
    match &other.detail {
        Some(detail) => format!("{what} ({detail})"),
        None => what.to_string(),
    }
}

pub(super) fn joined<P: Permission>(perms: &[P]) -> String {
    perms
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// How a permission at a key compares.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Found<P> {
    /// Live at the declared level.
    Managed,
    /// Live below what is declared (the declared levels).
    Lower(Vec<P>),
    /// Live above what is declared (the declared levels it includes).
    Higher(Vec<P>),
    /// Declared, not live.
    NotLive,
    /// Live, declared only by resources that expired or are being deleted.
    Ended,
    /// Live, declared by nothing.
    Unmanaged,
}

/// One permission at one key, compared.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Compared<P> {
    key: Key,
    perm: P,
    kind: Found<P>,
    /// Members declaring a permission that includes it or that it includes.
    declarers: Vec<usize>,
    /// Members declaring it, or more (whose expiry ends it).
    exact: Vec<usize>,
}

/// Declared `(key, permission, member)` against live grants, key by key, with the
/// planner's closure: levels include lower levels, a privilege with the grant
/// option includes the privilege. One result per highest live permission at a
/// key, and per highest declared permission that nothing live covers or
/// approaches.
pub(super) fn classify<P: Permission>(
    declared: &[(Key, P, usize)],
    ended: &[(Key, P, usize)],
    live: &[LiveGrant<P>],
) -> Vec<Compared<P>> {
    let keys: BTreeSet<&Key> = declared
        .iter()
        .map(|(key, _, _)| key)
        .chain(live.iter().map(|grant| &grant.key))
        .collect();
    let related = |p: &P, q: &P| q.closure().contains(p) || p.closure().contains(q);
    let members = |entries: &[(Key, P, usize)], key: &Key, keep: &dyn Fn(&P) -> bool| {
        let found: BTreeSet<usize> = entries
            .iter()
            .filter(|(at, perm, _)| at == key && keep(perm))
            .map(|(_, _, member)| *member)
            .collect();
        found.into_iter().collect::<Vec<usize>>()
    };
    let mut out = Vec::new();
    for key in keys {
        let declared_closed = plan::close(
            declared
                .iter()
                .filter(|(at, _, _)| at == key)
                .map(|(_, perm, _)| perm),
        );
        let declared_top = plan::maximal(&declared_closed);
        let live_closed = plan::close(
            live.iter()
                .filter(|grant| &grant.key == key)
                .map(|grant| &grant.perm),
        );
        let live_top = plan::maximal(&live_closed);
        for p in &live_top {
            let declarers = members(declared, key, &|q| related(p, q));
            let exact = members(declared, key, &|q| q.closure().contains(p));
            let kind = if declared_closed.contains(p) {
                if declared_top.contains(p) {
                    Found::Managed
                } else {
                    Found::Lower(
                        declared_top
                            .iter()
                            .filter(|q| q.closure().contains(p))
                            .cloned()
                            .collect(),
                    )
                }
            } else {
                let below: BTreeSet<P> = p
                    .closure()
                    .into_iter()
                    .filter(|q| declared_closed.contains(q))
                    .collect();
                if !below.is_empty() {
                    Found::Higher(plan::maximal(&below))
                } else if !members(ended, key, &|q| related(p, q)).is_empty() {
                    out.push(Compared {
                        key: key.clone(),
                        perm: p.clone(),
                        kind: Found::Ended,
                        declarers: members(ended, key, &|q| related(p, q)),
                        exact: Vec::new(),
                    });
                    continue;
                } else {
                    Found::Unmanaged
                }
            };
            out.push(Compared {
                key: key.clone(),
                perm: p.clone(),
                kind,
                declarers,
                exact,
            });
        }
        for q in &declared_top {
            let approached =
                live_closed.contains(q) || live_top.iter().any(|p| q.closure().contains(p));
            if approached {
                continue;
            }
            out.push(Compared {
                key: key.clone(),
                perm: q.clone(),
                kind: Found::NotLive,
                declarers: members(declared, key, &|other| related(q, other)),
                exact: members(declared, key, &|other| other.closure().contains(q)),
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::SigmaPermission::{Annotate, Usage};
    use crate::vendor_api::snowflake::SnowflakePrivilege;

    fn live<P: Clone>(grants: &[(&str, P)]) -> Vec<LiveGrant<P>> {
        grants
            .iter()
            .map(|(key, perm)| LiveGrant {
                key: key.to_string(),
                perm: perm.clone(),
                vendor_id: None,
            })
            .collect()
    }

    fn declared<P: Clone>(entries: &[(&str, P, usize)]) -> Vec<(Key, P, usize)> {
        entries
            .iter()
            .map(|(key, perm, member)| (key.to_string(), perm.clone(), *member))
            .collect()
    }

    fn kinds<P: Clone>(compared: &[Compared<P>]) -> Vec<(String, P, Found<P>)> {
        compared
            .iter()
            .map(|c| (c.key.clone(), c.perm.clone(), c.kind.clone()))
            .collect()
    }

    #[test]
    fn levels_compare_with_the_planners_closure() {
        // annotate declared and live: managed, by both resources that it covers.
        let found = classify(
            &declared(&[("member:a", Annotate, 0), ("member:a", Usage, 1)]),
            &[],
            &live(&[("member:a", Annotate)]),
        );
        assert_eq!(
            kinds(&found),
            vec![("member:a".into(), Annotate, Found::Managed)]
        );
        assert_eq!(found[0].declarers, vec![0, 1]);
        assert_eq!(found[0].exact, vec![0], "only annotate's declarer ends it");

        // usage declared, annotate live: drifted, live at a higher level.
        let found = classify(
            &declared(&[("member:a", Usage, 0)]),
            &[],
            &live(&[("member:a", Annotate)]),
        );
        assert_eq!(
            kinds(&found),
            vec![("member:a".into(), Annotate, Found::Higher(vec![Usage]))]
        );

        // annotate declared, usage live: drifted, live at a lower level; no second row.
        let found = classify(
            &declared(&[("member:a", Annotate, 0)]),
            &[],
            &live(&[("member:a", Usage)]),
        );
        assert_eq!(
            kinds(&found),
            vec![("member:a".into(), Usage, Found::Lower(vec![Annotate]))]
        );

        // Declared, not live; live, not declared; live after its resource ended.
        let found = classify(
            &declared(&[("member:a", Usage, 0)]),
            &declared(&[("member:c", Annotate, 1)]),
            &live(&[("member:b", Usage), ("member:c", Annotate)]),
        );
        assert_eq!(
            kinds(&found),
            vec![
                ("member:a".into(), Usage, Found::NotLive),
                ("member:b".into(), Usage, Found::Unmanaged),
                ("member:c".into(), Annotate, Found::Ended),
            ]
        );
        assert_eq!(found[2].declarers, vec![1]);
    }

    #[test]
    fn privilege_sets_compare_privilege_by_privilege() {
        let p = |name: &str, option: bool| SnowflakePrivilege::new(name, option);
        let found = classify(
            &declared(&[
                ("SCHEMA S.P", p("USAGE", false), 0),
                ("SCHEMA S.P", p("MONITOR", false), 0),
                ("TABLE S.P.T", p("SELECT", true), 1),
            ]),
            &[],
            &live(&[
                ("SCHEMA S.P", p("USAGE", true)),
                ("SCHEMA S.P", p("CREATE TABLE", false)),
                ("TABLE S.P.T", p("SELECT", false)),
            ]),
        );
        assert_eq!(
            kinds(&found),
            vec![
                (
                    "SCHEMA S.P".into(),
                    p("CREATE TABLE", false),
                    Found::Unmanaged
                ),
                (
                    "SCHEMA S.P".into(),
                    p("USAGE", true),
                    Found::Higher(vec![p("USAGE", false)])
                ),
                ("SCHEMA S.P".into(), p("MONITOR", false), Found::NotLive),
                (
                    "TABLE S.P.T".into(),
                    p("SELECT", false),
                    Found::Lower(vec![p("SELECT", true)])
                ),
            ]
        );
    }
}
