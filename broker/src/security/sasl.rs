//! SASL on a connection: the mechanisms (PLAIN and SCRAM) and the state of
//! a connection's authentication, including KIP-368 re-authentication.
//!
//! Pure: the connection task feeds it requests and the time, and it says
//! what to answer and whether the connection may go on. One per
//! connection, used by that connection's task only.

use std::time::{Duration, Instant};

use super::credentials::Credentials;
use super::scram::{Mechanism, ScramError, ServerExchange, Step, MIN_ITERATIONS};

/// One mechanism's exchange on the server side.
pub enum SaslServer {
    Plain,
    Scram(Box<ServerExchange>),
}

/// The outcome of one SASL token.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Send these bytes; more tokens follow.
    Challenge(Vec<u8>),
    /// Authenticated as `User:<user>`; send these bytes.
    Success { user: String, response: Vec<u8> },
}

/// The mechanisms [`SaslServer::start`] knows; Kafka's others (GSSAPI,
/// OAUTHBEARER) may be named in `sasl.enabled.mechanisms` but are not offered.
pub const OFFERED_MECHANISMS: &[&str] = &["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"];

impl SaslServer {
    pub fn start(mechanism: &str) -> Option<Self> {
        match mechanism {
            "PLAIN" => Some(SaslServer::Plain),
            m => {
                Mechanism::from_name(m).map(|m| SaslServer::Scram(Box::new(ServerExchange::new(m))))
            }
        }
    }

    /// Takes one token from the client. The error never holds a secret.
    pub fn step(&mut self, token: &[u8], credentials: &Credentials) -> Result<Outcome, ScramError> {
        match self {
            SaslServer::Plain => {
                // [authzid] NUL authcid NUL passwd (RFC 4616).
                let mut parts = token.split(|&b| b == 0);
                let (Some(authzid), Some(user), Some(password), None) =
                    (parts.next(), parts.next(), parts.next(), parts.next())
                else {
                    return Err(ScramError::Malformed(
                        "PLAIN takes authzid, user and password",
                    ));
                };
                let user = std::str::from_utf8(user)
                    .map_err(|_| ScramError::Malformed("user name is not UTF-8"))?;
                if user.is_empty() || (!authzid.is_empty() && authzid != user.as_bytes()) {
                    return Err(ScramError::InvalidCredentials);
                }
                // The password is checked against the user's SCRAM
                // credential; an unknown user costs the same work.
                let found = Mechanism::ALL
                    .iter()
                    .rev()
                    .find_map(|m| credentials.get(user, *m).map(|c| (*m, c)));
                let ok = match found {
                    Some((m, c)) => c.verify_password(m, password),
                    None => {
                        let salt = credentials.fake_salt(user);
                        let _ = Mechanism::Sha512.salted_password(
                            password,
                            &salt,
                            MIN_ITERATIONS as u32,
                        );
                        false
                    }
                };
                if ok {
                    Ok(Outcome::Success {
                        user: user.to_string(),
                        response: Vec::new(),
                    })
                } else {
                    Err(ScramError::InvalidCredentials)
                }
            }
            SaslServer::Scram(exchange) => {
                let mechanism = exchange.mechanism();
                match exchange.step(
                    token,
                    |user| credentials.get(user, mechanism),
                    |user| credentials.fake_salt(user),
                )? {
                    Step::Continue(bytes) => Ok(Outcome::Challenge(bytes)),
                    Step::Done { user, response } => Ok(Outcome::Success { user, response }),
                }
            }
        }
    }
}

/// Where a connection stands with authentication.
pub enum Stage {
    /// Not a SASL listener: the transport named the principal.
    Transport,
    /// Waiting for SaslHandshake.
    Handshake,
    /// Handshake done; SaslAuthenticate tokens go to this exchange.
    Exchange(SaslServer),
    /// Authenticated; past `expires`, only re-authentication is accepted.
    Authenticated { expires: Option<Instant> },
}

/// What the connection task should do with a request.
#[derive(Debug, PartialEq, Eq)]
pub enum Admission {
    Serve,
    /// Close the connection: the request is not allowed at this stage.
    Close(&'static str),
}

/// A connection's authentication.
pub struct Authentication {
    pub stage: Stage,
    /// The principal once authenticated (or named by the transport).
    pub principal: String,
    /// Set during a re-authentication: the principal must not change.
    reauthenticating: bool,
    /// The mechanism of the last handshake, for messages.
    pub mechanism: String,
}

impl Authentication {
    pub fn new(sasl: bool, transport_principal: String) -> Self {
        Authentication {
            stage: if sasl {
                Stage::Handshake
            } else {
                Stage::Transport
            },
            principal: transport_principal,
            reauthenticating: false,
            mechanism: String::new(),
        }
    }

    /// Whether a request of `api_key` (Kafka's code) may be served now.
    pub fn admit(&self, api_key: i16, now: Instant) -> Admission {
        const API_VERSIONS: i16 = 18;
        const SASL_HANDSHAKE: i16 = 17;
        const SASL_AUTHENTICATE: i16 = 36;
        match &self.stage {
            Stage::Transport => Admission::Serve,
            Stage::Handshake if api_key == API_VERSIONS || api_key == SASL_HANDSHAKE => {
                Admission::Serve
            }
            Stage::Handshake => Admission::Close("a request before SASL authentication"),
            Stage::Exchange(_) if api_key == SASL_AUTHENTICATE => Admission::Serve,
            Stage::Exchange(_) => Admission::Close("a request during SASL authentication"),
            Stage::Authenticated { expires } => match expires {
                Some(t) if now >= *t && api_key != SASL_HANDSHAKE => {
                    Admission::Close("the SASL session expired (connections.max.reauth.ms)")
                }
                _ => Admission::Serve,
            },
        }
    }

