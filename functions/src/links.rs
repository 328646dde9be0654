//! Links that responses carry: signed, expiring log URLs served by the log
//! endpoint, and artifact URLs presigned by the blob store.

use crate::state::AppState;
pub use builds_domain::job::{log_path, setup_log_key, task_log_key};
use builds_storage::SignedLogLinks;

/// The API's signed log links: its signer, its origin, its link lifetime.
pub fn signed_log_links(state: &AppState) -> SignedLogLinks<'_> {
    SignedLogLinks {
        signer: &state.backend.signer,
        origin: &state.config.origin,
        ttl: state.config.link_ttl,
    }
}
