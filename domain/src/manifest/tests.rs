//! Tests of `parse` and `parse_for_images`: one or more per rule, good and bad.

use super::*;

const MINIMAL: &str = "image: alpine/edge\ntasks:\n  - build: make\n";

fn ok(text: &str) -> Manifest {
    match parse(text) {
        Ok(m) => m,
        Err(problems) => panic!("rejected:\n{}", show(&problems)),
    }
}

fn problems(text: &str) -> Vec<Problem> {
    match parse(text) {
        Ok(m) => panic!("accepted: {m:?}"),
        Err(problems) => problems,
    }
}

fn show(problems: &[Problem]) -> String {
    problems
        .iter()
        .map(|p| format!("  {p}\n"))
        .collect::<String>()
}

/// Asserts exactly these fields have problems, in this order, and that each
/// reason contains the given fragment.
fn assert_problems(text: &str, expected: &[(&str, &str)]) {
    let got = problems(text);
    let fields: Vec<&str> = got.iter().map(|p| p.field.as_str()).collect();
    let want: Vec<&str> = expected.iter().map(|(f, _)| *f).collect();
    assert_eq!(fields, want, "problems:\n{}", show(&got));
    for (p, (_, fragment)) in got.iter().zip(expected) {
        assert!(
            p.reason.contains(fragment),
            "reason of {} is {:?}, expected it to contain {:?}",
            p.field,
            p.reason,
            fragment
        );
    }
}

fn with(extra: &str) -> String {
    format!("{MINIMAL}{extra}")
}

// ---------------------------------------------------------------- document

#[test]
fn minimal_manifest() {
    let m = ok(MINIMAL);
    assert_eq!(
        m,
        Manifest {
            image: "alpine/edge".into(),
            arch: None,
            packages: vec![],
            repositories: BTreeMap::new(),
            sources: vec![],
            tasks: vec![Task {
                name: "build".into(),
                script: "make".into()
            }],
            triggers: vec![],
            environment: BTreeMap::new(),
            secrets: vec![],
            shell: false,
            artifacts: vec![],
            oauth: None,
        }
    );
}

#[test]
fn full_manifest() {
    let text = r#"---
image: debian/bookworm
arch: x86_64
packages:
  - build-essential
  - curl
repositories:
  extra: https://example.org/debian bookworm main 0123ABCD
sources:
  - https://git.sr.ht/~alice/project
  - lib::git+https://github.com/bob/lib.git#v1.2
  - hg+https://hg.sr.ht/~carol/thing
environment:
  NAME: value
  COUNT: 3
  RATIO: 0.5
  DEBUG: false
  EMPTY:
  LIST: ['3.9', '3.10']
secrets:
  - 11097f83-8e5a-46c9-be7f-d4c746730000
  - deploy-key
triggers:
  - action: email
    condition: failure
    to: Alice <alice@example.org>
    cc: bob@example.org
    in_reply_to: <123@example.org>
  - action: webhook
    condition: always
    url: https://hooks.example.org/ci
shell: true
artifacts:
  - project/out/app.tar.gz
  - project/README
oauth: pages.sr.ht/PAGES:RW
tasks:
  - setup: |
      cd project
      ./configure
  - build: make -C project
  - test_all-2: make -C project check
unknown_key: ignored
"#;
    let m = ok(text);
    assert_eq!(m.image, "debian/bookworm");
    assert_eq!(m.arch.as_deref(), Some("x86_64"));
    assert_eq!(m.packages, ["build-essential", "curl"]);
    assert_eq!(
        m.repositories["extra"],
        "https://example.org/debian bookworm main 0123ABCD"
    );
    assert_eq!(m.sources.len(), 3);
    assert_eq!(m.sources[1].dir, "lib");
    assert_eq!(m.sources[1].reference.as_deref(), Some("v1.2"));
    assert_eq!(m.sources[2].scheme, SourceScheme::Hg);
    assert_eq!(m.environment["NAME"], EnvValue::Str("value".into()));
    assert_eq!(m.environment["COUNT"], EnvValue::Int(3));
    assert_eq!(m.environment["RATIO"], EnvValue::Float(0.5));
    assert_eq!(m.environment["DEBUG"], EnvValue::Bool(false));
    assert_eq!(m.environment["EMPTY"], EnvValue::Null);
    assert_eq!(
        m.environment["LIST"],
        EnvValue::List(vec!["3.9".into(), "3.10".into()])
    );
    assert_eq!(
        m.secrets,
        ["11097f83-8e5a-46c9-be7f-d4c746730000", "deploy-key"]
    );
    assert_eq!(
        m.triggers,
        vec![
            Trigger {
                action: TriggerAction::Email {
                    to: "Alice <alice@example.org>".into(),
                    cc: Some("bob@example.org".into()),
                    in_reply_to: Some("<123@example.org>".into()),
                },
                condition: TriggerCondition::Failure,
            },
            Trigger {
                action: TriggerAction::Webhook {
                    url: "https://hooks.example.org/ci".into()
                },
                condition: TriggerCondition::Always,
            },
        ]
    );
    assert!(m.shell);
    assert_eq!(m.artifacts, ["project/out/app.tar.gz", "project/README"]);
    assert_eq!(m.oauth.as_deref(), Some("pages.sr.ht/PAGES:RW"));
    let names: Vec<&str> = m.tasks.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(names, ["setup", "build", "test_all-2"]);
    assert_eq!(m.tasks[0].script, "cd project\n./configure\n");
    assert_eq!(m.tasks[1].script, "make -C project");
}

