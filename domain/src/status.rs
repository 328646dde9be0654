//! Job and task statuses and the state machine that says which changes are legal.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// The status of a job, as the builds.sr.ht API spells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum JobStatus {
    Pending,
    Queued,
    Running,
    Success,
    Failed,
    Timeout,
    Cancelled,
}

/// The status of one task of a job.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TaskStatus {
    Pending,
    Running,
    Success,
    Failed,
    Skipped,
}

/// A status change the state machine refuses.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a job cannot go from {from} to {to}")]
pub struct IllegalTransition {
    pub from: JobStatus,
    pub to: JobStatus,
}

/// A status word that is not one of ours.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown status {0:?}")]
pub struct UnknownStatus(pub String);

impl JobStatus {
    pub const ALL: [JobStatus; 7] = [
        JobStatus::Pending,
        JobStatus::Queued,
        JobStatus::Running,
        JobStatus::Success,
        JobStatus::Failed,
        JobStatus::Timeout,
        JobStatus::Cancelled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            JobStatus::Pending => "pending",
            JobStatus::Queued => "queued",
            JobStatus::Running => "running",
            JobStatus::Success => "success",
            JobStatus::Failed => "failed",
            JobStatus::Timeout => "timeout",
            JobStatus::Cancelled => "cancelled",
        }
    }

    /// A job in a terminal status never changes again.
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            JobStatus::Success | JobStatus::Failed | JobStatus::Timeout | JobStatus::Cancelled
        )
    }

    /// Whether `self → to` is a legal change (DESIGN §2). Staying put is not a change.
    pub fn can_become(self, to: JobStatus) -> bool {
        use JobStatus::*;
        match (self, to) {
            (Pending, Queued | Cancelled) => true,
            // Failed from queued: the dead-letter path, a job whose message was
            // received too often without ever running to the end.
            (Queued, Running | Cancelled | Failed) => true,
            (Running, Success | Failed | Timeout | Cancelled) => true,
            _ => false,
        }
    }

    /// Checks `self → to` against the state machine.
    pub fn transition(self, to: JobStatus) -> Result<JobStatus, IllegalTransition> {
        if self.can_become(to) {
            Ok(to)
        } else {
            Err(IllegalTransition { from: self, to })
        }
    }

    /// The reason builds.sr.ht gives when `start` is called on a job that is not pending.
    pub fn start_refusal(self) -> Option<&'static str> {
        match self {
            JobStatus::Pending => None,
            JobStatus::Queued => Some("This job is already queued"),
            JobStatus::Running => Some("This job is already running"),
            _ => Some("This job is already complete"),
        }
    }

    /// Whether cancel applies (we differ from sr.ht: pending and queued jobs can be cancelled too).
    pub fn can_cancel(self) -> bool {
        self.can_become(JobStatus::Cancelled)
    }
}

impl TaskStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            TaskStatus::Pending => "pending",
            TaskStatus::Running => "running",
            TaskStatus::Success => "success",
            TaskStatus::Failed => "failed",
            TaskStatus::Skipped => "skipped",
        }
    }
}

impl fmt::Display for JobStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Display for TaskStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for JobStatus {
    type Err = UnknownStatus;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        JobStatus::ALL
            .into_iter()
            .find(|status| status.as_str() == s)
            .ok_or_else(|| UnknownStatus(s.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::JobStatus::*;
    use super::*;

    #[test]
    fn legal_transitions_are_exactly_the_designed_ones() {
        let legal = [
            (Pending, Queued),
            (Pending, Cancelled),
            (Queued, Running),
            (Queued, Cancelled),
            (Queued, Failed),
            (Running, Success),
            (Running, Failed),
            (Running, Timeout),
            (Running, Cancelled),
        ];
        for from in JobStatus::ALL {
            for to in JobStatus::ALL {
                let expected = legal.contains(&(from, to));
                assert_eq!(from.can_become(to), expected, "{from} -> {to}");
                assert_eq!(from.transition(to).is_ok(), expected, "{from} -> {to}");
            }
        }
    }

    #[test]
    fn terminal_statuses_never_move() {
        for from in JobStatus::ALL.into_iter().filter(|s| s.is_terminal()) {
            assert!(JobStatus::ALL.iter().all(|to| !from.can_become(*to)));
            assert!(!from.can_cancel());
        }
    }

    #[test]
    fn start_refusals_match_sr_ht() {
        assert_eq!(Pending.start_refusal(), None);
        assert_eq!(Queued.start_refusal(), Some("This job is already queued"));
        assert_eq!(Running.start_refusal(), Some("This job is already running"));
        for done in [Success, Failed, Timeout, Cancelled] {
            assert_eq!(done.start_refusal(), Some("This job is already complete"));
        }
    }

    #[test]
    fn statuses_round_trip_as_text_and_json() {
        for status in JobStatus::ALL {
            assert_eq!(status.as_str().parse::<JobStatus>(), Ok(status));
            let json = serde_json::to_string(&status).unwrap();
            assert_eq!(json, format!("\"{status}\""));
        }
        assert!("done".parse::<JobStatus>().is_err());
    }
}
