//! The outputs made here: the table for people and CSV (RFC 4180). The third,
//! JSON, is the [`Report`] serialized as it is (its fields are the documented
//! shape).

use super::report::{Report, State};

fn csv_field(text: &str) -> String {
    if text.contains([',', '"', '\r', '\n']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text.to_string()
    }
}

/// The columns of `-o csv`, in order.
pub const CSV_HEADER: [&str; 11] = [
    "vendor",
    "provider",
    "target_id",
    "target_name",
    "grantee_id",
    "grantee_name",
    "permission",
    "state",
    "resources",
    "expires_at",
    "detail",
];

/// The review as CSV (RFC 4180: a header row, CRLF line ends, fields quoted
/// where they need it): one line per row, then one line per thing that could
/// not be read, with the state `error`. Resources are separated by spaces.
pub fn render_csv(report: &Report) -> String {
    let mut out = String::new();
    let mut line = |fields: [&str; 11]| {
        let fields: Vec<String> = fields.iter().map(|field| csv_field(field)).collect();
        out.push_str(&fields.join(","));
        out.push_str("\r\n");
    };
    line(CSV_HEADER);
    for row in &report.rows {
        let resources = row.resources.join(" ");
        line([
            row.vendor,
            &row.provider,
            row.target.id.as_deref().unwrap_or_default(),
            row.target.name.as_deref().unwrap_or_default(),
            row.grantee.id.as_deref().unwrap_or_default(),
            row.grantee.name.as_deref().unwrap_or_default(),
            &row.permission,
            row.state.as_str(),
            &resources,
            row.expires_at.as_deref().unwrap_or_default(),
            &row.detail,
        ]);
    }
    for error in &report.errors {
        let resources = error.resources.join(" ");
        let detail = format!("{}: {}", error.reason, error.message);
        line([
            error.vendor,
            error.provider.as_deref().unwrap_or_default(),
            error.target.as_deref().unwrap_or_default(),
            "",
            "",
            "",
            "",
            "error",
            &resources,
            "",
            &detail,
        ]);
    }
    out
}

/// The review as a table for people.
pub fn render_table(report: &Report) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    let header = [
        "VENDOR",
        "PROVIDER",
        "TARGET",
        "GRANTEE",
        "PERMISSION",
        "STATE",
        "RESOURCES",
        "DETAIL",
    ];
    let cells: Vec<[String; 8]> = report
        .rows
        .iter()
        .map(|row| {
            let detail = match (&row.expires_at, row.state) {
                (Some(at), State::Expiring) => format!("expires {at}"),
                _ => row.detail.clone(),
            };
            [
                row.vendor.to_string(),
                row.provider.clone(),
                row.target.label(),
                row.grantee.label(),
                row.permission.clone(),
                row.state.as_str().to_string(),
                if row.resources.is_empty() {
                    "-".to_string()
                } else {
                    row.resources.join(", ")
                },
                detail,
            ]
        })
        .collect();
    if !cells.is_empty() {
        let mut widths = header.map(str::len);
        for row in &cells {
            for (width, cell) in widths.iter_mut().zip(row) {
                *width = (*width).max(cell.chars().count());
            }
        }
        let mut line = |cells: &[String]| {
            let mut text = String::new();
            for (index, cell) in cells.iter().enumerate() {
                if index + 1 == cells.len() {
                    text.push_str(cell);
                } else {
                    let _ = write!(text, "{cell:<width$}  ", width = widths[index]);
                }
            }
            let _ = writeln!(out, "{}", text.trim_end());
        };
        line(&header.map(String::from));
        for row in &cells {
            line(row);
        }
    }
    if !report.errors.is_empty() {
        let _ = writeln!(out, "\nCould not read:");
        for error in &report.errors {
            let mut place = vec![error.vendor.to_string()];
            place.extend(error.provider.clone());
            place.extend(error.target.clone());
            let _ = writeln!(
                out,
                "  ! {}: {}: {}",
                place.join(" "),
                error.reason,
                error.message
            );
            if !error.resources.is_empty() {
                let _ = writeln!(out, "    resources: {}", error.resources.join(", "));
            }
        }
    }
    if !report.grantees.is_empty() {
        let _ = writeln!(out, "\nGrantees:");
        for grantee in &report.grantees {
            if grantee.matches.is_empty() {
                let _ = writeln!(out, "  {}: found on no provider", grantee.name);
            }
            for found in &grantee.matches {
                let _ = writeln!(
                    out,
                    "  {}: {} {} via {}",
                    grantee.name, found.vendor, found.id, found.provider
                );
            }
        }
    }
    if !report.notes.is_empty() {
        let _ = writeln!(out);
        for note in &report.notes {
            let _ = writeln!(out, "Note: {note}");
        }
    }
    let summary = &report.summary;
    let _ = writeln!(
        out,
        "\n{} grant(s) on {} vendor object(s): {} managed, {} expiring, {} unmanaged, {} drifted, {} inherited, {} fixed; {} could not be read.",
        summary.rows,
        summary.objects,
        summary.managed,
        summary.expiring,
        summary.unmanaged,
        summary.drifted,
        summary.inherited,
        summary.fixed,
        summary.errors
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::access::report::tests::row;

    #[test]
    fn csv_quotes_what_needs_quoting() {
        let mut report = Report {
            rows: vec![row(State::Managed)],
            ..Report::default()
        };
        report.summarize();
        let csv = render_csv(&report);
        let lines: Vec<&str> = csv.split("\r\n").collect();
        assert_eq!(lines[0], CSV_HEADER.join(","));
        assert!(
            lines[1].starts_with(
                "sigma,GrantProvider a/p,c,\"Finance, \"\"EU\"\"\",member:1,jane@example.com,usage,managed,a/x a/y,,\"line one\nline two\""
            ),
            "{csv}"
        );
    }
}
