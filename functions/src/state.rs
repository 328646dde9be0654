//! What every handler shares: the storage ports and the configuration.

use crate::config::ApiConfig;
use builds_storage::Backend;
use std::sync::Arc;

#[derive(Clone)]
pub struct AppState {
    pub backend: Backend,
    pub config: Arc<ApiConfig>,
}

impl AppState {
    pub fn new(backend: Backend, config: ApiConfig) -> Self {
        AppState {
            backend,
            config: Arc::new(config),
        }
    }
}
