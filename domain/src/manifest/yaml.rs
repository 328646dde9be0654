//! Reading YAML into a small node tree, with a budget on alias expansion.
//!
//! serde_yaml_ng expands aliases by replaying the anchored events, and stops a
//! "billion laughs" document with its repetition limit (jumps > 100 × events).
//! That limit alone still lets a 16 KiB document expand quadratically (one long
//! anchored list aliased thousands of times), so every node and every byte of
//! scalar text that reaches us is charged against a budget, and loading stops
//! with an error the moment the budget runs out.

use std::cell::Cell;
use std::fmt;

use serde::de::{self, DeserializeSeed, EnumAccess, MapAccess, SeqAccess, VariantAccess, Visitor};

use super::{MAX_EXPANDED_BYTES, MAX_EXPANDED_NODES};

/// A YAML value. Mappings keep their entries in order, duplicates included, so
/// the validator can report duplicate keys.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Node {
    Null,
    Bool(bool),
    Int(i128),
    Float(f64),
    Str(String),
    Seq(Vec<Node>),
    Map(Vec<(Node, Node)>),
}

impl Node {
    /// "a string", "a list", … for messages.
    pub(crate) fn describe(&self) -> &'static str {
        match self {
            Node::Null => "null",
            Node::Bool(_) => "a boolean",
            Node::Int(_) | Node::Float(_) => "a number",
            Node::Str(_) => "a string",
            Node::Seq(_) => "a list",
            Node::Map(_) => "a mapping",
        }
    }

    pub(crate) fn as_str(&self) -> Option<&str> {
        match self {
            Node::Str(s) => Some(s),
            _ => None,
        }
    }
}

/// Most documents a stream may hold (only the first is used).
const MAX_DOCUMENTS: usize = 1000;

/// Load the first document of `text`. Errors are human sentences, with the
/// line and column when the parser knows them.
///
/// The whole stream must be valid YAML even though only its first document is
/// used: libyaml ends a document early when a line is indented less than the
/// document's root (a leading byte-order mark does that too, so it is
/// removed), and the error then belongs to the *next* document. Ignoring later
/// documents would silently drop the rest of the manifest.
pub(crate) fn load_first_document(text: &str) -> Result<Node, String> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let budget = Budget {
        nodes: Cell::new(MAX_EXPANDED_NODES),
        bytes: Cell::new(MAX_EXPANDED_BYTES),
    };
    let seed = NodeSeed { budget: &budget };
    let mut documents = serde_yaml_ng::Deserializer::from_str(text);
    let Some(first) = documents.next() else {
        return Ok(Node::Null);
    };
    let node = seed
        .deserialize(first)
        .map_err(|e| describe_error(text, &e))?;
    // The iterator can repeat an error forever: stop at the first one.
    for (n, document) in documents.enumerate() {
        if n + 1 >= MAX_DOCUMENTS {
            return Err(format!("invalid YAML: more than {MAX_DOCUMENTS} documents"));
        }
        seed.deserialize(document)
            .map_err(|e| describe_error(text, &e))?;
    }
    Ok(node)
}

fn describe_error(text: &str, e: &serde_yaml_ng::Error) -> String {
    let message = e.to_string();
    let location = e.location().map(|l| (l.line(), l.column()));
    let hint = if message.contains("repetition limit exceeded") || message.contains(BUDGET_MESSAGE)
    {
        " (aliases expand too much: is this a YAML bomb?)"
    } else if message.contains("recursion limit exceeded") {
        " (the document is nested too deeply)"
    } else if location.and_then(|(line, column)| char_at(text, line, column)) == Some('\t') {
        " (YAML does not allow tabs for indentation: use spaces)"
    } else if message.contains("could not find expected ':'") {
        " (if this line belongs to a `name: |` block above, indent it further than that name)"
    } else {
        ""
    };
    match location {
        Some((line, column)) => {
            format!("invalid YAML at line {line}, column {column}: {message}{hint}")
        }
        None => format!("invalid YAML: {message}{hint}"),
    }
}

/// The character at a 1-based line and column.
fn char_at(text: &str, line: usize, column: usize) -> Option<char> {
    text.split('\n')
        .nth(line.checked_sub(1)?)?
        .chars()
        .nth(column.checked_sub(1)?)
}

