//! The test-facing setup and inspection methods of [`SnowflakeEmulator`]:
//! keys and tokens, objects, direct grants, `202` answers, pages, fillers.

use serde_json::Value;

use crate::sandbox::emulator::{Server, lock};

use super::auth::spki_der;
use super::ident::{ident, one};
use super::listings::held_row;
use super::{GranteeId, GranteeType, Held, Snowflake, State};

impl Server<Snowflake> {
    pub(super) fn state(&self) -> std::sync::MutexGuard<'_, State> {
        lock(&self.vendor().state)
    }

    /// Registers a public key (PEM) for key-pair JWTs of `ACCOUNT.USER`.
    pub fn add_key_user(&self, account: &str, user: &str, public_pem: &str) {
        self.state()
            .key_users
            .entry(format!(
                "{}.{}",
                account.to_ascii_uppercase(),
                user.to_ascii_uppercase()
            ))
            .or_default()
            .push(spki_der(public_pem));
    }

    pub fn add_oauth_token(&self, token: &str) {
        self.state().tokens.insert(token.into(), "OAUTH");
    }

    pub fn add_pat(&self, token: &str) {
        self.state()
            .tokens
            .insert(token.into(), "PROGRAMMATIC_ACCESS_TOKEN");
    }

    /// Moves the emulator's clock (JWT checks) by `seconds`.
    pub fn shift_clock(&self, seconds: i64) {
        self.state().clock_offset = seconds;
    }

    /// Adds a role (name as written in SQL).
    pub fn add_role(&self, name: &str) {
        let name = one(name).expect("role name");
        self.state().roles.insert(name);
    }

    pub fn add_database_role(&self, name: &str) {
        let parts = ident(name).expect("database role name");
        self.state().database_roles.insert(parts.join("."));
    }

    pub fn add_user(&self, name: &str) {
        let name = one(name).expect("user name");
        self.state().users.insert(name);
    }

    pub fn add_database(&self, name: &str) {
        let name = one(name).expect("database name");
        self.state().databases.entry(name).or_default();
    }

    pub fn add_warehouse(&self, name: &str) {
        let name = one(name).expect("warehouse name");
        self.state().warehouses.insert(name);
    }

    /// Adds a schema `DB.SCHEMA` (its database too), applying future grants on schemas.
    pub fn add_schema(&self, name: &str) {
        let parts = ident(name).expect("schema name");
        let [db, schema] = parts.as_slice() else {
            panic!("a schema is DB.SCHEMA")
        };
        let mut state = self.state();
        state.schema_entry(db, schema);
        state.apply_futures("SCHEMA", db, schema, &format!("{db}.{schema}"));
    }

    /// Adds a table `DB.SCHEMA.TABLE` (schema and database too), applying future grants.
    pub fn add_table(&self, name: &str) {
        self.add_in_schema(name, true);
    }

    /// Adds a view `DB.SCHEMA.VIEW`, applying future grants.
    pub fn add_view(&self, name: &str) {
        self.add_in_schema(name, false);
    }

    fn add_in_schema(&self, name: &str, table: bool) {
        let parts = ident(name).expect("object name");
        let [db, schema, object] = parts.as_slice() else {
            panic!("an object is DB.SCHEMA.NAME")
        };
        let mut state = self.state();
        let entry = state.schema_entry(db, schema);
        if table {
            entry.tables.insert(object.clone());
        } else {
            entry.views.insert(object.clone());
        }
        let type_ = if table { "TABLE" } else { "VIEW" };
        state.apply_futures(type_, db, schema, &parts.join("."));
    }

    /// Grants directly (another administrator).
    pub fn grant_direct(
        &self,
        grantee_type: &str,
        grantee: &str,
        type_: &str,
        name: &str,
        privilege: &str,
        option: bool,
    ) {
        let mut state = self.state();
        let grantee = grantee_id(grantee_type, grantee);
        let object = state.object(type_, name).expect("object exists");
        state
            .grant(&grantee, &object, &[privilege.to_string()], option)
            .expect("valid grant");
    }

    /// Revokes directly (another administrator).
    pub fn revoke_direct(
        &self,
        grantee_type: &str,
        grantee: &str,
        type_: &str,
        name: &str,
        privilege: &str,
    ) {
        let mut state = self.state();
        let grantee = grantee_id(grantee_type, grantee);
        let object = (type_.to_string(), ident(name).expect("name").join("."));
        state.revoke(&grantee, &object, &[privilege.to_string()], false);
    }

    /// Privileges a grantee holds, as `(SECURABLE_TYPE NAME, PRIVILEGE[ WITH GRANT OPTION])`, sorted.
    pub fn live(&self, grantee_type: &str, grantee: &str) -> Vec<Held> {
        let state = self.state();
        let grantee = grantee_id(grantee_type, grantee);
        let mut out: Vec<Held> = Vec::new();
        for ((type_, name), held) in state.grants.get(&grantee).into_iter().flatten() {
            for (privilege, option) in held {
                out.push(held_row(format!("{type_} {name}"), privilege, *option));
            }
        }
        out.sort();
        out
    }

    /// Future grants of a grantee, as `(FUTURE TYPES IN SCOPE NAME, PRIVILEGE[...])`, sorted.
    pub fn future_live(&self, grantee_type: &str, grantee: &str) -> Vec<Held> {
        let state = self.state();
        let grantee = grantee_id(grantee_type, grantee);
        let mut out = Vec::new();
        for ((type_, scope_type, scope), held) in state.futures.get(&grantee).into_iter().flatten()
        {
            for (privilege, option) in held {
                out.push(held_row(
                    format!("FUTURE {type_}S IN {scope_type} {scope}"),
                    privilege,
                    *option,
                ));
            }
        }
        out.sort();
        out
    }

    /// The next `times` answered requests answer `202`; each result needs `polls` polls.
    pub fn answer_async(&self, times: usize, polls: usize) {
        let mut state = self.state();
        state.async_left = times;
        state.async_polls = polls;
    }

    /// How many times results were polled.
    pub fn result_polls(&self) -> usize {
        self.state().result_polls
    }

    /// Listings answer `size` rows per page, the rest behind `Link: <...>; rel="next"`.
    pub fn set_page_size(&self, size: usize) {
        self.state().page_size = Some(size);
    }

    /// Pages after the first read through `Link` headers.
    pub fn page_reads(&self) -> usize {
        self.state().page_reads
    }

    /// Successful writes (grants and revokes) so far.
    pub fn writes(&self) -> usize {
        self.state().writes
    }

    /// Grants the grantee `USAGE` on `count` new warehouses (`FILLER_00000`,
    /// ...): more grants than a listing answers, when `count` exceeds showLimit.
    pub fn add_filler_grants(&self, grantee_type: &str, grantee: &str, count: usize) {
        let mut state = self.state();
        let grantee = grantee_id(grantee_type, grantee);
        for i in 0..count {
            let warehouse = format!("FILLER_{i:05}");
            state.warehouses.insert(warehouse.clone());
            state
                .grants
                .entry(grantee.clone())
                .or_default()
                .entry(("WAREHOUSE".into(), warehouse))
                .or_default()
                .insert("USAGE".into(), false);
        }
    }

    /// Gives the grantee `count` future grants (`SELECT` on future tables of
    /// databases `FILLER_00000`, ...).
    pub fn add_filler_futures(&self, grantee_type: &str, grantee: &str, count: usize) {
        let mut state = self.state();
        let grantee = grantee_id(grantee_type, grantee);
        for i in 0..count {
            state
                .futures
                .entry(grantee.clone())
                .or_default()
                .entry(("TABLE".into(), "DATABASE".into(), format!("FILLER_{i:05}")))
                .or_default()
                .insert("SELECT".into(), false);
        }
    }

    /// Adds `count` tables (`T00000`, ...) to the schema `DB.SCHEMA`.
    pub fn add_tables(&self, schema: &str, count: usize) {
        let parts = ident(schema).expect("schema name");
        let [db, schema] = parts.as_slice() else {
            panic!("a schema is DB.SCHEMA")
        };
        let mut state = self.state();
        let entry = state.schema_entry(db, schema);
        entry.tables.extend((0..count).map(|i| format!("T{i:05}")));
    }

    /// Appends `row`, as it is, to the grantee's grants listing (`future`:
    /// its future-grants listing).
    pub fn add_raw_row(&self, grantee_type: &str, grantee: &str, future: bool, row: Value) {
        let grantee = grantee_id(grantee_type, grantee);
        self.state()
            .raw_rows
            .entry((grantee, future))
            .or_default()
            .push(row);
    }

    /// The future-grants listing describes each grant by the `securable` it is
    /// on (`{database, schema, name: "<TABLE>"}`) instead of its `containing_scope`.
    pub fn list_futures_as_securables(&self) {
        self.state().futures_as_securable = true;
    }
}

/// The grantee a test names by its wire type and its name.
fn grantee_id(grantee_type: &str, grantee: &str) -> GranteeId {
    (
        GranteeType::from_wire(grantee_type).expect("grantee type"),
        ident(grantee).expect("grantee").join("."),
    )
}
