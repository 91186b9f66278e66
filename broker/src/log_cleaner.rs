//! The broker's log cleaner (Kafka's `LogCleaner` manager): up to
//! `log.cleaner.threads` threads at low priority, each taking the dirtiest
//! compacted log that is due (its dirty ratio at least
//! `min.cleanable.dirty.ratio`, or a dirty record older than
//! `max.compaction.lag.ms`) and running one pass of `strata_storage`'s
//! cleaner over it. The committed-offsets log is one of the candidates.
//! The threads share `log.cleaner.dedupe.buffer.size` for their key maps
//! and `log.cleaner.io.max.bytes.per.second` for their reads, and sleep
//! `log.cleaner.backoff.ms` when nothing is due; every setting is read
//! before each pass, so they change at run time.

use std::collections::{BTreeMap, HashSet};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use strata_storage::{CleanStats, Log};
use strata_tiering::ByteQuota;
use tracing::{info, warn};

use crate::broker::Broker;
use crate::clock::now_ms;

/// A compacted log the cleaner may clean: its metric labels and the log.
struct Candidate {
    topic: String,
    partition: String,
    log: Arc<Log>,
}

/// What the cleaner knows of the logs it cleaned, for the metrics and
/// `strata topics describe`. Shared by the cleaner threads and the metrics
/// scrape; every method takes its mutex briefly and never across I/O.
pub struct CleanerStatus {
    inner: Mutex<StatusInner>,
    /// The cleaners' shared read rate, `log.cleaner.io.max.bytes.per.second`.
    io: ByteQuota,
}

impl Default for CleanerStatus {
    fn default() -> Self {
        CleanerStatus {
            inner: Mutex::default(),
            io: ByteQuota::unlimited(),
        }
    }
}

#[derive(Default)]
struct StatusInner {
    /// Logs a thread is cleaning now.
    busy: HashSet<PathBuf>,
    /// Wall-clock time of each log's last finished pass.
    last_clean_ms: BTreeMap<PathBuf, i64>,
    /// Threads started, by index.
    threads: usize,
}

impl CleanerStatus {
    fn lock(&self) -> std::sync::MutexGuard<'_, StatusInner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// When `log` was last cleaned (milliseconds since the epoch).
    pub fn last_clean_ms(&self, log: &Log) -> Option<i64> {
        self.lock().last_clean_ms.get(log.dir()).copied()
    }
}

impl Broker {
    /// Every compacted log: partitions of compacted topics, the
    /// committed-offsets log and the transaction log.
    fn cleaner_candidates(&self) -> Vec<Candidate> {
        let mut out = vec![
            Candidate {
                topic: "__consumer_offsets".into(),
                partition: "0".into(),
                log: Arc::clone(self.groups.offsets_log()),
            },
            Candidate {
                topic: "__transaction_state".into(),
                partition: "0".into(),
                log: Arc::clone(self.txns.log()),
            },
        ];
        let config = self.config();
        for topic in self.topics() {
            if !config.has_policy(&topic.configs, "compact") {
                continue;
            }
            for (i, p) in topic.partitions.iter().enumerate() {
                out.push(Candidate {
                    topic: topic.name.clone(),
                    partition: i.to_string(),
                    log: Arc::clone(p.log()),
                });
            }
        }
        out
    }

    /// Starts cleaner threads up to `log.cleaner.threads` (more when the
    /// setting grows; a thread whose index is beyond a lowered setting
    /// idles). Called at start and by each retention pass.
    pub fn ensure_cleaner_threads(self: &Arc<Self>) {
        let wanted = self.config().i64("log.cleaner.threads").max(0) as usize;
        let mut inner = self.cleaner.lock();
        while inner.threads < wanted {
            let index = inner.threads;
            let broker = Arc::downgrade(self);
            let spawned = std::thread::Builder::new()
                .name(format!("strata-cleaner-{index}"))
                .spawn(move || cleaner_thread(broker, index));
            match spawned {
                Ok(_) => inner.threads += 1,
                Err(e) => {
                    warn!(error = %e, "cannot start a log cleaner thread");
                    break;
                }
            }
        }
    }