const BUDGET_MESSAGE: &str = "the document is too large once its aliases are expanded";

struct Budget {
    nodes: Cell<usize>,
    bytes: Cell<usize>,
}

impl Budget {
    fn charge<E: de::Error>(&self, bytes: usize) -> Result<(), E> {
        let nodes = self.nodes.get();
        let left = self.bytes.get();
        if nodes == 0 || bytes > left {
            return Err(E::custom(format!(
                "{BUDGET_MESSAGE} (limits: {MAX_EXPANDED_NODES} nodes, {MAX_EXPANDED_BYTES} bytes of text)"
            )));
        }
        self.nodes.set(nodes - 1);
        self.bytes.set(left - bytes);
        Ok(())
    }
}

#[derive(Clone, Copy)]
struct NodeSeed<'b> {
    budget: &'b Budget,
}

impl<'de> DeserializeSeed<'de> for NodeSeed<'_> {
    type Value = Node;

    fn deserialize<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<Node, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for NodeSeed<'_> {
    type Value = Node;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any YAML value")
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Node, E> {
        self.budget.charge(0)?;
        Ok(Node::Bool(v))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Node, E> {
        self.budget.charge(0)?;
        Ok(Node::Int(v.into()))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Node, E> {
        self.budget.charge(0)?;
        Ok(Node::Int(v.into()))
    }

    fn visit_i128<E: de::Error>(self, v: i128) -> Result<Node, E> {
        self.budget.charge(0)?;
        Ok(Node::Int(v))
    }

    fn visit_u128<E: de::Error>(self, v: u128) -> Result<Node, E> {
        self.budget.charge(0)?;
        match i128::try_from(v) {
            Ok(v) => Ok(Node::Int(v)),
            // Keep the digits rather than fail: it is only ever shown as text.
            Err(_) => Ok(Node::Str(v.to_string())),
        }
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Node, E> {
        self.budget.charge(0)?;
        Ok(Node::Float(v))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Node, E> {
        self.budget.charge(v.len())?;
        Ok(Node::Str(v.to_owned()))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Node, E> {
        self.budget.charge(v.len())?;
        Ok(Node::Str(v))
    }

    fn visit_bytes<E: de::Error>(self, _v: &[u8]) -> Result<Node, E> {
        Err(E::custom("binary values are not supported"))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Node, E> {
        self.budget.charge(0)?;
        Ok(Node::Null)
    }

    fn visit_none<E: de::Error>(self) -> Result<Node, E> {
        self.visit_unit()
    }

    fn visit_some<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<Node, D::Error> {
        deserializer.deserialize_any(self)
    }

    fn visit_newtype_struct<D: de::Deserializer<'de>>(
        self,
        deserializer: D,
    ) -> Result<Node, D::Error> {
        deserializer.deserialize_any(self)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Node, A::Error> {
        self.budget.charge(0)?;
        let mut items = Vec::new();
        while let Some(item) = seq.next_element_seed(self)? {
            items.push(item);
        }
        Ok(Node::Seq(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Node, A::Error> {
        self.budget.charge(0)?;
        let mut entries = Vec::new();
        while let Some(key) = map.next_key_seed(self)? {
            let value = map.next_value_seed(self)?;
            entries.push((key, value));
        }
        Ok(Node::Map(apply_merge(entries)))
    }

    /// A tagged value (`!foo bar`): the tag is ignored, the value kept.
    fn visit_enum<A: EnumAccess<'de>>(self, data: A) -> Result<Node, A::Error> {
        let (_tag, variant) = data.variant_seed(TagSeed)?;
        variant.newtype_variant_seed(self)
    }
}

/// Reads and discards a tag name.
struct TagSeed;

impl<'de> DeserializeSeed<'de> for TagSeed {
    type Value = ();

    fn deserialize<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer
            .deserialize_ignored_any(de::IgnoredAny)
            .map(|_| ())
    }
}

/// Apply YAML merge keys (`<<: *anchor` or `<<: [*a, *b]`): entries written in
/// the mapping win over merged ones, and earlier merged mappings win over later
/// ones. A `<<` whose value is not a mapping (or list of mappings) is kept as an
/// ordinary key. Entries are moved, never cloned, so merging cannot grow the
/// document beyond what the budget already counted.
fn apply_merge(entries: Vec<(Node, Node)>) -> Vec<(Node, Node)> {
    if !entries.iter().any(|(k, _)| is_merge_key(k)) {
        return entries;
    }
    let mut own = Vec::with_capacity(entries.len());
    let mut sources = Vec::new();
    for (key, value) in entries {
        if is_merge_key(&key) && is_mergeable(&value) {
            sources.push(value);
        } else {
            own.push((key, value));
        }
    }
    let mut merged: Vec<(Node, Node)> = Vec::new();
    for source in sources {
        let maps = match source {
            Node::Map(m) => vec![m],
            Node::Seq(items) => items
                .into_iter()
                .filter_map(|i| match i {
                    Node::Map(m) => Some(m),
                    _ => None,
                })
                .collect(),
            _ => Vec::new(),
        };
        for map in maps {
            for (key, value) in map {
                let taken =
                    own.iter().any(|(k, _)| *k == key) || merged.iter().any(|(k, _)| *k == key);
                if !taken {
                    merged.push((key, value));
                }
            }
        }
    }
    own.extend(merged);
    own
}

fn is_merge_key(key: &Node) -> bool {
    key.as_str() == Some("<<")
}

fn is_mergeable(value: &Node) -> bool {
    match value {
        Node::Map(_) => true,
        Node::Seq(items) => !items.is_empty() && items.iter().all(|i| matches!(i, Node::Map(_))),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loads_scalars_and_collections() {
        let node = load_first_document("a: 1\nb: [x, 2.5, true, null]\nc: {d: e}\n").unwrap();
        assert_eq!(
            node,
            Node::Map(vec![
                (Node::Str("a".into()), Node::Int(1)),
                (
                    Node::Str("b".into()),
                    Node::Seq(vec![
                        Node::Str("x".into()),
                        Node::Float(2.5),
                        Node::Bool(true),
                        Node::Null
                    ])
                ),
                (
                    Node::Str("c".into()),
                    Node::Map(vec![(Node::Str("d".into()), Node::Str("e".into()))])
                ),
            ])
        );
    }

    #[test]
    fn empty_text_is_null() {
        assert_eq!(load_first_document("").unwrap(), Node::Null);
        assert_eq!(
            load_first_document("# only a comment\n").unwrap(),
            Node::Null
        );
        assert_eq!(load_first_document("---\n").unwrap(), Node::Null);
    }

    #[test]
    fn first_document_only() {
        let node = load_first_document("---\na: 1\n---\nb: 2\n").unwrap();
        assert_eq!(node, Node::Map(vec![(Node::Str("a".into()), Node::Int(1))]));
        // ...but the whole stream must be valid YAML.
        let err = load_first_document("a: 1\n---\nb: [\n").unwrap_err();
        assert!(err.contains("line 4"), "{err}");
        let node = load_first_document("---\n---\n---\n").unwrap();
        assert_eq!(node, Node::Null);
    }

    #[test]
    fn a_line_indented_less_than_the_root_is_an_error() {
        // libyaml ends the first document at `b:`; it must not be dropped silently.
        let err = load_first_document("  a: 1\nb: 2\n").unwrap_err();
        assert!(err.contains("line 2, column 1"), "{err}");
    }

    #[test]
    fn byte_order_mark_is_ignored() {
        let node = load_first_document("\u{feff}a: 1\nb: 2\n").unwrap();
        let Node::Map(entries) = node else { panic!() };
        assert_eq!(entries.len(), 2);
    }

    #[test]
    fn bombs_in_later_documents_are_stopped_too() {
        let mut text = String::from("a: 1\n---\nl0: &l0 lol\n");
        for level in 1..=9 {
            let refs = vec![format!("*l{}", level - 1); 9].join(", ");
            text.push_str(&format!("l{level}: &l{level} [{refs}]\n"));
        }
        let err = load_first_document(&text).unwrap_err();
        assert!(err.contains("YAML bomb"), "{err}");
    }

    #[test]
    fn duplicate_keys_are_kept() {
        let node = load_first_document("a: 1\na: 2\n").unwrap();
        let Node::Map(entries) = node else { panic!() };
        assert_eq!(entries.len(), 2);
    }

    #[test]
    fn tags_are_ignored() {
        let node = load_first_document("a: !custom 5\nb: !!str 7\n").unwrap();
        let Node::Map(entries) = node else { panic!() };
        assert_eq!(entries[0].1, Node::Int(5));
        assert_eq!(entries[1].1, Node::Str("7".into()));
    }

    #[test]
    fn aliases_and_merge_keys() {
        let text = "base: &b {x: 1, y: 2}\nderived:\n  <<: *b\n  y: 3\nlist: [*b]\n";
        let node = load_first_document(text).unwrap();
        let Node::Map(entries) = node else { panic!() };
        assert_eq!(
            entries[1].1,
            Node::Map(vec![
                (Node::Str("y".into()), Node::Int(3)),
                (Node::Str("x".into()), Node::Int(1)),
            ])
        );
        assert_eq!(entries[2].1, Node::Seq(vec![entries[0].1.clone()]));
    }

    #[test]
    fn merge_of_a_list_earlier_wins() {
        let text = "a: &a {k: 1}\nb: &b {k: 2, m: 3}\nc:\n  <<: [*a, *b]\n";
        let node = load_first_document(text).unwrap();
        let Node::Map(entries) = node else { panic!() };
        assert_eq!(
            entries[2].1,
            Node::Map(vec![
                (Node::Str("k".into()), Node::Int(1)),
                (Node::Str("m".into()), Node::Int(3)),
            ])
        );
    }

    #[test]
    fn merge_of_a_scalar_stays_a_key() {
        let node = load_first_document("c:\n  <<: 5\n").unwrap();
        let Node::Map(entries) = node else { panic!() };
        assert_eq!(
            entries[0].1,
            Node::Map(vec![(Node::Str("<<".into()), Node::Int(5))])
        );
    }

    #[test]
    fn syntax_error_has_line_and_column() {
        let err = load_first_document("a: 1\nb: [1, 2\n").unwrap_err();
        assert!(err.contains("line"), "{err}");
        assert!(err.contains("column"), "{err}");
        let err = load_first_document("a:\n\t- b\n").unwrap_err();
        assert!(err.contains("line 2, column 1"), "{err}");
        assert!(err.contains("tabs"), "{err}");
        let err = load_first_document("t:\n  - b: |\n    x\n    y\n").unwrap_err();
        assert!(err.contains("indent it further"), "{err}");
    }

    #[test]
    fn quadratic_expansion_is_stopped_by_the_budget() {
        // One anchored list of 1000 items aliased 3000 times: far under the
        // repetition limit of serde_yaml_ng, but 3 million nodes once expanded.
        let mut text = String::from("a: &a [");
        text.push_str(&vec!["x"; 1000].join(","));
        text.push_str("]\nb: [");
        text.push_str(&vec!["*a"; 3000].join(","));
        text.push_str("]\n");
        assert!(text.len() < super::super::MAX_MANIFEST_BYTES);
        let start = std::time::Instant::now();
        let err = load_first_document(&text).unwrap_err();
        assert!(err.contains("YAML bomb"), "{err}");
        assert!(start.elapsed() < std::time::Duration::from_secs(5));
    }

    #[test]
    fn long_string_aliased_is_stopped_by_the_byte_budget() {
        let long = "y".repeat(10_000);
        let mut text = format!("a: &a {long}\nb: [");
        text.push_str(&vec!["*a"; 1000].join(","));
        text.push_str("]\n");
        assert!(text.len() < super::super::MAX_MANIFEST_BYTES);
        let err = load_first_document(&text).unwrap_err();
        assert!(err.contains("YAML bomb"), "{err}");
    }

    #[test]
    fn deep_nesting_is_an_error_not_a_crash() {
        let text = format!("{}{}", "[".repeat(5000), "]".repeat(5000));
        let err = load_first_document(&text).unwrap_err();
        assert!(err.contains("nested too deeply"), "{err}");
    }
}
