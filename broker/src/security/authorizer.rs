//! The built-in authorizer: Kafka's StandardAuthorizer rules over the
//! ACLs in force.
//!
//! The rules, in order: a super user may do anything; a matching DENY
//! refuses; a matching ALLOW permits (ALLOW of READ, WRITE, DELETE or ALTER
//! implies DESCRIBE, and ALLOW of ALTER_CONFIGS implies DESCRIBE_CONFIGS);
//! a resource no ACL covers at all follows `allow.everyone.if.no.acl.found`;
//! anything else is refused.
//!
//! Shared by every connection: `authorize` may be called from any thread
//! at any time; `replace` swaps in a new ACL set atomically (callers
//! serialize changes and persist them first).

use std::sync::{Arc, RwLock};

use super::acl::{AclBinding, Operation, Permission, ResourceType};

/// Kafka's class names that configure the built-in authorizer.
pub const AUTHORIZER_NAMES: &[&str] = &[
    "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
    "kafka.security.authorizer.AclAuthorizer",
    "strata",
];

/// The operations Kafka defines on each resource type, for the authorized
/// operations Metadata, DescribeCluster and DescribeGroups report.
pub fn operations_of(kind: ResourceType) -> &'static [Operation] {
    use Operation::*;
    match kind {
        ResourceType::Topic => &[
            Read,
            Write,
            Create,
            Delete,
            Alter,
            Describe,
            DescribeConfigs,
            AlterConfigs,
        ],
        ResourceType::Cluster => &[
            Create,
            Alter,
            Describe,
            ClusterAction,
            DescribeConfigs,
            AlterConfigs,
            IdempotentWrite,
        ],
        ResourceType::Group => &[Read, Delete, Describe],
        ResourceType::TransactionalId => &[Write, Describe],
        _ => &[],
    }
}

pub struct Authorizer {
    /// Whether `authorizer.class.name` names the built-in authorizer; when
    /// not, every request is allowed, as in Kafka without an authorizer.
    enabled: bool,
    super_users: Vec<String>,
    allow_if_no_acl: bool,
    acls: RwLock<Arc<Vec<AclBinding>>>,
}

impl Authorizer {
    pub fn new(
        enabled: bool,
        super_users: Vec<String>,
        allow_if_no_acl: bool,
        acls: Vec<AclBinding>,
    ) -> Self {
        Authorizer {
            enabled,
            super_users,
            allow_if_no_acl,
            acls: RwLock::new(Arc::new(acls)),
        }
    }

    pub fn enabled(&self) -> bool {
        self.enabled
    }

    pub fn acls(&self) -> Arc<Vec<AclBinding>> {
        Arc::clone(&self.acls.read().unwrap_or_else(|p| p.into_inner()))
    }

    pub fn replace(&self, acls: Vec<AclBinding>) {
        *self.acls.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(acls);
    }

    /// Whether `principal` connected from `host` may do `op` to the
    /// resource `name` of `kind`.
    pub fn authorize(
        &self,
        principal: &str,
        host: &str,
        op: Operation,
        kind: ResourceType,
        name: &str,
    ) -> bool {
        if !self.enabled || self.super_users.iter().any(|s| s == principal) {
            return true;
        }
        let acls = self.acls();
        let mut covered = false;
        let mut allowed = false;
        for acl in acls.iter().filter(|a| a.covers(kind, name)) {
            covered = true;
            let applies = (acl.principal == principal || acl.principal == "User:*")
                && (acl.host == "*" || acl.host == host);
            if !applies {
                continue;
            }
            match acl.permission {
                Permission::Deny if acl.operation == op || acl.operation == Operation::All => {
                    return false;
                }
                Permission::Allow if grants(acl.operation, op) => allowed = true,
                _ => {}
            }
        }
        allowed || (!covered && self.allow_if_no_acl)
    }

