//! Kafka's security model: listeners and their protocols, TLS, SASL
//! (PLAIN and SCRAM) with durable salted credentials, and ACLs with the
//! built-in authorizer.
//!
//! [`Security`] is the broker's one instance: shared by every connection,
//! its lookups may be called from any thread; its changes (credentials,
//! ACLs) are blocking (they persist before they take effect) and are
//! serialized by its own lock.

pub mod acl;
pub mod authorizer;
pub mod credentials;
pub mod listeners;
pub mod sasl;
pub mod scram;
pub mod tls;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::config::BrokerConfig;
use crate::meta::{read_json, write_atomically, MetaError};
use acl::{AclBinding, AclFilter, Operation, ResourceType};
use authorizer::{Authorizer, AUTHORIZER_NAMES};
use credentials::{Credentials, CredentialsFile, Users};
use listeners::SecurityProtocol;
use scram::{Credential, Mechanism};
use tls::TlsState;

const FORMAT_VERSION: u32 = 1;

/// The principal of a client the transport did not name.
pub const ANONYMOUS: &str = "User:ANONYMOUS";

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SecurityError {
    #[error("{0}")]
    Config(String),
    #[error("TLS: {0}")]
    Tls(#[from] tls::TlsError),
    #[error("security metadata: {0}")]
    Meta(#[from] MetaError),
}

/// The persisted ACLs.
#[derive(Serialize, Deserialize, Default)]
struct AclsFile {
    format_version: u32,
    #[serde(default)]
    acls: Vec<AclBinding>,
}

/// A listener as a connection sees it: its name, protocol and the address
/// clients of this listener are told.
#[derive(Clone, Debug)]
pub struct Listener {
    pub name: String,
    pub protocol: SecurityProtocol,
    pub advertised_host: String,
    pub advertised_port: i32,
}

/// Who sent a request, and through which listener. One per connection,
/// replaced when the connection (re-)authenticates.
#[derive(Clone, Debug)]
pub struct Session {
    pub principal: String,
    /// The client's IP address, as ACL hosts name it.
    pub host: String,
    pub listener: Arc<Listener>,
}

/// A session's view of the authorizer, for the handlers' checks.
pub struct Access<'a> {
    authorizer: &'a Authorizer,
    session: &'a Session,
}

impl Access<'_> {
    /// Whether any check can refuse (an authorizer is configured).
    pub fn enforced(&self) -> bool {
        self.authorizer.enabled()
    }
    pub fn allows(&self, op: Operation, kind: ResourceType, name: &str) -> bool {
        self.authorizer
            .authorize(&self.session.principal, &self.session.host, op, kind, name)
    }
    pub fn topic(&self, op: Operation, name: &str) -> bool {
        self.allows(op, ResourceType::Topic, name)
    }
    pub fn group(&self, op: Operation, name: &str) -> bool {
        self.allows(op, ResourceType::Group, name)
    }
    pub fn transactional_id(&self, op: Operation, id: &str) -> bool {
        self.allows(op, ResourceType::TransactionalId, id)
    }
    pub fn cluster(&self, op: Operation) -> bool {
        self.allows(op, ResourceType::Cluster, acl::CLUSTER_NAME)
    }
    /// Kafka's bit field of the operations allowed on a resource.
    pub fn operations(&self, kind: ResourceType, name: &str) -> i32 {
        self.authorizer.authorized_operations(
            &self.session.principal,
            &self.session.host,
            kind,
            name,
        )
    }
    /// Whether the principal may WRITE some topic (Kafka lets an idempotent
    /// producer in with that instead of IDEMPOTENT_WRITE on the cluster).
    pub fn writes_any_topic(&self, topics: impl Iterator<Item = String>) -> bool {
        topics.into_iter().any(|t| self.topic(Operation::Write, &t))
    }
}

/// A user's credential as DescribeUserScramCredentials shows it: the
/// mechanism and the iteration count.
pub type CredentialInfo = (Mechanism, i32);

