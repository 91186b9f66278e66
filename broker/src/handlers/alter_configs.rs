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
use crate::config::{def, list_items, ConfigError, Kind, Layer, Scope};
use crate::error::AdminError;

const TOPIC: i8 = 2;
const BROKER: i8 = 4;

/// Incremental operations (Kafka's `AlterConfigOp.OpType`).
const SET: i8 = 0;
const DELETE: i8 = 1;
const APPEND: i8 = 2;
const SUBTRACT: i8 = 3;

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

    /// Whether configs of this resource are topic keys.
    fn scope(&self) -> Scope {
        match self {
            Target::Topic(_) => Scope::Topic,
            Target::Broker(_) => Scope::Broker,
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

/// APPEND or SUBTRACT on a list config, as Kafka applies them: the items
/// are added (those not there yet) to or removed from the value in force
/// (the resource's own, or the default it follows). Other configs are
/// INVALID_CONFIG.
fn list_op(
    broker: &Broker,
    target: &Target,
    configs: &BTreeMap<String, String>,
    name: &str,
    op: i8,
    value: &Option<StrBytes>,
) -> Result<String, AdminError> {
    let is_list = def(name, target.scope()).is_some_and(|d| matches!(d.kind, Kind::List(_)));
    if !is_list {
        return Err(AdminError::InvalidConfig(ConfigError::BadValue {
            key: name.to_string(),
            value: String::new(),
            reason: "APPEND and SUBTRACT apply to list configs only".into(),
        }));
    }
    let current = match (configs.get(name), target) {
        (Some(v), _) => v.clone(),
        (None, Target::Topic(_)) => broker.config().topic_value(name, &BTreeMap::new()).0,
        (None, Target::Broker(_)) => broker.config().value(name),
    };
    let mut items: Vec<String> = list_items(&current).into_iter().map(String::from).collect();
    let given = value.as_ref().map(|v| v.to_string()).unwrap_or_default();
    for item in list_items(&given) {
        match op {
            APPEND if !items.iter().any(|i| i == item) => items.push(item.to_string()),
            SUBTRACT => items.retain(|i| i != item),
            _ => {}
        }
    }
    Ok(items.join(","))
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
                            (op @ (APPEND | SUBTRACT), value) => {
                                let next = list_op(&b, &target, &configs, &name, op, value)?;
                                configs.insert(name, next);
                            }
                            (op, _) => {
                                return Err(AdminError::InvalidRequest(format!(
                                    "Unknown config operation {op} for {name}"
                                )))
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
