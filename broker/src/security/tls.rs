//! TLS for the SSL and SASL_SSL listeners, with rustls, configured through
//! Kafka's PEM config names, and the principal of a client certificate.
//!
//! The key store is `ssl.keystore.location` (a PEM file holding the private
//! key and the certificate chain, as Kafka's PEM key store file does) or the
//! PEM text of `ssl.keystore.certificate.chain` and `ssl.keystore.key`; the
//! trust store is `ssl.truststore.location` or `ssl.truststore.certificates`.
//! Files are looked at again every `ssl.reload.interval.ms`, and a changed
//! key store or trust store is loaded for the connections that follow,
//! without a restart.
//!
//! Shared by every TLS listener: [`TlsState::acceptor`] may be called from
//! any task; [`TlsState::reload_if_changed`] is called by one periodic
//! task and does its file work on the blocking pool.

use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::SystemTime;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig};
use tokio_rustls::TlsAcceptor;
use tracing::{info, warn};

use crate::config::BrokerConfig;

/// What a TLS setting is wrong with, named so that an operator can fix it.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct TlsError(pub String);

/// `ssl.client.auth`.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum ClientAuth {
    None,
    Requested,
    Required,
}

/// The TLS settings as configured, before the files are read.
#[derive(Clone, Debug)]
struct TlsSources {
    keystore_location: Option<PathBuf>,
    keystore_chain: String,
    keystore_key: String,
    truststore_location: Option<PathBuf>,
    truststore_certificates: String,
    client_auth: ClientAuth,
    protocols: Vec<String>,
}

pub struct TlsState {
    sources: TlsSources,
    acceptor: RwLock<(TlsAcceptor, Vec<Option<SystemTime>>)>,
}

fn path(config: &BrokerConfig, key: &str) -> Option<PathBuf> {
    let v = config.value(key);
    (!v.is_empty()).then(|| PathBuf::from(v))
}

impl TlsSources {
    fn from_config(config: &BrokerConfig) -> Result<Self, TlsError> {
        for key in ["ssl.keystore.type", "ssl.truststore.type"] {
            let v = config.value(key);
            if !v.eq_ignore_ascii_case("PEM") {
                return Err(TlsError(format!(
                    "{key}={v}: Strata reads PEM key and trust stores only; convert the store with openssl or keytool and set {key}=PEM"
                )));
            }
        }
        if !config.value("ssl.key.password").is_empty() {
            return Err(TlsError(
                "ssl.key.password: encrypted private keys are not supported; give an unencrypted PKCS#8 key and protect the file instead".into(),
            ));
        }
        let client_auth = match config.value("ssl.client.auth").as_str() {
            "required" => ClientAuth::Required,
            "requested" => ClientAuth::Requested,
            _ => ClientAuth::None,
        };
        Ok(TlsSources {
            keystore_location: path(config, "ssl.keystore.location"),
            keystore_chain: config.value("ssl.keystore.certificate.chain"),
            keystore_key: config.value("ssl.keystore.key"),
            truststore_location: path(config, "ssl.truststore.location"),
            truststore_certificates: config.value("ssl.truststore.certificates"),
            client_auth,
            protocols: config
                .value("ssl.enabled.protocols")
                .split(',')
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
                .collect(),
        })
    }

    fn files(&self) -> Vec<&PathBuf> {
        self.keystore_location
            .iter()
            .chain(self.truststore_location.iter())
            .collect()
    }

    fn mtimes(&self) -> Vec<Option<SystemTime>> {
        self.files()
            .into_iter()
            .map(|p| std::fs::metadata(p).and_then(|m| m.modified()).ok())
            .collect()
    }

