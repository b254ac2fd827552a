//! The test-facing setup and inspection methods of [`SigmaEmulator`]:
//! clients, members, teams, connections, seeded and raw grants, token
//! lifetimes and the page cap.

use std::sync::MutexGuard;

use serde_json::Value;

use crate::sandbox::emulator::{capitalize, lock, random_alnum, uuid_like};

use super::{GrantRecord, Grantee, Member, SigmaEmulator, State, StoredGrant, Team};

impl SigmaEmulator {
    fn state(&self) -> MutexGuard<'_, State> {
        lock(&self.vendor().0)
    }

    // --- setup -------------------------------------------------------------

    /// Registers valid API credentials (replacing the secret of an existing id).
    pub fn add_client(&self, client_id: &str, client_secret: &str) {
        self.state()
            .clients
            .insert(client_id.to_string(), client_secret.to_string());
    }

    /// Adds an organization member; returns its new memberId.
    pub fn add_member(&self, email: &str) -> String {
        let mut st = self.state();
        let id = random_alnum(29);
        let local = email.split('@').next().unwrap_or_default();
        let (first, last) = local.split_once('.').unwrap_or((local, ""));
        let created_ms = st.timestamp_ms();
        st.members.push(Member {
            id: id.clone(),
            email: email.to_string(),
            first_name: capitalize(first),
            last_name: capitalize(last),
            created_ms,
        });
        id
    }

    /// Adds a team; returns its new teamId.
    pub fn add_team(&self, name: &str) -> String {
        let mut st = self.state();
        let id = uuid_like();
        let created_ms = st.timestamp_ms();
        st.teams.push(Team {
            id: id.clone(),
            name: name.to_string(),
            created_ms,
        });
        id
    }

    /// Adds a connection without grants (no-op if it exists).
    pub fn add_connection(&self, connection_id: &str) {
        self.state()
            .connections
            .entry(connection_id.to_string())
            .or_default();
    }

    /// Adds an entry that the connection's grant listing shows exactly as given,
    /// after its grants (for instance one without a grantee, which a client
    /// cannot read). It cannot be revoked or changed through the API. Panics
    /// if the connection was not added (a test bug).
    pub fn inject_raw_grant(&self, connection_id: &str, entry: Value) {
        let mut st = self.state();
        assert!(
            st.connections.contains_key(connection_id),
            "inject_raw_grant: unknown connection {connection_id}"
        );
        st.raw_grants
            .entry(connection_id.to_string())
            .or_default()
            .push(entry);
    }

    /// Removes the entries added with [`Self::inject_raw_grant`].
    pub fn clear_raw_grants(&self, connection_id: &str) {
        self.state().raw_grants.remove(connection_id);
    }

    /// Inserts a grant directly with any permission string; returns its grantId.
    /// Panics if the connection was not added (a test bug).
    pub fn seed_grant(&self, connection_id: &str, grantee: Grantee, permission: &str) -> String {
        let mut st = self.state();
        let ts = st.timestamp_ms();
        let by = st.api_member_id.clone();
        let id = uuid_like();
        let grants = st
            .connections
            .get_mut(connection_id)
            .unwrap_or_else(|| panic!("seed_grant: unknown connection {connection_id}"));
        grants.push(StoredGrant {
            id: id.clone(),
            grantee,
            permission: permission.to_string(),
            created_by: by.clone(),
            updated_by: by,
            created_ms: ts,
            updated_ms: ts,
        });
        id
    }

    /// Removes a grant "behind the operator's back". Panics if it does not exist.
    pub fn delete_grant_directly(&self, connection_id: &str, grant_id: &str) {
        let mut st = self.state();
        let grants = st
            .connections
            .get_mut(connection_id)
            .unwrap_or_else(|| panic!("delete_grant_directly: unknown connection {connection_id}"));
        let before = grants.len();
        grants.retain(|g| g.id != grant_id);
        assert!(
            grants.len() < before,
            "delete_grant_directly: unknown grant {grant_id} on {connection_id}"
        );
    }

    /// Changes a grant's permission (any string) behind the operator's back.
    /// Panics if it does not exist.
    pub fn set_permission_directly(&self, connection_id: &str, grant_id: &str, permission: &str) {
        let mut st = self.state();
        let ts = st.timestamp_ms();
        let grant = st
            .connections
            .get_mut(connection_id)
            .and_then(|gs| gs.iter_mut().find(|g| g.id == grant_id))
            .unwrap_or_else(|| {
                panic!("set_permission_directly: unknown grant {grant_id} on {connection_id}")
            });
        grant.permission = permission.to_string();
        grant.updated_ms = ts;
    }

    /// `expires_in` (and lifetime) of tokens issued from now on. Default 3600.
    pub fn set_token_ttl(&self, secs: u64) {
        self.state().token_ttl = secs;
    }

    /// Every access token issued so far becomes invalid (401). Refresh tokens
    /// stay valid.
    pub fn expire_all_tokens(&self) {
        for token in self.state().access_tokens.values_mut() {
            token.revoked = true;
        }
    }

    /// Server-side cap on page size (default 1000; at least 1).
    pub fn set_page_size_cap(&self, n: usize) {
        self.state().page_size_cap = n.max(1);
    }

    // --- inspection --------------------------------------------------------

    /// Grants of a connection in creation order (empty if unknown).
    pub fn grants(&self, connection_id: &str) -> Vec<GrantRecord> {
        self.state()
            .connections
            .get(connection_id)
            .map(|gs| {
                gs.iter()
                    .map(|g| GrantRecord {
                        grant_id: g.id.clone(),
                        grantee: g.grantee.clone(),
                        permission: g.permission.clone(),
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Tokens issued so far: (by client_credentials, by refresh_token).
    pub fn tokens_issued(&self) -> (usize, usize) {
        let st = self.state();
        (st.issued_client_credentials, st.issued_refresh)
    }
}
