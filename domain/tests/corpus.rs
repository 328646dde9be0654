//! Every manifest of the corpus (`shared/corpus/manifests/`, real `.build.yml`
//! files of public projects) goes through `manifest::parse`: no panic, no hang,
//! and exactly the expected files are rejected, for the expected reasons.
//!
//! Run with `--nocapture` to see the figures.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use builds_domain::manifest::{self, BuildContext, Problem};

/// Files that are not valid YAML (PyYAML rejects them too): block scalars whose
/// lines are indented no more than the key that owns them. Each must be
/// rejected with one problem on "manifest" naming this line and column.
const INVALID_YAML: &[(&str, usize, usize)] = &[
    ("DougBurke__discourse-tui__.build.yml", 8, 5),
    ("PuerkitoBio__goquery__.builds_fedora.yml", 10, 5),
    ("quic-go__qpack__.builds_archlinux.yml", 9, 5),
];

/// Valid YAML rejected by an explicit DESIGN §3 rule: (file, field, part of the
/// reason). None today: every valid-YAML manifest of the corpus is accepted.
const EXPECTED_REJECTIONS: &[(&str, &str, &str)] = &[];

fn corpus_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/corpus/manifests");
    if !dir.is_dir() {
        panic!(
            "manifest corpus not found at {} (expected shared/corpus/manifests beside the workspace)",
            dir.display()
        );
    }
    dir
}

fn corpus_files() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(corpus_dir())
        .expect("read corpus directory")
        .map(|e| e.expect("read corpus entry").path())
        .filter(|p| {
            p.extension()
                .and_then(|e| e.to_str())
                .is_some_and(|e| e == "yml" || e == "yaml")
        })
        .collect();
    files.sort();
    files
}

