//! SCRAM (RFC 5802, RFC 7677) as Kafka uses it: the stored credential, the
//! server's side of one exchange, and the client's side for the `strata`
//! command-line tools.
//!
//! Written with the RustCrypto primitives (`hmac`, `sha2`, `pbkdf2`,
//! `subtle`) rather than a SCRAM crate: the maintained ones either pin an
//! old `ring` or keep the password itself, and Kafka's AlterUserScramCredentials
//! hands the broker a salted password that must become a stored key and a
//! server key here.
//!
//! The exchange types are pure data-in, data-out state machines; nothing
//! here does I/O or keeps time.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256, Sha512};
use subtle::ConstantTimeEq;

/// Kafka's bounds on a SCRAM credential's iteration count.
pub const MIN_ITERATIONS: i32 = 4096;
pub const MAX_ITERATIONS: i32 = 16384;

/// A SCRAM mechanism, with Kafka's wire code (`ScramMechanism`).
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Mechanism {
    #[serde(rename = "SCRAM-SHA-256")]
    Sha256,
    #[serde(rename = "SCRAM-SHA-512")]
    Sha512,
}

impl Mechanism {
    pub const ALL: [Mechanism; 2] = [Mechanism::Sha256, Mechanism::Sha512];

    pub fn name(self) -> &'static str {
        match self {
            Mechanism::Sha256 => "SCRAM-SHA-256",
            Mechanism::Sha512 => "SCRAM-SHA-512",
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|m| m.name() == name)
    }

    /// Kafka's `ScramMechanism` code: 1 for SHA-256, 2 for SHA-512.
    pub fn code(self) -> i8 {
        match self {
            Mechanism::Sha256 => 1,
            Mechanism::Sha512 => 2,
        }
    }

    pub fn from_code(code: i8) -> Option<Self> {
        Self::ALL.into_iter().find(|m| m.code() == code)
    }

    fn hmac(self, key: &[u8], parts: &[&[u8]]) -> Vec<u8> {
        fn run<M: Mac + hmac::digest::KeyInit>(key: &[u8], parts: &[&[u8]]) -> Vec<u8> {
            let mut mac = <M as hmac::digest::KeyInit>::new_from_slice(key)
                .expect("HMAC takes keys of any length");
            for p in parts {
                mac.update(p);
            }
            mac.finalize().into_bytes().to_vec()
        }
        match self {
            Mechanism::Sha256 => run::<Hmac<Sha256>>(key, parts),
            Mechanism::Sha512 => run::<Hmac<Sha512>>(key, parts),
        }
    }

    fn hash(self, data: &[u8]) -> Vec<u8> {
        match self {
            Mechanism::Sha256 => Sha256::digest(data).to_vec(),
            Mechanism::Sha512 => Sha512::digest(data).to_vec(),
        }
    }

    /// RFC 5802's `Hi(password, salt, i)`: PBKDF2 with this HMAC.
    pub fn salted_password(self, password: &[u8], salt: &[u8], iterations: u32) -> Vec<u8> {
        match self {
            Mechanism::Sha256 => {
                let mut out = vec![0u8; 32];
                pbkdf2::pbkdf2_hmac::<Sha256>(password, salt, iterations, &mut out);
                out
            }
            Mechanism::Sha512 => {
                let mut out = vec![0u8; 64];
                pbkdf2::pbkdf2_hmac::<Sha512>(password, salt, iterations, &mut out);
                out
            }
        }
    }
}

/// What the broker keeps of a SCRAM user: never the password, only the
/// salt, the iteration count and the two keys derived from the salted
/// password (RFC 5802's StoredKey and ServerKey), as Kafka keeps them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Credential {
    #[serde(with = "b64")]
    pub salt: Vec<u8>,
    #[serde(with = "b64")]
    pub stored_key: Vec<u8>,
    #[serde(with = "b64")]
    pub server_key: Vec<u8>,
    pub iterations: i32,
}

mod b64 {
    use super::*;
    pub fn serialize<S: serde::Serializer>(v: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&B64.encode(v))
    }
    pub fn deserialize<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let s = String::deserialize(d)?;
        B64.decode(s).map_err(serde::de::Error::custom)
    }
}

impl Credential {
    /// The credential of a salted password, as AlterUserScramCredentials
    /// sends it.
    pub fn from_salted(mechanism: Mechanism, salt: &[u8], salted: &[u8], iterations: i32) -> Self {
        let client_key = mechanism.hmac(salted, &[b"Client Key"]);
        Credential {
            salt: salt.to_vec(),
            stored_key: mechanism.hash(&client_key),
            server_key: mechanism.hmac(salted, &[b"Server Key"]),
            iterations,
        }
    }

