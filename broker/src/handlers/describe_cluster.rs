use kafka_protocol::messages::describe_cluster_response::DescribeClusterBroker;
use kafka_protocol::messages::{BrokerId, DescribeClusterRequest, DescribeClusterResponse};
use kafka_protocol::ResponseError;

use super::{authorized_operations, str_bytes};
use crate::broker::Broker;

/// Kafka's endpoint type for brokers; 2 asks for controllers.
const BROKERS: i8 = 1;

/// DescribeCluster: this node is the whole cluster and its controller. A
/// request for controller endpoints gets MISMATCHED_ENDPOINT_TYPE, as a
/// Kafka broker answers it. Authorized operations are reported when asked
/// for: every cluster operation, while there is no authorizer.
pub fn handle(broker: &Broker, req: DescribeClusterRequest) -> DescribeClusterResponse {
    let response = DescribeClusterResponse::default()
        .with_endpoint_type(BROKERS)
        .with_cluster_id(str_bytes(broker.cluster_id.clone()))
        .with_cluster_authorized_operations(authorized_operations::cluster(
            req.include_cluster_authorized_operations,
        ));
    if req.endpoint_type != BROKERS {
        return response
            .with_error_code(ResponseError::MismatchedEndpointType.code())
            .with_error_message(Some(str_bytes(format!(
                "endpoint type {} is not served here: this is a broker endpoint (1)",
                req.endpoint_type
            ))))
            .with_controller_id(BrokerId(-1));
    }
    response
        .with_controller_id(BrokerId(broker.node_id))
        .with_brokers(vec![DescribeClusterBroker::default()
            .with_broker_id(BrokerId(broker.node_id))
            .with_host(str_bytes(broker.advertised_host.clone()))
            .with_port(broker.advertised_port)])
}
