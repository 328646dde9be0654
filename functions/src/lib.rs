//! The HTTP side of builds. Handlers live here as a library so that the local
//! server and the Lambda functions serve the very same code.

pub mod blobs;
