//! The group coordinator for Kafka's classic group protocol, and the durable
//! store of committed offsets.
//!
//! Group membership lives in memory: after a restart, consumers rejoin as
//! they do when a Kafka coordinator moves. Committed offsets are appended to
//! an internal log (`DATA_DIR/__consumer_offsets-0`, built on the storage
//! crate, see FORMAT.md) before a commit is acknowledged, replayed at start
//! and compacted there when mostly superseded.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use kafka_protocol::records::{
    Compression, Record, RecordBatchDecoder, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};
use kafka_protocol::ResponseError;
use serde::{Deserialize, Serialize};
use strata_storage::{Log, LogConfig, Offset, StorageError};
use tokio::sync::Notify;
use tracing::{debug, info, warn};

use crate::broker::now_ms;

/// Kafka's bounds on a member's session timeout.
const MIN_SESSION_TIMEOUT_MS: i32 = 6_000;
const MAX_SESSION_TIMEOUT_MS: i32 = 1_800_000;

#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum State {
    Empty,
    PreparingRebalance,
    CompletingRebalance,
    Stable,
}

impl State {
    pub fn name(self) -> &'static str {
        match self {
            State::Empty => "Empty",
            State::PreparingRebalance => "PreparingRebalance",
            State::CompletingRebalance => "CompletingRebalance",
            State::Stable => "Stable",
        }
    }
}

#[derive(Clone, Debug)]
pub struct Member {
    pub id: String,
    pub instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub session_timeout: Duration,
    pub rebalance_timeout: Duration,
    pub protocols: Vec<(String, Bytes)>,
    pub assignment: Bytes,
    last_seen: Instant,
    /// Joined the rebalance in progress.
    joined: bool,
}

