//! The group coordinator: every group's state machine (`state.rs`) behind a
//! lock of its own, the waiting that JoinGroup and SyncGroup do, session
//! expiry, and committed offsets kept durable in the offset store.
//!
//! Group membership lives in memory: after a restart, consumers rejoin as
//! they do when a Kafka coordinator moves. Committed offsets are appended to
//! the offsets log before a commit is acknowledged and replayed at start.

use std::collections::HashMap;
use std::ops::RangeInclusive;
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use bytes::Bytes;
use kafka_protocol::ResponseError;
use strata_storage::StorageError;
use tokio::sync::Notify;
use tracing::{info, warn};

use super::assignor::{Assignment, TopicShape};
use super::consumer::{ConsumerMember, ConsumerSettings, HeartbeatArgs, HeartbeatResult};
use super::offset_store::{Committed, OffsetStore};
use super::state::{Group, JoinArgs, JoinResult, Kind, Member, Poll, State, SyncResult};

/// The coordinator's settings, from the broker's configuration.
#[derive(Clone, Debug)]
pub struct GroupSettings {
    /// `group.initial.rebalance.delay.ms`.
    pub initial_delay: Duration,
    /// `offsets.retention.minutes`.
    pub offsets_retention: Duration,
    /// `group.min.session.timeout.ms` to `group.max.session.timeout.ms`:
    /// a join asking for a session timeout outside gets
    /// INVALID_SESSION_TIMEOUT.
    pub session_timeout_ms: RangeInclusive<i32>,
    /// `offsets.topic.segment.bytes`: segments of the committed-offsets log.
    pub offsets_segment_bytes: u64,
    /// The `group.consumer.*` settings of KIP-848's protocol.
    pub consumer: ConsumerSettings,
}

/// A consumer group as ConsumerGroupDescribe shows it.
#[derive(Clone, Debug)]
pub struct ConsumerGroupView {
    pub state: &'static str,
    pub group_epoch: i32,
    pub assignment_epoch: i32,
    pub assignor: String,
    /// Each member with its target assignment.
    pub members: Vec<(ConsumerMember, Assignment)>,
}

impl GroupSettings {
    /// Kafka's defaults, with the given initial rebalance delay.
    #[cfg(test)]
    pub fn with_delay(initial_delay: Duration) -> GroupSettings {
        GroupSettings {
            initial_delay,
            offsets_retention: Duration::from_secs(7 * 24 * 3600),
            session_timeout_ms: 6_000..=1_800_000,
            offsets_segment_bytes: 104_857_600,
            consumer: ConsumerSettings::default(),
        }
    }
}

type GroupRef = Arc<Mutex<Group>>;

/// The coordinator of every group; shared by all connections and safe to
/// call from any thread. The map of groups is behind one mutex held only to
/// find or insert a group; each group is behind its own mutex, never held
/// across an await. The blocking methods (commits and deletions of offsets)
/// hold a group's mutex while they append to the offsets log, so that a
/// membership check and the write it allows happen as one step, as in
/// Kafka's coordinator; they run on blocking threads.
pub struct Coordinator {
    groups: Mutex<HashMap<String, GroupRef>>,
    /// Woken whenever a group changes in a way that waiting joins and syncs
    /// must see.
    changed: Notify,
    store: OffsetStore,
    settings: GroupSettings,
    /// Called inside a commit just before the offsets log append, so that a
    /// test can hold a commit there and see what else can happen meanwhile.
    #[cfg(test)]
    before_append: Mutex<Option<Box<dyn Fn() + Send + Sync>>>,
}

fn code(e: ResponseError) -> i16 {
    e.code()
}

fn lock(g: &GroupRef) -> MutexGuard<'_, Group> {
    g.lock().unwrap_or_else(|p| p.into_inner())
}

