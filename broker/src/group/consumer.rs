//! One group's state machine for KIP-848's consumer group protocol
//! (ConsumerGroupHeartbeat): members with epochs, a target assignment
//! computed on the broker, and incremental reconciliation. Pure like the
//! classic one beside it: every step takes `now` and the topics as they
//! are, and does no I/O.
//!
//! The rule that keeps a partition from being owned twice: a member is
//! given a partition of its target only once no other member holds it
//! (assigned, or being revoked and not yet acknowledged); a member whose
//! target lost partitions is first asked to revoke them and moves to the
//! new epoch only when a heartbeat reports them released.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use kafka_protocol::ResponseError;
use regex::Regex;
use tracing::{debug, info};
use uuid::Uuid;

use super::assignor::{self, Assignment, MemberSubscription, TopicShape};

/// The coordinator's settings for consumer groups, from the broker's
/// `group.consumer.*` keys.
#[derive(Clone, Debug)]
pub struct ConsumerSettings {
    pub session_timeout: Duration,
    pub heartbeat_interval: Duration,
    /// `group.consumer.assignors`: the first is used when a member names
    /// none.
    pub assignors: Vec<String>,
    /// `group.consumer.max.size`.
    pub max_size: usize,
}

impl Default for ConsumerSettings {
    fn default() -> ConsumerSettings {
        ConsumerSettings {
            session_timeout: Duration::from_millis(45_000),
            heartbeat_interval: Duration::from_millis(5_000),
            assignors: assignor::ASSIGNORS.iter().map(|s| s.to_string()).collect(),
            max_size: i32::MAX as usize,
        }
    }
}

/// A ConsumerGroupHeartbeat as the state machine needs it. `None` fields
/// are "unchanged since the last heartbeat", as on the wire.
#[derive(Clone, Debug, Default)]
pub struct HeartbeatArgs {
    pub member_id: String,
    pub member_epoch: i32,
    pub instance_id: Option<String>,
    pub rack_id: Option<String>,
    /// -1: unchanged.
    pub rebalance_timeout_ms: i32,
    pub subscribed_topic_names: Option<Vec<String>>,
    pub subscribed_topic_regex: Option<String>,
    pub server_assignor: Option<String>,
    pub owned: Option<Assignment>,
    pub client_id: String,
    pub client_host: String,
}

/// The answer to a heartbeat.
#[derive(Clone, Debug, PartialEq)]
pub struct HeartbeatResult {
    pub error: i16,
    pub message: Option<String>,
    pub member_id: String,
    pub member_epoch: i32,
    pub heartbeat_interval_ms: i32,
    /// The member's whole assignment, when it changed or the member may
    /// not know it; `None` otherwise.
    pub assignment: Option<Assignment>,
}

impl HeartbeatResult {
    fn error(e: ResponseError, message: impl Into<String>, a: &HeartbeatArgs) -> HeartbeatResult {
        HeartbeatResult {
            error: e.code(),
            message: Some(message.into()),
            member_id: a.member_id.clone(),
            member_epoch: a.member_epoch,
            heartbeat_interval_ms: 0,
            assignment: None,
        }
    }
}

/// Where a member stands in reconciling with its target, with Kafka's
/// names.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum MemberState {
    Stable,
    /// Asked to revoke partitions; stays at its epoch until it reports them
    /// released.
    UnrevokedPartitions,
    /// At the target epoch, but waiting for partitions other members still
    /// hold.
    UnreleasedPartitions,
}

#[derive(Clone, Debug)]
pub struct ConsumerMember {
    pub id: String,
    pub instance_id: Option<String>,
    pub rack_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub epoch: i32,
    previous_epoch: i32,
    pub state: MemberState,
    pub subscribed_names: Vec<String>,
    pub subscribed_regex: Option<String>,
    regex: Option<Regex>,
    server_assignor: Option<String>,
    rebalance_timeout: Duration,
    /// What the member may own now.
    pub assigned: Assignment,
    /// What it was asked to revoke and has not yet reported released.
    pub revoking: Assignment,
    revoke_deadline: Option<Instant>,
    /// What the member last reported owning.
    owned: Option<Assignment>,
    /// The assignment last sent to it.
    sent: Option<Assignment>,
    last_seen: Instant,
    /// A static member that left with epoch -2: kept, with its assignment,
    /// for its instance id to come back within the session timeout.
    left_static: bool,
}

