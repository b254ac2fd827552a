//! The test-facing setup and inspection methods of [`GrafanaEmulator`]:
//! organisations and credentials, data sources, users, teams, seeded and
//! raw permission entries, and what the permission APIs hold.

use std::sync::MutexGuard;

use serde_json::Value;

use crate::sandbox::emulator::{capitalize, lock};

use super::{
    BasicPrincipal, DataSource, Entry, GrafanaEmulator, Grantee, Level, PermissionRecord, State,
    Team, TokenPrincipal, User, random_uid,
};

impl GrafanaEmulator {
    fn state(&self) -> MutexGuard<'_, State> {
        lock(&self.vendor().0)
    }

    // --- setup: organisations and credentials ------------------------------

    /// Adds an organisation (or renames an existing one). Org 1 "Main Org."
    /// exists from the start.
    pub fn add_org(&self, id: i64, name: &str) {
        assert!(id > 0, "add_org: org ids are positive, got {id}");
        self.state().orgs.insert(id, name.to_string());
    }

    /// Registers a service-account token bound to `org_id` (replacing the
    /// org of an existing token). Panics if the org does not exist.
    pub fn add_token(&self, org_id: i64, token: &str) {
        let mut st = self.state();
        assert!(
            st.orgs.contains_key(&org_id),
            "add_token: unknown org {org_id}"
        );
        st.tokens.insert(
            token.to_string(),
            TokenPrincipal {
                org: org_id,
                read_only: false,
                revoked: false,
            },
        );
    }

    /// Registers a basic-auth principal that belongs to `orgs` (the first is
    /// its default org). Panics if `orgs` is empty or names an unknown org.
    pub fn add_basic_user(&self, login: &str, password: &str, orgs: &[i64]) {
        let mut st = self.state();
        assert!(!orgs.is_empty(), "add_basic_user: {login} needs an org");
        for org in orgs {
            assert!(
                st.orgs.contains_key(org),
                "add_basic_user: unknown org {org}"
            );
        }
        st.basic.insert(
            login.to_string(),
            BasicPrincipal {
                password: password.to_string(),
                orgs: orgs.to_vec(),
                read_only: false,
                revoked: false,
            },
        );
    }

    /// From now on, every write of a permission route by this token or basic
    /// login is answered 403. Panics if neither is known.
    pub fn set_read_only(&self, token_or_login: &str) {
        let mut st = self.state();
        let mut found = false;
        if let Some(token) = st.tokens.get_mut(token_or_login) {
            token.read_only = true;
            found = true;
        }
        if let Some(user) = st.basic.get_mut(token_or_login) {
            user.read_only = true;
            found = true;
        }
        assert!(found, "set_read_only: unknown principal {token_or_login}");
    }

    /// From now on, this token or basic login is answered 401. Panics if
    /// neither is known.
    pub fn revoke_credentials(&self, token_or_login: &str) {
        let mut st = self.state();
        let mut found = false;
        if let Some(token) = st.tokens.get_mut(token_or_login) {
            token.revoked = true;
            found = true;
        }
        if let Some(user) = st.basic.get_mut(token_or_login) {
            user.revoked = true;
            found = true;
        }
        assert!(
            found,
            "revoke_credentials: unknown principal {token_or_login}"
        );
    }

    /// Switches each permission API on or off (both on at start). A switched-off
    /// API answers 404 `{"message":"Not found"}` on all its routes.
    pub fn set_apis(&self, legacy: bool, access_control: bool) {
        let mut st = self.state();
        st.legacy_api = legacy;
        st.access_control_api = access_control;
    }

    // --- setup: data sources, users, teams ---------------------------------

    /// Adds a Prometheus data source to `org`; returns its id. It starts with
    /// the inherited `Admin` built-in role entry and with the legacy API's
    /// permissions disabled. Panics on an unknown org, a uid already used in
    /// any org, or a name already used in the org.
    pub fn add_datasource(&self, org: i64, uid: &str, name: &str) -> i64 {
        let mut st = self.state();
        assert!(
            st.orgs.contains_key(&org),
            "add_datasource: unknown org {org}"
        );
        assert!(
            !st.datasources.iter().any(|d| d.uid == uid),
            "add_datasource: uid {uid} already used"
        );
        assert!(
            !st.datasources
                .iter()
                .any(|d| d.org == org && d.name == name),
            "add_datasource: name {name} already used in org {org}"
        );
        let id = st.new_id();
        let entry_id = st.new_id();
        let ts = st.timestamp_ms();
        st.datasources.push(DataSource {
            id,
            uid: uid.to_string(),
            org,
            name: name.to_string(),
            kind: "prometheus".to_string(),
            url: "http://prometheus.monitoring:9090".to_string(),
            permissions_enabled: false,
            entries: vec![Entry {
                id: entry_id,
                grantee: Grantee::BuiltIn("Admin".to_string()),
                level: Level::Admin,
                managed: false,
                inherited: true,
                created_ms: ts,
                updated_ms: ts,
            }],
            raw_access: Vec::new(),
            raw_legacy: Vec::new(),
            enable_calls: 0,
            disable_calls: 0,
        });
        id
    }

    /// Adds a user to `org`; returns its id. Calling again with the same login
    /// adds the same user (same id, first email kept) to another org. Its name
    /// is made from the email's local part (`jane.doe@x` -> `Jane Doe`).
    pub fn add_user(&self, org: i64, login: &str, email: &str) -> i64 {
        let mut st = self.state();
        assert!(st.orgs.contains_key(&org), "add_user: unknown org {org}");
        if let Some(user) = st.users.iter_mut().find(|u| u.login == login) {
            if !user.orgs.contains(&org) {
                user.orgs.push(org);
            }
            return user.id;
        }
        let id = st.new_id();
        let created_ms = st.timestamp_ms();
        let local = email.split('@').next().unwrap_or_default();
        let name = local
            .split(['.', '_', '-'])
            .filter(|part| !part.is_empty())
            .map(capitalize)
            .collect::<Vec<_>>()
            .join(" ");
        st.users.push(User {
            id,
            uid: random_uid(),
            login: login.to_string(),
            email: email.to_string(),
            name,
            orgs: vec![org],
            created_ms,
        });
        id
    }

    /// Adds a team to `org`; returns its id. Panics on an unknown org or a
    /// name already used (exactly) in the org.
    pub fn add_team(&self, org: i64, name: &str) -> i64 {
        let mut st = self.state();
        assert!(st.orgs.contains_key(&org), "add_team: unknown org {org}");
        assert!(
            !st.teams.iter().any(|t| t.org == org && t.name == name),
            "add_team: team {name} already exists in org {org}"
        );
        let id = st.new_id();
        st.teams.push(Team {
            id,
            uid: random_uid(),
            org,
            name: name.to_string(),
        });
        id
    }

    // --- setup: permissions ------------------------------------------------

    /// Inserts an entry directly; returns its id. Panics on an unknown data
    /// source, a grantee that cannot hold a permission there (user or team of
    /// another org, unknown role), or a second managed non-inherited entry for
    /// the grantee.
    pub fn seed_permission(
        &self,
        ds_uid: &str,
        grantee: Grantee,
        level: Level,
        managed: bool,
        inherited: bool,
    ) -> i64 {
        let mut st = self.state();
        let org = st
            .datasources
            .iter()
            .find(|d| d.uid == ds_uid)
            .map(|d| d.org)
            .unwrap_or_else(|| panic!("seed_permission: unknown data source {ds_uid}"));
        assert!(
            st.grantee_in_org(&grantee, org),
            "seed_permission: {grantee:?} cannot hold a permission in org {org}"
        );
        let id = st.new_id();
        let ts = st.timestamp_ms();
        let ds = st
            .datasource_mut(ds_uid)
            .unwrap_or_else(|| panic!("seed_permission: unknown data source {ds_uid}"));
        let entry = Entry {
            id,
            grantee,
            level,
            managed,
            inherited,
            created_ms: ts,
            updated_ms: ts,
        };
        assert!(
            !entry.own()
                || !ds
                    .entries
                    .iter()
                    .any(|e| e.own() && e.grantee == entry.grantee),
            "seed_permission: {:?} already has a managed entry on {ds_uid}",
            entry.grantee
        );
        ds.entries.push(entry);
        id
    }

    /// Changes the level of the grantee's managed (non-inherited) entry behind
    /// the operator's back. Panics if there is none.
    pub fn set_level_directly(&self, ds_uid: &str, grantee: &Grantee, level: Level) {
        let mut st = self.state();
        let ts = st.timestamp_ms();
        let entry = st
            .datasource_mut(ds_uid)
            .and_then(|d| {
                d.entries
                    .iter_mut()
                    .find(|e| e.own() && e.grantee == *grantee)
            })
            .unwrap_or_else(|| {
                panic!("set_level_directly: {grantee:?} has no managed entry on {ds_uid}")
            });
        entry.level = level;
        entry.updated_ms = ts;
    }

    /// Removes the grantee's managed (non-inherited) entry behind the
    /// operator's back. Panics if there is none.
    pub fn remove_directly(&self, ds_uid: &str, grantee: &Grantee) {
        let mut st = self.state();
        let ds = st
            .datasource_mut(ds_uid)
            .unwrap_or_else(|| panic!("remove_directly: unknown data source {ds_uid}"));
        let before = ds.entries.len();
        ds.entries.retain(|e| !(e.own() && e.grantee == *grantee));
        assert!(
            ds.entries.len() < before,
            "remove_directly: {grantee:?} has no managed entry on {ds_uid}"
        );
    }

    /// Turns the legacy API's permissions of a data source on or off. Panics
    /// on an unknown data source.
    pub fn set_permissions_enabled(&self, ds_uid: &str, enabled: bool) {
        self.state()
            .datasource_mut(ds_uid)
            .unwrap_or_else(|| panic!("set_permissions_enabled: unknown data source {ds_uid}"))
            .permissions_enabled = enabled;
    }

    /// Adds an entry that the data source's permission listing of one API
    /// (`legacy` or AccessControl) shows exactly as given, after its real
    /// entries (for instance one a client cannot read). It cannot be changed
    /// through the API. Panics on an unknown data source.
    pub fn inject_raw_entry(&self, ds_uid: &str, legacy: bool, entry: Value) {
        let mut st = self.state();
        let ds = st
            .datasource_mut(ds_uid)
            .unwrap_or_else(|| panic!("inject_raw_entry: unknown data source {ds_uid}"));
        if legacy {
            ds.raw_legacy.push(entry);
        } else {
            ds.raw_access.push(entry);
        }
    }

    /// Removes the entries added with [`Self::inject_raw_entry`].
    pub fn clear_raw_entries(&self, ds_uid: &str) {
        let mut st = self.state();
        if let Some(ds) = st.datasource_mut(ds_uid) {
            ds.raw_access.clear();
            ds.raw_legacy.clear();
        }
    }

    // --- inspection --------------------------------------------------------

    /// Every entry of a data source (inherited and unmanaged ones included),
    /// in creation order; empty if the data source is unknown.
    pub fn permissions(&self, ds_uid: &str) -> Vec<PermissionRecord> {
        self.state()
            .datasources
            .iter()
            .find(|d| d.uid == ds_uid)
            .map(|d| d.entries.iter().map(Entry::record).collect())
            .unwrap_or_default()
    }

    /// Whether the legacy API's permissions are enabled (false if unknown).
    pub fn permissions_enabled(&self, ds_uid: &str) -> bool {
        self.state()
            .datasources
            .iter()
            .any(|d| d.uid == ds_uid && d.permissions_enabled)
    }

    /// Successful `enable-permissions` calls on a data source.
    pub fn enable_calls(&self, ds_uid: &str) -> usize {
        self.state()
            .datasources
            .iter()
            .find(|d| d.uid == ds_uid)
            .map_or(0, |d| d.enable_calls)
    }

    /// Successful `disable-permissions` calls on a data source.
    pub fn disable_calls(&self, ds_uid: &str) -> usize {
        self.state()
            .datasources
            .iter()
            .find(|d| d.uid == ds_uid)
            .map_or(0, |d| d.disable_calls)
    }
}
