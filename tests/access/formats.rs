//! The three formats (table, CSV, JSON) report the same rows, and the README
//! documents every flag.

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn table_csv_and_json_report_the_same_rows() {
    let h = Harness::new().await;
    let f = fixture(&h, "formats");
    let dir = f.dir.to_str().unwrap();
    let json_run = access(dir, &["-o", "json"]).await;
    assert_eq!(json_run.code, 0, "{}", json_run.stderr);
    let report: Value = serde_json::from_str(&json_run.stdout).unwrap();
    let rows = rows_of(&report);

    // CSV: RFC 4180 with a header row, read by a CSV reader of its own.
    let csv_run = access(dir, &["-o", "csv", "--progress"]).await;
    assert_eq!(csv_run.code, 0, "{}", csv_run.stderr);
    no_secret_in(&csv_run);
    assert!(csv_run.stdout.contains("\r\n"), "CRLF line ends");
    assert!(
        csv_run.stderr.contains("read 4 of 4 vendor objects"),
        "--progress reports on stderr: {}",
        csv_run.stderr
    );
    let mut reader = csv::Reader::from_reader(csv_run.stdout.as_bytes());
    let header: Vec<String> = reader.headers().unwrap().iter().map(String::from).collect();
    assert_eq!(
        header,
        vec![
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
            "detail"
        ]
    );
    let records: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    assert_eq!(records.len(), rows.len());
    for (record, row) in records.iter().zip(&rows) {
        let text = |value: &Value| value.as_str().unwrap_or_default().to_string();
        let resources: Vec<String> = row["resources"]
            .as_array()
            .unwrap()
            .iter()
            .map(text)
            .collect();
        let expected = vec![
            text(&row["vendor"]),
            text(&row["provider"]),
            text(&row["target"]["id"]),
            text(&row["target"]["name"]),
            text(&row["grantee"]["id"]),
            text(&row["grantee"]["name"]),
            text(&row["permission"]),
            text(&row["state"]),
            resources.join(" "),
            text(&row["expiresAt"]),
            text(&row["detail"]),
        ];
        assert_eq!(record.iter().collect::<Vec<_>>(), expected);
    }

    // The table: one line per row under a header, and the summary.
    let table = cli(&["access", "-f", dir, "--secret", GRAFANA_SECRET]).await;
    assert_eq!(table.code, 0, "{}", table.stderr);
    no_secret_in(&table);
    let lines: Vec<&str> = table.stdout.lines().collect();
    assert!(
        lines[0].starts_with("VENDOR") && lines[0].contains("GRANTEE"),
        "{}",
        table.stdout
    );
    let jane = lines
        .iter()
        .find(|line| line.contains(&format!("jane@example.com (member:{})", f.jane)))
        .unwrap_or_else(|| panic!("{}", table.stdout));
    assert!(
        jane.contains("annotate") && jane.contains("managed"),
        "{jane}"
    );
    assert!(jane.contains(&format!("{NS}/bi, {NS}/readers")), "{jane}");
    let joe = lines
        .iter()
        .find(|line| line.starts_with("sigma ") && line.contains("joe@example.com"))
        .unwrap_or_else(|| panic!("{}", table.stdout));
    assert!(
        joe.contains("expiring") && joe.contains(&format!("{NS}/temp")),
        "{joe}"
    );
    assert!(joe.ends_with(&format!("expires {LATER}")), "{joe}");
    assert!(
        table.stdout.contains(
            "31 grant(s) on 4 vendor object(s): 4 managed, 4 expiring, 7 unmanaged, 10 drifted, 1 inherited, 5 fixed; 0 could not be read."
        ),
        "{}",
        table.stdout
    );
    assert_eq!(lines.iter().filter(|l| l.starts_with("sigma ")).count(), 9);
}

#[test]
fn readme_documents_every_access_flag() {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let section = readme
        .split("## Access review")
        .nth(1)
        .and_then(|rest| rest.split("\n## ").next())
        .expect("README has an Access review section");
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_grant-operator"))
        .args(["access", "--help"])
        .output()
        .unwrap();
    let help = String::from_utf8(output.stdout).unwrap();
    for line in help.lines() {
        if let Some(flag) = line
            .split_whitespace()
            .find(|word| word.starts_with("--") && *word != "--help")
        {
            let flag = flag.trim_end_matches(',');
            assert!(
                section.contains(&format!("`{flag}")),
                "the Access review section does not document {flag}"
            );
        }
    }
}
