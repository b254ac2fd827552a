//! Every YAML the project ships reads the same to a YAML 1.1 reader (kubectl,
//! Helm and Argo CD, through `sigs.k8s.io/yaml`) as to a YAML 1.2 one: no plain
//! (unquoted) key or value that YAML 1.1 resolves to something else (`on`,
//! `yes`, `n`, `0755`, `1:30`, `<<`, ...; the full list and its sources are in
//! `grant_operator::yaml`).
//!
//! What is read, with a real YAML parser (`saphyr-parser`, which reports each
//! scalar's style and place):
//! - every `.yaml` / `.yml` file of the repository outside `target/` (`crds/`,
//!   `charts/` with its `crds/` and `values.yaml`, `deploy/`, `examples/`, ...);
//! - every fenced ```` ```yaml ```` block of every Markdown file (README.md,
//!   docs/, deploy/argocd/README.md, ...), lines reported in the Markdown file;
//! - Helm templates (`charts/*/templates/*.yaml`) by their text around the Go
//!   template actions: a line holding nothing but actions (`{{- if ... }}`,
//!   `{{- include ... | nindent 4 }}`) is blanked, and an action inside a line
//!   is replaced by a plain word, so every key and literal value written in the
//!   template is checked. Not checked: what an action renders to. The values it
//!   reads are (`values.yaml` is checked like any file), and the templates
//!   render string values through `| quote` where a value could be anything.
//!   A template whose text does not parse this way fails the test, so that a
//!   new template is never silently skipped.

use std::path::{Path, PathBuf};

use grant_operator::yaml::{Ambiguous, ambiguous_plain_scalars};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Files under `dir` (recursively) whose name ends with one of `extensions`,
/// skipping `target/` and hidden folders other than `.ci`.
fn files(dir: &Path, extensions: &[&str], out: &mut Vec<PathBuf>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .unwrap_or_else(|error| panic!("{}: {error}", dir.display()))
        .map(|entry| entry.unwrap().path())
        .collect();
    entries.sort();
    for path in entries {
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        if path.is_dir() {
            if name == "target" || (name.starts_with('.') && name != ".ci") {
                continue;
            }
            files(&path, extensions, out);
        } else if extensions.iter().any(|ext| name.ends_with(ext)) {
            out.push(path);
        }
    }
}

fn relative(path: &Path) -> String {
    path.strip_prefix(root())
        .unwrap_or(path)
        .display()
        .to_string()
}

