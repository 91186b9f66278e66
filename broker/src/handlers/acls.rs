//! CreateAcls, DescribeAcls and DeleteAcls. Changing ACLs needs ALTER on
//! the cluster, reading them DESCRIBE, as in Kafka; without an authorizer
//! they answer SECURITY_DISABLED.

use std::sync::Arc;

use kafka_protocol::messages::create_acls_response::AclCreationResult;
use kafka_protocol::messages::delete_acls_response::{
    DeleteAclsFilterResult, DeleteAclsMatchingAcl,
};
use kafka_protocol::messages::describe_acls_response::{AclDescription, DescribeAclsResource};
use kafka_protocol::messages::*;
use kafka_protocol::ResponseError;
use tracing::{info, warn};

use super::{blocking, str_bytes};
use crate::broker::Broker;
use crate::security::acl::{
    AclBinding, AclFilter, Operation, PatternType, Permission, ResourceType,
};
use crate::security::Session;

const SECURITY_DISABLED: &str = "No Authorizer is configured.";

fn refused(broker: &Broker, session: &Session, op: Operation) -> Option<(i16, String)> {
    let security = &broker.security;
    if !security.authorizer.enabled() {
        return Some((
            ResponseError::SecurityDisabled.code(),
            SECURITY_DISABLED.into(),
        ));
    }
    if !security.access(session).cluster(op) {
        return Some((
            ResponseError::ClusterAuthorizationFailed.code(),
            "Cluster authorization failed.".into(),
        ));
    }
    None
}

fn filter(
    kind: i8,
    name: Option<&str>,
    pattern: i8,
    principal: Option<&str>,
    host: Option<&str>,
    op: i8,
    permission: i8,
) -> Result<AclFilter, String> {
    Ok(AclFilter {
        resource_type: ResourceType::from_code(kind).ok_or("Unknown resource type")?,
        resource_name: name.map(str::to_string),
        pattern_type: PatternType::from_code(pattern).ok_or("Unknown pattern type")?,
        principal: principal.map(str::to_string),
        host: host.map(str::to_string),
        operation: Operation::from_code(op).ok_or("Unknown operation")?,
        permission: Permission::from_code(permission).ok_or("Unknown permission type")?,
    })
}

pub async fn create(
    broker: &Arc<Broker>,
    req: CreateAclsRequest,
    session: &Session,
) -> CreateAclsResponse {
    if let Some((code, message)) = refused(broker, session, Operation::Alter) {
        return CreateAclsResponse::default().with_results(
            req.creations
                .iter()
                .map(|_| {
                    AclCreationResult::default()
                        .with_error_code(code)
                        .with_error_message(Some(str_bytes(message.clone())))
                })
                .collect(),
        );
    }
    let mut results = Vec::new();
    let mut valid = Vec::new();
    for c in req.creations {
        let binding = (|| {
            let b = AclBinding {
                resource_type: ResourceType::from_code(c.resource_type)
                    .ok_or("Unknown resource type")?,
                resource_name: c.resource_name.to_string(),
                pattern_type: PatternType::from_code(c.resource_pattern_type)
                    .ok_or("Unknown pattern type")?,
                principal: c.principal.to_string(),
                host: c.host.to_string(),
                operation: Operation::from_code(c.operation).ok_or("Unknown operation")?,
                permission: Permission::from_code(c.permission_type)
                    .ok_or("Unknown permission type")?,
            };
            b.validate().map(|()| b)
        })();
        match binding {
            Ok(b) => {
                valid.push(b);
                results.push(None);
            }
            Err(e) => results.push(Some(e.to_string())),
        }
    }
    let count = valid.len();
    let b = Arc::clone(broker);
    let stored = blocking(move || b.security.create_acls(valid)).await;
    if let Err(e) = &stored {
        warn!(error = %e, "cannot store ACLs");
    } else if count > 0 {
        info!(principal = %session.principal, count, "ACLs created");
        // The bucket's catalogue carries the ACLs.
        broker.bucket.mark_dirty();
    }
    CreateAclsResponse::default().with_results(
        results
            .into_iter()
            .map(|r| match (r, &stored) {
                (Some(e), _) => AclCreationResult::default()
                    .with_error_code(ResponseError::InvalidRequest.code())
                    .with_error_message(Some(str_bytes(e))),
                (None, Err(e)) => AclCreationResult::default()
                    .with_error_code(ResponseError::UnknownServerError.code())
                    .with_error_message(Some(str_bytes(e.to_string()))),
                (None, Ok(())) => AclCreationResult::default(),
            })
            .collect(),
    )
}

