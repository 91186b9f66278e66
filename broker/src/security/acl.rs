//! Kafka's access control lists: a binding (resource pattern and access
//! entry), the filters DescribeAcls and DeleteAcls take, and the codes
//! Kafka gives resource types, pattern types, operations and permissions.
//! Pure data and matching; deciding is [`super::authorizer`]'s.

use serde::{Deserialize, Serialize};

/// Kafka's `ResourceType` codes.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[repr(i8)]
pub enum ResourceType {
    Any = 1,
    Topic = 2,
    Group = 3,
    Cluster = 4,
    TransactionalId = 5,
    DelegationToken = 6,
    User = 7,
}

/// Kafka's `PatternType` codes.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[repr(i8)]
pub enum PatternType {
    Any = 1,
    Match = 2,
    Literal = 3,
    Prefixed = 4,
}

/// Kafka's `AclOperation` codes.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[repr(i8)]
pub enum Operation {
    Any = 1,
    All = 2,
    Read = 3,
    Write = 4,
    Create = 5,
    Delete = 6,
    Alter = 7,
    Describe = 8,
    ClusterAction = 9,
    DescribeConfigs = 10,
    AlterConfigs = 11,
    IdempotentWrite = 12,
    CreateTokens = 13,
    DescribeTokens = 14,
}

/// Kafka's `AclPermissionType` codes.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[repr(i8)]
pub enum Permission {
    Any = 1,
    Deny = 2,
    Allow = 3,
}

macro_rules! from_code {
    ($t:ty, $($v:ident),+) => {
        impl $t {
            pub fn from_code(code: i8) -> Option<Self> {
                [$(<$t>::$v),+].into_iter().find(|v| *v as i8 == code)
            }
            pub fn code(self) -> i8 {
                self as i8
            }
        }
    };
}
from_code!(
    ResourceType,
    Any,
    Topic,
    Group,
    Cluster,
    TransactionalId,
    DelegationToken,
    User
);
from_code!(PatternType, Any, Match, Literal, Prefixed);
from_code!(
    Operation,
    Any,
    All,
    Read,
    Write,
    Create,
    Delete,
    Alter,
    Describe,
    ClusterAction,
    DescribeConfigs,
    AlterConfigs,
    IdempotentWrite,
    CreateTokens,
    DescribeTokens
);
from_code!(Permission, Any, Deny, Allow);

/// The one name of the cluster resource, Kafka's.
pub const CLUSTER_NAME: &str = "kafka-cluster";
/// A literal resource name that matches every resource of its type.
pub const WILDCARD: &str = "*";

/// One ACL: who (principal, host) may or may not do what (operation) to
/// which resources (type, name, pattern type).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct AclBinding {
    pub resource_type: ResourceType,
    pub resource_name: String,
    pub pattern_type: PatternType,
    pub principal: String,
    pub host: String,
    pub operation: Operation,
    pub permission: Permission,
}

impl AclBinding {
    /// Checks a binding CreateAcls is asked to add, as Kafka does; the
    /// error is the message of INVALID_REQUEST.
    pub fn validate(&self) -> Result<(), String> {
        if matches!(self.resource_type, ResourceType::Any) {
            return Err("Invalid resource type ANY".into());
        }
        if !matches!(
            self.pattern_type,
            PatternType::Literal | PatternType::Prefixed
        ) {
            return Err(format!("Invalid pattern type {:?}", self.pattern_type).to_uppercase());
        }
        if matches!(self.operation, Operation::Any) {
            return Err("Invalid operation ANY".into());
        }
        if matches!(self.permission, Permission::Any) {
            return Err("Invalid permission type ANY".into());
        }
        if self.resource_name.is_empty() {
            return Err("Resource name must not be empty".into());
        }
        if self.resource_type == ResourceType::Cluster && self.resource_name != CLUSTER_NAME {
            return Err(format!(
                "The only valid name for the CLUSTER resource is {CLUSTER_NAME}"
            ));
        }
        match self.principal.split_once(':') {
            Some((kind, name)) if !kind.is_empty() && !name.is_empty() => {}
            _ => {
                return Err(format!(
                    "Could not parse principal from `{}` (no colon is present separating the principal type from the principal name)",
                    self.principal
                ))
            }
        }
        if self.host.is_empty() {
            return Err("Host must not be empty".into());
        }
        Ok(())
    }

