//! From a YAML node tree to a [`Manifest`], collecting every problem.
//!
//! Choices made here where DESIGN §3 is silent:
//! - An explicit `null` anywhere a value is optional behaves like an absent key.
//! - `arch: ''` is treated like `arch: null` (the image's default), as is
//!   `oauth: ''`. A given `arch` must look like an architecture name.
//! - `image` must not contain whitespace, `\`, a leading `/`, or `.`/`..`
//!   segments: it names a directory on the worker.
//! - A task script that is a number or boolean is taken as its text; a null,
//!   list or mapping script is a problem.
//! - `shell` also accepts the YAML 1.1 spellings `yes`/`no`/`on`/`off`, which
//!   PyYAML (and so builds.sr.ht) reads as booleans.
//! - Two sources that would clone into the same directory are a problem (the
//!   second clone would fail).
//! - Environment variables named like bash's read-only variables (`UID`, …) are
//!   problems, as are NUL bytes in values; list items must be strings (a bare
//!   `3.10` would silently become `3.1`).
//! - Integers too large for i64 are kept as their decimal text.

use std::collections::{BTreeMap, HashMap};

use super::buildenv::{float_text, is_shell_identifier};
use super::yaml::Node;
use super::{
    parse_source, EnvValue, Manifest, Problem, Task, Trigger, TriggerAction, TriggerCondition,
    MAX_ARTIFACTS, MAX_TASK_NAME_CHARS,
};

const KNOWN_KEYS: [&str; 12] = [
    "image",
    "arch",
    "packages",
    "repositories",
    "sources",
    "tasks",
    "triggers",
    "environment",
    "secrets",
    "shell",
    "artifacts",
    "oauth",
];

/// Variables bash will not let a script assign.
const BASH_READONLY: [&str; 6] = [
    "BASHOPTS",
    "BASH_VERSINFO",
    "EUID",
    "PPID",
    "SHELLOPTS",
    "UID",
];

#[derive(Default)]
struct Problems(Vec<Problem>);

impl Problems {
    fn push(&mut self, field: impl Into<String>, reason: impl Into<String>) {
        self.0.push(Problem::new(field, reason));
    }
}

/// A mapping key, printable inside a field path or message.
fn shown(key: &str) -> String {
    key.chars()
        .flat_map(|c| {
            if c.is_control() {
                c.escape_default().collect::<Vec<_>>()
            } else {
                vec![c]
            }
        })
        .collect()
}

pub(crate) fn manifest_from_node(node: Node) -> (Option<Manifest>, Vec<Problem>) {
    let entries = match node {
        Node::Map(entries) => entries,
        Node::Null => {
            return (
                None,
                vec![Problem::new(
                    "manifest",
                    "the manifest is empty; it needs at least `image` and `tasks`",
                )],
            )
        }
        other => {
            return (
                None,
                vec![Problem::new(
                    "manifest",
                    format!(
                        "expected a mapping of keys (image, tasks, …) at the top level, found {}",
                        other.describe()
                    ),
                )],
            )
        }
    };

    let mut p = Problems::default();
    let mut top: HashMap<&'static str, Node> = HashMap::new();
    for (key, value) in entries {
        // Unknown and non-string keys are ignored.
        let Some(known) = key
            .as_str()
            .and_then(|k| KNOWN_KEYS.iter().find(|kk| **kk == k))
        else {
            continue;
        };
        if top.insert(known, value).is_some() {
            p.push(*known, format!("`{known}` is given more than once"));
        }
    }
    let mut take = |key: &str| match top.remove(key) {
        None | Some(Node::Null) => None,
        Some(node) => Some(node),
    };

    // `shell` decides whether tasks are required: read it first, but report
    // its problems in the usual key order, like every other field's.
    let mut shell_problems = Problems::default();
    let shell = shell(&mut shell_problems, take("shell"));

    let image = image(&mut p, take("image"));
    let arch = arch(&mut p, take("arch"));
    let packages = string_list(&mut p, "packages", take("packages"));
    let repositories = string_map(&mut p, "repositories", take("repositories"));
    let sources = sources(&mut p, take("sources"));
    let tasks = tasks(&mut p, take("tasks"), shell);
    let triggers = triggers(&mut p, take("triggers"));
    let environment = environment(&mut p, take("environment"));
    let secrets = secrets(&mut p, take("secrets"));
    p.0.append(&mut shell_problems.0);
    let artifacts = artifacts(&mut p, take("artifacts"));
    let oauth = oauth(&mut p, take("oauth"));

    let manifest = Manifest {
        image,
        arch,
        packages,
        repositories,
        sources,
        tasks,
        triggers,
        environment,
        secrets,
        shell,
        artifacts,
        oauth,
    };
    (Some(manifest), p.0)
}