/// A Helm template's text with its actions taken out, line for line.
fn template_text(template: &str) -> String {
    template
        .lines()
        .map(|line| {
            let mut rest = line;
            let mut text = String::new();
            let mut only_actions = true;
            while let Some(start) = rest.find("{{") {
                let (before, after) = rest.split_at(start);
                if !before.trim().is_empty() {
                    only_actions = false;
                }
                text.push_str(before);
                let Some(end) = after.find("}}") else {
                    panic!("an action without its closing braces: {line}");
                };
                text.push_str("TEMPLATED");
                rest = &after[end + 2..];
            }
            if !rest.trim().is_empty() {
                only_actions = false;
            }
            text.push_str(rest);
            if only_actions && line.contains("{{") {
                String::new()
            } else {
                text
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The fenced YAML blocks of a Markdown text: (line of the block's first line, text).
fn yaml_blocks(markdown: &str) -> Vec<(usize, String)> {
    let mut blocks = Vec::new();
    let mut current: Option<(usize, usize, Vec<String>)> = None;
    for (index, line) in markdown.lines().enumerate() {
        let trimmed = line.trim_start();
        let indent = line.len() - trimmed.len();
        match current.as_mut() {
            None => {
                let fence = trimmed.trim_end();
                if fence == "```yaml" || fence == "```yml" {
                    current = Some((index + 2, indent, Vec::new()));
                }
            }
            Some((_, fence_indent, lines)) => {
                if trimmed.trim_end() == "```" {
                    let (first, _, lines) = current.take().unwrap();
                    blocks.push((first, lines.join("\n")));
                } else {
                    let cut = line
                        .char_indices()
                        .take_while(|(i, c)| *i < *fence_indent && *c == ' ')
                        .count();
                    lines.push(line[cut..].to_string());
                }
            }
        }
    }
    assert!(current.is_none(), "a ```yaml block is never closed");
    blocks
}

struct Finding {
    file: String,
    line: usize,
    scalar: Ambiguous,
}

fn check(file: &str, first_line: usize, text: &str, findings: &mut Vec<Finding>) {
    match ambiguous_plain_scalars(text) {
        Ok(found) => findings.extend(found.into_iter().map(|scalar| Finding {
            file: file.to_string(),
            line: first_line + scalar.line - 1,
            scalar,
        })),
        Err(error) => panic!(
            "{file}: {error} (at line {} of the file)",
            first_line + error.line - 1
        ),
    }
}

fn report(findings: &[Finding]) -> String {
    let mut out = format!(
        "{} plain scalar(s) read differently by YAML 1.1 (kubectl, Helm, Argo CD) and YAML 1.2.\n\
         Quote each one (\"on\": ..., value: \"yes\") so every reader sees a string:\n",
        findings.len()
    );
    for finding in findings {
        out.push_str(&format!(
            "  {}:{}:{}: {:?}: {}; write it \"{}\"\n",
            finding.file,
            finding.line,
            finding.scalar.column,
            finding.scalar.text,
            finding.scalar.why,
            finding.scalar.text
        ));
    }
    out
}

#[test]
fn shipped_yaml_reads_the_same_in_yaml_1_1_and_1_2() {
    let mut findings = Vec::new();
    let mut yaml_files = Vec::new();
    files(&root(), &[".yaml", ".yml"], &mut yaml_files);
    let mut templates = 0;
    for path in &yaml_files {
        let file = relative(path);
        let text = std::fs::read_to_string(path).unwrap();
        let is_template = file.starts_with("charts/") && file.contains("/templates/");
        if is_template {
            templates += 1;
            check(&file, 1, &template_text(&text), &mut findings);
        } else {
            check(&file, 1, &text, &mut findings);
        }
    }
    let mut markdown = Vec::new();
    files(&root(), &[".md"], &mut markdown);
    let mut blocks = 0;
    for path in &markdown {
        let file = relative(path);
        for (first_line, block) in yaml_blocks(&std::fs::read_to_string(path).unwrap()) {
            blocks += 1;
            check(&file, first_line, &block, &mut findings);
        }
    }

    // What must have been read, so that a walk that finds nothing cannot pass.
    let names: Vec<String> = yaml_files.iter().map(|p| relative(p)).collect();
    for dir in [
        "crds/",
        "charts/grant-operator/crds/",
        "deploy/crds/",
        "examples/",
    ] {
        assert!(
            names.iter().filter(|n| n.starts_with(dir)).count() >= 3,
            "{dir}: {names:?}"
        );
    }
    for file in [
        "charts/grant-operator/values.yaml",
        "charts/grant-operator/Chart.yaml",
        "deploy/kustomization.yaml",
        "deploy/argocd/application.yaml",
        "examples/demo/grants.yaml",
    ] {
        assert!(names.iter().any(|n| n == file), "{file} not read");
    }
    assert!(templates >= 5, "{templates} templates");
    assert!(blocks >= 10, "{blocks} YAML blocks in Markdown");

    assert!(findings.is_empty(), "{}", report(&findings));
}

#[test]
fn template_text_keeps_keys_and_literal_values_of_templates() {
    let template = "{{- if .Values.x }}\nkind: Service\nmetadata:\n  labels:\n    {{- include \"l\" . | nindent 4 }}\n  name: {{ .Release.Name }}-metrics\nspec:\n  on: {{ .Values.y | quote }}\n  list: [{{ .A }}, off]\n{{- end }}";
    let text = template_text(template);
    assert_eq!(
        text,
        "\nkind: Service\nmetadata:\n  labels:\n\n  name: TEMPLATED-metrics\nspec:\n  on: TEMPLATED\n  list: [TEMPLATED, off]\n"
    );
    let found: Vec<(usize, String)> = ambiguous_plain_scalars(&text)
        .unwrap()
        .into_iter()
        .map(|a| (a.line, a.text))
        .collect();
    assert_eq!(found, vec![(8, "on".to_string()), (9, "off".to_string())]);
}

#[test]
fn markdown_blocks_are_found_with_their_lines_and_indentation() {
    let markdown =
        "text\n```yaml\na: 1\n```\n\n- item\n\n  ```yaml\n  b: on\n  ```\n```sh\nc: on\n```\n";
    let blocks = yaml_blocks(markdown);
    assert_eq!(
        blocks,
        vec![(3, "a: 1".to_string()), (9, "b: on".to_string())]
    );
    let mut findings = Vec::new();
    for (line, block) in &blocks {
        check("x.md", *line, block, &mut findings);
    }
    assert_eq!(findings.len(), 1);
    assert_eq!((findings[0].line, findings[0].scalar.column), (9, 4));
    let message = report(&findings);
    assert!(
        message.contains(
            "x.md:9:4: \"on\": YAML 1.1 reads the boolean true, YAML 1.2 a string; write it \"on\""
        ),
        "{message}"
    );
}
