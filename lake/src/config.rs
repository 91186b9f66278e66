//! The `lake.*` topic configs (Strata's own; Kafka has none), parsed and
//! checked. The broker keeps them as strings under these names, validates
//! them with [`validate`] and hands a topic's values to [`LakeConfig::parse`].

/// The config keys, with their defaults and what they do, for the broker's
/// config table and CONFIG.md.
pub const KEYS: &[(&str, &str, &str)] = &[
    ("lake.enable", "false", "Translate the topic's uploaded history into an Iceberg table under lake/<topic>/ in the cold tier's bucket."),
    ("lake.partition", "hour", "The table's event-time partitions: hour or day."),
    ("lake.event.time", "timestamp", "Where a row's event time comes from: timestamp (the record's) or a JSON pointer into JSON values such as /event_ts (milliseconds since the epoch or an RFC 3339 string); records without it fall back to their timestamp."),
    ("lake.columns", "", "Top-level fields of JSON values extracted as typed columns: name:type pairs, comma-separated, type one of string, long, double, boolean, timestamp (e.g. user:string,amount:double)."),
    ("lake.commit.interval.ms", "300000", "Commit a snapshot at least this often while there are translated rows (or sooner, at lake.commit.bytes)."),
    ("lake.commit.bytes", "134217728", "Commit a snapshot once this many bytes of records wait for one."),
    ("lake.retention.ms", "-1", "Drop the table's event-time partitions whose whole hour or day is older than this (by event time); -1 keeps them forever. Independent of retention.ms."),
];

/// How wide the table's event-time partitions are.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Granularity {
    Hour,
    Day,
}

impl Granularity {
    /// The partition's width in milliseconds.
    pub fn millis(self) -> i64 {
        match self {
            Granularity::Hour => 3_600_000,
            Granularity::Day => 86_400_000,
        }
    }

    /// The Iceberg partition field's name.
    pub fn field_name(self) -> &'static str {
        match self {
            Granularity::Hour => "event_time_hour",
            Granularity::Day => "event_time_day",
        }
    }

    /// Which partition (hours or days since the epoch, as Iceberg's
    /// transforms number them) holds `ms`.
    pub fn bucket(self, ms: i64) -> i32 {
        ms.div_euclid(self.millis()) as i32
    }
}

/// Where a row's event time comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EventTimeSource {
    /// The record's timestamp.
    Timestamp,
    /// A JSON pointer (RFC 6901) into the record's value.
    Pointer(String),
}

/// The type of an extracted JSON column.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum ColumnType {
    String,
    Long,
    Double,
    Boolean,
    /// Milliseconds since the epoch or an RFC 3339 string.
    Timestamp,
}

/// One declared JSON column.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Column {
    pub name: String,
    pub ty: ColumnType,
}

/// The columns every table has; declared columns may not reuse their names.
pub const BUILT_IN_COLUMNS: &[&str] = &[
    "partition",
    "offset",
    "timestamp",
    "timestamp_type",
    "key",
    "value",
    "headers",
    "event_time",
];

/// A topic's lake settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LakeConfig {
    pub enabled: bool,
    pub granularity: Granularity,
    pub event_time: EventTimeSource,
    pub columns: Vec<Column>,
    pub commit_interval_ms: i64,
    pub commit_bytes: u64,
    pub retention_ms: i64,
}

impl LakeConfig {
    /// The settings from a topic's values, `get` answering each `lake.*`
    /// key (its override or default). The values were validated when set.
    pub fn parse(get: impl Fn(&str) -> String) -> Result<LakeConfig, String> {
        let long = |k: &str| -> Result<i64, String> {
            get(k)
                .trim()
                .parse::<i64>()
                .map_err(|_| format!("{k}: not a number"))
        };
        Ok(LakeConfig {
            enabled: get("lake.enable").trim() == "true",
            granularity: parse_granularity(&get("lake.partition"))?,
            event_time: parse_event_time(&get("lake.event.time"))?,
            columns: parse_columns(&get("lake.columns"))?,
            commit_interval_ms: long("lake.commit.interval.ms")?.max(1),
            commit_bytes: long("lake.commit.bytes")?.max(1) as u64,
            retention_ms: long("lake.retention.ms")?,
        })
    }
}

