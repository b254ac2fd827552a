//! How a Snowflake client is made from a provider's `snowflake` block: the
//! Secrets of its one authentication method (key pair, OAuth token or
//! programmatic access token), and the client built from them.

use std::sync::Arc;

use secrecy::ExposeSecret;

use crate::api::{Reason, SecretSelector, SecretValue, SnowflakeProvider};
use crate::controller::Failure;
use crate::vendor_api::ProviderSecrets;
use crate::vendor_api::http::HttpClient;

use super::SnowflakeClient;
use super::auth::{Auth, KeyPair};
use super::client::SnowflakeApi;

/// The Secret values the block names.
pub fn secrets<S>(block: &SnowflakeProvider<S>) -> Vec<&SecretValue<S>> {
    let mut out = Vec::new();
    if let Some(pair) = &block.key_pair {
        out.push(&pair.private_key);
        out.extend(pair.passphrase.iter());
    }
    out.extend(block.oauth_token.iter());
    out.extend(block.programmatic_access_token.iter());
    out
}

/// The client, authenticated by the block's method with Secrets read through `read`.
pub async fn client<S: SecretSelector>(
    block: &SnowflakeProvider<S>,
    http: HttpClient,
    read: &impl ProviderSecrets<S>,
) -> Result<Arc<SnowflakeClient>, Failure> {
    let auth = match (
        &block.key_pair,
        &block.oauth_token,
        &block.programmatic_access_token,
    ) {
        (Some(pair), _, _) => {
            let key = read.value(&pair.private_key).await?;
            let passphrase = match &pair.passphrase {
                Some(value) => Some(read.value(value).await?),
                None => None,
            };
            let pair = KeyPair::new(
                &block.account,
                &block.user,
                key.expose_secret(),
                passphrase.as_ref().map(|p| p.expose_secret()),
            )
            .map_err(|error| {
                Failure::new(
                    Reason::CredentialsMissing,
                    format!("the Snowflake keyPair cannot be used: {error}"),
                )
            })?;
            Auth::KeyPair(pair)
        }
        (None, Some(token), _) => Auth::OAuth(read.value(token).await?),
        (None, None, Some(token)) => Auth::ProgrammaticAccessToken(read.value(token).await?),
        (None, None, None) => {
            return Err(Failure::new(
                Reason::InvalidSpec,
                "the snowflake block sets none of keyPair, oauthToken or programmaticAccessToken",
            ));
        }
    };
    let api = SnowflakeApi::new(http, &block.account_url, auth, block.grants_api);
    Ok(Arc::new(SnowflakeClient::new(api)))
}
