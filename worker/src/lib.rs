//! The worker: queue consumer, VM driver and guest image builder. Filled by the
//! worker issue; for now it only names its place in the workspace.
