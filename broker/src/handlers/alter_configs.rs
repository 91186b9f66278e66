//! AlterConfigs (replace a resource's configs) and IncrementalAlterConfigs
//! (set, delete, append, subtract single keys), for topics and for the
//! broker's dynamic configs. Changes are validated as CreateTopics
//! validates configs, persisted, applied to the partitions' logs at once and
//! obeyed by the next retention and upload passes.

use std::collections::BTreeMap;
use std::sync::Arc;

use kafka_protocol::messages::{
    alter_configs_response, incremental_alter_configs_response, AlterConfigsRequest,
    AlterConfigsResponse, IncrementalAlterConfigsRequest, IncrementalAlterConfigsResponse,
};
use kafka_protocol::protocol::StrBytes;

use super::{blocking, str_bytes};
use crate::broker::Broker;
use crate::config::{ConfigError, Layer};
use crate::error::AdminError;

const TOPIC: i8 = 2;
const BROKER: i8 = 4;

/// Incremental operations (Kafka's `AlterConfigOp.OpType`).
const SET: i8 = 0;
const DELETE: i8 = 1;

/// The outcome for one resource: error code and message.
type Outcome = (i16, Option<StrBytes>);

fn outcome(result: Result<(), AdminError>) -> Outcome {
    match result {
        Ok(()) => (0, None),
        Err(e) => (e.code(), Some(str_bytes(e.to_string()))),
    }
}

/// What a resource of a request names.
enum Target {
    Topic(String),
    Broker(Layer),
}

impl Target {
    fn of(broker: &Broker, resource_type: i8, name: &str) -> Result<Target, AdminError> {
        match resource_type {
            TOPIC => Ok(Target::Topic(name.to_string())),
            BROKER if name.is_empty() => Ok(Target::Broker(Layer::ClusterDefault)),
            BROKER if name == broker.node_id.to_string() => Ok(Target::Broker(Layer::ThisBroker)),
            BROKER => Err(AdminError::InvalidRequest(format!(
                "Unexpected broker id, expected {} or empty string, but received {name}",
                broker.node_id
            ))),
            other => Err(AdminError::InvalidRequest(format!(
                "Unsupported resource type {other}"
            ))),
        }
    }

    /// The configs set on the resource now.
    fn current(&self, broker: &Broker) -> Result<BTreeMap<String, String>, AdminError> {
        match self {
            Target::Topic(name) => Ok(broker
                .topic(name)
                .ok_or(AdminError::UnknownTopic)?
                .configs
                .clone()),
            Target::Broker(layer) => Ok(broker.config().dynamic(*layer).clone()),
        }
    }

    /// Replaces the resource's configs. A refused broker config is answered
    /// with INVALID_REQUEST, as Kafka answers it; a refused topic config
    /// with INVALID_CONFIG.
    fn replace(
        &self,
        broker: &Broker,
        configs: BTreeMap<String, String>,
        validate_only: bool,
    ) -> Result<(), AdminError> {
        match self {
            Target::Topic(name) => broker.set_topic_configs(name, configs, validate_only),
            Target::Broker(layer) => broker
                .set_dynamic_configs(*layer, configs, validate_only)
                .map_err(|e| match e {
                    AdminError::InvalidConfig(e) => AdminError::InvalidRequest(e.to_string()),
                    other => other,
                }),
        }
    }
}

pub async fn alter(broker: &Arc<Broker>, req: AlterConfigsRequest) -> AlterConfigsResponse {
    let b = Arc::clone(broker);
    let responses = blocking(move || {
        req.resources
            .into_iter()
            .map(|r| {
                let result = Target::of(&b, r.resource_type, &r.resource_name).and_then(|target| {
                    let configs: BTreeMap<String, String> = r
                        .configs
                        .iter()
                        .filter_map(|c| {
                            c.value
                                .as_ref()
                                .map(|v| (c.name.to_string(), v.to_string()))
                        })
                        .collect();
                    target.replace(&b, configs, req.validate_only)
                });
                let (code, message) = outcome(result);
                alter_configs_response::AlterConfigsResourceResponse::default()
                    .with_error_code(code)
                    .with_error_message(message)
                    .with_resource_type(r.resource_type)
                    .with_resource_name(r.resource_name)
            })
            .collect()
    })
    .await;
    AlterConfigsResponse::default().with_responses(responses)
}

pub async fn incremental(
    broker: &Arc<Broker>,
    req: IncrementalAlterConfigsRequest,
) -> IncrementalAlterConfigsResponse {
    let b = Arc::clone(broker);
    let responses = blocking(move || {
        req.resources
            .into_iter()
            .map(|r| {
                let result = Target::of(&b, r.resource_type, &r.resource_name).and_then(|target| {
                    let mut configs = target.current(&b)?;
                    for c in &r.configs {
                        let name = c.name.to_string();
                        match (c.config_operation, &c.value) {
                            (SET, Some(v)) => {
                                configs.insert(name, v.to_string());
                            }
                            (DELETE, _) => {
                                configs.remove(&name);
                            }
                            (SET, None) => {
                                return Err(AdminError::InvalidRequest(format!(
                                    "Null value not supported for: {name}"
                                )))
                            }
                            (op, _) => {
                                return Err(AdminError::InvalidConfig(ConfigError::BadValue {
                                    key: name,
                                    value: String::new(),
                                    reason: format!("operation {op} applies to list configs only"),
                                }))
                            }
                        }
                    }
                    target.replace(&b, configs, req.validate_only)
                });
                let (code, message) = outcome(result);
                incremental_alter_configs_response::AlterConfigsResourceResponse::default()
                    .with_error_code(code)
                    .with_error_message(message)
                    .with_resource_type(r.resource_type)
                    .with_resource_name(r.resource_name)
            })
            .collect()
    })
    .await;
    IncrementalAlterConfigsResponse::default().with_responses(responses)
}