impl Coordinator {
    /// Opens the offsets log in `data_dir` and replays it. Blocking.
    pub fn open(
        data_dir: &Path,
        settings: GroupSettings,
        clean: bool,
    ) -> Result<Coordinator, StorageError> {
        let initial_delay = settings.initial_delay;
        let (store, offsets, pending) =
            OffsetStore::open(data_dir, clean, settings.offsets_segment_bytes)?;
        let now = Instant::now();
        let mut groups: HashMap<String, Group> = HashMap::new();
        for ((group, topic, partition), c) in offsets {
            groups
                .entry(group)
                .or_insert_with(|| Group::new(now, initial_delay))
                .offsets
                .insert((topic, partition), c);
        }
        for ((group, pid, topic, partition), c) in pending {
            groups
                .entry(group)
                .or_insert_with(|| Group::new(now, initial_delay))
                .pending_txn
                .entry(pid)
                .or_default()
                .insert((topic, partition), c);
        }
        info!(groups = groups.len(), "loaded committed offsets");
        Ok(Coordinator {
            groups: Mutex::new(
                groups
                    .into_iter()
                    .map(|(k, g)| (k, Arc::new(Mutex::new(g))))
                    .collect(),
            ),
            changed: Notify::new(),
            store,
            settings,
            #[cfg(test)]
            before_append: Mutex::new(None),
        })
    }

    fn map(&self) -> MutexGuard<'_, HashMap<String, GroupRef>> {
        self.groups.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The group, created empty if `create` and it does not exist.
    fn group(&self, id: &str, create: bool) -> Option<GroupRef> {
        let mut map = self.map();
        if let Some(g) = map.get(id) {
            return Some(Arc::clone(g));
        }
        if !create {
            return None;
        }
        let g = Arc::new(Mutex::new(Group::new(
            Instant::now(),
            self.settings.initial_delay,
        )));
        map.insert(id.to_string(), Arc::clone(&g));
        Some(g)
    }

    /// Every group as the map holds it now, to visit one by one without
    /// holding the map.
    fn all_groups(&self) -> Vec<(String, GroupRef)> {
        self.map()
            .iter()
            .map(|(k, g)| (k.clone(), Arc::clone(g)))
            .collect()
    }

    /// Removes `id` from the map if it still maps to `g` (a group removed
    /// and created again in between is left alone).
    fn remove_if_same(&self, id: &str, g: &GroupRef) {
        let mut map = self.map();
        if map.get(id).is_some_and(|cur| Arc::ptr_eq(cur, g)) {
            map.remove(id);
        }
    }

    pub async fn join(&self, a: JoinArgs) -> JoinResult {
        if a.group.is_empty() {
            return JoinResult::error(code(ResponseError::InvalidGroupId), a.member_id);
        }
        if !self
            .settings
            .session_timeout_ms
            .contains(&a.session_timeout_ms)
        {
            return JoinResult::error(code(ResponseError::InvalidSessionTimeout), a.member_id);
        }
        let g = self.group(&a.group, true).expect("created");
        let ticket = {
            let (ticket, changed) = lock(&g).join(&a, Instant::now());
            if changed {
                self.changed.notify_waiters();
            }
            match ticket {
                Ok(t) => t,
                Err(e) => return e,
            }
        };
        loop {
            let notified = self.changed.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            // The group as the map has it now: a deleted group answers
            // UNKNOWN_MEMBER_ID, as the state machine does for a stranger.
            let Some(g) = self.group(&a.group, false) else {
                return JoinResult::error(code(ResponseError::UnknownMemberId), ticket.member_id);
            };
            let (poll, changed) = lock(&g).poll_join(&ticket, Instant::now());
            if changed {
                self.changed.notify_waiters();
            }
            match poll {
                Poll::Ready(r) => return r,
                Poll::Wait(wait) => {
                    let _ = tokio::time::timeout(wait, notified).await;
                }
            }
        }
    }

    pub async fn sync(
        &self,
        group_id: &str,
        generation: i32,
        member_id: &str,
        assignments: Vec<(String, Bytes)>,
    ) -> SyncResult {
        let err = |e: ResponseError| (e.code(), None, None, Bytes::new());
        let Some(g) = self.group(group_id, false) else {
            return err(ResponseError::UnknownMemberId);
        };
        let wait_until = {
            let (r, changed) = lock(&g).sync(generation, member_id, assignments, Instant::now());
            if changed {
                self.changed.notify_waiters();
            }
            match r {
                Ok(t) => t,
                Err(c) => return (c, None, None, Bytes::new()),
            }
        };
        loop {
            let notified = self.changed.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let Some(g) = self.group(group_id, false) else {
                return err(ResponseError::UnknownMemberId);
            };
            if let Some(r) = lock(&g).poll_sync(generation, member_id) {
                return r;
            }
            let now = Instant::now();
            if now >= wait_until {
                return err(ResponseError::RebalanceInProgress);
            }
            let _ = tokio::time::timeout(wait_until - now, notified).await;
        }
    }

