//! sr.ht pagination over a user's records named by UUID (secrets, SSH keys):
//! newest first, 50 a page, `?start=<id>` begins a page at that record; and
//! such ids in paths.

use crate::error::{ApiError, ApiResult};
use builds_domain::api::{PageResource, RESULTS_PER_PAGE};
use serde::Deserialize;

/// `?start=<id>` of a list of records named by UUID.
#[derive(Debug, Deserialize)]
pub struct UuidPageQuery {
    pub start: Option<String>,
}

/// A record's UUID from the path, in its canonical form; anything else is a 404.
pub fn uuid_in_path(text: &str) -> ApiResult<String> {
    uuid::Uuid::parse_str(text)
        .map(|id| id.to_string())
        .map_err(|_| ApiError::not_found())
}

/// One page of `all` (newest first) from the record `start` names.
pub fn page_by_id<'a, T>(
    all: &'a [T],
    start: Option<&str>,
    id_of: impl Fn(&T) -> &str,
    what: &str,
) -> ApiResult<Page<'a, T>> {
    let first = match start.filter(|s| !s.is_empty()) {
        None => 0,
        Some(start) => all.iter().position(|r| id_of(r) == start).ok_or_else(|| {
            ApiError::field(
                "start",
                format!("start must be the id of one of your {what}"),
            )
        })?,
    };
    Ok(Page {
        items: all.iter().skip(first).take(RESULTS_PER_PAGE).collect(),
        next: all
            .get(first + RESULTS_PER_PAGE)
            .map(|r| id_of(r).to_string()),
        total: all.len() as u64,
    })
}

/// A page before its records are rendered.
pub struct Page<'a, T> {
    items: Vec<&'a T>,
    next: Option<String>,
    total: u64,
}

impl<T> Page<'_, T> {
    pub fn map<R>(self, render: impl Fn(&T) -> R) -> PageResource<R> {
        PageResource {
            next: self.next,
            results: self.items.into_iter().map(render).collect(),
            total: self.total,
            results_per_page: RESULTS_PER_PAGE,
        }
    }
}
