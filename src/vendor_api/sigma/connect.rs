//! How a Sigma client is made from a provider's `sigma` block: the Secrets the
//! block names, and the credentials read from them.

use std::sync::Arc;

use crate::api::{SecretSelector, SecretValue, SigmaProvider};
use crate::controller::Failure;
use crate::vendor_api::ProviderSecrets;
use crate::vendor_api::http::HttpClient;

use super::SigmaClient;
use super::client::{Credentials, SigmaApi};

/// The Secret values the block names.
pub fn secrets<S>(block: &SigmaProvider<S>) -> Vec<&SecretValue<S>> {
    vec![&block.client_id, &block.client_secret]
}

/// The client, with the client id and secret read through `read`.
pub async fn client<S: SecretSelector>(
    block: &SigmaProvider<S>,
    http: HttpClient,
    read: &impl ProviderSecrets<S>,
) -> Result<Arc<SigmaClient>, Failure> {
    let credentials = Credentials {
        client_id: read.value(&block.client_id).await?,
        client_secret: read.value(&block.client_secret).await?,
    };
    let api = SigmaApi::new(http, &block.api_url, credentials);
    Ok(Arc::new(SigmaClient::new(api)))
}
