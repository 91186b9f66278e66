//! The client security settings of the `strata` tools, read from a
//! `--command-config` properties file as Kafka's tools read theirs:
//! `security.protocol`, `sasl.mechanism`, the user and password (as
//! `sasl.username`/`sasl.password`, or Kafka's `sasl.jaas.config`), and PEM
//! stores (`ssl.truststore.location` or `ssl.ca.location`;
//! `ssl.keystore.location`, or `ssl.certificate.location` with
//! `ssl.key.location`, for a client certificate).

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::sync::Arc;

use anyhow::{anyhow, bail, Context};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};

use crate::security::listeners::SecurityProtocol;

/// How the tools connect. The default is PLAINTEXT.
#[derive(Clone, Debug)]
pub struct ClientSecurity {
    pub protocol: SecurityProtocol,
    pub mechanism: String,
    pub username: String,
    pub password: String,
    pub truststore: Option<String>,
    pub certificate: Option<String>,
    pub key: Option<String>,
}

impl Default for ClientSecurity {
    fn default() -> Self {
        ClientSecurity {
            protocol: SecurityProtocol::Plaintext,
            mechanism: "SCRAM-SHA-512".into(),
            username: String::new(),
            password: String::new(),
            truststore: None,
            certificate: None,
            key: None,
        }
    }
}

/// A `key="value"` option of a JAAS line.
fn jaas_option(jaas: &str, key: &str) -> Option<String> {
    let at = jaas.find(&format!("{key}=\""))? + key.len() + 2;
    let end = jaas[at..].find('"')?;
    Some(jaas[at..at + end].to_string())
}

impl ClientSecurity {
    /// Reads a properties file; `None` gives PLAINTEXT.
    pub fn load(path: Option<&Path>) -> anyhow::Result<Self> {
        let Some(path) = path else {
            return Ok(Self::default());
        };
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("--command-config {}", path.display()))?;
        let props: BTreeMap<String, String> = text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#') && !l.starts_with('!'))
            .filter_map(|l| {
                l.split_once('=')
                    .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
            })
            .collect();
        let get = |k: &str| props.get(k).cloned().filter(|v| !v.is_empty());
        let protocol = match get("security.protocol") {
            Some(p) => SecurityProtocol::parse(&p)
                .ok_or_else(|| anyhow!("security.protocol={p}: unknown protocol"))?,
            None => SecurityProtocol::Plaintext,
        };
        let jaas = get("sasl.jaas.config").unwrap_or_default();
        let s = ClientSecurity {
            protocol,
            mechanism: get("sasl.mechanism")
                .or_else(|| get("sasl.mechanisms"))
                .unwrap_or_else(|| "SCRAM-SHA-512".into()),
            username: get("sasl.username")
                .or_else(|| jaas_option(&jaas, "username"))
                .unwrap_or_default(),
            password: get("sasl.password")
                .or_else(|| jaas_option(&jaas, "password"))
                .unwrap_or_default(),
            truststore: get("ssl.truststore.location").or_else(|| get("ssl.ca.location")),
            certificate: get("ssl.keystore.location").or_else(|| get("ssl.certificate.location")),
            key: get("ssl.keystore.location").or_else(|| get("ssl.key.location")),
        };
        if protocol.sasl() && (s.username.is_empty() || s.password.is_empty()) {
            bail!(
                "security.protocol={}: set sasl.username and sasl.password (or sasl.jaas.config)",
                protocol.name()
            );
        }
        Ok(s)
    }

    /// Opens the transport to `addr` (TLS when the protocol says so).
    pub fn connect(&self, addr: &str) -> anyhow::Result<Stream> {
        let tcp = TcpStream::connect(addr).with_context(|| format!("cannot connect to {addr}"))?;
        tcp.set_read_timeout(Some(std::time::Duration::from_secs(30)))?;
        if !self.protocol.tls() {
            return Ok(Stream::Plain(tcp));
        }
        let mut roots = rustls::RootCertStore::empty();
        let trust = self.truststore.as_ref().ok_or_else(|| {
            anyhow!("TLS needs ssl.truststore.location (a PEM file of the broker's CA)")
        })?;
        for cert in CertificateDer::pem_file_iter(trust).with_context(|| trust.clone())? {
            roots.add(cert.with_context(|| trust.clone())?)?;
        }
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let builder = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_root_certificates(roots);
        let config = match (&self.certificate, &self.key) {
            (Some(c), Some(k)) => {
                let chain = CertificateDer::pem_file_iter(c)
                    .with_context(|| c.clone())?
                    .collect::<Result<Vec<_>, _>>()
                    .with_context(|| c.clone())?;
                let key = PrivateKeyDer::from_pem_file(k).with_context(|| k.clone())?;
                builder.with_client_auth_cert(chain, key)?
            }
            _ => builder.with_no_client_auth(),
        };
        let host = addr.rsplit_once(':').map_or(addr, |(h, _)| h);
        let name = ServerName::try_from(host.trim_matches(|c| c == '[' || c == ']').to_string())
            .map_err(|e| anyhow!("{addr}: {e}"))?;
        let conn = rustls::ClientConnection::new(Arc::new(config), name)?;
        Ok(Stream::Tls(Box::new(rustls::StreamOwned::new(conn, tcp))))
    }
}

/// A tool's connection: plain or TLS.
pub enum Stream {
    Plain(TcpStream),
    Tls(Box<rustls::StreamOwned<rustls::ClientConnection, TcpStream>>),
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self {
            Stream::Plain(s) => s.read(buf),
            Stream::Tls(s) => s.read(buf),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self {
            Stream::Plain(s) => s.write(buf),
            Stream::Tls(s) => s.write(buf),
        }
    }
    fn flush(&mut self) -> std::io::Result<()> {
        match self {
            Stream::Plain(s) => s.flush(),
            Stream::Tls(s) => s.flush(),
        }
    }
}
