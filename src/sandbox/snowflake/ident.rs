//! Identifiers: the emulator's own reading of Snowflake's rules (unquoted
//! upper-cased, quoted kept exactly with `""` for a quote).

fn plain_upper(text: &str) -> bool {
    let mut chars = text.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_uppercase() || c == '_')
        && chars.all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_' || c == '$')
}

fn quote(text: &str) -> String {
    if plain_upper(text) {
        text.to_string()
    } else {
        format!("\"{}\"", text.replace('"', "\"\""))
    }
}

/// The parts of a (dotted) identifier, each as Snowflake shows it.
pub fn ident(text: &str) -> Option<Vec<String>> {
    let mut parts = Vec::new();
    let chars: Vec<char> = text.chars().collect();
    let mut i = 0;
    loop {
        if chars.get(i) == Some(&'"') {
            i += 1;
            let mut inner = String::new();
            loop {
                match chars.get(i) {
                    Some('"') if chars.get(i + 1) == Some(&'"') => {
                        inner.push('"');
                        i += 2;
                    }
                    Some('"') => {
                        i += 1;
                        break;
                    }
                    Some(c) => {
                        inner.push(*c);
                        i += 1;
                    }
                    None => return None,
                }
            }
            if inner.is_empty() {
                return None;
            }
            parts.push(quote(&inner));
        } else {
            let start = i;
            while let Some(c) = chars.get(i) {
                if *c == '.' {
                    break;
                }
                if !(c.is_ascii_alphanumeric() || *c == '_' || *c == '$') {
                    return None;
                }
                i += 1;
            }
            let bare: String = chars[start..i].iter().collect();
            if bare.is_empty() || bare.starts_with(|c: char| c.is_ascii_digit() || c == '$') {
                return None;
            }
            parts.push(bare.to_ascii_uppercase());
        }
        match chars.get(i) {
            None => return Some(parts),
            Some('.') => i += 1,
            Some(_) => return None,
        }
    }
}

pub(super) fn one(text: &str) -> Option<String> {
    match ident(text)?.as_slice() {
        [part] => Some(part.clone()),
        _ => None,
    }
}