#[test]
fn size_limit() {
    // Just under the limit is fine...
    let mut text = String::from(MINIMAL);
    text.push('#');
    while text.len() < MAX_MANIFEST_BYTES - 2 {
        text.push('x');
    }
    text.push('\n');
    assert_eq!(text.len(), MAX_MANIFEST_BYTES - 1);
    ok(&text);
    // ...the limit itself is not.
    text.insert(text.len() - 1, 'x');
    assert_eq!(text.len(), MAX_MANIFEST_BYTES);
    assert_problems(&text, &[("manifest", "16384")]);
}

#[test]
fn yaml_syntax_error_has_line_and_column() {
    let text = "image: alpine/edge\ntasks:\n  - build: |\n    make\n   oops: [\n";
    let got = problems(text);
    assert_eq!(got.len(), 1, "{}", show(&got));
    assert_eq!(got[0].field, "manifest");
    assert!(
        got[0].reason.contains("line") && got[0].reason.contains("column"),
        "{}",
        got[0].reason
    );
}

#[test]
fn under_indented_block_is_a_syntax_error() {
    // The corpus has these: the lines of a block scalar are indented no more
    // than the key that owns it.
    let good = "image: alpine/edge\ntasks:\n  - build: |\n      cd x\n      make\n";
    assert_eq!(ok(good).tasks[0].script, "cd x\nmake\n");
    let bad = "image: alpine/edge\ntasks:\n  - build: |\n    cd x\n    make\n";
    let got = problems(bad);
    assert_eq!(got.len(), 1, "{}", show(&got));
    assert_eq!(got[0].field, "manifest");
    assert!(
        got[0].reason.contains("line 5, column 5"),
        "{}",
        got[0].reason
    );
}

#[test]
fn tab_indentation_is_a_syntax_error() {
    let got = problems("image: alpine/edge\ntasks:\n\t- build: make\n");
    assert_eq!(got[0].field, "manifest");
    assert!(
        got[0].reason.contains("line 3, column 1"),
        "{}",
        got[0].reason
    );
}

#[test]
fn top_level_must_be_a_mapping() {
    assert_problems("- image: alpine/edge\n", &[("manifest", "found a list")]);
    assert_problems("just a string\n", &[("manifest", "found a string")]);
    assert_problems("42\n", &[("manifest", "found a number")]);
    assert_problems("", &[("manifest", "empty")]);
    assert_problems("# nothing\n", &[("manifest", "empty")]);
    assert_problems("---\n", &[("manifest", "empty")]);
}

#[test]
fn document_markers() {
    ok(&format!("---\n{MINIMAL}"));
    ok(&format!("---\n{MINIMAL}...\n"));
    // Only the first document counts.
    let m = ok(&format!("{MINIMAL}---\nimage: other/image\ntasks: []\n"));
    assert_eq!(m.image, "alpine/edge");
    ok(&format!("---\n{MINIMAL}\n---\n\n{MINIMAL}"));
    // A syntax error in a later document is still an error.
    let got = problems(&format!("{MINIMAL}---\nimage: [\n"));
    assert_eq!(got[0].field, "manifest");
    // A root indented more than a later line ends the document early in
    // libyaml: that must not drop the rest of the manifest silently.
    let got = problems("  image: alpine/edge\n  tasks:\n    - build: make\ntriggers:\n  - {action: email, condition: always, to: a@b.c}\n");
    assert_eq!(got.len(), 1, "{}", show(&got));
    assert!(
        got[0].reason.contains("line 4, column 1"),
        "{}",
        got[0].reason
    );
}

