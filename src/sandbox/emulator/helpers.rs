//! State helpers: locking, page tokens, millisecond clocks and timestamps,
//! and random ids.

use std::collections::HashMap;
use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::{SystemTime, UNIX_EPOCH};

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
