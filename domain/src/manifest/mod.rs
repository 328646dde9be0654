//! The build manifest: a YAML document describing one job (DESIGN §3).
//!
//! [`parse`] reads the text leniently (unknown top-level keys are ignored, an
//! explicit `null` behaves like an absent key) and validates it strictly,
//! returning *every* problem at once, each naming the field it concerns.
//!
//! Decisions where DESIGN §3 is silent are documented on the items below and in
//! `validate.rs`; the most visible ones:
//! - Only the first YAML document of a stream is used (a leading `---` is fine,
//!   later documents are ignored), but the whole stream must be valid YAML: a
//!   syntax error in a later document is reported, since libyaml sometimes ends
//!   the first document early (a line indented less than the root) and would
//!   otherwise drop the rest of the manifest silently. A leading byte-order mark
//!   is ignored.
//! - YAML aliases are expanded under a budget of [`MAX_EXPANDED_NODES`] nodes and
//!   [`MAX_EXPANDED_BYTES`] bytes of scalar text, on top of serde_yaml_ng's own
//!   repetition and recursion limits, so a "billion laughs" document (or a
//!   merely quadratic one) is rejected quickly.
//! - Merge keys (`<<: *anchor`) are applied, as PyYAML (builds.sr.ht) does.
//! - A key written twice in the same mapping is a problem (builds.sr.ht silently
//!   keeps the last one, which hides mistakes).
//! - A trigger's `condition` is required: builds.sr.ht never fires a trigger
//!   without one, and every trigger in the corpus has one.

mod buildenv;
mod sources;
mod validate;
mod yaml;

use std::collections::BTreeMap;
use std::fmt;

use serde::Serialize;

pub use buildenv::{render_buildenv, task_script, BuildContext};
pub use sources::{parse_source, Source, SourceScheme};

/// A manifest must be strictly smaller than this many bytes.
pub const MAX_MANIFEST_BYTES: usize = 16384;
/// A job note may hold at most this many characters.
pub const MAX_NOTE_CHARS: usize = 4096;
/// At most this many artifacts per manifest.
pub const MAX_ARTIFACTS: usize = 8;
/// Longest task name, in characters.
pub const MAX_TASK_NAME_CHARS: usize = 128;
/// Budget of YAML nodes after alias expansion. A manifest under
/// [`MAX_MANIFEST_BYTES`] without aliases has far fewer nodes than this.
pub const MAX_EXPANDED_NODES: usize = 50_000;
/// Budget of scalar text (bytes) after alias expansion.
pub const MAX_EXPANDED_BYTES: usize = 1 << 20;

/// A parsed, validated build manifest.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Manifest {
    pub image: String,
    /// `None` when absent, null or empty: the image's default architecture.
    pub arch: Option<String>,
    pub packages: Vec<String>,
    pub repositories: BTreeMap<String, String>,
    pub sources: Vec<Source>,
    /// In manifest order.
    pub tasks: Vec<Task>,
    pub triggers: Vec<Trigger>,
    pub environment: BTreeMap<String, EnvValue>,
    /// UUIDs or names, as written.
    pub secrets: Vec<String>,
    pub shell: bool,
    pub artifacts: Vec<String>,
    /// `None` when absent or empty.
    pub oauth: Option<String>,
}

/// One task: a name and the script run for it (verbatim, without the preamble
/// that [`task_script`] adds).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Task {
    pub name: String,
    pub script: String,
}

/// The value of one `environment` entry. Serialized untagged, i.e. as the plain
/// JSON value.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum EnvValue {
    Str(String),
    Int(i64),
    Float(f64),
    Bool(bool),
    Null,
    List(Vec<String>),
}

/// What a trigger does. Serialized with an `action` tag, like the manifest
/// syntax: `{"action": "email", "to": …}`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "action", rename_all = "lowercase")]
pub enum TriggerAction {
    Email {
        to: String,
        cc: Option<String>,
        in_reply_to: Option<String>,
    },
    Webhook {
        url: String,
    },
}

/// When a trigger fires.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum TriggerCondition {
    Always,
    Success,
    /// The job failed, timed out or was cancelled.
    Failure,
}