#[test]
fn missing_final_newline() {
    ok("image: alpine/edge\ntasks:\n  - build: make");
    ok("image: alpine/edge\ntasks:\n  - build: |\n      make");
}

#[test]
fn byte_order_mark_and_crlf() {
    let m = ok("\u{feff}image: alpine/edge\r\ntasks:\r\n  - build: |\r\n      make\r\n      make check\r\n");
    assert_eq!(m.image, "alpine/edge");
    assert_eq!(m.tasks[0].script, "make\nmake check\n");
}

#[test]
fn unknown_keys_are_ignored() {
    ok(&with(
        "submitter:\n  git.sr.ht:\n    enabled: false\nfoo: [1, 2]\n42: answer\n",
    ));
}

#[test]
fn explicit_null_behaves_as_absent() {
    let m = ok(&with(
        "arch: null\npackages:\nrepositories: ~\nsources: null\ntriggers:\nenvironment:\nsecrets:\nshell:\nartifacts:\noauth:\n",
    ));
    assert_eq!(m.arch, None);
    assert!(m.packages.is_empty() && m.sources.is_empty() && m.secrets.is_empty());
    assert!(!m.shell);
    assert_eq!(m.oauth, None);
    assert_problems("image:\ntasks:\n  - a: b\n", &[("image", "required")]);
    assert_problems("image: x\ntasks:\n", &[("tasks", "required")]);
}

#[test]
fn duplicate_top_level_keys() {
    assert_problems(
        "image: a\nimage: b\ntasks:\n  - x: y\n",
        &[("image", "more than once")],
    );
}

#[test]
fn all_problems_at_once() {
    let text = r#"
image: [not, a, string]
arch: 7
packages: vim
repositories:
  good: fine
  bad: [1]
sources:
  - ''
  - a/b::https://host/repo
tasks:
  - Build: make
  - test:
  - x: a
    y: b
  - test: ok
  - test: again
triggers:
  - action: email
    condition: sometimes
  - action: carrier-pigeon
environment:
  bad-name: 1
  NESTED: {a: b}
secrets: [1]
shell: maybe
artifacts: ['/']
oauth: 5
"#;
    assert_problems(
        text,
        &[
            ("image", "expected a string, found a list"),
            ("arch", "found a number"),
            ("packages", "expected a list of strings, found a string"),
            ("repositories.bad", "expected a string, found a list"),
            ("sources[0]", "empty"),
            ("sources[1]", "'/'"),
            ("tasks[0]", "invalid"),
            ("tasks[1]", "no script"),
            ("tasks[2]", "found 2 keys"),
            ("tasks[3]", "already used by tasks[1]"),
            ("tasks[4]", "already used by tasks[1]"),
            ("triggers[0].condition", "unknown condition 'sometimes'"),
            ("triggers[0].to", "required"),
            ("triggers[1].condition", "required"),
            ("triggers[1].action", "unknown action 'carrier-pigeon'"),
            ("environment.bad-name", "not a valid variable name"),
            ("environment.NESTED", "found a mapping"),
            ("secrets[0]", "expected a string, found a number"),
            ("shell", "expected true or false, found a string"),
            ("artifacts[0]", "does not name a file"),
            ("oauth", "found a number"),
        ],
    );
}

#[test]
fn problem_display() {
    let p = Problem::new("tasks[2]", "task name 'X' is invalid");
    assert_eq!(p.to_string(), "tasks[2]: task name 'X' is invalid");
    assert_eq!(
        serde_json::to_value(&p).unwrap(),
        serde_json::json!({"field": "tasks[2]", "reason": "task name 'X' is invalid"})
    );
}

// ---------------------------------------------------------------- YAML bombs

fn billion_laughs(levels: usize) -> String {
    let mut text =
        String::from("image: alpine/edge\ntasks:\n  - build: make\nbomb0: &l0 \"lol\"\n");
    for level in 1..=levels {
        let refs = vec![format!("*l{}", level - 1); 9].join(", ");
        text.push_str(&format!("bomb{level}: &l{level} [{refs}]\n"));
    }
    text
}

