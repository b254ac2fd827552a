//! The writes: create, update, patch and delete as an API server carries them
//! out (finalizers, dry runs, JSON and merge patches), and direct puts.

use super::*;

impl State {
    /// The stored object at `key`, or `404 NotFound`.
    fn existing(&self, key: &Key) -> Result<Value, ApiError> {
        self.objects
            .get(key)
            .cloned()
            .ok_or_else(|| ApiError::not_found(&key.gvr, &key.name))
    }

    pub(in super::super) fn create(
        &mut self,
        gvr: &Gvr,
        namespace: Option<&str>,
        mut obj: Value,
        dry_run: bool,
        keep_status: bool,
    ) -> Result<Value, ApiError> {
        if !obj.is_object() {
            return Err(ApiError::bad_request("object must be a JSON object"));
        }
        let name = match meta_str(&obj, "name").filter(|n| !n.is_empty()) {
            Some(name) => name.to_string(),
            None => match meta_str(&obj, "generateName").filter(|n| !n.is_empty()) {
                Some(prefix) => {
                    let prefix = prefix.to_string();
                    loop {
                        const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
                        let mut r = self.random();
                        let mut candidate = prefix.clone();
                        for _ in 0..5 {
                            candidate.push(ALPHABET[(r % ALPHABET.len() as u64) as usize] as char);
                            r /= ALPHABET.len() as u64;
                        }
                        let key = Key {
                            gvr: gvr.clone(),
                            namespace: namespace.unwrap_or_default().to_string(),
                            name: candidate.clone(),
                        };
                        if !self.objects.contains_key(&key) {
                            break candidate;
                        }
                    }
                }
                None => {
                    return Err(ApiError::invalid(
                        "metadata.name or metadata.generateName is required",
                    ));
                }
            },
        };
        let key = Key {
            gvr: gvr.clone(),
            namespace: namespace.unwrap_or_default().to_string(),
            name: name.clone(),
        };
        if self.objects.contains_key(&key) {
            return Err(ApiError::new(
                409,
                "AlreadyExists",
                format!("{} \"{}\" already exists", gvr.resource_name(), name),
            ));
        }
        if !keep_status && self.has_status_sub(gvr) {
            obj.as_object_mut().expect("object").remove("status");
        }
        self.fill_type_meta(gvr, namespace.is_some(), &mut obj);
        let uid = self.new_uid();
        let rv = if dry_run { self.rv } else { self.next_rv() };
        let meta = meta_mut(&mut obj);
        meta.insert("name".into(), json!(name));
        match namespace {
            Some(ns) => meta.insert("namespace".into(), json!(ns)),
            None => meta.remove("namespace"),
        };
        meta.insert("uid".into(), json!(uid));
        meta.insert("resourceVersion".into(), json!(rv.to_string()));
        meta.insert("generation".into(), json!(1));
        meta.insert("creationTimestamp".into(), now_timestamp());
        meta.remove("deletionTimestamp");
        meta.remove("managedFields");
        normalize_meta(&mut obj);
        if !dry_run {
            self.objects.insert(key.clone(), obj.clone());
            self.record(&key, EventKind::Added, &obj, None);
        }
        Ok(obj)
    }

    /// Set `apiVersion` from the URL and `kind` from the body or the registry; a
    /// kind seen for the first time in a body is registered.
    fn fill_type_meta(&mut self, gvr: &Gvr, namespaced: bool, obj: &mut Value) {
        let map = obj.as_object_mut().expect("object");
        map.insert("apiVersion".into(), json!(gvr.api_version()));
        match map
            .get("kind")
            .and_then(Value::as_str)
            .filter(|k| !k.is_empty())
        {
            Some(kind) => {
                let kind = kind.to_string();
                self.kinds
                    .entry((gvr.group.clone(), gvr.plural.clone()))
                    .or_insert_with(|| KindInfo {
                        version: gvr.version.clone(),
                        kind,
                        namespaced,
                    });
            }
            None => {
                let kind = self.kind_of(gvr);
                obj["kind"] = json!(kind);
            }
        }
    }

