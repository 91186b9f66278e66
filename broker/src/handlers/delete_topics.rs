use std::sync::Arc;

use kafka_protocol::messages::delete_topics_response::DeletableTopicResult;
use kafka_protocol::messages::{DeleteTopicsRequest, DeleteTopicsResponse, TopicName};
use kafka_protocol::ResponseError;
use uuid::Uuid;

use super::{blocking, str_bytes};
use crate::broker::Broker;

/// DeleteTopics: by name (v1-v5) or by name or id (v6).
pub async fn handle(
    broker: &Arc<Broker>,
    req: DeleteTopicsRequest,
    version: i16,
) -> DeleteTopicsResponse {
    let b = Arc::clone(broker);
    let results = blocking(move || {
        let wanted: Vec<(Option<TopicName>, Uuid)> = if version >= 6 {
            req.topics
                .into_iter()
                .map(|t| (t.name, t.topic_id))
                .collect()
        } else {
            req.topic_names
                .into_iter()
                .map(|n| (Some(n), Uuid::nil()))
                .collect()
        };
        wanted
            .into_iter()
            .map(|(name, id)| {
                let topic = match &name {
                    Some(n) => b.topic(&n.0),
                    None => b.topic_by_id(id),
                };
                let result = DeletableTopicResult::default()
                    .with_name(name.clone())
                    .with_topic_id(id);
                let Some(topic) = topic else {
                    let code = if name.is_some() {
                        ResponseError::UnknownTopicOrPartition.code()
                    } else {
                        ResponseError::UnknownTopicId.code()
                    };
                    return result.with_error_code(code);
                };
                let result = result
                    .with_name(Some(TopicName(str_bytes(topic.name.clone()))))
                    .with_topic_id(topic.id);
                match b.delete_topic(&topic.name) {
                    Ok(_) => result,
                    Err(e) => result
                        .with_error_code(e.code())
                        .with_error_message(Some(str_bytes(e.to_string()))),
                }
            })
            .collect()
    })
    .await;
    DeleteTopicsResponse::default().with_responses(results)
}
