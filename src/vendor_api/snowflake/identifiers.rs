//! Snowflake identifiers, pure.
//!
//! An unquoted part (`sales`) is case-insensitive: it is compared and sent
//! upper-cased (`SALES`). A quoted part (`"My Role"`) keeps its case and is
//! sent with its quotes, an inner `"` doubled. A dotted name (`DB.SCHEMA.TABLE`)
//! is split on the dots outside quotes, so `"a.b".C` has two parts. A quoted
//! part whose text is a valid unquoted upper-case identifier (`"SALES"`) is the
//! same object as the unquoted one, so it is normalised to it.

use std::fmt;

/// One part of a dotted identifier.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Part {
    /// The identifier's exact text (upper-cased when unquoted).
    pub text: String,
    /// Whether it has to be quoted.
    pub quoted: bool,
}

impl Part {
    /// A part from its exact text (quoted when it needs to be).
    pub fn exact(text: &str) -> Part {
        Part {
            text: text.to_string(),
            quoted: !is_plain_upper(text),
        }
    }

    /// The part as Snowflake is sent it: upper-case, or quoted with inner quotes doubled.
    pub fn sql(&self) -> String {
        if self.quoted {
            format!("\"{}\"", self.text.replace('"', "\"\""))
        } else {
            self.text.clone()
        }
    }
}

impl fmt::Display for Part {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.sql())
    }
}

/// A possibly dotted identifier, normalised.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Name(pub Vec<Part>);

impl Name {
    /// The parts.
    pub fn parts(&self) -> &[Part] {
        &self.0
    }

    /// The name as sent to Snowflake (`SALES."My Schema"`).
    pub fn sql(&self) -> String {
        self.0.iter().map(Part::sql).collect::<Vec<_>>().join(".")
    }
}

impl fmt::Display for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.sql())
    }
}

/// Why an identifier cannot be read.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("invalid Snowflake identifier {text:?}: {problem}")]
pub struct IdentifierError {
    /// The text.
    pub text: String,
    /// What is wrong.
    pub problem: &'static str,
}

/// Whether `text` is an unquoted identifier that needs no quotes as it is.
fn is_plain_upper(text: &str) -> bool {
    let mut chars = text.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_uppercase() || c == '_')
        && chars.all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_' || c == '$')
}

fn is_unquoted(text: &str) -> bool {
    let mut chars = text.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '$')
}

/// Parses a dotted identifier as written in a resource (`sales."My Schema".t`).
pub fn parse(text: &str) -> Result<Name, IdentifierError> {
    let error = |problem| IdentifierError {
        text: text.to_string(),
        problem,
    };
    let mut parts = Vec::new();
    let mut chars = text.chars().peekable();
    loop {
        if chars.peek() == Some(&'"') {
            chars.next();
            let mut inner = String::new();
            loop {
                match chars.next() {
                    Some('"') if chars.peek() == Some(&'"') => {
                        chars.next();
                        inner.push('"');
                    }
                    Some('"') => break,
                    Some(c) => inner.push(c),
                    None => return Err(error("a quoted part is not closed")),
                }
            }
            if inner.is_empty() {
                return Err(error("a quoted part is empty"));
            }
            parts.push(Part::exact(&inner));
        } else {
            let mut bare = String::new();
            while let Some(&c) = chars.peek() {
                if c == '.' || c == '"' {
                    break;
                }
                bare.push(c);
                chars.next();
            }
            if bare.is_empty() {
                return Err(error("a part is empty"));
            }
            if !is_unquoted(&bare) {
                return Err(error(
                    "an unquoted part may only hold letters, digits, _ and $, and starts with a letter or _",
                ));
            }
            parts.push(Part {
                text: bare.to_ascii_uppercase(),
                quoted: false,
            });
        }
        match chars.next() {
            None => return Ok(Name(parts)),
            Some('.') => {}
            Some(_) => {
                return Err(error(
                    "a quoted part is followed by something else than a dot",
                ));
            }
        }
    }
}

