//! Kafka's listeners: `listeners`, `advertised.listeners` and
//! `listener.security.protocol.map`, parsed into the endpoints the broker
//! binds and the addresses it tells clients of each.

use std::collections::BTreeMap;

/// The security protocol of a listener.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum SecurityProtocol {
    Plaintext,
    Ssl,
    SaslPlaintext,
    SaslSsl,
}

impl SecurityProtocol {
    pub fn parse(s: &str) -> Option<Self> {
        match s.to_ascii_uppercase().as_str() {
            "PLAINTEXT" => Some(Self::Plaintext),
            "SSL" => Some(Self::Ssl),
            "SASL_PLAINTEXT" => Some(Self::SaslPlaintext),
            "SASL_SSL" => Some(Self::SaslSsl),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Plaintext => "PLAINTEXT",
            Self::Ssl => "SSL",
            Self::SaslPlaintext => "SASL_PLAINTEXT",
            Self::SaslSsl => "SASL_SSL",
        }
    }

    pub fn tls(self) -> bool {
        matches!(self, Self::Ssl | Self::SaslSsl)
    }

    pub fn sasl(self) -> bool {
        matches!(self, Self::SaslPlaintext | Self::SaslSsl)
    }
}

/// One listener as configured: its name, protocol, where it binds, and
/// what clients are told (filled in once bound, when the port was 0).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ListenerSpec {
    pub name: String,
    pub protocol: SecurityProtocol,
    pub host: String,
    pub port: u16,
    pub advertised: Option<(String, u16)>,
}

/// Splits `NAME://host:port`; an IPv6 host is in brackets, an empty host
/// means every interface.
fn endpoint(item: &str, key: &str) -> Result<(String, String, u16), String> {
    let (name, rest) = item
        .split_once("://")
        .ok_or_else(|| format!("{key}: {item:?} is not NAME://HOST:PORT"))?;
    let (host, port) = rest
        .rsplit_once(':')
        .ok_or_else(|| format!("{key}: {item:?} has no port"))?;
    let port: u16 = port
        .parse()
        .map_err(|_| format!("{key}: {item:?} has a bad port"))?;
    if name.is_empty() {
        return Err(format!("{key}: {item:?} has no listener name"));
    }
    Ok((
        name.to_ascii_uppercase(),
        host.trim_matches(|c| c == '[' || c == ']').to_string(),
        port,
    ))
}

/// Parses the three configs. `map` pairs listener names with protocols;
/// a listener named like a protocol needs no entry.
pub fn parse(listeners: &str, advertised: &str, map: &str) -> Result<Vec<ListenerSpec>, String> {
    let mut protocols = BTreeMap::new();
    for pair in map.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let (name, proto) = pair.split_once(':').ok_or_else(|| {
            format!("listener.security.protocol.map: {pair:?} is not NAME:PROTOCOL")
        })?;
        let proto = SecurityProtocol::parse(proto).ok_or_else(|| {
            format!("listener.security.protocol.map: unknown security protocol {proto:?}")
        })?;
        protocols.insert(name.to_ascii_uppercase(), proto);
    }
    let mut out: Vec<ListenerSpec> = Vec::new();
    for item in listeners
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
    {
        let (name, host, port) = endpoint(item, "listeners")?;
        let protocol = protocols
            .get(&name)
            .copied()
            .or_else(|| SecurityProtocol::parse(&name))
            .ok_or_else(|| {
                format!("listeners: no security protocol for listener {name}; add it to listener.security.protocol.map")
            })?;
        if out.iter().any(|l| l.name == name) {
            return Err(format!("listeners: listener {name} is named twice"));
        }
        if out.iter().any(|l| l.port == port && port != 0) {
            return Err(format!("listeners: port {port} is used twice"));
        }
        out.push(ListenerSpec {
            name,
            protocol,
            host,
            port,
            advertised: None,
        });
    }
    for item in advertised
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
    {
        let (name, host, port) = endpoint(item, "advertised.listeners")?;
        let l = out
            .iter_mut()
            .find(|l| l.name == name)
            .ok_or_else(|| format!("advertised.listeners: {name} is not one of the listeners"))?;
        if host.is_empty() {
            return Err(format!("advertised.listeners: {item:?} has no host"));
        }
        l.advertised = Some((host, port));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kafka_style_listeners() {
        let l = parse(
            "PLAINTEXT://127.0.0.1:9092,SASL_SSL://:9093,CLIENTS://[::1]:9094",
            "SASL_SSL://kafka.example.com:19093",
            "CLIENTS:SSL,PLAINTEXT:PLAINTEXT,SASL_SSL:SASL_SSL",
        )
        .unwrap();
        assert_eq!(l.len(), 3);
        assert_eq!(l[1].protocol, SecurityProtocol::SaslSsl);
        assert_eq!(l[1].host, "");
        assert_eq!(l[1].advertised, Some(("kafka.example.com".into(), 19093)));
        assert_eq!(l[2].protocol, SecurityProtocol::Ssl);
        assert_eq!(l[2].host, "::1");
    }

    #[test]
    fn mistakes_are_named() {
        assert!(parse("FOO://:1", "", "").unwrap_err().contains("FOO"));
        assert!(parse("PLAINTEXT://:1,SSL://:1", "", "")
            .unwrap_err()
            .contains("twice"));
        assert!(parse("PLAINTEXT://:1", "SSL://h:2", "")
            .unwrap_err()
            .contains("SSL"));
        assert!(parse("PLAINTEXT:1", "", "").is_err());
    }
}
