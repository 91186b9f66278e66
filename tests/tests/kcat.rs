//! kcat (librdkafka 2.0, from Debian) as a user would run it.

use std::io::Write;
use std::process::{Command, Stdio};

use strata_tests::Broker;

fn kcat(args: &[&str], stdin: Option<&str>) -> String {
    let mut child = Command::new("kcat")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("kcat is installed by scripts/install-test-deps.sh");
    let mut input = child.stdin.take().unwrap();
    if let Some(s) = stdin {
        input.write_all(s.as_bytes()).unwrap();
    }
    drop(input);
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "kcat {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn metadata_produce_consume_round_trip() {
    let broker = Broker::start(&["--set", "num.partitions=2"]);
    let b = broker.addr();

    let input: String = (0..20).map(|i| format!("key{i}:value {i}\n")).collect();
    kcat(
        &["-b", &b, "-P", "-t", "kc", "-K:", "-p", "1"],
        Some(&input),
    );
    let listing = kcat(&["-b", &b, "-L", "-t", "kc"], None);
    assert!(listing.contains("1 brokers:"), "{listing}");
    assert!(listing.contains(&format!("broker 0 at {b}")), "{listing}");
    assert!(
        listing.contains("topic \"kc\" with 2 partitions"),
        "{listing}"
    );

    let out = kcat(
        &[
            "-b",
            &b,
            "-C",
            "-t",
            "kc",
            "-p",
            "1",
            "-e",
            "-f",
            "%k|%s|%o\n",
        ],
        None,
    );
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 20, "{out}");
    for (i, line) in lines.iter().enumerate() {
        assert_eq!(*line, format!("key{i}|value {i}|{i}"));
    }
    // Reading from an offset in the middle.
    let out = kcat(
        &[
            "-b", &b, "-C", "-t", "kc", "-p", "1", "-o", "15", "-e", "-f", "%o\n",
        ],
        None,
    );
    assert_eq!(out, "15\n16\n17\n18\n19\n");
}

#[test]
fn balanced_consumer_with_group_commits() {
    let broker = Broker::start(&[
        "--set",
        "num.partitions=3",
        "--set",
        "group.initial.rebalance.delay.ms=200",
    ]);
    let b = broker.addr();
    for p in 0..3 {
        let input: String = (0..10).map(|i| format!("p{p}-{i}\n")).collect();
        kcat(
            &["-b", &b, "-P", "-t", "kg", "-p", &p.to_string()],
            Some(&input),
        );
    }
    // kcat's balanced consumer (-G) joins the group, gets all three
    // partitions and commits as it goes.
    let out = kcat(
        &[
            "-b",
            &b,
            "-G",
            "kcat-group",
            "-o",
            "beginning",
            "-e",
            "-f",
            "%p:%o\n",
            "-X",
            "auto.commit.interval.ms=100",
            "kg",
        ],
        None,
    );
    let mut lines: Vec<&str> = out.lines().collect();
    lines.sort();
    assert_eq!(lines.len(), 30, "{out}");
    // The group committed its position: a second run finds nothing new.
    let again = kcat(
        &["-b", &b, "-G", "kcat-group", "-e", "-f", "%p:%o\n", "kg"],
        None,
    );
    assert_eq!(again.lines().count(), 0, "{again}");
}