fn found(expected: &str, node: &Node) -> String {
    let hint = match node {
        Node::Str(_) if expected.starts_with("a list") => {
            " (write each item on its own line as `- item`)"
        }
        _ => "",
    };
    format!("expected {expected}, found {}{hint}", node.describe())
}

fn has_control(s: &str) -> bool {
    s.chars().any(|c| c.is_control() && c != '\t')
}

fn image(p: &mut Problems, node: Option<Node>) -> String {
    match node {
        None => {
            p.push(
                "image",
                "is required: name the build image, e.g. debian/bookworm",
            );
            String::new()
        }
        Some(Node::Str(s)) => {
            if s.trim().is_empty() {
                p.push(
                    "image",
                    "must not be empty: name the build image, e.g. debian/bookworm",
                );
                String::new()
            } else if s
                .chars()
                .any(|c| c.is_whitespace() || c.is_control() || c == '\\')
                || s.starts_with('/')
                || s.split('/').any(|seg| seg == ".." || seg == ".")
            {
                p.push(
                    "image",
                    format!(
                        "'{}' is not an image name (like debian/bookworm: no spaces, no leading '/', no '.' or '..')",
                        s.escape_default()
                    ),
                );
                String::new()
            } else {
                s
            }
        }
        Some(other) => {
            p.push("image", found("a string", &other));
            String::new()
        }
    }
}

fn arch(p: &mut Problems, node: Option<Node>) -> Option<String> {
    match node {
        None => None,
        Some(Node::Str(s)) if s.is_empty() => None,
        Some(Node::Str(s)) => {
            if s.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
            {
                Some(s)
            } else {
                p.push(
                    "arch",
                    format!(
                        "'{}' is not an architecture name (letters, digits, '_', '-', '.'), e.g. x86_64 or aarch64",
                        s.escape_default()
                    ),
                );
                None
            }
        }
        Some(other) => {
            p.push("arch", found("a string, e.g. x86_64 or aarch64", &other));
            None
        }
    }
}

/// A list of non-empty strings. Null/absent is empty.
fn string_list(p: &mut Problems, field: &str, node: Option<Node>) -> Vec<String> {
    string_list_indexed(p, field, node)
        .1
        .into_iter()
        .map(|(_, s)| s)
        .collect()
}

/// Like [`string_list`], also giving the number of items written and the
/// index of each valid one.
fn string_list_indexed(
    p: &mut Problems,
    field: &str,
    node: Option<Node>,
) -> (usize, Vec<(usize, String)>) {
    let items = match node {
        None => return (0, Vec::new()),
        Some(Node::Seq(items)) => items,
        Some(other) => {
            p.push(field, found("a list of strings", &other));
            return (0, Vec::new());
        }
    };
    let total = items.len();
    let mut out = Vec::with_capacity(total);
    for (i, item) in items.into_iter().enumerate() {
        match item {
            Node::Str(s) if s.trim().is_empty() => {
                p.push(format!("{field}[{i}]"), "must not be empty")
            }
            Node::Str(s) if has_control(&s) => p.push(
                format!("{field}[{i}]"),
                "must not contain control characters",
            ),
            Node::Str(s) => out.push((i, s)),
            other => p.push(format!("{field}[{i}]"), found("a string", &other)),
        }
    }
    (total, out)
}