#[test]
fn billion_laughs_is_rejected_quickly() {
    let text = billion_laughs(9);
    assert!(text.len() < MAX_MANIFEST_BYTES);
    let start = std::time::Instant::now();
    let got = problems(&text);
    let elapsed = start.elapsed();
    eprintln!(
        "billion laughs (9 levels, {} bytes) rejected in {elapsed:?}",
        text.len()
    );
    assert!(
        elapsed < std::time::Duration::from_secs(5),
        "took {elapsed:?}"
    );
    assert_eq!(got.len(), 1, "{}", show(&got));
    assert_eq!(got[0].field, "manifest");
    assert!(got[0].reason.contains("YAML bomb"), "{}", got[0].reason);
}

#[test]
fn billion_laughs_in_a_known_field() {
    let mut text =
        String::from("image: alpine/edge\nx0: &l0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n");
    for level in 1..=9 {
        let refs = vec![format!("*l{}", level - 1); 9].join(", ");
        text.push_str(&format!("x{level}: &l{level} [{refs}]\n"));
    }
    text.push_str("packages: *l9\ntasks:\n  - build: make\n");
    let start = std::time::Instant::now();
    let got = problems(&text);
    assert!(start.elapsed() < std::time::Duration::from_secs(5));
    assert_eq!(got[0].field, "manifest");
    assert!(got[0].reason.contains("YAML bomb"), "{}", got[0].reason);
}

#[test]
fn modest_aliases_are_fine() {
    let text = "image: alpine/edge\nx-common: &common\n  CC: clang\n  CFLAGS: -O2\nenvironment:\n  <<: *common\n  CFLAGS: -O0\ntasks:\n  - build: &script make\n  - again: *script\n";
    let m = ok(text);
    assert_eq!(m.environment["CC"], EnvValue::Str("clang".into()));
    assert_eq!(m.environment["CFLAGS"], EnvValue::Str("-O0".into()));
    assert_eq!(m.tasks[1].script, "make");
}

#[test]
fn unknown_alias_is_a_yaml_error() {
    let got = problems("image: alpine/edge\ntasks: *nope\n");
    assert_eq!(got[0].field, "manifest");
}

// ---------------------------------------------------------------- image, arch

#[test]
fn image_rules() {
    for good in [
        "alpine/edge",
        "archlinux",
        "freebsd/14.x",
        "nixos/23.11",
        "darwin/20.6.0",
    ] {
        assert_eq!(
            ok(&format!("image: {good}\ntasks: [{{a: b}}]\n")).image,
            good
        );
    }
    assert_problems("tasks: [{a: b}]\n", &[("image", "required")]);
    assert_problems("image: ''\ntasks: [{a: b}]\n", &[("image", "empty")]);
    assert_problems("image: '  '\ntasks: [{a: b}]\n", &[("image", "empty")]);
    assert_problems(
        "image: 3\ntasks: [{a: b}]\n",
        &[("image", "found a number")],
    );
    assert_problems(
        "image: {a: b}\ntasks: [{a: b}]\n",
        &[("image", "found a mapping")],
    );
    for bad in ["../../etc", "/abs", "a b", "debian/../x", "a\\b"] {
        assert_problems(
            &format!("image: '{bad}'\ntasks: [{{a: b}}]\n"),
            &[("image", "not an image name")],
        );
    }
}

#[test]
fn parse_for_images_checks_the_offer() {
    let offered = vec!["alpine/edge".to_string(), "debian/bookworm".to_string()];
    parse_for_images(MINIMAL, &offered).unwrap();
    let text = "image: fedora/rawhide\ntasks: [{a: b}]\n";
    let got = parse_for_images(text, &offered).unwrap_err();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].field, "image");
    assert!(got[0].reason.contains("fedora/rawhide"));
    assert!(
        got[0].reason.contains("alpine/edge, debian/bookworm"),
        "{}",
        got[0].reason
    );
    // Reported along with the other problems.
    let got = parse_for_images("image: fedora/rawhide\ntasks: []\n", &offered).unwrap_err();
    let fields: Vec<&str> = got.iter().map(|p| p.field.as_str()).collect();
    assert_eq!(fields, ["tasks", "image"]);
    // No images at all.
    let got = parse_for_images(MINIMAL, &[]).unwrap_err();
    assert!(got[0].reason.contains("no images"));
    // A missing image is reported once, not twice.
    let got = parse_for_images("tasks: [{a: b}]\n", &offered).unwrap_err();
    assert_eq!(got.len(), 1);
    // Broken YAML: only the YAML problem.
    let got = parse_for_images("image: [\n", &offered).unwrap_err();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].field, "manifest");
    // plain `parse` does not care about the offer.
    parse(text).unwrap();
}