/// Checks one `lake.*` value; the error says what is wrong with it.
pub fn validate(key: &str, value: &str) -> Result<(), String> {
    let value = value.trim();
    let long = |min: i64| -> Result<(), String> {
        match value.parse::<i64>() {
            Ok(v) if v >= min => Ok(()),
            Ok(_) => Err(format!("must be at least {min}")),
            Err(_) => Err("not a number".into()),
        }
    };
    match key {
        "lake.enable" => match value {
            "true" | "false" => Ok(()),
            _ => Err("must be true or false".into()),
        },
        "lake.partition" => parse_granularity(value).map(|_| ()),
        "lake.event.time" => parse_event_time(value).map(|_| ()),
        "lake.columns" => parse_columns(value).map(|_| ()),
        "lake.commit.interval.ms" | "lake.commit.bytes" => long(1),
        "lake.retention.ms" => long(-1),
        _ => Err(format!("unknown lake config {key}")),
    }
}

fn parse_granularity(value: &str) -> Result<Granularity, String> {
    match value.trim() {
        "hour" => Ok(Granularity::Hour),
        "day" => Ok(Granularity::Day),
        other => Err(format!("{other:?} is not hour or day")),
    }
}

fn parse_event_time(value: &str) -> Result<EventTimeSource, String> {
    match value.trim() {
        "timestamp" | "" => Ok(EventTimeSource::Timestamp),
        p if p.starts_with('/') => Ok(EventTimeSource::Pointer(p.to_string())),
        other => Err(format!(
            "{other:?} is neither timestamp nor a JSON pointer such as /event_ts"
        )),
    }
}

fn parse_columns(value: &str) -> Result<Vec<Column>, String> {
    let mut out: Vec<Column> = Vec::new();
    for item in value.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let (name, ty) = item
            .split_once(':')
            .ok_or_else(|| format!("{item:?} is not name:type"))?;
        let name = name.trim();
        let ty = match ty.trim() {
            "string" => ColumnType::String,
            "long" => ColumnType::Long,
            "double" => ColumnType::Double,
            "boolean" => ColumnType::Boolean,
            "timestamp" => ColumnType::Timestamp,
            other => {
                return Err(format!(
                "column {name}: type {other:?} is not string, long, double, boolean or timestamp"
            ))
            }
        };
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(format!(
                "column name {name:?} must be letters, digits and underscores"
            ));
        }
        if BUILT_IN_COLUMNS.contains(&name) {
            return Err(format!("column {name} is one of the table's own columns"));
        }
        if out.iter().any(|c| c.name == name) {
            return Err(format!("column {name} is declared twice"));
        }
        out.push(Column {
            name: name.to_string(),
            ty,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn defaults(k: &str) -> String {
        KEYS.iter().find(|(n, _, _)| *n == k).unwrap().1.to_string()
    }

    #[test]
    fn defaults_parse() {
        let c = LakeConfig::parse(defaults).unwrap();
        assert!(!c.enabled);
        assert_eq!(c.granularity, Granularity::Hour);
        assert_eq!(c.event_time, EventTimeSource::Timestamp);
        assert!(c.columns.is_empty());
        for (k, v, _) in KEYS {
            validate(k, v).unwrap();
        }
    }

    #[test]
    fn columns_and_pointers() {
        let cols = parse_columns("user:string, amount:double,ok:boolean").unwrap();
        assert_eq!(cols.len(), 3);
        assert_eq!(cols[1].ty, ColumnType::Double);
        assert!(validate("lake.columns", "offset:long").is_err());
        assert!(validate("lake.columns", "a:long,a:string").is_err());
        assert!(validate("lake.columns", "a:int").is_err());
        assert!(validate("lake.columns", "a b:long").is_err());
        assert!(validate("lake.event.time", "/event_ts").is_ok());
        assert!(validate("lake.event.time", "event_ts").is_err());
        assert!(validate("lake.partition", "minute").is_err());
        assert!(validate("lake.retention.ms", "-2").is_err());
    }

    #[test]
    fn buckets_count_from_the_epoch() {
        assert_eq!(Granularity::Hour.bucket(0), 0);
        assert_eq!(Granularity::Hour.bucket(3_599_999), 0);
        assert_eq!(Granularity::Hour.bucket(3_600_000), 1);
        assert_eq!(Granularity::Hour.bucket(-1), -1);
        assert_eq!(Granularity::Day.bucket(86_400_000 * 3 + 5), 3);
    }
}
