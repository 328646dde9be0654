//! The HTTP side of builds: the builds.sr.ht legacy REST API. Handlers live here
//! as a library so that the local server (`builds serve`) and the Lambda
//! functions (one binary per endpoint, `src/bin/`) serve the very same code.

pub mod auth;
pub mod blobs;
pub mod body;
pub mod config;
pub mod endpoints;
pub mod error;
pub mod groups;
pub mod jobs;
pub mod lambda;
pub mod links;
pub mod logs;
pub mod paging;
pub mod secrets;
pub mod ssh_keys;
pub mod state;
pub mod webhook_key;

pub use config::ApiConfig;
pub use endpoints::{api_router, endpoint_router, Endpoint};
pub use state::AppState;
