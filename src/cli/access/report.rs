//! The review's result: rows, their states, what could not be read, where
//! each `--grantee` was found, the counts, and the exit code they give.

use serde::Serialize;

use crate::api::VendorKind;
use crate::vendor_api::OtherKind;

/// The exit code when a row has a state named with `--fail-on` (0: nothing to
/// report, 1: something could not be read, 2: `plan`'s "changes").
pub const EXIT_FAIL_ON: u8 = 3;

/// The state of a row.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum State {
    /// Live and declared, at the declared level.
    Managed,
    /// Managed, and every resource declaring it has `expiresAt`.
    Expiring,
    /// Live and declared by no resource.
    Unmanaged,
    /// Declared and not live, live at another level, or live after every resource
    /// declaring it expired or is being deleted.
    Drifted,
    /// Shown on the object, set elsewhere (see [`OtherKind::Inherited`]).
    Inherited,
    /// Shown on the object, of a kind the operator never changes (see [`OtherKind::Fixed`]).
    Fixed,
}

impl State {
    /// Every state, in report order.
    pub const ALL: [State; 6] = [
        State::Managed,
        State::Expiring,
        State::Unmanaged,
        State::Drifted,
        State::Inherited,
        State::Fixed,
    ];

    /// Lower-case name, as every output shows it.
    pub fn as_str(self) -> &'static str {
        match self {
            State::Managed => "managed",
            State::Expiring => "expiring",
            State::Unmanaged => "unmanaged",
            State::Drifted => "drifted",
            State::Inherited => "inherited",
            State::Fixed => "fixed",
        }
    }
}

impl From<OtherKind> for State {
    fn from(kind: OtherKind) -> State {
        match kind {
            OtherKind::Inherited => State::Inherited,
            OtherKind::Fixed => State::Fixed,
        }
    }
}

/// An id and the name people know it by, when known.
#[derive(Serialize, Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct Named {
    /// The vendor's id (`null` for a declared grantee that does not resolve).
    pub id: Option<String>,
    /// The name as declared, or as the vendor lists it.
    pub name: Option<String>,
}

impl Named {
    /// `name (id)`, or whichever is known.
    pub fn label(&self) -> String {
        match (&self.name, &self.id) {
            (Some(name), Some(id)) if name != id => format!("{name} ({id})"),
            (Some(name), _) => name.clone(),
            (None, Some(id)) => id.clone(),
            (None, None) => "-".to_string(),
        }
    }
}

/// One grant (or entry) of the review.
#[derive(Serialize, Debug, Clone, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Row {
    /// `sigma`, `grafana`, `dremio` or `snowflake`.
    pub vendor: &'static str,
    /// The provider the object was read through, as `Kind namespace/name`.
    pub provider: String,
    /// What is reached: a connection, data source, catalog object, or Snowflake securable.
    pub target: Named,
    /// Who reaches it: a member, team, user, role, or Snowflake grantee (`ROLE:NAME`).
    pub grantee: Named,
    /// The permission as the vendor spells it.
    pub permission: String,
    /// The state.
    pub state: State,
    /// The resources declaring it, as `namespace/name`.
    pub resources: Vec<String>,
    /// When the grant ends: the latest `expiresAt` of the resources declaring it
    /// (`expiring`), or when they expired (a `drifted` grant still live after).
    pub expires_at: Option<String>,
    /// Why the row has its state, for people.
    pub detail: String,
}

/// Something that could not be read.
#[derive(Serialize, Debug, Clone, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct ReadError {
    /// The vendor.
    pub vendor: &'static str,
    /// The provider, when one was involved.
    pub provider: Option<String>,
    /// The vendor object, as named or declared, when one was involved.
    pub target: Option<String>,
    /// The resources whose grants could therefore not be reviewed.
    pub resources: Vec<String>,
    /// The contract reason (`Unauthorized`, `TargetNotFound`, ...).
    pub reason: String,
    /// What happened (never a secret).
    pub message: String,
}

/// Where one `--grantee` was found.
#[derive(Serialize, Debug, Clone, PartialEq, Eq)]
pub struct GranteeMatches {
    /// The name as given.
    pub name: String,
    /// Each vendor grantee it names (none: found on no provider).
    pub matches: Vec<GranteeMatch>,
}

