//! The worker: takes jobs from the queue and runs each in a fresh QEMU guest.
//!
//! - [`image`]: builds guest images from Debian packages (debootstrap).
//! - [`vm`]: boots one guest per job (KVM where it really works, TCG otherwise).
//! - [`ssh`]: one reused SSH connection into a guest.
//! - [`log_shipper`]: ships a log to the blob store while it is written.
//! - [`pipeline`]: the steps of one job, in order.
//! - [`consumer`]: the queue loop: leases, heartbeats, cancel, timeout, recovery.

pub mod config;
pub mod consumer;
pub mod image;
pub mod log_shipper;
pub mod pipeline;
pub mod ports;
pub mod shell;
pub mod ssh;
pub mod triggers;
pub mod vm;

pub use config::WorkerConfig;
pub use consumer::Worker;