/// The entries of a mapping with string keys; reports non-string keys and keys
/// given twice (the last one is kept, in the position of the first).
fn mapping(
    p: &mut Problems,
    field: &str,
    expected: &str,
    node: Option<Node>,
) -> Vec<(String, Node)> {
    let entries = match node {
        None => return Vec::new(),
        Some(Node::Map(entries)) => entries,
        Some(other) => {
            p.push(field, found(expected, &other));
            return Vec::new();
        }
    };
    let mut out: Vec<(String, Node)> = Vec::with_capacity(entries.len());
    for (key, value) in entries {
        let key = match key {
            Node::Str(k) => k,
            other => {
                p.push(
                    field,
                    format!("keys must be strings, found {} key", other.describe()),
                );
                continue;
            }
        };
        if let Some(slot) = out.iter_mut().find(|(k, _)| *k == key) {
            p.push(
                format!("{field}.{}", shown(&key)),
                "is given more than once",
            );
            slot.1 = value;
        } else {
            out.push((key, value));
        }
    }
    out
}

fn string_map(p: &mut Problems, field: &str, node: Option<Node>) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for (key, value) in mapping(p, field, "a mapping of names to strings", node) {
        match value {
            Node::Str(s) => {
                out.insert(key, s);
            }
            other => p.push(
                format!("{field}.{}", shown(&key)),
                found("a string", &other),
            ),
        }
    }
    out
}

fn sources(p: &mut Problems, node: Option<Node>) -> Vec<super::Source> {
    let mut out: Vec<super::Source> = Vec::new();
    let mut first_index: HashMap<String, usize> = HashMap::new();
    let items = match node {
        None => return out,
        Some(Node::Seq(items)) => items,
        Some(other) => {
            p.push("sources", found("a list of strings", &other));
            return out;
        }
    };
    for (i, item) in items.into_iter().enumerate() {
        let field = format!("sources[{i}]");
        let text = match item {
            Node::Str(s) => s,
            other => {
                p.push(field, found("a string like [dir::]url[#ref]", &other));
                continue;
            }
        };
        match parse_source(&text) {
            Ok(source) => {
                if let Some(first) = first_index.get(&source.dir) {
                    p.push(
                        field,
                        format!(
                            "clones into '{}', like sources[{first}]; give one of them another directory with dir::url",
                            source.dir
                        ),
                    );
                } else {
                    first_index.insert(source.dir.clone(), i);
                    out.push(source);
                }
            }
            Err(reason) => p.push(field, reason),
        }
    }
    out
}

fn task_name_problem(name: &str) -> Option<String> {
    if name.is_empty() {
        return Some("the task name must not be empty".into());
    }
    if name.chars().count() > MAX_TASK_NAME_CHARS {
        return Some(format!(
            "task name '{}…' is longer than {MAX_TASK_NAME_CHARS} characters",
            name.chars().take(20).collect::<String>()
        ));
    }
    if !name
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-')
    {
        return Some(format!(
            "task name '{}' is invalid: use only lowercase letters, digits, '_' and '-'",
            shown(name)
        ));
    }
    None
}