/// One change AlterUserScramCredentials asks for.
pub enum CredentialChange {
    Delete {
        user: String,
        mechanism: i8,
    },
    Upsert {
        user: String,
        mechanism: i8,
        iterations: i32,
        salt: Vec<u8>,
        salted_password: Vec<u8>,
    },
}

impl CredentialChange {
    fn user(&self) -> &str {
        match self {
            CredentialChange::Delete { user, .. } | CredentialChange::Upsert { user, .. } => user,
        }
    }
    fn mechanism(&self) -> i8 {
        match self {
            CredentialChange::Delete { mechanism, .. }
            | CredentialChange::Upsert { mechanism, .. } => *mechanism,
        }
    }
}

/// A per-user failure of AlterUserScramCredentials or
/// DescribeUserScramCredentials, with Kafka's error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UserError {
    NotFound(String),
    Duplicate(String),
    Unacceptable(String),
    UnsupportedMechanism(String),
}

pub struct Security {
    pub authorizer: Authorizer,
    pub credentials: Credentials,
    /// The mechanisms of `sasl.enabled.mechanisms` that Strata offers.
    pub mechanisms: Vec<String>,
    /// `connections.max.reauth.ms`, when positive.
    pub reauth: Option<Duration>,
    /// The TLS settings, when a listener uses TLS.
    pub tls: Option<TlsState>,
    meta_dir: PathBuf,
    /// Serializes changes: each one persists before it takes effect.
    writes: Mutex<()>,
}

fn credentials_path(meta_dir: &Path) -> PathBuf {
    meta_dir.join("scram-credentials.json")
}

fn acls_path(meta_dir: &Path) -> PathBuf {
    meta_dir.join("acls.json")
}

/// Reads the stored credentials of a data directory. Blocking.
pub fn load_users(data_dir: &Path) -> Result<Users, SecurityError> {
    let path = credentials_path(&data_dir.join("meta"));
    Ok(read_json::<CredentialsFile>(&path)?
        .map(|f| f.users)
        .unwrap_or_default())
}

/// Writes the stored credentials of a data directory (readable by its
/// owner only). Blocking.
pub fn save_users(data_dir: &Path, users: &Users) -> Result<(), SecurityError> {
    let path = credentials_path(&data_dir.join("meta"));
    let file = CredentialsFile {
        format_version: FORMAT_VERSION,
        users: users.clone(),
    };
    let bytes = serde_json::to_vec_pretty(&file).expect("credentials serialize");
    write_atomically(&path, &bytes)?;
    use std::os::unix::fs::PermissionsExt;
    let _ = std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600));
    Ok(())
}

/// Writes the ACLs of a data directory. Blocking.
pub fn save_acls(data_dir: &Path, acls: Vec<AclBinding>) -> Result<(), SecurityError> {
    let file = AclsFile {
        format_version: FORMAT_VERSION,
        acls,
    };
    let bytes = serde_json::to_vec_pretty(&file).expect("ACLs serialize");
    write_atomically(&acls_path(&data_dir.join("meta")), &bytes)?;
    Ok(())
}

