//! The provider controller, for `GrantProvider` and `ClusterGrantProvider`.
//!
//! `Ready` comes from a real authentication against the vendor with the
//! credentials the provider references (Sigma: obtaining a token). It is checked
//! again every `--provider-check-interval`, whenever the provider or one of its
//! Secrets changes, and right after a grant sync was refused with 401. Grants
//! wait on a provider that is not Ready instead of each failing on their own.

use std::sync::Arc;

use kube::api::Api;
use kube::runtime::controller::Action;
use kube::{Resource, ResourceExt};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tracing::{info, warn};

use crate::api::{ClusterGrantProvider, GrantProvider, ProviderKind, ProviderStatus, Reason};

use super::clients::{ProviderConfigOf, ProviderId, secret_refs};
use super::status::{apply_status, ready, ready_of};
use super::{Context, Error, Failure, jitter};

/// Both provider kinds.
pub trait ProviderObject:
    Resource<DynamicType = ()>
    + ProviderConfigOf
    + Clone
    + std::fmt::Debug
    + Serialize
    + DeserializeOwned
    + Send
    + Sync
    + 'static
{
    /// The kind.
    const KIND: ProviderKind;
    /// Current status.
    fn provider_status(&self) -> Option<&ProviderStatus>;
    /// Which provider this is.
    fn id(&self) -> ProviderId {
        ProviderId {
            kind: Self::KIND,
            namespace: match Self::KIND {
                ProviderKind::GrantProvider => self.namespace(),
                ProviderKind::ClusterGrantProvider => None,
            },
            name: self.name_any(),
        }
    }
    /// An API handle for this object.
    fn api(&self, client: kube::Client) -> Api<Self>;
}

impl ProviderObject for GrantProvider {
    const KIND: ProviderKind = ProviderKind::GrantProvider;
    fn provider_status(&self) -> Option<&ProviderStatus> {
        self.status.as_ref()
    }
    fn api(&self, client: kube::Client) -> Api<Self> {
        Api::namespaced(client, &self.namespace().unwrap_or_default())
    }
}

impl ProviderObject for ClusterGrantProvider {
    const KIND: ProviderKind = ProviderKind::ClusterGrantProvider;
    fn provider_status(&self) -> Option<&ProviderStatus> {
        self.status.as_ref()
    }
    fn api(&self, client: kube::Client) -> Api<Self> {
        Api::all(client)
    }
}

/// The provider reason of a failure.
fn provider_reason(reason: Reason) -> Reason {
    match reason {
        Reason::CredentialsMissing | Reason::InvalidSpec => reason,
        Reason::Unauthorized | Reason::Forbidden | Reason::InvalidGrant => Reason::Unauthorized,
        _ => Reason::Unreachable,
    }
}

fn own_namespace<P: ProviderObject>(provider: &P) -> Option<String> {
    match P::KIND {
        ProviderKind::GrantProvider => provider.namespace(),
        ProviderKind::ClusterGrantProvider => None,
    }
}

/// The provider's inputs: a failure is retried before its backoff runs out only when they change.
fn backoff_key<P: ProviderObject>(provider: &P, context: &Context) -> String {
    let mut key = format!(
        "provider/{}/{}",
        provider.id(),
        provider.meta().generation.unwrap_or_default()
    );
    for (namespace, name) in secret_refs(provider.config(), own_namespace(provider).as_deref()) {
        let version = context
            .secrets
            .version(&namespace, &name)
            .unwrap_or_default();
        key.push_str(&format!("/{namespace}/{name}@{version}"));
    }
    key
}

/// Authenticates with the provider's credentials and reports `Ready`.
pub async fn reconcile<P: ProviderObject>(
    provider: Arc<P>,
    context: Arc<Context>,
) -> Result<Action, Error> {
    let started = std::time::Instant::now();
    let metrics = context.metrics.clone();
    let result = check(provider, context).await;
    let kind = match P::KIND {
        ProviderKind::GrantProvider => "GrantProvider",
        ProviderKind::ClusterGrantProvider => "ClusterGrantProvider",
    };
    metrics
        .reconciles
        .get_or_create(&crate::metrics::ReconcileLabels {
            kind,
            result: match &result {
                Ok(_) => "success".to_string(),
                Err(error) => error.reason().to_string(),
            },
        })
        .inc();
    metrics
        .reconcile_duration
        .get_or_create(&crate::metrics::KindLabels { kind })
        .observe(started.elapsed().as_secs_f64());
    result
}

