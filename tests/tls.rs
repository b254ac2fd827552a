//! Private CAs: a vendor endpoint whose certificate is signed by a private CA
//! is refused until the provider's `caBundle` names that CA.

mod support;

use std::sync::Arc;

use grant_operator::api::{SecretValue, VendorKind};
use grant_operator::metrics::Metrics;
use grant_operator::vendor_api::http::{CallError, HttpClient, HttpConfig, Repeat};
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use support::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

struct Endpoint {
    url: String,
    ca_pem: String,
}

/// An HTTPS server on 127.0.0.1 signed by a fresh private CA. It answers every
/// request with a Sigma token answer.
async fn https_endpoint() -> Endpoint {
    grant_operator::install_crypto_provider();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "grant-operator test CA");
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();
    let leaf_key = KeyPair::generate().unwrap();
    let leaf = CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()])
        .unwrap()
        .signed_by(&leaf_key, &ca)
        .unwrap();

    let config = rustls::ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(
            vec![CertificateDer::from(leaf.der().to_vec())],
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(leaf_key.serialize_der())),
        )
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(stream).await else {
                    return;
                };
                let mut request = Vec::new();
                let mut buffer = [0u8; 4096];
                while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                    match tls.read(&mut buffer).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => request.extend_from_slice(&buffer[..n]),
                    }
                }
                let body = br#"{"access_token":"a","refresh_token":"r","token_type":"bearer","expires_in":3600}"#;
                let head = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                    body.len()
                );
                let _ = tls.write_all(head.as_bytes()).await;
                let _ = tls.write_all(body).await;
                let _ = tls.shutdown().await;
            });
        }
    });
    Endpoint {
        url: format!("https://127.0.0.1:{port}"),
        ca_pem: ca.pem(),
    }
}

#[tokio::test]
async fn the_http_client_trusts_a_private_ca_only_when_given() {
    let endpoint = https_endpoint().await;
    let metrics = Arc::new(Metrics::new());
    let config = HttpConfig {
        retry: fast_retries(),
        ..HttpConfig::default()
    };
    let untrusting = HttpClient::new(VendorKind::Sigma, &config, metrics.clone()).unwrap();
    let url = format!("{}/v2/auth/token", endpoint.url);
    let refused = untrusting
        .send("token", Repeat::Read, |client| client.post(&url))
        .await
        .unwrap_err();
    assert!(
        matches!(refused, CallError::Transport { .. }),
        "{refused:?}"
    );

    let trusting = HttpClient::new(
        VendorKind::Sigma,
        &HttpConfig {
            ca_pem: Some(endpoint.ca_pem.into_bytes()),
            ..config
        },
        metrics,
    )
    .unwrap();
    let answer = trusting
        .send("token", Repeat::Read, |client| client.post(&url))
        .await
        .unwrap();
    assert_eq!(answer.status, 200);
}

#[tokio::test]
async fn a_provider_reaches_a_vendor_behind_a_private_ca_through_its_ca_bundle() {
    let endpoint = https_endpoint().await;
    let h = Harness::new().await;
    h.secret(
        NS,
        "sigma-api",
        &[
            ("client-id", CLIENT_ID),
            ("client-secret", CLIENT_SECRET),
            ("ca.crt", &endpoint.ca_pem),
        ],
    );
    let mut provider = h.sigma_provider(NS, "sigma-prod", "sigma-api");
    provider.spec.sigma.as_mut().unwrap().api_url = endpoint.url.clone();
    h.put(&provider);
    let error = h.reconcile_provider(NS, "sigma-prod").await.unwrap_err();
    assert_eq!(error.reason(), "Unreachable");
    let ready = h.provider_ready(NS, "sigma-prod");
    assert_eq!(ready.reason, "Unreachable");
    assert!(
        ready.message.contains("certificate") || ready.message.contains("connect"),
        "{}",
        ready.message
    );

    provider.spec.ca_bundle = Some(SecretValue {
        secret_key_ref: grant_operator::api::SecretKeySelector {
            name: "sigma-api".into(),
            key: "ca.crt".into(),
        },
    });
    h.put(&provider);
    h.reconcile_provider(NS, "sigma-prod").await.unwrap();
    let ready = h.provider_ready(NS, "sigma-prod");
    assert_eq!(
        (ready.status.as_str(), ready.reason.as_str()),
        ("True", "Authenticated")
    );
}
