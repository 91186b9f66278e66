//! The SCRAM credentials of every user, as the broker keeps them: salted
//! keys only (see [`super::scram::Credential`]), persisted in
//! `DATA_DIR/meta/scram-credentials.json` (FORMAT.md).
//!
//! Shared by every connection: lookups may come from any thread; changes
//! are made by the caller holding the security write lock, which persists
//! the new set before swapping it in.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

use serde::{Deserialize, Serialize};

use super::scram::{random_bytes, Credential, Mechanism};

/// Users by name, each with a credential per mechanism.
pub type Users = BTreeMap<String, BTreeMap<Mechanism, Credential>>;

/// The persisted form.
#[derive(Serialize, Deserialize, Default)]
pub struct CredentialsFile {
    pub format_version: u32,
    #[serde(default)]
    pub users: Users,
}

pub struct Credentials {
    users: RwLock<Arc<Users>>,
    /// A per-process secret from which an unknown user's made-up salt is
    /// derived, so that the salt is stable across attempts (as a real one
    /// would be) yet reveals nothing.
    fake_salt_key: Vec<u8>,
}

impl Credentials {
    pub fn new(users: Users) -> Self {
        Credentials {
            users: RwLock::new(Arc::new(users)),
            fake_salt_key: random_bytes(32),
        }
    }

    pub fn all(&self) -> Arc<Users> {
        Arc::clone(&self.users.read().unwrap_or_else(|p| p.into_inner()))
    }

    pub fn get(&self, user: &str, mechanism: Mechanism) -> Option<Credential> {
        self.all().get(user)?.get(&mechanism).cloned()
    }

    pub fn replace(&self, users: Users) {
        *self.users.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(users);
    }

    /// A salt for an unknown user that looks like a real one.
    pub fn fake_salt(&self, user: &str) -> Vec<u8> {
        use hmac::{Hmac, Mac};
        let mut mac =
            <Hmac<sha2::Sha256> as hmac::digest::KeyInit>::new_from_slice(&self.fake_salt_key)
                .expect("HMAC takes keys of any length");
        mac.update(user.as_bytes());
        mac.finalize().into_bytes().to_vec()
    }
}
