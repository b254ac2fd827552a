//! Reading listing entries: every shape the definitions allow is read, and an
//! entry that cannot be read (or a listing that reached the show limit) fails
//! the whole listing with a [`ListingError`] that quotes it.

use reqwest::StatusCode;
use serde::Deserialize;

use crate::vendor_api::VendorError;
use crate::vendor_api::http::CallError;
use crate::vendor_api::snowflake::identifiers::{Name, Part, parse_listed, parse_listed_part};
use crate::vendor_api::snowflake::model::{ScopeType, singular};

use super::VENDOR;
use super::wire::{
    FutureGrantRow, GrantListing, LegacyGrantRow, ListedFuture, ListedGrant, RoleGrantRow, USAGE,
    UserGrantRow, WireObject, is_role_type, listed_name, listed_type,
};

/// Why a listing cannot be used.
#[derive(Debug)]
pub enum ListingError {
    /// The call failed.
    Call(CallError),
    /// As many rows as Snowflake answers at most and no link to more: it may be
    /// incomplete, so nothing may be decided from it (the message says whose).
    Capped(String),
    /// An entry this version cannot read: unknown is not absent, so nothing may
    /// be decided from the listing (the message quotes the entry).
    Unreadable(String),
}

impl From<CallError> for ListingError {
    fn from(error: CallError) -> ListingError {
        ListingError::Call(error)
    }
}

impl ListingError {
    /// The status code, when Snowflake answered with an error.
    pub fn status(&self) -> Option<StatusCode> {
        match self {
            ListingError::Call(error) => error.status(),
            _ => None,
        }
    }

    /// The error as the sync reports it: a capped listing is
    /// `VendorUnavailable` (retried; Snowflake answers no more), an unreadable
    /// entry an unexpected answer (`VendorUnavailable` too).
    pub fn into_vendor_error(
        self,
        operation: &'static str,
        not_found: impl FnOnce(String) -> VendorError,
    ) -> VendorError {
        match self {
            ListingError::Call(error) => error.into_vendor_error(VENDOR, operation, not_found),
            ListingError::Capped(message) => VendorError::Unavailable {
                vendor: VENDOR,
                operation,
                message,
            },
            ListingError::Unreadable(message) => VendorError::Protocol {
                vendor: VENDOR,
                operation,
                message,
            },
        }
    }
}

/// Whether `text` (upper-cased) is a keyword phrase: words of letters, digits
/// and `_`.
fn is_keyword_phrase(text: &str) -> bool {
    !text.is_empty()
        && text.split(' ').all(|word| {
            !word.is_empty()
                && word
                    .chars()
                    .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
        })
}

/// A row read as the type of its listing; what the type cannot hold is named.
pub(super) fn typed<T: for<'de> Deserialize<'de>>(row: &serde_json::Value) -> Result<T, String> {
    if !row.is_object() {
        return Err("not an object".into());
    }
    serde_json::from_value(row.clone()).map_err(|error| error.to_string())
}

/// The `privileges` of a listed entry, upper-cased (absent: none).
fn read_privileges(privileges: Option<&serde_json::Value>) -> Result<Vec<String>, String> {
    match privileges {
        None | Some(serde_json::Value::Null) => Ok(Vec::new()),
        Some(serde_json::Value::Array(items)) => items
            .iter()
            .map(|item| {
                let privilege = item
                    .as_str()
                    .map(crate::vendor_api::snowflake::model::keyword)
                    .filter(|privilege| is_keyword_phrase(privilege))
                    .ok_or_else(|| format!("privilege {item} is not a privilege"))?;
                Ok(privilege)
            })
            .collect(),
        Some(other) => Err(format!("privileges {other} is not a list")),
    }
}

/// The `grant_option` of a listed entry (absent: false).
pub(super) fn read_grant_option(option: Option<&serde_json::Value>) -> Result<bool, String> {
    match option {
        None | Some(serde_json::Value::Null) => Ok(false),
        Some(serde_json::Value::Bool(option)) => Ok(*option),
        Some(other) => Err(format!("grant_option {other} is not a boolean")),
    }
}

/// The `securable_type` of a listed entry, keyed as declared.
fn read_type(securable_type: Option<&serde_json::Value>) -> Result<String, String> {
    let text = securable_type
        .and_then(serde_json::Value::as_str)
        .ok_or("no securable_type")?;
    let type_ = listed_type(text);
    if is_keyword_phrase(&type_) {
        Ok(type_)
    } else {
        Err(format!("securable_type {text:?} is not a type"))
    }
}

