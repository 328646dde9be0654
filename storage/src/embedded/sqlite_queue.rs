//! [`JobQueue`] on SQLite with SQS semantics: a received message is hidden until
//! its visibility timeout runs out; each receive gets a new receipt; a message
//! received more than `max_receives` times moves to the dead-letter queue.

use super::sqlite::{sql_err, Database};
use async_trait::async_trait;
use builds_domain::ports::{Delivery, JobQueue, StoreError, StoreResult};
use rusqlite::params;
use std::sync::Arc;
use std::time::Duration;
use time::OffsetDateTime;
use tokio::sync::Notify;

/// How often a long poll looks again when nothing woke it.
const POLL_INTERVAL: Duration = Duration::from_millis(200);

#[derive(Clone)]
pub struct SqliteJobQueue {
    db: Database,
    name: String,
    dead_letter: String,
    max_receives: u32,
    /// Wakes long polls in this process as soon as a message is sent.
    sent: Arc<Notify>,
}

fn now_ms() -> i64 {
    (OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as i64
}

impl SqliteJobQueue {
    /// The queue `name` in `db`; messages received more than `max_receives`
    /// times move to `<name>-dead-letter`.
    pub fn new(db: Database, name: &str, max_receives: u32) -> Self {
        SqliteJobQueue {
            db,
            name: name.to_string(),
            dead_letter: format!("{name}-dead-letter"),
            max_receives,
            sent: Arc::new(Notify::new()),
        }
    }

    /// The dead-letter queue of this queue, to inspect or drain.
    pub fn dead_letter_queue(&self) -> SqliteJobQueue {
        SqliteJobQueue::new(self.db.clone(), &self.dead_letter, u32::MAX)
    }

    async fn try_receive(&self, max: u32, visibility: Duration) -> StoreResult<Vec<Delivery>> {
        let (name, dead_letter, max_receives) = (
            self.name.clone(),
            self.dead_letter.clone(),
            self.max_receives as i64,
        );
        let hidden_ms = visibility.as_millis().min(i64::MAX as u128) as i64;
        self.db
            .run(move |conn| {
                let now = now_ms();
                let tx = conn
                    .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
                    .map_err(sql_err)?;
                // As SQS does: a message already received max_receives times goes
                // to the dead-letter queue instead of being delivered again.
                tx.execute(
                    "UPDATE queue_messages SET queue = ?1, receive_count = 0, receipt = NULL
                     WHERE queue = ?2 AND visible_at_ms <= ?3 AND receive_count >= ?4",
                    params![dead_letter, name, now, max_receives],
                )
                .map_err(sql_err)?;
                let rows = {
                    let mut stmt = tx
                        .prepare_cached(
                            "SELECT id, body, receive_count FROM queue_messages
                             WHERE queue = ?1 AND visible_at_ms <= ?2 ORDER BY id LIMIT ?3",
                        )
                        .map_err(sql_err)?;
                    let rows = stmt
                        .query_map(params![name, now, max as i64], |r| {
                            Ok((
                                r.get::<_, i64>(0)?,
                                r.get::<_, String>(1)?,
                                r.get::<_, i64>(2)?,
                            ))
                        })
                        .map_err(sql_err)?
                        .collect::<Result<Vec<_>, _>>()
                        .map_err(sql_err)?;
                    rows
                };
                let mut deliveries = Vec::with_capacity(rows.len());
                for (id, body, count) in rows {
                    let receipt = uuid::Uuid::new_v4().to_string();
                    tx.execute(
                        "UPDATE queue_messages SET visible_at_ms = ?1, receive_count = ?2, receipt = ?3
                         WHERE id = ?4",
                        params![now.saturating_add(hidden_ms), count + 1, receipt, id],
                    )
                    .map_err(sql_err)?;
                    deliveries.push(Delivery {
                        body,
                        receipt,
                        receive_count: (count + 1) as u32,
                    });
                }
                tx.commit().map_err(sql_err)?;
                Ok(deliveries)
            })
            .await
    }
}

#[async_trait]
impl JobQueue for SqliteJobQueue {
    async fn send(&self, body: &str) -> StoreResult<()> {
        let (name, body) = (self.name.clone(), body.to_string());
        self.db
            .run(move |conn| {
                conn.execute(
                    "INSERT INTO queue_messages (queue, body, visible_at_ms) VALUES (?1, ?2, ?3)",
                    params![name, body, now_ms()],
                )
                .map_err(sql_err)?;
                Ok(())
            })
            .await?;
        self.sent.notify_waiters();
        Ok(())
    }

    async fn receive(
        &self,
        max: u32,
        visibility: Duration,
        wait: Duration,
    ) -> StoreResult<Vec<Delivery>> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let woken = self.sent.notified();
            let deliveries = self.try_receive(max.max(1), visibility).await?;
            let now = tokio::time::Instant::now();
            if !deliveries.is_empty() || now >= deadline {
                return Ok(deliveries);
            }
            let nap = POLL_INTERVAL.min(deadline - now);
            let _ = tokio::time::timeout(nap, woken).await;
        }
    }

    async fn extend(&self, receipt: &str, visibility: Duration) -> StoreResult<()> {
        let receipt = receipt.to_string();
        let hidden_ms = visibility.as_millis().min(i64::MAX as u128) as i64;
        let changed = self
            .db
            .run(move |conn| {
                conn.execute(
                    "UPDATE queue_messages SET visible_at_ms = ?1 WHERE receipt = ?2",
                    params![now_ms().saturating_add(hidden_ms), receipt],
                )
                .map_err(sql_err)
            })
            .await?;
        if changed == 0 {
            return Err(StoreError::NotFound("no message has this receipt".into()));
        }
        Ok(())
    }

    async fn delete(&self, receipt: &str) -> StoreResult<()> {
        let receipt = receipt.to_string();
        self.db
            .run(move |conn| {
                conn.execute(
                    "DELETE FROM queue_messages WHERE receipt = ?1",
                    params![receipt],
                )
                .map_err(sql_err)?;
                Ok(())
            })
            .await
    }
}
