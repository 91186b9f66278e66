//! DescribeUserScramCredentials and AlterUserScramCredentials: SCRAM users
//! managed online, as `kafka-configs --alter --add-config
//! 'SCRAM-SHA-256=[...]' --entity-type users` does. Altering needs ALTER on
//! the cluster, describing DESCRIBE (with an authorizer).

use std::sync::Arc;

use kafka_protocol::messages::alter_user_scram_credentials_response::AlterUserScramCredentialsResult;
use kafka_protocol::messages::describe_user_scram_credentials_response::{
    CredentialInfo, DescribeUserScramCredentialsResult,
};
use kafka_protocol::messages::*;
use kafka_protocol::ResponseError;
use tracing::{info, warn};

use super::{blocking, str_bytes};
use crate::broker::Broker;
use crate::security::acl::Operation;
use crate::security::{CredentialChange, Session, UserError};

fn user_error(e: &UserError) -> (i16, String) {
    match e {
        UserError::NotFound(m) => (ResponseError::ResourceNotFound.code(), m.clone()),
        UserError::Duplicate(m) => (ResponseError::DuplicateResource.code(), m.clone()),
        UserError::Unacceptable(m) => (ResponseError::UnacceptableCredential.code(), m.clone()),
        UserError::UnsupportedMechanism(m) => {
            (ResponseError::UnsupportedSaslMechanism.code(), m.clone())
        }
    }
}

pub fn describe(
    broker: &Broker,
    req: DescribeUserScramCredentialsRequest,
    session: &Session,
) -> DescribeUserScramCredentialsResponse {
    if !broker.security.access(session).cluster(Operation::Describe) {
        return DescribeUserScramCredentialsResponse::default()
            .with_error_code(ResponseError::ClusterAuthorizationFailed.code())
            .with_error_message(Some(str_bytes("Cluster authorization failed.")));
    }
    let names = req
        .users
        .filter(|u| !u.is_empty())
        .map(|u| u.into_iter().map(|n| n.name.to_string()).collect());
    let results = broker
        .security
        .describe_credentials(names)
        .into_iter()
        .map(|(user, r)| {
            let entry = DescribeUserScramCredentialsResult::default().with_user(str_bytes(user));
            match r {
                Ok(infos) => entry.with_credential_infos(
                    infos
                        .into_iter()
                        .map(|(m, iterations)| {
                            CredentialInfo::default()
                                .with_mechanism(m.code())
                                .with_iterations(iterations)
                        })
                        .collect(),
                ),
                Err(e) => {
                    let (code, message) = user_error(&e);
                    entry
                        .with_error_code(code)
                        .with_error_message(Some(str_bytes(message)))
                }
            }
        })
        .collect();
    DescribeUserScramCredentialsResponse::default().with_results(results)
}

pub async fn alter(
    broker: &Arc<Broker>,
    req: AlterUserScramCredentialsRequest,
    session: &Session,
) -> AlterUserScramCredentialsResponse {
    let mut users: Vec<String> = Vec::new();
    for n in req
        .deletions
        .iter()
        .map(|d| &d.name)
        .chain(req.upsertions.iter().map(|u| &u.name))
    {
        if !users.iter().any(|u| **u == **n) {
            users.push(n.to_string());
        }
    }
    if !broker.security.access(session).cluster(Operation::Alter) {
        return every_user_failed(users, ResponseError::ClusterAuthorizationFailed, None);
    }
    let changes: Vec<CredentialChange> = req
        .deletions
        .into_iter()
        .map(|d| CredentialChange::Delete {
            user: d.name.to_string(),
            mechanism: d.mechanism,
        })
        .chain(
            req.upsertions
                .into_iter()
                .map(|u| CredentialChange::Upsert {
                    user: u.name.to_string(),
                    mechanism: u.mechanism,
                    iterations: u.iterations,
                    salt: u.salt.to_vec(),
                    salted_password: u.salted_password.to_vec(),
                }),
        )
        .collect();
    let b = Arc::clone(broker);
    let results = match blocking(move || b.security.alter_credentials(changes)).await {
        Ok(r) => r,
        Err(e) => {
            warn!(error = %e, "cannot store SCRAM credentials");
            return every_user_failed(
                users,
                ResponseError::UnknownServerError,
                Some(e.to_string()),
            );
        }
    };
    AlterUserScramCredentialsResponse::default().with_results(
        results
            .into_iter()
            .map(|(user, error)| {
                let entry = AlterUserScramCredentialsResult::default().with_user(str_bytes(user.clone()));
                match error {
                    None => {
                        info!(principal = %session.principal, user = %user, "SCRAM credentials altered");
                        entry
                    }
                    Some(e) => {
                        let (code, message) = user_error(&e);
                        entry
                            .with_error_code(code)
                            .with_error_message(Some(str_bytes(message)))
                    }
                }
            })
            .collect(),
    )
}

/// The same error for every user the request named.
fn every_user_failed(
    users: Vec<String>,
    error: ResponseError,
    message: Option<String>,
) -> AlterUserScramCredentialsResponse {
    AlterUserScramCredentialsResponse::default().with_results(
        users
            .into_iter()
            .map(|u| {
                AlterUserScramCredentialsResult::default()
                    .with_user(str_bytes(u))
                    .with_error_code(error.code())
                    .with_error_message(message.clone().map(str_bytes))
            })
            .collect(),
    )
}
