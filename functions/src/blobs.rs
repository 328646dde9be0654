//! `GET /blobs/<key>?expires=…&signature=…`: serves the embedded blob store's
//! presigned URLs (S3 serves its own), with HTTP Range support.

use axum::body::Body;
use axum::extract::{Path, RawQuery, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use builds_domain::api::ErrorEnvelope;
use builds_domain::ports::{BlobRead, ByteRange};
use builds_storage::embedded::DirBlobStore;

/// Parses a single `Range: bytes=a-b` / `bytes=a-` / `bytes=-n` header; other
/// forms (several ranges) are ignored, as HTTP allows.
pub fn parse_range(headers: &HeaderMap) -> Option<RangeRequest> {
    let value = headers.get(header::RANGE)?.to_str().ok()?.trim();
    let spec = value.strip_prefix("bytes=")?;
    if spec.contains(',') {
        return None;
    }
    let (from, to) = spec.split_once('-')?;
    match (from.trim(), to.trim()) {
        ("", n) => Some(RangeRequest::Suffix(n.parse().ok()?)),
        (a, "") => Some(RangeRequest::From(ByteRange {
            start: a.parse().ok()?,
            end: None,
        })),
        (a, b) => {
            let (start, end) = (a.parse().ok()?, b.parse().ok()?);
            (start <= end).then_some(RangeRequest::From(ByteRange {
                start,
                end: Some(end),
            }))
        }
    }
}

/// What a Range header asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RangeRequest {
    From(ByteRange),
    /// The last n bytes.
    Suffix(u64),
}

/// A 200 or 206 response for `read`, or 416 when the range starts past the end.
pub fn blob_response(read: BlobRead, ranged: bool, content_type: &'static str) -> Response {
    let mut headers = HeaderMap::new();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    if !ranged {
        return (StatusCode::OK, headers, Body::from(read.bytes)).into_response();
    }
    if read.bytes.is_empty() {
        let value = format!("bytes */{}", read.total);
        if let Ok(v) = HeaderValue::from_str(&value) {
            headers.insert(header::CONTENT_RANGE, v);
        }
        return (StatusCode::RANGE_NOT_SATISFIABLE, headers).into_response();
    }
    let end = read.start + read.bytes.len() as u64 - 1;
    let value = format!("bytes {}-{}/{}", read.start, end, read.total);
    if let Ok(v) = HeaderValue::from_str(&value) {
        headers.insert(header::CONTENT_RANGE, v);
    }
    (StatusCode::PARTIAL_CONTENT, headers, Body::from(read.bytes)).into_response()
}

fn error(status: StatusCode, reason: &str) -> Response {
    (status, axum::Json(ErrorEnvelope::reason(reason))).into_response()
}

impl RangeRequest {
    /// The byte range to ask a blob store for: a suffix needs the size first,
    /// so it reads everything and [`RangeRequest::cut`] takes the tail.
    pub fn byte_range(range: Option<RangeRequest>) -> Option<ByteRange> {
        match range {
            Some(RangeRequest::From(r)) => Some(r),
            Some(RangeRequest::Suffix(_)) | None => None,
        }
    }

    /// Cuts what was read down to what `range` asked for.
    pub fn cut(range: Option<RangeRequest>, read: BlobRead) -> BlobRead {
        match range {
            Some(RangeRequest::Suffix(n)) => {
                let cut = read.bytes.len().saturating_sub(n as usize);
                BlobRead {
                    bytes: read.bytes.slice(cut..),
                    start: cut as u64,
                    total: read.total,
                }
            }
            _ => read,
        }
    }
}

async fn serve_blob(
    State(blobs): State<DirBlobStore>,
    Path(key): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    let range = parse_range(&headers);
    let byte_range = RangeRequest::byte_range(range);
    match blobs.get_signed(&key, query.as_deref(), byte_range).await {
        Ok(Some(read)) => blob_response(
            RangeRequest::cut(range, read),
            range.is_some(),
            "application/octet-stream",
        ),
        Ok(None) => error(StatusCode::FORBIDDEN, "This link is invalid or has expired"),
        Err(err) => {
            tracing::error!(%err, "reading a blob failed");
            error(StatusCode::INTERNAL_SERVER_ERROR, "Internal error")
        }
    }
}

/// The route that serves presigned embedded blobs.
pub fn router(blobs: DirBlobStore) -> Router {
    Router::new()
        .route("/blobs/{*key}", get(serve_blob))
        .with_state(blobs)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn range(value: &str) -> Option<RangeRequest> {
        let mut headers = HeaderMap::new();
        headers.insert(header::RANGE, HeaderValue::from_str(value).unwrap());
        parse_range(&headers)
    }

    #[test]
    fn range_headers_parse() {
        assert_eq!(
            range("bytes=0-9"),
            Some(RangeRequest::From(ByteRange {
                start: 0,
                end: Some(9)
            }))
        );
        assert_eq!(
            range("bytes=5-"),
            Some(RangeRequest::From(ByteRange {
                start: 5,
                end: None
            }))
        );
        assert_eq!(range("bytes=-3"), Some(RangeRequest::Suffix(3)));
        assert_eq!(range("bytes=9-1"), None);
        assert_eq!(range("bytes=0-1,4-5"), None);
        assert_eq!(range("items=0-1"), None);
    }
}
