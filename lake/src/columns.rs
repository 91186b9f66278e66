//! The table's columns: its Iceberg schema and partition spec, and the
//! Arrow batch of a file's rows under that schema.

use std::sync::Arc;

use arrow_array::builder::{
    BooleanBuilder, Float64Builder, Int32Builder, Int64Builder, LargeBinaryBuilder, ListBuilder,
    StringBuilder, StructBuilder, TimestampMicrosecondBuilder,
};
use arrow_array::{ArrayRef, RecordBatch};
use arrow_schema::{DataType, Schema as ArrowSchema};
use iceberg::spec::{
    ListType, NestedField, PrimitiveType, Schema, StructType, Transform, Type, UnboundPartitionSpec,
};

use crate::config::{Column, ColumnType, Granularity};
use crate::rows::{ColumnValue, Row};

/// The event time's field id, the source of the partitions and sort order.
pub(crate) const EVENT_TIME_ID: i32 = 8;

fn primitive(p: PrimitiveType) -> Type {
    Type::Primitive(p)
}

/// The table's Iceberg schema: the record's own columns, then the declared
/// JSON columns (all optional). Field ids are those a new table's metadata
/// assigns anyway: the top-level fields in order from 1, then the header
/// list's element and its two fields.
pub fn schema(columns: &[Column]) -> iceberg::Result<Schema> {
    let nested = EVENT_TIME_ID + columns.len() as i32 + 1;
    let header = StructType::new(vec![
        NestedField::required(nested + 1, "key", primitive(PrimitiveType::String)).into(),
        NestedField::optional(nested + 2, "value", primitive(PrimitiveType::Binary)).into(),
    ]);
    let mut fields = vec![
        NestedField::required(1, "partition", primitive(PrimitiveType::Int)).into(),
        NestedField::required(2, "offset", primitive(PrimitiveType::Long)).into(),
        NestedField::required(3, "timestamp", primitive(PrimitiveType::Timestamptz)).into(),
        NestedField::required(4, "timestamp_type", primitive(PrimitiveType::String)).into(),
        NestedField::optional(5, "key", primitive(PrimitiveType::Binary)).into(),
        NestedField::optional(6, "value", primitive(PrimitiveType::Binary)).into(),
        NestedField::required(
            7,
            "headers",
            Type::List(ListType::new(
                NestedField::list_element(nested, Type::Struct(header), true).into(),
            )),
        )
        .into(),
        NestedField::required(
            EVENT_TIME_ID,
            "event_time",
            primitive(PrimitiveType::Timestamptz),
        )
        .into(),
    ];
    for (i, c) in columns.iter().enumerate() {
        let ty = match c.ty {
            ColumnType::String => PrimitiveType::String,
            ColumnType::Long => PrimitiveType::Long,
            ColumnType::Double => PrimitiveType::Double,
            ColumnType::Boolean => PrimitiveType::Boolean,
            ColumnType::Timestamp => PrimitiveType::Timestamptz,
        };
        fields.push(
            NestedField::optional(EVENT_TIME_ID + 1 + i as i32, &c.name, primitive(ty)).into(),
        );
    }
    Schema::builder().with_fields(fields).build()
}

/// The table's partition spec: the event time's hour or day.
pub fn partition_spec(g: Granularity) -> iceberg::Result<UnboundPartitionSpec> {
    let transform = match g {
        Granularity::Hour => Transform::Hour,
        Granularity::Day => Transform::Day,
    };
    UnboundPartitionSpec::builder()
        .add_partition_field(EVENT_TIME_ID, g.field_name(), transform)
        .map(|b| b.build())
}

