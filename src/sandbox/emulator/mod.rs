//! Plumbing shared by the in-process vendor emulators (`sigma`, `grafana`,
//! `dremio`, `snowflake`): the HTTP server and its lifetime, the call log
//! (and a journal of every call, which clearing the log keeps), fault injection,
//! body reading with a size cap, small helpers (JSON answers, query strings,
//! percent-decoding, random ids, page tokens, timestamps), and the client side
//! of the emulators' self-tests ([`Server::anonymous`], [`send`], [`Reply`]).
//!
//! A vendor implements [`Vendor`]: its error body shape, how a body is shown in
//! the call log, and [`Vendor::handle`] (routes, auth and state). Everything
//! around that is the same for every vendor and lives here: [`Server::serve`]
//! binds, records each request as a [`Call`] before handling it, fires the
//! injected [`Fault`]s before routing and authentication, handles the request
//! in a task of its own (so it is carried out to the end even if the client
//! gives up), and records the final status. The server stops when the
//! [`Server`] is dropped.
//!
//! For crash and fault tests there is more: faults drawn at random from a
//! seed ([`RandomFaults`]); faults that close the connection without an
//! answer, before or after the request took effect ([`FaultKind::DropBefore`],
//! [`FaultKind::DropAfter`]), or answer late after it took effect
//! ([`FaultKind::DelayAnswer`]); an interceptor that sees every request as it
//! arrives and may hold it ([`Server::intercept`], to kill a client at an exact
//! request); and an observer called right before and right after the vendor
//! handles each request, with no other request handled in between
//! ([`Server::observe`], to see what each request changed). Connections can be
//! closed without an answer because the server accepts them through its own
//! listener, which can abort any one connection.
//!
//! Each emulator is `Server<ItsVendor>` under a type alias
//! (`pub type SigmaEmulator = Server<Sigma>`), with its setup and inspection
//! methods in an inherent `impl` in its own module.
//!
//! Dependencies: axum 0.8, tokio, serde_json, http 1 and std.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::Response;
use serde_json::Value;

mod answers;
mod client;
mod faults;
mod helpers;
mod listener;
mod requests;
mod serve;

pub use answers::{
    Answer, ApiError, empty_response, err, json_or_text, json_response, method_not_allowed,
};
pub use client::{Reply, assert_answer, assert_ok, send};
pub use faults::{Call, Fault, FaultKind, Intercept, RandomFaults, SeededRng, Stage};
use faults::{Interceptor, Observer, RandomFaultState, Recorder};
pub use helpers::{
    Millis, PageTokens, capitalize, lock, random_alnum, random_from, random_u64, rfc3339_millis,
    uuid_like,
};
use listener::{Connection, DroppableListener};
pub use requests::{
    AuthHeaderError, authorization, media_type_is, params, parse_pairs, path_segment,
    percent_decode, segments, unknown_key,
};
use serve::entry;

/// A request as handed to [`Vendor::handle`], body already read.
pub struct Request {
    pub method: Method,
    /// The raw (still percent-encoded) path.
    pub path: String,
    /// The raw query string, empty if there is none.
    pub query: String,
    pub headers: HeaderMap,
    pub body: Bytes,
}

/// What makes one emulator differ from another.
pub trait Vendor: Send + Sync + 'static {
    /// Short name used in panic messages, e.g. `"sigma"`.
    const NAME: &'static str;
    /// Largest request body read; bigger ones are answered 413.
    const MAX_BODY_BYTES: usize;

    /// The vendor's error answer.
    fn error(status: StatusCode, message: &str) -> Response;

    /// How a non-empty body is shown in [`Call::body`].
    fn recorded_body(headers: &HeaderMap, body: &Bytes) -> Option<Value> {
        let _ = headers;
        json_or_text(body)
    }

    /// Routes, authenticates and answers a request (faults have already been
    /// applied). Must not panic; if it does, the request is answered 500.
    fn handle(&self, request: &Request) -> Response;
}

/// A running emulator of the vendor `V`. The server stops when this value is
/// dropped.
pub struct Server<V: Vendor> {
    inner: Arc<Inner<V>>,
    addr: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

struct Inner<V> {
    vendor: V,
    recorder: Mutex<Recorder>,
    interceptor: Mutex<Option<Interceptor>>,
    observer: Mutex<Option<Observer>>,
    /// Held while the vendor handles a request when an observer is set, so that
    /// the observer sees each request's effect alone.
    handling: Mutex<()>,
}

/// `127.0.0.1:0`: the loopback address on a free port.
pub fn loopback() -> SocketAddr {
    SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 0)
}