/// The name of a listed `securable` object.
pub(super) fn securable_name(securable: &WireObject) -> Result<Name, String> {
    if securable.name.as_deref().is_none_or(str::is_empty) {
        return Err("securable has no name".into());
    }
    Ok(listed_name(securable))
}

/// One entry of a grants listing: `RoleGrants` names the securable as an
/// object (`securable`), `Legacy` as text (`securable_name`). A granted role
/// shows no privilege to a user: it is USAGE.
pub(super) fn read_grant(
    row: &serde_json::Value,
    listing: GrantListing,
) -> Result<ListedGrant, String> {
    let (securable_type, name, privileges, grant_option) = match listing {
        GrantListing::Role => {
            let row: RoleGrantRow = typed(row)?;
            let type_ = read_type(row.securable_type.as_ref())?;
            let securable = row.securable.as_ref().ok_or("no securable")?;
            let option = read_grant_option(row.grant_option.as_ref())?;
            (type_, securable_name(securable)?, row.privileges, option)
        }
        GrantListing::User => {
            let row: UserGrantRow = typed(row)?;
            let type_ = read_type(row.securable_type.as_ref())?;
            let securable = row.securable.as_ref().ok_or("no securable")?;
            (type_, securable_name(securable)?, row.privileges, false)
        }
        GrantListing::Legacy => {
            let row: LegacyGrantRow = typed(row)?;
            let type_ = read_type(row.securable_type.as_ref())?;
            let name = match row.securable_name.as_ref() {
                Some(serde_json::Value::String(name)) if !name.is_empty() => parse_listed(name),
                _ => return Err("no securable_name".into()),
            };
            let option = read_grant_option(row.grant_option.as_ref())?;
            (type_, name, row.privileges, option)
        }
    };
    let mut privileges = read_privileges(privileges.as_ref())?;
    if privileges.is_empty() {
        if is_role_type(&securable_type) {
            privileges.push(USAGE.to_string());
        } else {
            return Err("no privileges".into());
        }
    }
    Ok(ListedGrant {
        securable_type,
        name,
        privileges,
        grant_option,
    })
}

/// One entry of a future-grants listing. The definition's Grant describes the
/// scope either as `containing_scope`, or as the `securable` the grant is on:
/// its database and schema, with the name either the placeholder of the future
/// objects (`<TABLE>`, as `SHOW FUTURE GRANTS` prints `SALES.PUBLIC.<TABLE>`)
/// or the scope's own name.
pub(super) fn read_future(row: &serde_json::Value) -> Result<ListedFuture, String> {
    let row: FutureGrantRow = typed(row)?;
    let type_ = read_type(row.securable_type.as_ref())?;
    let parts: Vec<Part> = match (&row.containing_scope, &row.securable) {
        (Some(scope), _) => {
            let database = scope
                .database
                .as_deref()
                .ok_or("containing_scope has no database")?;
            std::iter::once(database)
                .chain(scope.schema.as_deref())
                .map(parse_listed_part)
                .collect()
        }
        (_, Some(securable)) => {
            let placeholder = securable
                .name
                .as_deref()
                .is_some_and(|name| name.starts_with('<') && name.ends_with('>'));
            [&securable.database, &securable.schema, &securable.name]
                .into_iter()
                .flatten()
                .filter(|part| !(placeholder && part.starts_with('<')))
                .map(|part| parse_listed_part(part))
                .collect()
        }
        _ => return Err("no containing_scope or securable".into()),
    };
    let (scope, scope_name) = match parts.as_slice() {
        [_] => (ScopeType::Database, Name(parts)),
        [_, _] => (ScopeType::Schema, Name(parts)),
        _ => return Err("the scope is not a database or a schema".into()),
    };
    let privileges = read_privileges(row.privileges.as_ref())?;
    if privileges.is_empty() {
        return Err("no privileges".into());
    }
    Ok(ListedFuture {
        plural: crate::vendor_api::snowflake::model::plural(&singular(&type_)),
        scope,
        scope_name,
        privileges,
        grant_option: read_grant_option(row.grant_option.as_ref())?,
    })
}