    pub fn heartbeat(&self, group_id: &str, generation: i32, member_id: &str) -> i16 {
        match self.group(group_id, false) {
            Some(g) => lock(&g).heartbeat(generation, member_id, Instant::now()),
            None => code(ResponseError::UnknownMemberId),
        }
    }

    /// ConsumerGroupHeartbeat (KIP-848). `topics` is every topic that
    /// exists now, for subscriptions and regexes to resolve against.
    pub fn consumer_heartbeat(
        &self,
        group_id: &str,
        a: &HeartbeatArgs,
        topics: &std::collections::BTreeMap<String, TopicShape>,
    ) -> HeartbeatResult {
        if group_id.is_empty() {
            return HeartbeatResult {
                error: code(ResponseError::InvalidRequest),
                message: Some("GroupId can't be empty".into()),
                member_id: a.member_id.clone(),
                member_epoch: a.member_epoch,
                heartbeat_interval_ms: 0,
                assignment: None,
            };
        }
        // A leave of an unknown group need not create it.
        let create = a.member_epoch >= 0;
        let Some(g) = self.group(group_id, create) else {
            return HeartbeatResult {
                error: code(ResponseError::UnknownMemberId),
                message: Some(format!("group {group_id} has no members")),
                member_id: a.member_id.clone(),
                member_epoch: a.member_epoch,
                heartbeat_interval_ms: 0,
                assignment: None,
            };
        };
        let r = lock(&g).consumer_heartbeat(a, topics, &self.settings.consumer, Instant::now());
        r
    }

    /// ConsumerGroupDescribe: `None` if there is no such group, `Some(Err)`
    /// if it is a classic group.
    pub fn describe_consumer_group(&self, group_id: &str) -> Option<Result<ConsumerGroupView, ()>> {
        let g = self.group(group_id, false)?;
        let group = lock(&g);
        if group.kind != Kind::Consumer {
            return Some(Err(()));
        }
        let c = &group.consumer;
        Some(Ok(ConsumerGroupView {
            state: c.state_name(),
            group_epoch: c.group_epoch,
            assignment_epoch: c.assignment_epoch,
            assignor: c.assignor.clone(),
            members: c
                .members
                .values()
                .map(|m| (m.clone(), c.target.get(&m.id).cloned().unwrap_or_default()))
                .collect(),
        }))
    }

    /// OffsetFetch v9+ from a member of a consumer group: the member must be
    /// known and at its current epoch (Kafka's rule); other fetches are not
    /// checked.
    pub fn check_fetch(&self, group_id: &str, member_id: Option<&str>, epoch: i32) -> i16 {
        let Some(member_id) = member_id.filter(|m| !m.is_empty()) else {
            return 0;
        };
        let Some(g) = self.group(group_id, false) else {
            return 0;
        };
        let group = lock(&g);
        if group.kind != Kind::Consumer || epoch < 0 {
            return 0;
        }
        group.consumer.check_commit(member_id, epoch)
    }

    /// Removes members; returns the overall code and one per member.
    pub fn leave(&self, group_id: &str, members: &[(String, Option<String>)]) -> (i16, Vec<i16>) {
        let Some(g) = self.group(group_id, false) else {
            return (
                code(ResponseError::UnknownMemberId),
                vec![code(ResponseError::UnknownMemberId); members.len()],
            );
        };
        let codes = lock(&g).leave(members, Instant::now());
        self.changed.notify_waiters();
        let overall = if members.len() == 1 { codes[0] } else { 0 };
        (overall, codes)
    }

    /// Drops members whose session expired and finishes rebalances whose
    /// deadline passed with no one waiting. Called periodically.
    pub fn expire(&self) {
        let groups = self.all_groups();
        let now = Instant::now();
        let mut changed = false;
        for (name, g) in groups {
            changed |= lock(&g).expire(&name, now, &self.settings.consumer);
        }
        if changed {
            self.changed.notify_waiters();
        }
    }