fn tasks(p: &mut Problems, node: Option<Node>, shell: bool) -> Vec<Task> {
    let items = match node {
        None => {
            if !shell {
                p.push(
                    "tasks",
                    "is required: list at least one task (or set shell: true)",
                );
            }
            return Vec::new();
        }
        Some(Node::Seq(items)) => items,
        Some(other) => {
            let hint = if matches!(other, Node::Map(_)) {
                " (write each task as a list item: `- name: script`)"
            } else {
                ""
            };
            p.push(
                "tasks",
                format!(
                    "expected a list of `name: script` mappings, found {}{hint}",
                    other.describe()
                ),
            );
            return Vec::new();
        }
    };
    if items.is_empty() && !shell {
        p.push(
            "tasks",
            "must contain at least one task (or set shell: true)",
        );
    }
    let mut out: Vec<Task> = Vec::with_capacity(items.len());
    let mut first_index: HashMap<String, usize> = HashMap::new();
    for (i, item) in items.into_iter().enumerate() {
        let field = format!("tasks[{i}]");
        let mut entries = match item {
            Node::Map(entries) if entries.len() == 1 => entries,
            Node::Map(entries) if entries.is_empty() => {
                p.push(
                    field,
                    "expected one `name: script` pair, found an empty mapping",
                );
                continue;
            }
            Node::Map(entries) => {
                let keys: Vec<String> = entries
                    .iter()
                    .map(|(k, _)| match k {
                        Node::Str(s) => shown(s),
                        other => other.describe().to_string(),
                    })
                    .collect();
                p.push(
                    field,
                    format!(
                        "expected one `name: script` pair, found {} keys ({}); is the script indented under the name?",
                        keys.len(),
                        keys.join(", ")
                    ),
                );
                continue;
            }
            other => {
                p.push(
                    field,
                    format!(
                        "expected a `name: script` mapping, found {}",
                        other.describe()
                    ),
                );
                continue;
            }
        };
        let Some((key, value)) = entries.pop() else {
            continue;
        };
        let name = match key {
            Node::Str(name) => name,
            other => {
                p.push(
                    field,
                    format!("the task name must be a string, found {}", other.describe()),
                );
                continue;
            }
        };
        let mut ok = true;
        if let Some(reason) = task_name_problem(&name) {
            p.push(field.clone(), reason);
            ok = false;
        }
        let script = match value {
            Node::Str(s) => Some(s),
            Node::Int(n) => Some(n.to_string()),
            Node::Float(f) => Some(float_text(f)),
            Node::Bool(b) => Some(b.to_string()),
            Node::Null => {
                p.push(
                    field.clone(),
                    format!("task '{}' has no script", shown(&name)),
                );
                None
            }
            other => {
                p.push(
                    field.clone(),
                    format!(
                        "the script of task '{}' must be a string, found {} (write it as a block: `{}: |` then the indented lines)",
                        shown(&name),
                        other.describe(),
                        shown(&name)
                    ),
                );
                None
            }
        };
        if ok {
            if let Some(first) = first_index.get(&name) {
                p.push(
                    field.clone(),
                    format!("task name '{name}' is already used by tasks[{first}]"),
                );
                ok = false;
            } else {
                first_index.insert(name.clone(), i);
            }
        }
        if let (true, Some(script)) = (ok, script) {
            out.push(Task { name, script });
        }
    }
    out
}

/// An optional string field of a trigger.
fn optional_string(p: &mut Problems, field: String, node: Option<Node>) -> Option<String> {
    match node {
        None | Some(Node::Null) => None,
        Some(Node::Str(s)) => Some(s),
        Some(other) => {
            p.push(field, found("a string", &other));
            None
        }
    }
}

fn is_http_url(url: &str) -> bool {
    let lower = url.to_ascii_lowercase();
    let rest = lower
        .strip_prefix("https://")
        .or_else(|| lower.strip_prefix("http://"));
    match rest {
        Some(rest) => {
            let host = rest.split(['/', '?', '#']).next().unwrap_or("");
            !host.is_empty() && !url.chars().any(|c| c.is_whitespace() || c.is_control())
        }
        None => false,
    }
}

/// Triggers given on their own (a job group's), with the manifest's rules;
/// problems name fields as `triggers[i].…`.
pub(crate) fn triggers_from_node(node: Node) -> (Vec<Trigger>, Vec<Problem>) {
    let mut p = Problems::default();
    let found = triggers(&mut p, Some(node));
    (found, p.0)
}