    /// A new credential for `password` with a fresh random salt.
    pub fn new(mechanism: Mechanism, password: &[u8], iterations: i32) -> Self {
        let salt = random_bytes(32);
        let salted = mechanism.salted_password(password, &salt, iterations as u32);
        Self::from_salted(mechanism, &salt, &salted, iterations)
    }

    /// Whether `password` is this credential's, compared in constant time
    /// (SASL PLAIN is checked against the SCRAM credential: the broker keeps
    /// no other form of the password).
    pub fn verify_password(&self, mechanism: Mechanism, password: &[u8]) -> bool {
        let salted = mechanism.salted_password(password, &self.salt, self.iterations as u32);
        let client_key = mechanism.hmac(&salted, &[b"Client Key"]);
        let stored = mechanism.hash(&client_key);
        stored.ct_eq(&self.stored_key).into()
    }
}

/// Random bytes from the operating system.
pub fn random_bytes(n: usize) -> Vec<u8> {
    let mut out = vec![0u8; n];
    getrandom::fill(&mut out).expect("the operating system's random source works");
    out
}

fn nonce() -> String {
    B64.encode(random_bytes(24))
        .replace('+', "-")
        .replace('/', "_")
}

/// Why an exchange failed. The text never holds a secret; the client is
/// told only that authentication failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScramError {
    #[error("malformed SCRAM message: {0}")]
    Malformed(&'static str),
    #[error("unknown user or wrong password")]
    InvalidCredentials,
    #[error("SCRAM extensions (delegation tokens) are not supported")]
    Extensions,
}

/// One attribute `k=value` of a SCRAM message.
fn attr(part: Option<&str>, key: char) -> Result<&str, ScramError> {
    let part = part.ok_or(ScramError::Malformed("missing attribute"))?;
    let mut chars = part.chars();
    if chars.next() != Some(key) || chars.next() != Some('=') {
        return Err(ScramError::Malformed("unexpected attribute"));
    }
    Ok(&part[2..])
}

/// The user name of a SCRAM message, with RFC 5802's `=2C` and `=3D`
/// escapes undone.
fn unescape(name: &str) -> String {
    name.replace("=2C", ",").replace("=3D", "=")
}

fn escape(name: &str) -> String {
    name.replace('=', "=3D").replace(',', "=2C")
}

/// The server's side of one SCRAM exchange: the client's first message
/// gives the user name, the server answers with the salt, the client's
/// final message proves the password.
pub struct ServerExchange {
    mechanism: Mechanism,
    state: ServerState,
}

enum ServerState {
    Start,
    SentFirst {
        user: String,
        /// `None` for an unknown user: the exchange goes on with a made-up
        /// salt and fails at the proof, so that a client cannot tell an
        /// unknown user from a wrong password.
        credential: Option<Credential>,
        nonce: String,
        gs2_header: String,
        client_first_bare: String,
        server_first: String,
    },
    Done,
}

/// What a step of the exchange produced.
#[derive(Debug, PartialEq, Eq)]
pub enum Step {
    /// Send these bytes and wait for the client's next message.
    Continue(Vec<u8>),
    /// Authenticated as this user; send these bytes as the last message.
    Done { user: String, response: Vec<u8> },
}

impl ServerExchange {
    pub fn mechanism(&self) -> Mechanism {
        self.mechanism
    }

    pub fn new(mechanism: Mechanism) -> Self {
        ServerExchange {
            mechanism,
            state: ServerState::Start,
        }
    }

