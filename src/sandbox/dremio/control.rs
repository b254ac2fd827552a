//! The test-facing setup and inspection methods of [`DremioEmulator`]:
//! tokens, projects, catalog objects, users, roles, grants set directly and
//! interference after reads.

use std::sync::MutexGuard;

use serde_json::Value;

use crate::sandbox::emulator::{capitalize, lock, random_from, uuid_like};

use super::{DremioEmulator, GrantRecord, Interference, Object, Role, State, Token, User};

impl DremioEmulator {
    fn state(&self) -> MutexGuard<'_, State> {
        lock(&self.vendor().0)
    }

    // --- setup: credentials and projects -----------------------------------

    /// Registers a valid personal access token (again: valid and writable).
    pub fn add_token(&self, token: &str) {
        self.state().tokens.insert(
            token.to_string(),
            Token {
                read_only: false,
                revoked: false,
            },
        );
    }

    /// From now on, this token is answered 401. Panics if unknown.
    pub fn revoke_token(&self, token: &str) {
        self.with_token(token, |t| t.revoked = true);
    }

    /// From now on, a PUT of grants with this token is answered 403 (reads
    /// still work). Panics if unknown.
    pub fn set_read_only(&self, token: &str) {
        self.with_token(token, |t| t.read_only = true);
    }

    fn with_token(&self, token: &str, change: impl FnOnce(&mut Token)) {
        let mut st = self.state();
        let found = st
            .tokens
            .get_mut(token)
            .unwrap_or_else(|| panic!("unknown token {token}"));
        change(found);
    }

    /// Adds a Cloud project (its name is its id). No-op if it exists.
    pub fn add_project(&self, project_id: &str) {
        let mut st = self.state();
        if !st.projects.iter().any(|p| p == project_id) {
            st.projects.push(project_id.to_string());
        }
    }

    // --- setup: catalog, users, roles --------------------------------------

    /// Adds a catalog object at `path` (a `space` if it has one part, else a
    /// `dataset`) accepting `available_privileges`, without grants; returns
    /// its new id. Panics on an empty path or part, or a path already used.
    pub fn add_object(&self, path: &[&str], available_privileges: &[&str]) -> String {
        assert!(
            !path.is_empty() && path.iter().all(|p| !p.is_empty()),
            "add_object: invalid path {path:?}"
        );
        let mut st = self.state();
        assert!(
            !st.objects.iter().any(|o| o.path == path),
            "add_object: path {path:?} already used"
        );
        let id = uuid_like();
        st.objects.push(Object {
            id: id.clone(),
            path: path.iter().map(|p| p.to_string()).collect(),
            tag: random_from(b"abcdefghijklmnopqrstuvwxyz0123456789+/", 12),
            available: available_privileges.iter().map(|p| p.to_string()).collect(),
            grants: Vec::new(),
            raw_grants: Vec::new(),
            puts: 0,
            reads: 0,
        });
        id
    }

    /// Adds a user; returns its new id. Its first and last names come from
    /// the email's local part (`jean_smith@x` -> `Jean`, `Smith`). Panics on a
    /// name already used.
    pub fn add_user(&self, name: &str, email: &str) -> String {
        let mut st = self.state();
        assert!(
            !st.users.iter().any(|u| u.name == name),
            "add_user: user {name} already exists"
        );
        let local = email.split('@').next().unwrap_or_default();
        let mut parts = local
            .split(['.', '_', '-'])
            .filter(|p| !p.is_empty())
            .map(capitalize);
        let first_name = parts.next().unwrap_or_default();
        let last_name = parts.collect::<Vec<_>>().join(" ");
        let id = uuid_like();
        st.users.push(User {
            id: id.clone(),
            name: name.to_string(),
            first_name,
            last_name,
            email: email.to_string(),
        });
        id
    }

    /// Adds a role; returns its new id. Panics on a name already used.
    pub fn add_role(&self, name: &str) -> String {
        let mut st = self.state();
        assert!(
            !st.roles.iter().any(|r| r.name == name),
            "add_role: role {name} already exists"
        );
        let id = uuid_like();
        st.roles.push(Role {
            id: id.clone(),
            name: name.to_string(),
        });
        id
    }

    // --- grants behind the client's back -----------------------------------

    /// Adds an entry that the object's grants listing shows exactly as given,
    /// after its grants (for instance one of a grantee type a client does not
    /// know). A PUT replaces it like any entry. Panics on an unknown object.
    pub fn inject_raw_grant(&self, object_id: &str, entry: Value) {
        let mut st = self.state();
        st.object_mut(object_id)
            .unwrap_or_else(|| panic!("inject_raw_grant: unknown object {object_id}"))
            .raw_grants
            .push(entry);
    }

    /// Removes the entries added with [`Self::inject_raw_grant`].
    pub fn clear_raw_grants(&self, object_id: &str) {
        if let Some(object) = self.state().object_mut(object_id) {
            object.raw_grants.clear();
        }
    }

    /// Replaces the grants of an object, as another writer would. Panics on
    /// an unknown object or grants a PUT would refuse.
    pub fn set_grants_directly(&self, object_id: &str, grants: Vec<GrantRecord>) {
        let mut st = self.state();
        let object = st
            .object(object_id)
            .unwrap_or_else(|| panic!("set_grants_directly: unknown object {object_id}"));
        if let Err(message) = st.check_grants(object, &grants) {
            panic!("set_grants_directly: {message}");
        }
        if let Some(object) = st.object_mut(object_id) {
            object.grants = grants;
        }
    }

    /// After the `reads`-th GET of the object's grants from now on has been
    /// answered (at once if `reads` is 0), applies `change` as if another
    /// client had PUT between that read and the next write: the entry of the
    /// same grantee is replaced in place, or `change` is appended; a `change`
    /// without privileges removes the grantee's entry. Fires once. Panics on
    /// an unknown object or a change a PUT would refuse.
    pub fn interfere_after_reads(&self, object_id: &str, reads: usize, change: GrantRecord) {
        let mut st = self.state();
        let object = st
            .object(object_id)
            .unwrap_or_else(|| panic!("interfere_after_reads: unknown object {object_id}"));
        if !change.privileges.is_empty()
            && let Err(message) = st.check_grants(object, std::slice::from_ref(&change))
        {
            panic!("interfere_after_reads: {message}");
        }
        if reads == 0 {
            st.apply_change(object_id, change);
        } else {
            st.interferences.push(Interference {
                object_id: object_id.to_string(),
                remaining: reads,
                change,
            });
        }
    }

    // --- inspection --------------------------------------------------------

    /// The grants of an object in stored order (empty if unknown).
    pub fn grants(&self, object_id: &str) -> Vec<GrantRecord> {
        self.state()
            .object(object_id)
            .map(|o| o.grants.clone())
            .unwrap_or_default()
    }

    /// PUTs of an object's grants that were accepted (204).
    pub fn puts(&self, object_id: &str) -> usize {
        self.state().object(object_id).map_or(0, |o| o.puts)
    }

    /// GETs of an object's grants that were answered 200.
    pub fn grant_reads(&self, object_id: &str) -> usize {
        self.state().object(object_id).map_or(0, |o| o.reads)
    }
}
