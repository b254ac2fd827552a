//! The vendors: the one list the API types, the controller, the command-line
//! tools and the access review learn them from.
//!
//! Each row names a vendor's module (`src/api/<module>.rs`,
//! `src/vendor_api/<module>/`, `src/sandbox/<module>/`, and the provider spec's
//! block `spec.<module>`), its [`VendorKind`](crate::api::VendorKind) variant,
//! its grant custom resource and its provider block type. The rows are in the
//! order the command-line tools print vendors in.
//!
//! `vendors!(callback)` expands to `callback! { [rows] }`; `vendors!(callback,
//! extra tokens)` passes the extra tokens after the rows. Each place that needs
//! every vendor writes a small `callback` macro that matches
//! `[$($module:ident $kind:ident $grant:ident $block:ident $title:literal),* $(,)?]`.
//! Adding a vendor is its folders, its API type file and one row here; see
//! `docs/adding-a-vendor.md`.

/// Calls `$then!` with the list of vendors (see the module documentation).
macro_rules! vendors {
    ($then:ident $(, $($extra:tt)*)?) => {
        $then! {
            [
                sigma Sigma SigmaGrant SigmaProvider "Sigma Computing",
                grafana Grafana GrafanaGrant GrafanaProvider "Grafana",
                dremio Dremio DremioGrant DremioProvider "Dremio",
                snowflake Snowflake SnowflakeGrant SnowflakeProvider "Snowflake",
            ]
            $($($extra)*)?
        }
    };
}
pub(crate) use vendors;

#[cfg(test)]
mod tests {
    use std::path::{Path, PathBuf};

    use crate::api::VendorKind;

    /// Source files under `dir`, recursively.
    fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).expect("src is readable") {
            let path = entry.expect("src is readable").path();
            if path.is_dir() {
                sources(&path, out);
            } else if path.extension().is_some_and(|ext| ext == "rs") {
                out.push(path);
            }
        }
    }

    /// `line` without its string literals' contents and its comment.
    fn code_of(line: &str) -> String {
        let mut code = String::new();
        let (mut in_string, mut escaped) = (false, false);
        for (at, c) in line.char_indices() {
            if in_string {
                in_string = escaped || c != '"';
                escaped = !escaped && c == '\\';
            } else if c == '"' {
                in_string = true;
            } else if line[at..].starts_with("//") {
                break;
            } else {
                code.push(c);
            }
        }
        code.to_ascii_lowercase()
    }

    /// Whether `line` names `vendor` in code: the word, or an identifier
    /// starting with it (`SnowflakeGrant`, `snowflake::`), outside comments
    /// and string literals (a Sigma connection's type may be `snowflake`).
    fn names(line: &str, vendor: &str) -> bool {
        let code = code_of(line);
        code.match_indices(vendor).any(|(at, _)| {
            !code[..at]
                .chars()
                .next_back()
                .is_some_and(|before| before.is_ascii_alphanumeric() || before == '_')
        })
    }

    /// Adding a vendor touches only its folders, its API type file and the
    /// list: no other source file names a vendor outside its tests (the
    /// `#[cfg(test)]` part at the end of a file, or a `tests.rs` module) and
    /// comments. The parent
    /// modules declare each folder with one `pub mod` line (and `api` re-exports
    /// its types), as Rust requires; `demo` tells a story with each vendor's
    /// example data, and a new vendor need not be in it.
    #[test]
    fn no_source_file_outside_a_vendor_s_folders_names_it() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let mut files = Vec::new();
        sources(&root.join("src"), &mut files);
        let mut found = Vec::new();
        for vendor in VendorKind::ALL.iter().map(|vendor| vendor.as_str()) {
            let own = [
                root.join(format!("src/api/{vendor}.rs")),
                root.join(format!("src/vendor_api/{vendor}")),
                root.join(format!("src/sandbox/{vendor}")),
                root.join("src/vendors.rs"),
                root.join("src/cli/demo.rs"),
            ];
            let declarations = [
                format!("pub mod {vendor};"),
                format!("pub use {vendor}::*;"),
            ];
            let checked = files.iter().filter(|file| {
                !own.iter().any(|own| file.starts_with(own))
                    && !file.components().any(|part| part.as_os_str() == "tests")
                    && file.file_stem().is_some_and(|stem| stem != "tests")
            });
            for file in checked {
                let text = std::fs::read_to_string(file).expect("source is readable");
                let code = text.split("\n#[cfg(test)]").next().unwrap_or_default();
                for (number, line) in code.lines().enumerate() {
                    if names(line, vendor) && !declarations.contains(&line.trim().to_string()) {
                        let shown = file.strip_prefix(root).unwrap_or(file).display();
                        found.push(format!("{shown}:{}: {}", number + 1, line.trim()));
                    }
                }
            }
        }
        assert!(
            found.is_empty(),
            "vendor names outside their folders:\n{}",
            found.join("\n")
        );
    }
}