    /// Whether this binding's pattern covers the resource `name` of `kind`.
    pub fn covers(&self, kind: ResourceType, name: &str) -> bool {
        self.resource_type == kind
            && match self.pattern_type {
                PatternType::Literal => {
                    self.resource_name == name || self.resource_name == WILDCARD
                }
                PatternType::Prefixed => name.starts_with(&self.resource_name),
                _ => false,
            }
    }
}

/// A filter of DescribeAcls and DeleteAcls; `None` matches anything.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AclFilter {
    pub resource_type: ResourceType,
    pub resource_name: Option<String>,
    pub pattern_type: PatternType,
    pub principal: Option<String>,
    pub host: Option<String>,
    pub operation: Operation,
    pub permission: Permission,
}

impl AclFilter {
    /// Whether `b` matches, with Kafka's meaning of ANY and MATCH.
    pub fn matches(&self, b: &AclBinding) -> bool {
        let resource =
            self.resource_type == ResourceType::Any || self.resource_type == b.resource_type;
        let name = match (&self.resource_name, self.pattern_type) {
            (None, PatternType::Any | PatternType::Match) => true,
            (None, p) => p == b.pattern_type,
            (Some(n), PatternType::Any) => *n == b.resource_name,
            (Some(n), PatternType::Match) => match b.pattern_type {
                PatternType::Literal => b.resource_name == *n || b.resource_name == WILDCARD,
                PatternType::Prefixed => n.starts_with(&b.resource_name),
                _ => false,
            },
            (Some(n), p) => p == b.pattern_type && *n == b.resource_name,
        };
        let principal = self.principal.as_ref().is_none_or(|p| *p == b.principal);
        let host = self.host.as_ref().is_none_or(|h| *h == b.host);
        let operation = self.operation == Operation::Any || self.operation == b.operation;
        let permission = self.permission == Permission::Any || self.permission == b.permission;
        resource && name && principal && host && operation && permission
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn binding(name: &str, pattern: PatternType) -> AclBinding {
        AclBinding {
            resource_type: ResourceType::Topic,
            resource_name: name.into(),
            pattern_type: pattern,
            principal: "User:alice".into(),
            host: "*".into(),
            operation: Operation::Read,
            permission: Permission::Allow,
        }
    }

    #[test]
    fn patterns_cover_names_as_kafka_s_do() {
        assert!(binding("orders", PatternType::Literal).covers(ResourceType::Topic, "orders"));
        assert!(!binding("orders", PatternType::Literal).covers(ResourceType::Topic, "orders-eu"));
        assert!(binding("*", PatternType::Literal).covers(ResourceType::Topic, "anything"));
        assert!(binding("ord", PatternType::Prefixed).covers(ResourceType::Topic, "orders"));
        assert!(!binding("ord", PatternType::Prefixed).covers(ResourceType::Group, "orders"));
    }

    #[test]
    fn filters_follow_any_and_match() {
        let prefixed = binding("ord", PatternType::Prefixed);
        let mut f = AclFilter {
            resource_type: ResourceType::Any,
            resource_name: Some("orders".into()),
            pattern_type: PatternType::Match,
            principal: None,
            host: None,
            operation: Operation::Any,
            permission: Permission::Any,
        };
        assert!(f.matches(&prefixed));
        f.pattern_type = PatternType::Any;
        assert!(!f.matches(&prefixed));
        f.resource_name = Some("ord".into());
        assert!(f.matches(&prefixed));
        f.pattern_type = PatternType::Literal;
        assert!(!f.matches(&prefixed));
    }

    #[test]
    fn bindings_are_validated() {
        let mut b = binding("t", PatternType::Literal);
        assert!(b.validate().is_ok());
        b.principal = "alice".into();
        assert!(b.validate().is_err());
        let mut c = binding("other", PatternType::Literal);
        c.resource_type = ResourceType::Cluster;
        assert!(c.validate().unwrap_err().contains("kafka-cluster"));
    }
}