impl ConsumerMember {
    fn subscribes(&self, topic: &str) -> bool {
        self.subscribed_names.iter().any(|n| n == topic)
            || self.regex.as_ref().is_some_and(|r| r.is_match(topic))
    }
}

/// One consumer group's membership and assignment. Its committed offsets
/// are the enclosing group's, shared with the classic protocol.
#[derive(Debug, Default)]
pub struct ConsumerGroup {
    pub members: BTreeMap<String, ConsumerMember>,
    /// Static members: instance id to member id.
    statics: BTreeMap<String, String>,
    pub group_epoch: i32,
    pub assignment_epoch: i32,
    pub target: BTreeMap<String, Assignment>,
    /// The subscribed topics (names that exist and some member subscribes
    /// to) the target was computed from.
    subscribed: BTreeMap<String, TopicShape>,
    pub assignor: String,
    /// Something that changes the target happened in the heartbeat being
    /// handled; the group epoch moves once for all of it.
    dirty: bool,
}

fn code(e: ResponseError) -> i16 {
    e.code()
}

fn empty(a: &Assignment) -> bool {
    a.values().all(|s| s.is_empty())
}

fn normalized(a: Assignment) -> Assignment {
    a.into_iter().filter(|(_, s)| !s.is_empty()).collect()
}

fn minus(a: &Assignment, b: &Assignment) -> Assignment {
    normalized(
        a.iter()
            .map(|(t, ps)| {
                let other = b.get(t);
                (
                    *t,
                    ps.iter()
                        .filter(|p| !other.is_some_and(|o| o.contains(p)))
                        .copied()
                        .collect(),
                )
            })
            .collect(),
    )
}

fn intersect(a: &Assignment, b: &Assignment) -> Assignment {
    normalized(
        a.iter()
            .map(|(t, ps)| {
                let other = b.get(t);
                (
                    *t,
                    ps.iter()
                        .filter(|p| other.is_some_and(|o| o.contains(p)))
                        .copied()
                        .collect(),
                )
            })
            .collect(),
    )
}

fn union(a: &Assignment, b: &Assignment) -> Assignment {
    let mut out = a.clone();
    for (t, ps) in b {
        out.entry(*t).or_default().extend(ps.iter().copied());
    }
    normalized(out)
}

/// KIP-848's regular expressions are RE2J's; the `regex` crate takes the
/// same syntax (RE2's). A pattern must match the whole topic name.
fn compile(pattern: &str) -> Result<Regex, String> {
    Regex::new(&format!("^(?:{pattern})$")).map_err(|e| e.to_string())
}

