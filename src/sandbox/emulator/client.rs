//! The client side of the emulators' self-tests: [`Server::anonymous`],
//! [`send`], [`Reply`] and its assertions.

use serde_json::Value;

use super::{Server, Vendor};

impl<V: Vendor> Server<V> {
    /// A request to this server, without credentials. Panics on an invalid
    /// method name (a test bug).
    pub fn anonymous(&self, method: &str, path: &str) -> reqwest::RequestBuilder {
        let method = reqwest::Method::from_bytes(method.as_bytes())
            .unwrap_or_else(|_| panic!("invalid method {method:?}"));
        reqwest::Client::new().request(method, format!("{}{path}", self.url()))
    }
}

/// An answer as a self-test sees it.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub content_type: Option<String>,
    pub retry_after: Option<String>,
    pub allow: Option<String>,
    /// The `Link` header (paged listings).
    pub link: Option<String>,
    /// The JSON body, or its text if it is not JSON, or `Null` if empty.
    pub body: Value,
}

/// Sends and reads the whole answer. Panics if the server does not answer.
pub async fn send(request: reqwest::RequestBuilder) -> Reply {
    let response = request.send().await.expect("the emulator answers");
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(String::from)
    };
    let status = response.status().as_u16();
    let content_type = header("content-type");
    let retry_after = header("retry-after");
    let allow = header("allow");
    let link = header("link");
    let text = response.text().await.expect("a body");
    let body = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or(Value::String(text))
    };
    Reply {
        status,
        content_type,
        retry_after,
        allow,
        link,
        body,
    }
}

/// Panics unless `reply` is a JSON answer with status 200.
#[track_caller]
pub fn assert_ok(reply: &Reply) {
    assert_eq!(reply.status, 200, "{reply:?}");
    assert_eq!(
        reply.content_type.as_deref(),
        Some("application/json"),
        "{reply:?}"
    );
}

/// Panics unless `reply` is exactly this JSON answer.
#[track_caller]
pub fn assert_answer(reply: &Reply, status: u16, body: &Value) {
    assert_eq!(reply.status, status, "{reply:?}");
    assert_eq!(&reply.body, body, "{reply:?}");
    assert_eq!(
        reply.content_type.as_deref(),
        Some("application/json"),
        "{reply:?}"
    );
}