fn triggers(p: &mut Problems, node: Option<Node>) -> Vec<Trigger> {
    let items = match node {
        None => return Vec::new(),
        Some(Node::Seq(items)) => items,
        Some(other) => {
            p.push("triggers", found("a list of mappings", &other));
            return Vec::new();
        }
    };
    let mut out = Vec::with_capacity(items.len());
    for (i, item) in items.into_iter().enumerate() {
        let field = format!("triggers[{i}]");
        let entries = match item {
            Node::Map(_) => mapping(p, &field, "a mapping", Some(item)),
            other => {
                p.push(
                    field,
                    format!(
                        "expected a mapping with `action` and `condition`, found {}",
                        other.describe()
                    ),
                );
                continue;
            }
        };
        let mut entries: HashMap<String, Node> = entries.into_iter().collect();
        let mut get = |key: &str| match entries.remove(key) {
            None | Some(Node::Null) => None,
            Some(node) => Some(node),
        };

        let condition = match get("condition") {
            None => {
                p.push(
                    format!("{field}.condition"),
                    "is required: always, success or failure",
                );
                None
            }
            Some(Node::Str(c)) => match c.as_str() {
                "always" => Some(TriggerCondition::Always),
                "success" => Some(TriggerCondition::Success),
                "failure" => Some(TriggerCondition::Failure),
                other => {
                    p.push(
                        format!("{field}.condition"),
                        format!(
                            "unknown condition '{}'; expected always, success or failure",
                            shown(other)
                        ),
                    );
                    None
                }
            },
            Some(other) => {
                p.push(
                    format!("{field}.condition"),
                    found("always, success or failure", &other),
                );
                None
            }
        };

        let action = match get("action") {
            None => {
                p.push(format!("{field}.action"), "is required: email or webhook");
                None
            }
            Some(Node::Str(a)) if a == "email" => {
                let to = match get("to") {
                    None => {
                        p.push(format!("{field}.to"), "is required for an email trigger");
                        None
                    }
                    Some(Node::Str(to)) if to.trim().is_empty() => {
                        p.push(format!("{field}.to"), "must not be empty");
                        None
                    }
                    Some(Node::Str(to)) => Some(to),
                    Some(other) => {
                        p.push(
                            format!("{field}.to"),
                            found("a string of addresses", &other),
                        );
                        None
                    }
                };
                let cc = optional_string(p, format!("{field}.cc"), get("cc"));
                let in_reply_to =
                    optional_string(p, format!("{field}.in_reply_to"), get("in_reply_to"));
                to.map(|to| TriggerAction::Email {
                    to,
                    cc,
                    in_reply_to,
                })
            }
            Some(Node::Str(a)) if a == "webhook" => match get("url") {
                None => {
                    p.push(format!("{field}.url"), "is required for a webhook trigger");
                    None
                }
                Some(Node::Str(url)) if is_http_url(&url) => Some(TriggerAction::Webhook { url }),
                Some(Node::Str(url)) => {
                    p.push(
                        format!("{field}.url"),
                        format!(
                            "'{}' is not an http:// or https:// URL",
                            url.escape_default()
                        ),
                    );
                    None
                }
                Some(other) => {
                    p.push(
                        format!("{field}.url"),
                        found("an http:// or https:// URL", &other),
                    );
                    None
                }
            },
            Some(Node::Str(a)) => {
                p.push(
                    format!("{field}.action"),
                    format!("unknown action '{}'; expected email or webhook", shown(&a)),
                );
                None
            }
            Some(other) => {
                p.push(format!("{field}.action"), found("email or webhook", &other));
                None
            }
        };
        if let (Some(action), Some(condition)) = (action, condition) {
            out.push(Trigger { action, condition });
        }
    }
    out
}