    /// Update an existing object with a full candidate state (PUT, or the result
    /// of a patch). Applies status-subresource rules, optimistic concurrency,
    /// server-managed metadata, generation and finalizer-driven removal.
    pub(in super::super) fn update(
        &mut self,
        key: &Key,
        candidate: Value,
        status_only: bool,
        dry_run: bool,
    ) -> Result<Value, ApiError> {
        let old = self.existing(key)?;
        if !candidate.is_object() {
            return Err(ApiError::bad_request("object must be a JSON object"));
        }
        let old_rv = meta_str(&old, "resourceVersion")
            .unwrap_or_default()
            .to_string();
        if let Some(rv) = meta_str(&candidate, "resourceVersion").filter(|rv| !rv.is_empty())
            && rv != old_rv
        {
            return Err(ApiError::conflict(&key.gvr, &key.name));
        }
        if let Some(name) = meta_str(&candidate, "name")
            && name != key.name
        {
            return Err(ApiError::bad_request(format!(
                "the name of the object ({name}) does not match the name on the URL ({})",
                key.name
            )));
        }
        let mut new = if status_only {
            let mut n = old.clone();
            match candidate.get("status").filter(|s| !s.is_null()) {
                Some(status) => n["status"] = status.clone(),
                None => {
                    n.as_object_mut().expect("object").remove("status");
                }
            }
            n
        } else {
            let mut n = candidate;
            if self.has_status_sub(&key.gvr) {
                let map = n.as_object_mut().expect("object");
                match old.get("status") {
                    Some(status) => map.insert("status".into(), status.clone()),
                    None => map.remove("status"),
                };
            }
            n
        };
        // Type meta and server-managed metadata.
        for field in ["apiVersion", "kind"] {
            new[field] = old.get(field).cloned().unwrap_or(Value::Null);
        }
        let old_meta = old
            .get("metadata")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        let meta = meta_mut(&mut new);
        for field in [
            "name",
            "namespace",
            "uid",
            "creationTimestamp",
            "deletionTimestamp",
            "generation",
            "resourceVersion",
        ] {
            match old_meta.get(field) {
                Some(v) => meta.insert(field.into(), v.clone()),
                None => meta.remove(field),
            };
        }
        meta.remove("managedFields");
        normalize_meta(&mut new);
        if new == old {
            return Ok(old);
        }
        if spec_part(&new) != spec_part(&old) {
            let generation = old
                .pointer("/metadata/generation")
                .and_then(Value::as_i64)
                .unwrap_or(0);
            meta_mut(&mut new).insert("generation".into(), json!(generation + 1));
        }
        if dry_run {
            return Ok(new);
        }
        self.commit_change(key, new, old)
    }

    /// Store a changed object (bumping resourceVersion), or remove it when it is
    /// being deleted and has no finalizers left.
    fn commit_change(&mut self, key: &Key, mut new: Value, old: Value) -> Result<Value, ApiError> {
        let rv = self.next_rv();
        meta_mut(&mut new).insert("resourceVersion".into(), json!(rv.to_string()));
        if is_deleting(&new) && finalizers_empty(&new) {
            self.objects.remove(key);
            self.record(key, EventKind::Deleted, &new, Some(old));
        } else {
            self.objects.insert(key.clone(), new.clone());
            self.record(key, EventKind::Modified, &new, Some(old));
        }
        Ok(new)
    }