impl ConsumerGroup {
    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    /// Kafka's state names for DescribeGroups, ListGroups and
    /// ConsumerGroupDescribe.
    pub fn state_name(&self) -> &'static str {
        if self.members.is_empty() {
            "Empty"
        } else if self.group_epoch > self.assignment_epoch {
            "Assigning"
        } else if self
            .members
            .values()
            .any(|m| m.epoch != self.assignment_epoch || m.state != MemberState::Stable)
        {
            "Reconciling"
        } else {
            "Stable"
        }
    }

    /// Every topic name some member subscribes to, for OffsetDelete.
    pub fn subscribed_topics(&self) -> BTreeSet<String> {
        self.subscribed.keys().cloned().collect()
    }

    /// Notes a change that needs a new target; the epoch moves in
    /// [`ConsumerGroup::refresh_target`], once per heartbeat however many
    /// changes it brought.
    fn bump(&mut self, why: &str) {
        self.dirty = true;
        debug!(epoch = self.group_epoch, why, "consumer group changed");
    }

    /// A change outside any heartbeat (a member left or expired): the
    /// epoch moves now, and the next heartbeat computes the target.
    fn bump_now(&mut self, why: &str) {
        self.group_epoch += 1;
        debug!(epoch = self.group_epoch, why, "consumer group epoch bumped");
    }

    fn remove_member(&mut self, id: &str) -> Option<ConsumerMember> {
        let m = self.members.remove(id)?;
        if let Some(i) = &m.instance_id {
            if self.statics.get(i).is_some_and(|cur| cur == id) {
                self.statics.remove(i);
            }
        }
        self.target.remove(id);
        Some(m)
    }

    /// One ConsumerGroupHeartbeat. `topics` is every topic that exists now.
    pub fn heartbeat(
        &mut self,
        a: &HeartbeatArgs,
        topics: &BTreeMap<String, TopicShape>,
        settings: &ConsumerSettings,
        now: Instant,
    ) -> HeartbeatResult {
        if let Some(name) = a.server_assignor.as_deref().filter(|s| !s.is_empty()) {
            if !settings.assignors.iter().any(|x| x == name) {
                return HeartbeatResult::error(
                    ResponseError::UnsupportedAssignor,
                    format!("assignor {name} is not one of group.consumer.assignors"),
                    a,
                );
            }
        }
        let regex = match a.subscribed_topic_regex.as_deref() {
            Some(p) if !p.is_empty() => match compile(p) {
                Ok(r) => Some(Some(r)),
                Err(e) => {
                    return HeartbeatResult::error(
                        ResponseError::InvalidRegularExpression,
                        format!("SubscribedTopicRegex {p:?} is not valid: {e}"),
                        a,
                    )
                }
            },
            Some(_) => Some(None),
            None => None,
        };
        let interval = settings.heartbeat_interval.as_millis() as i32;
        let member_id = match a.member_epoch {
            -1 | -2 => return self.leave(a, now),
            0 => match self.join(a, settings, now) {
                Ok(id) => id,
                Err(r) => return *r,
            },
            epoch if epoch > 0 => {
                let Some(m) = self.members.get(&a.member_id).filter(|m| !m.left_static) else {
                    return HeartbeatResult::error(
                        ResponseError::UnknownMemberId,
                        format!("member {} is not in the group", a.member_id),
                        a,
                    );
                };
                // A member one epoch behind whose last answer was lost may
                // carry on if it owns no more than it was given.
                let lost_answer = epoch == m.previous_epoch
                    && a.owned
                        .as_ref()
                        .is_some_and(|o| minus(o, &m.assigned).is_empty());
                if epoch != m.epoch && !lost_answer {
                    return HeartbeatResult::error(
                        ResponseError::FencedMemberEpoch,
                        format!("member epoch {epoch} is not the member's epoch {}", m.epoch),
                        a,
                    );
                }
                a.member_id.clone()
            }
            _ => {
                return HeartbeatResult::error(
                    ResponseError::InvalidRequest,
                    format!("member epoch {} is not valid", a.member_epoch),
                    a,
                )
            }
        };
        // Updates from this heartbeat.
        let mut changed = false;
        {
            let m = self.members.get_mut(&member_id).expect("member");
            m.last_seen = now;
            if let Some(names) = &a.subscribed_topic_names {
                let mut names = names.clone();
                names.sort();
                names.dedup();
                if names != m.subscribed_names {
                    m.subscribed_names = names;
                    changed = true;
                }
            }
            if let Some(r) = regex {
                let pattern = a.subscribed_topic_regex.clone().filter(|p| !p.is_empty());
                if pattern != m.subscribed_regex {
                    m.subscribed_regex = pattern;
                    m.regex = r;
                    changed = true;
                }
            }
            if let Some(s) = &a.server_assignor {
                let s = Some(s.clone()).filter(|s| !s.is_empty());
                if s != m.server_assignor {
                    m.server_assignor = s;
                    changed = true;
                }
            }
            if a.rebalance_timeout_ms >= 0 {
                m.rebalance_timeout = Duration::from_millis(a.rebalance_timeout_ms as u64);
            }
            if let Some(r) = &a.rack_id {
                m.rack_id = Some(r.clone());
            }
            if let Some(o) = &a.owned {
                m.owned = Some(normalized(o.clone()));
            }
        }
        if changed {
            self.bump("subscription changed");
        }
        self.refresh_target(topics, settings);
        self.reconcile(&member_id, now);
        let m = self.members.get_mut(&member_id).expect("member");
        let send = a.member_epoch == 0
            || m.sent.as_ref() != Some(&m.assigned)
            || a.owned
                .as_ref()
                .is_some_and(|o| normalized(o.clone()) != m.assigned);
        let assignment = send.then(|| m.assigned.clone());
        if send {
            m.sent = Some(m.assigned.clone());
        }
        HeartbeatResult {
            error: 0,
            message: None,
            member_id: member_id.clone(),
            member_epoch: m.epoch,
            heartbeat_interval_ms: interval,
            assignment,
        }
    }

    /// A heartbeat with epoch 0: a new member, a member starting over, or a
    /// static member coming back.
    fn join(
        &mut self,
        a: &HeartbeatArgs,
        settings: &ConsumerSettings,
        now: Instant,
    ) -> Result<String, Box<HeartbeatResult>> {
        if a.subscribed_topic_names.is_none() && a.subscribed_topic_regex.is_none() {
            return Err(Box::new(HeartbeatResult::error(
                ResponseError::InvalidRequest,
                "a joining member must send SubscribedTopicNames or SubscribedTopicRegex",
                a,
            )));
        }
        let id = if a.member_id.is_empty() {
            Uuid::new_v4().simple().to_string()
        } else {
            a.member_id.clone()
        };
        let mut member = ConsumerMember {
            id: id.clone(),
            instance_id: a.instance_id.clone(),
            rack_id: a.rack_id.clone(),
            client_id: a.client_id.clone(),
            client_host: a.client_host.clone(),
            epoch: 0,
            previous_epoch: -1,
            state: MemberState::Stable,
            subscribed_names: Vec::new(),
            subscribed_regex: None,
            regex: None,
            server_assignor: None,
            rebalance_timeout: Duration::from_millis(a.rebalance_timeout_ms.max(0) as u64),
            assigned: Assignment::new(),
            revoking: Assignment::new(),
            revoke_deadline: None,
            owned: None,
            sent: None,
            last_seen: now,
            left_static: false,
        };
        if let Some(instance) = &a.instance_id {
            if let Some(old_id) = self.statics.get(instance).cloned() {
                let old = self.members.get(&old_id).expect("static member");
                if !old.left_static && old_id != id {
                    return Err(Box::new(HeartbeatResult::error(
                        ResponseError::UnreleasedInstanceId,
                        format!("instance id {instance} is still used by member {old_id}"),
                        a,
                    )));
                }
                // The static member comes back under a new member id and
                // takes over its assignment and epoch: no rebalance.
                let old = self.remove_member(&old_id).expect("static member");
                member.epoch = old.epoch;
                member.previous_epoch = old.previous_epoch;
                member.state = old.state;
                member.subscribed_names = old.subscribed_names;
                member.subscribed_regex = old.subscribed_regex;
                member.regex = old.regex;
                member.server_assignor = old.server_assignor;
                member.assigned = old.assigned;
                member.revoking = old.revoking;
                member.revoke_deadline = old.revoke_deadline;
                if let Some(t) = self.target.remove(&old_id) {
                    self.target.insert(id.clone(), t);
                }
                self.statics.insert(instance.clone(), id.clone());
                self.members.insert(id.clone(), member);
                info!(member = %id, instance = %instance, "static member rejoined");
                return Ok(id);
            }
        }
        if let Some(existing) = self.members.get(&id) {
            // A known member starting over lost its assignment: what it had
            // is free again, and it reconciles from nothing.
            member.subscribed_names = existing.subscribed_names.clone();
            member.subscribed_regex = existing.subscribed_regex.clone();
            member.regex = existing.regex.clone();
            member.server_assignor = existing.server_assignor.clone();
        } else {
            if self.members.len() >= settings.max_size {
                return Err(Box::new(HeartbeatResult::error(
                    ResponseError::GroupMaxSizeReached,
                    format!(
                        "the group has group.consumer.max.size={} members",
                        settings.max_size
                    ),
                    a,
                )));
            }
            self.bump("member joined");
        }
        if let Some(instance) = &a.instance_id {
            self.statics.insert(instance.clone(), id.clone());
        }
        info!(member = %id, "consumer group member joined");
        self.members.insert(id.clone(), member);
        Ok(id)
    }

    fn leave(&mut self, a: &HeartbeatArgs, now: Instant) -> HeartbeatResult {
        let static_leave = a.member_epoch == -2;
        let mut r = HeartbeatResult {
            error: 0,
            message: None,
            member_id: a.member_id.clone(),
            member_epoch: a.member_epoch,
            heartbeat_interval_ms: 0,
            assignment: None,
        };
        let Some(m) = self.members.get_mut(&a.member_id) else {
            return HeartbeatResult::error(
                ResponseError::UnknownMemberId,
                format!("member {} is not in the group", a.member_id),
                a,
            );
        };
        if static_leave && m.instance_id.is_some() {
            // Kept with its assignment until its session times out.
            m.left_static = true;
            m.last_seen = now;
            return r;
        }
        self.remove_member(&a.member_id);
        self.bump_now("member left");
        info!(member = %a.member_id, "consumer group member left");
        r.member_epoch = -1;
        r
    }

    /// Recomputes the target when the group epoch moved past it or the
    /// subscribed topics changed (a topic matching a regex was created, a
    /// topic was deleted or grew).
    fn refresh_target(
        &mut self,
        topics: &BTreeMap<String, TopicShape>,
        settings: &ConsumerSettings,
    ) {
        let subscribed: BTreeMap<String, TopicShape> = topics
            .iter()
            .filter(|(name, _)| self.members.values().any(|m| m.subscribes(name)))
            .map(|(n, s)| (n.clone(), *s))
            .collect();
        if subscribed != self.subscribed {
            self.subscribed = subscribed;
            self.bump("subscribed topics changed");
        }
        if std::mem::take(&mut self.dirty) {
            self.group_epoch += 1;
        }
        if self.group_epoch <= self.assignment_epoch {
            return;
        }
        let name = self
            .members
            .values()
            .filter_map(|m| m.server_assignor.clone())
            .next()
            .or_else(|| settings.assignors.first().cloned())
            .unwrap_or_else(|| assignor::ASSIGNORS[0].to_string());
        let subs: Vec<MemberSubscription<'_>> = self
            .members
            .values()
            .map(|m| MemberSubscription {
                id: &m.id,
                topics: self
                    .subscribed
                    .keys()
                    .filter(|t| m.subscribes(t))
                    .map(|t| t.as_str())
                    .collect(),
                current: self.target.get(&m.id),
            })
            .collect();
        let target = assignor::assign(&name, &subs, &self.subscribed);
        self.target = target
            .into_iter()
            .map(|(k, v)| (k, normalized(v)))
            .collect();
        self.assignor = name;
        self.assignment_epoch = self.group_epoch;
        debug!(epoch = self.assignment_epoch, assignor = %self.assignor, "new target assignment");
    }

    /// Moves one member toward its target as far as the no-double-owner
    /// rule allows.
    fn reconcile(&mut self, id: &str, now: Instant) {
        let held_by_others: Assignment = self
            .members
            .values()
            .filter(|o| o.id != id)
            .fold(Assignment::new(), |acc, o| {
                union(&union(&acc, &o.assigned), &o.revoking)
            });
        let target = self.target.get(id).cloned().unwrap_or_default();
        let epoch = self.assignment_epoch;
        let m = self.members.get_mut(id).expect("member");
        if m.state == MemberState::UnrevokedPartitions {
            let released = m
                .owned
                .as_ref()
                .is_some_and(|o| intersect(o, &m.revoking).is_empty());
            if !released {
                return;
            }
            m.revoking.clear();
            m.revoke_deadline = None;
            m.state = MemberState::Stable;
        }
        if m.epoch == epoch && m.state == MemberState::Stable {
            return;
        }
        let revoke = minus(&m.assigned, &target);
        if !empty(&revoke) {
            m.assigned = intersect(&m.assigned, &target);
            m.revoking = revoke;
            m.revoke_deadline = Some(now + m.rebalance_timeout);
            m.state = MemberState::UnrevokedPartitions;
            return;
        }
        let wanted = minus(&target, &m.assigned);
        let free = minus(&wanted, &held_by_others);
        m.assigned = union(&m.assigned, &free);
        if m.epoch != epoch {
            m.previous_epoch = m.epoch;
            m.epoch = epoch;
        }
        m.state = if free == wanted {
            MemberState::Stable
        } else {
            MemberState::UnreleasedPartitions
        };
    }

    /// Drops members whose session expired or who did not revoke within
    /// their rebalance timeout. Returns whether any went.
    pub fn expire(&mut self, group: &str, now: Instant, settings: &ConsumerSettings) -> bool {
        let doomed: Vec<String> = self
            .members
            .values()
            .filter(|m| {
                now.saturating_duration_since(m.last_seen) > settings.session_timeout
                    || m.revoke_deadline.is_some_and(|d| now > d)
            })
            .map(|m| m.id.clone())
            .collect();
        for id in &doomed {
            self.remove_member(id);
            info!(group, member = %id, "consumer group member expired");
        }
        if !doomed.is_empty() {
            self.bump_now("members expired");
        }
        !doomed.is_empty()
    }

    /// OffsetCommit's check (Kafka's rule for consumer groups): an admin
    /// commit (no member, negative epoch) only to an empty group; otherwise
    /// a known member at its current epoch.
    pub fn check_commit(&self, member_id: &str, epoch: i32) -> i16 {
        if member_id.is_empty() && epoch < 0 {
            return if self.members.is_empty() {
                0
            } else {
                code(ResponseError::UnknownMemberId)
            };
        }
        match self.members.get(member_id) {
            None => code(ResponseError::UnknownMemberId),
            Some(m) if m.epoch != epoch => code(ResponseError::StaleMemberEpoch),
            Some(_) => 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: u128 = 7;

    fn topics(partitions: i32) -> BTreeMap<String, TopicShape> {
        BTreeMap::from([(
            "t".to_string(),
            TopicShape {
                id: Uuid::from_u128(T),
                partitions,
            },
        )])
    }

    fn join(id: &str) -> HeartbeatArgs {
        HeartbeatArgs {
            member_id: id.into(),
            member_epoch: 0,
            rebalance_timeout_ms: 30_000,
            subscribed_topic_names: Some(vec!["t".into()]),
            owned: Some(Assignment::new()),
            ..Default::default()
        }
    }

    fn beat(id: &str, epoch: i32, owned: &Assignment) -> HeartbeatArgs {
        HeartbeatArgs {
            member_id: id.into(),
            member_epoch: epoch,
            rebalance_timeout_ms: -1,
            owned: Some(owned.clone()),
            ..Default::default()
        }
    }

    /// A simulated client: what it owns and its epoch.
    struct Client {
        id: String,
        epoch: i32,
        owns: Assignment,
    }

    impl Client {
        fn beat(
            &mut self,
            g: &mut ConsumerGroup,
            topics: &BTreeMap<String, TopicShape>,
            now: Instant,
        ) {
            let r = if self.epoch == 0 {
                g.heartbeat(&join(&self.id), topics, &ConsumerSettings::default(), now)
            } else {
                g.heartbeat(
                    &beat(&self.id, self.epoch, &self.owns),
                    topics,
                    &ConsumerSettings::default(),
                    now,
                )
            };
            assert_eq!(r.error, 0, "{r:?}");
            self.epoch = r.member_epoch;
            if let Some(a) = r.assignment {
                // A client revokes what is gone and takes what is new.
                self.owns = a;
            }
        }
    }

    fn no_overlap(clients: &[Client]) {
        let mut seen = BTreeSet::new();
        for c in clients {
            for (t, ps) in &c.owns {
                for p in ps {
                    assert!(seen.insert((*t, *p)), "{t}-{p} owned twice");
                }
            }
        }
    }

    fn total(clients: &[Client]) -> usize {
        clients
            .iter()
            .map(|c| c.owns.values().map(|s| s.len()).sum::<usize>())
            .sum()
    }

    #[test]
    fn members_converge_without_double_ownership() {
        let topics = topics(6);
        let mut g = ConsumerGroup::default();
        let now = Instant::now();
        let mut clients: Vec<Client> = ["a", "b", "c"]
            .iter()
            .map(|id| Client {
                id: id.to_string(),
                epoch: 0,
                owns: Assignment::new(),
            })
            .collect();
        for round in 0..6 {
            for i in 0..clients.len() {
                clients[i].beat(&mut g, &topics, now);
                no_overlap(&clients);
            }
            if round > 2 {
                assert_eq!(total(&clients), 6);
            }
        }
        assert_eq!(g.state_name(), "Stable");
        for c in &clients {
            assert_eq!(c.owns[&Uuid::from_u128(T)].len(), 2);
            assert_eq!(c.epoch, g.assignment_epoch);
        }
        // b leaves: its partitions move to a and c, never owned twice.
        let b = clients.remove(1);
        let r = g.heartbeat(
            &beat(&b.id, -1, &b.owns),
            &topics,
            &ConsumerSettings::default(),
            now,
        );
        assert_eq!((r.error, r.member_epoch), (0, -1));
        for _ in 0..4 {
            for i in 0..clients.len() {
                clients[i].beat(&mut g, &topics, now);
                no_overlap(&clients);
            }
        }
        assert_eq!(total(&clients), 6);
        assert_eq!(g.state_name(), "Stable");
    }

    #[test]
    fn a_partition_moves_only_after_it_is_revoked() {
        let topics = topics(2);
        let mut g = ConsumerGroup::default();
        let now = Instant::now();
        let mut a = Client {
            id: "a".into(),
            epoch: 0,
            owns: Assignment::new(),
        };
        a.beat(&mut g, &topics, now);
        assert_eq!(a.owns[&Uuid::from_u128(T)].len(), 2);
        let mut b = Client {
            id: "b".into(),
            epoch: 0,
            owns: Assignment::new(),
        };
        b.beat(&mut g, &topics, now);
        // b's target has one of a's partitions, which a still holds.
        assert!(b.owns.is_empty());
        assert_eq!(g.members["b"].state, MemberState::UnreleasedPartitions);
        // a is asked to give it up (its epoch stays until it does).
        let before = a.epoch;
        let r = g.heartbeat(
            &beat("a", a.epoch, &a.owns),
            &topics,
            &ConsumerSettings::default(),
            now,
        );
        assert_eq!(r.member_epoch, before);
        assert_eq!(r.assignment.as_ref().unwrap()[&Uuid::from_u128(T)].len(), 1);
        // Until a reports the revocation, b still gets nothing.
        b.beat(&mut g, &topics, now);
        assert!(b.owns.is_empty());
        a.owns = r.assignment.unwrap();
        a.beat(&mut g, &topics, now);
        assert!(a.epoch > before);
        b.beat(&mut g, &topics, now);
        assert_eq!(b.owns[&Uuid::from_u128(T)].len(), 1);
        let clients = [a, b];
        no_overlap(&clients);
    }

    #[test]
    fn fencing_and_unknown_members() {
        let topics = topics(1);
        let mut g = ConsumerGroup::default();
        let now = Instant::now();
        let s = ConsumerSettings::default();
        let r = g.heartbeat(&beat("x", 3, &Assignment::new()), &topics, &s, now);
        assert_eq!(r.error, ResponseError::UnknownMemberId.code());
        let r = g.heartbeat(&join("x"), &topics, &s, now);
        assert_eq!(r.member_epoch, 1);
        let r = g.heartbeat(&beat("x", 5, &Assignment::new()), &topics, &s, now);
        assert_eq!(r.error, ResponseError::FencedMemberEpoch.code());
        assert_eq!(g.check_commit("x", 1), 0);
        assert_eq!(
            g.check_commit("x", 0),
            ResponseError::StaleMemberEpoch.code()
        );
        assert_eq!(
            g.check_commit("", -1),
            ResponseError::UnknownMemberId.code()
        );
        let bad = HeartbeatArgs {
            subscribed_topic_regex: Some("(".into()),
            ..join("y")
        };
        let r = g.heartbeat(&bad, &topics, &s, now);
        assert_eq!(r.error, ResponseError::InvalidRegularExpression.code());
        let bad = HeartbeatArgs {
            server_assignor: Some("sticky".into()),
            ..join("y")
        };
        let r = g.heartbeat(&bad, &topics, &s, now);
        assert_eq!(r.error, ResponseError::UnsupportedAssignor.code());
    }

    #[test]
    fn sessions_expire_and_static_members_come_back() {
        let topics = topics(2);
        let mut g = ConsumerGroup::default();
        let s = ConsumerSettings::default();
        let t0 = Instant::now();
        let stat = HeartbeatArgs {
            instance_id: Some("i1".into()),
            ..join("m1")
        };
        let r = g.heartbeat(&stat, &topics, &s, t0);
        let epoch = r.member_epoch;
        let given = r.assignment.unwrap();
        // A second member with the same instance id while m1 is active.
        let other = HeartbeatArgs {
            instance_id: Some("i1".into()),
            ..join("m2")
        };
        assert_eq!(
            g.heartbeat(&other, &topics, &s, t0).error,
            ResponseError::UnreleasedInstanceId.code()
        );
        // m1 leaves for a restart (-2) and comes back as m2 with the same
        // assignment and epoch, without a rebalance.
        g.heartbeat(&beat("m1", -2, &given), &topics, &s, t0);
        let r = g.heartbeat(&other, &topics, &s, t0 + Duration::from_secs(1));
        assert_eq!(r.error, 0);
        assert_eq!(r.member_epoch, epoch);
        assert_eq!(r.assignment.unwrap(), given);
        // No heartbeat for longer than the session: the member goes.
        assert!(!g.expire("g", t0 + Duration::from_secs(30), &s));
        assert!(g.expire("g", t0 + Duration::from_secs(60), &s));
        assert!(g.is_empty());
    }

    #[test]
    fn a_regex_picks_up_a_topic_created_later() {
        let mut topics = topics(1);
        let mut g = ConsumerGroup::default();
        let s = ConsumerSettings::default();
        let now = Instant::now();
        let j = HeartbeatArgs {
            subscribed_topic_names: None,
            subscribed_topic_regex: Some("t|later.*".into()),
            ..join("m")
        };
        let r = g.heartbeat(&j, &topics, &s, now);
        assert_eq!(r.assignment.unwrap().len(), 1);
        topics.insert(
            "later-1".into(),
            TopicShape {
                id: Uuid::from_u128(99),
                partitions: 3,
            },
        );
        let owned = g.members["m"].assigned.clone();
        let r = g.heartbeat(&beat("m", r.member_epoch, &owned), &topics, &s, now);
        let a = r.assignment.unwrap();
        assert_eq!(a[&Uuid::from_u128(99)].len(), 3);
        // The pattern matches whole names only.
        topics.insert(
            "xt".into(),
            TopicShape {
                id: Uuid::from_u128(100),
                partitions: 1,
            },
        );
        let r = g.heartbeat(&beat("m", r.member_epoch, &a), &topics, &s, now);
        assert!(r.assignment.is_none());
    }
}
