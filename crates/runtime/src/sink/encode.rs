//! A row's message value: JSON, or Avro in the Confluent wire format (byte 0,
//! the schema id, the body). The Avro schema is derived from the table's
//! columns (`arrow-avro`), named after the table, and registered under the
//! subject `<topic>-value`; it is registered again when the columns change.

use std::sync::Arc;

use arrow_array::RecordBatch;
use arrow_avro::schema::{AvroSchema, FingerprintStrategy};
use arrow_avro::writer::format::AvroSoeFormat;
use arrow_avro::writer::{EncodedRows, WriterBuilder};
use arrow_schema::{Schema, SchemaRef};
use ingesta_config::{KafkaSink, SchemaRegistry, SinkFormat};
use ingesta_core::Error;
use ingesta_kafka::registry::Registry;

pub(super) struct Encoder {
    sink: String,
    format: SinkFormat,
    subject: String,
    record_name: String,
    registry_cfg: Option<SchemaRegistry>,
    registry: Option<Arc<Registry>>,
    /// The columns the Avro encoder was built for, and the encoder.
    avro: Option<(SchemaRef, arrow_avro::writer::Encoder)>,
}

/// Encoded rows of one batch.
pub(super) enum Rows {
    /// NDJSON text and where each line starts (one more: the end).
    Json(Vec<u8>, Vec<usize>),
    Avro(EncodedRows),
}

impl Rows {
    pub fn len(&self) -> usize {
        match self {
            Rows::Json(_, starts) => starts.len() - 1,
            Rows::Avro(r) => r.len(),
        }
    }

    /// Row `i`'s message value.
    pub fn get(&self, i: usize) -> &[u8] {
        match self {
            Rows::Json(text, starts) => &text[starts[i]..starts[i + 1] - 1],
            Rows::Avro(r) => &r.bytes()[r.offsets()[i]..r.offsets()[i + 1]],
        }
    }
}

impl Encoder {
    pub fn new(sink: &str, cfg: &KafkaSink) -> Self {
        Self {
            sink: sink.to_string(),
            format: cfg.format,
            subject: format!("{}-value", cfg.topic),
            record_name: cfg.input.clone(),
            registry_cfg: cfg.schema_registry.clone(),
            registry: None,
            avro: None,
        }
    }

    /// Makes ready for rows with `columns`: for Avro, registers their schema
    /// when they are new (the registry answers with the id it already has
    /// for a schema it knows).
    pub async fn prepare(&mut self, columns: &SchemaRef) -> Result<(), Error> {
        if self.format != SinkFormat::Avro || self.avro.as_ref().is_some_and(|(s, _)| s == columns) {
            return Ok(());
        }
        let plain = avro_ready(columns, &self.record_name);
        let avro = AvroSchema::try_from(&plain)
            .map_err(|e| Error::stop(format!("sink `{}`: the columns have no Avro form: {e}", self.sink)))?;
        let registry = match &self.registry {
            Some(r) => r.clone(),
            None => {
                let cfg = self.registry_cfg.clone().ok_or_else(|| {
                    Error::stop(format!("sink `{}`: `format: avro` needs `schema_registry`", self.sink))
                })?;
                let r = blocking(move || Registry::new(&cfg)).await?.map_err(|e| self.registry_error(e))?;
                self.registry.insert(Arc::new(r)).clone()
            }
        };
        let (subject, json) = (self.subject.clone(), avro.json_string.clone());
        let id = blocking(move || registry.register(&subject, &json)).await?.map_err(|e| self.registry_error(e))?;
        let encoder = WriterBuilder::new(plain)
            .with_fingerprint_strategy(FingerprintStrategy::Id(id))
            .build_encoder::<AvroSoeFormat>()
            .map_err(|e| Error::stop(format!("sink `{}`: Avro encoder: {e}", self.sink)))?;
        self.avro = Some((columns.clone(), encoder));
        Ok(())
    }

