//! What a grant kind's grantees and objects are in a review ([`Reviewed`]):
//! the names a declaration writes, what a `--grantee` text can name on each
//! vendor, and the look-up of those names with the vendor's own look-ups. Each
//! vendor folder's `review` module implements [`Reviewed`] for its grant kind.

use std::collections::BTreeSet;
use std::sync::Arc;

use crate::controller::Failure;
use crate::controller::clients::ProviderId;
use crate::plan::Key;
use crate::vendor_api::{GrantKind, Vendor};

use super::report::GranteeMatch;
use super::scope::Engine;

/// How a grant kind's grantees and objects read in a review.
pub trait Reviewed: GrantKind {
    /// Whether the vendor object is the grantee (Snowflake: a role's or a user's
    /// listing, keyed by securable).
    const OBJECT_IS_GRANTEE: bool = false;

    /// The name a declaration writes, when it names the grantee by name.
    fn declared_name(grantee: &<Self::Vendor as Vendor>::Grantee) -> Option<String>;

    /// The grantees a `--grantee` text can name on this vendor, resolved with the
    /// vendor's own look-ups (an email, a login, a team, a role; or a key such as
    /// `member:ID`, taken as an id).
    fn grantee_candidates(text: &str) -> Vec<<Self::Vendor as Vendor>::Grantee>;

    /// The object a `--grantee` text names, where the object is the grantee.
    fn grantee_object(_text: &str) -> Option<String> {
        None
    }

    /// Whether a `--grantee` text is in the form of this vendor's keys (taken as
    /// an id on this vendor, and never looked up by name on the others).
    fn key_form(text: &str) -> bool;
}

/// A text other vendors look up by name: not in the form of any vendor's key
/// (`member:ID`, `ROLE:NAME`, ...), which names an id on the vendor using it.
pub(crate) fn plain_name(text: &str) -> bool {
    macro_rules! any_key_form {
        ([$($module:ident $kind:ident $grant:ident $block:ident $title:literal),* $(,)?]) => {
            false $(|| <crate::api::$grant as Reviewed>::key_form(text))*
        };
    }
    !crate::vendors::vendors!(any_key_form)
}

/// Whether a member declares a grantee by one of `texts` (case-insensitive): a
/// name that may not resolve, still shown as declared.
pub(super) fn declares_a_name<K: Reviewed>(members: &[Arc<K>], texts: &[String]) -> bool {
    members.iter().any(|member| {
        member.declarations().iter().any(|(grantee, _)| {
            K::declared_name(grantee)
                .is_some_and(|name| texts.iter().any(|text| text.eq_ignore_ascii_case(&name)))
        })
    })
}

/// With `--grantee`: the keys the names resolve to on one vendor, and the names
/// themselves (a declared name that does not resolve is still shown).
pub(super) type GranteeFilter = (BTreeSet<Key>, Vec<String>);

impl Engine<'_> {
    /// Looks every `--grantee` up through one provider with the vendor's own
    /// look-ups, records where each was found, and returns the filter for the
    /// objects read through it.
    pub(super) async fn grantee_keys<K: Reviewed>(
        &mut self,
        vendor: &K::Vendor,
        provider: &ProviderId,
    ) -> Result<GranteeFilter, Failure> {
        let mut candidates = Vec::new();
        let mut owners = Vec::new();
        for (index, grantee) in self.grantees.iter().enumerate() {
            for candidate in K::grantee_candidates(&grantee.name) {
                candidates.push(candidate);
                owners.push(index);
            }
        }
        let keys = if candidates.is_empty() {
            Vec::new()
        } else {
            vendor.resolve(&candidates).await.map_err(|error| {
                Failure::new(
                    error.reason(),
                    format!("could not look up the grantees: {error}"),
                )
            })?
        };
        let mut found = BTreeSet::new();
        for (key, owner) in keys.into_iter().zip(owners) {
            let Some(key) = key else {
                continue;
            };
            let matched = GranteeMatch {
                vendor: K::VENDOR.as_str(),
                provider: provider.to_string(),
                id: key.clone(),
            };
            if let Some(grantee) = self.grantees.get_mut(owner)
                && !grantee.matches.contains(&matched)
            {
                grantee.matches.push(matched);
            }
            found.insert(key);
        }
        let texts = self.grantees.iter().map(|g| g.name.clone()).collect();
        Ok((found, texts))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{DremioGrant, GrafanaBuiltInRole, GrafanaGrant, SigmaGrant, SnowflakeGrant};
    use crate::vendor_api::grafana::GrafanaGrantee;
    use crate::vendor_api::sigma::SigmaGrantee;

    #[test]
    fn grantee_texts_become_each_vendors_candidates() {
        assert_eq!(
            SigmaGrant::grantee_candidates("jane@example.com"),
            vec![SigmaGrantee::MemberEmail("jane@example.com".into())]
        );
        assert_eq!(
            SigmaGrant::grantee_candidates("member:Q1"),
            vec![SigmaGrantee::MemberId("Q1".into())]
        );
        assert!(SigmaGrant::grantee_candidates("ROLE:ANALYST").is_empty());
        assert_eq!(
            GrafanaGrant::grantee_candidates("Admin"),
            vec![
                GrafanaGrantee::UserLogin("Admin".into()),
                GrafanaGrantee::TeamName("Admin".into()),
                GrafanaGrantee::Role(GrafanaBuiltInRole::Admin),
            ]
        );
        assert_eq!(
            GrafanaGrant::grantee_candidates("user:7"),
            vec![GrafanaGrantee::UserId(7)]
        );
        assert!(GrafanaGrant::grantee_candidates("member:Q1").is_empty());
        assert_eq!(
            DremioGrant::grantee_candidates("jeansmith").len(),
            2,
            "a user or a role"
        );
        assert_eq!(
            SnowflakeGrant::grantee_object("ROLE:ANALYST").as_deref(),
            Some("ROLE:ANALYST")
        );
        assert_eq!(SnowflakeGrant::grantee_object("jane@example.com"), None);
    }
}