impl Security {
    /// Reads the credentials and ACLs of `data_dir` and the TLS stores the
    /// config names (when `tls` is wanted). Blocking.
    pub fn open(data_dir: &Path, config: &BrokerConfig, tls: bool) -> Result<Self, SecurityError> {
        let meta_dir = data_dir.join("meta");
        let class = config.value("authorizer.class.name");
        let enabled = !class.is_empty();
        if enabled && !AUTHORIZER_NAMES.contains(&class.as_str()) {
            return Err(SecurityError::Config(format!(
                "authorizer.class.name={class}: Strata's built-in authorizer is named {}",
                AUTHORIZER_NAMES[0]
            )));
        }
        let super_users = config
            .value("super.users")
            .split(';')
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .collect::<Vec<_>>();
        if let Some(bad) = super_users.iter().find(|s| !s.contains(':')) {
            return Err(SecurityError::Config(format!(
                "super.users: {bad:?} is not a principal such as User:alice"
            )));
        }
        let acls = read_json::<AclsFile>(&acls_path(&meta_dir))?
            .map(|f| f.acls)
            .unwrap_or_default();
        let users = load_users(data_dir)?;
        let mechanisms: Vec<String> = config
            .value("sasl.enabled.mechanisms")
            .split(',')
            .map(|s| s.trim().to_string())
            .filter(|s| sasl::OFFERED_MECHANISMS.contains(&s.as_str()))
            .collect();
        let reauth = config.i64("connections.max.reauth.ms");
        Ok(Security {
            authorizer: Authorizer::new(
                enabled,
                super_users,
                config.bool("allow.everyone.if.no.acl.found"),
                acls,
            ),
            credentials: Credentials::new(users),
            mechanisms,
            reauth: (reauth > 0).then(|| Duration::from_millis(reauth as u64)),
            tls: if tls {
                Some(TlsState::open(config)?)
            } else {
                None
            },
            meta_dir,
            writes: Mutex::new(()),
        })
    }