    /// The message values of `batch`'s rows, in order.
    pub fn encode(&mut self, batch: &RecordBatch) -> Result<Rows, Error> {
        let bad = |e: String| Error::stop(format!("sink `{}`: rows to {:?}: {e}", self.sink, self.format));
        match (self.format, &mut self.avro) {
            (SinkFormat::Avro, Some((columns, encoder))) if columns == &batch.schema() => {
                let plain =
                    RecordBatch::try_new(encoder.schema(), batch.columns().to_vec()).map_err(|e| bad(e.to_string()))?;
                encoder.encode(&plain).map_err(|e| bad(e.to_string()))?;
                Ok(Rows::Avro(encoder.flush()))
            }
            (SinkFormat::Avro, _) => Err(Error::stop(format!("sink `{}`: rows encoded before `prepare`", self.sink))),
            (SinkFormat::Json, _) => {
                let mut w = arrow_json::LineDelimitedWriter::new(Vec::new());
                w.write(batch).map_err(|e| bad(e.to_string()))?;
                w.finish().map_err(|e| bad(e.to_string()))?;
                let text = w.into_inner();
                let mut starts = Vec::with_capacity(batch.num_rows() + 1);
                starts.push(0);
                starts.extend(line_starts(&text));
                Ok(Rows::Json(text, starts))
            }
        }
    }

    fn registry_error(&self, e: ingesta_kafka::KafkaError) -> Error {
        let e = Error::from(e);
        e.context(&format!("sink `{}`", self.sink))
    }
}

/// Where each line after the first starts (just past each newline).
fn line_starts(text: &[u8]) -> impl Iterator<Item = usize> + '_ {
    text.iter().enumerate().filter(|(_, b)| **b == b'\n').map(|(i, _)| i + 1)
}

/// The columns without their metadata (the lake's field ids and comments
/// would otherwise land in the Avro schema), the record named after the table.
fn avro_ready(columns: &Schema, table: &str) -> Schema {
    let fields: Vec<_> =
        columns.fields().iter().map(|f| f.as_ref().clone().with_metadata(Default::default())).collect();
    let meta = [("avro.name".to_string(), table.to_string()), ("avro.namespace".to_string(), "ingesta".to_string())];
    Schema::new(fields).with_metadata(meta.into_iter().collect())
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Result<T, Error> {
    tokio::task::spawn_blocking(f).await.map_err(|e| Error::stop(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_array::{Int64Array, StringArray};
    use arrow_schema::{DataType, Field};

    fn batch() -> RecordBatch {
        let schema = Arc::new(Schema::new(vec![
            Field::new("id", DataType::Int64, false),
            Field::new("name", DataType::Utf8, true),
        ]));
        RecordBatch::try_new(
            schema,
            vec![Arc::new(Int64Array::from(vec![1, 2])), Arc::new(StringArray::from(vec![Some("a"), None]))],
        )
        .unwrap()
    }

    fn sink(format: SinkFormat) -> KafkaSink {
        KafkaSink {
            input: "t".into(),
            brokers: "k:9092".into(),
            topic: "out".into(),
            key: vec![],
            format,
            schema_registry: None,
            properties: Default::default(),
        }
    }

    #[test]
    fn json_rows_are_one_object_each_without_the_newline() {
        let mut e = Encoder::new("s", &sink(SinkFormat::Json));
        let rows = e.encode(&batch()).unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!(rows.get(0), br#"{"id":1,"name":"a"}"#);
        assert_eq!(rows.get(1), br#"{"id":2}"#);
    }

    #[test]
    fn avro_rows_carry_the_schema_id_and_decode_with_the_registered_schema() {
        let b = batch();
        let plain = avro_ready(&b.schema(), "t");
        let json = AvroSchema::try_from(&plain).unwrap().json_string;
        let mut e = Encoder::new("s", &sink(SinkFormat::Avro));
        let encoder = WriterBuilder::new(plain)
            .with_fingerprint_strategy(FingerprintStrategy::Id(7))
            .build_encoder::<AvroSoeFormat>();
        e.avro = Some((b.schema(), encoder.unwrap()));
        let rows = e.encode(&b).unwrap();
        assert_eq!(rows.len(), 2);
        let schema = apache_avro::Schema::parse_str(&json).unwrap();
        assert_eq!(&rows.get(1)[..5], &[0, 0, 0, 0, 7], "Confluent wire format, schema id 7");
        let v = apache_avro::from_avro_datum(&schema, &mut &rows.get(1)[5..], None).unwrap();
        use apache_avro::types::Value;
        assert_eq!(
            v,
            Value::Record(vec![("id".into(), Value::Long(2)), ("name".into(), Value::Union(0, Box::new(Value::Null)))])
        );
    }
}
