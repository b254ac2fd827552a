//! How a `SigmaGrant` reads in an access review (`grant-operator access`): the
//! names its declarations write and what a `--grantee` text names on it.

use crate::api::SigmaGrant;
use crate::cli::access::{Reviewed, plain_name};

use super::SigmaGrantee;

impl Reviewed for SigmaGrant {
    fn declared_name(grantee: &SigmaGrantee) -> Option<String> {
        match grantee {
            SigmaGrantee::MemberEmail(email) => Some(email.clone()),
            SigmaGrantee::TeamName(name) => Some(name.clone()),
            SigmaGrantee::MemberId(_) | SigmaGrantee::TeamId(_) => None,
        }
    }

    fn grantee_candidates(text: &str) -> Vec<SigmaGrantee> {
        if let Some(id) = text.strip_prefix("member:").filter(|id| !id.is_empty()) {
            vec![SigmaGrantee::MemberId(id.to_string())]
        } else if let Some(id) = text.strip_prefix("team:").filter(|id| !id.is_empty()) {
            vec![SigmaGrantee::TeamId(id.to_string())]
        } else if !plain_name(text) {
            Vec::new()
        } else if text.contains('@') {
            vec![SigmaGrantee::MemberEmail(text.to_string())]
        } else {
            vec![SigmaGrantee::TeamName(text.to_string())]
        }
    }

    fn key_form(text: &str) -> bool {
        ["member:", "team:"]
            .iter()
            .any(|prefix| text.starts_with(prefix))
    }
}