    /// OffsetCommit: checks the member's generation and, if it may commit,
    /// stores the offsets durably and then in memory, all under the group's
    /// lock, so that a rebalance cannot fence the member between the check
    /// and the write. Returns the check's error code (0: committed).
    /// Blocking.
    pub fn commit(
        &self,
        group_id: &str,
        generation: i32,
        member_id: &str,
        offsets: Vec<(String, i32, Committed)>,
    ) -> Result<i16, StorageError> {
        let g = self.group(group_id, true).expect("created");
        let rolled = {
            let mut group = lock(&g);
            let check = group.check_commit(generation, member_id, Instant::now());
            if check != 0 || offsets.is_empty() {
                return Ok(check);
            }
            #[cfg(test)]
            if let Some(hook) = &*self.before_append.lock().unwrap() {
                hook();
            }
            let rolled = self.store.append(group_id, &offsets)?;
            group.apply_commit(offsets, Instant::now());
            rolled
        };
        // The fsync of a sealed segment happens outside the group's lock.
        if rolled {
            self.store.flush_sealed()?;
        }
        Ok(0)
    }

    /// TxnOffsetCommit: checks the member as OffsetCommit does (unless the
    /// producer names no member and generation, as `sendOffsetsToTransaction`
    /// with a group id alone does), then stores the offsets as pending for
    /// the producer's transaction. Returns the check's error code. Blocking.
    pub fn txn_commit(
        &self,
        group_id: &str,
        producer_id: i64,
        generation: i32,
        member_id: &str,
        offsets: Vec<(String, i32, Committed)>,
    ) -> Result<i16, StorageError> {
        let g = self.group(group_id, true).expect("created");
        let rolled = {
            let mut group = lock(&g);
            if generation >= 0 || !member_id.is_empty() {
                let check = group.check_commit(generation, member_id, Instant::now());
                if check != 0 {
                    return Ok(check);
                }
            }
            if offsets.is_empty() {
                return Ok(0);
            }
            let rolled = self.store.append_pending(group_id, producer_id, &offsets)?;
            let pending = group.pending_txn.entry(producer_id).or_default();
            for (t, p, c) in offsets {
                pending.insert((t, p), c);
            }
            rolled
        };
        if rolled {
            self.store.flush_sealed()?;
        }
        Ok(0)
    }

    /// The end of a transaction that committed offsets of this group: they
    /// become committed offsets, or are dropped. Blocking.
    pub fn complete_txn(
        &self,
        group_id: &str,
        producer_id: i64,
        commit: bool,
    ) -> Result<(), StorageError> {
        let Some(g) = self.group(group_id, false) else {
            return Ok(());
        };
        let rolled = {
            let mut group = lock(&g);
            let Some(pending) = group.pending_txn.get(&producer_id) else {
                return Ok(());
            };
            let offsets: Vec<(String, i32, Committed)> = pending
                .iter()
                .map(|((t, p), c)| (t.clone(), *p, c.clone()))
                .collect();
            let rolled = self
                .store
                .complete_pending(group_id, producer_id, &offsets, commit)?;
            group.pending_txn.remove(&producer_id);
            if commit {
                group.apply_commit(offsets, Instant::now());
            }
            rolled
        };
        if rolled {
            self.store.flush_sealed()?;
        }
        Ok(())
    }

    /// Whether an open transaction has committed an offset for the
    /// partition (OffsetFetch with `require_stable` waits for it).
    pub fn has_pending(&self, group_id: &str, topic: &str, partition: i32) -> bool {
        let Some(g) = self.group(group_id, false) else {
            return false;
        };
        let key = (topic.to_string(), partition);
        let pending = lock(&g).pending_txn.values().any(|m| m.contains_key(&key));
        pending
    }

    /// DeleteGroups for one group: only an empty group goes, with its
    /// offsets. Blocking.
    pub fn delete_group(&self, group_id: &str) -> i16 {
        let Some(g) = self.group(group_id, false) else {
            return code(ResponseError::GroupIdNotFound);
        };
        let group = lock(&g);
        if !group.is_empty() {
            return code(ResponseError::NonEmptyGroup);
        }
        let keys: Vec<(String, i32)> = group.offsets.keys().cloned().collect();
        if let Err(e) = self.store.delete(group_id, &keys) {
            warn!(group = group_id, error = %e, "could not record deleted offsets");
            return code(ResponseError::KafkaStorageError);
        }
        drop(group);
        self.remove_if_same(group_id, &g);
        0
    }

