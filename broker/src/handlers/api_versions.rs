use kafka_protocol::messages::ApiVersionsResponse;

/// ApiVersions: the supported ranges, no features.
pub fn handle() -> ApiVersionsResponse {
    strata_protocol::api_versions_body(0).with_finalized_features_epoch(-1)
}
