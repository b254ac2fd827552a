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

use std::collections::HashMap;
use std::collections::hash_map::RandomState;
use std::future::Future;
use std::hash::{BuildHasher, Hasher};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State as AxumState;
use axum::extract::connect_info::{ConnectInfo, Connected};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::Response;
use serde_json::{Map, Value};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};

// ---------------------------------------------------------------------------
// Call log and faults
// ---------------------------------------------------------------------------

/// One request received by an emulator.
///
/// `status` is the final status answered (0 while the request is still being
/// handled, e.g. during an injected delay, and when the connection was closed
/// without an answer). `body` is what the vendor chose to
/// record (by default the parsed JSON body, or the raw text of any other
/// non-empty body). `headers` holds every request header in arrival order,
/// names in lower case, values decoded lossily; read one with [`Call::header`].
#[derive(Clone, Debug)]
pub struct Call {
    pub method: String,
    pub path: String,
    pub query: String,
    pub status: u16,
    pub body: Option<Value>,
    pub authorization: Option<String>,
    pub headers: Vec<(String, String)>,
    pub at: Instant,
}

impl Call {
    /// The first value of a request header (name case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// A fault fired on the next `times` requests whose method matches (`None`:
/// any) and whose path starts with `path_prefix`. Faults are checked in the
/// order they were injected, before routing and authentication; at most one
/// fault fires per request.
#[derive(Clone, Debug)]
pub struct Fault {
    pub method: Option<String>,
    pub path_prefix: String,
    pub times: usize,
    pub kind: FaultKind,
}

#[derive(Clone, Debug)]
pub enum FaultKind {
    /// Answer this status with the vendor's error body; state is not touched.
    Status(u16),
    /// Answer 429 with a `Retry-After: <secs>` header; state is not touched.
    RateLimited { retry_after_secs: u64 },
    /// Sleep this long, then handle the request normally. The request is
    /// handled to the end even if the client gives up meanwhile.
    Delay(Duration),
    /// Handle the request at once, then wait this long before answering: a
    /// client that gives up first never learns that its request took effect.
    DelayAnswer(Duration),
    /// Close the connection without an answer; the request is not handled.
    DropBefore,
    /// Handle the request, then close the connection without an answer.
    DropAfter,
}

/// Faults drawn at random. Each request whose method matches (`None`: any)
/// and whose path starts with `path_prefix`, and which no queued [`Fault`]
/// takes, gets a fault with probability `probability`, its kind picked
/// uniformly from `kinds` (repeat a kind to weigh it). The draws come from a
/// generator seeded with `seed`, in the order requests reach fault injection,
/// so a seed replays the same decisions for the same sequence of requests.
#[derive(Clone, Debug)]
pub struct RandomFaults {
    pub seed: u64,
    pub probability: f64,
    pub method: Option<String>,
    pub path_prefix: String,
    pub kinds: Vec<FaultKind>,
}

/// A small seeded pseudo-random generator (SplitMix64): the same seed gives
/// the same numbers on every platform and with every version of this crate.
#[derive(Clone, Debug)]
pub struct SeededRng(u64);

impl SeededRng {
    pub fn new(seed: u64) -> SeededRng {
        SeededRng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (0 when `n` is 0).
    pub fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            return 0;
        }
        (self.next_u64() % n as u64) as usize
    }

    /// True with probability `p`.
    pub fn chance(&mut self, p: f64) -> bool {
        let unit = (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
        unit < p
    }
}

/// What an interceptor ([`Server::intercept`]) decides for a request.
pub enum Intercept {
    /// Go on as usual: faults, then the vendor.
    Pass,
    /// Wait for the future, then close the connection without an answer; the
    /// request is not handled.
    DropBefore(Pin<Box<dyn Future<Output = ()> + Send>>),
    /// Handle the request (no fault), wait for the future, then close the
    /// connection without an answer.
    DropAfter(Pin<Box<dyn Future<Output = ()> + Send>>),
}

/// When an observer ([`Server::observe`]) is called.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stage {
    /// Right before the vendor handles the request (faults already fired).
    Before,
    /// Right after, with the status it answered.
    After { status: u16 },
}

