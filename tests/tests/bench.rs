//! `strata-bench` against the real broker: every mode runs to the end and
//! reports what it did. Its figures are not asserted (speed is measured with
//! the tool, never in a test); only that the work it reports was done.

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use strata_tests::{files_under, strata_bin, Broker};

fn bench_bin() -> PathBuf {
    let bin = strata_bin().with_file_name("strata-bench");
    assert!(
        bin.exists(),
        "{} not found: run `cargo build --bin strata-bench` first",
        bin.display()
    );
    bin
}

/// Runs one mode with `--json` and returns its figures.
fn bench(args: &[&str]) -> serde_json::Map<String, serde_json::Value> {
    let out = Command::new(bench_bin())
        .arg("--json")
        .args(args)
        .output()
        .expect("run strata-bench");
    assert!(
        out.status.success(),
        "strata-bench {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    match serde_json::from_slice(&out.stdout) {
        Ok(serde_json::Value::Object(m)) => m,
        other => panic!("not a JSON object: {other:?}"),
    }
}

fn num(m: &serde_json::Map<String, serde_json::Value>, key: &str) -> f64 {
    m.get(key)
        .and_then(serde_json::Value::as_f64)
        .unwrap_or_else(|| panic!("no {key} in {m:?}"))
}

#[test]
fn every_mode_runs_against_the_broker_and_reports() {
    let broker = Broker::start(&[
        "--set",
        "remote.log.manager.task.interval.ms=200",
        "--set",
        "log.retention.check.interval.ms=200",
    ]);
    let addr = broker.addr();

    let p = bench(&[
        "produce",
        "--bootstrap",
        &addr,
        "--topic",
        "b",
        "--partitions",
        "2",
        "--records",
        "3000",
        // Small segments and a one-byte hot tier for this topic only.
        "--topic-config",
        "segment.bytes=262144",
        "--topic-config",
        "local.retention.bytes=1",
    ]);
    assert_eq!(num(&p, "records"), 3000.0);
    assert!(num(&p, "mb_per_sec") > 0.0 && num(&p, "produce_p99_ms") >= num(&p, "produce_p50_ms"));

    // History moves to the cold tier; a replay reads all of it back.
    let deadline = Instant::now() + Duration::from_secs(60);
    let local_segments = || {
        files_under(&broker.data_dir().join("b-0"))
            .iter()
            .filter(|p| p.extension().is_some_and(|e| e == "log"))
            .count()
    };
    while local_segments() > 2 {
        assert!(Instant::now() < deadline, "the hot tier did not shrink");
        std::thread::sleep(Duration::from_millis(200));
    }
    let r = bench(&["replay", "--bootstrap", &addr, "--topic", "b"]);
    assert_eq!(num(&r, "records"), 3000.0);
    let c = bench(&[
        "consume",
        "--bootstrap",
        &addr,
        "--topic",
        "b",
        "--from",
        "1000",
    ]);
    assert_eq!(num(&c, "records"), 1000.0);

    let e = bench(&[
        "e2e",
        "--bootstrap",
        &addr,
        "--topic",
        "lat",
        "--rate",
        "1000",
        "--seconds",
        "2",
        "--warmup-secs",
        "0",
        "--replay-topic",
        "b",
    ]);
    assert_eq!(num(&e, "consumed"), 2000.0);
    assert!(num(&e, "e2e_p99_ms") >= num(&e, "e2e_p50_ms"));
    assert!(num(&e, "replay_mb_per_sec") > 0.0);

    let remote = format!("file://{}", broker.data_dir().join("remote").display());
    let g = bench(&["limit", "get", "--remote", &remote]);
    assert!(num(&g, "bytes") > 0.0 && num(&g, "gets") >= num(&g, "objects"));
    let lp = bench(&["limit", "produce", "--records", "5000", "--partitions", "3"]);
    assert_eq!(num(&lp, "records"), 5000.0);
    let lc = bench(&["limit", "consume", "--records", "5000"]);
    assert_eq!(num(&lc, "records"), 5000.0);
}

#[test]
fn a_broker_that_is_not_there_is_named() {
    let out = Command::new(bench_bin())
        .args([
            "consume",
            "--bootstrap",
            "127.0.0.1:1",
            "--topic",
            "x",
            "-X",
            "socket.timeout.ms=2000",
        ])
        .output()
        .expect("run strata-bench");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("metadata"), "{err}");
}