#[test]
fn arch_rules() {
    assert_eq!(
        ok(&with("arch: aarch64\n")).arch.as_deref(),
        Some("aarch64")
    );
    assert_eq!(ok(&with("arch: null\n")).arch, None);
    assert_eq!(ok(&with("arch: ''\n")).arch, None);
    assert_eq!(ok(&with("arch:\n")).arch, None);
    assert_problems(&with("arch: [x86_64]\n"), &[("arch", "found a list")]);
    assert_problems(
        &with("arch: 'x 86'\n"),
        &[("arch", "not an architecture name")],
    );
}

// ---------------------------------------------------------------- lists and maps

#[test]
fn packages_rules() {
    assert_eq!(
        ok(&with("packages: [a, b-c, python3.11]\n")).packages,
        ["a", "b-c", "python3.11"]
    );
    assert_eq!(ok(&with("packages: []\n")).packages, Vec::<String>::new());
    assert_problems(
        &with("packages: {a: b}\n"),
        &[("packages", "expected a list of strings, found a mapping")],
    );
    assert_problems(&with("packages: vim\n"), &[("packages", "`- item`")]);
    assert_problems(
        &with("packages: [ok, 1.5, '', [x]]\n"),
        &[
            ("packages[1]", "expected a string, found a number"),
            ("packages[2]", "empty"),
            ("packages[3]", "found a list"),
        ],
    );
}

#[test]
fn repositories_rules() {
    let m = ok(&with("repositories:\n  a: x\n  b: y\n"));
    assert_eq!(m.repositories.len(), 2);
    assert!(ok(&with("repositories: {}\n")).repositories.is_empty());
    assert_problems(
        &with("repositories: [a]\n"),
        &[("repositories", "found a list")],
    );
    assert_problems(
        &with("repositories:\n  a: 1\n  2: b\n  c: x\n  c: y\n"),
        &[
            ("repositories", "keys must be strings"),
            ("repositories.c", "more than once"),
            ("repositories.a", "expected a string, found a number"),
        ],
    );
}

#[test]
fn sources_rules() {
    let m = ok(&with(
        "sources:\n  - https://git.sr.ht/~a/b\n  - git@git.sr.ht:~a/c\n  - d::https://x/b\n",
    ));
    let dirs: Vec<&str> = m.sources.iter().map(|s| s.dir.as_str()).collect();
    assert_eq!(dirs, ["b", "c", "d"]);
    assert!(ok(&with("sources: []\n")).sources.is_empty());
    assert_problems(
        &with("sources: https://x/y\n"),
        &[("sources", "found a string")],
    );
    assert_problems(
        &with("sources:\n  - https://x/ok\n  - 5\n  - ..::https://x/y\n  - https://y/ok.git\n"),
        &[
            ("sources[1]", "found a number"),
            ("sources[2]", ".."),
            ("sources[3]", "like sources[0]"),
        ],
    );
}

// ---------------------------------------------------------------- tasks

#[test]
fn tasks_rules_good() {
    let m = ok("image: a\ntasks:\n  - a: x\n  - b-2_c: 'y'\n  - n: 42\n  - f: 1.5\n  - t: true\n  - e: ''\n");
    let scripts: Vec<(&str, &str)> = m
        .tasks
        .iter()
        .map(|t| (t.name.as_str(), t.script.as_str()))
        .collect();
    assert_eq!(
        scripts,
        [
            ("a", "x"),
            ("b-2_c", "y"),
            ("n", "42"),
            ("f", "1.5"),
            ("t", "true"),
            ("e", "")
        ]
    );
    let long = "a".repeat(MAX_TASK_NAME_CHARS);
    ok(&format!("image: a\ntasks:\n  - {long}: x\n"));
}

