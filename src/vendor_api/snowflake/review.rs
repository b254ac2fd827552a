//! How a `SnowflakeGrant` reads in an access review (`grant-operator access`): the
//! names its declarations write and what a `--grantee` text names on it.

use crate::api::SnowflakeGrant;
use crate::cli::access::Reviewed;
use crate::vendor_api::Vendor;

impl Reviewed for SnowflakeGrant {
    const OBJECT_IS_GRANTEE: bool = true;

    fn declared_name(_grantee: &<Self::Vendor as Vendor>::Grantee) -> Option<String> {
        // The key is the securable's name already.
        None
    }

    fn grantee_candidates(_text: &str) -> Vec<<Self::Vendor as Vendor>::Grantee> {
        Vec::new()
    }

    fn grantee_object(text: &str) -> Option<String> {
        Self::key_form(text).then(|| text.to_string())
    }

    /// A Snowflake grantee's form (`ROLE:NAME`, `USER:NAME`, `DATABASE_ROLE:DB.NAME`).
    fn key_form(text: &str) -> bool {
        ["ROLE:", "USER:", "DATABASE_ROLE:"]
            .iter()
            .any(|prefix| text.starts_with(prefix) && text.len() > prefix.len())
    }
}
