//! Reading request bodies: size-limited, UTF-8, a JSON object, and typed fields
//! with every problem reported against its field.

use crate::error::{ApiError, ApiResult};
use axum::body::Body;
use axum::http::StatusCode;
use builds_domain::api::ApiError as ErrorItem;
use serde_json::{Map, Value};

/// Reads a body of at most `limit` bytes as a JSON object (an empty body is `{}`).
pub async fn json_object(body: Body, limit: usize) -> ApiResult<Map<String, Value>> {
    let bytes = axum::body::to_bytes(body, limit).await.map_err(|_| {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("The request body is larger than {limit} bytes"),
        )
    })?;
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(Map::new());
    }
    let text = std::str::from_utf8(&bytes)
        .map_err(|_| ApiError::bad_request("The request body is not valid UTF-8"))?;
    match serde_json::from_str::<Value>(text) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(ApiError::bad_request("Expected a JSON object")),
        Err(err) => Err(ApiError::bad_request(format!("Invalid JSON: {err}"))),
    }
}

/// Typed access to a JSON object's fields that collects problems as it goes.
pub struct Fields<'a> {
    map: &'a Map<String, Value>,
    pub errors: Vec<ErrorItem>,
}

impl<'a> Fields<'a> {
    pub fn new(map: &'a Map<String, Value>) -> Self {
        Fields {
            map,
            errors: Vec::new(),
        }
    }

    pub fn problem(&mut self, field: &str, reason: impl Into<String>) {
        self.errors.push(ErrorItem {
            field: Some(field.to_string()),
            reason: reason.into(),
        });
    }

    fn present(&self, field: &str) -> Option<&'a Value> {
        self.map.get(field).filter(|v| !v.is_null())
    }

    pub fn string(&mut self, field: &str) -> Option<String> {
        match self.present(field) {
            None => None,
            Some(Value::String(s)) => Some(s.clone()),
            Some(_) => {
                self.problem(field, format!("{field} must be a string"));
                None
            }
        }
    }

    pub fn required_string(&mut self, field: &str) -> Option<String> {
        let value = self.string(field);
        if value.is_none()
            && !self
                .errors
                .iter()
                .any(|e| e.field.as_deref() == Some(field))
        {
            self.problem(field, format!("{field} is required"));
        }
        value
    }

    /// The optional `note`: a string of at most `MAX_NOTE_CHARS` characters.
    pub fn note(&mut self) -> Option<String> {
        let note = self.string("note");
        let limit = builds_domain::manifest::MAX_NOTE_CHARS;
        if note.as_ref().is_some_and(|n| n.chars().count() > limit) {
            self.problem("note", format!("note must be at most {limit} characters"));
        }
        note
    }

    pub fn bool(&mut self, field: &str, default: bool) -> bool {
        match self.present(field) {
            None => default,
            Some(Value::Bool(b)) => *b,
            Some(_) => {
                self.problem(field, format!("{field} must be true or false"));
                default
            }
        }
    }

    pub fn string_list(&mut self, field: &str) -> Vec<String> {
        match self.present(field) {
            None => Vec::new(),
            Some(Value::Array(items)) if items.iter().all(Value::is_string) => items
                .iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect(),
            Some(_) => {
                self.problem(field, format!("{field} must be a list of strings"));
                Vec::new()
            }
        }
    }

    pub fn id_list(&mut self, field: &str) -> Vec<u64> {
        match self.present(field) {
            Some(Value::Array(items)) if items.iter().all(|v| v.as_u64().is_some()) => {
                items.iter().filter_map(Value::as_u64).collect()
            }
            None => {
                self.problem(field, format!("{field} is required"));
                Vec::new()
            }
            Some(_) => {
                self.problem(field, format!("{field} must be a list of job IDs"));
                Vec::new()
            }
        }
    }

    pub fn raw(&self, field: &str) -> Option<&'a Value> {
        self.present(field)
    }

    /// Ends reading: every problem at once as a 400, or nothing.
    pub fn finish(self) -> ApiResult<()> {
        if self.errors.is_empty() {
            Ok(())
        } else {
            Err(ApiError::fields(self.errors))
        }
    }
}
