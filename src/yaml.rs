//! YAML as Kubernetes tools read it: which plain (unquoted) scalars a YAML 1.1
//! reader resolves differently from a YAML 1.2 one, where a YAML text holds such
//! scalars, and the YAML writer of everything the binary prints for `kubectl`
//! (`grant-operator crd`, `export`), which quotes them.
//!
//! kubectl, Helm and Argo CD read YAML through `sigs.k8s.io/yaml` (go-yaml v2),
//! which resolves plain scalars by the YAML 1.1 type repository
//! (<https://yaml.org/type/>), while YAML 1.2 readers (and our own
//! `serde_norway`) use the 1.2 core schema (YAML 1.2.2, section 10.3,
//! <https://yaml.org/spec/1.2.2/#103-core-schema>). A CRD property written
//! `on:` reaches the API server as the key `"true"`.
//!
//! YAML 1.1 implicit types compared here, each with its regular expression as
//! the type repository gives it:
//! - bool (<https://yaml.org/type/bool.html>): `y|Y|yes|Yes|YES|n|N|no|No|NO|
//!   true|True|TRUE|false|False|FALSE|on|On|ON|off|Off|OFF`. 1.2 core knows
//!   only `true|True|TRUE|false|False|FALSE`, which read the same in both.
//! - int (<https://yaml.org/type/int.html>): `[-+]?0b[0-1_]+` (binary),
//!   `[-+]?0[0-7_]+` (octal: `0755` is 493 in 1.1 and 755 in 1.2),
//!   `[-+]?(0|[1-9][0-9_]*)` (decimal, `_` ignored: `1_000` is a string in
//!   1.2), `[-+]?0x[0-9a-fA-F_]+` (hexadecimal), `[-+]?[1-9][0-9_]*(:[0-5]?[0-9])+`
//!   (base 60: `1:30` is 90 in 1.1, a string in 1.2). 1.2 core: `[-+]?[0-9]+`,
//!   `0o[0-7]+`, `0x[0-9a-fA-F]+` (so `0o17` and `08` are numbers only in 1.2).
//! - float (<https://yaml.org/type/float.html>):
//!   `[-+]?([0-9][0-9_]*)?\.[0-9.]*([eE][-+][0-9]+)?` (base 10; the page's own
//!   example `685.230_15e+03` has `_` after the point, so `_` is allowed there
//!   too; as written, `[0-9.]*` also takes `0.1.0` and `127.0.0.1`, which
//!   PyYAML and go-yaml read as strings but a reader following the page does
//!   not, so they count as read differently: quote versions and addresses), `[-+]?[0-9][0-9_]*(:[0-5]?[0-9])+\.[0-9_]*` (base 60),
//!   `[-+]?\.(inf|Inf|INF)`, `\.(nan|NaN|NAN)`. 1.2 core:
//!   `[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?` and the same
//!   infinities and NaNs; so `1e3` is a number only in 1.2.
//! - null (<https://yaml.org/type/null.html>): `~|null|Null|NULL|` (empty),
//!   the same set as 1.2 core.
//! - merge (<https://yaml.org/type/merge.html>): `<<`, a merge key in 1.1, a
//!   string in 1.2.
//! - value (<https://yaml.org/type/value.html>): `=`, the default-value key in
//!   1.1, a string in 1.2.
//! - timestamp (<https://yaml.org/type/timestamp.html>):
//!   `[0-9]{4}-[0-9]{2}-[0-9]{2}` and the date-time form
//!   `[0-9]{4}-[0-9]{1,2}-[0-9]{1,2}([Tt]|[ \t]+)[0-9]{1,2}:[0-9]{2}:[0-9]{2}(\.[0-9]*)?([ \t]*(Z|[-+][0-9]{1,2}(:[0-9]{2})?))?`
//!   (the page's example `2001-12-14 21:59:43.10 -5` puts a space before the
//!   offset too);
//!   a string in 1.2. (go-yaml v2 gives such a value back as its text when it
//!   decodes into an untyped value, as `sigs.k8s.io/yaml` does, but other 1.1
//!   readers such as PyYAML make it a date.)
//!
//! The type repository's `yaml` type (`!`, `&`, `*`) cannot be a plain scalar
//! (each is an indicator), and `str` is what everything else resolves to in
//! both versions. Two numbers compare equal when both versions read the same
//! value of the same type (`0x1F`, `+12`, `1.5`, `.inf`); a number too large
//! for 128 bits counts as read differently.
//!
//! Only plain scalars without a tag are resolved; quoted, block (`|`, `>`) and
//! tagged scalars are strings (or what their tag says) in both versions.