impl<V: Vendor> Server<V> {
    /// Binds `addr` (e.g. [`loopback()`], or `0.0.0.0:0` to be reachable from
    /// a cluster) and serves `vendor` in a tokio task. Panics if it cannot bind.
    pub async fn serve(addr: SocketAddr, vendor: V) -> Server<V> {
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .unwrap_or_else(|e| panic!("{} emulator: cannot bind {addr}: {e}", V::NAME));
        let local = listener
            .local_addr()
            .unwrap_or_else(|e| panic!("{} emulator: no local address: {e}", V::NAME));
        let inner = Arc::new(Inner {
            vendor,
            recorder: Mutex::new(Recorder::default()),
            interceptor: Mutex::new(None),
            observer: Mutex::new(None),
            handling: Mutex::new(()),
        });
        let app = Router::new()
            .fallback(entry::<V>)
            .with_state(inner.clone())
            .into_make_service_with_connect_info::<Connection>();
        let task = tokio::spawn(async move {
            let _ = axum::serve(DroppableListener(listener), app).await;
        });
        Server {
            inner,
            addr: local,
            task,
        }
    }

    /// The vendor side (its state).
    pub fn vendor(&self) -> &V {
        &self.inner.vendor
    }

    /// Base URL without trailing slash. An unspecified bind address
    /// (0.0.0.0 / ::) is shown as the loopback address.
    pub fn url(&self) -> String {
        let ip = match self.addr.ip() {
            IpAddr::V4(v4) if v4.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
            IpAddr::V6(v6) if v6.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
            ip => ip,
        };
        format!("http://{}", SocketAddr::new(ip, self.addr.port()))
    }

    /// The address actually bound.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Every request received, in arrival order.
    pub fn calls(&self) -> Vec<Call> {
        lock(&self.inner.recorder)
            .calls
            .iter()
            .map(|(_, c)| c.clone())
            .collect()
    }

    /// Forgets the calls so far ([`Self::calls`], [`Self::count`]); the
    /// journal keeps them.
    pub fn clear_calls(&self) {
        lock(&self.inner.recorder).calls.clear();
    }

    /// Every request received since the server started, in arrival order,
    /// whatever [`Self::clear_calls`] forgot.
    pub fn journal(&self) -> Vec<Call> {
        lock(&self.inner.recorder)
            .journal
            .iter()
            .map(|(_, c)| c.clone())
            .collect()
    }

    /// Calls whose method matches (case-insensitive) and whose path starts
    /// with `path_prefix`.
    pub fn count(&self, method: &str, path_prefix: &str) -> usize {
        lock(&self.inner.recorder)
            .calls
            .iter()
            .filter(|(_, c)| {
                c.method.eq_ignore_ascii_case(method) && c.path.starts_with(path_prefix)
            })
            .count()
    }

    /// Queues a fault (one with `times == 0` is ignored).
    pub fn inject(&self, fault: Fault) {
        if fault.times > 0 {
            lock(&self.inner.recorder).faults.push(fault);
        }
    }

    /// Forgets the queued faults that have not fired yet.
    pub fn clear_faults(&self) {
        lock(&self.inner.recorder).faults.clear();
    }

    /// Draws faults at random from now on (replacing earlier random faults);
    /// queued [`Fault`]s still come first.
    pub fn inject_random(&self, faults: RandomFaults) {
        let rng = SeededRng::new(faults.seed);
        lock(&self.inner.recorder).random = Some(RandomFaultState { spec: faults, rng });
    }

    /// Stops drawing random faults.
    pub fn clear_random_faults(&self) {
        lock(&self.inner.recorder).random = None;
    }

    /// Calls `interceptor` with every request as it arrives (recorded, not yet
    /// handled, before any fault), replacing an earlier one. It runs on the
    /// connection's task and must not block.
    pub fn intercept(&self, interceptor: impl Fn(&Call) -> Intercept + Send + Sync + 'static) {
        *lock(&self.inner.interceptor) = Some(Arc::new(interceptor));
    }

    /// Calls `observer` right before and right after the vendor handles each
    /// request (not for requests a fault answers instead), replacing an
    /// earlier one. While an observer is set, requests are handled one at a
    /// time, so what the vendor's state shows between `Before` and `After` is
    /// that request's doing. The observer may read the vendor's state (through
    /// the [`Server`]'s inspection methods) but must not block.
    pub fn observe(&self, observer: impl Fn(&Call, Stage) + Send + Sync + 'static) {
        *lock(&self.inner.observer) = Some(Arc::new(observer));
    }
}

impl<V: Vendor + Default> Server<V> {
    /// Binds 127.0.0.1 on a free port and serves a new vendor state.
    pub async fn start() -> Server<V> {
        Self::serve(loopback(), V::default()).await
    }

    /// Binds `addr` (e.g. `0.0.0.0:0` to be reachable from a cluster) and
    /// serves a new vendor state.
    pub async fn start_on(addr: SocketAddr) -> Server<V> {
        Self::serve(addr, V::default()).await
    }
}

impl<V: Vendor> Drop for Server<V> {
    fn drop(&mut self) {
        self.task.abort();
    }
}
