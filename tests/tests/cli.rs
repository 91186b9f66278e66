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
    let e = refused(&["--set", "log.retension.ms=1000"]);
    assert!(
        e.contains("log.retension.ms") && e.contains("did you mean \"log.retention.ms\"?"),
        "a typo names the nearest key: {e}"
    );
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

/// Sets `configs` on the broker resource `name` ("" is the cluster-wide
/// default, the resource no installed client library can name) with
/// IncrementalAlterConfigs, and returns the error code.
fn alter_broker(c: &mut Conn, name: &'static str, configs: &[(&str, Option<&str>)]) -> i16 {
    use kafka_protocol::messages::incremental_alter_configs_request::{
        AlterConfigsResource, AlterableConfig,
    };
    use kafka_protocol::messages::IncrementalAlterConfigsRequest;
    let configs = configs
        .iter()
        .map(|(k, v)| {
            AlterableConfig::default()
                .with_name(StrBytes::from_string(k.to_string()))
                .with_config_operation(if v.is_some() { 0 } else { 1 })
                .with_value(v.map(|v| StrBytes::from_string(v.to_string())))
        })
        .collect();
    let req = IncrementalAlterConfigsRequest::default().with_resources(vec![
        AlterConfigsResource::default()
            .with_resource_type(4)
            .with_resource_name(StrBytes::from_static_str(name))
            .with_configs(configs),
    ]);
    c.request(1, &req).responses[0].error_code
}

/// (name, value, source) of every synonym of `key` on a resource, in order.
fn synonyms(c: &mut Conn, resource_type: i8, name: &str, key: &str) -> Vec<(String, String, i8)> {
    let req = DescribeConfigsRequest::default()
        .with_include_synonyms(true)
        .with_resources(vec![DescribeConfigsResource::default()
            .with_resource_type(resource_type)
            .with_resource_name(StrBytes::from_string(name.to_string()))
            .with_configuration_keys(Some(vec![StrBytes::from_string(
                key.to_string(),
            )]))]);
    let r = c.request(4, &req);
    let entry = r.results[0]
        .configs
        .iter()
        .find(|c| &*c.name == key)
        .unwrap_or_else(|| panic!("{key} not described: {r:?}"));
    entry
        .synonyms
        .iter()
        .map(|s| {
            (
                s.name.to_string(),
                s.value.as_deref().unwrap_or_default().to_string(),
                s.source,
            )
        })
        .collect()
}

#[test]
fn cluster_default_broker_configs_sit_between_this_broker_and_start_up() {
    const DYNAMIC_BROKER: i8 = 2;
    const DYNAMIC_DEFAULT: i8 = 3;
    const STATIC: i8 = 4;
    const DEFAULT: i8 = 5;
    let mut broker = Broker::start(&["--set", "log.retention.hours=5"]);
    let mut c = Conn::connect(&broker.addr());
    assert_eq!(c.create_topic("t", 1, &[]).error_code, 0);
    assert_eq!(
        alter_broker(&mut c, "", &[("log.retention.ms", Some("7200000"))]),
        0
    );
    assert_eq!(
        alter_broker(&mut c, "0", &[("log.retention.ms", Some("3600000"))]),
        0
    );
    let s = |v: &str| v.to_string();
    let want = vec![
        (s("retention.ms"), s("60000"), 1),
        (s("log.retention.ms"), s("3600000"), DYNAMIC_BROKER),
        (s("log.retention.ms"), s("7200000"), DYNAMIC_DEFAULT),
        (s("log.retention.hours"), s("5"), STATIC),
        (s("log.retention.ms"), s("-1"), DEFAULT),
    ];
    assert_eq!(synonyms(&mut c, 2, "t", "retention.ms"), want[1..].to_vec());

    // A topic override heads the list.
    {
        use kafka_protocol::messages::incremental_alter_configs_request::{
            AlterConfigsResource, AlterableConfig,
        };
        use kafka_protocol::messages::IncrementalAlterConfigsRequest;
        let req = IncrementalAlterConfigsRequest::default().with_resources(vec![
            AlterConfigsResource::default()
                .with_resource_type(2)
                .with_resource_name(StrBytes::from_static_str("t"))
                .with_configs(vec![AlterableConfig::default()
                    .with_name(StrBytes::from_static_str("retention.ms"))
                    .with_value(Some(StrBytes::from_static_str("60000")))]),
        ]);
        assert_eq!(c.request(1, &req).responses[0].error_code, 0);
    }
    assert_eq!(synonyms(&mut c, 2, "t", "retention.ms"), want);

    // The default resource describes what is set on it; a static key is
    // refused there too, with Kafka's code and message.
    assert_eq!(
        synonyms(&mut c, 4, "", "log.retention.ms"),
        vec![(s("log.retention.ms"), s("7200000"), DYNAMIC_DEFAULT)]
    );
    assert_eq!(
        alter_broker(&mut c, "", &[("num.partitions", Some("2"))]),
        42
    );

    // Both layers survive a crash; deleting this broker's value uncovers
    // the cluster default.
    broker.kill();
    broker.restart();
    let mut c = Conn::connect(&broker.addr());
    assert_eq!(synonyms(&mut c, 2, "t", "retention.ms"), want);
    assert_eq!(alter_broker(&mut c, "0", &[("log.retention.ms", None)]), 0);
    assert_eq!(
        synonyms(&mut c, 4, "0", "log.retention.ms"),
        want[2..].to_vec()
    );
}