type Interceptor = Arc<dyn Fn(&Call) -> Intercept + Send + Sync>;
type Observer = Arc<dyn Fn(&Call, Stage) + Send + Sync>;

struct RandomFaultState {
    spec: RandomFaults,
    rng: SeededRng,
}

/// The call log and the pending faults of one server.
#[derive(Default)]
struct Recorder {
    calls: Vec<(u64, Call)>,
    /// Every call since the server started; [`Server::clear_calls`] does not
    /// clear it (the conformance check reads it when a test ends).
    journal: Vec<(u64, Call)>,
    next_seq: u64,
    faults: Vec<Fault>,
    random: Option<RandomFaultState>,
}

impl Recorder {
    fn record(&mut self, call: Call) -> u64 {
        let seq = self.next_seq;
        self.next_seq += 1;
        self.journal.push((seq, call.clone()));
        self.calls.push((seq, call));
        seq
    }

    fn finish(&mut self, seq: u64, status: u16) {
        for log in [&mut self.calls, &mut self.journal] {
            // Calls are appended in order: the one to finish is near the end.
            if let Some((_, call)) = log.iter_mut().rev().find(|(s, _)| *s == seq) {
                call.status = status;
            }
        }
    }

    fn take_fault(&mut self, method: &str, path: &str) -> Option<FaultKind> {
        let matches = |wanted: &Option<String>, prefix: &str| {
            wanted
                .as_deref()
                .is_none_or(|m| m.eq_ignore_ascii_case(method))
                && path.starts_with(prefix)
        };
        let Some(idx) = self
            .faults
            .iter()
            .position(|f| f.times > 0 && matches(&f.method, &f.path_prefix))
        else {
            let random = self.random.as_mut()?;
            if !matches(&random.spec.method, &random.spec.path_prefix)
                || random.spec.kinds.is_empty()
                || !random.rng.chance(random.spec.probability)
            {
                return None;
            }
            let pick = random.rng.below(random.spec.kinds.len());
            return random.spec.kinds.get(pick).cloned();
        };
        let fault = self.faults.get_mut(idx)?;
        fault.times -= 1;
        let kind = fault.kind.clone();
        if fault.times == 0 {
            self.faults.remove(idx);
        }
        Some(kind)
    }
}

// ---------------------------------------------------------------------------
// Vendor and server
// ---------------------------------------------------------------------------

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

