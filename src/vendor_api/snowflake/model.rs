//! Grantees, securables and privileges as the operator keys them, pure.
//!
//! - A grantee's unit key is `TYPE:NAME` with the normalised name
//!   (`ROLE:ANALYST`, `DATABASE_ROLE:SALES.READER`, `USER:"jane.doe"`).
//! - A securable's planner key is its normalised descriptor:
//!   `SCHEMA SALES.PUBLIC`, `TABLE SALES.PUBLIC.ORDERS`,
//!   `ALL TABLES IN SCHEMA SALES.PUBLIC`, `FUTURE TABLES IN DATABASE SALES`.
//! - A privilege is a keyword phrase with or without the grant option; the
//!   grant option includes the privilege itself.

use std::fmt;

use crate::plan::Permission;

use super::identifiers::{self, IdentifierError, Name};

/// The kind of grantee.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum GranteeType {
    /// Account role.
    Role,
    /// Database role (`DB.ROLE`).
    DatabaseRole,
    /// User.
    User,
}

impl GranteeType {
    /// `ROLE`, `DATABASE_ROLE`, `USER`.
    pub fn as_str(self) -> &'static str {
        match self {
            GranteeType::Role => "ROLE",
            GranteeType::DatabaseRole => "DATABASE_ROLE",
            GranteeType::User => "USER",
        }
    }
}

/// A grantee, normalised.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Grantee {
    /// Type.
    pub type_: GranteeType,
    /// Name (`DB.ROLE` for a database role).
    pub name: Name,
}

impl Grantee {
    /// A grantee from its declared type and name.
    pub fn parse(type_: GranteeType, name: &str) -> Result<Grantee, IdentifierError> {
        let name = identifiers::parse(name)?;
        let parts = name.parts().len();
        let fits = match type_ {
            GranteeType::DatabaseRole => parts == 2,
            GranteeType::Role | GranteeType::User => parts == 1,
        };
        if !fits {
            return Err(IdentifierError {
                text: name.sql(),
                problem: match type_ {
                    GranteeType::DatabaseRole => "a DATABASE_ROLE is named DATABASE.ROLE",
                    _ => "a ROLE or USER name has one part (quote it if it holds a dot)",
                },
            });
        }
        Ok(Grantee { type_, name })
    }

    /// The unit key (`ROLE:ANALYST`).
    pub fn key(&self) -> String {
        format!("{}:{}", self.type_.as_str(), self.name.sql())
    }

    /// Reads a unit key back.
    pub fn from_key(key: &str) -> Option<Grantee> {
        let (type_, name) = key.split_once(':')?;
        let type_ = match type_ {
            "ROLE" => GranteeType::Role,
            "DATABASE_ROLE" => GranteeType::DatabaseRole,
            "USER" => GranteeType::User,
            _ => return None,
        };
        Grantee::parse(type_, name).ok()
    }
}

impl fmt::Display for Grantee {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.type_.as_str(), self.name.sql())
    }
}

/// `ALL` or `FUTURE`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum BulkKind {
    /// Every existing securable of the type in the scope.
    All,
    /// Securables of the type created later in the scope.
    Future,
}

impl BulkKind {
    /// `ALL`, `FUTURE`.
    pub fn as_str(self) -> &'static str {
        match self {
            BulkKind::All => "ALL",
            BulkKind::Future => "FUTURE",
        }
    }
}

/// `DATABASE` or `SCHEMA`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ScopeType {
    /// A database.
    Database,
    /// A schema (`DB.SCHEMA`).
    Schema,
}

impl ScopeType {
    /// `DATABASE`, `SCHEMA`.
    pub fn as_str(self) -> &'static str {
        match self {
            ScopeType::Database => "DATABASE",
            ScopeType::Schema => "SCHEMA",
        }
    }
}

/// What privileges are on.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Securable {
    /// One named securable.
    Named {
        /// Type keyword (`SCHEMA`, `EXTERNAL TABLE`).
        type_: String,
        /// Name.
        name: Name,
    },
    /// All or future securables of a type in a scope.
    Bulk {
        /// All or future.
        kind: BulkKind,
        /// Plural type keyword (`TABLES`).
        plural: String,
        /// Scope type.
        scope: ScopeType,
        /// Scope name.
        scope_name: Name,
    },
}

/// Upper-cases a keyword phrase and collapses its spaces.
pub fn keyword(text: &str) -> String {
    text.split_whitespace()
        .map(str::to_ascii_uppercase)
        .collect::<Vec<_>>()
        .join(" ")
}

