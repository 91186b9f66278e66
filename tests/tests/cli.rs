//! The command line: bad configuration stops start-up with a message that
//! names the problem; a properties file and --set are both obeyed.

use std::process::Command;

use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
use kafka_protocol::messages::DescribeConfigsRequest;
use kafka_protocol::protocol::StrBytes;
use strata_tests::raw::Conn;
use strata_tests::{strata_bin, Broker};

fn refused(args: &[&str]) -> String {
    refused_with_env(args, &[])
}

fn refused_with_env(args: &[&str], env: &[(&str, &str)]) -> String {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(strata_bin())
        .args([
            "--listen",
            "127.0.0.1:0",
            "--metrics-listen",
            "127.0.0.1:0",
            "--data-dir",
        ])
        .arg(dir.path())
        .args(args)
        .envs(env.iter().copied())
        .output()
        .unwrap();
    assert!(
        !out.status.success(),
        "strata {args:?} should refuse to start"
    );
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn bad_configuration_stops_start_up_naming_it() {
    assert!(refused(&["--set", "no.such.key=1"]).contains("no.such.key"));
    let e = refused(&["--set", "num.partitions=lots"]);
    assert!(e.contains("num.partitions") && e.contains("lots"), "{e}");
    assert!(refused(&["--set", "log.segment.bytes=3"]).contains("log.segment.bytes"));
    assert!(
        refused(&["--set", "retention.ms=5"]).contains("log.retention.ms"),
        "topic keys point at the broker key"
    );
    assert!(refused(&["--set", "novalue"]).contains("KEY=VALUE"));

    // Remote stores: a scheme object_store does not serve, a malformed
    // URL, and an S3 endpoint nobody listens on.
    assert!(refused(&["--remote", "ftp://host/dir"]).contains("ftp"));
    assert!(refused(&["--remote", "not a url"]).contains("not a url"));
    let e = refused_with_env(
        &["--remote", "s3://bucket/prefix"],
        &[
            ("AWS_ENDPOINT", "http://127.0.0.1:9"),
            ("AWS_ALLOW_HTTP", "true"),
            ("AWS_REGION", "us-east-1"),
            ("AWS_ACCESS_KEY_ID", "k"),
            ("AWS_SECRET_ACCESS_KEY", "s"),
        ],
    );
    assert!(
        e.contains("does not answer") || e.contains("did not answer"),
        "{e}"
    );

    let dir = tempfile::tempdir().unwrap();
    let props = dir.path().join("broker.properties");
    std::fs::write(
        &props,
        "# comment\nnum.partitions=2\nlog.retention.hours=oops\n",
    )
    .unwrap();
    let e = refused(&["--config", props.to_str().unwrap()]);
    assert!(
        e.contains("log.retention.hours") && e.contains("oops"),
        "{e}"
    );
}

#[test]
fn properties_file_and_set_are_applied() {
    let dir = tempfile::tempdir().unwrap();
    let props = dir.path().join("broker.properties");
    std::fs::write(
        &props,
        "num.partitions=4\nlog.retention.hours=2\nlog.segment.bytes=100000\n",
    )
    .unwrap();
    let broker = Broker::start(&[
        "--config",
        props.to_str().unwrap(),
        "--set",
        "log.segment.bytes=200000",
    ]);
    let mut c = Conn::connect(&broker.addr());
    let req =
        DescribeConfigsRequest::default().with_resources(vec![DescribeConfigsResource::default()
            .with_resource_type(4)
            .with_resource_name(StrBytes::from_static_str("0"))]);
    let r = c.request(4, &req);
    let value = |k: &str| {
        r.results[0]
            .configs
            .iter()
            .find(|c| &*c.name == k)
            .and_then(|c| c.value.as_deref().map(str::to_string))
    };
    assert_eq!(value("num.partitions").as_deref(), Some("4"));
    assert_eq!(
        value("log.segment.bytes").as_deref(),
        Some("200000"),
        "--set wins over the file"
    );
    assert_eq!(
        value("log.retention.ms").as_deref(),
        Some("7200000"),
        "hours fold into ms"
    );
}
