//! The exported table: one typed column per field of `botify::events::Event`
//! plus `seq`, built row by row as lines are parsed and finished into an
//! Arrow [`RecordBatch`].
//!
//! Adding a field of the event (say an optional `model_version` string) is
//! a field here of the right builder type — [`OptionalText`] for an optional
//! string — one line in [`Columns::push`], one in [`Columns::finish`] and one
//! in [`schema`]; the parser (`logs/event.rs`) reads the field into
//! [`Event`].

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

use arrow_array::builder::{
    BooleanBuilder, Float64Builder, MapBuilder, MapFieldNames, StringBuilder, UInt32Builder,
};
use arrow_array::cast::AsArray;
use arrow_array::types::{Int32Type, Int8Type, UInt64Type};
use arrow_array::{
    ArrayRef, DictionaryArray, Float64Array, Int32Array, Int8Array, RecordBatch, StringArray,
    TimestampMillisecondArray, UInt32Array, UInt64Array,
};
use arrow_buffer::NullBufferBuilder;
use arrow_schema::{DataType, Field, Fields, Schema, SchemaRef, TimeUnit};

use crate::logs::Event;

/// Values of the `message` dictionary; an event's key is its index.
const MESSAGES: [&str; 2] = ["next", "last"];

/// Position of `seq` in the schema (rebased when a chunk is committed);
/// a test keeps it in step with [`schema`].
const SEQ: usize = 12;

/// Names of the map's entries, as the Parquet format spells them
/// (`key_value` of `key` and `value`), so every reader maps them alike.
fn map_names() -> MapFieldNames {
    MapFieldNames {
        entry: "key_value".to_string(),
        key: "key".to_string(),
        value: "value".to_string(),
    }
}

/// The schema of every exported file. Nullable columns are the event's
/// optional fields.
pub fn schema() -> SchemaRef {
    static SCHEMA: OnceLock<SchemaRef> = OnceLock::new();
    SCHEMA
        .get_or_init(|| {
            let text =
                |key: DataType| DataType::Dictionary(Box::new(key), Box::new(DataType::Utf8));
            Arc::new(Schema::new(vec![
                Field::new("message", text(DataType::Int8), false),
                Field::new(
                    "timestamp",
                    DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into())),
                    false,
                ),
                Field::new("user", DataType::UInt64, false),
                Field::new("track", DataType::UInt32, false),
                Field::new("time", DataType::Float64, false),
                Field::new("latency", DataType::Float64, false),
                Field::new("recommendation", DataType::UInt32, true),
                Field::new("propensity", DataType::Float64, true),
                Field::new("experiments", experiments_type(), false),
                Field::new("recommender", text(DataType::Int32), true),
                Field::new("fallback", DataType::Boolean, false),
                Field::new("model_version", text(DataType::Int32), true),
                Field::new("seq", DataType::UInt64, false),
            ]))
        })
        .clone()
}

/// `experiments`: a map of experiment name to arm label, both required.
fn experiments_type() -> DataType {
    let entries = Fields::from(vec![
        Field::new("key", DataType::Utf8, false),
        Field::new("value", DataType::Utf8, false),
    ]);
    DataType::Map(
        Arc::new(Field::new("key_value", DataType::Struct(entries), false)),
        false,
    )
}

/// A batch of events being built, column by column.
pub struct Columns {
    message: Vec<i8>,
    timestamp: Vec<i64>,
    user: Vec<u64>,
    track: Vec<u32>,
    time: Vec<f64>,
    latency: Vec<f64>,
    recommendation: UInt32Builder,
    propensity: Float64Builder,
    experiments: MapBuilder<StringBuilder, StringBuilder>,
    recommender: OptionalText,
    fallback: BooleanBuilder,
    model_version: OptionalText,
    /// Position in reading order within the chunk; made global at commit.
    seq: Vec<u64>,
}

impl Columns {
    pub fn new() -> Columns {
        let experiments = MapBuilder::new(
            Some(map_names()),
            StringBuilder::new(),
            StringBuilder::new(),
        )
        .with_values_field(Arc::new(Field::new("value", DataType::Utf8, false)));
        Columns {
            message: Vec::new(),
            timestamp: Vec::new(),
            user: Vec::new(),
            track: Vec::new(),
            time: Vec::new(),
            latency: Vec::new(),
            recommendation: UInt32Builder::new(),
            propensity: Float64Builder::new(),
            experiments,
            recommender: OptionalText::default(),
            fallback: BooleanBuilder::new(),
            model_version: OptionalText::default(),
            seq: Vec::new(),
        }
    }

