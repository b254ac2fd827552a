//! The call log and fault injection: [`Call`], [`Fault`] and [`FaultKind`],
//! faults drawn from a seed, interceptors and observers, and the recorder
//! that keeps the log and journal and hands out the faults due.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value;

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

pub(super) type Interceptor = Arc<dyn Fn(&Call) -> Intercept + Send + Sync>;
pub(super) type Observer = Arc<dyn Fn(&Call, Stage) + Send + Sync>;

pub(super) struct RandomFaultState {
    pub(super) spec: RandomFaults,
    pub(super) rng: SeededRng,
}

/// The call log and the pending faults of one server.
#[derive(Default)]
pub(super) struct Recorder {
    pub(super) calls: Vec<(u64, Call)>,
    /// Every call since the server started; [`Server::clear_calls`] does not
    /// clear it (the conformance check reads it when a test ends).
    pub(super) journal: Vec<(u64, Call)>,
    next_seq: u64,
    pub(super) faults: Vec<Fault>,
    pub(super) random: Option<RandomFaultState>,
}

impl Recorder {
    pub(super) fn record(&mut self, call: Call) -> u64 {
        let seq = self.next_seq;
        self.next_seq += 1;
        self.journal.push((seq, call.clone()));
        self.calls.push((seq, call));
        seq
    }

    pub(super) fn finish(&mut self, seq: u64, status: u16) {
        for log in [&mut self.calls, &mut self.journal] {
            // Calls are appended in order: the one to finish is near the end.
            if let Some((_, call)) = log.iter_mut().rev().find(|(s, _)| *s == seq) {
                call.status = status;
            }
        }
    }

    pub(super) fn take_fault(&mut self, method: &str, path: &str) -> Option<FaultKind> {
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