/// One vendor grantee a `--grantee` names.
#[derive(Serialize, Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct GranteeMatch {
    /// The vendor.
    pub vendor: &'static str,
    /// The provider it was looked up through.
    pub provider: String,
    /// The vendor's id (`member:...`, `user:7`, `ROLE:ANALYST`).
    pub id: String,
}

/// Counts of the review.
#[derive(Serialize, Debug, Clone, Default, PartialEq, Eq)]
pub struct Summary {
    /// Vendor objects read.
    pub objects: usize,
    /// Rows.
    pub rows: usize,
    /// Rows by state.
    pub managed: usize,
    /// Rows `expiring`.
    pub expiring: usize,
    /// Rows `unmanaged`.
    pub unmanaged: usize,
    /// Rows `drifted`.
    pub drifted: usize,
    /// Rows `inherited`.
    pub inherited: usize,
    /// Rows `fixed`.
    pub fixed: usize,
    /// Things that could not be read.
    pub errors: usize,
}

/// The review.
#[derive(Serialize, Debug, Clone, Default)]
pub struct Report {
    /// One row per live grant or entry, and per declared grant that is not live.
    pub rows: Vec<Row>,
    /// What could not be read, and why.
    pub errors: Vec<ReadError>,
    /// Remarks that change no result (a vendor that cannot list its objects, a
    /// named target absent from one of several providers).
    pub notes: Vec<String>,
    /// With `--grantee`: where each name was found.
    pub grantees: Vec<GranteeMatches>,
    /// Counts.
    pub summary: Summary,
}

impl Report {
    /// Rows in `state`.
    pub fn count(&self, state: State) -> usize {
        self.rows.iter().filter(|row| row.state == state).count()
    }

    /// 1 when something could not be read; otherwise [`EXIT_FAIL_ON`] when a
    /// row is in a state of `fail_on`; otherwise 0.
    pub fn exit_code(&self, fail_on: &[State]) -> u8 {
        if !self.errors.is_empty() {
            1
        } else if fail_on.iter().any(|state| self.count(*state) > 0) {
            EXIT_FAIL_ON
        } else {
            0
        }
    }

    pub(super) fn summarize(&mut self) {
        self.summary.rows = self.rows.len();
        self.summary.managed = self.count(State::Managed);
        self.summary.expiring = self.count(State::Expiring);
        self.summary.unmanaged = self.count(State::Unmanaged);
        self.summary.drifted = self.count(State::Drifted);
        self.summary.inherited = self.count(State::Inherited);
        self.summary.fixed = self.count(State::Fixed);
        self.summary.errors = self.errors.len();
    }
}

pub(super) fn vendor_order(vendor: &str) -> usize {
    VendorKind::ALL
        .iter()
        .position(|known| known.as_str() == vendor)
        .unwrap_or(usize::MAX)
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    /// A row with fields that need quoting in CSV.
    pub(in crate::cli::access) fn row(state: State) -> Row {
        Row {
            vendor: "sigma",
            provider: "GrantProvider a/p".into(),
            target: Named {
                id: Some("c".into()),
                name: Some("Finance, \"EU\"".into()),
            },
            grantee: Named {
                id: Some("member:1".into()),
                name: Some("jane@example.com".into()),
            },
            permission: "usage".into(),
            state,
            resources: vec!["a/x".into(), "a/y".into()],
            expires_at: None,
            detail: "line one\nline two".into(),
        }
    }

    #[test]
    fn exit_codes_follow_the_fail_on_states() {
        let mut report = Report {
            rows: vec![row(State::Managed), row(State::Unmanaged)],
            ..Report::default()
        };
        assert_eq!(report.exit_code(&[]), 0);
        assert_eq!(report.exit_code(&[State::Drifted]), 0);
        assert_eq!(report.exit_code(&[State::Drifted, State::Unmanaged]), 3);
        report.errors.push(ReadError {
            vendor: "sigma",
            provider: None,
            target: None,
            resources: Vec::new(),
            reason: "Unauthorized".into(),
            message: "no".into(),
        });
        assert_eq!(report.exit_code(&[State::Unmanaged]), 1);
    }
}
