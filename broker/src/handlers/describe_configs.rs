use kafka_protocol::messages::describe_configs_response::{
    DescribeConfigsResourceResult, DescribeConfigsResult, DescribeConfigsSynonym,
};
use kafka_protocol::messages::{DescribeConfigsRequest, DescribeConfigsResponse};
use kafka_protocol::ResponseError;

use super::str_bytes;
use crate::broker::Broker;
use crate::config::{is_dynamic, Def, Layer, Scope, Source, DEFS};
use crate::kafka_keys::is_kafka_dynamic;

const TOPIC: i8 = 2;
const BROKER: i8 = 4;

/// DescribeConfigs for topics, this broker and the cluster-wide broker
/// default, with sources and (v1+, when asked) synonyms, types (v3+) and
/// documentation. Broker keys that change at run time are not read-only.
pub fn handle(
    broker: &Broker,
    req: DescribeConfigsRequest,
    version: i16,
) -> DescribeConfigsResponse {
    let config = broker.config();
    let results = req
        .resources
        .into_iter()
        .map(|r| {
            // Null or empty keys mean every config.
            let wanted = |d: &&Def| {
                r.configuration_keys
                    .as_ref()
                    .is_none_or(|keys| keys.is_empty() || keys.iter().any(|k| **k == *d.name))
            };
            let result = DescribeConfigsResult::default()
                .with_resource_type(r.resource_type)
                .with_resource_name(r.resource_name.clone());
            let entry = |d: &Def,
                         value: String,
                         source: Source,
                         read_only: bool,
                         synonyms: Vec<DescribeConfigsSynonym>| {
                DescribeConfigsResourceResult::default()
                    .with_name(str_bytes(d.name))
                    .with_value(Some(str_bytes(value)))
                    .with_read_only(read_only)
                    .with_config_source(source.code())
                    .with_synonyms(if req.include_synonyms {
                        synonyms
                    } else {
                        Vec::new()
                    })
                    .with_config_type(if version >= 3 { d.kind.type_code() } else { 0 })
                    .with_documentation(req.include_documentation.then(|| str_bytes(d.doc)))
            };
            match r.resource_type {
                TOPIC => {
                    let Some(topic) = broker.topic(&r.resource_name) else {
                        return result
                            .with_error_code(ResponseError::UnknownTopicOrPartition.code())
                            .with_error_message(Some(str_bytes(format!(
                                "Topic {} does not exist",
                                &*r.resource_name
                            ))));
                    };
                    let configs = DEFS
                        .iter()
                        .filter(|d| d.scope == Scope::Topic)
                        .filter(wanted)
                        .map(|d| {
                            let (value, source) = config.topic_value(d.name, &topic.configs);
                            let mut synonyms = Vec::new();
                            if let Some(v) = topic.configs.get(d.name) {
                                synonyms.push(synonym_entry(d.name, v.clone(), Source::Topic));
                            }
                            match d.broker_synonym {
                                Some(synonym) => synonyms.extend(
                                    config
                                        .broker_synonyms(synonym)
                                        .into_iter()
                                        .map(|(k, v, source)| synonym_entry(&k, v, source)),
                                ),
                                None => synonyms.push(synonym_entry(
                                    d.name,
                                    d.default.to_string(),
                                    Source::Default,
                                )),
                            }
                            entry(d, value, source, false, synonyms)
                        })
                        .collect();
                    result.with_configs(configs)
                }
                BROKER if *r.resource_name == *broker.node_id.to_string() => {
                    let listeners_set = !config.value("listeners").is_empty();
                    let mut configs: Vec<DescribeConfigsResourceResult> = DEFS
                        .iter()
                        .filter(|d| d.scope == Scope::Broker)
                        // Without `listeners`, the two are --listen's,
                        // described below.
                        .filter(|d| {
                            listeners_set || (d.name != "listeners" && d.name != "advertised.listeners")
                        })
                        .filter(wanted)
                        .map(|d| {
                            let synonyms = config
                                .broker_synonyms(d.name)
                                .into_iter()
                                .map(|(k, v, source)| synonym_entry(&k, v, source))
                                .collect();
                            entry(
                                d,
                                config.value(d.name),
                                config.broker_source(d.name),
                                !is_dynamic(d),
                                synonyms,
                            )
                        })
                        .collect();
                    let asked = |key: &str| {
                        r.configuration_keys
                            .as_ref()
                            .is_none_or(|keys| keys.is_empty() || keys.iter().any(|k| **k == *key))
                    };
                    // The listeners clients read: where this broker listens
                    // and what it advertises (one PLAINTEXT listener).
                    let listeners = [
                        (
                            "listeners",
                            broker
                                .listen
                                .map(|a| format!("PLAINTEXT://{a}"))
                                .unwrap_or_default(),
                        ),
                        (
                            "advertised.listeners",
                            format!(
                                "PLAINTEXT://{}:{}",
                                broker.advertised_host, broker.advertised_port
                            ),
                        ),
                    ];
                    for (key, value) in listeners {
                        if !asked(key) || listeners_set {
                            continue;
                        }
                        configs.push(
                            DescribeConfigsResourceResult::default()
                                .with_name(str_bytes(key))
                                .with_value(Some(str_bytes(value.clone())))
                                .with_read_only(true)
                                .with_config_source(Source::StaticBroker.code())
                                .with_synonyms(if req.include_synonyms {
                                    vec![synonym_entry(key, value, Source::StaticBroker)]
                                } else {
                                    Vec::new()
                                })
                                .with_config_type(if version >= 3 { 2 } else { 0 })
                                .with_documentation(req.include_documentation.then(|| {
                                    str_bytes("Set by --listen and --advertised-listener.")
                                })),
                        );
                    }
                    // Kafka keys set on this broker that it accepts without
                    // effect, as given, saying so in their documentation.
                    for (key, value) in config.without_effect() {
                        if !asked(&key) || key == "listeners" || key == "advertised.listeners" {
                            continue;
                        }
                        let source = config.broker_source(&key);
                        configs.push(
                            DescribeConfigsResourceResult::default()
                                .with_name(str_bytes(key.clone()))
                                .with_value(Some(str_bytes(value.clone())))
                                .with_read_only(!is_kafka_dynamic(&key))
                                .with_config_source(source.code())
                                .with_synonyms(if req.include_synonyms {
                                    vec![synonym_entry(&key, value, source)]
                                } else {
                                    Vec::new()
                                })
                                .with_config_type(if version >= 3 { 2 } else { 0 })
                                .with_documentation(req.include_documentation.then(|| {
                                    str_bytes("A Kafka broker config without effect on a single Strata node.")
                                })),
                        );
                    }
                    result.with_configs(configs)
                }
                // The cluster-wide default resource shows what is set on it.
                BROKER if r.resource_name.is_empty() => {
                    let layer = config.dynamic(Layer::ClusterDefault);
                    let configs = DEFS
                        .iter()
                        .filter(|d| layer.contains_key(d.name))
                        .filter(wanted)
                        .map(|d| {
                            let value = layer[d.name].clone();
                            let source = Source::DynamicDefaultBroker;
                            let synonyms = vec![synonym_entry(d.name, value.clone(), source)];
                            entry(d, value, source, false, synonyms)
                        })
                        .collect();
                    result.with_configs(configs)
                }
                BROKER => result
                    .with_error_code(ResponseError::InvalidRequest.code())
                    .with_error_message(Some(str_bytes(format!(
                        "Unexpected broker id, expected {} or empty string, but received {}",
                        broker.node_id, &*r.resource_name
                    )))),
                other => result
                    .with_error_code(ResponseError::InvalidRequest.code())
                    .with_error_message(Some(str_bytes(format!(
                        "Unsupported resource type {other}"
                    )))),
            }
        })
        .collect::<Vec<_>>();
    let mut results = results;
    for r in &mut results {
        for c in &mut r.configs {
            if SENSITIVE.contains(&&*c.name) {
                c.is_sensitive = true;
                c.value = None;
                for s in &mut c.synonyms {
                    s.value = None;
                }
            }
        }
    }
    DescribeConfigsResponse::default().with_results(results)
}

/// Configs whose values DescribeConfigs never shows, as Kafka's PASSWORD
/// configs: null, marked sensitive.
const SENSITIVE: &[&str] = &[
    "ssl.keystore.key",
    "ssl.key.password",
    "ssl.keystore.password",
    "ssl.truststore.password",
    "sasl.jaas.config",
];

fn synonym_entry(name: &str, value: String, source: Source) -> DescribeConfigsSynonym {
    DescribeConfigsSynonym::default()
        .with_name(str_bytes(name.to_string()))
        .with_value(Some(str_bytes(value)))
        .with_source(source.code())
}