    /// OffsetDelete: removes offsets of partitions whose topic no member
    /// of the group subscribes to. Returns the group error and one code per
    /// partition. Blocking.
    pub fn delete_offsets(&self, group_id: &str, partitions: &[(String, i32)]) -> (i16, Vec<i16>) {
        let Some(g) = self.group(group_id, false) else {
            return (code(ResponseError::GroupIdNotFound), Vec::new());
        };
        let mut group = lock(&g);
        let subscribed = group.subscribed_topics();
        let mut codes = Vec::new();
        let mut doomed = Vec::new();
        for (t, p) in partitions {
            if subscribed.contains(t) {
                codes.push(code(ResponseError::GroupSubscribedToTopic));
            } else {
                codes.push(0);
                doomed.push((t.clone(), *p));
            }
        }
        if let Err(e) = self.store.delete(group_id, &doomed) {
            warn!(group = group_id, error = %e, "could not record deleted offsets");
            return (code(ResponseError::KafkaStorageError), codes);
        }
        for k in &doomed {
            group.offsets.remove(k);
        }
        (0, codes)
    }

    /// Expires the offsets of groups that have been empty for longer than
    /// `offsets.retention.minutes`. Blocking.
    pub fn expire_offsets(&self) {
        let groups = self.all_groups();
        let now = Instant::now();
        for (name, g) in groups {
            let group = lock(&g);
            if !group.expired_offsets(now, self.settings.offsets_retention) {
                continue;
            }
            let keys: Vec<(String, i32)> = group.offsets.keys().cloned().collect();
            if self.store.delete(&name, &keys).is_ok() {
                info!(group = %name, partitions = keys.len(), "expired the offsets of an empty group");
                drop(group);
                self.remove_if_same(&name, &g);
            }
        }
    }

    pub fn committed(&self, group_id: &str, topic: &str, partition: i32) -> Option<Committed> {
        let g = self.group(group_id, false)?;
        let c = lock(&g)
            .offsets
            .get(&(topic.to_string(), partition))
            .cloned();
        c
    }

    /// Every (topic, partition) the group has offsets for.
    pub fn committed_partitions(&self, group_id: &str) -> Vec<(String, i32, Committed)> {
        let Some(g) = self.group(group_id, false) else {
            return Vec::new();
        };
        let group = lock(&g);
        group
            .offsets
            .iter()
            .map(|((t, p), c)| (t.clone(), *p, c.clone()))
            .collect()
    }

    /// Forgets a deleted topic's offsets in every group. Blocking.
    pub fn forget_topic(&self, topic: &str) {
        let groups = self.all_groups();
        for (name, g) in groups {
            let mut group = lock(&g);
            let keys: Vec<(String, i32)> = group
                .offsets
                .keys()
                .filter(|(t, _)| t == topic)
                .cloned()
                .collect();
            if keys.is_empty() {
                continue;
            }
            if let Err(e) = self.store.delete(&name, &keys) {
                warn!(group = %name, error = %e, "could not record deleted offsets");
            }
            for k in keys {
                group.offsets.remove(&k);
            }
        }
    }

    /// (group id, protocol type, state name, type) of every group.
    pub fn list(&self) -> Vec<(String, String, &'static str, Kind)> {
        let groups = self.all_groups();
        groups
            .into_iter()
            .map(|(name, g)| {
                let group = lock(&g);
                match group.kind {
                    Kind::Classic => (
                        name,
                        group.protocol_type.clone().unwrap_or_default(),
                        group.state.name(),
                        Kind::Classic,
                    ),
                    Kind::Consumer => (
                        name,
                        "consumer".to_string(),
                        group.consumer.state_name(),
                        Kind::Consumer,
                    ),
                }
            })
            .collect()
    }