    /// SaslHandshake: starts an exchange with `mechanism` if it is enabled.
    /// Kafka's error code on failure.
    pub fn handshake(&mut self, mechanism: &str, enabled: &[String]) -> Result<(), i16> {
        match self.stage {
            Stage::Handshake => {}
            Stage::Authenticated { .. } => self.reauthenticating = true,
            // ILLEGAL_SASL_STATE.
            _ => return Err(34),
        }
        if !enabled.iter().any(|m| m == mechanism) {
            // UNSUPPORTED_SASL_MECHANISM.
            self.stage = Stage::Handshake;
            return Err(33);
        }
        match SaslServer::start(mechanism) {
            Some(s) => {
                self.mechanism = mechanism.to_string();
                self.stage = Stage::Exchange(s);
                Ok(())
            }
            None => Err(33),
        }
    }

    /// SaslAuthenticate: one token. On success the session lasts
    /// `lifetime` (none: for ever), counted from `now`.
    pub fn authenticate(
        &mut self,
        token: &[u8],
        credentials: &Credentials,
        lifetime: Option<Duration>,
        now: Instant,
    ) -> Result<Outcome, AuthFailure> {
        let Stage::Exchange(server) = &mut self.stage else {
            return Err(AuthFailure::IllegalState);
        };
        match server.step(token, credentials) {
            Ok(Outcome::Success { user, response }) => {
                let principal = format!("User:{user}");
                if self.reauthenticating && principal != self.principal {
                    return Err(AuthFailure::PrincipalChanged);
                }
                self.principal = principal;
                self.reauthenticating = false;
                self.stage = Stage::Authenticated {
                    expires: lifetime.map(|l| now + l),
                };
                Ok(Outcome::Success { user, response })
            }
            Ok(c) => Ok(c),
            Err(e) => Err(AuthFailure::Failed(e)),
        }
    }
}

/// Why SaslAuthenticate failed.
#[derive(Debug, PartialEq, Eq)]
pub enum AuthFailure {
    IllegalState,
    PrincipalChanged,
    Failed(ScramError),
}

#[cfg(test)]
mod tests {
    use super::super::scram::{ClientExchange, Credential};
    use super::*;
    use std::collections::BTreeMap;

    fn creds() -> Credentials {
        let mut users = BTreeMap::new();
        let mut m = BTreeMap::new();
        m.insert(
            Mechanism::Sha512,
            Credential::new(Mechanism::Sha512, b"pw", 4096),
        );
        users.insert("alice".to_string(), m);
        Credentials::new(users)
    }

    #[test]
    fn only_the_handshake_comes_before_authentication() {
        let a = Authentication::new(true, "User:ANONYMOUS".into());
        let now = Instant::now();
        assert_eq!(a.admit(18, now), Admission::Serve);
        assert_eq!(a.admit(17, now), Admission::Serve);
        assert!(matches!(a.admit(3, now), Admission::Close(_)));
    }

    #[test]
    fn scram_then_expiry_then_reauthentication() {
        let c = creds();
        let enabled = vec!["SCRAM-SHA-512".to_string()];
        let mut a = Authentication::new(true, "User:ANONYMOUS".into());
        let t0 = Instant::now();
        assert_eq!(a.handshake("PLAIN", &enabled), Err(33));
        a.handshake("SCRAM-SHA-512", &enabled).unwrap();
        let mut client = ClientExchange::new(Mechanism::Sha512, "alice", "pw");
        let life = Some(Duration::from_secs(10));
        let Outcome::Challenge(first) = a.authenticate(&client.first(), &c, life, t0).unwrap()
        else {
            panic!()
        };
        let last = client.last(&first).unwrap();
        let Outcome::Success { response, .. } = a.authenticate(&last, &c, life, t0).unwrap() else {
            panic!()
        };
        client.verify(&response).unwrap();
        assert_eq!(a.principal, "User:alice");
        assert_eq!(a.admit(3, t0), Admission::Serve);
        let later = t0 + Duration::from_secs(11);
        assert!(matches!(a.admit(3, later), Admission::Close(_)));
        assert_eq!(a.admit(17, later), Admission::Serve);
        a.handshake("SCRAM-SHA-512", &enabled).unwrap();
        let mut again = ClientExchange::new(Mechanism::Sha512, "alice", "pw");
        let Outcome::Challenge(first) = a.authenticate(&again.first(), &c, life, later).unwrap()
        else {
            panic!()
        };
        let last = again.last(&first).unwrap();
        a.authenticate(&last, &c, life, later).unwrap();
        assert_eq!(a.admit(3, later), Admission::Serve);
    }

    #[test]
    fn plain_checks_the_scram_credential() {
        let c = creds();
        let mut s = SaslServer::start("PLAIN").unwrap();
        assert!(s.step(b"\0alice\0pw", &c).is_ok());
        let mut s = SaslServer::start("PLAIN").unwrap();
        assert!(s.step(b"\0alice\0nope", &c).is_err());
        let mut s = SaslServer::start("PLAIN").unwrap();
        assert!(s.step(b"\0bob\0pw", &c).is_err());
        let mut s = SaslServer::start("PLAIN").unwrap();
        assert!(s.step(b"bob\0alice\0pw", &c).is_err());
    }
}