fn environment(p: &mut Problems, node: Option<Node>) -> BTreeMap<String, EnvValue> {
    let mut out = BTreeMap::new();
    for (name, value) in mapping(
        p,
        "environment",
        "a mapping of variable names to values",
        node,
    ) {
        let field = format!("environment.{}", shown(&name));
        let mut ok = true;
        if !is_shell_identifier(&name) {
            p.push(
                field.clone(),
                format!(
                    "'{}' is not a valid variable name: use letters, digits and '_', not starting with a digit",
                    shown(&name)
                ),
            );
            ok = false;
        } else if BASH_READONLY.contains(&name.as_str()) {
            p.push(
                field.clone(),
                format!("{name} is read-only in bash and cannot be set"),
            );
            ok = false;
        }
        let value = match value {
            Node::Str(s) if s.contains('\0') => {
                p.push(
                    field.clone(),
                    "contains a NUL byte, which a shell variable cannot hold",
                );
                None
            }
            Node::Str(s) => Some(EnvValue::Str(s)),
            Node::Int(n) => Some(match i64::try_from(n) {
                Ok(n) => EnvValue::Int(n),
                Err(_) => EnvValue::Str(n.to_string()),
            }),
            Node::Float(f) => Some(EnvValue::Float(f)),
            Node::Bool(b) => Some(EnvValue::Bool(b)),
            Node::Null => Some(EnvValue::Null),
            Node::Seq(items) => {
                let mut list = Vec::with_capacity(items.len());
                let mut list_ok = true;
                for (i, item) in items.into_iter().enumerate() {
                    match item {
                        Node::Str(s) if s.contains('\0') => {
                            p.push(
                                format!("{field}[{i}]"),
                                "contains a NUL byte, which a shell variable cannot hold",
                            );
                            list_ok = false;
                        }
                        Node::Str(s) => list.push(s),
                        other => {
                            let hint =
                                if matches!(other, Node::Int(_) | Node::Float(_) | Node::Bool(_)) {
                                    " (quote it, e.g. '3.10', so it keeps its exact text)"
                                } else {
                                    ""
                                };
                            p.push(
                                format!("{field}[{i}]"),
                                format!("expected a string, found {}{hint}", other.describe()),
                            );
                            list_ok = false;
                        }
                    }
                }
                list_ok.then_some(EnvValue::List(list))
            }
            Node::Map(_) => {
                p.push(
                    field.clone(),
                    "expected a string, number, boolean, null or list of strings, found a mapping",
                );
                None
            }
        };
        if let (true, Some(value)) = (ok, value) {
            out.insert(name, value);
        }
    }
    out
}

fn secrets(p: &mut Problems, node: Option<Node>) -> Vec<String> {
    string_list(p, "secrets", node)
}

fn shell(p: &mut Problems, node: Option<Node>) -> bool {
    match node {
        None => false,
        Some(Node::Bool(b)) => b,
        // YAML 1.1 booleans, as PyYAML reads them.
        Some(Node::Str(s)) if matches!(s.to_ascii_lowercase().as_str(), "yes" | "on") => true,
        Some(Node::Str(s)) if matches!(s.to_ascii_lowercase().as_str(), "no" | "off") => false,
        Some(other) => {
            p.push("shell", found("true or false", &other));
            false
        }
    }
}

fn basename(path: &str) -> &str {
    path.trim_end_matches('/').rsplit('/').next().unwrap_or("")
}

fn artifacts(p: &mut Problems, node: Option<Node>) -> Vec<String> {
    let (total, list) = string_list_indexed(p, "artifacts", node);
    if total > MAX_ARTIFACTS {
        p.push(
            "artifacts",
            format!("at most {MAX_ARTIFACTS} artifacts are allowed, found {total}"),
        );
    }
    let mut first_index: HashMap<&str, usize> = HashMap::new();
    for (i, path) in &list {
        let base = basename(path);
        if base.is_empty() || base == "." || base == ".." {
            p.push(
                format!("artifacts[{i}]"),
                format!("'{}' does not name a file", path.escape_default()),
            );
        } else if let Some(first) = first_index.get(base) {
            p.push(
                format!("artifacts[{i}]"),
                format!("file name '{base}' is the same as artifacts[{first}]'s; artifacts need distinct file names"),
            );
        } else {
            first_index.insert(base, *i);
        }
    }
    list.into_iter().map(|(_, s)| s).collect()
}

fn oauth(p: &mut Problems, node: Option<Node>) -> Option<String> {
    match node {
        None => None,
        Some(Node::Str(s)) if s.trim().is_empty() => None,
        Some(Node::Str(s)) => Some(s),
        Some(other) => {
            p.push("oauth", found("a string of grants", &other));
            None
        }
    }
}
