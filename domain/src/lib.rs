//! The pure domain of `builds`: what a build manifest is, what a job is and how
//! its status may change, the JSON shapes of the builds.sr.ht legacy API, and the
//! storage ports (traits) that adapters implement. No AWS type crosses into here.

pub mod api;
pub mod job;
pub mod manifest;
pub mod ports;
pub mod secret;
pub mod ssh_key;
pub mod status;
pub mod token;
pub mod triggers;

pub use job::{Artifact, Group, GroupId, Job, JobId, Lease, NewGroup, NewJob, TaskRecord};
pub use status::{JobStatus, TaskStatus};