async fn entry<V: Vendor>(
    AxumState(inner): AxumState<Arc<Inner<V>>>,
    req: axum::http::Request<Body>,
) -> Response {
    let at = Instant::now();
    let connection = req
        .extensions()
        .get::<ConnectInfo<Connection>>()
        .map(|info| info.0.closed.clone());
    let (parts, body) = req.into_parts();
    let method = parts.method;
    let headers = parts.headers;
    let path = parts.uri.path().to_string();
    let query = parts.uri.query().unwrap_or_default().to_string();
    let lossy = |v: &HeaderValue| String::from_utf8_lossy(v.as_bytes()).into_owned();
    let authorization = headers.get(header::AUTHORIZATION).map(lossy);
    let recorded_headers = headers
        .iter()
        .map(|(name, value)| (name.as_str().to_string(), lossy(value)))
        .collect();

    let declared_too_large = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .is_some_and(|n| n > V::MAX_BODY_BYTES as u64);
    let body: Result<Bytes, Response> = if declared_too_large {
        Err(V::error(
            StatusCode::PAYLOAD_TOO_LARGE,
            "request body too large",
        ))
    } else {
        axum::body::to_bytes(body, V::MAX_BODY_BYTES)
            .await
            .map_err(|_| {
                V::error(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "request body too large or unreadable",
                )
            })
    };

    let call = Call {
        method: method.as_str().to_string(),
        path: path.clone(),
        query: query.clone(),
        status: 0,
        body: body
            .as_ref()
            .ok()
            .filter(|b| !b.is_empty())
            .and_then(|b| V::recorded_body(&headers, b)),
        authorization,
        headers: recorded_headers,
        at,
    };
    let seq = lock(&inner.recorder).record(call.clone());
    let interceptor = lock(&inner.interceptor).clone();
    let intercept = match &interceptor {
        Some(interceptor) => interceptor(&call),
        None => Intercept::Pass,
    };

    // Handle in a task of its own so that a request is carried out (and
    // recorded) to the end even if the client disconnects, e.g. after a
    // client-side timeout during an injected delay.
    let task_inner = inner.clone();
    let job = tokio::spawn(async move {
        let outcome = match body {
            Ok(body) => {
                let request = Request {
                    method,
                    path,
                    query,
                    headers,
                    body,
                };
                match intercept {
                    Intercept::Pass => process(&task_inner, &request, &call).await,
                    Intercept::DropBefore(until) => {
                        until.await;
                        Outcome::Drop
                    }
                    Intercept::DropAfter(until) => {
                        let _ = handle(&task_inner, &request, &call);
                        until.await;
                        Outcome::Drop
                    }
                }
            }
            Err(response) => Outcome::Answer(response),
        };
        if let Outcome::Answer(response) = &outcome {
            lock(&task_inner.recorder).finish(seq, response.status().as_u16());
        }
        outcome
    });
    match job.await {
        Ok(Outcome::Answer(response)) => response,
        Ok(Outcome::Drop) => {
            // Aborting the connection makes hyper fail to write this answer and
            // close it: the client gets no answer at all.
            if let Some(closed) = &connection {
                closed.store(true, Ordering::SeqCst);
            }
            V::error(StatusCode::BAD_GATEWAY, "connection dropped")
        }
        Err(_) => {
            let response = V::error(StatusCode::INTERNAL_SERVER_ERROR, "emulator task failed");
            lock(&inner.recorder).finish(seq, response.status().as_u16());
            response
        }
    }
}

/// How a request ends: with an answer, or with its connection closed.
enum Outcome {
    Answer(Response),
    Drop,
}

async fn process<V: Vendor>(inner: &Inner<V>, request: &Request, call: &Call) -> Outcome {
    let fault = lock(&inner.recorder).take_fault(request.method.as_str(), &request.path);
    match fault {
        Some(FaultKind::Delay(d)) => tokio::time::sleep(d).await,
        Some(FaultKind::Status(code)) => {
            let status = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            return Outcome::Answer(V::error(
                status,
                &format!("injected fault: status {}", status.as_u16()),
            ));
        }
        Some(FaultKind::RateLimited { retry_after_secs }) => {
            let mut response = V::error(StatusCode::TOO_MANY_REQUESTS, "Too many requests");
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(retry_after_secs));
            return Outcome::Answer(response);
        }
        Some(FaultKind::DelayAnswer(d)) => {
            let response = handle(inner, request, call);
            tokio::time::sleep(d).await;
            return Outcome::Answer(response);
        }
        Some(FaultKind::DropBefore) => return Outcome::Drop,
        Some(FaultKind::DropAfter) => {
            let _ = handle(inner, request, call);
            return Outcome::Drop;
        }
        None => {}
    }
    Outcome::Answer(handle(inner, request, call))
}

/// The vendor handles a request, watched by the observer if there is one.
fn handle<V: Vendor>(inner: &Inner<V>, request: &Request, call: &Call) -> Response {
    let observer = lock(&inner.observer).clone();
    let Some(observer) = observer else {
        return inner.vendor.handle(request);
    };
    let _alone = lock(&inner.handling);
    observer(call, Stage::Before);
    let response = inner.vendor.handle(request);
    observer(
        call,
        Stage::After {
            status: response.status().as_u16(),
        },
    );
    response
}

// ---------------------------------------------------------------------------
// Connections that can be closed without an answer
// ---------------------------------------------------------------------------

/// The TCP listener of a [`Server`]: every connection carries a flag that
/// aborts it.
struct DroppableListener(TcpListener);