use std::sync::LazyLock;

use regex::Regex;
use saphyr_parser::{Event, Parser, ScalarStyle};
use serde::Serialize;

/// What a plain scalar resolves to.
#[derive(Clone, Debug, PartialEq)]
enum Reading {
    Null,
    Bool(bool),
    /// `None`: too large for 128 bits.
    Int(Option<i128>),
    Float(Float),
    Timestamp,
    Merge,
    Value,
    Str,
}

#[derive(Clone, Copy, Debug)]
enum Float {
    Finite(f64),
    Infinite {
        negative: bool,
    },
    Nan,
    /// Matches the float pattern but is not a number (`1.2.3` matches YAML
    /// 1.1's base-10 pattern).
    Unreadable,
}

impl PartialEq for Float {
    fn eq(&self, other: &Float) -> bool {
        match (self, other) {
            (Float::Finite(a), Float::Finite(b)) => a.to_bits() == b.to_bits(),
            (Float::Infinite { negative: a }, Float::Infinite { negative: b }) => a == b,
            (Float::Nan, Float::Nan) => true,
            _ => false,
        }
    }
}

impl std::fmt::Display for Reading {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Reading::Null => f.write_str("null"),
            Reading::Bool(b) => write!(f, "the boolean {b}"),
            Reading::Int(Some(i)) => write!(f, "the integer {i}"),
            Reading::Int(None) => f.write_str("an integer too large to compare"),
            Reading::Float(Float::Finite(x)) => write!(f, "the float {x:?}"),
            Reading::Float(Float::Infinite { negative: true }) => f.write_str("the float -inf"),
            Reading::Float(Float::Infinite { negative: false }) => f.write_str("the float +inf"),
            Reading::Float(Float::Nan) => f.write_str("the float NaN"),
            Reading::Float(Float::Unreadable) => f.write_str("a float"),
            Reading::Timestamp => f.write_str("a timestamp"),
            Reading::Merge => f.write_str("a merge key"),
            Reading::Value => f.write_str("the default-value key"),
            Reading::Str => f.write_str("a string"),
        }
    }
}

fn regex(pattern: &str) -> Regex {
    // The patterns are constants of this file; a test compiles every one.
    Regex::new(pattern).unwrap_or_else(|error| panic!("pattern {pattern}: {error}"))
}

static Y11_BOOL_TRUE: LazyLock<Regex> =
    LazyLock::new(|| regex(r"^(?:y|Y|yes|Yes|YES|true|True|TRUE|on|On|ON)$"));
static Y11_BOOL_FALSE: LazyLock<Regex> =
    LazyLock::new(|| regex(r"^(?:n|N|no|No|NO|false|False|FALSE|off|Off|OFF)$"));
static Y11_INT_BINARY: LazyLock<Regex> = LazyLock::new(|| regex(r"^[-+]?0b[0-1_]+$"));
static Y11_INT_OCTAL: LazyLock<Regex> = LazyLock::new(|| regex(r"^[-+]?0[0-7_]+$"));
static Y11_INT_DECIMAL: LazyLock<Regex> = LazyLock::new(|| regex(r"^[-+]?(?:0|[1-9][0-9_]*)$"));
static Y11_INT_HEX: LazyLock<Regex> = LazyLock::new(|| regex(r"^[-+]?0x[0-9a-fA-F_]+$"));
static Y11_INT_BASE60: LazyLock<Regex> =
    LazyLock::new(|| regex(r"^[-+]?[1-9][0-9_]*(?::[0-5]?[0-9])+$"));
static Y11_FLOAT_BASE10: LazyLock<Regex> =
    LazyLock::new(|| regex(r"^[-+]?(?:[0-9][0-9_]*)?\.[0-9._]*(?:[eE][-+][0-9]+)?$"));