/// Reads a name as a Snowflake listing shows it: identifier text where it parses
/// (quoted where needed, as `SHOW GRANTS` prints names); otherwise the whole
/// text taken exactly as one part (unverified: a listing that prints raw names).
pub fn parse_listed(text: &str) -> Name {
    parse(text).unwrap_or_else(|_| Name(vec![Part::exact(text)]))
}

/// Reads one part as a listing shows it (`name`, `database`, `schema` fields).
pub fn parse_listed_part(text: &str) -> Part {
    match parse(text) {
        Ok(Name(mut parts)) if parts.len() == 1 => parts.remove(0),
        _ => Part::exact(text),
    }
}

/// Percent-encodes one URL path segment (quotes, spaces, `/`, `%` and the like).
pub fn encode_segment(segment: &str) -> String {
    const SEGMENT: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
        .remove(b'-')
        .remove(b'_')
        .remove(b'.')
        .remove(b'~')
        .remove(b'$');
    percent_encoding::utf8_percent_encode(segment, SEGMENT).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sql(text: &str) -> String {
        parse(text)
            .map(|name| name.sql())
            .unwrap_or_else(|e| e.to_string())
    }

    #[test]
    fn unquoted_parts_are_upper_cased() {
        assert_eq!(sql("sales"), "SALES");
        assert_eq!(sql("Sales.Public.orders_2$"), "SALES.PUBLIC.ORDERS_2$");
        assert_eq!(parse("analyst"), parse("ANALYST"));
    }

    #[test]
    fn quoted_parts_keep_their_case_and_quotes() {
        assert_eq!(sql(r#""My Role""#), r#""My Role""#);
        assert_eq!(sql(r#"sales."My Schema".t"#), r#"SALES."My Schema".T"#);
        assert_ne!(parse(r#""sales""#), parse("sales"));
        // A quoted part that needs no quotes is the unquoted identifier.
        assert_eq!(parse(r#""SALES""#), parse("sales"));
        assert_eq!(sql(r#""SALES""#), "SALES");
    }

    #[test]
    fn dots_inside_quotes_do_not_split() {
        let name = parse(r#""a.b".C"#).unwrap();
        assert_eq!(name.parts().len(), 2);
        assert_eq!(name.parts()[0].text, "a.b");
        assert!(name.parts()[0].quoted);
        assert_eq!(name.sql(), r#""a.b".C"#);
    }

    #[test]
    fn doubled_quotes_are_one_quote_inside() {
        let name = parse(r#""say ""hi""".x"#).unwrap();
        assert_eq!(name.parts()[0].text, r#"say "hi""#);
        assert_eq!(name.sql(), r#""say ""hi""".X"#);
    }

    #[test]
    fn mixed_case_round_trips() {
        for text in [r#"DB."MixedCase".T"#, r#""lower"."Upper Space""#, "A.B.C"] {
            let name = parse(text).unwrap();
            assert_eq!(parse(&name.sql()).unwrap(), name, "{text}");
        }
    }

    #[test]
    fn empty_and_broken_parts_are_refused() {
        for text in [
            "", ".", "a.", ".a", "a..b", r#""""#, r#""open"#, r#""a"b"#, "1abc", "a b", "a-b",
        ] {
            assert!(parse(text).is_err(), "{text:?} should be refused");
        }
    }

    #[test]
    fn listed_names_fall_back_to_exact_text() {
        assert_eq!(parse_listed("SALES.PUBLIC").sql(), "SALES.PUBLIC");
        assert_eq!(parse_listed(r#""My DB".PUBLIC"#).sql(), r#""My DB".PUBLIC"#);
        assert_eq!(parse_listed("my db").sql(), r#""my db""#);
        assert_eq!(parse_listed_part("My Schema").sql(), r#""My Schema""#);
        assert_eq!(parse_listed_part("PUBLIC").sql(), "PUBLIC");
    }

    #[test]
    fn path_segments_are_percent_encoded() {
        assert_eq!(encode_segment(r#""My Role""#), "%22My%20Role%22");
        assert_eq!(encode_segment("SALES.PUBLIC"), "SALES.PUBLIC");
        assert_eq!(encode_segment("A/B%"), "A%2FB%25");
    }
}