#[test]
fn tasks_rules_bad() {
    let long = "a".repeat(MAX_TASK_NAME_CHARS + 1);
    assert_problems(
        &format!(
            "image: a\ntasks:\n  - Upper: x\n  - {long}: x\n  - 'sp ace': x\n  - '': x\n  - 1: x\n  - s: [a, b]\n  - m: {{a: b}}\n  - just a string\n  - {{}}\n"
        ),
        &[
            ("tasks[0]", "lowercase"),
            ("tasks[1]", "longer than 128"),
            ("tasks[2]", "invalid"),
            ("tasks[3]", "empty"),
            ("tasks[4]", "must be a string, found a number"),
            ("tasks[5]", "found a list"),
            ("tasks[6]", "found a mapping"),
            ("tasks[7]", "found a string"),
            ("tasks[8]", "empty mapping"),
        ],
    );
}

#[test]
fn tasks_required_unless_shell() {
    assert_problems("image: a\n", &[("tasks", "required")]);
    assert_problems("image: a\ntasks: []\n", &[("tasks", "at least one")]);
    assert_problems(
        "image: a\ntasks: {build: make}\n",
        &[("tasks", "`- name: script`")],
    );
    assert_problems("image: a\ntasks: make\n", &[("tasks", "found a string")]);
    assert!(ok("image: a\nshell: true\n").tasks.is_empty());
    assert!(ok("image: a\nshell: true\ntasks: []\n").tasks.is_empty());
    assert_problems(
        "image: a\nshell: false\ntasks: []\n",
        &[("tasks", "at least one")],
    );
}

#[test]
fn duplicate_task_names() {
    assert_problems(
        "image: a\ntasks:\n  - a: x\n  - b: x\n  - a: y\n  - a: z\n",
        &[("tasks[2]", "tasks[0]"), ("tasks[3]", "tasks[0]")],
    );
}

#[test]
fn task_script_is_verbatim() {
    let m = ok("image: a\ntasks:\n  - a: |\n      echo 'hi'\n        indented\n\n      tail\n");
    assert_eq!(m.tasks[0].script, "echo 'hi'\n  indented\n\ntail\n");
}

// ---------------------------------------------------------------- triggers

#[test]
fn trigger_conditions_match() {
    use TriggerCondition::*;
    for (cond, status, expected) in [
        (Always, "success", true),
        (Always, "failed", true),
        (Always, "timeout", true),
        (Always, "cancelled", true),
        (Always, "running", false),
        (Success, "success", true),
        (Success, "failed", false),
        (Success, "timeout", false),
        (Success, "cancelled", false),
        (Failure, "success", false),
        (Failure, "failed", true),
        (Failure, "timeout", true),
        (Failure, "cancelled", true),
        (Failure, "queued", false),
        (Success, "", false),
    ] {
        assert_eq!(cond.matches(status), expected, "{cond:?} {status}");
    }
}

#[test]
fn triggers_good() {
    let m = ok(&with(
        "triggers:\n  - {action: email, condition: success, to: a@b.c, cc: null}\n  - {action: webhook, condition: failure, url: 'HTTP://x.org'}\n  - {condition: always, action: email, to: '<~u/list@lists.sr.ht>', extra: ignored}\n",
    ));
    assert_eq!(m.triggers.len(), 3);
    assert_eq!(
        m.triggers[0].action,
        TriggerAction::Email {
            to: "a@b.c".into(),
            cc: None,
            in_reply_to: None
        }
    );
    assert_eq!(m.triggers[1].condition, TriggerCondition::Failure);
    assert!(ok(&with("triggers: []\n")).triggers.is_empty());
}

#[test]
fn triggers_bad() {
    assert_problems(
        &with("triggers: {action: email}\n"),
        &[("triggers", "found a mapping")],
    );
    assert_problems(
        &with(concat!(
            "triggers:\n",
            "  - email\n",
            "  - {condition: always}\n",
            "  - {action: email, condition: always}\n",
            "  - {action: email, condition: always, to: '', cc: [x], in_reply_to: 3}\n",
            "  - {action: webhook, condition: success}\n",
            "  - {action: webhook, condition: success, url: 'ftp://x'}\n",
            "  - {action: webhook, condition: success, url: 'https://'}\n",
            "  - {action: webhook, condition: success, url: [x]}\n",
            "  - {action: 5, condition: true}\n",
            "  - {action: email, condition: Failure, to: x}\n",
        )),
        &[
            ("triggers[0]", "found a string"),
            ("triggers[1].action", "required"),
            ("triggers[2].to", "required"),
            ("triggers[3].to", "empty"),
            ("triggers[3].cc", "found a list"),
            ("triggers[3].in_reply_to", "found a number"),
            ("triggers[4].url", "required"),
            ("triggers[5].url", "not an http"),
            ("triggers[6].url", "not an http"),
            ("triggers[7].url", "found a list"),
            ("triggers[8].condition", "found a boolean"),
            ("triggers[8].action", "found a number"),
            ("triggers[9].condition", "unknown condition 'Failure'"),
        ],
    );
}