/// The Arrow batch of `rows` under `arrow` (the table schema's Arrow form,
/// whose fields carry the Iceberg field ids that Parquet readers map by).
pub fn record_batch(
    arrow: &Arc<ArrowSchema>,
    columns: &[Column],
    rows: &[Row],
) -> Result<RecordBatch, arrow_schema::ArrowError> {
    let n = rows.len();
    let tz = "+00:00";
    let mut partition = Int32Builder::with_capacity(n);
    let mut offset = Int64Builder::with_capacity(n);
    let mut timestamp = TimestampMicrosecondBuilder::with_capacity(n).with_timezone(tz);
    let mut ts_type = StringBuilder::with_capacity(n, n * 10);
    let mut key = LargeBinaryBuilder::with_capacity(n, 0);
    let mut value = LargeBinaryBuilder::with_capacity(n, 0);
    let mut event_time = TimestampMicrosecondBuilder::with_capacity(n).with_timezone(tz);
    let (element, header_fields) = match arrow.field_with_name("headers")?.data_type() {
        DataType::List(element) => match element.data_type() {
            DataType::Struct(fields) => (Arc::clone(element), fields.clone()),
            other => return Err(unexpected("headers element", other)),
        },
        other => return Err(unexpected("headers", other)),
    };
    let mut headers =
        ListBuilder::new(StructBuilder::from_fields(header_fields.clone(), n)).with_field(element);
    for r in rows {
        partition.append_value(r.partition);
        offset.append_value(r.offset);
        timestamp.append_value(r.timestamp.saturating_mul(1000));
        ts_type.append_value(if r.log_append_time {
            "LogAppendTime"
        } else {
            "CreateTime"
        });
        key.append_option(r.key.as_deref());
        value.append_option(r.value.as_deref());
        event_time.append_value(r.event_time.saturating_mul(1000));
        let s = headers.values();
        for (k, v) in &r.headers {
            field::<StringBuilder>(s, 0).append_value(k);
            field::<LargeBinaryBuilder>(s, 1).append_option(v.as_deref());
            s.append(true);
        }
        headers.append(true);
    }
    let mut arrays: Vec<ArrayRef> = vec![
        Arc::new(partition.finish()),
        Arc::new(offset.finish()),
        Arc::new(timestamp.finish()),
        Arc::new(ts_type.finish()),
        Arc::new(key.finish()),
        Arc::new(value.finish()),
        Arc::new(headers.finish()),
        Arc::new(event_time.finish()),
    ];
    for (i, c) in columns.iter().enumerate() {
        let values = rows
            .iter()
            .map(|r| r.columns.get(i).unwrap_or(&ColumnValue::Null));
        let array: ArrayRef = match c.ty {
            ColumnType::String => {
                let mut b = StringBuilder::new();
                for v in values {
                    b.append_option(match v {
                        ColumnValue::String(s) => Some(s.as_str()),
                        _ => None,
                    });
                }
                Arc::new(b.finish())
            }
            ColumnType::Long => {
                let mut b = Int64Builder::new();
                for v in values {
                    b.append_option(match v {
                        ColumnValue::Long(x) => Some(*x),
                        _ => None,
                    });
                }
                Arc::new(b.finish())
            }
            ColumnType::Double => {
                let mut b = Float64Builder::new();
                for v in values {
                    b.append_option(match v {
                        ColumnValue::Double(x) => Some(*x),
                        ColumnValue::Long(x) => Some(*x as f64),
                        _ => None,
                    });
                }
                Arc::new(b.finish())
            }
            ColumnType::Boolean => {
                let mut b = BooleanBuilder::new();
                for v in values {
                    b.append_option(match v {
                        ColumnValue::Boolean(x) => Some(*x),
                        _ => None,
                    });
                }
                Arc::new(b.finish())
            }
            ColumnType::Timestamp => {
                let mut b = TimestampMicrosecondBuilder::new().with_timezone(tz);
                for v in values {
                    b.append_option(match v {
                        ColumnValue::Timestamp(x) => Some(x.saturating_mul(1000)),
                        _ => None,
                    });
                }
                Arc::new(b.finish())
            }
        };
        arrays.push(array);
    }
    RecordBatch::try_new(Arc::clone(arrow), arrays)
}

fn field<T: arrow_array::builder::ArrayBuilder>(s: &mut StructBuilder, i: usize) -> &mut T {
    s.field_builder::<T>(i)
        .expect("the header struct's fields are a string and a binary")
}

fn unexpected(what: &str, t: &DataType) -> arrow_schema::ArrowError {
    arrow_schema::ArrowError::SchemaError(format!("{what} has type {t}, not the lake's"))
}