    pub(in super::super) fn patch(
        &mut self,
        target: &Target,
        key: &Key,
        content_type: &str,
        body: Value,
        dry_run: bool,
    ) -> Result<(u16, Value), ApiError> {
        let status_only = target.subresource.is_some();
        let mime = content_type.split(';').next().unwrap_or_default().trim();
        let existing = self.objects.get(key).cloned();
        match mime {
            "application/apply-patch+yaml" => {
                let Some(old) = existing else {
                    if status_only {
                        return Err(ApiError::not_found(&key.gvr, &key.name));
                    }
                    let mut body = body;
                    if body.is_object() {
                        meta_mut(&mut body).insert("name".into(), json!(key.name));
                    }
                    return self
                        .create(&key.gvr, target.namespace.as_deref(), body, dry_run, false)
                        .map(|o| (201, o));
                };
                let mut candidate = old.clone();
                if status_only {
                    if let Some(status) = body.get("status") {
                        candidate["status"] = status.clone();
                    }
                } else {
                    json_patch::merge(&mut candidate, &body);
                }
                self.update(key, candidate, status_only, dry_run)
                    .map(|o| (200, o))
            }
            "application/merge-patch+json" | "application/strategic-merge-patch+json" => {
                let mut candidate =
                    existing.ok_or_else(|| ApiError::not_found(&key.gvr, &key.name))?;
                json_patch::merge(&mut candidate, &body);
                self.update(key, candidate, status_only, dry_run)
                    .map(|o| (200, o))
            }
            "application/json-patch+json" => {
                let mut candidate =
                    existing.ok_or_else(|| ApiError::not_found(&key.gvr, &key.name))?;
                apply_json_patch(&mut candidate, body)?;
                self.update(key, candidate, status_only, dry_run)
                    .map(|o| (200, o))
            }
            other => Err(ApiError::new(
                415,
                "UnsupportedMediaType",
                format!(
                    "the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml (got {other:?})"
                ),
            )),
        }
    }

    pub(in super::super) fn delete(
        &mut self,
        key: &Key,
        options: &Value,
        dry_run: bool,
    ) -> Result<Value, ApiError> {
        let old = self.existing(key)?;
        if let Some(pre) = options.get("preconditions") {
            let check = |field: &str| {
                pre.get(field)
                    .and_then(Value::as_str)
                    .is_none_or(|want| meta_str(&old, field) == Some(want))
            };
            if !check("uid") || !check("resourceVersion") {
                return Err(ApiError::conflict(&key.gvr, &key.name));
            }
        }
        if finalizers_empty(&old) {
            if dry_run {
                return Ok(old);
            }
            let mut gone = old.clone();
            let rv = self.next_rv();
            meta_mut(&mut gone).insert("resourceVersion".into(), json!(rv.to_string()));
            self.objects.remove(key);
            self.record(key, EventKind::Deleted, &gone, Some(old));
            return Ok(gone);
        }
        if is_deleting(&old) {
            return Ok(old);
        }
        let mut new = old.clone();
        meta_mut(&mut new).insert("deletionTimestamp".into(), now_timestamp());
        if dry_run {
            return Ok(new);
        }
        self.commit_change(key, new, old)
    }

    /// Direct create-or-replace used by [`FakeKube::put`].
    pub(in super::super) fn put_direct(&mut self, key: &Key, mut obj: Value) -> Value {
        let Some(old) = self.objects.get(key).cloned() else {
            let namespace = (!key.namespace.is_empty()).then_some(key.namespace.as_str());
            let deletion = obj.pointer("/metadata/deletionTimestamp").cloned();
            meta_mut(&mut obj).insert("name".into(), json!(key.name));
            let mut created = self
                .create(&key.gvr, namespace, obj, false, true)
                .expect("create of a new object succeeds");
            if let Some(ts) = deletion.filter(|t| !t.is_null()) {
                let old = created.clone();
                meta_mut(&mut created).insert("deletionTimestamp".into(), ts);
                return self
                    .commit_change(key, created, old)
                    .expect("commit succeeds");
            }
            return created;
        };
        let meta = meta_mut(&mut obj);
        meta.insert("name".into(), json!(key.name));
        if key.namespace.is_empty() {
            meta.remove("namespace");
        } else {
            meta.insert("namespace".into(), json!(key.namespace));
        }
        for field in ["uid", "creationTimestamp", "generation", "resourceVersion"] {
            match old.pointer(&format!("/metadata/{field}")) {
                Some(v) => meta.insert(field.into(), v.clone()),
                None => meta.remove(field),
            };
        }
        normalize_meta(&mut obj);
        if obj == old {
            return old;
        }
        if spec_part(&obj) != spec_part(&old) {
            let generation = old
                .pointer("/metadata/generation")
                .and_then(Value::as_i64)
                .unwrap_or(0);
            meta_mut(&mut obj).insert("generation".into(), json!(generation + 1));
        }
        self.commit_change(key, obj, old).expect("commit succeeds")
    }
}