    /// Takes the client's next message. `lookup` finds a user's credential;
    /// `fake_salt` gives a stable made-up salt for an unknown user.
    pub fn step(
        &mut self,
        message: &[u8],
        lookup: impl FnOnce(&str) -> Option<Credential>,
        fake_salt: impl FnOnce(&str) -> Vec<u8>,
    ) -> Result<Step, ScramError> {
        let text = std::str::from_utf8(message).map_err(|_| ScramError::Malformed("not UTF-8"))?;
        match std::mem::replace(&mut self.state, ServerState::Done) {
            ServerState::Start => {
                // gs2-header: "n,," or "y,," (no channel binding), an
                // optional authzid "a=...".
                let mut parts = text.splitn(3, ',');
                let cb = parts.next().ok_or(ScramError::Malformed("empty"))?;
                if cb != "n" && cb != "y" {
                    return Err(ScramError::Malformed("channel binding is not supported"));
                }
                let authzid = parts.next().ok_or(ScramError::Malformed("no gs2 header"))?;
                let bare = parts.next().ok_or(ScramError::Malformed("no user"))?;
                let gs2_header = format!("{cb},{authzid},");
                let mut fields = bare.split(',');
                let user = unescape(attr(fields.next(), 'n')?);
                let client_nonce = attr(fields.next(), 'r')?;
                if fields.any(|f| f.starts_with("tokenauth")) {
                    return Err(ScramError::Extensions);
                }
                if user.is_empty() || client_nonce.is_empty() {
                    return Err(ScramError::Malformed("empty user or nonce"));
                }
                if !authzid.is_empty() && unescape(attr(Some(authzid), 'a')?) != user {
                    return Err(ScramError::InvalidCredentials);
                }
                let credential = lookup(&user);
                let (salt, iterations) = match &credential {
                    Some(c) => (c.salt.clone(), c.iterations),
                    None => (fake_salt(&user), MIN_ITERATIONS),
                };
                let nonce = format!("{client_nonce}{}", nonce());
                let server_first = format!("r={nonce},s={},i={iterations}", B64.encode(&salt));
                let out = server_first.clone().into_bytes();
                self.state = ServerState::SentFirst {
                    user,
                    credential,
                    nonce,
                    gs2_header,
                    client_first_bare: bare.to_string(),
                    server_first,
                };
                Ok(Step::Continue(out))
            }
            ServerState::SentFirst {
                user,
                credential,
                nonce,
                gs2_header,
                client_first_bare,
                server_first,
            } => {
                let (without_proof, proof) = text
                    .rsplit_once(",p=")
                    .ok_or(ScramError::Malformed("no proof"))?;
                let mut fields = without_proof.split(',');
                let binding = attr(fields.next(), 'c')?;
                if B64.decode(binding).ok().as_deref() != Some(gs2_header.as_bytes()) {
                    return Err(ScramError::Malformed("channel binding differs"));
                }
                // Kafka accepts a final nonce that ends with the server's
                // (older librdkafka, kcat's 2.0 among them, sends the
                // client's part twice), and so does Strata; the proof
                // covers the nonce as sent either way.
                if !attr(fields.next(), 'r')?.ends_with(&nonce) {
                    return Err(ScramError::Malformed("nonce differs"));
                }
                let proof = B64
                    .decode(proof)
                    .map_err(|_| ScramError::Malformed("proof is not base64"))?;
                let Some(credential) = credential else {
                    return Err(ScramError::InvalidCredentials);
                };
                let auth_message = format!("{client_first_bare},{server_first},{without_proof}");
                let m = self.mechanism;
                let signature = m.hmac(&credential.stored_key, &[auth_message.as_bytes()]);
                if proof.len() != signature.len() {
                    return Err(ScramError::InvalidCredentials);
                }
                let client_key: Vec<u8> =
                    proof.iter().zip(&signature).map(|(a, b)| a ^ b).collect();
                let ok: bool = m.hash(&client_key).ct_eq(&credential.stored_key).into();
                if !ok {
                    return Err(ScramError::InvalidCredentials);
                }
                let server_signature = m.hmac(&credential.server_key, &[auth_message.as_bytes()]);
                Ok(Step::Done {
                    user,
                    response: format!("v={}", B64.encode(server_signature)).into_bytes(),
                })
            }
            ServerState::Done => Err(ScramError::Malformed("the exchange is over")),
        }
    }
}

/// The client's side of one SCRAM exchange, for the `strata` tools.
pub struct ClientExchange {
    mechanism: Mechanism,
    user: String,
    password: String,
    client_nonce: String,
    server_signature: Option<Vec<u8>>,
}

impl ClientExchange {
    pub fn new(mechanism: Mechanism, user: &str, password: &str) -> Self {
        ClientExchange {
            mechanism,
            user: user.to_string(),
            password: password.to_string(),
            client_nonce: nonce(),
            server_signature: None,
        }
    }

    fn first_bare(&self) -> String {
        format!("n={},r={}", escape(&self.user), self.client_nonce)
    }

    pub fn first(&self) -> Vec<u8> {
        format!("n,,{}", self.first_bare()).into_bytes()
    }

    /// The final message, from the server's first.
    pub fn last(&mut self, server_first: &[u8]) -> Result<Vec<u8>, ScramError> {
        let text =
            std::str::from_utf8(server_first).map_err(|_| ScramError::Malformed("not UTF-8"))?;
        let mut fields = text.split(',');
        let nonce = attr(fields.next(), 'r')?;
        let salt = B64
            .decode(attr(fields.next(), 's')?)
            .map_err(|_| ScramError::Malformed("salt is not base64"))?;
        let iterations: u32 = attr(fields.next(), 'i')?
            .parse()
            .map_err(|_| ScramError::Malformed("iterations"))?;
        if !nonce.starts_with(&self.client_nonce) {
            return Err(ScramError::Malformed("nonce differs"));
        }
        let m = self.mechanism;
        let salted = m.salted_password(self.password.as_bytes(), &salt, iterations);
        let client_key = m.hmac(&salted, &[b"Client Key"]);
        let stored_key = m.hash(&client_key);
        let without_proof = format!("c=biws,r={nonce}");
        let auth_message = format!("{},{text},{without_proof}", self.first_bare());
        let signature = m.hmac(&stored_key, &[auth_message.as_bytes()]);
        let proof: Vec<u8> = client_key
            .iter()
            .zip(&signature)
            .map(|(a, b)| a ^ b)
            .collect();
        let server_key = m.hmac(&salted, &[b"Server Key"]);
        self.server_signature = Some(m.hmac(&server_key, &[auth_message.as_bytes()]));
        Ok(format!("{without_proof},p={}", B64.encode(proof)).into_bytes())
    }

