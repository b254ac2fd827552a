//! How a Dremio client is made from a provider's `dremio` block: its personal
//! access token, and Software or Cloud by whether a project id is set.

use std::sync::Arc;

use crate::api::{DremioProvider, SecretSelector, SecretValue};
use crate::controller::Failure;
use crate::vendor_api::ProviderSecrets;
use crate::vendor_api::http::HttpClient;

use super::DremioClient;
use super::client::{Deployment, DremioApi};

/// The Secret values the block names.
pub fn secrets<S>(block: &DremioProvider<S>) -> Vec<&SecretValue<S>> {
    vec![&block.token]
}

/// The client, with the token read through `read`.
pub async fn client<S: SecretSelector>(
    block: &DremioProvider<S>,
    http: HttpClient,
    read: &impl ProviderSecrets<S>,
) -> Result<Arc<DremioClient>, Failure> {
    let token = read.value(&block.token).await?;
    let deployment = match &block.project_id {
        Some(project_id) => Deployment::Cloud {
            project_id: project_id.clone(),
        },
        None => Deployment::Software,
    };
    let api = DremioApi::new(http, &block.url, deployment, token);
    Ok(Arc::new(DremioClient::new(api)))
}