pub fn describe(
    broker: &Broker,
    req: DescribeAclsRequest,
    session: &Session,
) -> DescribeAclsResponse {
    if let Some((code, message)) = refused(broker, session, Operation::Describe) {
        return DescribeAclsResponse::default()
            .with_error_code(code)
            .with_error_message(Some(str_bytes(message)));
    }
    let f = match filter(
        req.resource_type_filter,
        req.resource_name_filter.as_deref(),
        req.pattern_type_filter,
        req.principal_filter.as_deref(),
        req.host_filter.as_deref(),
        req.operation,
        req.permission_type,
    ) {
        Ok(f) => f,
        Err(e) => {
            return DescribeAclsResponse::default()
                .with_error_code(ResponseError::InvalidRequest.code())
                .with_error_message(Some(str_bytes(e)))
        }
    };
    let acls = broker.security.authorizer.acls();
    let mut resources: Vec<DescribeAclsResource> = Vec::new();
    let mut matching: Vec<&AclBinding> = acls.iter().filter(|b| f.matches(b)).collect();
    matching.sort();
    for b in matching {
        let description = AclDescription::default()
            .with_principal(str_bytes(b.principal.clone()))
            .with_host(str_bytes(b.host.clone()))
            .with_operation(b.operation.code())
            .with_permission_type(b.permission.code());
        match resources.last_mut() {
            Some(r)
                if r.resource_type == b.resource_type.code()
                    && *r.resource_name == *b.resource_name
                    && r.pattern_type == b.pattern_type.code() =>
            {
                r.acls.push(description)
            }
            _ => resources.push(
                DescribeAclsResource::default()
                    .with_resource_type(b.resource_type.code())
                    .with_resource_name(str_bytes(b.resource_name.clone()))
                    .with_pattern_type(b.pattern_type.code())
                    .with_acls(vec![description]),
            ),
        }
    }
    DescribeAclsResponse::default().with_resources(resources)
}

pub async fn delete(
    broker: &Arc<Broker>,
    req: DeleteAclsRequest,
    session: &Session,
) -> DeleteAclsResponse {
    if let Some((code, message)) = refused(broker, session, Operation::Alter) {
        return DeleteAclsResponse::default().with_filter_results(
            req.filters
                .iter()
                .map(|_| {
                    DeleteAclsFilterResult::default()
                        .with_error_code(code)
                        .with_error_message(Some(str_bytes(message.clone())))
                })
                .collect(),
        );
    }
    let parsed: Vec<Result<AclFilter, String>> = req
        .filters
        .iter()
        .map(|f| {
            filter(
                f.resource_type_filter,
                f.resource_name_filter.as_deref(),
                f.pattern_type_filter,
                f.principal_filter.as_deref(),
                f.host_filter.as_deref(),
                f.operation,
                f.permission_type,
            )
        })
        .collect();
    let valid: Vec<AclFilter> = parsed
        .iter()
        .filter_map(|f| f.as_ref().ok().cloned())
        .collect();
    let b = Arc::clone(broker);
    let deleted = blocking(move || b.security.delete_acls(&valid)).await;
    let mut deleted = match deleted {
        Ok(d) => d.into_iter(),
        Err(e) => {
            warn!(error = %e, "cannot store ACLs");
            return DeleteAclsResponse::default().with_filter_results(
                parsed
                    .iter()
                    .map(|_| {
                        DeleteAclsFilterResult::default()
                            .with_error_code(ResponseError::UnknownServerError.code())
                            .with_error_message(Some(str_bytes(e.to_string())))
                    })
                    .collect(),
            );
        }
    };
    let results = parsed
        .into_iter()
        .map(|f| match f {
            Err(e) => DeleteAclsFilterResult::default()
                .with_error_code(ResponseError::InvalidRequest.code())
                .with_error_message(Some(str_bytes(e))),
            Ok(_) => DeleteAclsFilterResult::default().with_matching_acls(
                deleted
                    .next()
                    .unwrap_or_default()
                    .into_iter()
                    .map(|b| {
                        DeleteAclsMatchingAcl::default()
                            .with_resource_type(b.resource_type.code())
                            .with_resource_name(str_bytes(b.resource_name))
                            .with_pattern_type(b.pattern_type.code())
                            .with_principal(str_bytes(b.principal))
                            .with_host(str_bytes(b.host))
                            .with_operation(b.operation.code())
                            .with_permission_type(b.permission.code())
                    })
                    .collect(),
            ),
        })
        .collect();
    info!(principal = %session.principal, "ACLs deleted");
    broker.bucket.mark_dirty();
    DeleteAclsResponse::default().with_filter_results(results)
}