static Y11_FLOAT_BASE60: LazyLock<Regex> =
    LazyLock::new(|| regex(r"^[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+\.[0-9_]*$"));
static Y11_FLOAT_INF: LazyLock<Regex> = LazyLock::new(|| regex(r"^[-+]?\.(?:inf|Inf|INF)$"));
static Y11_FLOAT_NAN: LazyLock<Regex> = LazyLock::new(|| regex(r"^\.(?:nan|NaN|NAN)$"));
static Y11_TIMESTAMP: LazyLock<Regex> = LazyLock::new(|| {
    regex(concat!(
        r"^(?:[0-9]{4}-[0-9]{2}-[0-9]{2}",
        r"|[0-9]{4}-[0-9]{1,2}-[0-9]{1,2}(?:[Tt]|[ \t]+)[0-9]{1,2}:[0-9]{2}:[0-9]{2}",
        r"(?:\.[0-9]*)?(?:[ \t]*(?:Z|[-+][0-9]{1,2}(?::[0-9]{2})?))?)$"
    ))
});
static NULL: LazyLock<Regex> = LazyLock::new(|| regex(r"^(?:~|null|Null|NULL|)$"));
static Y12_BOOL_TRUE: LazyLock<Regex> = LazyLock::new(|| regex(r"^(?:true|True|TRUE)$"));
static Y12_BOOL_FALSE: LazyLock<Regex> = LazyLock::new(|| regex(r"^(?:false|False|FALSE)$"));
static Y12_INT_DECIMAL: LazyLock<Regex> = LazyLock::new(|| regex(r"^[-+]?[0-9]+$"));
static Y12_INT_OCTAL: LazyLock<Regex> = LazyLock::new(|| regex(r"^0o[0-7]+$"));
static Y12_INT_HEX: LazyLock<Regex> = LazyLock::new(|| regex(r"^0x[0-9a-fA-F]+$"));
static Y12_FLOAT: LazyLock<Regex> =
    LazyLock::new(|| regex(r"^[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?$"));
static Y12_FLOAT_INF: LazyLock<Regex> = LazyLock::new(|| regex(r"^[-+]?\.(?:inf|Inf|INF)$"));
static Y12_FLOAT_NAN: LazyLock<Regex> = LazyLock::new(|| regex(r"^\.(?:nan|NaN|NAN)$"));

/// `-`/`+` sign and the rest.
fn split_sign(text: &str) -> (bool, &str) {
    match text.as_bytes().first() {
        Some(b'-') => (true, &text[1..]),
        Some(b'+') => (false, &text[1..]),
        _ => (false, text),
    }
}

/// Digits (`_` skipped) in `radix`, signed.
fn int_in(negative: bool, digits: &str, radix: u32) -> Reading {
    let mut value: i128 = 0;
    for c in digits.chars().filter(|c| *c != '_') {
        let Some(digit) = c.to_digit(radix) else {
            return Reading::Int(None);
        };
        let Some(next) = value
            .checked_mul(i128::from(radix))
            .and_then(|v| v.checked_add(i128::from(digit)))
        else {
            return Reading::Int(None);
        };
        value = next;
    }
    Reading::Int(Some(if negative { -value } else { value }))
}

/// `a:b:c` in base 60 (`_` skipped in the first part), signed.
fn base60(negative: bool, text: &str) -> Option<f64> {
    let mut value = 0f64;
    for part in text.split(':') {
        let part: String = part.chars().filter(|c| *c != '_').collect();
        value = value * 60.0 + part.parse::<f64>().ok()?;
    }
    Some(if negative { -value } else { value })
}