/// What a handler knows of its connection: the flag that aborts it.
#[derive(Clone, Debug)]
struct Connection {
    closed: Arc<AtomicBool>,
}

/// A TCP stream that fails every read and write once its flag is set, so
/// that hyper closes it without writing another byte.
struct DroppableStream {
    stream: TcpStream,
    closed: Arc<AtomicBool>,
}

impl DroppableStream {
    fn aborted(&self) -> Option<std::io::Error> {
        self.closed
            .load(Ordering::SeqCst)
            .then(|| std::io::Error::from(std::io::ErrorKind::ConnectionAborted))
    }
}

impl AsyncRead for DroppableStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        if let Some(error) = self.aborted() {
            return Poll::Ready(Err(error));
        }
        Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for DroppableStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        if let Some(error) = self.aborted() {
            return Poll::Ready(Err(error));
        }
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        if let Some(error) = self.aborted() {
            return Poll::Ready(Err(error));
        }
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        if let Some(error) = self.aborted() {
            return Poll::Ready(Err(error));
        }
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}

impl axum::serve::Listener for DroppableListener {
    type Io = DroppableStream;
    type Addr = Connection;

    async fn accept(&mut self) -> (DroppableStream, Connection) {
        loop {
            match self.0.accept().await {
                Ok((stream, _)) => {
                    let closed = Arc::new(AtomicBool::new(false));
                    let connection = Connection {
                        closed: closed.clone(),
                    };
                    return (DroppableStream { stream, closed }, connection);
                }
                // Out of file descriptors and the like: wait instead of spinning.
                Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
            }
        }
    }

    fn local_addr(&self) -> std::io::Result<Connection> {
        self.0.local_addr().map(|_| Connection {
            closed: Arc::new(AtomicBool::new(false)),
        })
    }
}

impl Connected<axum::serve::IncomingStream<'_, DroppableListener>> for Connection {
    fn connect_info(stream: axum::serve::IncomingStream<'_, DroppableListener>) -> Connection {
        stream.remote_addr().clone()
    }
}

// ---------------------------------------------------------------------------
// Answers
// ---------------------------------------------------------------------------

/// An error answer not yet rendered in a vendor's shape.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub message: String,
}

/// A handler's result: an answer, or an error to render.
pub type Answer = Result<Response, ApiError>;

pub fn err(status: StatusCode, message: impl Into<String>) -> ApiError {
    ApiError {
        status,
        message: message.into(),
    }
}

impl ApiError {
    /// Renders with the vendor's error shape.
    pub fn into_response<V: Vendor>(self) -> Response {
        V::error(self.status, &self.message)
    }
}

/// A JSON answer with `Content-Type: application/json`.
pub fn json_response(status: StatusCode, body: &Value) -> Response {
    let mut response = Response::new(Body::from(body.to_string()));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

/// An empty answer with this status (e.g. 204).
pub fn empty_response(status: StatusCode) -> Response {
    let mut response = Response::new(Body::empty());
    *response.status_mut() = status;
    response
}

/// The vendor's 405 answer, with an `Allow` header listing `allowed`.
pub fn method_not_allowed<V: Vendor>(allowed: &[Method], message: &str) -> Response {
    let allow = allowed
        .iter()
        .map(Method::as_str)
        .collect::<Vec<_>>()
        .join(", ");
    let mut response = V::error(StatusCode::METHOD_NOT_ALLOWED, message);
    if let Ok(v) = HeaderValue::from_str(&allow) {
        response.headers_mut().insert(header::ALLOW, v);
    }
    response
}

/// The parsed JSON of a body, or its raw text if it is not JSON; `None` if
/// empty.
pub fn json_or_text(bytes: &Bytes) -> Option<Value> {
    if bytes.is_empty() {
        return None;
    }
    match serde_json::from_slice::<Value>(bytes) {
        Ok(v) => Some(v),
        Err(_) => Some(Value::String(String::from_utf8_lossy(bytes).into_owned())),
    }
}

// ---------------------------------------------------------------------------
// Requests
// ---------------------------------------------------------------------------

/// Why the `Authorization` header could not be split.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AuthHeaderError {
    /// Sent more than once.
    Repeated,
    /// Not text, or not `<scheme> <credentials>`.
    Malformed,
}

