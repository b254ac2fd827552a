//! The container image definition, checked as text (there is no docker engine in
//! CI): multi-stage, a distroless final stage running as non-root, the port the
//! manifests probe, a toolchain new enough for the crate, and a build context
//! that keeps what the build needs.

use std::path::PathBuf;

fn read(path: &str) -> String {
    std::fs::read_to_string(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(path)).unwrap()
}

fn version(text: &str) -> Vec<u32> {
    text.split('.').map(|part| part.parse().unwrap()).collect()
}

#[test]
fn the_dockerfile_builds_in_one_stage_and_runs_as_non_root_in_another() {
    let dockerfile = read("Dockerfile");
    let stages: Vec<&str> = dockerfile
        .lines()
        .filter(|line| line.starts_with("FROM "))
        .collect();
    assert_eq!(stages.len(), 2, "{stages:?}");
    assert!(stages[0].contains(" AS build"));
    assert!(stages[1].contains("gcr.io/distroless/"), "{}", stages[1]);
    let last_stage = dockerfile.rsplit("\nFROM ").next().unwrap();
    let user = last_stage
        .lines()
        .find_map(|line| line.strip_prefix("USER "))
        .expect("a USER in the final stage");
    assert!(
        !user.starts_with("0") && !user.starts_with("root"),
        "{user}"
    );
    assert!(last_stage.contains("EXPOSE 8080"));
    assert!(last_stage.contains("--from=build"));
    assert!(dockerfile.contains("--locked"));
    assert!(
        dockerfile.contains("--no-default-features"),
        "the image is built without the sandbox feature"
    );

    let rust = dockerfile
        .lines()
        .find_map(|line| line.strip_prefix("ARG RUST_VERSION="))
        .expect("ARG RUST_VERSION");
    let manifest = read("Cargo.toml");
    let needed = manifest
        .lines()
        .find_map(|line| line.strip_prefix("rust-version = "))
        .unwrap()
        .trim_matches('"');
    assert!(version(rust) >= version(needed), "{rust} < {needed}");
}

#[test]
fn the_build_context_keeps_the_sources() {
    let ignored: Vec<String> = read(".dockerignore")
        .lines()
        .filter(|line| !line.trim().is_empty() && !line.starts_with('#'))
        .map(str::to_string)
        .collect();
    for needed in ["src", "Cargo.toml", "Cargo.lock"] {
        assert!(!ignored.iter().any(|i| i == needed), "{needed} is ignored");
    }
    assert!(ignored.iter().any(|i| i == "target"));
}