fn name_of(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

fn show(problems: &[Problem]) -> String {
    problems.iter().map(|p| format!("    {p}\n")).collect()
}

#[test]
fn corpus() {
    let files = corpus_files();
    assert!(
        files.len() >= 100,
        "expected the whole corpus (125 manifests and SOURCES.tsv), found {} manifests",
        files.len()
    );

    let mut accepted = Vec::new();
    let mut rejected: Vec<(String, Vec<Problem>)> = Vec::new();
    let mut slowest = Duration::ZERO;
    for path in &files {
        let text = std::fs::read_to_string(path).expect("read manifest");
        let start = Instant::now();
        let result = manifest::parse(&text);
        let elapsed = start.elapsed();
        slowest = slowest.max(elapsed);
        assert!(
            elapsed < Duration::from_secs(5),
            "{} took {elapsed:?}",
            name_of(path)
        );
        match result {
            Ok(m) => accepted.push((name_of(path), m)),
            Err(problems) => rejected.push((name_of(path), problems)),
        }
    }

    println!(
        "corpus: {} manifests, {} accepted, {} rejected (slowest parse {slowest:?})",
        files.len(),
        accepted.len(),
        rejected.len()
    );
    for (name, problems) in &rejected {
        println!("  rejected {name}:\n{}", show(problems));
    }

    let mut failures = Vec::new();
    for (name, problems) in &rejected {
        if let Some((_, line, column)) = INVALID_YAML.iter().find(|(f, _, _)| f == name) {
            let wanted = format!("line {line}, column {column}");
            let good = problems.len() == 1
                && problems[0].field == "manifest"
                && problems[0].reason.contains(&wanted);
            if !good {
                failures.push(format!(
                    "{name}: expected one YAML problem at {wanted}, got:\n{}",
                    show(problems)
                ));
            }
        } else if let Some((_, field, reason)) =
            EXPECTED_REJECTIONS.iter().find(|(f, _, _)| f == name)
        {
            let good = problems
                .iter()
                .any(|p| p.field == *field && p.reason.contains(reason));
            if !good {
                failures.push(format!(
                    "{name}: expected a problem on {field} ({reason}), got:\n{}",
                    show(problems)
                ));
            }
        } else {
            failures.push(format!(
                "{name}: unexpectedly rejected:\n{}",
                show(problems)
            ));
        }
    }
    for (name, _) in &accepted {
        let expected_rejected = INVALID_YAML.iter().any(|(f, _, _)| f == name)
            || EXPECTED_REJECTIONS.iter().any(|(f, _, _)| f == name);
        if expected_rejected {
            failures.push(format!("{name}: expected to be rejected, but was accepted"));
        }
    }
    for (file, _, _) in INVALID_YAML {
        if !files.iter().any(|p| name_of(p) == *file) {
            failures.push(format!(
                "{file}: listed as invalid YAML but not in the corpus"
            ));
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

/// The quirks DESIGN §3 lists are all present in the corpus and accepted.
#[test]
fn corpus_quirks_are_accepted() {
    let dir = corpus_dir();
    let read = |name: &str| std::fs::read_to_string(dir.join(name)).expect("read manifest");
    let parse = |name: &str| {
        manifest::parse(&read(name)).unwrap_or_else(|p| panic!("{name} rejected:\n{}", show(&p)))
    };

    // `---` markers, two documents: the first one counts.
    let m = parse("luke-clifton__shh__.builds_nix.yml");
    assert_eq!(m.image, "nixos/latest");
    assert!(m.packages.iter().any(|p| p.ends_with("ghc8104")));
    // `arch: null`, `oauth: ''`, `sources: []`, `repositories: {}`, `artifacts: []`, `shell: true`.
    let m = parse("connorfeeley__haskbike__.builds_check.yml");
    assert_eq!(m.arch, None);
    assert_eq!(m.oauth, None);
    assert!(m.sources.is_empty() && m.repositories.is_empty() && m.artifacts.is_empty());
    assert!(m.shell);
    // Missing final newline.
    assert!(!read("kronoslang__kronos__.builds_ubuntu.yml").ends_with('\n'));
    let m = parse("kronoslang__kronos__.builds_ubuntu.yml");
    assert_eq!(m.sources[0].scheme, manifest::SourceScheme::Hg);
    // Non-string environment values and a list.
    let m = parse("gentoo__portage__.builds_ci.yml");
    assert_eq!(
        m.environment["PYTHON_VERSIONS"],
        manifest::EnvValue::List(vec!["3.9".into(), "3.10".into(), "3.11".into()])
    );
    let m = parse("blueyed__pytest__.builds_freebsd.yml");
    assert_eq!(
        m.environment["PYTEST_REORDER_TESTS"],
        manifest::EnvValue::Int(0)
    );
    // scp-like source, and a source with #ref.
    assert_eq!(
        parse("28__NoteworthyII__.build.yml").sources[0].dir,
        "NoteworthyII"
    );
    let refs: Vec<_> = corpus_files()
        .iter()
        .filter_map(|p| manifest::parse(&std::fs::read_to_string(p).ok()?).ok())
        .flat_map(|m| m.sources)
        .filter(|s| s.reference.is_some())
        .collect();
    assert!(!refs.is_empty());
}

/// Every accepted manifest's `~/.buildenv` is a bash file that sources cleanly,
/// and every task script at least starts with the preamble.
#[test]
fn corpus_buildenv_sources_in_bash() {
    let home = std::env::temp_dir().join(format!("builds-corpus-home-{}", std::process::id()));
    std::fs::create_dir_all(&home).expect("temp home");
    let ctx = BuildContext {
        job_id: 1,
        job_url: "https://builds.example.com/~u/job/1".into(),
        ci_name: "builds".into(),
        oauth_token: None,
    };
    let mut failures = Vec::new();
    for path in corpus_files() {
        let Ok(m) = manifest::parse(&std::fs::read_to_string(&path).expect("read")) else {
            continue;
        };
        let env = manifest::render_buildenv(&m.environment, &ctx);
        std::fs::write(home.join(".buildenv"), &env).expect("write buildenv");
        let out = Command::new("bash")
            .arg("-c")
            .arg(". ~/.buildenv && declare -F complete-build >/dev/null && [ \"$JOB_ID\" = 1 ]")
            .env("HOME", &home)
            .output()
            .expect("run bash");
        if !out.status.success() || !out.stderr.is_empty() {
            failures.push(format!(
                "{}: {}\n{env}",
                name_of(&path),
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        for task in &m.tasks {
            let script = manifest::task_script(&task.name, &task.script);
            assert!(script.starts_with("#!/usr/bin/env bash\n"));
            assert!(script.contains(&task.script));
        }
    }
    let _ = std::fs::remove_dir_all(&home);
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