/// The one `Authorization` header as `(scheme, credentials)`, credentials
/// trimmed; `None` if absent.
pub fn authorization(headers: &HeaderMap) -> Result<Option<(String, String)>, AuthHeaderError> {
    let values: Vec<&HeaderValue> = headers.get_all(header::AUTHORIZATION).iter().collect();
    let value = match values.as_slice() {
        [] => return Ok(None),
        [one] => *one,
        _ => return Err(AuthHeaderError::Repeated),
    };
    let value = value.to_str().map_err(|_| AuthHeaderError::Malformed)?;
    let (scheme, credentials) = value.split_once(' ').ok_or(AuthHeaderError::Malformed)?;
    Ok(Some((scheme.to_string(), credentials.trim().to_string())))
}

/// The first key of `object` that is not in `allowed`.
pub fn unknown_key<'a>(object: &'a Map<String, Value>, allowed: &[&str]) -> Option<&'a str> {
    object
        .keys()
        .map(String::as_str)
        .find(|k| !allowed.contains(k))
}

/// Whether the media type of `Content-Type` is `expected` (parameters such as
/// `charset` ignored).
pub fn media_type_is(headers: &HeaderMap, expected: &str) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.split(';')
                .next()
                .unwrap_or_default()
                .trim()
                .eq_ignore_ascii_case(expected)
        })
}

/// Decodes `%XX` (and `+` as space when `plus_as_space`); malformed escapes
/// and invalid UTF-8 are errors.
pub fn percent_decode(s: &str, plus_as_space: bool) -> Result<String, String> {
    fn hex(b: u8) -> Option<u8> {
        match b {
            b'0'..=b'9' => Some(b - b'0'),
            b'a'..=b'f' => Some(b - b'a' + 10),
            b'A'..=b'F' => Some(b - b'A' + 10),
            _ => None,
        }
    }
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        match b {
            b'+' if plus_as_space => {
                out.push(b' ');
                i += 1;
            }
            b'%' => {
                let hi = bytes.get(i + 1).copied().and_then(hex);
                let lo = bytes.get(i + 2).copied().and_then(hex);
                match (hi, lo) {
                    (Some(hi), Some(lo)) => out.push(hi << 4 | lo),
                    _ => return Err(format!("malformed percent-encoding in {s:?}")),
                }
                i += 3;
            }
            _ => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).map_err(|_| format!("invalid UTF-8 in {s:?}"))
}

/// A non-empty decoded path segment (`+` stays `+`), or `None`.
pub fn path_segment(raw: &str) -> Option<String> {
    percent_decode(raw, false).ok().filter(|d| !d.is_empty())
}

/// The segments of `path` after `prefix`, or `None` if it does not start with
/// it or has an empty segment.
pub fn segments<'a>(path: &'a str, prefix: &str) -> Option<Vec<&'a str>> {
    let segs: Vec<&str> = path.strip_prefix(prefix)?.split('/').collect();
    if segs.iter().any(|s| s.is_empty()) {
        return None;
    }
    Some(segs)
}

/// Parses `a=1&b=2` (query string or form body).
pub fn parse_pairs(text: &str) -> Result<Vec<(String, String)>, String> {
    text.split('&')
        .filter(|part| !part.is_empty())
        .map(|part| {
            let (k, v) = part.split_once('=').unwrap_or((part, ""));
            Ok((percent_decode(k, true)?, percent_decode(v, true)?))
        })
        .collect()
}

/// Parses into a map, rejecting unknown and repeated parameters.
pub fn params(text: &str, allowed: &[&str]) -> Result<HashMap<String, String>, String> {
    let mut map = HashMap::new();
    for (k, v) in parse_pairs(text)? {
        if !allowed.contains(&k.as_str()) {
            return Err(format!("unknown parameter: {k}"));
        }
        if map.insert(k.clone(), v).is_some() {
            return Err(format!("parameter given more than once: {k}"));
        }
    }
    Ok(map)
}