#[test]
fn trigger_serialization_is_flat() {
    let m = ok(&with(
        "triggers:\n  - {action: email, condition: failure, to: a@b.c}\n",
    ));
    assert_eq!(
        serde_json::to_value(&m.triggers[0]).unwrap(),
        serde_json::json!({"action": "email", "to": "a@b.c", "cc": null, "in_reply_to": null, "condition": "failure"})
    );
}

// ---------------------------------------------------------------- environment

#[test]
fn environment_values() {
    let m = ok(&with(concat!(
        "environment:\n",
        "  S: text\n",
        "  Q: '1.10'\n",
        "  I: -7\n",
        "  BIG: 99999999999999999999\n",
        "  F: 1.5\n",
        "  B: true\n",
        "  N: null\n",
        "  N2:\n",
        "  L: [a, b]\n",
        "  EMPTY_LIST: []\n",
        "  lower_case: ok\n",
        "  _x9: ok\n",
    )));
    let e = &m.environment;
    assert_eq!(e["S"], EnvValue::Str("text".into()));
    assert_eq!(e["Q"], EnvValue::Str("1.10".into()));
    assert_eq!(e["I"], EnvValue::Int(-7));
    assert_eq!(e["BIG"], EnvValue::Str("99999999999999999999".into()));
    assert_eq!(e["F"], EnvValue::Float(1.5));
    assert_eq!(e["B"], EnvValue::Bool(true));
    assert_eq!(e["N"], EnvValue::Null);
    assert_eq!(e["N2"], EnvValue::Null);
    assert_eq!(e["L"], EnvValue::List(vec!["a".into(), "b".into()]));
    assert_eq!(e["EMPTY_LIST"], EnvValue::List(vec![]));
    assert_eq!(e.len(), 12);
    assert_eq!(
        serde_json::to_value(e).unwrap()["L"],
        serde_json::json!(["a", "b"])
    );
}

#[test]
fn environment_with_no_value_is_empty() {
    assert!(ok(&with("environment:\n")).environment.is_empty());
    assert!(ok(&with("environment: {}\n")).environment.is_empty());
}

#[test]
fn environment_problems() {
    assert_problems(
        &with("environment: [A=1]\n"),
        &[("environment", "found a list")],
    );
    assert_problems(
        &with(concat!(
            "environment:\n",
            "  1A: x\n",
            "  my-var: x\n",
            "  'A B': x\n",
            "  UID: 5\n",
            "  NUL: \"a\\0b\"\n",
            "  M: {a: b}\n",
            "  L: [a, 3.10, {b: c}]\n",
            "  7: x\n",
            "  D: a\n",
            "  D: b\n",
        )),
        &[
            ("environment", "keys must be strings"),
            ("environment.D", "more than once"),
            ("environment.1A", "not a valid variable name"),
            ("environment.my-var", "not a valid variable name"),
            ("environment.A B", "not a valid variable name"),
            ("environment.UID", "read-only"),
            ("environment.NUL", "NUL"),
            ("environment.M", "found a mapping"),
            ("environment.L[1]", "quote it"),
            ("environment.L[2]", "found a mapping"),
        ],
    );
}

// ---------------------------------------------------------------- secrets, shell, artifacts, oauth

#[test]
fn secrets_rules() {
    let m = ok(&with(
        "secrets:\n  - 11097f83-8e5a-46c9-be7f-d4c746730000\n  - my-deploy-key\n",
    ));
    assert_eq!(
        m.secrets,
        ["11097f83-8e5a-46c9-be7f-d4c746730000", "my-deploy-key"]
    );
    assert_problems(&with("secrets: abc\n"), &[("secrets", "found a string")]);
    assert_problems(&with("secrets: ['', x]\n"), &[("secrets[0]", "empty")]);
}