impl Member {
    pub fn metadata(&self, protocol: &str) -> Bytes {
        self.protocols
            .iter()
            .find(|(n, _)| n == protocol)
            .map(|(_, m)| m.clone())
            .unwrap_or_default()
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Committed {
    pub offset: i64,
    pub leader_epoch: i32,
    pub metadata: Option<String>,
}

#[derive(Debug)]
pub struct Group {
    pub state: State,
    pub generation: i32,
    pub protocol_type: Option<String>,
    pub protocol: Option<String>,
    pub leader: Option<String>,
    pub members: BTreeMap<String, Member>,
    /// Member ids handed out with MEMBER_ID_REQUIRED, not yet joined.
    pending: BTreeSet<String>,
    rebalance_deadline: Option<Instant>,
    /// The rebalance in progress started from an empty group: it waits the
    /// whole initial delay for more members instead of ending as soon as
    /// everyone known has joined.
    initial: bool,
    /// Since when the group has had no members (and no commits), for
    /// `offsets.retention.minutes`.
    empty_since: Option<Instant>,
    pub offsets: BTreeMap<(String, i32), Committed>,
}

impl Group {
    fn new() -> Group {
        Group {
            state: State::Empty,
            generation: 0,
            protocol_type: None,
            protocol: None,
            leader: None,
            members: BTreeMap::new(),
            pending: BTreeSet::new(),
            rebalance_deadline: None,
            initial: false,
            empty_since: Some(Instant::now()),
            offsets: BTreeMap::new(),
        }
    }

    /// Starts (or restarts) a rebalance: every member must join again.
    fn prepare_rebalance(&mut self, delay: Duration) {
        let timeout = self
            .members
            .values()
            .map(|m| m.rebalance_timeout)
            .max()
            .unwrap_or(delay);
        let wait = if self.state == State::Empty {
            delay.min(timeout)
        } else {
            timeout
        };
        if self.state != State::PreparingRebalance {
            for m in self.members.values_mut() {
                m.joined = false;
            }
            self.initial = self.state == State::Empty;
            self.rebalance_deadline = Some(Instant::now() + wait);
            info!(
                generation = self.generation,
                members = self.members.len(),
                wait_ms = wait.as_millis() as u64,
                "rebalance started"
            );
        }
        self.state = State::PreparingRebalance;
    }

    /// Ends the join phase: members that did not join are dropped, a new
    /// generation starts and the leader gets to assign.
    fn complete_rebalance(&mut self) {
        let dropped: Vec<String> = self
            .members
            .values()
            .filter(|m| !m.joined)
            .map(|m| m.id.clone())
            .collect();
        if !dropped.is_empty() {
            info!(
                ?dropped,
                "members that did not rejoin in time left the group"
            );
        }
        self.members.retain(|_, m| m.joined);
        self.rebalance_deadline = None;
        self.generation += 1;
        if self.members.is_empty() {
            self.state = State::Empty;
            self.protocol = None;
            self.leader = None;
            self.empty_since = Some(Instant::now());
            return;
        }
        self.empty_since = None;
        self.protocol = self.choose_protocol();
        if self
            .leader
            .as_ref()
            .is_none_or(|l| !self.members.contains_key(l))
        {
            self.leader = self.members.keys().next().cloned();
        }
        for m in self.members.values_mut() {
            m.assignment = Bytes::new();
            m.last_seen = Instant::now();
        }
        self.state = State::CompletingRebalance;
        info!(generation = self.generation, members = self.members.len(), leader = ?self.leader, "rebalance completed");
    }

    /// The first protocol (in the leader's order of preference) that every
    /// member supports.
    fn choose_protocol(&self) -> Option<String> {
        let first = self.members.values().next()?;
        first.protocols.iter().map(|(n, _)| n.clone()).find(|n| {
            self.members
                .values()
                .all(|m| m.protocols.iter().any(|(p, _)| p == n))
        })
    }

    /// Whether the join phase can end now: everyone joined a rebalance of
    /// a running group, or the deadline passed.
    fn join_complete(&self, now: Instant) -> bool {
        let all = self.members.values().all(|m| m.joined);
        (all && !self.initial) || self.rebalance_deadline.is_none_or(|d| now >= d)
    }

    fn remove_member(&mut self, id: &str, delay: Duration) {
        if self.members.remove(id).is_none() {
            return;
        }
        if self.members.is_empty() {
            self.state = State::Empty;
            self.empty_since = Some(Instant::now());
            self.generation += 1;
            self.leader = None;
            self.protocol = None;
            self.rebalance_deadline = None;
        } else {
            self.prepare_rebalance(delay);
        }
    }
}

/// What a join, sync or heartbeat needs from the request.
pub struct JoinArgs {
    pub group: String,
    pub member_id: String,
    pub instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub session_timeout_ms: i32,
    pub rebalance_timeout_ms: i32,
    pub protocol_type: String,
    pub protocols: Vec<(String, Bytes)>,
    /// JoinGroup v4+: a new member first gets MEMBER_ID_REQUIRED.
    pub require_member_id: bool,
}

pub struct JoinResult {
    pub error: i16,
    pub generation: i32,
    pub protocol_type: Option<String>,
    pub protocol: Option<String>,
    pub leader: String,
    pub member_id: String,
    /// The members and their metadata, for the leader only.
    pub members: Vec<(String, Option<String>, Bytes)>,
}

impl JoinResult {
    fn error(code: i16, member_id: String) -> JoinResult {
        JoinResult {
            error: code,
            generation: -1,
            protocol_type: None,
            protocol: None,
            leader: String::new(),
            member_id,
            members: Vec::new(),
        }
    }
}

/// The coordinator of every group; shared by all connections. The state is
/// behind one mutex, never held across an await or file I/O other than the
/// offsets log append of a commit.
pub struct Coordinator {
    groups: Mutex<HashMap<String, Group>>,
    changed: Notify,
    store: OffsetStore,
    initial_delay: Duration,
    offsets_retention: Duration,
}

fn code(e: ResponseError) -> i16 {
    e.code()
}

impl Coordinator {
    /// Opens the offsets log in `data_dir` and replays it. Blocking.
    pub fn open(
        data_dir: &Path,
        initial_delay: Duration,
        offsets_retention: Duration,
        clean: bool,
    ) -> Result<Coordinator, StorageError> {
        let (store, offsets) = OffsetStore::open(data_dir, clean)?;
        let mut groups = HashMap::new();
        for ((group, topic, partition), c) in offsets {
            groups
                .entry(group)
                .or_insert_with(Group::new)
                .offsets
                .insert((topic, partition), c);
        }
        info!(groups = groups.len(), "loaded committed offsets");
        Ok(Coordinator {
            groups: Mutex::new(groups),
            changed: Notify::new(),
            store,
            initial_delay,
            offsets_retention,
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Group>> {
        self.groups.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub async fn join(&self, a: JoinArgs) -> JoinResult {
        if a.group.is_empty() {
            return JoinResult::error(code(ResponseError::InvalidGroupId), a.member_id);
        }
        if !(MIN_SESSION_TIMEOUT_MS..=MAX_SESSION_TIMEOUT_MS).contains(&a.session_timeout_ms) {
            return JoinResult::error(code(ResponseError::InvalidSessionTimeout), a.member_id);
        }
        let (member_id, target) = {
            let mut groups = self.lock();
            let group = groups.entry(a.group.clone()).or_insert_with(Group::new);
            if group.state != State::Empty || !group.members.is_empty() {
                let same_type = group.protocol_type.as_deref() == Some(a.protocol_type.as_str());
                let common = a.protocols.iter().any(|(n, _)| {
                    group
                        .members
                        .values()
                        .all(|m| m.protocols.iter().any(|(p, _)| p == n))
                });
                if !same_type || !common {
                    return JoinResult::error(
                        code(ResponseError::InconsistentGroupProtocol),
                        a.member_id,
                    );
                }
            }
            let mut member_id = a.member_id.clone();
            if let Some(instance) = &a.instance_id {
                // A static member keeps its place across restarts: the new
                // member id replaces the old one without a rebalance of its
                // own.
                if let Some(old) = group
                    .members
                    .values()
                    .find(|m| m.instance_id.as_ref() == Some(instance))
                    .map(|m| m.id.clone())
                {
                    let mut m = group.members.remove(&old).expect("present");
                    member_id = if member_id.is_empty() {
                        format!("{instance}-{}", uuid::Uuid::new_v4())
                    } else {
                        member_id
                    };
                    m.id = member_id.clone();
                    if group.leader.as_deref() == Some(old.as_str()) {
                        group.leader = Some(member_id.clone());
                    }
                    group.members.insert(member_id.clone(), m);
                }
            }
            if member_id.is_empty() {
                member_id = format!("{}-{}", a.client_id, uuid::Uuid::new_v4());
                if a.require_member_id && a.instance_id.is_none() {
                    group.pending.insert(member_id.clone());
                    return JoinResult::error(code(ResponseError::MemberIdRequired), member_id);
                }
            } else if !group.members.contains_key(&member_id)
                && !group.pending.remove(&member_id)
                && a.instance_id.is_none()
            {
                return JoinResult::error(code(ResponseError::UnknownMemberId), member_id);
            }
            let known = group
                .members
                .get(&member_id)
                .map(|m| (m.protocols.clone(), m.assignment.clone()));
            let changed_protocols = known.as_ref().is_some_and(|(p, _)| *p != a.protocols);
            let member = Member {
                id: member_id.clone(),
                instance_id: a.instance_id.clone(),
                client_id: a.client_id.clone(),
                client_host: a.client_host.clone(),
                session_timeout: Duration::from_millis(a.session_timeout_ms as u64),
                rebalance_timeout: Duration::from_millis(
                    a.rebalance_timeout_ms.max(a.session_timeout_ms) as u64,
                ),
                protocols: a.protocols.clone(),
                assignment: known.map(|(_, asg)| asg).unwrap_or_default(),
                last_seen: Instant::now(),
                joined: true,
            };
            let new_member = !group.members.contains_key(&member_id);
            group.members.insert(member_id.clone(), member);
            group.protocol_type = Some(a.protocol_type.clone());
            // As Kafka: a known member rejoining with the same protocols
            // while the group is completing a rebalance, or is stable and it
            // is not the leader, gets the current generation back without a
            // new rebalance (it may have missed the response, or seen an
            // old generation in a heartbeat); anything else starts one.
            let is_leader = group.leader.as_deref() == Some(member_id.as_str());
            let current = !new_member
                && !changed_protocols
                && (group.state == State::CompletingRebalance
                    || (group.state == State::Stable && !is_leader));
            debug!(group = %a.group, member = %member_id, state = group.state.name(), new_member, changed_protocols, is_leader, "join");
            if !current
                && (new_member || changed_protocols || group.state != State::PreparingRebalance)
            {
                group.prepare_rebalance(self.initial_delay);
                if let Some(m) = group.members.get_mut(&member_id) {
                    m.joined = true;
                }
            }
            if group.state == State::PreparingRebalance && group.join_complete(Instant::now()) {
                group.complete_rebalance();
                self.changed.notify_waiters();
            }
            (
                member_id,
                group.generation
                    + if group.state == State::PreparingRebalance {
                        1
                    } else {
                        0
                    },
            )
        };
        loop {
            let notified = self.changed.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let wait = {
                let mut groups = self.lock();
                let Some(group) = groups.get_mut(&a.group) else {
                    return JoinResult::error(code(ResponseError::UnknownMemberId), member_id);
                };
                if !group.members.contains_key(&member_id) {
                    return JoinResult::error(code(ResponseError::UnknownMemberId), member_id);
                }
                if group.generation >= target && group.state != State::PreparingRebalance {
                    let leader = group.leader.clone().unwrap_or_default();
                    let protocol = group.protocol.clone().unwrap_or_default();
                    let members = if leader == member_id {
                        group
                            .members
                            .values()
                            .map(|m| (m.id.clone(), m.instance_id.clone(), m.metadata(&protocol)))
                            .collect()
                    } else {
                        Vec::new()
                    };
                    return JoinResult {
                        error: 0,
                        generation: group.generation,
                        protocol_type: group.protocol_type.clone(),
                        protocol: group.protocol.clone(),
                        leader,
                        member_id,
                        members,
                    };
                }
                let now = Instant::now();
                if group.state == State::PreparingRebalance && group.join_complete(now) {
                    group.complete_rebalance();
                    self.changed.notify_waiters();
                    continue;
                }
                group
                    .rebalance_deadline
                    .map_or(Duration::from_millis(100), |d| {
                        d.saturating_duration_since(now)
                            .max(Duration::from_millis(10))
                    })
            };
            let _ = tokio::time::timeout(wait, notified).await;
        }
    }

    pub async fn sync(
        &self,
        group_id: &str,
        generation: i32,
        member_id: &str,
        assignments: Vec<(String, Bytes)>,
    ) -> (i16, Option<String>, Option<String>, Bytes) {
        let err = |e: ResponseError| (e.code(), None, None, Bytes::new());
        let wait_until = {
            let mut groups = self.lock();
            let Some(group) = groups.get_mut(group_id) else {
                return err(ResponseError::UnknownMemberId);
            };
            let Some(member) = group.members.get_mut(member_id) else {
                return err(ResponseError::UnknownMemberId);
            };
            member.last_seen = Instant::now();
            let session = member.session_timeout;
            if generation != group.generation {
                return err(ResponseError::IllegalGeneration);
            }
            if group.state == State::PreparingRebalance {
                return err(ResponseError::RebalanceInProgress);
            }
            if group.state == State::CompletingRebalance
                && group.leader.as_deref() == Some(member_id)
            {
                let given: HashMap<String, Bytes> = assignments.into_iter().collect();
                for m in group.members.values_mut() {
                    m.assignment = given.get(&m.id).cloned().unwrap_or_default();
                }
                group.state = State::Stable;
                self.changed.notify_waiters();
            }
            Instant::now() + session
        };
        loop {
            let notified = self.changed.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            {
                let groups = self.lock();
                let Some(group) = groups.get(group_id) else {
                    return err(ResponseError::UnknownMemberId);
                };
                let Some(member) = group.members.get(member_id) else {
                    return err(ResponseError::UnknownMemberId);
                };
                if group.generation != generation || group.state == State::PreparingRebalance {
                    return err(ResponseError::RebalanceInProgress);
                }
                if group.state == State::Stable {
                    return (
                        0,
                        group.protocol_type.clone(),
                        group.protocol.clone(),
                        member.assignment.clone(),
                    );
                }
            }
            let now = Instant::now();
            if now >= wait_until {
                return err(ResponseError::RebalanceInProgress);
            }
            let _ = tokio::time::timeout(wait_until - now, notified).await;
        }
    }

    pub fn heartbeat(&self, group_id: &str, generation: i32, member_id: &str) -> i16 {
        let mut groups = self.lock();
        let Some(group) = groups.get_mut(group_id) else {
            return code(ResponseError::UnknownMemberId);
        };
        let state = group.state;
        let current = group.generation;
        let Some(member) = group.members.get_mut(member_id) else {
            return code(ResponseError::UnknownMemberId);
        };
        member.last_seen = Instant::now();
        if generation != current {
            return code(ResponseError::IllegalGeneration);
        }
        if state == State::PreparingRebalance {
            return code(ResponseError::RebalanceInProgress);
        }
        0
    }

    /// Removes members; returns an error code per member.
    pub fn leave(&self, group_id: &str, members: &[(String, Option<String>)]) -> (i16, Vec<i16>) {
        let mut groups = self.lock();
        let Some(group) = groups.get_mut(group_id) else {
            return (
                code(ResponseError::UnknownMemberId),
                vec![code(ResponseError::UnknownMemberId); members.len()],
            );
        };
        let mut codes = Vec::new();
        for (id, instance) in members {
            let id = match instance {
                Some(i) => group
                    .members
                    .values()
                    .find(|m| m.instance_id.as_ref() == Some(i))
                    .map(|m| m.id.clone())
                    .unwrap_or_else(|| id.clone()),
                None => id.clone(),
            };
            if group.members.contains_key(&id) {
                group.remove_member(&id, self.initial_delay);
                codes.push(0);
            } else {
                codes.push(code(ResponseError::UnknownMemberId));
            }
        }
        self.changed.notify_waiters();
        let overall = if members.len() == 1 { codes[0] } else { 0 };
        (overall, codes)
    }

    /// Drops members whose session expired and finishes rebalances whose
    /// deadline passed with no one waiting. Called periodically.
    pub fn expire(&self) {
        let mut groups = self.lock();
        let now = Instant::now();
        let mut changed = false;
        for (name, group) in groups.iter_mut() {
            let expired: Vec<String> = group
                .members
                .values()
                .filter(|m| {
                    !(group.state == State::PreparingRebalance && m.joined)
                        && now.duration_since(m.last_seen) > m.session_timeout
                })
                .map(|m| m.id.clone())
                .collect();
            for id in expired {
                info!(group = %name, member = %id, "member session expired");
                group.remove_member(&id, self.initial_delay);
                changed = true;
            }
            if group.state == State::PreparingRebalance
                && group.rebalance_deadline.is_some_and(|d| now >= d)
            {
                group.complete_rebalance();
                changed = true;
            }
        }
        if changed {
            self.changed.notify_waiters();
        }
    }

    /// Validates a commit's membership; -1 generation and an empty member
    /// id commit outside any generation, as tools and assign-only consumers do.
    pub fn check_commit(&self, group_id: &str, generation: i32, member_id: &str) -> i16 {
        let mut groups = self.lock();
        let group = groups
            .entry(group_id.to_string())
            .or_insert_with(Group::new);
        if generation < 0 && member_id.is_empty() {
            return if group.members.is_empty() {
                0
            } else {
                code(ResponseError::IllegalGeneration)
            };
        }
        let Some(member) = group.members.get_mut(member_id) else {
            return code(ResponseError::UnknownMemberId);
        };
        member.last_seen = Instant::now();
        if generation != group.generation {
            return code(ResponseError::IllegalGeneration);
        }
        if group.state == State::PreparingRebalance {
            return code(ResponseError::RebalanceInProgress);
        }
        0
    }

    /// Stores committed offsets durably, then in memory. Blocking.
    pub fn commit(
        &self,
        group_id: &str,
        offsets: Vec<(String, i32, Committed)>,
    ) -> Result<(), StorageError> {
        self.store.append(group_id, &offsets)?;
        let mut groups = self.lock();
        let group = groups
            .entry(group_id.to_string())
            .or_insert_with(Group::new);
        for (t, p, c) in offsets {
            group.offsets.insert((t, p), c);
        }
        if group.members.is_empty() {
            group.empty_since = Some(Instant::now());
        }
        Ok(())
    }

    /// DeleteGroups for one group: only an empty group goes, with its
    /// offsets. Blocking.
    pub fn delete_group(&self, group_id: &str) -> i16 {
        let keys: Vec<(String, i32)> = {
            let groups = self.lock();
            let Some(g) = groups.get(group_id) else {
                return code(ResponseError::GroupIdNotFound);
            };
            if !g.members.is_empty() {
                return code(ResponseError::NonEmptyGroup);
            }
            g.offsets.keys().cloned().collect()
        };
        if let Err(e) = self.store.delete(group_id, &keys) {
            warn!(group = group_id, error = %e, "could not record deleted offsets");
            return code(ResponseError::KafkaStorageError);
        }
        self.lock().remove(group_id);
        0
    }

    /// OffsetDelete: removes offsets of partitions whose topic no member
    /// of the group subscribes to. Returns the group error and one code per
    /// partition. Blocking.
    pub fn delete_offsets(&self, group_id: &str, partitions: &[(String, i32)]) -> (i16, Vec<i16>) {
        let (codes, doomed) = {
            let groups = self.lock();
            let Some(g) = groups.get(group_id) else {
                return (code(ResponseError::GroupIdNotFound), Vec::new());
            };
            let subscribed: BTreeSet<String> = if g.protocol_type.as_deref() == Some("consumer") {
                let protocol = g.protocol.clone().unwrap_or_default();
                g.members
                    .values()
                    .flat_map(|m| subscribed_topics(&m.metadata(&protocol)))
                    .collect()
            } else {
                BTreeSet::new()
            };
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
            (codes, doomed)
        };
        if let Err(e) = self.store.delete(group_id, &doomed) {
            warn!(group = group_id, error = %e, "could not record deleted offsets");
            return (code(ResponseError::KafkaStorageError), codes);
        }
        if let Some(g) = self.lock().get_mut(group_id) {
            for k in &doomed {
                g.offsets.remove(k);
            }
        }
        (0, codes)
    }

    /// Expires the offsets of groups that have been empty for longer than
    /// `offsets.retention.minutes`. Blocking.
    pub fn expire_offsets(&self) {
        let now = Instant::now();
        let doomed: Vec<(String, Vec<(String, i32)>)> = self
            .lock()
            .iter()
            .filter(|(_, g)| {
                g.members.is_empty()
                    && g.empty_since
                        .is_some_and(|t| now.duration_since(t) > self.offsets_retention)
            })
            .map(|(name, g)| (name.clone(), g.offsets.keys().cloned().collect()))
            .collect();
        for (group, keys) in doomed {
            if self.store.delete(&group, &keys).is_ok() {
                info!(group = %group, partitions = keys.len(), "expired the offsets of an empty group");
                self.lock().remove(&group);
            }
        }
    }

    pub fn committed(&self, group_id: &str, topic: &str, partition: i32) -> Option<Committed> {
        self.lock()
            .get(group_id)?
            .offsets
            .get(&(topic.to_string(), partition))
            .cloned()
    }

    /// Every (topic, partition) the group has offsets for.
    pub fn committed_partitions(&self, group_id: &str) -> Vec<(String, i32, Committed)> {
        self.lock()
            .get(group_id)
            .map(|g| {
                g.offsets
                    .iter()
                    .map(|((t, p), c)| (t.clone(), *p, c.clone()))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Forgets a deleted topic's offsets in every group. Blocking.
    pub fn forget_topic(&self, topic: &str) {
        let doomed: Vec<(String, Vec<(String, i32)>)> = self
            .lock()
            .iter()
            .map(|(g, group)| {
                (
                    g.clone(),
                    group
                        .offsets
                        .keys()
                        .filter(|(t, _)| t == topic)
                        .cloned()
                        .collect::<Vec<_>>(),
                )
            })
            .filter(|(_, keys)| !keys.is_empty())
            .collect();
        for (group, keys) in doomed {
            if let Err(e) = self.store.delete(&group, &keys) {
                warn!(group = %group, error = %e, "could not record deleted offsets");
            }
            if let Some(g) = self.lock().get_mut(&group) {
                for k in keys {
                    g.offsets.remove(&k);
                }
            }
        }
    }

    /// (group id, protocol type, state) of every group.
    pub fn list(&self) -> Vec<(String, String, State)> {
        self.lock()
            .iter()
            .map(|(g, group)| {
                (
                    g.clone(),
                    group.protocol_type.clone().unwrap_or_default(),
                    group.state,
                )
            })
            .collect()
    }

    /// A snapshot for DescribeGroups.
    pub fn describe(&self, group_id: &str) -> Option<(State, String, String, Vec<Member>)> {
        let groups = self.lock();
        let g = groups.get(group_id)?;
        Some((
            g.state,
            g.protocol_type.clone().unwrap_or_default(),
            g.protocol.clone().unwrap_or_default(),
            g.members.values().cloned().collect(),
        ))
    }

    pub fn close(&self) -> Result<(), StorageError> {
        self.store.log.close()
    }
}

/// The topics in a consumer protocol subscription (the member metadata of
/// groups with protocol type `consumer`): a version, then an array of topic
/// names. Anything unreadable yields no topics.
fn subscribed_topics(metadata: &[u8]) -> Vec<String> {
    let mut out = Vec::new();
    let Some(count) = metadata
        .get(2..6)
        .map(|b| i32::from_be_bytes(b.try_into().expect("4 bytes")))
    else {
        return out;
    };
    let mut pos = 6;
    for _ in 0..count.max(0) {
        let Some(len) = metadata
            .get(pos..pos + 2)
            .map(|b| i16::from_be_bytes(b.try_into().expect("2 bytes")))
        else {
            break;
        };
        let Some(name) = metadata.get(pos + 2..pos + 2 + len.max(0) as usize) else {
            break;
        };
        out.push(String::from_utf8_lossy(name).into_owned());
        pos += 2 + len.max(0) as usize;
    }
    out
}

/// The internal log of committed offsets: one v2 batch per commit, a record
/// per partition with key `{"g","t","p"}` and value `{"offset",
/// "leader_epoch","metadata"}` as JSON, a null value for a deletion.
struct OffsetStore {
    log: Log,
}

#[derive(Serialize, Deserialize, PartialEq, Eq, PartialOrd, Ord, Clone)]
struct OffsetKey {
    g: String,
    t: String,
    p: i32,
}

type Offsets = BTreeMap<(String, String, i32), Committed>;

impl OffsetStore {
    fn dir(data_dir: &Path) -> PathBuf {
        data_dir.join("__consumer_offsets-0")
    }

    fn config() -> LogConfig {
        LogConfig {
            segment_bytes: 64 * 1024 * 1024,
            retention_ms: -1,
            segment_index_bytes: 1024 * 1024,
            ..LogConfig::default()
        }
    }

    fn open(data_dir: &Path, clean: bool) -> Result<(OffsetStore, Offsets), StorageError> {
        let dir = Self::dir(data_dir);
        let compacted = data_dir.join("__consumer_offsets-0.compacted");
        // A compaction that was renamed into place but not cleaned up.
        if compacted.exists() && !dir.exists() {
            let _ = std::fs::rename(&compacted, &dir);
        }
        let _ = std::fs::remove_dir_all(&compacted);
        // The previous log of a compaction that stopped before removing it.
        let _ = std::fs::remove_dir_all(data_dir.join("__consumer_offsets-0.old"));
        let log = Log::open(&dir, Self::config(), clean, now_ms())?;
        let (offsets, records) = Self::replay(&log)?;
        let store = OffsetStore { log };
        // Compaction: rewrite the log with only the live offsets once most
        // of it is superseded.
        if records > 1000 && records > 4 * offsets.len() {
            let fresh = Log::open(&compacted, Self::config(), true, now_ms())?;
            let mut by_group: BTreeMap<&str, Vec<(String, i32, Committed)>> = BTreeMap::new();
            for ((g, t, p), c) in &offsets {
                by_group
                    .entry(g)
                    .or_default()
                    .push((t.clone(), *p, c.clone()));
            }
            let tmp = OffsetStore { log: fresh };
            for (g, list) in by_group {
                tmp.append(g, &list)?;
            }
            tmp.log.close()?;
            store.log.close()?;
            let old = data_dir.join("__consumer_offsets-0.old");
            std::fs::rename(&dir, &old).map_err(|e| StorageError::Io {
                op: "rename",
                path: dir.clone(),
                source: e,
            })?;
            std::fs::rename(&compacted, &dir).map_err(|e| StorageError::Io {
                op: "rename",
                path: compacted.clone(),
                source: e,
            })?;
            let _ = std::fs::remove_dir_all(&old);
            info!(
                records,
                live = offsets.len(),
                "compacted the committed offsets log"
            );
            let log = Log::open(&dir, Self::config(), true, now_ms())?;
            return Ok((OffsetStore { log }, offsets));
        }
        Ok((store, offsets))
    }

    fn replay(log: &Log) -> Result<(Offsets, usize), StorageError> {
        let mut offsets = Offsets::new();
        let mut records = 0;
        let mut at = log.log_start_offset();
        let end = log.log_end_offset();
        while at < end {
            let data = log.read(at, 16 * 1024 * 1024, true)?;
            let mut buf = data.records.clone();
            let sets = RecordBatchDecoder::decode_all(&mut buf).unwrap_or_default();
            let mut next = at;
            for set in sets {
                for r in set.records {
                    next = Offset(r.offset + 1);
                    records += 1;
                    let Some(key) = r
                        .key
                        .as_ref()
                        .and_then(|k| serde_json::from_slice::<OffsetKey>(k).ok())
                    else {
                        continue;
                    };
                    match r
                        .value
                        .as_ref()
                        .and_then(|v| serde_json::from_slice::<Committed>(v).ok())
                    {
                        Some(c) => {
                            offsets.insert((key.g, key.t, key.p), c);
                        }
                        None => {
                            offsets.remove(&(key.g, key.t, key.p));
                        }
                    }
                }
            }
            if next <= at {
                break;
            }
            at = next;
        }
        Ok((offsets, records))
    }

    fn write(&self, records: Vec<Record>) -> Result<(), StorageError> {
        if records.is_empty() {
            return Ok(());
        }
        let mut buf = BytesMut::new();
        RecordBatchEncoder::encode(
            &mut buf,
            &records,
            &RecordEncodeOptions {
                version: 2,
                compression: Compression::None,
            },
        )
        .expect("offset records encode");
        if self.log.append(&mut buf, now_ms())?.rolled {
            self.log.flush_sealed()?;
        }
        // A commit is acknowledged only once it survives a crash of the
        // process; records are small, so the page cache write is the cost.
        Ok(())
    }

    fn record(i: usize, key: &OffsetKey, value: Option<Bytes>) -> Record {
        Record {
            transactional: false,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: -1,
            producer_id: -1,
            producer_epoch: -1,
            timestamp_type: TimestampType::Creation,
            offset: i as i64,
            sequence: i as i32 - 1,
            timestamp: now_ms(),
            key: Some(Bytes::from(serde_json::to_vec(key).expect("serializable"))),
            value,
            headers: Default::default(),
        }
    }

    fn append(
        &self,
        group: &str,
        offsets: &[(String, i32, Committed)],
    ) -> Result<(), StorageError> {
        let records = offsets
            .iter()
            .enumerate()
            .map(|(i, (t, p, c))| {
                let key = OffsetKey {
                    g: group.into(),
                    t: t.clone(),
                    p: *p,
                };
                Self::record(
                    i,
                    &key,
                    Some(Bytes::from(serde_json::to_vec(c).expect("serializable"))),
                )
            })
            .collect();
        self.write(records)
    }

    fn delete(&self, group: &str, keys: &[(String, i32)]) -> Result<(), StorageError> {
        let records = keys
            .iter()
            .enumerate()
            .map(|(i, (t, p))| {
                Self::record(
                    i,
                    &OffsetKey {
                        g: group.into(),
                        t: t.clone(),
                        p: *p,
                    },
                    None,
                )
            })
            .collect();
        self.write(records)
    }
}