// ---------------------------------------------------------------------------
// State helpers
// ---------------------------------------------------------------------------

/// Locks, ignoring poisoning (a panicking test must not break the server).
pub fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Opaque page tokens, each bound to a scope (what is being listed) and the
/// offset where the next page starts.
#[derive(Default)]
pub struct PageTokens {
    cursors: HashMap<String, (String, usize)>,
}

impl PageTokens {
    /// A new token for the page of `scope` starting at `offset`.
    pub fn issue(&mut self, scope: &str, offset: usize) -> String {
        let token = random_alnum(32);
        self.cursors
            .insert(token.clone(), (scope.to_string(), offset));
        token
    }

    /// The offset of a token issued for `scope`; `None` for an unknown token
    /// or one of another scope.
    pub fn offset(&self, token: &str, scope: &str) -> Option<usize> {
        self.cursors
            .get(token)
            .filter(|(s, _)| s == scope)
            .map(|(_, offset)| *offset)
    }

    /// `(start, end, next)`: the `[start, end)` of a listing of `total` items
    /// of `scope` that `token` points to (the first page if `None`), at most
    /// `size` (at least 1) long, and a token for the next page if there is
    /// more. `None` if `token` is unknown or was issued for another scope.
    pub fn page(
        &mut self,
        scope: &str,
        token: Option<&str>,
        size: usize,
        total: usize,
    ) -> Option<(usize, usize, Option<String>)> {
        let start = match token {
            None => 0,
            Some(token) => self.offset(token, scope)?,
        }
        .min(total);
        let end = start.saturating_add(size.max(1)).min(total);
        let next = (end < total).then(|| self.issue(scope, end));
        Some((start, end, next))
    }
}

/// Wall-clock milliseconds that strictly increase from one reading to the
/// next, so that an update always changes a timestamp.
#[derive(Default)]
pub struct Millis {
    last: i64,
}

impl Millis {
    pub fn now(&mut self) -> i64 {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
            .unwrap_or(0);
        let ms = now.max(self.last.saturating_add(1));
        self.last = ms;
        ms
    }
}

/// `2022-02-28T21:42:56.809Z` from milliseconds since the Unix epoch.
pub fn rfc3339_millis(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let millis = ms.rem_euclid(1000);
    let days = secs.div_euclid(86_400);
    let tod = secs.rem_euclid(86_400);
    // Civil date from days since 1970-01-01 (H. Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{millis:03}Z",
        tod / 3600,
        tod % 3600 / 60,
        tod % 60
    )
}

/// `"jane"` -> `"Jane"`.
pub fn capitalize(s: &str) -> String {
    let mut chars = s.chars();
    match chars.next() {
        Some(c) => c.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// Random 64 bits from std's randomly keyed SipHash (no `rand` dependency).
pub fn random_u64() -> u64 {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut hasher = RandomState::new().build_hasher();
    hasher.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    hasher.write_u128(nanos);
    hasher.finish()
}

/// `len` random characters of `alphabet` (which must not be empty).
pub fn random_from(alphabet: &[u8], len: usize) -> String {
    (0..len)
        .map(|_| {
            let i = (random_u64() % alphabet.len().max(1) as u64) as usize;
            char::from(alphabet.get(i).copied().unwrap_or(b'x'))
        })
        .collect()
}

/// `len` random ASCII letters and digits.
pub fn random_alnum(len: usize) -> String {
    random_from(
        b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789",
        len,
    )
}

/// A random UUID-v4-shaped string.
pub fn uuid_like() -> String {
    let hi = random_u64();
    let lo = random_u64();
    format!(
        "{:08x}-{:04x}-4{:03x}-{:04x}-{:012x}",
        hi >> 32,
        (hi >> 16) & 0xffff,
        hi & 0x0fff,
        ((lo >> 48) & 0x3fff) | 0x8000,
        lo & 0xffff_ffff_ffff
    )
}

// ---------------------------------------------------------------------------
// Self-test client
// ---------------------------------------------------------------------------

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