/// `TABLES` -> `TABLE`, `POLICIES` -> `POLICY`.
pub fn singular(plural: &str) -> String {
    if let Some(stem) = plural.strip_suffix("IES") {
        format!("{stem}Y")
    } else if let Some(stem) = plural.strip_suffix('S') {
        stem.to_string()
    } else {
        plural.to_string()
    }
}

/// `TABLE` -> `TABLES`, `POLICY` -> `POLICIES`.
pub fn plural(singular: &str) -> String {
    if singular.ends_with('S') {
        singular.to_string()
    } else if let Some(stem) = singular.strip_suffix('Y') {
        format!("{stem}IES")
    } else {
        format!("{singular}S")
    }
}

impl Securable {
    /// A named securable from its declared type and name.
    pub fn named(type_: &str, name: &str) -> Result<Securable, IdentifierError> {
        Ok(Securable::Named {
            type_: keyword(type_),
            name: identifiers::parse(name)?,
        })
    }

    /// A bulk securable from its declared parts.
    pub fn bulk(
        kind: BulkKind,
        plural: &str,
        scope: ScopeType,
        scope_name: &str,
    ) -> Result<Securable, IdentifierError> {
        let scope_name = identifiers::parse(scope_name)?;
        let expected = match scope {
            ScopeType::Database => 1,
            ScopeType::Schema => 2,
        };
        if scope_name.parts().len() != expected {
            return Err(IdentifierError {
                text: scope_name.sql(),
                problem: match scope {
                    ScopeType::Database => "a DATABASE scope has one part",
                    ScopeType::Schema => "a SCHEMA scope is named DATABASE.SCHEMA",
                },
            });
        }
        Ok(Securable::Bulk {
            kind,
            plural: keyword(plural),
            scope,
            scope_name,
        })
    }

    /// The planner key.
    pub fn key(&self) -> String {
        match self {
            Securable::Named { type_, name } => format!("{type_} {}", name.sql()),
            Securable::Bulk {
                kind,
                plural,
                scope,
                scope_name,
            } => format!(
                "{} {plural} IN {} {}",
                kind.as_str(),
                scope.as_str(),
                scope_name.sql()
            ),
        }
    }

    /// Reads a planner key back.
    pub fn from_key(key: &str) -> Option<Securable> {
        let tokens = split_outside_quotes(key);
        let (name, words) = tokens.split_last()?;
        if words.is_empty() {
            return None;
        }
        let bulk = match words[0].as_str() {
            "ALL" => Some(BulkKind::All),
            "FUTURE" => Some(BulkKind::Future),
            _ => None,
        };
        if let Some(kind) = bulk
            && words.len() >= 4
            && words[words.len() - 2] == "IN"
        {
            let scope = match words[words.len() - 1].as_str() {
                "DATABASE" => ScopeType::Database,
                "SCHEMA" => ScopeType::Schema,
                _ => return None,
            };
            let plural = words[1..words.len() - 2].join(" ");
            return Securable::bulk(kind, &plural, scope, name).ok();
        }
        Securable::named(&words.join(" "), name).ok()
    }
}

impl fmt::Display for Securable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.key())
    }
}

/// Splits on spaces outside double quotes.
fn split_outside_quotes(text: &str) -> Vec<String> {
    let mut tokens = Vec::new();
    let mut current = String::new();
    let mut quoted = false;
    for c in text.chars() {
        match c {
            '"' => {
                quoted = !quoted;
                current.push(c);
            }
            ' ' if !quoted => {
                if !current.is_empty() {
                    tokens.push(std::mem::take(&mut current));
                }
            }
            _ => current.push(c),
        }
    }
    if !current.is_empty() {
        tokens.push(current);
    }
    tokens
}

/// A Snowflake privilege, with or without the grant option.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SnowflakePrivilege {
    /// Upper-case keyword phrase (`USAGE`, `CREATE TABLE`).
    pub name: String,
    /// Whether the grantee may grant it on.
    pub grant_option: bool,
}

/// How a privilege with the grant option is written in status rows.
const WITH_GRANT_OPTION: &str = " WITH GRANT OPTION";

impl SnowflakePrivilege {
    /// A privilege from its declared text.
    pub fn new(name: &str, grant_option: bool) -> SnowflakePrivilege {
        SnowflakePrivilege {
            name: keyword(name),
            grant_option,
        }
    }
}

