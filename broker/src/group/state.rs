//! One consumer group's state machine for Kafka's classic group protocol:
//! members, generations and the join and sync phases. Pure: it does no I/O,
//! never waits and never reads the clock; every step takes `now`, and the
//! coordinator around it does the waiting. That keeps each rule testable
//! data-in, data-out (see the tests at the end).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::{Duration, Instant};

use bytes::Bytes;
use kafka_protocol::ResponseError;
use tracing::{debug, info};

use super::assignor::TopicShape;
use super::consumer::{ConsumerGroup, ConsumerSettings, HeartbeatArgs, HeartbeatResult};
use super::offset_store::Committed;

/// A group's phase, with Kafka's names.
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

/// What a join needs from the request.
#[derive(Clone, Debug)]
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

#[derive(Clone, Debug, PartialEq)]
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
    pub fn error(code: i16, member_id: String) -> JoinResult {
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

/// A join the group accepted: the member waits until the group reaches
/// `generation` (or answers at once if it already has).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JoinTicket {
    pub member_id: String,
    pub generation: i32,
}

/// Where a waiting join or sync stands.
#[derive(Clone, Debug, PartialEq)]
pub enum Poll<T> {
    /// The answer.
    Ready(T),
    /// Not yet: look again when the group changes or after this long.
    Wait(Duration),
}

/// The answer of a sync: error, protocol type, protocol, assignment.
pub type SyncResult = (i16, Option<String>, Option<String>, Bytes);

fn code(e: ResponseError) -> i16 {
    e.code()
}

/// One group: its members and phase, and its committed offsets.
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
    pub empty_since: Option<Instant>,
    pub offsets: BTreeMap<(String, i32), Committed>,
    /// Offsets committed inside a transaction, by producer id: invisible
    /// to OffsetFetch until the transaction commits.
    pub pending_txn: BTreeMap<i64, BTreeMap<(String, i32), Committed>>,
    /// The initial rebalance delay (`group.initial.rebalance.delay.ms`).
    initial_delay: Duration,
    /// The group's KIP-848 membership, when consumer-protocol members use
    /// it. A group has members of one protocol at a time; its committed
    /// offsets are shared by both.
    pub consumer: ConsumerGroup,
    /// The protocol the group was last used with: `consumer` for KIP-848's,
    /// `classic` otherwise (what ListGroups reports as its type).
    pub kind: Kind,
}

/// Which protocol a group speaks, with ListGroups' names.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Kind {
    Classic,
    Consumer,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::Classic => "classic",
            Kind::Consumer => "consumer",
        }
    }
}

