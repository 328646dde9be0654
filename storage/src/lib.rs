//! Storage adapters for the ports in `builds_domain::ports`.
//!
//! - [`embedded`]: one SQLite file (jobs, groups, tokens, queue) and one
//!   directory (blobs). The default when no AWS configuration is given.
//! - [`sealing`]: how secrets are encrypted at rest (a key file, or KMS).
//! - [`aws`]: DynamoDB, SQS and S3 through the AWS SDK, pointed at real AWS or
//!   at an emulator with `AWS_ENDPOINT_URL`.
//!
//! [`Backend`] bundles one of each port and is built from the environment.

pub mod aws;
pub mod backend;
#[cfg(feature = "conformance")]
pub mod conformance;
pub mod embedded;
pub mod sealing;
pub mod signing;

pub use backend::Backend;
pub use signing::{SignedLogLinks, UrlSigner};