    /// Reads the stores and builds rustls' configuration. Blocking.
    fn build(&self) -> Result<ServerConfig, TlsError> {
        let read = |p: &PathBuf, what: &str| {
            std::fs::read(p).map_err(|e| TlsError(format!("{what} {}: {e}", p.display())))
        };
        let (chain_pem, key_pem) = match &self.keystore_location {
            Some(p) => {
                let bytes = read(p, "ssl.keystore.location")?;
                (bytes.clone(), bytes)
            }
            None if !self.keystore_chain.is_empty() && !self.keystore_key.is_empty() => (
                self.keystore_chain.clone().into_bytes(),
                self.keystore_key.clone().into_bytes(),
            ),
            None => {
                return Err(TlsError(
                    "a TLS listener needs ssl.keystore.location, or ssl.keystore.certificate.chain and ssl.keystore.key".into(),
                ))
            }
        };
        let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&chain_pem)
            .collect::<Result<_, _>>()
            .map_err(|e| TlsError(format!("the key store's certificate chain: {e}")))?;
        if chain.is_empty() {
            return Err(TlsError("the key store holds no certificate".into()));
        }
        if String::from_utf8_lossy(&key_pem).contains("ENCRYPTED PRIVATE KEY") {
            return Err(TlsError(
                "the key store's private key is encrypted; give an unencrypted PKCS#8 key".into(),
            ));
        }
        let key = PrivateKeyDer::from_pem_slice(&key_pem)
            .map_err(|e| TlsError(format!("the key store's private key: {e}")))?;
        let versions: Vec<&'static rustls::SupportedProtocolVersion> = self
            .protocols
            .iter()
            .filter_map(|p| match p.as_str() {
                "TLSv1.3" => Some(&rustls::version::TLS13),
                "TLSv1.2" => Some(&rustls::version::TLS12),
                _ => None,
            })
            .collect();
        if versions.is_empty() {
            return Err(TlsError(
                "ssl.enabled.protocols names neither TLSv1.2 nor TLSv1.3".into(),
            ));
        }
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let builder = ServerConfig::builder_with_provider(Arc::clone(&provider))
            .with_protocol_versions(&versions)
            .map_err(|e| TlsError(format!("ssl.enabled.protocols: {e}")))?;
        let builder = if self.client_auth == ClientAuth::None {
            builder.with_no_client_auth()
        } else {
            let trust_pem = match &self.truststore_location {
                Some(p) => read(p, "ssl.truststore.location")?,
                None => self.truststore_certificates.clone().into_bytes(),
            };
            let mut roots = RootCertStore::empty();
            for cert in CertificateDer::pem_slice_iter(&trust_pem) {
                let cert = cert.map_err(|e| TlsError(format!("the trust store: {e}")))?;
                roots
                    .add(cert)
                    .map_err(|e| TlsError(format!("the trust store: {e}")))?;
            }
            if roots.is_empty() {
                return Err(TlsError(
                    "ssl.client.auth needs a trust store (ssl.truststore.location or ssl.truststore.certificates) with the clients' CA".into(),
                ));
            }
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider);
            let verifier = if self.client_auth == ClientAuth::Requested {
                verifier.allow_unauthenticated()
            } else {
                verifier
            };
            builder.with_client_cert_verifier(
                verifier
                    .build()
                    .map_err(|e| TlsError(format!("the trust store: {e}")))?,
            )
        };
        builder
            .with_single_cert(chain, key)
            .map_err(|e| TlsError(format!("the key store: {e}")))
    }
}

impl TlsState {
    /// Reads the stores the config names. Blocking.
    pub fn open(config: &BrokerConfig) -> Result<Self, TlsError> {
        let sources = TlsSources::from_config(config)?;
        let mtimes = sources.mtimes();
        let server = sources.build()?;
        Ok(TlsState {
            sources,
            acceptor: RwLock::new((TlsAcceptor::from(Arc::new(server)), mtimes)),
        })
    }

    pub fn acceptor(&self) -> TlsAcceptor {
        self.acceptor
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .0
            .clone()
    }

    /// Loads the stores again when one of their files changed. A store that
    /// no longer loads is logged and the one in use is kept. Blocking.
    pub fn reload_if_changed(&self) {
        let mtimes = self.sources.mtimes();
        if self.acceptor.read().unwrap_or_else(|p| p.into_inner()).1 == mtimes {
            return;
        }
        match self.sources.build() {
            Ok(server) => {
                *self.acceptor.write().unwrap_or_else(|p| p.into_inner()) =
                    (TlsAcceptor::from(Arc::new(server)), mtimes);
                metrics::counter!("strata_tls_reloads_total").increment(1);
                info!("TLS key or trust store changed: reloaded for new connections");
            }
            Err(e) => {
                warn!(error = %e, "TLS key or trust store changed but does not load; keeping the one in use")
            }
        }
    }
}

/// Kafka's principal of a client certificate (its default
/// `ssl.principal.mapping.rules`): `User:` and the subject's distinguished
/// name as Java's `X500Principal.getName()` writes it (RFC 2253: the last
/// relative name first, no spaces).
pub fn certificate_principal(der: &[u8]) -> Option<String> {
    let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
    let mut rdns = Vec::new();
    for rdn in cert.subject().iter_rdn() {
        let mut parts = Vec::new();
        for atv in rdn.iter() {
            let oid = atv.attr_type().to_id_string();
            let key = match oid.as_str() {
                "2.5.4.3" => "CN",
                "2.5.4.6" => "C",
                "2.5.4.7" => "L",
                "2.5.4.8" => "ST",
                "2.5.4.9" => "STREET",
                "2.5.4.10" => "O",
                "2.5.4.11" => "OU",
                "0.9.2342.19200300.100.1.25" => "DC",
                "0.9.2342.19200300.100.1.1" => "UID",
                _ => "",
            };
            let part = match (key, atv.as_str()) {
                ("", _) | (_, Err(_)) => {
                    let hex: String = atv.as_slice().iter().map(|b| format!("{b:02x}")).collect();
                    format!("{oid}=#{hex}")
                }
                (k, Ok(v)) => format!("{k}={}", escape_rfc2253(v)),
            };
            parts.push(part);
        }
        rdns.push(parts.join("+"));
    }
    rdns.reverse();
    Some(format!("User:{}", rdns.join(",")))
}

fn escape_rfc2253(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    for (i, c) in v.chars().enumerate() {
        let edge = (i == 0 && (c == ' ' || c == '#')) || (i + 1 == v.chars().count() && c == ' ');
        if edge || matches!(c, ',' | '+' | '"' | '\\' | '<' | '>' | ';') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}