impl Group {
    pub fn new(now: Instant, initial_delay: Duration) -> Group {
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
            empty_since: Some(now),
            offsets: BTreeMap::new(),
            pending_txn: BTreeMap::new(),
            initial_delay,
            consumer: ConsumerGroup::default(),
            kind: Kind::Classic,
        }
    }

    /// Whether neither protocol has members.
    pub fn is_empty(&self) -> bool {
        self.members.is_empty() && self.consumer.is_empty()
    }

    /// ConsumerGroupHeartbeat. A classic group with members is not taken
    /// over (GROUP_ID_NOT_FOUND, as Kafka answers when it does not migrate
    /// a group); an empty one becomes a consumer group, keeping its offsets.
    pub fn consumer_heartbeat(
        &mut self,
        a: &HeartbeatArgs,
        topics: &BTreeMap<String, TopicShape>,
        settings: &ConsumerSettings,
        now: Instant,
    ) -> HeartbeatResult {
        if !self.members.is_empty() || self.state != State::Empty {
            return HeartbeatResult {
                error: code(ResponseError::GroupIdNotFound),
                message: Some("the group is a classic group with members".into()),
                member_id: a.member_id.clone(),
                member_epoch: a.member_epoch,
                heartbeat_interval_ms: 0,
                assignment: None,
            };
        }
        self.kind = Kind::Consumer;
        let r = self.consumer.heartbeat(a, topics, settings, now);
        self.note_emptiness(now);
        r
    }

    fn note_emptiness(&mut self, now: Instant) {
        if self.is_empty() {
            self.empty_since.get_or_insert(now);
        } else {
            self.empty_since = None;
        }
    }

    /// Starts (or restarts) a rebalance: every member must join again.
    fn prepare_rebalance(&mut self, now: Instant) {
        let delay = self.initial_delay;
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
            self.rebalance_deadline = Some(now + wait);
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
    fn complete_rebalance(&mut self, now: Instant) {
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
            self.empty_since = Some(now);
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
            m.last_seen = now;
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

    fn remove_member(&mut self, id: &str, now: Instant) {
        if self.members.remove(id).is_none() {
            return;
        }
        if self.members.is_empty() {
            self.state = State::Empty;
            self.empty_since = Some(now);
            self.generation += 1;
            self.leader = None;
            self.protocol = None;
            self.rebalance_deadline = None;
        } else {
            self.prepare_rebalance(now);
        }
    }

    /// Ends the join phase if it can end now; true if it did (the group
    /// changed and waiting members should look again).
    fn maybe_complete_join(&mut self, now: Instant) -> bool {
        if self.state == State::PreparingRebalance && self.join_complete(now) {
            self.complete_rebalance(now);
            true
        } else {
            false
        }
    }

    /// JoinGroup: admits the member (or answers with an error), starting a
    /// rebalance when its arrival needs one. The caller then waits with
    /// [`Group::poll_join`]. The second value says whether the group changed
    /// in a way other waiting members must see.
    pub fn join(&mut self, a: &JoinArgs, now: Instant) -> (Result<JoinTicket, JoinResult>, bool) {
        if !self.consumer.is_empty() {
            // Kafka moves members between protocols; Strata does not, so a
            // classic member meets a group in use by the other protocol.
            let e = JoinResult::error(
                code(ResponseError::InconsistentGroupProtocol),
                a.member_id.clone(),
            );
            return (Err(e), false);
        }
        self.kind = Kind::Classic;
        if self.state != State::Empty || !self.members.is_empty() {
            let same_type = self.protocol_type.as_deref() == Some(a.protocol_type.as_str());
            let common = a.protocols.iter().any(|(n, _)| {
                self.members
                    .values()
                    .all(|m| m.protocols.iter().any(|(p, _)| p == n))
            });
            if !same_type || !common {
                let e = JoinResult::error(
                    code(ResponseError::InconsistentGroupProtocol),
                    a.member_id.clone(),
                );
                return (Err(e), false);
            }
        }
        let mut member_id = a.member_id.clone();
        if let Some(instance) = &a.instance_id {
            // A static member keeps its place across restarts: the new
            // member id replaces the old one without a rebalance of its
            // own.
            if let Some(old) = self
                .members
                .values()
                .find(|m| m.instance_id.as_ref() == Some(instance))
                .map(|m| m.id.clone())
            {
                let mut m = self.members.remove(&old).expect("present");
                member_id = if member_id.is_empty() {
                    format!("{instance}-{}", uuid::Uuid::new_v4())
                } else {
                    member_id
                };
                m.id = member_id.clone();
                if self.leader.as_deref() == Some(old.as_str()) {
                    self.leader = Some(member_id.clone());
                }
                self.members.insert(member_id.clone(), m);
            }
        }
        if member_id.is_empty() {
            member_id = format!("{}-{}", a.client_id, uuid::Uuid::new_v4());
            if a.require_member_id && a.instance_id.is_none() {
                self.pending.insert(member_id.clone());
                let e = JoinResult::error(code(ResponseError::MemberIdRequired), member_id);
                return (Err(e), false);
            }
        } else if !self.members.contains_key(&member_id)
            && !self.pending.remove(&member_id)
            && a.instance_id.is_none()
        {
            let e = JoinResult::error(code(ResponseError::UnknownMemberId), member_id);
            return (Err(e), false);
        }
        let known = self
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
            last_seen: now,
            joined: true,
        };
        let new_member = !self.members.contains_key(&member_id);
        self.members.insert(member_id.clone(), member);
        self.protocol_type = Some(a.protocol_type.clone());
        // As Kafka: a known member rejoining with the same protocols while
        // the group is completing a rebalance, or is stable and it is not
        // the leader, gets the current generation back without a new
        // rebalance (it may have missed the response, or seen an old
        // generation in a heartbeat); anything else starts one.
        let is_leader = self.leader.as_deref() == Some(member_id.as_str());
        let current = !new_member
            && !changed_protocols
            && (self.state == State::CompletingRebalance
                || (self.state == State::Stable && !is_leader));
        debug!(group = %a.group, member = %member_id, state = self.state.name(), new_member, changed_protocols, is_leader, "join");
        if !current && (new_member || changed_protocols || self.state != State::PreparingRebalance)
        {
            self.prepare_rebalance(now);
            if let Some(m) = self.members.get_mut(&member_id) {
                m.joined = true;
            }
        }
        let changed = self.maybe_complete_join(now);
        let generation = self.generation
            + if self.state == State::PreparingRebalance {
                1
            } else {
                0
            };
        (
            Ok(JoinTicket {
                member_id,
                generation,
            }),
            changed,
        )
    }

    /// Where a member waiting in JoinGroup stands: its answer once the
    /// group has reached the ticket's generation and left the join phase.
    /// The second value says whether this step changed the group.
    pub fn poll_join(&mut self, ticket: &JoinTicket, now: Instant) -> (Poll<JoinResult>, bool) {
        let member_id = &ticket.member_id;
        if !self.members.contains_key(member_id) {
            let e = JoinResult::error(code(ResponseError::UnknownMemberId), member_id.clone());
            return (Poll::Ready(e), false);
        }
        let changed = self.maybe_complete_join(now);
        if self.generation >= ticket.generation && self.state != State::PreparingRebalance {
            let leader = self.leader.clone().unwrap_or_default();
            let protocol = self.protocol.clone().unwrap_or_default();
            let members = if leader == *member_id {
                self.members
                    .values()
                    .map(|m| (m.id.clone(), m.instance_id.clone(), m.metadata(&protocol)))
                    .collect()
            } else {
                Vec::new()
            };
            let r = JoinResult {
                error: 0,
                generation: self.generation,
                protocol_type: self.protocol_type.clone(),
                protocol: self.protocol.clone(),
                leader,
                member_id: member_id.clone(),
                members,
            };
            return (Poll::Ready(r), changed);
        }
        let wait = self
            .rebalance_deadline
            .map_or(Duration::from_millis(100), |d| {
                d.saturating_duration_since(now)
                    .max(Duration::from_millis(10))
            });
        (Poll::Wait(wait), changed)
    }

    /// SyncGroup: the leader's assignments end the rebalance. Returns when
    /// the member should stop waiting (its session timeout from now), or
    /// the error; the bool says whether the group changed.
    pub fn sync(
        &mut self,
        generation: i32,
        member_id: &str,
        assignments: Vec<(String, Bytes)>,
        now: Instant,
    ) -> (Result<Instant, i16>, bool) {
        let Some(member) = self.members.get_mut(member_id) else {
            return (Err(code(ResponseError::UnknownMemberId)), false);
        };
        member.last_seen = now;
        let session = member.session_timeout;
        if generation != self.generation {
            return (Err(code(ResponseError::IllegalGeneration)), false);
        }
        if self.state == State::PreparingRebalance {
            return (Err(code(ResponseError::RebalanceInProgress)), false);
        }
        let mut changed = false;
        if self.state == State::CompletingRebalance && self.leader.as_deref() == Some(member_id) {
            let given: HashMap<String, Bytes> = assignments.into_iter().collect();
            for m in self.members.values_mut() {
                m.assignment = given.get(&m.id).cloned().unwrap_or_default();
            }
            self.state = State::Stable;
            changed = true;
        }
        (Ok(now + session), changed)
    }

    /// Where a member waiting in SyncGroup stands: its assignment once the
    /// leader has given them out, an error if a rebalance overtook it.
    pub fn poll_sync(&self, generation: i32, member_id: &str) -> Option<SyncResult> {
        let err = |e: ResponseError| Some((e.code(), None, None, Bytes::new()));
        let Some(member) = self.members.get(member_id) else {
            return err(ResponseError::UnknownMemberId);
        };
        if self.generation != generation || self.state == State::PreparingRebalance {
            return err(ResponseError::RebalanceInProgress);
        }
        if self.state == State::Stable {
            return Some((
                0,
                self.protocol_type.clone(),
                self.protocol.clone(),
                member.assignment.clone(),
            ));
        }
        None
    }

    /// Heartbeat: keeps the member's session alive and tells it whether to
    /// rejoin.
    pub fn heartbeat(&mut self, generation: i32, member_id: &str, now: Instant) -> i16 {
        let state = self.state;
        let current = self.generation;
        let Some(member) = self.members.get_mut(member_id) else {
            return code(ResponseError::UnknownMemberId);
        };
        member.last_seen = now;
        if generation != current {
            return code(ResponseError::IllegalGeneration);
        }
        if state == State::PreparingRebalance {
            return code(ResponseError::RebalanceInProgress);
        }
        0
    }

    /// LeaveGroup: removes members (by member id, or by instance id for
    /// static members); one error code per member.
    pub fn leave(&mut self, members: &[(String, Option<String>)], now: Instant) -> Vec<i16> {
        let mut codes = Vec::new();
        for (id, instance) in members {
            let id = match instance {
                Some(i) => self
                    .members
                    .values()
                    .find(|m| m.instance_id.as_ref() == Some(i))
                    .map(|m| m.id.clone())
                    .unwrap_or_else(|| id.clone()),
                None => id.clone(),
            };
            if self.members.contains_key(&id) {
                self.remove_member(&id, now);
                codes.push(0);
            } else {
                codes.push(code(ResponseError::UnknownMemberId));
            }
        }
        codes
    }

    /// Drops members whose session expired and ends a join phase whose
    /// deadline passed; true if the group changed.
    pub fn expire(&mut self, name: &str, now: Instant, consumer: &ConsumerSettings) -> bool {
        let consumer_changed = self.consumer.expire(name, now, consumer);
        if consumer_changed {
            self.note_emptiness(now);
        }
        let expired: Vec<String> = self
            .members
            .values()
            .filter(|m| {
                !(self.state == State::PreparingRebalance && m.joined)
                    && now.duration_since(m.last_seen) > m.session_timeout
            })
            .map(|m| m.id.clone())
            .collect();
        let mut changed = consumer_changed;
        for id in expired {
            info!(group = %name, member = %id, "member session expired");
            self.remove_member(&id, now);
            changed = true;
        }
        if self.state == State::PreparingRebalance
            && self.rebalance_deadline.is_some_and(|d| now >= d)
        {
            self.complete_rebalance(now);
            changed = true;
        }
        changed
    }

    /// Whether an OffsetCommit from this member at this generation is
    /// accepted now. Generation -1 with an empty member id commits outside
    /// any generation, as tools and assign-only consumers do; while the
    /// group has members it is UNKNOWN_MEMBER_ID, as Kafka answers it.
    pub fn check_commit(&mut self, generation: i32, member_id: &str, now: Instant) -> i16 {
        if self.kind == Kind::Consumer {
            return self.consumer.check_commit(member_id, generation);
        }
        if generation < 0 && member_id.is_empty() {
            return if self.members.is_empty() {
                0
            } else {
                code(ResponseError::UnknownMemberId)
            };
        }
        let Some(member) = self.members.get_mut(member_id) else {
            return code(ResponseError::UnknownMemberId);
        };
        member.last_seen = now;
        if generation != self.generation {
            return code(ResponseError::IllegalGeneration);
        }
        if self.state == State::PreparingRebalance {
            return code(ResponseError::RebalanceInProgress);
        }
        0
    }

    /// Records committed offsets that are durable in the offsets log.
    pub fn apply_commit(&mut self, offsets: Vec<(String, i32, Committed)>, now: Instant) {
        for (t, p, c) in offsets {
            self.offsets.insert((t, p), c);
        }
        if self.is_empty() {
            self.empty_since = Some(now);
        }
    }

    /// Whether the group has been empty for longer than `retention`.
    pub fn expired_offsets(&self, now: Instant, retention: Duration) -> bool {
        self.is_empty()
            && self
                .empty_since
                .is_some_and(|t| now.duration_since(t) > retention)
    }

    /// The topics the members subscribe to, for OffsetDelete (consumer
    /// groups only).
    pub fn subscribed_topics(&self) -> BTreeSet<String> {
        if self.kind == Kind::Consumer {
            return self.consumer.subscribed_topics();
        }
        if self.protocol_type.as_deref() != Some("consumer") {
            return BTreeSet::new();
        }
        let protocol = self.protocol.clone().unwrap_or_default();
        self.members
            .values()
            .flat_map(|m| subscribed_topics(&m.metadata(&protocol)))
            .collect()
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

#[cfg(test)]
mod tests {
    use super::*;

    const DELAY: Duration = Duration::from_millis(3000);
    const SESSION_MS: i32 = 10_000;

    /// A clock for the tests: an instant that only moves when told to.
    struct Clock(Instant);

    impl Clock {
        fn new() -> Clock {
            Clock(Instant::now())
        }
        fn now(&self) -> Instant {
            self.0
        }
        fn advance(&mut self, ms: u64) {
            self.0 += Duration::from_millis(ms);
        }
    }

    fn args(member_id: &str, instance: Option<&str>) -> JoinArgs {
        JoinArgs {
            group: "g".into(),
            member_id: member_id.into(),
            instance_id: instance.map(String::from),
            client_id: "client".into(),
            client_host: "/127.0.0.1".into(),
            session_timeout_ms: SESSION_MS,
            rebalance_timeout_ms: 20_000,
            protocol_type: "consumer".into(),
            protocols: vec![("range".into(), Bytes::from_static(b"meta"))],
            require_member_id: false,
        }
    }

    /// Joins and returns the ticket.
    fn join(g: &mut Group, member_id: &str, clock: &Clock) -> JoinTicket {
        g.join(&args(member_id, None), clock.now())
            .0
            .expect("admitted")
    }

    fn ready(g: &mut Group, t: &JoinTicket, clock: &Clock) -> JoinResult {
        match g.poll_join(t, clock.now()).0 {
            Poll::Ready(r) => r,
            Poll::Wait(w) => panic!("still waiting ({w:?})"),
        }
    }

    /// A stable group with the given members, the first the leader.
    fn stable(members: usize, clock: &mut Clock) -> (Group, Vec<String>) {
        let mut g = Group::new(clock.now(), DELAY);
        let tickets: Vec<JoinTicket> = (0..members).map(|_| join(&mut g, "", clock)).collect();
        clock.advance(DELAY.as_millis() as u64);
        let results: Vec<JoinResult> = tickets.iter().map(|t| ready(&mut g, t, clock)).collect();
        let generation = results[0].generation;
        let leader = results[0].leader.clone();
        let assignments = results
            .iter()
            .map(|r| (r.member_id.clone(), Bytes::from(r.member_id.clone())))
            .collect();
        g.sync(generation, &leader, assignments, clock.now())
            .0
            .unwrap();
        assert_eq!(g.state, State::Stable);
        let mut ids: Vec<String> = results.into_iter().map(|r| r.member_id).collect();
        ids.sort_by_key(|id| id != &leader);
        (g, ids)
    }

    #[test]
    fn the_first_join_waits_the_initial_delay_then_the_leader_assigns() {
        let mut clock = Clock::new();
        let mut g = Group::new(clock.now(), DELAY);
        let t = join(&mut g, "", &clock);
        assert_eq!(g.state, State::PreparingRebalance);
        assert!(matches!(g.poll_join(&t, clock.now()).0, Poll::Wait(_)));
        clock.advance(DELAY.as_millis() as u64 - 1);
        assert!(matches!(g.poll_join(&t, clock.now()).0, Poll::Wait(_)));
        clock.advance(1);
        let r = ready(&mut g, &t, &clock);
        assert_eq!((r.error, r.generation), (0, 1));
        assert_eq!(r.leader, r.member_id);
        assert_eq!(r.members.len(), 1, "the leader gets the member list");
        assert_eq!(g.state, State::CompletingRebalance);
        // Until the leader syncs, nobody has an assignment.
        assert_eq!(g.poll_sync(1, &r.member_id), None);
        let (until, changed) = g.sync(
            1,
            &r.member_id,
            vec![(r.member_id.clone(), Bytes::from_static(b"a"))],
            clock.now(),
        );
        assert!(changed);
        assert_eq!(
            until.unwrap(),
            clock.now() + Duration::from_millis(SESSION_MS as u64)
        );
        let (code, _, protocol, assignment) = g.poll_sync(1, &r.member_id).unwrap();
        assert_eq!((code, protocol.as_deref()), (0, Some("range")));
        assert_eq!(assignment, Bytes::from_static(b"a"));
    }

    #[test]
    fn a_new_member_starts_a_rebalance_that_ends_when_everyone_rejoined() {
        let mut clock = Clock::new();
        let (mut g, ids) = stable(1, &mut clock);
        let newcomer = join(&mut g, "", &clock);
        assert_eq!(g.state, State::PreparingRebalance);
        assert_eq!(
            g.heartbeat(1, &ids[0], clock.now()),
            ResponseError::RebalanceInProgress.code(),
            "the old member is told to rejoin"
        );
        assert!(matches!(
            g.poll_join(&newcomer, clock.now()).0,
            Poll::Wait(_)
        ));
        let old = join(&mut g, &ids[0], &clock);
        // Everyone known has joined a running group's rebalance: no waiting.
        let r = ready(&mut g, &newcomer, &clock);
        assert_eq!((r.error, r.generation), (0, 2));
        assert_eq!(ready(&mut g, &old, &clock).members.len(), 2);
    }

    #[test]
    fn a_member_that_leaves_triggers_a_rebalance_and_the_last_empties_the_group() {
        let mut clock = Clock::new();
        let (mut g, ids) = stable(2, &mut clock);
        assert_eq!(g.leave(&[(ids[1].clone(), None)], clock.now()), vec![0]);
        assert_eq!(g.state, State::PreparingRebalance);
        assert_eq!(
            g.leave(&[("stranger".into(), None)], clock.now()),
            vec![ResponseError::UnknownMemberId.code()]
        );
        assert_eq!(g.leave(&[(ids[0].clone(), None)], clock.now()), vec![0]);
        assert_eq!(g.state, State::Empty);
        assert!(g.members.is_empty());
    }

    #[test]
    fn a_silent_member_expires_after_its_session_timeout() {
        let mut clock = Clock::new();
        let (mut g, ids) = stable(2, &mut clock);
        let generation = g.generation;
        clock.advance(SESSION_MS as u64 / 2);
        assert_eq!(g.heartbeat(generation, &ids[0], clock.now()), 0);
        clock.advance(SESSION_MS as u64 / 2 + 1);
        // ids[1] has been silent for longer than its session; ids[0] not.
        assert!(g.expire("g", clock.now(), &ConsumerSettings::default()));
        assert!(!g.members.contains_key(&ids[1]));
        assert!(g.members.contains_key(&ids[0]));
        assert_eq!(g.state, State::PreparingRebalance);
        // The survivor rejoins and the group moves on without the other.
        let t = join(&mut g, &ids[0], &clock);
        let r = ready(&mut g, &t, &clock);
        assert_eq!((r.generation, r.members.len()), (generation + 1, 1));
        clock.advance(SESSION_MS as u64 * 2);
        assert!(g.expire("g", clock.now(), &ConsumerSettings::default()));
        assert_eq!(g.state, State::Empty);
    }

    #[test]
    fn a_rebalance_drops_members_that_do_not_rejoin_by_the_deadline() {
        let mut clock = Clock::new();
        let (mut g, ids) = stable(2, &mut clock);
        let newcomer = join(&mut g, "", &clock);
        let t0 = join(&mut g, &ids[0], &clock);
        // ids[1] keeps heartbeating but never rejoins.
        clock.advance(19_999);
        g.heartbeat(g.generation, &ids[1], clock.now());
        assert!(matches!(g.poll_join(&t0, clock.now()).0, Poll::Wait(_)));
        clock.advance(1);
        let r = ready(&mut g, &newcomer, &clock);
        assert_eq!(r.error, 0);
        assert!(!g.members.contains_key(&ids[1]));
        assert_eq!(ready(&mut g, &t0, &clock).generation, r.generation);
    }

    #[test]
    fn a_static_member_rejoining_under_a_new_id_keeps_its_place() {
        let mut clock = Clock::new();
        let mut g = Group::new(clock.now(), DELAY);
        let t = g
            .join(&args("", Some("instance-1")), clock.now())
            .0
            .unwrap();
        clock.advance(DELAY.as_millis() as u64);
        let r = ready(&mut g, &t, &clock);
        g.sync(
            r.generation,
            &r.member_id,
            vec![(r.member_id.clone(), Bytes::from_static(b"p0"))],
            clock.now(),
        )
        .0
        .unwrap();
        // The process restarts and joins again with no member id.
        let again = g
            .join(&args("", Some("instance-1")), clock.now())
            .0
            .unwrap();
        assert_ne!(again.member_id, r.member_id);
        assert_eq!(g.members.len(), 1);
        assert!(
            !g.members.contains_key(&r.member_id),
            "the old id is fenced"
        );
        assert_eq!(g.leader.as_deref(), Some(again.member_id.as_str()));
        assert_eq!(
            g.heartbeat(r.generation, &r.member_id, clock.now()),
            ResponseError::UnknownMemberId.code()
        );
        // Leaving by instance id removes the member whatever its id.
        assert_eq!(
            g.leave(&[("".into(), Some("instance-1".into()))], clock.now()),
            vec![0]
        );
        assert!(g.members.is_empty());
    }

    #[test]
    fn commits_are_fenced_by_generation_and_rebalances() {
        let mut clock = Clock::new();
        let (mut g, ids) = stable(1, &mut clock);
        let generation = g.generation;
        assert_eq!(g.check_commit(generation, &ids[0], clock.now()), 0);
        assert_eq!(
            g.check_commit(generation - 1, &ids[0], clock.now()),
            ResponseError::IllegalGeneration.code()
        );
        assert_eq!(
            g.check_commit(generation, "stranger", clock.now()),
            ResponseError::UnknownMemberId.code()
        );
        assert_eq!(
            g.check_commit(-1, "", clock.now()),
            ResponseError::UnknownMemberId.code(),
            "a commit outside any generation is refused while the group has members"
        );
        join(&mut g, "", &clock);
        assert_eq!(
            g.check_commit(generation, &ids[0], clock.now()),
            ResponseError::RebalanceInProgress.code()
        );
        let mut empty = Group::new(clock.now(), DELAY);
        assert_eq!(empty.check_commit(-1, "", clock.now()), 0);
        let offset = Committed {
            offset: strata_storage::Offset(42),
            leader_epoch: -1,
            metadata: None,
        };
        clock.advance(5);
        empty.apply_commit(vec![("t".into(), 0, offset.clone())], clock.now());
        assert_eq!(empty.offsets.get(&("t".into(), 0)), Some(&offset));
        assert!(!empty.expired_offsets(clock.now(), Duration::from_millis(10)));
        clock.advance(11);
        assert!(empty.expired_offsets(clock.now(), Duration::from_millis(10)));
    }

    #[test]
    fn joins_with_another_protocol_type_or_no_common_protocol_are_refused() {
        let mut clock = Clock::new();
        let (mut g, _) = stable(1, &mut clock);
        let mut other = args("", None);
        other.protocol_type = "connect".into();
        let (r, _) = g.join(&other, clock.now());
        assert_eq!(
            r.unwrap_err().error,
            ResponseError::InconsistentGroupProtocol.code()
        );
        let mut other = args("", None);
        other.protocols = vec![("roundrobin".into(), Bytes::new())];
        assert_eq!(
            g.join(&other, clock.now()).0.unwrap_err().error,
            ResponseError::InconsistentGroupProtocol.code()
        );
        let mut v4 = args("", None);
        v4.require_member_id = true;
        let e = g.join(&v4, clock.now()).0.unwrap_err();
        assert_eq!(e.error, ResponseError::MemberIdRequired.code());
        // The id handed out is accepted on the next join.
        v4.member_id = e.member_id.clone();
        assert_eq!(g.join(&v4, clock.now()).0.unwrap().member_id, e.member_id);
    }
}
