//! Driving the reconcilers: one reconcile, a resource settled, the watch caches
//! caught up, providers reconciled, the clock advanced.

use super::*;

impl Harness {
    /// Waits until all `resources` grants report Synced (calling `on_poll` on every
    /// look); returns how long it took.
    pub async fn wait_until_synced(
        &self,
        resources: usize,
        limit: Duration,
        mut on_poll: impl FnMut(),
    ) -> Duration {
        let started = tokio::time::Instant::now();
        loop {
            let synced = self
                .kube
                .list_json(GROUP, "sigmagrants")
                .iter()
                .filter(|grant| grant["status"]["conditions"][0]["reason"] == "Synced")
                .count();
            on_poll();
            if synced == resources {
                return started.elapsed();
            }
            assert!(
                started.elapsed() < limit,
                "only {synced} of {resources} synced"
            );
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }

    /// The SigmaGrant `name` of `namespace` as the reflector store holds it,
    /// once the store has caught up.
    pub async fn stored_grant(&self, namespace: &str, name: &str) -> Arc<Watched<SigmaGrant>> {
        self.caught_up().await;
        self.grants
            .store
            .get(&ObjectRef::new(name).within(namespace))
            .expect("grant in store")
    }

    /// Waits until every reflector store has seen the latest version of every object.
    pub async fn caught_up(&self) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            let stores = &self.context.stores;
            let done = matches(
                &self.grants.store,
                self.kube.list_json(GROUP, "sigmagrants"),
            ) && matches(
                &self.grafana_grants.store,
                self.kube.list_json(GROUP, "grafanagrants"),
            ) && matches(
                &self.dremio_grants.store,
                self.kube.list_json(GROUP, "dremiogrants"),
            ) && matches(
                &self.snowflake_grants.store,
                self.kube.list_json(GROUP, "snowflakegrants"),
            ) && matches(
                &stores.providers,
                self.kube.list_json(GROUP, "grantproviders"),
            ) && matches(
                &stores.cluster_providers,
                self.kube.list_json(GROUP, "clustergrantproviders"),
            ) && matches(&stores.secrets, self.kube.list_json("", "secrets"))
                && matches(&stores.namespaces, self.kube.list_json("", "namespaces"));
            if done {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "stores did not catch up with the API"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// One reconcile, as the controller runs it (with `error_policy` on failure).
    pub async fn reconcile(&self, name: &str) -> Result<Action, Error> {
        self.reconcile_of::<SigmaGrant>(name).await
    }

    /// One reconcile of a grant of kind `K`.
    ///
    /// A reconcile that queues a sync of its target is run again once the sync
    /// tasks are done (the controller would be woken), so this returns the result
    /// of the reconcile that read the sync's answer.
    pub async fn reconcile_of<K: TestKind>(&self, name: &str) -> Result<Action, Error> {
        let cx = K::context(self);
        for _ in 0..20 {
            self.caught_up().await;
            let Some(object) = cx.store.get(&ObjectRef::new(name).within(NS)) else {
                return Ok(Action::await_change());
            };
            let result = grant::reconcile(object.clone(), cx.clone()).await;
            if let Err(Error::Queued) = result {
                cx.syncs.idle().await;
                continue;
            }
            if let Err(error) = &result {
                grant::error_policy(object, error, cx.clone());
            }
            return result;
        }
        panic!("{name} stayed queued for a sync of its target");
    }

    /// Reconciles until a reconcile writes nothing more; returns the last result.
    pub async fn settle(&self, name: &str) -> Result<Action, Error> {
        self.settle_of::<SigmaGrant>(name).await
    }

    /// Puts `object` and reconciles it until it settles, which must succeed.
    pub async fn put_settled<K: TestKind>(&self, object: &K) {
        self.put(object);
        let name = object.meta().name.clone().unwrap_or_default();
        self.settle_of::<K>(&name)
            .await
            .unwrap_or_else(|error| panic!("{name} does not settle: {error}"));
    }

    /// [`Harness::settle`] for a grant of kind `K`.
    pub async fn settle_of<K: TestKind>(&self, name: &str) -> Result<Action, Error> {
        let mut result = Ok(Action::await_change());
        for _ in 0..10 {
            let before = self.version(K::PLURAL, name);
            result = self.reconcile_of::<K>(name).await;
            self.caught_up().await;
            if self.version(K::PLURAL, name) == before {
                return result;
            }
        }
        result
    }

    /// The resourceVersion of a grant, read raw (it may not be readable as its kind).
    fn version(&self, plural: &str, name: &str) -> Option<String> {
        self.kube
            .list_json(GROUP, plural)
            .into_iter()
            .find(|object| {
                object["metadata"]["name"] == name && object["metadata"]["namespace"] == NS
            })
            .and_then(|object| {
                object["metadata"]["resourceVersion"]
                    .as_str()
                    .map(String::from)
            })
    }

    pub async fn reconcile_provider(&self, namespace: &str, name: &str) -> Result<Action, Error> {
        self.caught_up().await;
        let object = self
            .context
            .stores
            .providers
            .get(&ObjectRef::new(name).within(namespace))
            .expect("provider in store");
        let result = provider::reconcile(object.clone(), self.context.clone()).await;
        if let Err(error) = &result {
            provider::error_policy(object, error, self.context.clone());
        }
        self.caught_up().await;
        result
    }

    /// The reason the check of the provider `name` fails with (it must fail).
    pub async fn provider_refusal(&self, namespace: &str, name: &str) -> String {
        self.reconcile_provider(namespace, name)
            .await
            .unwrap_err()
            .reason()
            .to_string()
    }

    pub async fn reconcile_cluster_provider(&self, name: &str) -> Result<Action, Error> {
        self.caught_up().await;
        let object = self
            .context
            .stores
            .cluster_providers
            .get(&ObjectRef::new(name))
            .expect("cluster provider in store");
        let result = provider::reconcile(object.clone(), self.context.clone()).await;
        if let Err(error) = &result {
            provider::error_policy(object, error, self.context.clone());
        }
        self.caught_up().await;
        result
    }

    /// Moves the clock past every resource's sync interval.
    pub fn advance(&self, by: Duration) {
        self.clock.advance(by);
    }
}