    /// Kafka's bit field of the operations on a resource that `principal`
    /// may do (bit n for operation code n).
    pub fn authorized_operations(
        &self,
        principal: &str,
        host: &str,
        kind: ResourceType,
        name: &str,
    ) -> i32 {
        operations_of(kind)
            .iter()
            .filter(|op| self.authorize(principal, host, **op, kind, name))
            .fold(0, |bits, op| bits | (1 << op.code()))
    }
}

/// Whether an ALLOW of `granted` permits `wanted`, with Kafka's implied
/// operations.
fn grants(granted: Operation, wanted: Operation) -> bool {
    use Operation::*;
    granted == wanted
        || granted == All
        || (wanted == Describe && matches!(granted, Read | Write | Delete | Alter))
        || (wanted == DescribeConfigs && granted == AlterConfigs)
}

#[cfg(test)]
mod tests {
    use super::super::acl::PatternType;
    use super::*;

    fn acl(name: &str, pattern: PatternType, op: Operation, permission: Permission) -> AclBinding {
        AclBinding {
            resource_type: ResourceType::Topic,
            resource_name: name.into(),
            pattern_type: pattern,
            principal: "User:alice".into(),
            host: "*".into(),
            operation: op,
            permission,
        }
    }

    #[test]
    fn standard_authorizer_rules() {
        let a = Authorizer::new(
            true,
            vec!["User:admin".into()],
            false,
            vec![
                acl(
                    "orders",
                    PatternType::Prefixed,
                    Operation::Read,
                    Permission::Allow,
                ),
                acl(
                    "orders-secret",
                    PatternType::Literal,
                    Operation::All,
                    Permission::Deny,
                ),
            ],
        );
        let t = ResourceType::Topic;
        assert!(a.authorize("User:alice", "1.2.3.4", Operation::Read, t, "orders-eu"));
        // READ implies DESCRIBE, not WRITE.
        assert!(a.authorize("User:alice", "1.2.3.4", Operation::Describe, t, "orders-eu"));
        assert!(!a.authorize("User:alice", "1.2.3.4", Operation::Write, t, "orders-eu"));
        // DENY wins over ALLOW.
        assert!(!a.authorize("User:alice", "1.2.3.4", Operation::Read, t, "orders-secret"));
        assert!(!a.authorize("User:bob", "1.2.3.4", Operation::Read, t, "orders-eu"));
        // No ACL at all: refused unless allow.everyone.if.no.acl.found.
        assert!(!a.authorize("User:bob", "1.2.3.4", Operation::Read, t, "other"));
        assert!(a.authorize("User:admin", "1.2.3.4", Operation::Alter, t, "other"));
        let open = Authorizer::new(true, vec![], true, a.acls().to_vec());
        assert!(open.authorize("User:bob", "1.2.3.4", Operation::Read, t, "other"));
        assert!(!open.authorize("User:bob", "1.2.3.4", Operation::Read, t, "orders-eu"));
        let bits = a.authorized_operations("User:alice", "h", t, "orders-eu");
        assert_eq!(bits, (1 << 3) | (1 << 8));
    }

    #[test]
    fn hosts_and_wildcard_principals() {
        let mut b = acl(
            "t",
            PatternType::Literal,
            Operation::Write,
            Permission::Allow,
        );
        b.principal = "User:*".into();
        b.host = "10.0.0.1".into();
        let a = Authorizer::new(true, vec![], false, vec![b]);
        assert!(a.authorize(
            "User:x",
            "10.0.0.1",
            Operation::Write,
            ResourceType::Topic,
            "t"
        ));
        assert!(!a.authorize(
            "User:x",
            "10.0.0.2",
            Operation::Write,
            ResourceType::Topic,
            "t"
        ));
        let off = Authorizer::new(false, vec![], false, vec![]);
        assert!(off.authorize(
            "User:x",
            "h",
            Operation::Alter,
            ResourceType::Cluster,
            "kafka-cluster"
        ));
    }
}