/// How a YAML 1.1 reader resolves a plain scalar.
fn yaml11(plain: &str) -> Reading {
    if NULL.is_match(plain) {
        return Reading::Null;
    }
    if Y11_BOOL_TRUE.is_match(plain) {
        return Reading::Bool(true);
    }
    if Y11_BOOL_FALSE.is_match(plain) {
        return Reading::Bool(false);
    }
    if plain == "<<" {
        return Reading::Merge;
    }
    if plain == "=" {
        return Reading::Value;
    }
    let (negative, unsigned) = split_sign(plain);
    if Y11_INT_BINARY.is_match(plain) {
        return int_in(negative, &unsigned[2..], 2);
    }
    if Y11_INT_HEX.is_match(plain) {
        return int_in(negative, &unsigned[2..], 16);
    }
    if Y11_INT_OCTAL.is_match(plain) {
        return int_in(negative, &unsigned[1..], 8);
    }
    if Y11_INT_DECIMAL.is_match(plain) {
        return int_in(negative, unsigned, 10);
    }
    if Y11_INT_BASE60.is_match(plain) {
        return match base60(negative, unsigned) {
            // Whole numbers of at most 2^53 are exact in an f64.
            Some(value) if value.abs() < 9.0e15 => Reading::Int(Some(value as i128)),
            _ => Reading::Int(None),
        };
    }
    if Y11_FLOAT_INF.is_match(plain) {
        return Reading::Float(Float::Infinite { negative });
    }
    if Y11_FLOAT_NAN.is_match(plain) {
        return Reading::Float(Float::Nan);
    }
    if Y11_FLOAT_BASE60.is_match(plain) {
        return Reading::Float(base60(negative, unsigned).map_or(Float::Unreadable, Float::Finite));
    }
    if Y11_FLOAT_BASE10.is_match(plain) {
        let digits: String = plain.chars().filter(|c| *c != '_').collect();
        return Reading::Float(
            digits
                .parse::<f64>()
                .map_or(Float::Unreadable, Float::Finite),
        );
    }
    if Y11_TIMESTAMP.is_match(plain) {
        return Reading::Timestamp;
    }
    Reading::Str
}

/// How a YAML 1.2 core-schema reader resolves a plain scalar.
fn yaml12(plain: &str) -> Reading {
    if NULL.is_match(plain) {
        return Reading::Null;
    }
    if Y12_BOOL_TRUE.is_match(plain) {
        return Reading::Bool(true);
    }
    if Y12_BOOL_FALSE.is_match(plain) {
        return Reading::Bool(false);
    }
    let (negative, unsigned) = split_sign(plain);
    if Y12_INT_DECIMAL.is_match(plain) {
        return int_in(negative, unsigned, 10);
    }
    if Y12_INT_OCTAL.is_match(plain) {
        return int_in(false, &plain[2..], 8);
    }
    if Y12_INT_HEX.is_match(plain) {
        return int_in(false, &plain[2..], 16);
    }
    if Y12_FLOAT_INF.is_match(plain) {
        return Reading::Float(Float::Infinite { negative });
    }
    if Y12_FLOAT_NAN.is_match(plain) {
        return Reading::Float(Float::Nan);
    }
    if Y12_FLOAT.is_match(plain) {
        return Reading::Float(
            plain
                .parse::<f64>()
                .map_or(Float::Unreadable, Float::Finite),
        );
    }
    Reading::Str
}

/// Why a YAML 1.1 reader reads this plain scalar differently from a YAML 1.2
/// one (`"YAML 1.1 reads the boolean true, YAML 1.2 a string"`), or `None`
/// when both read the same.
pub fn yaml11_difference(plain: &str) -> Option<String> {
    let old = yaml11(plain);
    let new = yaml12(plain);
    let same = match (&old, &new) {
        (Reading::Int(Some(a)), Reading::Int(Some(b))) => a == b,
        (Reading::Int(None), _) | (_, Reading::Int(None)) => false,
        (Reading::Float(Float::Unreadable), _) | (_, Reading::Float(Float::Unreadable)) => false,
        (a, b) => a == b,
    };
    (!same).then(|| format!("YAML 1.1 reads {old}, YAML 1.2 {new}"))
}

/// A plain scalar that YAML 1.1 and 1.2 read differently.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ambiguous {
    /// Line (1-based) in the text given.
    pub line: usize,
    /// Column (1-based, in characters).
    pub column: usize,
    /// The scalar as written.
    pub text: String,
    /// How the two versions read it.
    pub why: String,
    /// Character range of the scalar in the text.
    start: usize,
    end: usize,
}

/// A YAML text that does not parse.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("YAML does not parse at line {line}, column {column}: {message}")]
pub struct ParseError {
    /// Line (1-based).
    pub line: usize,
    /// Column (1-based).
    pub column: usize,
    /// The parser's message.
    pub message: String,
}

