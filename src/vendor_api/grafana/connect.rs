//! How a Grafana client is made from a provider's `grafana` block: the Secrets
//! the block names (a service-account token, or Basic credentials), and the
//! client built from them.

use std::sync::Arc;

use crate::api::{GrafanaProvider, Reason, SecretSelector, SecretValue};
use crate::controller::Failure;
use crate::vendor_api::ProviderSecrets;
use crate::vendor_api::http::HttpClient;

use super::GrafanaClient;
use super::client::{Auth, GrafanaApi};

/// The Secret values the block names.
pub fn secrets<S>(block: &GrafanaProvider<S>) -> Vec<&SecretValue<S>> {
    let mut out: Vec<&SecretValue<S>> = block.token.iter().collect();
    if let Some(basic) = &block.basic_auth {
        out.push(&basic.username);
        out.push(&basic.password);
    }
    out
}

/// The client, authenticated with the token (or else Basic credentials) read through `read`.
pub async fn client<S: SecretSelector>(
    block: &GrafanaProvider<S>,
    http: HttpClient,
    read: &impl ProviderSecrets<S>,
) -> Result<Arc<GrafanaClient>, Failure> {
    let auth = match (&block.token, &block.basic_auth) {
        (Some(token), _) => Auth::Token(read.value(token).await?),
        (None, Some(basic)) => Auth::Basic {
            username: read.value(&basic.username).await?,
            password: read.value(&basic.password).await?,
        },
        (None, None) => {
            return Err(Failure::new(
                Reason::InvalidSpec,
                "the grafana block sets neither token nor basicAuth",
            ));
        }
    };
    let api = GrafanaApi::new(http, &block.url, block.org_id, auth);
    Ok(Arc::new(GrafanaClient::new(api, block.permissions_api)))
}
