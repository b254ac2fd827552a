//! The documentation tells the truth about how CI tests the project.

use std::path::Path;

fn read(path: &str) -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(path)).unwrap()
}

/// The command under "Run every test" in the README.
fn readme_test_command() -> String {
    let readme = read("README.md");
    let section = readme
        .split("## Run every test")
        .nth(1)
        .expect("README has a test section");
    let block = section.split("```sh\n").nth(1).expect("a sh block");
    block.split("\n```").next().unwrap().trim().to_string()
}

#[test]
fn ci_runs_exactly_the_readme_test_command() {
    let command = readme_test_command();
    assert!(command.contains("cargo test"), "{command}");
    assert!(command.contains("-D warnings"), "{command}");
    let ci = read(".ci/run");
    let last = ci
        .lines()
        .rfind(|line| !line.trim().is_empty() && !line.trim_start().starts_with('#'))
        .unwrap()
        .trim()
        .to_string();
    assert_eq!(
        last, command,
        ".ci/run must end with the README's test command"
    );
}

#[test]
fn readme_documents_every_flag() {
    let readme = read("README.md");
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_grant-operator"))
        .args(["run", "--help"])
        .output()
        .unwrap();
    let help = String::from_utf8(output.stdout).unwrap();
    for line in help.lines() {
        let line = line.trim();
        if let Some(flag) = line
            .split_whitespace()
            .find(|word| word.starts_with("--") && *word != "--help")
        {
            let flag = flag.trim_end_matches(',');
            assert!(
                readme.contains(&format!("`{flag}`")),
                "README does not document {flag}"
            );
        }
    }
}