/// Every plain, untagged scalar (key or value) of a YAML stream that a YAML 1.1
/// reader reads differently from a YAML 1.2 one, in order.
pub fn ambiguous_plain_scalars(text: &str) -> Result<Vec<Ambiguous>, ParseError> {
    let mut found = Vec::new();
    for next in Parser::new_from_str(text) {
        let (event, span) = next.map_err(|error| ParseError {
            line: error.marker().line(),
            column: error.marker().col() + 1,
            message: error.info().to_string(),
        })?;
        if let Event::Scalar(value, ScalarStyle::Plain, _, None) = event
            && let Some(why) = yaml11_difference(&value)
        {
            found.push(Ambiguous {
                line: span.start.line(),
                column: span.start.col() + 1,
                text: value.into_owned(),
                why,
                start: span.start.index(),
                end: span.end.index(),
            });
        }
    }
    Ok(found)
}

/// Why [`to_kubernetes_yaml`] failed.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    /// The value does not serialize.
    #[error("cannot write YAML: {0}")]
    Serialize(#[from] serde_norway::Error),
    /// The written text does not parse back (a bug of the writer).
    #[error("the YAML written does not parse back: {0}")]
    Parse(#[from] ParseError),
    /// A scalar found by the parser is not where it says (a bug of the parser).
    #[error("the YAML written holds {0:?} at an unexpected place")]
    Misplaced(String),
}

/// `value` as YAML that every YAML 1.1 and 1.2 reader reads the same way:
/// `serde_norway`'s output with each plain scalar that YAML 1.1 would read
/// differently (keys and values) written double-quoted.
pub fn to_kubernetes_yaml<T: Serialize + ?Sized>(value: &T) -> Result<String, WriteError> {
    let text = serde_norway::to_string(value)?;
    quote_ambiguous(&text)
}

/// `text` with every plain scalar that YAML 1.1 would read differently from
/// YAML 1.2 double-quoted.
pub fn quote_ambiguous(text: &str) -> Result<String, WriteError> {
    let found = ambiguous_plain_scalars(text)?;
    if found.is_empty() {
        return Ok(text.to_string());
    }
    // The parser counts characters; slicing needs bytes.
    let mut offsets: Vec<usize> = text.char_indices().map(|(i, _)| i).collect();
    offsets.push(text.len());
    let byte = |index: usize| offsets.get(index).copied();
    let mut out = String::with_capacity(text.len() + 2 * found.len());
    let mut copied = 0;
    for scalar in &found {
        let (Some(start), Some(end)) = (byte(scalar.start), byte(scalar.end)) else {
            return Err(WriteError::Misplaced(scalar.text.clone()));
        };
        if start < copied || text.get(start..end) != Some(scalar.text.as_str()) {
            return Err(WriteError::Misplaced(scalar.text.clone()));
        }
        out.push_str(&text[copied..start]);
        out.push('"');
        for c in scalar.text.chars() {
            if matches!(c, '"' | '\\') {
                out.push('\\');
            }
            out.push(c);
        }
        out.push('"');
        copied = end;
    }
    out.push_str(&text[copied..]);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn differs(plain: &str) -> bool {
        yaml11_difference(plain).is_some()
    }

    #[test]
    fn yaml11_booleans_differ_except_true_and_false() {
        for word in [
            "y", "Y", "yes", "Yes", "YES", "n", "N", "no", "No", "NO", "on", "On", "ON", "off",
            "Off", "OFF",
        ] {
            assert!(differs(word), "{word}");
        }
        for word in ["true", "True", "TRUE", "false", "False", "FALSE"] {
            assert!(!differs(word), "{word}");
        }
        // Other spellings are strings in both.
        for word in ["oN", "yES", "nO", "onion", "yesterday"] {
            assert!(!differs(word), "{word}");
        }
    }

    #[test]
    fn numbers_differ_where_the_two_schemas_disagree() {
        // YAML 1.1 only, or another value.
        for text in [
            "0755",
            "-0755",
            "08",
            "1_000",
            "0b1010",
            "-0b1",
            "0x_0A",
            "-0x1A",
            "1:30",
            "190:20:30",
            "1:30.5",
            "190:20:30.15",
            "685.230_15e+03",
            "1e3",
            "1.0e3",
            "0o17",
            // The base-10 float pattern as written (`\.[0-9.]*`) takes these too.
            "1.2.3",
            "0.1.0",
            "127.0.0.1",
        ] {
            assert!(differs(text), "{text}");
        }
        // The same number in both, or a string in both.
        for text in [
            "0",
            "00",
            "-0",
            "+12",
            "42",
            "0x1F",
            "1.5",
            "-1.5",
            ".5",
            "1.",
            "6.8523015e+5",
            ".inf",
            "-.Inf",
            ".NaN",
            "1.0.0-beta",
            "v1",
            "10m",
            "5s",
            "1h30m",
            "0.0.0.0:8080",
            "1:3a",
            "a.b",
        ] {
            assert!(!differs(text), "{text}");
        }
        assert_eq!(
            yaml11_difference("0755").as_deref(),
            Some("YAML 1.1 reads the integer 493, YAML 1.2 the integer 755")
        );
        assert_eq!(
            yaml11_difference("1:30").as_deref(),
            Some("YAML 1.1 reads the integer 90, YAML 1.2 a string")
        );
    }

    #[test]
    fn null_merge_value_and_timestamps() {
        for text in ["~", "null", "Null", "NULL", ""] {
            assert!(!differs(text), "{text:?}");
        }
        for text in [
            "<<",
            "=",
            "2001-12-14",
            "2001-12-14t21:59:43.10-05:00",
            "2001-12-14 21:59:43.10 -5",
            "2001-12-15T02:59:43.1Z",
        ] {
            assert!(differs(text), "{text}");
        }
        assert!(!differs("2001-12"), "a year and month is a string in both");
    }

    #[test]
    fn finds_plain_keys_and_values_with_their_place() {
        let text = "a: on\n\"on\": 1\nlist: [off, 'no', \"yes\", 0755]\non:\n  - <<\n  - !!str yes\n  - |\n    no\n";
        let found = ambiguous_plain_scalars(text).unwrap();
        let places: Vec<(usize, usize, &str)> = found
            .iter()
            .map(|a| (a.line, a.column, a.text.as_str()))
            .collect();
        assert_eq!(
            places,
            vec![
                (1, 4, "on"),
                (3, 8, "off"),
                (3, 26, "0755"),
                (4, 1, "on"),
                (5, 5, "<<"),
            ]
        );
    }

    #[test]
    fn a_text_that_does_not_parse_is_an_error() {
        let error = ambiguous_plain_scalars("a: [b\n").unwrap_err();
        assert!(error.line >= 1, "{error}");
    }

    #[test]
    fn the_writer_quotes_a_yaml11_key_and_value() {
        #[derive(Serialize)]
        struct Schema {
            properties: std::collections::BTreeMap<String, String>,
            required: Vec<String>,
        }
        let schema = Schema {
            properties: [
                ("on".to_string(), "yes".to_string()),
                ("mode".to_string(), "1:30".to_string()),
                ("plain".to_string(), "value".to_string()),
            ]
            .into_iter()
            .collect(),
            required: vec!["on".into(), "plain".into(), "0755".into(), "Off".into()],
        };
        let yaml = to_kubernetes_yaml(&schema).unwrap();
        assert_eq!(
            yaml,
            "properties:\n  mode: \"1:30\"\n  \"on\": \"yes\"\n  plain: value\nrequired:\n- \"on\"\n- plain\n- '0755'\n- \"Off\"\n"
        );
        assert!(ambiguous_plain_scalars(&yaml).unwrap().is_empty());
        // It reads back as the same strings.
        let back: serde_json::Value = serde_norway::from_str(&yaml).unwrap();
        assert_eq!(back["properties"]["on"], "yes");
        assert_eq!(back["required"][3], "Off");
    }

    #[test]
    fn quoting_keeps_text_around_non_ascii_characters() {
        let text = "é: on\nü: [n, ok]\n";
        assert_eq!(
            quote_ambiguous(text).unwrap(),
            "é: \"on\"\nü: [\"n\", ok]\n"
        );
    }
}
