use std::sync::Arc;

use kafka_protocol::messages::{InitProducerIdRequest, InitProducerIdResponse, ProducerId};

use super::blocking;
use crate::broker::Broker;

/// InitProducerId: a new producer id for an idempotent producer, or the
/// next epoch of its own (v3+); with a transactional id, the transaction
/// coordinator's answer, which fences older instances of the same id.
pub async fn handle(
    broker: &Arc<Broker>,
    req: InitProducerIdRequest,
    version: i16,
) -> InitProducerIdResponse {
    let failed = |code: i16| {
        InitProducerIdResponse::default()
            .with_error_code(code)
            .with_producer_id(ProducerId(-1))
            .with_producer_epoch(-1)
    };
    let current =
        (version >= 3 && req.producer_id.0 >= 0).then_some((req.producer_id.0, req.producer_epoch));
    let b = Arc::clone(broker);
    let answer = match req.transactional_id {
        Some(id) => {
            let timeout = req.transaction_timeout_ms;
            blocking(move || {
                let mut new_id = || b.new_producer_id().unwrap_or(-1);
                b.txns
                    .init_producer_id(&id.0, timeout, current, &mut new_id, &*b)
                    .map_err(|e| e.code())
            })
            .await
        }
        None => blocking(move || b.init_producer_id(current))
            .await
            .map_err(|e| e.code()),
    };
    match answer {
        Ok((id, epoch)) if id >= 0 => InitProducerIdResponse::default()
            .with_producer_id(ProducerId(id))
            .with_producer_epoch(epoch),
        Ok(_) => failed(kafka_protocol::ResponseError::CoordinatorNotAvailable.code()),
        Err(code) => failed(code),
    }
}