    /// One cleaner step for thread `index`: cleans the dirtiest due log no
    /// other thread holds. Returns whether it cleaned anything.
    fn clean_one(&self, index: usize) -> bool {
        let config = self.config();
        let threads = config.i64("log.cleaner.threads").max(0) as usize;
        if !config.bool("log.cleaner.enable") || index >= threads {
            return false;
        }
        let now = now_ms();
        let chosen = {
            let mut status = self.cleaner.lock();
            let best = self
                .cleaner_candidates()
                .into_iter()
                .filter(|c| !status.busy.contains(c.log.dir()))
                .filter_map(|c| {
                    let state = c.log.cleanability(now)?;
                    state.due().then_some((state, c))
                })
                .max_by(|(a, _), (b, _)| {
                    (a.overdue, a.ratio())
                        .partial_cmp(&(b.overdue, b.ratio()))
                        .unwrap_or(std::cmp::Ordering::Equal)
                });
            let Some((_, c)) = best else {
                return false;
            };
            status.busy.insert(c.log.dir().to_owned());
            c
        };
        let map_bytes =
            (config.i64("log.cleaner.dedupe.buffer.size").max(1) as usize) / threads.max(1);
        let rate = config
            .value("log.cleaner.io.max.bytes.per.second")
            .parse::<f64>()
            .unwrap_or(f64::MAX);
        let quota = &self.cleaner.io;
        quota.set_rate(rate);
        let mut throttle = |bytes: u64| {
            let wait = quota.charge(bytes);
            if !wait.is_zero() {
                std::thread::sleep(wait);
            }
        };
        let result = chosen.log.clean(map_bytes, now, &mut throttle);
        let mut inner = self.cleaner.lock();
        inner.busy.remove(chosen.log.dir());
        match result {
            Ok(Some(stats)) => {
                inner
                    .last_clean_ms
                    .insert(chosen.log.dir().to_owned(), now_ms());
                drop(inner);
                record(&chosen, &stats);
                true
            }
            Ok(None) => false,
            Err(e) => {
                warn!(topic = %chosen.topic, partition = %chosen.partition, error = %e, "cleaning failed");
                false
            }
        }
    }
}

fn record(c: &Candidate, stats: &CleanStats) {
    let labels = [
        ("topic", c.topic.clone()),
        ("partition", c.partition.clone()),
    ];
    metrics::counter!("strata_cleaner_passes_total", &labels).increment(1);
    metrics::counter!("strata_cleaner_bytes_read_total", &labels).increment(stats.bytes_read);
    metrics::counter!("strata_cleaner_bytes_written_total", &labels).increment(stats.bytes_written);
    metrics::counter!("strata_cleaner_dirty_bytes_cleaned_total", &labels)
        .increment(stats.dirty_bytes);
    metrics::counter!("strata_cleaner_records_removed_total", &labels)
        .increment(stats.records_removed);
}

/// A cleaner thread's life: at low priority, clean while there is work,
/// sleep `log.cleaner.backoff.ms` when there is none, end with the broker.
fn cleaner_thread(broker: Weak<Broker>, index: usize) {
    lower_priority();
    info!(thread = index, "log cleaner started");
    loop {
        let Some(b) = broker.upgrade() else { return };
        if b.is_shut_down() {
            return;
        }
        let worked = b.clean_one(index);
        let backoff = Duration::from_millis(b.config().i64("log.cleaner.backoff.ms").max(0) as u64);
        drop(b);
        if !worked {
            // Sleep in short steps so that a shutdown is noticed soon.
            let until = Instant::now() + backoff;
            while Instant::now() < until {
                std::thread::sleep(Duration::from_millis(100).min(backoff));
                if broker.upgrade().is_none_or(|b| b.is_shut_down()) {
                    return;
                }
            }
        }
    }
}

/// Cleaning reads and rewrites whole segments; on a small machine it must
/// yield the CPU to appends and fetches on the hot tail, as the uploads do.
fn lower_priority() {
    use thread_priority::{
        set_thread_priority_and_policy, thread_native_id, NormalThreadSchedulePolicy,
        ThreadPriority, ThreadPriorityValue, ThreadSchedulePolicy,
    };
    // 10 on the crate's 0-99 scale is about nice 15 under SCHED_OTHER.
    let priority = ThreadPriorityValue::try_from(10u8).expect("within 0-99");
    let policy = ThreadSchedulePolicy::Normal(NormalThreadSchedulePolicy::Other);
    if let Err(e) = set_thread_priority_and_policy(
        thread_native_id(),
        ThreadPriority::Crossplatform(priority),
        policy,
    ) {
        warn!(error = ?e, "cannot lower the priority of a cleaner thread");
    }
}