    /// Appends one event; `seq` is its position in the chunk's reading order.
    pub fn push(&mut self, event: &Event<'_>, seq: u64) {
        self.message.push(i8::from(event.last));
        // Parsing refused timestamps past 9999, so this cannot wrap.
        self.timestamp.push(event.timestamp as i64);
        self.user.push(event.user);
        self.track.push(event.track);
        self.time.push(event.time);
        self.latency.push(event.latency);
        self.recommendation.append_option(event.recommendation);
        self.propensity.append_option(event.propensity);
        event.experiments.for_each(|name, label| {
            self.experiments.keys().append_value(name);
            self.experiments.values().append_value(label);
        });
        // Appending a non-null map to its own builders cannot fail.
        let _ = self.experiments.append(true);
        self.recommender.push(event.recommender.as_deref());
        self.fallback.append_value(event.fallback);
        self.model_version.push(event.model_version.as_deref());
        self.seq.push(seq);
    }

    /// The batch; its `seq` counts from 0 until [`rebase_seq`].
    pub fn finish(mut self) -> RecordBatch {
        let message = DictionaryArray::<Int8Type>::new(
            Int8Array::from(self.message),
            Arc::new(StringArray::from(MESSAGES.to_vec())),
        );
        let columns: Vec<ArrayRef> = vec![
            Arc::new(message),
            Arc::new(TimestampMillisecondArray::from(self.timestamp).with_timezone("UTC")),
            Arc::new(UInt64Array::from(self.user)),
            Arc::new(UInt32Array::from(self.track)),
            Arc::new(Float64Array::from(self.time)),
            Arc::new(Float64Array::from(self.latency)),
            Arc::new(self.recommendation.finish()),
            Arc::new(self.propensity.finish()),
            Arc::new(self.experiments.finish()),
            Arc::new(self.recommender.finish()),
            Arc::new(self.fallback.finish()),
            Arc::new(self.model_version.finish()),
            Arc::new(UInt64Array::from(self.seq)),
        ];
        RecordBatch::try_new(schema(), columns).expect("columns match the schema")
    }
}

/// `batch` with every `seq` moved on by `offset`: workers number events
/// within their chunk; the commit knows how many came before.
pub fn rebase_seq(batch: &RecordBatch, offset: u64) -> RecordBatch {
    let seq = batch.column(SEQ).as_primitive::<UInt64Type>();
    let rebased: UInt64Array = seq.unary(|s| s + offset);
    let mut columns = batch.columns().to_vec();
    columns[SEQ] = Arc::new(rebased);
    RecordBatch::try_new(batch.schema(), columns).expect("same schema, same length")
}

/// A nullable string column with few distinct values (recommender names,
/// model versions), dictionary-encoded while it is built: a row costs a key,
/// and Parquet stores each distinct string once per page anyway.
struct OptionalText {
    values: Vec<Box<str>>,
    index: HashMap<Box<str>, i32>,
    keys: Vec<i32>,
    nulls: NullBufferBuilder,
}

impl Default for OptionalText {
    fn default() -> OptionalText {
        OptionalText {
            values: Vec::new(),
            index: HashMap::new(),
            keys: Vec::new(),
            nulls: NullBufferBuilder::new(0),
        }
    }
}

impl OptionalText {
    fn push(&mut self, value: Option<&str>) {
        let Some(value) = value else {
            self.keys.push(0);
            self.nulls.append_null();
            return;
        };
        let key = match self.index.get(value) {
            Some(&key) => key,
            None => {
                let key = self.values.len() as i32;
                self.values.push(value.into());
                self.index.insert(value.into(), key);
                key
            }
        };
        self.keys.push(key);
        self.nulls.append_non_null();
    }

    fn finish(mut self) -> DictionaryArray<Int32Type> {
        let keys = Int32Array::new(self.keys.into(), self.nulls.finish());
        let values = StringArray::from_iter_values(self.values.iter());
        DictionaryArray::new(keys, Arc::new(values))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seq_is_where_the_schema_puts_it() {
        assert_eq!(schema().index_of("seq").unwrap(), SEQ);
    }
}
