//! The jobs part: ONTAP's asynchronous operations (`/api/cluster/jobs`). An operation that
//! takes a while (restoring keys) runs as a job: it is recorded as queued, runs when one of
//! [`MAX_RUNNING`] turns is free, and ends as `success` or `failure` with ONTAP's code and a
//! message. Jobs are in the store, so every instance sharing it shows them; they are kept
//! [`KEEP_SECONDS`] after they end, at most [`MAX_KEPT`]. A job that outlives [`TIME_LIMIT`]
//! fails. While a job is queued or running, its instance renews its heartbeat every
//! [`HEARTBEAT`]; a job whose heartbeat is older than [`STALE_AFTER`] (its instance stopped,
//! killed or restarted) is failed by the next look at the jobs, by any instance — never left
//! `running` for ever.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicUsize, Ordering};
use std::time::Duration;

use tokio::sync::{Semaphore, watch};

use super::error::{Error, Result};
use super::model::{Job, JobState};
use super::store::{JobStore, internal};

/// How long ONTAP keeps a job after it ended.
pub const KEEP_SECONDS: i64 = 300;
/// Jobs kept at most, ended ones first to go.
pub const MAX_KEPT: usize = 1000;
/// Jobs that run at once in this instance; the others wait, queued.
pub const MAX_RUNNING: usize = 4;
/// Jobs this instance holds unfinished at most (running and queued): beyond, a new one is
/// refused as busy.
pub const MAX_UNFINISHED: usize = 64;
/// A job that runs longer fails.
pub const TIME_LIMIT: Duration = Duration::from_secs(120);
/// How often a queued or running job's instance says it still has it.
pub const HEARTBEAT: Duration = Duration::from_secs(5);
/// A job whose heartbeat is older than this has no instance any more.
pub const STALE_AFTER: Duration = Duration::from_secs(15);
/// ONTAP's `return_timeout`: at most this many seconds.
pub const MAX_RETURN_TIMEOUT: u64 = 120;

/// ONTAP's code of a job that failed for no reason of its own (it was cut short).
const INTERRUPTED: u64 = 262145;

/// How a job ended, for a request that waits for it.
pub type Outcome = watch::Receiver<Option<Job>>;

pub struct Jobs {
    store: Arc<dyn JobStore>,
    turns: Arc<Semaphore>,
    unfinished: Arc<AtomicUsize>,
    /// When the jobs were last tidied (seconds): clients poll jobs, and tidying writes.
    tidied: AtomicI64,
}

impl Jobs {
    pub fn new(store: Arc<dyn JobStore>) -> Jobs {
        Jobs {
            store,
            turns: Arc::new(Semaphore::new(MAX_RUNNING)),
            unfinished: Arc::new(AtomicUsize::new(0)),
            tidied: AtomicI64::new(i64::MIN),
        }
    }

    /// Records a job and runs `work` in it; answers the job as recorded (queued) and how to
    /// learn its end. `work` answers the success message, or the failure.
    pub async fn start<W>(&self, description: &str, work: W) -> Result<(Job, Outcome)>
    where
        W: Future<Output = Result<String>> + Send + 'static,
    {
        self.tidy().await?;
        if self.unfinished.fetch_add(1, Ordering::SeqCst) >= MAX_UNFINISHED {
            self.unfinished.fetch_sub(1, Ordering::SeqCst);
            return Err(Error::Busy);
        }
        let job = Job {
            uuid: uuid::Uuid::new_v4().to_string(),
            description: description.to_string(),
            state: JobState::Queued,
            message: String::new(),
            code: 0,
            start_time: now(),
            end_time: None,
            heartbeat: now(),
        };
        if let Err(error) = self.store.save_job(job.clone()).await {
            self.unfinished.fetch_sub(1, Ordering::SeqCst);
            return Err(internal(error));
        }
        let (ended, outcome) = watch::channel(None);
        let run = Run {
            store: Arc::clone(&self.store),
            turns: Arc::clone(&self.turns),
            unfinished: Arc::clone(&self.unfinished),
        };
        tokio::spawn(run.run(job.clone(), work, ended));
        Ok((job, outcome))
    }

    /// Every job kept, oldest first.
    pub async fn jobs(&self) -> Result<Vec<Job>> {
        self.tidy().await?;
        self.store.list_jobs().await.map_err(internal)
    }