    /// A snapshot for DescribeGroups; `Some(Err)` for a consumer group.
    #[allow(clippy::type_complexity)]
    pub fn describe(
        &self,
        group_id: &str,
    ) -> Option<Result<(State, String, String, Vec<Member>), ()>> {
        let g = self.group(group_id, false)?;
        let group = lock(&g);
        if group.kind == Kind::Consumer {
            return Some(Err(()));
        }
        Some(Ok((
            group.state,
            group.protocol_type.clone().unwrap_or_default(),
            group.protocol.clone().unwrap_or_default(),
            group.members.values().cloned().collect(),
        )))
    }

    /// The committed-offsets log, which the log cleaner compacts.
    pub fn offsets_log(&self) -> &std::sync::Arc<strata_storage::Log> {
        self.store.log()
    }

    pub fn close(&self) -> Result<(), StorageError> {
        self.store.close()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::mpsc;

    use super::*;
    use crate::group::state::JoinArgs;
    use strata_storage::Offset;

    fn committed(offset: i64) -> Vec<(String, i32, Committed)> {
        vec![(
            "t".into(),
            0,
            Committed {
                offset: Offset(offset),
                leader_epoch: -1,
                metadata: None,
            },
        )]
    }

    /// A group with one member, stable at generation 1.
    async fn stable_group(c: &Coordinator) -> (String, i32) {
        let joined = c
            .join(JoinArgs {
                group: "g".into(),
                member_id: String::new(),
                instance_id: None,
                client_id: "c".into(),
                client_host: "/127.0.0.1".into(),
                session_timeout_ms: 10_000,
                rebalance_timeout_ms: 10_000,
                protocol_type: "consumer".into(),
                protocols: vec![("range".into(), Bytes::new())],
                require_member_id: false,
            })
            .await;
        assert_eq!(joined.error, 0);
        let member = joined.member_id;
        let synced = c
            .sync(
                "g",
                joined.generation,
                &member,
                vec![(member.clone(), Bytes::new())],
            )
            .await;
        assert_eq!(synced.0, 0);
        (member, joined.generation)
    }

    /// A member that leaves (or is fenced by a rebalance) while its commit
    /// is being written cannot slip in between the commit's membership check
    /// and its write: the check and the write are one step under the group's
    /// lock, and the leave waits for it.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_commit_is_checked_and_written_as_one_step() {
        let dir = tempfile::tempdir().unwrap();
        let c = Arc::new(
            Coordinator::open(dir.path(), GroupSettings::with_delay(Duration::ZERO), true).unwrap(),
        );
        let (member, generation) = stable_group(&c).await;

        let (entered_tx, entered_rx) = mpsc::channel::<()>();
        let (go_tx, go_rx) = mpsc::channel::<()>();
        let go_rx = Mutex::new(go_rx);
        *c.before_append.lock().unwrap() = Some(Box::new(move || {
            entered_tx.send(()).unwrap();
            go_rx.lock().unwrap().recv().unwrap();
        }));

        let commit = {
            let (c, member) = (Arc::clone(&c), member.clone());
            std::thread::spawn(move || c.commit("g", generation, &member, committed(7)))
        };
        entered_rx.recv().unwrap();
        // The commit has passed its check and is about to write.
        let left = Arc::new(AtomicBool::new(false));
        let leave = {
            let (c, member, left) = (Arc::clone(&c), member.clone(), Arc::clone(&left));
            std::thread::spawn(move || {
                let r = c.leave("g", &[(member, None)]);
                left.store(true, Ordering::SeqCst);
                r
            })
        };
        std::thread::sleep(Duration::from_millis(200));
        assert!(
            !left.load(Ordering::SeqCst),
            "the member left while its commit was between check and write"
        );
        go_tx.send(()).unwrap();
        assert_eq!(commit.join().unwrap().unwrap(), 0);
        *c.before_append.lock().unwrap() = None;
        assert_eq!(leave.join().unwrap().0, 0);
        // Memory and the log agree, and the member is fenced from now on.
        assert_eq!(c.committed("g", "t", 0).unwrap().offset, Offset(7));
        assert_eq!(
            c.commit("g", generation, &member, committed(8)).unwrap(),
            ResponseError::UnknownMemberId.code()
        );
        c.close().unwrap();
        let reopened =
            Coordinator::open(dir.path(), GroupSettings::with_delay(Duration::ZERO), true).unwrap();
        assert_eq!(reopened.committed("g", "t", 0).unwrap().offset, Offset(7));
    }
}