impl TriggerCondition {
    /// Whether a trigger with this condition fires for a job that ended with
    /// `job_status` (`success`, `failed`, `timeout` or `cancelled`). Any other
    /// status (a job that has not ended) matches nothing, not even `Always`.
    pub fn matches(&self, job_status: &str) -> bool {
        let failure = matches!(job_status, "failed" | "timeout" | "cancelled");
        let success = job_status == "success";
        match self {
            TriggerCondition::Always => success || failure,
            TriggerCondition::Success => success,
            TriggerCondition::Failure => failure,
        }
    }
}

/// One trigger. Serialized flat: `{"action": …, …, "condition": …}`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Trigger {
    #[serde(flatten)]
    pub action: TriggerAction,
    pub condition: TriggerCondition,
}

/// One problem; `field` is a path into the manifest like "image", "tasks",
/// "tasks[2]", "triggers[0].to", "environment.FOO", or "manifest" for a
/// whole-document problem (size, YAML syntax). `reason` is a human sentence.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    pub field: String,
    pub reason: String,
}

impl Problem {
    pub fn new(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Problem {
            field: field.into(),
            reason: reason.into(),
        }
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.reason)
    }
}

/// Parse leniently (unknown top-level keys ignored), validate strictly, return
/// EVERY problem at once.
pub fn parse(text: &str) -> Result<Manifest, Vec<Problem>> {
    let (manifest, problems) = parse_collect(text);
    match manifest {
        Some(manifest) if problems.is_empty() => Ok(manifest),
        _ => Err(problems),
    }
}

/// Triggers given apart from a manifest (a job group's, as JSON), checked by
/// the manifest's rules: a list of `{action, condition, …}` mappings.
pub fn parse_triggers(value: &serde_json::Value) -> Result<Vec<Trigger>, Vec<Problem>> {
    // JSON is YAML: one loader, one set of rules.
    let node = yaml::load_first_document(&value.to_string())
        .map_err(|reason| vec![Problem::new("triggers", reason)])?;
    match validate::triggers_from_node(node) {
        (triggers, problems) if problems.is_empty() => Ok(triggers),
        (_, problems) => Err(problems),
    }
}

/// Same as [`parse`], and also check that `image` is one of `offered` (used at
/// submit time). The problem, if any, is reported on field "image" along with
/// every other problem.
pub fn parse_for_images(text: &str, offered: &[String]) -> Result<Manifest, Vec<Problem>> {
    let (manifest, mut problems) = parse_collect(text);
    if let Some(m) = &manifest {
        // An empty or malformed image was already reported.
        if !m.image.is_empty() && !offered.iter().any(|o| o == &m.image) {
            problems.push(Problem::new("image", image_not_offered(&m.image, offered)));
        }
    }
    match manifest {
        Some(manifest) if problems.is_empty() => Ok(manifest),
        _ => Err(problems),
    }
}

fn image_not_offered(image: &str, offered: &[String]) -> String {
    const SHOWN: usize = 30;
    if offered.is_empty() {
        return format!("image '{image}' is not offered here: this deployment offers no images");
    }
    let mut sorted: Vec<&str> = offered.iter().map(String::as_str).collect();
    sorted.sort_unstable();
    sorted.dedup();
    let mut list = sorted
        .iter()
        .take(SHOWN)
        .copied()
        .collect::<Vec<_>>()
        .join(", ");
    if sorted.len() > SHOWN {
        list.push_str(&format!(" and {} more", sorted.len() - SHOWN));
    }
    format!("image '{image}' is not offered here; available: {list}")
}

/// Parse and validate, returning the manifest built from whatever was valid
/// (invalid fields take their defaults) and every problem. The manifest is
/// `None` only when the document could not be read at all.
fn parse_collect(text: &str) -> (Option<Manifest>, Vec<Problem>) {
    if text.len() >= MAX_MANIFEST_BYTES {
        return (
            None,
            vec![Problem::new(
                "manifest",
                format!(
                    "the manifest is {} bytes; it must be smaller than {} bytes",
                    text.len(),
                    MAX_MANIFEST_BYTES
                ),
            )],
        );
    }
    let node = match yaml::load_first_document(text) {
        Ok(node) => node,
        Err(reason) => return (None, vec![Problem::new("manifest", reason)]),
    };
    validate::manifest_from_node(node)
}

#[cfg(test)]
mod tests;
