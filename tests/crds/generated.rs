//! The committed CRDs against the binary: `crds/` matches `grant-operator crd`,
//! names, categories and columns follow the contract, every pattern is a valid
//! regex.

use super::*;

#[test]
fn committed_crds_match_the_binary_output() {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_grant-operator"))
        .arg("crd")
        .output()
        .expect("grant-operator runs");
    assert!(output.status.success());
    let printed = String::from_utf8(output.stdout).unwrap();

    let mut committed = String::new();
    let mut expected_files = BTreeSet::new();
    for (file, crd) in all_crds() {
        let path = crds_dir().join(&file);
        let on_disk = std::fs::read_to_string(&path).unwrap_or_else(|_| {
            panic!(
                "{} is missing; run `cargo run -- crd --dir crds`",
                path.display()
            )
        });
        assert_eq!(
            on_disk,
            crd_yaml(&crd).unwrap(),
            "{file} is out of date; run `cargo run -- crd --dir crds`"
        );
        committed.push_str("---\n");
        committed.push_str(&on_disk);
        expected_files.insert(file);
    }
    assert_eq!(
        printed, committed,
        "`grant-operator crd` prints exactly the committed files"
    );

    let on_disk: BTreeSet<String> = std::fs::read_dir(crds_dir())
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        on_disk, expected_files,
        "crds/ holds one file per kind and nothing else"
    );
}

#[test]
fn names_categories_and_columns_follow_the_contract() {
    for (_, crd) in all_crds() {
        let names = &crd.spec.names;
        let categories = names.categories.clone().unwrap_or_default();
        assert!(
            categories.contains(&"grantoperator".to_string()),
            "{}",
            names.kind
        );
        let is_grant = names.kind.ends_with("Grant");
        assert_eq!(
            categories.contains(&"grants".to_string()),
            is_grant,
            "{}",
            names.kind
        );
        assert!(
            !names.short_names.clone().unwrap_or_default().is_empty(),
            "{}",
            names.kind
        );
        let version = &crd.spec.versions[0];
        assert!(
            version.subresources.as_ref().unwrap().status.is_some(),
            "{} has a status subresource",
            names.kind
        );
        let columns: Vec<String> = version
            .additional_printer_columns
            .clone()
            .unwrap_or_default()
            .into_iter()
            .map(|column| column.name)
            .collect();
        if is_grant {
            assert_eq!(
                columns,
                ["Provider", "Target", "Ready", "Reason", "Age"],
                "{}",
                names.kind
            );
        } else {
            assert_eq!(columns, ["Ready", "Reason", "Age"], "{}", names.kind);
        }
    }
}

/// Every `pattern` of every schema compiles (the API server refuses CRDs with a bad one).
#[test]
fn every_pattern_is_a_valid_regex() {
    fn walk(value: &Value, found: &mut Vec<String>) {
        match value {
            Value::Object(map) => {
                if let Some(Value::String(pattern)) = map.get("pattern") {
                    found.push(pattern.clone());
                }
                map.values().for_each(|v| walk(v, found));
            }
            Value::Array(items) => items.iter().for_each(|v| walk(v, found)),
            _ => {}
        }
    }
    let mut patterns = Vec::new();
    for (_, crd) in all_crds() {
        walk(&serde_json::to_value(&crd).unwrap(), &mut patterns);
    }
    assert!(patterns.len() > 20);
    for pattern in patterns {
        regex::Regex::new(&pattern).unwrap_or_else(|error| panic!("{pattern}: {error}"));
    }
}