async fn check<P: ProviderObject>(
    provider: Arc<P>,
    context: Arc<Context>,
) -> Result<Action, Error> {
    let id = provider.id();
    let own_namespace = own_namespace(provider.as_ref());
    let key = backoff_key(provider.as_ref(), &context);
    // Woken by our own status write after a failure, with nothing changed: keep waiting.
    if let Some(wait) = context.backoff.remaining(&key)
        && let Some(ready) = provider
            .provider_status()
            .and_then(|status| ready_of(&status.conditions))
            .filter(|ready| ready.status != "True")
    {
        let reason = provider_reason_named(&ready.reason).unwrap_or(Reason::Unreachable);
        return Err(Error::Backoff {
            failure: Failure::new(reason, ready.message.clone()),
            wait,
        });
    }
    let checked = async {
        let client = context
            .clients
            .get(
                &id,
                provider.as_ref(),
                own_namespace.as_deref(),
                &context.secrets,
            )
            .await?;
        client.check().await.map_err(Failure::from)
    }
    .await;

    let now = context.clock.now();
    let previous = provider.provider_status().cloned().unwrap_or_default();
    let generation = provider.meta().generation;
    let condition = match &checked {
        Ok(description) => ready(
            &previous.conditions,
            "True",
            Reason::Authenticated,
            description,
            generation,
            now,
        ),
        Err(failure) => ready(
            &previous.conditions,
            "False",
            provider_reason(failure.reason),
            &failure.message,
            generation,
            now,
        ),
    };
    let next = ProviderStatus {
        observed_generation: generation,
        conditions: vec![condition.clone()],
    };
    if provider.provider_status() != Some(&next) {
        apply_status(&context.client, provider.as_ref(), &next, &context.writes)
            .await
            .map_err(Error::Kube)?;
        let before = ready_of(&previous.conditions);
        if before.is_none_or(|before| {
            before.status != condition.status || before.reason != condition.reason
        }) {
            let warning = condition.status != "True";
            if warning {
                warn!(provider = %id, reason = %condition.reason, message = %condition.message, "provider not ready");
            } else {
                info!(provider = %id, "provider ready");
            }
            context
                .events
                .publish(
                    provider.as_ref(),
                    warning,
                    if warning {
                        provider_reason_str(&condition.reason)
                    } else {
                        "Authenticated"
                    },
                    "Authenticate",
                    condition.message.clone(),
                )
                .await;
        }
    }
    match checked {
        Ok(_) => {
            context.backoff.reset(&key);
            let interval = context.config.provider_check_interval;
            Ok(Action::requeue(interval + jitter(interval)))
        }
        Err(failure) => Err(Error::Failed(Failure {
            reason: provider_reason(failure.reason),
            ..failure
        })),
    }
}

/// The provider reason a condition names, if it is one.
fn provider_reason_named(reason: &str) -> Option<Reason> {
    Reason::named(reason).filter(|reason| {
        matches!(
            reason,
            Reason::CredentialsMissing
                | Reason::Unauthorized
                | Reason::Unreachable
                | Reason::InvalidSpec
        )
    })
}

fn provider_reason_str(reason: &str) -> &'static str {
    provider_reason_named(reason).map_or("NotReady", Reason::as_str)
}

/// Requeues a failed provider with backoff, capped at the check interval.
pub fn error_policy<P: ProviderObject>(
    provider: Arc<P>,
    error: &Error,
    context: Arc<Context>,
) -> Action {
    if let Error::Backoff { wait, .. } = error {
        return Action::requeue(*wait);
    }
    let id = provider.id();
    // Capped at a minute: grants wait on their provider, so it must notice a recovery soon.
    let cap = context
        .config
        .provider_check_interval
        .min(std::time::Duration::from_secs(60));
    let wait = context.backoff.fail(
        &backoff_key(provider.as_ref(), &context),
        cap,
        error.retry_after(),
        error.transient(),
    );
    warn!(provider = %id, reason = error.reason(), %error, retry_in = ?wait, "provider check failed");
    Action::requeue(wait)
}