    /// One job, or 404 with target `uuid`.
    pub async fn job(&self, uuid: &str) -> Result<Job> {
        self.jobs()
            .await?
            .into_iter()
            .find(|j| j.uuid == uuid)
            .ok_or(Error::NotFound { target: "uuid" })
    }

    /// Fails the jobs no instance is running any more, and forgets those ended long ago; at most
    /// once per heartbeat, however often clients poll.
    async fn tidy(&self) -> Result<()> {
        let now = now();
        let every = i64::try_from(HEARTBEAT.as_secs()).unwrap_or(i64::MAX);
        let last = self.tidied.load(Ordering::SeqCst);
        if now.saturating_sub(last) < every
            || self
                .tidied
                .compare_exchange(last, now, Ordering::SeqCst, Ordering::SeqCst)
                .is_err()
        {
            return Ok(());
        }
        let stale = i64::try_from(STALE_AFTER.as_secs()).unwrap_or(i64::MAX);
        self.store
            .fail_unfinished_jobs(
                now - stale,
                "The job did not finish: the service stopped while it ran.",
                INTERRUPTED,
                now,
            )
            .await
            .map_err(internal)?;
        self.store
            .prune_jobs(now - KEEP_SECONDS, MAX_KEPT)
            .await
            .map_err(internal)
    }
}

/// What a running job needs of its part.
struct Run {
    store: Arc<dyn JobStore>,
    turns: Arc<Semaphore>,
    unfinished: Arc<AtomicUsize>,
}

impl Run {
    async fn run<W>(self, job: Job, work: W, ended: watch::Sender<Option<Job>>)
    where
        W: Future<Output = Result<String>> + Send + 'static,
    {
        // What the job is now, renewed by the heartbeat while it waits and runs.
        let current = std::sync::Mutex::new(job);
        let snapshot = || current.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let turns = Arc::clone(&self.turns);
        let queued_then_run = async {
            // The semaphore is never closed; without a turn the job runs rather than not at all.
            let _turn = turns.acquire().await.ok();
            let running = {
                let mut job = current.lock().unwrap_or_else(|e| e.into_inner());
                job.state = JobState::Running;
                job.clone()
            };
            self.save(&running).await;
            match tokio::time::timeout(TIME_LIMIT, work).await {
                Ok(outcome) => outcome,
                Err(_) => Err(Error::Internal(format!(
                    "the job did not finish within {} seconds",
                    TIME_LIMIT.as_secs()
                ))),
            }
        };
        tokio::pin!(queued_then_run);
        let mut beats = tokio::time::interval(HEARTBEAT);
        beats.tick().await;
        let outcome = loop {
            tokio::select! {
                outcome = &mut queued_then_run => break outcome,
                _ = beats.tick() => {
                    let mut beat = snapshot();
                    beat.heartbeat = now();
                    current.lock().unwrap_or_else(|e| e.into_inner()).heartbeat = beat.heartbeat;
                    self.save(&beat).await;
                }
            }
        };
        let mut job = snapshot();
        match outcome {
            Ok(message) => {
                job.state = JobState::Success;
                job.message = message;
                job.code = 0;
            }
            Err(error) => {
                job.state = JobState::Failure;
                job.message = error.to_string();
                job.code = error.code();
            }
        }
        job.end_time = Some(now());
        job.heartbeat = now();
        self.save(&job).await;
        self.unfinished.fetch_sub(1, Ordering::SeqCst);
        let _ = ended.send(Some(job));
    }

    /// A job's state that cannot be saved is logged: the job still ends for whoever waits on it,
    /// and the next look at the jobs fails it in the store once it is over time.
    async fn save(&self, job: &Job) {
        if let Err(error) = self.store.save_job(job.clone()).await {
            tracing::warn!(job = job.uuid.as_str(), %error, "cannot record a job's state");
        }
    }
}

fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

/// Waits at most `seconds` for a job to end: its end, or `None` when it runs on.
pub async fn wait_for(mut outcome: Outcome, seconds: u64) -> Option<Job> {
    let limit = Duration::from_secs(seconds.min(MAX_RETURN_TIMEOUT));
    tokio::time::timeout(limit, async {
        loop {
            if let Some(job) = outcome.borrow().clone() {
                return Some(job);
            }
            if outcome.changed().await.is_err() {
                return outcome.borrow().clone();
            }
        }
    })
    .await
    .ok()
    .flatten()
}
