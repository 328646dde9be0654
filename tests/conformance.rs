//! Every storage adapter passes the same checks: each check in
//! `builds_storage::conformance` runs once on the embedded backend and once on
//! the AWS backend (against the emulator named by `AWS_ENDPOINT_URL`).

use builds_storage::conformance;
use builds_tests::{aws_fixture, embedded_fixture};

const MAX_RECEIVES: u32 = 2;

macro_rules! conformance {
    ($($check:ident),* $(,)?) => {
        mod embedded {
            use super::*;
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $check() {
                    let (fixture, _dir) = embedded_fixture(MAX_RECEIVES).await;
                    conformance::$check(fixture).await;
                }
            )*
        }
        mod aws {
            use super::*;
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $check() {
                    if let Some(fixture) = aws_fixture(MAX_RECEIVES).await {
                        conformance::$check(fixture).await;
                    }
                }
            )*
        }
    };
}

conformance!(
    job_crud,
    job_pagination_and_ownership,
    concurrent_status_change,
    groups_and_tokens,
    queue_redelivery,
    queue_extend,
    queue_dead_letter,
    blobs_put_get_range_presign,
    blobs_append_while_reading,
    secrets_crud,
    sealer_round_trip,
    ssh_keys_crud,
);
