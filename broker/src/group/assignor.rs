//! The server-side assignors of KIP-848's consumer group protocol, with
//! Kafka's names: `uniform` (partitions spread evenly, each member keeping
//! what it already has where balance allows) and `range` (each topic's
//! partitions split into consecutive ranges, so that members subscribed to
//! co-partitioned topics get the same partition numbers of each). Pure
//! functions of the members' subscriptions, the topics and the current
//! target assignment.

use std::collections::{BTreeMap, BTreeSet};

use uuid::Uuid;

/// A member's partitions, by topic id.
pub type Assignment = BTreeMap<Uuid, BTreeSet<i32>>;

/// The assignor names Kafka's `group.consumer.assignors` accepts, in its
/// default order (the first is used when a member names none).
pub const ASSIGNORS: &[&str] = &["uniform", "range"];

/// A topic as an assignment sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TopicShape {
    pub id: Uuid,
    pub partitions: i32,
}

/// What an assignor needs of one member.
pub struct MemberSubscription<'a> {
    pub id: &'a str,
    /// The topic names the member subscribes to that exist.
    pub topics: BTreeSet<&'a str>,
    /// What the member's current target holds.
    pub current: Option<&'a Assignment>,
}

/// The target assignment of every member, by the assignor `name` (one of
/// [`ASSIGNORS`]; anything else is treated as `uniform`).
pub fn assign(
    name: &str,
    members: &[MemberSubscription<'_>],
    topics: &BTreeMap<String, TopicShape>,
) -> BTreeMap<String, Assignment> {
    match name {
        "range" => range(members, topics),
        _ => uniform(members, topics),
    }
}

/// Every member with an empty assignment.
fn nothing_yet(members: &[MemberSubscription<'_>]) -> BTreeMap<String, Assignment> {
    members
        .iter()
        .map(|m| (m.id.to_string(), Assignment::new()))
        .collect()
}

/// Per topic, the members subscribed to it (sorted by member id) split its
/// partitions in ranges: each gets `n / k`, the first `n % k` one more.
fn range(
    members: &[MemberSubscription<'_>],
    topics: &BTreeMap<String, TopicShape>,
) -> BTreeMap<String, Assignment> {
    let mut out = nothing_yet(members);
    for (name, shape) in topics {
        let mut subscribers: Vec<&str> = members
            .iter()
            .filter(|m| m.topics.contains(name.as_str()))
            .map(|m| m.id)
            .collect();
        if subscribers.is_empty() {
            continue;
        }
        subscribers.sort_unstable();
        let n = shape.partitions.max(0) as usize;
        let k = subscribers.len();
        let mut next = 0usize;
        for (i, m) in subscribers.iter().enumerate() {
            let count = n / k + usize::from(i < n % k);
            let parts: BTreeSet<i32> = (next..next + count).map(|p| p as i32).collect();
            next += count;
            if !parts.is_empty() {
                out.get_mut(*m).expect("member").insert(shape.id, parts);
            }
        }
    }
    out
}

/// Every partition of a subscribed topic goes to one member subscribed to
/// it. A member first keeps what its current target holds, up to its fair
/// share (its subscribed partitions divided among their subscribers); the
/// rest go one by one to the least loaded subscriber, the previous owner
/// winning ties, so that a member joining or leaving moves few partitions.
fn uniform(
    members: &[MemberSubscription<'_>],
    topics: &BTreeMap<String, TopicShape>,
) -> BTreeMap<String, Assignment> {
    let mut out = nothing_yet(members);
    let mut load: BTreeMap<&str, usize> = members.iter().map(|m| (m.id, 0)).collect();
    let subscribers = |topic: &str| -> Vec<&str> {
        members
            .iter()
            .filter(|m| m.topics.contains(topic))
            .map(|m| m.id)
            .collect()
    };
    // A member's fair share of what it subscribes to.
    let share: BTreeMap<&str, usize> = members
        .iter()
        .map(|m| {
            let s: usize = m
                .topics
                .iter()
                .filter_map(|t| topics.get(*t).map(|shape| (t, shape)))
                .map(|(t, shape)| shape.partitions.max(0) as usize / subscribers(t).len().max(1))
                .sum();
            (m.id, s)
        })
        .collect();
    let mut previous: BTreeMap<(Uuid, i32), &str> = BTreeMap::new();
    for m in members {
        for (topic, parts) in m.current.into_iter().flatten() {
            for p in parts {
                previous.insert((*topic, *p), m.id);
            }
        }
    }
    let mut unassigned: Vec<(Uuid, i32, Vec<&str>)> = Vec::new();
    for (name, shape) in topics {
        let subs = subscribers(name);
        if subs.is_empty() {
            continue;
        }
        for p in 0..shape.partitions {
            let keeper = previous
                .get(&(shape.id, p))
                .copied()
                .filter(|m| subs.contains(m) && load[m] < share[m]);
            match keeper {
                Some(m) => {
                    *load.get_mut(m).expect("member") += 1;
                    out.get_mut(m)
                        .expect("member")
                        .entry(shape.id)
                        .or_default()
                        .insert(p);
                }
                None => unassigned.push((shape.id, p, subs.clone())),
            }
        }
    }
    for (topic, p, subs) in unassigned {
        let prev = previous.get(&(topic, p)).copied();
        let chosen = subs
            .iter()
            .copied()
            .min_by_key(|m| (load[m], Some(*m) != prev, *m))
            .expect("a subscriber");
        *load.get_mut(chosen).expect("member") += 1;
        out.get_mut(chosen)
            .expect("member")
            .entry(topic)
            .or_default()
            .insert(p);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn topics(list: &[(&str, u128, i32)]) -> BTreeMap<String, TopicShape> {
        list.iter()
            .map(|(n, id, p)| {
                (
                    n.to_string(),
                    TopicShape {
                        id: Uuid::from_u128(*id),
                        partitions: *p,
                    },
                )
            })
            .collect()
    }

    fn count(a: &Assignment) -> usize {
        a.values().map(|s| s.len()).sum()
    }

    fn all_once(out: &BTreeMap<String, Assignment>, total: usize) {
        let mut seen = BTreeSet::new();
        for a in out.values() {
            for (t, ps) in a {
                for p in ps {
                    assert!(seen.insert((*t, *p)), "{t}-{p} assigned twice");
                }
            }
        }
        assert_eq!(seen.len(), total);
    }

    #[test]
    fn uniform_spreads_evenly_and_sticks() {
        let t = topics(&[("a", 1, 6)]);
        let sub = |id| MemberSubscription {
            id,
            topics: ["a"].into(),
            current: None,
        };
        let first = assign("uniform", &[sub("m1"), sub("m2"), sub("m3")], &t);
        all_once(&first, 6);
        assert!(first.values().all(|a| count(a) == 2));
        // m2 leaves: m1 and m3 keep theirs and split m2's.
        let m1 = MemberSubscription {
            current: first.get("m1"),
            ..sub("m1")
        };
        let m3 = MemberSubscription {
            current: first.get("m3"),
            ..sub("m3")
        };
        let second = assign("uniform", &[m1, m3], &t);
        all_once(&second, 6);
        for m in ["m1", "m3"] {
            assert_eq!(count(&second[m]), 3);
            assert!(first[m][&Uuid::from_u128(1)].is_subset(&second[m][&Uuid::from_u128(1)]));
        }
    }

    #[test]
    fn uniform_with_different_subscriptions() {
        let t = topics(&[("a", 1, 4), ("b", 2, 2)]);
        let out = assign(
            "uniform",
            &[
                MemberSubscription {
                    id: "x",
                    topics: ["a", "b"].into(),
                    current: None,
                },
                MemberSubscription {
                    id: "y",
                    topics: ["a"].into(),
                    current: None,
                },
            ],
            &t,
        );
        all_once(&out, 6);
        assert!(!out["y"].contains_key(&Uuid::from_u128(2)));
    }

    #[test]
    fn range_splits_each_topic_in_ranges() {
        let t = topics(&[("a", 1, 5), ("b", 2, 5)]);
        let sub = |id| MemberSubscription {
            id,
            topics: ["a", "b"].into(),
            current: None,
        };
        let out = assign("range", &[sub("m2"), sub("m1")], &t);
        all_once(&out, 10);
        let a = Uuid::from_u128(1);
        let b = Uuid::from_u128(2);
        assert_eq!(out["m1"][&a], BTreeSet::from([0, 1, 2]));
        assert_eq!(out["m2"][&a], BTreeSet::from([3, 4]));
        assert_eq!(out["m1"][&a], out["m1"][&b]);
    }
}
