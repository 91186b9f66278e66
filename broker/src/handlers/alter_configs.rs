//! AlterConfigs (replace a topic's overrides) and IncrementalAlterConfigs
//! (set, delete, append, subtract single keys), for topics. Changes are
//! validated as CreateTopics validates configs, persisted, applied to the
//! partitions' logs at once and obeyed by the next retention and upload
//! passes. Broker configs are static in Strata and refused.

use std::collections::BTreeMap;
use std::sync::Arc;

use kafka_protocol::messages::{
    alter_configs_response, incremental_alter_configs_response, AlterConfigsRequest,
    AlterConfigsResponse, IncrementalAlterConfigsRequest, IncrementalAlterConfigsResponse,
};
use kafka_protocol::protocol::StrBytes;

use super::{blocking, str_bytes};
use crate::broker::Broker;
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

fn refuse_other_resources(resource_type: i8) -> Result<(), AdminError> {
    match resource_type {
        TOPIC => Ok(()),
        BROKER => Err(AdminError::InvalidConfig(
            crate::config::ConfigError::BadValue {
                key: "broker".into(),
                value: String::new(),
                reason: "Strata's broker configs are static: set them with --set or --config"
                    .into(),
            },
        )),
        other => Err(AdminError::InvalidRequest(format!(
            "Unsupported resource type {other}"
        ))),
    }
}

pub async fn alter(broker: &Arc<Broker>, req: AlterConfigsRequest) -> AlterConfigsResponse {
    let b = Arc::clone(broker);
    let responses = blocking(move || {
        req.resources
            .into_iter()
            .map(|r| {
                let result = refuse_other_resources(r.resource_type).and_then(|()| {
                    let configs: BTreeMap<String, String> = r
                        .configs
                        .iter()
                        .filter_map(|c| {
                            c.value
                                .as_ref()
                                .map(|v| (c.name.to_string(), v.to_string()))
                        })
                        .collect();
                    b.set_topic_configs(&r.resource_name, configs, req.validate_only)
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
                let result = refuse_other_resources(r.resource_type).and_then(|()| {
                    let topic = b.topic(&r.resource_name).ok_or(AdminError::UnknownTopic)?;
                    let mut configs = topic.configs.clone();
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
                                return Err(AdminError::InvalidConfig(
                                    crate::config::ConfigError::BadValue {
                                        key: name,
                                        value: String::new(),
                                        reason: format!(
                                            "operation {op} applies to list configs only"
                                        ),
                                    },
                                ))
                            }
                        }
                    }
                    b.set_topic_configs(&r.resource_name, configs, req.validate_only)
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
