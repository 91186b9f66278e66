//! SaslHandshake and SaslAuthenticate: they change the connection's
//! authentication (`crate::security::sasl::Authentication`), which the
//! connection task owns and hands in.

use std::time::Instant;

use bytes::Bytes;
use kafka_protocol::messages::{
    SaslAuthenticateRequest, SaslAuthenticateResponse, SaslHandshakeRequest, SaslHandshakeResponse,
};
use tracing::{info, warn};

use super::str_bytes;
use crate::security::sasl::{AuthFailure, Authentication, Outcome, Stage};
use crate::security::Security;

const ILLEGAL_SASL_STATE: i16 = 34;
const SASL_AUTHENTICATION_FAILED: i16 = 58;

pub fn handshake(
    security: &Security,
    auth: &mut Authentication,
    req: SaslHandshakeRequest,
) -> SaslHandshakeResponse {
    let enabled: Vec<_> = security
        .mechanisms
        .iter()
        .map(|m| str_bytes(m.clone()))
        .collect();
    if matches!(auth.stage, Stage::Transport) {
        return SaslHandshakeResponse::default()
            .with_error_code(ILLEGAL_SASL_STATE)
            .with_mechanisms(enabled);
    }
    let code = match auth.handshake(&req.mechanism, &security.mechanisms) {
        Ok(()) => 0,
        Err(code) => {
            metrics::counter!("strata_sasl_authentication_failures_total", "reason" => "mechanism")
                .increment(1);
            warn!(mechanism = %req.mechanism, "SASL handshake with a mechanism that is not enabled");
            code
        }
    };
    SaslHandshakeResponse::default()
        .with_error_code(code)
        .with_mechanisms(enabled)
}

/// The answer to one token, and whether the connection must close after
/// it is sent (a failed authentication, as in Kafka).
pub fn authenticate(
    security: &Security,
    auth: &mut Authentication,
    token: &[u8],
    peer: &str,
) -> (Result<Vec<u8>, (i16, String)>, bool) {
    match auth.authenticate(
        token,
        &security.credentials,
        security.reauth,
        Instant::now(),
    ) {
        Ok(Outcome::Challenge(bytes)) => (Ok(bytes), false),
        Ok(Outcome::Success { user, response }) => {
            metrics::counter!("strata_sasl_authentications_total").increment(1);
            info!(%peer, principal = %format!("User:{user}"), "SASL authentication succeeded");
            (Ok(response), false)
        }
        Err(failure) => {
            let (reason, message) = match &failure {
                AuthFailure::IllegalState => (
                    "state",
                    "SaslAuthenticate before a successful SaslHandshake".to_string(),
                ),
                AuthFailure::PrincipalChanged => (
                    "principal",
                    "Cannot change principals during re-authentication".to_string(),
                ),
                AuthFailure::Failed(e) => ("credentials", e.to_string()),
            };
            metrics::counter!("strata_sasl_authentication_failures_total", "reason" => reason)
                .increment(1);
            // The user's name is logged when the exchange got that far;
            // never the password or a proof.
            warn!(%peer, reason, error = %message, "SASL authentication failed");
            let illegal = matches!(failure, AuthFailure::IllegalState);
            let code = if illegal {
                ILLEGAL_SASL_STATE
            } else {
                SASL_AUTHENTICATION_FAILED
            };
            let text = match failure {
                AuthFailure::Failed(_) => format!(
                    "Authentication failed during authentication due to invalid credentials with SASL mechanism {}",
                    auth.mechanism
                ),
                _ => message,
            };
            // A token out of place is answered and the connection goes
            // on, as in Kafka; a failed authentication closes it.
            (Err((code, text)), !illegal)
        }
    }
}

/// SaslAuthenticate's response, with the session lifetime (v1+) KIP-368
/// clients re-authenticate by.
pub fn authenticate_response(
    security: &Security,
    result: Result<Vec<u8>, (i16, String)>,
) -> SaslAuthenticateResponse {
    match result {
        Ok(bytes) => SaslAuthenticateResponse::default()
            .with_auth_bytes(Bytes::from(bytes))
            .with_session_lifetime_ms(security.reauth.map_or(0, |d| d.as_millis() as i64)),
        Err((code, message)) => SaslAuthenticateResponse::default()
            .with_error_code(code)
            .with_error_message(Some(str_bytes(message))),
    }
}

pub fn token(req: &SaslAuthenticateRequest) -> &[u8] {
    &req.auth_bytes
}