impl Permission for SnowflakePrivilege {
    fn closure(&self) -> Vec<Self> {
        if self.grant_option {
            vec![
                self.clone(),
                SnowflakePrivilege {
                    name: self.name.clone(),
                    grant_option: false,
                },
            ]
        } else {
            vec![self.clone()]
        }
    }
}

impl fmt::Display for SnowflakePrivilege {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name)?;
        if self.grant_option {
            f.write_str(WITH_GRANT_OPTION)?;
        }
        Ok(())
    }
}

impl std::str::FromStr for SnowflakePrivilege {
    type Err = ();
    fn from_str(text: &str) -> Result<Self, ()> {
        let (name, grant_option) = match text.strip_suffix(WITH_GRANT_OPTION) {
            Some(name) => (name, true),
            None => (text, false),
        };
        let valid = !name.is_empty()
            && name.split(' ').all(|word| {
                !word.is_empty()
                    && word
                        .chars()
                        .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
            });
        if valid {
            Ok(SnowflakePrivilege {
                name: name.to_string(),
                grant_option,
            })
        } else {
            Err(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grantee_keys_round_trip() {
        let role = Grantee::parse(GranteeType::Role, "analyst").unwrap();
        assert_eq!(role.key(), "ROLE:ANALYST");
        assert_eq!(Grantee::from_key("ROLE:ANALYST"), Some(role));
        let db_role = Grantee::parse(GranteeType::DatabaseRole, r#"sales."Reader""#).unwrap();
        assert_eq!(db_role.key(), r#"DATABASE_ROLE:SALES."Reader""#);
        assert_eq!(Grantee::from_key(&db_role.key()), Some(db_role));
        let user = Grantee::parse(GranteeType::User, r#""jane.doe""#).unwrap();
        assert_eq!(user.key(), r#"USER:"jane.doe""#);
        assert_eq!(Grantee::from_key(&user.key()), Some(user));
        assert!(Grantee::parse(GranteeType::DatabaseRole, "reader").is_err());
        assert!(Grantee::parse(GranteeType::Role, "a.b").is_err());
        assert_eq!(Grantee::from_key("TEAM:X"), None);
    }

    #[test]
    fn securable_keys_round_trip() {
        let cases = [
            (
                Securable::named("schema", "sales.public"),
                "SCHEMA SALES.PUBLIC",
            ),
            (
                Securable::named("External  table", r#"s.p."My T""#),
                r#"EXTERNAL TABLE S.P."My T""#,
            ),
            (
                Securable::bulk(BulkKind::All, "tables", ScopeType::Schema, "sales.public"),
                "ALL TABLES IN SCHEMA SALES.PUBLIC",
            ),
            (
                Securable::bulk(
                    BulkKind::Future,
                    "materialized views",
                    ScopeType::Database,
                    r#""My DB""#,
                ),
                r#"FUTURE MATERIALIZED VIEWS IN DATABASE "My DB""#,
            ),
        ];
        for (securable, key) in cases {
            let securable = securable.unwrap();
            assert_eq!(securable.key(), key);
            assert_eq!(Securable::from_key(key), Some(securable), "{key}");
        }
        assert_eq!(
            Securable::from_key(r#"TABLE "a b"."c d"."e f""#).map(|s| s.key()),
            Some(r#"TABLE "a b"."c d"."e f""#.to_string())
        );
        assert!(Securable::bulk(BulkKind::All, "TABLES", ScopeType::Schema, "sales").is_err());
        assert_eq!(Securable::from_key("SCHEMA"), None);
    }

    #[test]
    fn plurals() {
        for (one, many) in [
            ("TABLE", "TABLES"),
            ("POLICY", "POLICIES"),
            ("VIEW", "VIEWS"),
        ] {
            assert_eq!(plural(one), many);
            assert_eq!(singular(many), one);
        }
    }

    #[test]
    fn privileges_print_and_parse() {
        let plain = SnowflakePrivilege::new("create  table", false);
        assert_eq!(plain.to_string(), "CREATE TABLE");
        let option = SnowflakePrivilege::new("USAGE", true);
        assert_eq!(option.to_string(), "USAGE WITH GRANT OPTION");
        assert_eq!("USAGE WITH GRANT OPTION".parse(), Ok(option.clone()));
        assert_eq!("CREATE TABLE".parse(), Ok(plain));
        assert_eq!(
            option.closure(),
            vec![option.clone(), SnowflakePrivilege::new("USAGE", false)]
        );
        assert!("usage".parse::<SnowflakePrivilege>().is_err());
        assert!("".parse::<SnowflakePrivilege>().is_err());
    }
}