    /// Checks the server's final message, which proves the server knew the
    /// credential too.
    pub fn verify(&self, server_final: &[u8]) -> Result<(), ScramError> {
        let text =
            std::str::from_utf8(server_final).map_err(|_| ScramError::Malformed("not UTF-8"))?;
        let v = B64
            .decode(attr(Some(text), 'v')?)
            .map_err(|_| ScramError::Malformed("signature is not base64"))?;
        match &self.server_signature {
            Some(s) if bool::from(s.ct_eq(&v)) => Ok(()),
            _ => Err(ScramError::InvalidCredentials),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exchange(
        m: Mechanism,
        stored: Option<Credential>,
        password: &str,
    ) -> Result<(String, ClientExchange, Vec<u8>), ScramError> {
        let mut client = ClientExchange::new(m, "al,i=ce", password);
        let mut server = ServerExchange::new(m);
        let Step::Continue(first) =
            server.step(&client.first(), |_| stored.clone(), |_| vec![7; 16])?
        else {
            panic!("first step continues")
        };
        let last = client.last(&first)?;
        match server.step(&last, |_| None, |_| vec![])? {
            Step::Done { user, response } => Ok((user, client, response)),
            Step::Continue(_) => panic!("second step ends"),
        }
    }

    #[test]
    fn a_right_password_authenticates_both_ways() {
        for m in Mechanism::ALL {
            let c = Credential::new(m, b"s3cret", MIN_ITERATIONS);
            let (user, client, response) = exchange(m, Some(c), "s3cret").unwrap();
            assert_eq!(user, "al,i=ce");
            client.verify(&response).unwrap();
        }
    }

    #[test]
    fn a_wrong_password_and_an_unknown_user_fail_alike() {
        let m = Mechanism::Sha512;
        let c = Credential::new(m, b"s3cret", MIN_ITERATIONS);
        assert_eq!(
            exchange(m, Some(c), "wrong").err(),
            Some(ScramError::InvalidCredentials)
        );
        assert_eq!(
            exchange(m, None, "s3cret").err(),
            Some(ScramError::InvalidCredentials)
        );
    }

    #[test]
    fn a_salted_password_gives_the_same_credential() {
        let m = Mechanism::Sha256;
        let c = Credential::new(m, b"pw", 4096);
        let salted = m.salted_password(b"pw", &c.salt, 4096);
        assert_eq!(Credential::from_salted(m, &c.salt, &salted, 4096), c);
        assert!(c.verify_password(m, b"pw"));
        assert!(!c.verify_password(m, b"pW"));
    }

    #[test]
    fn rfc_7677_test_vector() {
        // RFC 7677, section 3: user "user", password "pencil".
        let m = Mechanism::Sha256;
        let salt = B64.decode("W22ZaJ0SNY7soEsUEjb6gQ==").unwrap();
        let salted = m.salted_password(b"pencil", &salt, 4096);
        let c = Credential::from_salted(m, &salt, &salted, 4096);
        let mut server = ServerExchange::new(m);
        let first = b"n,,n=user,r=rOprNGfwEbeRWgbNEkqO";
        let Step::Continue(sf) = server.step(first, |_| Some(c.clone()), |_| vec![]).unwrap()
        else {
            panic!()
        };
        assert!(std::str::from_utf8(&sf)
            .unwrap()
            .starts_with("r=rOprNGfwEbeRWgbNEkqO"));
        assert!(std::str::from_utf8(&sf)
            .unwrap()
            .ends_with(",s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096"));
    }

    #[test]
    fn malformed_messages_are_refused() {
        let mut server = ServerExchange::new(Mechanism::Sha256);
        assert!(server.step(b"p=x,,n=a,r=b", |_| None, |_| vec![]).is_err());
        let mut server = ServerExchange::new(Mechanism::Sha256);
        assert_eq!(
            server.step(b"n,,n=a,r=b,tokenauth=true", |_| None, |_| vec![]),
            Err(ScramError::Extensions)
        );
        let mut server = ServerExchange::new(Mechanism::Sha256);
        assert!(server.step(&[0xff, 0xfe], |_| None, |_| vec![]).is_err());
    }
}