    pub fn access<'a>(&'a self, session: &'a Session) -> Access<'a> {
        Access {
            authorizer: &self.authorizer,
            session,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, ()> {
        self.writes.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// AlterUserScramCredentials: applies the valid changes, persisted
    /// before they take effect, and answers per user in request order.
    /// Blocking.
    pub fn alter_credentials(
        &self,
        changes: Vec<CredentialChange>,
    ) -> Result<Vec<(String, Option<UserError>)>, SecurityError> {
        let _guard = self.lock();
        let mut users: Users = (*self.credentials.all()).clone();
        let mut order: Vec<String> = Vec::new();
        let mut failed: BTreeMap<String, UserError> = BTreeMap::new();
        let mut seen: BTreeMap<(String, i8), usize> = BTreeMap::new();
        for c in &changes {
            if !order.iter().any(|u| u == c.user()) {
                order.push(c.user().to_string());
            }
            *seen
                .entry((c.user().to_string(), c.mechanism()))
                .or_default() += 1;
        }
        for c in &changes {
            let user = c.user();
            if failed.contains_key(user) {
                continue;
            }
            let error = if user.is_empty() {
                Some(UserError::Unacceptable("Username must not be empty".into()))
            } else if seen[&(user.to_string(), c.mechanism())] > 1 {
                Some(UserError::Duplicate(
                    "A user credential cannot be altered twice in the same request".into(),
                ))
            } else if Mechanism::from_code(c.mechanism()).is_none() {
                Some(UserError::UnsupportedMechanism(
                    "Unknown SCRAM mechanism".into(),
                ))
            } else {
                match c {
                    CredentialChange::Delete { .. } => None,
                    CredentialChange::Upsert {
                        iterations,
                        salt,
                        salted_password,
                        ..
                    } => {
                        if *iterations < scram::MIN_ITERATIONS {
                            Some(UserError::Unacceptable(format!(
                                "Too few iterations: {iterations} (at least {})",
                                scram::MIN_ITERATIONS
                            )))
                        } else if *iterations > scram::MAX_ITERATIONS {
                            Some(UserError::Unacceptable(format!(
                                "Too many iterations: {iterations} (at most {})",
                                scram::MAX_ITERATIONS
                            )))
                        } else if salt.is_empty() || salted_password.is_empty() {
                            Some(UserError::Unacceptable(
                                "Salt and salted password must not be empty".into(),
                            ))
                        } else {
                            None
                        }
                    }
                }
            };
            if let Some(e) = error {
                failed.insert(user.to_string(), e);
            }
        }
        // Deletions of credentials that do not exist fail their user.
        for c in &changes {
            if let CredentialChange::Delete { user, mechanism } = c {
                if failed.contains_key(user) {
                    continue;
                }
                let m = Mechanism::from_code(*mechanism).expect("checked above");
                if !users.get(user).is_some_and(|u| u.contains_key(&m)) {
                    failed.insert(
                        user.clone(),
                        UserError::NotFound(
                            "Attempt to delete a user credential that does not exist".into(),
                        ),
                    );
                }
            }
        }
        for c in changes {
            if failed.contains_key(c.user()) {
                continue;
            }
            match c {
                CredentialChange::Delete { user, mechanism } => {
                    let m = Mechanism::from_code(mechanism).expect("checked above");
                    if let Some(u) = users.get_mut(&user) {
                        u.remove(&m);
                        if u.is_empty() {
                            users.remove(&user);
                        }
                    }
                }
                CredentialChange::Upsert {
                    user,
                    mechanism,
                    iterations,
                    salt,
                    salted_password,
                } => {
                    let m = Mechanism::from_code(mechanism).expect("checked above");
                    users.entry(user).or_default().insert(
                        m,
                        Credential::from_salted(m, &salt, &salted_password, iterations),
                    );
                }
            }
        }
        if users != *self.credentials.all() {
            save_users(
                self.meta_dir.parent().expect("meta is in the data dir"),
                &users,
            )?;
            self.credentials.replace(users);
        }
        Ok(order
            .into_iter()
            .map(|u| {
                let e = failed.remove(&u);
                (u, e)
            })
            .collect())
    }

    /// DescribeUserScramCredentials: per user, the mechanisms and iteration
    /// counts (never the keys).
    pub fn describe_credentials(
        &self,
        names: Option<Vec<String>>,
    ) -> Vec<(String, Result<Vec<CredentialInfo>, UserError>)> {
        let users = self.credentials.all();
        let infos = |u: &BTreeMap<Mechanism, Credential>| {
            u.iter()
                .map(|(m, c)| (*m, c.iterations))
                .collect::<Vec<_>>()
        };
        match names {
            None => users
                .iter()
                .map(|(n, u)| (n.clone(), Ok(infos(u))))
                .collect(),
            Some(names) => {
                let mut out = Vec::new();
                for n in &names {
                    if out.iter().any(|(m, _): &(String, _)| m == n) {
                        continue;
                    }
                    let r = if names.iter().filter(|m| *m == n).count() > 1 {
                        Err(UserError::Duplicate(
                            "Cannot describe SCRAM credentials for the same user twice in a single request".into(),
                        ))
                    } else {
                        match users.get(n) {
                            Some(u) => Ok(infos(u)),
                            None => Err(UserError::NotFound(
                                "Attempt to describe a user credential that does not exist".into(),
                            )),
                        }
                    };
                    out.push((n.clone(), r));
                }
                out
            }
        }
    }

    fn save_acls(&self, acls: Vec<AclBinding>) -> Result<(), SecurityError> {
        save_acls(
            self.meta_dir.parent().expect("meta is in the data dir"),
            acls.clone(),
        )?;
        self.authorizer.replace(acls);
        Ok(())
    }

    /// CreateAcls: adds the bindings (already validated), persisted before
    /// they take effect. Blocking.
    pub fn create_acls(&self, new: Vec<AclBinding>) -> Result<(), SecurityError> {
        let _guard = self.lock();
        let mut acls = self.authorizer.acls().to_vec();
        for b in new {
            if !acls.contains(&b) {
                acls.push(b);
            }
        }
        self.save_acls(acls)
    }

    /// DeleteAcls: removes the bindings each filter matches and returns
    /// them per filter. Blocking.
    pub fn delete_acls(
        &self,
        filters: &[AclFilter],
    ) -> Result<Vec<Vec<AclBinding>>, SecurityError> {
        let _guard = self.lock();
        let acls = self.authorizer.acls();
        let matched: Vec<Vec<AclBinding>> = filters
            .iter()
            .map(|f| acls.iter().filter(|b| f.matches(b)).cloned().collect())
            .collect();
        if matched.iter().any(|m| !m.is_empty()) {
            let kept = acls
                .iter()
                .filter(|b| !filters.iter().any(|f| f.matches(b)))
                .cloned()
                .collect();
            self.save_acls(kept)?;
        }
        Ok(matched)
    }
}