#[test]
fn shell_rules() {
    assert!(ok(&with("shell: true\n")).shell);
    assert!(!ok(&with("shell: false\n")).shell);
    assert!(ok(&with("shell: yes\n")).shell);
    assert!(!ok(&with("shell: off\n")).shell);
    assert_problems(&with("shell: 1\n"), &[("shell", "found a number")]);
    assert_problems(&with("shell: [true]\n"), &[("shell", "found a list")]);
}

#[test]
fn artifacts_rules() {
    let eight: Vec<String> = (0..8).map(|i| format!("  - dir{i}/file{i}\n")).collect();
    assert_eq!(
        ok(&with(&format!("artifacts:\n{}", eight.concat())))
            .artifacts
            .len(),
        8
    );
    let nine: Vec<String> = (0..9).map(|i| format!("  - file{i}\n")).collect();
    assert_problems(
        &with(&format!("artifacts:\n{}", nine.concat())),
        &[("artifacts", "at most 8")],
    );
    assert_problems(
        &with(
            "artifacts:\n  - a/out.tar\n  - b/out.tar\n  - c/out.tar/\n  - ''\n  - x/..\n  - 3\n",
        ),
        &[
            ("artifacts[3]", "empty"),
            ("artifacts[5]", "found a number"),
            ("artifacts[1]", "artifacts[0]"),
            ("artifacts[2]", "artifacts[0]"),
            ("artifacts[4]", "does not name a file"),
        ],
    );
    assert_problems(
        &with("artifacts: out.tar\n"),
        &[("artifacts", "found a string")],
    );
    assert!(ok(&with("artifacts: []\n")).artifacts.is_empty());
}

#[test]
fn oauth_rules() {
    assert_eq!(ok(&with("oauth: ''\n")).oauth, None);
    assert_eq!(ok(&with("oauth:\n")).oauth, None);
    assert_eq!(
        ok(&with("oauth: git.sr.ht/OBJECTS:RW git.sr.ht/PROFILE:RO\n"))
            .oauth
            .as_deref(),
        Some("git.sr.ht/OBJECTS:RW git.sr.ht/PROFILE:RO")
    );
    assert_problems(&with("oauth: [a]\n"), &[("oauth", "found a list")]);
}

// ---------------------------------------------------------------- end to end

#[test]
fn parsed_environment_renders_and_runs() {
    let m = ok(&with(
        "environment:\n  GREETING: \"it's $HOME\"\n  N: 3\n  L: [x, 'y z']\n",
    ));
    let ctx = BuildContext {
        job_id: 7,
        job_url: "https://example/job/7".into(),
        ci_name: "builds".into(),
        oauth_token: None,
    };
    let env = render_buildenv(&m.environment, &ctx);
    let out = std::process::Command::new("bash")
        .arg("-c")
        .arg(format!(
            "{env}\nprintf '%s|%s|%s|%s' \"$GREETING\" \"$N\" \"${{L[1]}}\" \"$JOB_ID\""
        ))
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "it's $HOME|3|y z|7");
}

#[test]
fn manifest_serializes_to_json() {
    let m = ok(&with("environment: {A: 1}\nsources: [https://h/r]\n"));
    let v = serde_json::to_value(&m).unwrap();
    assert_eq!(v["image"], "alpine/edge");
    assert_eq!(v["environment"]["A"], 1);
    assert_eq!(v["sources"][0]["scheme"], "git");
    assert_eq!(v["tasks"][0]["name"], "build");
}

#[test]
fn group_triggers_follow_the_manifest_rules() {
    let triggers = parse_triggers(&serde_json::json!([
        {"action": "webhook", "url": "https://example.org/hook", "condition": "always"},
        {"action": "email", "to": "a@example.org", "condition": "failure"},
    ]))
    .unwrap();
    assert_eq!(triggers.len(), 2);
    assert_eq!(triggers[1].condition, TriggerCondition::Failure);
    let problems = parse_triggers(&serde_json::json!([
        {"action": "webhook", "url": "ftp://x", "condition": "always"},
        {"action": "email", "condition": "sometimes"},
    ]))
    .unwrap_err();
    let fields: Vec<&str> = problems.iter().map(|p| p.field.as_str()).collect();
    assert_eq!(
        fields,
        ["triggers[0].url", "triggers[1].condition", "triggers[1].to"]
    );
    assert!(parse_triggers(&serde_json::json!({"action": "email"})).is_err());
    assert_eq!(parse_triggers(&serde_json::json!([])).unwrap(), vec![]);
}
