//! Each format read from a real landing folder: typing, positions, quarantine.

use std::io::Write;

use arrow_array::cast::AsArray;
use arrow_array::types::{Int32Type, TimestampMicrosecondType};
use arrow_array::{Array, RecordBatch};
use ingesta_config::{Column, ColumnType};
use ingesta_core::Reason;
use ingesta_sources::decode::{Chunk, ReadCtx};
use ingesta_sources::schema::RecordSchema;
use ingesta_sources::{FileInfo, Landing};

fn landing(dir: &std::path::Path, extra: &str) -> Landing {
    landing_at(&dir.display().to_string(), extra)
}

fn landing_at(path: &str, extra: &str) -> Landing {
    let yaml = format!("path: {path}\nsettle: 0ms\n{extra}");
    let cfg: ingesta_config::Landing = serde_yaml::from_str(&yaml).unwrap();
    Landing::new("src", &cfg).unwrap()
}

fn schema() -> RecordSchema {
    RecordSchema::from_columns(&[
        Column { name: "id".into(), ty: ColumnType::String, required: true },
        Column { name: "ts".into(), ty: ColumnType::Timestamp, required: true },
        Column { name: "qty".into(), ty: ColumnType::Int, required: false },
    ])
}

/// Reads one file to its end; the last chunk must say `done`.
fn read_chunks(l: &Landing, f: &FileInfo, ctx: &ReadCtx) -> Vec<Chunk> {
    let mut chunks: Vec<Chunk> = Vec::new();
    l.read(f, ctx, &mut |c| {
        chunks.push(c);
        Ok(())
    })
    .unwrap()
    .unwrap();
    assert!(chunks.last().unwrap().done, "the last chunk of {} says done", f.key.path);
    chunks
}

/// Reads the one file in `dir` with `schema()` from its start, 1 MiB records at most.
fn read_only_file(dir: &std::path::Path, chunk_rows: usize) -> Vec<Chunk> {
    let l = landing(dir, "");
    let s = schema();
    let file = &l.scan(None).unwrap().ready[0];
    let ctx = ReadCtx {
        source: &file.key.path,
        schema: &s,
        skip_until: 0,
        quarantined_until: 0,
        chunk_rows,
        max_record_bytes: 1 << 20,
    };
    read_chunks(&l, file, &ctx)
}

/// Reads every ready file; returns good rows, their positions, quarantined records.
fn read_all(
    l: &Landing,
    schema: &RecordSchema,
    skip_until: i64,
) -> (Vec<RecordBatch>, Vec<i64>, Vec<ingesta_core::QuarantineRecord>) {
    let scan = l.scan(None).unwrap();
    let (mut rows, mut positions, mut bad) = (Vec::new(), Vec::new(), Vec::new());
    for f in &scan.ready {
        let ctx = ReadCtx {
            source: &f.key.path,
            schema,
            skip_until,
            quarantined_until: skip_until,
            chunk_rows: 2,
            max_record_bytes: 1 << 20,
        };
        for c in read_chunks(l, f, &ctx) {
            rows.push(c.rows);
            positions.extend(c.positions);
            bad.extend(c.quarantine);
        }
    }
    (rows, positions, bad)
}

fn total(rows: &[RecordBatch]) -> usize {
    rows.iter().map(RecordBatch::num_rows).sum()
}

#[test]
fn csv_with_quotes_other_delimiters_and_wrong_field_counts() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("a.csv"),
        "qty;id;ts\n1;\"a;1\";2026-11-01 10:00:00\n2;b\n3;c;2026-11-01T10:00:01Z\nx;d;2026-11-01T10:00:02Z\n",
    )
    .unwrap();
    let l = landing(dir.path(), "csv: {delimiter: \";\"}");
    let (rows, positions, bad) = read_all(&l, &schema(), 0);
    assert_eq!(total(&rows), 2);
    assert_eq!(positions, vec![1, 3]);
    let ids: Vec<&str> =
        rows.iter().flat_map(|b| b.column(0).as_string::<i32>().iter().flatten().collect::<Vec<_>>()).collect();
    assert_eq!(ids, ["a;1", "c"], "columns are matched by header name, quotes honoured");
    assert_eq!(bad.len(), 2);
    assert_eq!((bad[0].position, bad[0].reason), (2, Reason::Parse));
    assert!(bad[0].error.contains("expected 3 fields, found 2"));
    assert_eq!((bad[1].position, bad[1].reason), (4, Reason::Type));
    assert!(bad[1].error.contains("column `qty`: cannot read `x` as int"), "{}", bad[1].error);
    assert_eq!(String::from_utf8_lossy(&bad[1].raw), "x;d;2026-11-01T10:00:02Z");
}

#[test]
fn csv_doubled_quotes_line_breaks_in_quotes_crlf_blank_lines_and_a_bom() {
    let dir = tempfile::tempdir().unwrap();
    let text = "\u{feff}id,ts,qty\r\n\"say \"\"hi\"\"\",2026-11-01T10:00:00Z,1\r\n\r\n\"two\nlines\",2026-11-01T10:00:01Z,\"2\"\r\n\
                \"x,y\",2026-11-01T10:00:02Z\r\né,2026-11-01T10:00:03Z,4";
    std::fs::write(dir.path().join("a.csv"), text).unwrap();
    let (rows, positions, bad) = read_all(&landing(dir.path(), ""), &schema(), 0);
    let ids: Vec<&str> =
        rows.iter().flat_map(|b| b.column(0).as_string::<i32>().iter().flatten().collect::<Vec<_>>()).collect();
    assert_eq!(ids, ["say \"hi\"", "two\nlines", "é"], "quotes unescaped, the BOM not part of `id`");
    let qty: Vec<i32> = rows.iter().flat_map(|b| b.column(2).as_primitive::<Int32Type>().values().to_vec()).collect();
    assert_eq!(qty, [1, 2, 4]);
    assert_eq!(positions, [1, 2, 4], "a blank line is not a record; the last needs no line end");
    assert_eq!(bad.len(), 1);
    assert_eq!((bad[0].position, bad[0].reason), (3, Reason::Parse));
    assert!(bad[0].error.contains("expected 3 fields, found 2"), "{}", bad[0].error);
    assert_eq!(String::from_utf8_lossy(&bad[0].raw), "\"x,y\",2026-11-01T10:00:02Z", "kept as written");
}

#[test]
fn csv_invalid_utf8_quarantines_only_its_record() {
    let dir = tempfile::tempdir().unwrap();
    let mut text =
        b"id,ts,qty\n\"caf\xc3\xa9 \"\"1\"\"\",2026-11-01T10:00:00Z,1\nx\xff\xfe,2026-11-01T10:00:01Z,2\n".to_vec();
    text.extend_from_slice("ü,2026-11-01T10:00:02Z,3\n".as_bytes());
    std::fs::write(dir.path().join("a.csv"), text).unwrap();
    let (rows, positions, bad) = read_all(&landing(dir.path(), ""), &schema(), 0);
    let ids: Vec<&str> =
        rows.iter().flat_map(|b| b.column(0).as_string::<i32>().iter().flatten().collect::<Vec<_>>()).collect();
    assert_eq!(ids, ["café \"1\"", "ü"]);
    assert_eq!(positions, [1, 3]);
    assert_eq!(bad.len(), 1);
    assert_eq!((bad[0].position, bad[0].reason), (2, Reason::Parse));
    assert!(bad[0].error.contains("invalid UTF-8 at byte 1 of the record"), "{}", bad[0].error);
    assert_eq!(bad[0].raw, b"x\xff\xfe,2026-11-01T10:00:01Z,2");
}

/// CSV parses doubles, ints, bigints and timestamps straight from its fields;
/// they must type exactly as the same values in NDJSON (which go through text).
#[test]
fn csv_fields_parsed_in_place_type_and_fail_like_ndjson_text() {
    let s = RecordSchema::from_columns(&[
        Column { name: "id".into(), ty: ColumnType::String, required: true },
        Column { name: "ts".into(), ty: ColumnType::Timestamp, required: false },
        Column { name: "t".into(), ty: ColumnType::Double, required: false },
        Column { name: "n".into(), ty: ColumnType::Int, required: false },
        Column { name: "big".into(), ty: ColumnType::Bigint, required: false },
        Column { name: "absent".into(), ty: ColumnType::Double, required: false },
        Column { name: "day".into(), ty: ColumnType::Date, required: false },
    ]);
    // (id, ts, t, n, big, day): blanks, quoted numbers, shapes for arrow's parsers, bad values
    let rows = [
        ("a", "2026-11-01T10:00:00Z", "12.5", "1", "9000000000", "2026-11-01"),
        ("b", "  ", "", " ", "", ""),
        ("c", "2026-11-01T11:00:00+01:00", "1e3", "-7", "-1", "2026-11-02"),
        ("d", "2026-11-01 10:00:00.1234567", "-0.078", "+3", "42", "2026-11-03"),
        ("e", "yesterday", "1.5", "2", "3", "2026-11-04"),
        ("f", "2026-11-01T10:00:00Z", "N/A", "2", "3", "2026-11-05"),
        ("g", "2026-11-01T10:00:00Z", "1.5", "2.5", "3", "2026-11-06"),
        ("h", "2026-11-01T10:00:00Z", "1.5", "2", "x", "2026-11-07"),
        ("i", "2026-11-01T10:00:00Z", "1.5", "2", "3", "2026-13-01"),
        ("j", "2026-11-01T10:00:00Z", "\"7.25\"", "\"8\"", "3", "2026-11-08"),
    ];
    let dir = tempfile::tempdir().unwrap();
    let mut csv = String::from("extra,day,big,n,t,ts,id\n");
    let mut ndjson = String::new();
    for (id, ts, t, n, big, day) in rows {
        csv.push_str(&format!("z,{day},{big},{n},{t},{ts},{id}\n"));
        let unquoted = |v: &str| v.trim_matches('"').to_string();
        let field =
            |k: &str, v: &str| if v.is_empty() { String::new() } else { format!(",\"{k}\":\"{}\"", unquoted(v)) };
        ndjson.push_str(&format!(
            "{{\"id\":\"{id}\"{}{}{}{}{}}}\n",
            field("ts", ts),
            field("t", t),
            field("n", n),
            field("big", big),
            field("day", day)
        ));
    }
    std::fs::write(dir.path().join("a.csv"), csv).unwrap();
    std::fs::write(dir.path().join("a.ndjson"), ndjson).unwrap();
    let l = landing(dir.path(), "");
    let scan = l.scan(None).unwrap();
    let mut seen = Vec::new();
    for f in &scan.ready {
        let ctx = ReadCtx {
            source: &f.key.path,
            schema: &s,
            skip_until: 0,
            quarantined_until: 0,
            chunk_rows: 4,
            max_record_bytes: 1 << 20,
        };
        let chunks = read_chunks(&l, f, &ctx);
        let rows: Vec<RecordBatch> = chunks.iter().map(|c| c.rows.clone()).collect();
        let all = arrow_select::concat::concat_batches(&s.schema, &rows).unwrap();
        let bad: Vec<(i64, Reason, String)> =
            chunks.iter().flat_map(|c| c.quarantine.iter().map(|q| (q.position, q.reason, q.error.clone()))).collect();
        seen.push((f.key.path.clone(), all, bad));
    }
    let (csv_rows, csv_bad) = (&seen[0].1, &seen[0].2);
    let errors: Vec<(i64, &str)> = csv_bad.iter().map(|(p, _, e)| (*p, e.as_str())).collect();
    assert_eq!(
        errors,
        [
            (5, "column `ts`: cannot read `yesterday` as timestamp (ISO-8601, e.g. 2026-11-01T08:30:00Z)"),
            (6, "column `t`: cannot read `N/A` as double"),
            (7, "column `n`: cannot read `2.5` as int"),
            (8, "column `big`: cannot read `x` as bigint"),
            (9, "column `day`: cannot read `2026-13-01` as date (YYYY-MM-DD)"),
        ]
    );
    assert!(csv_bad.iter().all(|b| b.1 == Reason::Type));
    let ids: Vec<&str> = csv_rows.column(0).as_string::<i32>().iter().flatten().collect();
    assert_eq!(ids, ["a", "b", "c", "d", "j"]);
    let t = csv_rows.column(2).as_primitive::<arrow_array::types::Float64Type>();
    assert_eq!(t.iter().collect::<Vec<_>>(), [Some(12.5), None, Some(1000.0), Some(-0.078), Some(7.25)]);
    assert_eq!(
        csv_rows.column(1).as_primitive::<TimestampMicrosecondType>().value(2),
        1_793_527_200_000_000,
        "+01:00 read by arrow"
    );
    assert!(csv_rows.column(1).is_null(1) && csv_rows.column(3).is_null(1), "blank fields are no value");
    assert_eq!(csv_rows.column(5).null_count(), 5, "a column the file lacks is null");
    assert_eq!(seen[1].0, "a.ndjson");
    assert_eq!(&seen[1].1, csv_rows, "NDJSON types the same values the same way");
    assert_eq!(&seen[1].2, csv_bad);
}

#[test]
fn ndjson_compressed_with_zstd_and_resumed_from_a_position() {
    let dir = tempfile::tempdir().unwrap();
    let text: String =
        (1..=5).map(|i| format!("{{\"id\":\"r{i}\",\"ts\":\"2026-11-01T00:00:0{i}Z\",\"qty\":\"{i}\"}}\n")).collect();
    let z = zstd_bytes(text.as_bytes());
    std::fs::write(dir.path().join("a.ndjson.zst"), z).unwrap();
    let l = landing(dir.path(), "");
    let (rows, positions, bad) = read_all(&l, &schema(), 2);
    assert!(bad.is_empty());
    assert_eq!(positions, vec![3, 4, 5], "records up to the committed position are skipped");
    let qty: Vec<i32> = rows.iter().flat_map(|b| b.column(2).as_primitive::<Int32Type>().values().to_vec()).collect();
    assert_eq!(qty, [3, 4, 5], "numbers written as strings are converted");
}

fn zstd_bytes(b: &[u8]) -> Vec<u8> {
    let mut e = zstd::stream::write::Encoder::new(Vec::new(), 1).unwrap();
    e.write_all(b).unwrap();
    e.finish().unwrap()
}

#[test]
fn json_documents_are_exploded_with_parent_values() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("w.json"),
        r#"{"station": "ws-1", "observations": [{"ts": "2026-11-01T00:00:00Z", "temp_c": 1.5}, {"ts": "bad", "temp_c": 2}]}"#,
    )
    .unwrap();
    let l = landing(dir.path(), "format: json\nexplode: observations");
    let s = RecordSchema::from_columns(&[
        Column { name: "station".into(), ty: ColumnType::String, required: true },
        Column { name: "ts".into(), ty: ColumnType::Timestamp, required: true },
        Column { name: "temp_c".into(), ty: ColumnType::Double, required: false },
    ]);
    let (rows, positions, bad) = read_all(&l, &s, 0);
    assert_eq!(positions, vec![1]);
    assert_eq!(rows.iter().find(|b| b.num_rows() > 0).unwrap().column(0).as_string::<i32>().value(0), "ws-1");
    assert_eq!(bad.len(), 1);
    assert_eq!(bad[0].position, 2);
    assert!(String::from_utf8_lossy(&bad[0].raw).contains("\"station\":\"ws-1\""));
}

#[test]
fn parquet_keeps_its_types_and_avro_timestamps_arrive_as_timestamps() {
    use std::sync::Arc;

    use arrow_array::{Int64Array, StringArray, TimestampMillisecondArray};
    use arrow_schema::{DataType, Field, Schema, TimeUnit};

    let dir = tempfile::tempdir().unwrap();
    // Parquet with a millisecond timestamp and a bigint quantity
    let ps = Arc::new(Schema::new(vec![
        Field::new("id", DataType::Utf8, false),
        Field::new("ts", DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into())), false),
        Field::new("qty", DataType::Int64, false),
    ]));
    let batch = RecordBatch::try_new(
        ps.clone(),
        vec![
            Arc::new(StringArray::from(vec!["p1", "p2"])),
            Arc::new(TimestampMillisecondArray::from(vec![1_793_491_200_000, 1_793_491_200_001]).with_timezone("UTC")),
            Arc::new(Int64Array::from(vec![7, 5_000_000_000])),
        ],
    )
    .unwrap();
    let mut w =
        parquet::arrow::ArrowWriter::try_new(std::fs::File::create(dir.path().join("a.parquet")).unwrap(), ps, None)
            .unwrap();
    w.write(&batch).unwrap();
    w.close().unwrap();

    // Avro container file with timestamp-millis
    let avro_schema = apache_avro::Schema::parse_str(
        r#"{"type":"record","name":"sale","fields":[{"name":"id","type":"string"},{"name":"ts","type":{"type":"long","logicalType":"timestamp-millis"}},{"name":"qty","type":"int"}]}"#,
    )
    .unwrap();
    let mut aw = apache_avro::Writer::new(&avro_schema, Vec::new());
    let mut rec = apache_avro::types::Record::new(&avro_schema).unwrap();
    rec.put("id", "a1");
    rec.put("ts", apache_avro::types::Value::TimestampMillis(1_793_491_200_000));
    rec.put("qty", 3);
    aw.append(rec).unwrap();
    std::fs::write(dir.path().join("b.avro"), aw.into_inner().unwrap()).unwrap();

    let l = landing(dir.path(), "");
    let (rows, positions, bad) = read_all(&l, &schema(), 0);
    assert_eq!(positions, vec![1, 1], "row 1 of each file");
    assert_eq!(bad.len(), 1, "5e9 does not fit an int: {bad:?}");
    assert_eq!(bad[0].reason, Reason::Type);
    assert!(String::from_utf8_lossy(&bad[0].raw).contains("\"id\":\"p2\""), "a bad Parquet row is kept as JSON");
    let ts: Vec<i64> =
        rows.iter().flat_map(|b| b.column(1).as_primitive::<TimestampMicrosecondType>().values().to_vec()).collect();
    assert_eq!(ts, [1_793_491_200_000_000, 1_793_491_200_000_000]);
}

#[test]
fn columns_are_inferred_from_a_sample() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("a.csv"),
        "id,ts,qty,price\na,2026-11-01T00:00:00Z,1,2.5\nb,2026-11-01T00:00:01Z,2,3\n",
    )
    .unwrap();
    let l = landing(dir.path(), "");
    let file = &l.scan(None).unwrap().ready[0];
    let s = l.infer(file).unwrap().schema;
    let got: Vec<String> = s.fields().iter().map(|f| format!("{} {}", f.name(), f.data_type())).collect();
    assert_eq!(got, ["id Utf8", "ts Timestamp(µs, \"UTC\")", "qty Int64", "price Float64"]);
    assert!(s.fields().iter().all(|f| f.is_nullable()), "inferred columns are never required");
}

#[test]
fn a_line_longer_than_a_read_block_is_quarantined_once_and_positions_stay_right() {
    let dir = tempfile::tempdir().unwrap();
    let good = |i: i64| format!("{{\"id\":\"r{i}\",\"ts\":\"2026-11-01T00:00:00Z\"}}\n");
    let huge = format!("{{\"id\":\"{}\"}}\n", "x".repeat(9 << 20)); // more than one 8 MiB block
    std::fs::write(dir.path().join("a.ndjson"), format!("{}{huge}{}\n{}", good(1), good(3), good(5))).unwrap();
    let chunks = read_only_file(dir.path(), 100);
    let positions: Vec<i64> = chunks.iter().flat_map(|c| c.positions.clone()).collect();
    let bad: Vec<_> = chunks.iter().flat_map(|c| c.quarantine.clone()).collect();
    assert_eq!(positions, vec![1, 3, 5], "the blank line 4 is no record");
    assert_eq!(bad.len(), 1);
    assert_eq!((bad[0].position, bad[0].reason), (2, Reason::TooLarge));
    assert_eq!(bad[0].raw.len(), 1 << 20, "the first max_record_bytes are kept");
}

#[test]
fn bad_lines_among_thousands_are_found_and_every_good_line_keeps_its_value_and_position() {
    // more lines than arrow-json decodes at a time (1,024): batches are joined
    // in order, and a bad line anywhere sends only itself to quarantine
    let dir = tempfile::tempdir().unwrap();
    let bad = [(700, "{\"id\":\"r700\",\"ts\":"), (1025, "{\"id\":\"a\"} {\"id\":\"b\"}"), (2500, "not json")];
    let mut text = String::new();
    for i in 1..=3000 {
        match bad.iter().find(|(at, _)| *at == i) {
            Some((_, line)) => text.push_str(line),
            None => text.push_str(&format!("{{\"id\":\"r{i}\",\"ts\":\"2026-11-01T00:00:00Z\",\"qty\":{i}}}")),
        }
        text.push('\n');
    }
    std::fs::write(dir.path().join("a.ndjson"), text).unwrap();
    let chunks = read_only_file(dir.path(), 100_000);
    let positions: Vec<i64> = chunks.iter().flat_map(|c| c.positions.clone()).collect();
    let expected: Vec<i64> = (1..=3000).filter(|i| bad.iter().all(|(at, _)| at != i)).collect();
    assert_eq!(positions, expected);
    let quarantined: Vec<i64> = chunks.iter().flat_map(|c| c.quarantine.iter().map(|q| q.position)).collect();
    assert_eq!(quarantined, [700, 1025, 2500]);
    let errors: Vec<String> = chunks.iter().flat_map(|c| c.quarantine.iter().map(|q| q.error.clone())).collect();
    assert!(errors[1].contains("found 2"), "{}", errors[1]);
    // each kept row is its own line's values
    for c in &chunks {
        let ids = c.rows.column(0).as_string::<i32>();
        let qty = c.rows.column(2).as_primitive::<Int32Type>();
        for (row, p) in c.positions.iter().enumerate() {
            assert_eq!((ids.value(row), qty.value(row) as i64), (format!("r{p}").as_str(), *p));
        }
    }
}

#[test]
fn values_that_do_not_type_at_part_and_chunk_edges_go_to_quarantine_alone() {
    // readers type a few thousand rows at a time (arrow-json's 1,024-line
    // batches, CSV's 4,096-row parts) and join them into chunks of at most
    // `chunk_rows` (here not a multiple of either): bad values on both sides
    // of every edge send only their own rows to quarantine
    let bad_qty = [1, 1024, 1025, 4096, 4097, 5000, 5001, 8192, 9000];
    let no_ts = [2, 2048, 4098, 8193];
    for format in ["csv", "ndjson"] {
        let dir = tempfile::tempdir().unwrap();
        let mut text = if format == "csv" { String::from("id,ts,qty\n") } else { String::new() };
        for i in 1..=9000 {
            let ts = if no_ts.contains(&i) { "" } else { "2026-11-01T00:00:00Z" };
            let qty = if bad_qty.contains(&i) { "n/a".to_string() } else { i.to_string() };
            let line = match format {
                "csv" => format!("r{i},{ts},{qty}\n"),
                _ if ts.is_empty() => format!("{{\"id\":\"r{i}\",\"qty\":\"{qty}\"}}\n"),
                _ => format!("{{\"id\":\"r{i}\",\"ts\":\"{ts}\",\"qty\":\"{qty}\"}}\n"),
            };
            text.push_str(&line);
        }
        std::fs::write(dir.path().join(format!("a.{format}")), text).unwrap();
        let chunks = read_only_file(dir.path(), 5000);
        assert!(chunks.iter().all(|c| c.rows.num_rows() <= 5000), "{format}: a chunk holds at most chunk_rows");
        let positions: Vec<i64> = chunks.iter().flat_map(|c| c.positions.clone()).collect();
        let expected: Vec<i64> = (1..=9000).filter(|i| !bad_qty.contains(i) && !no_ts.contains(i)).collect();
        assert_eq!(positions, expected, "{format}");
        let mut quarantined: Vec<(i64, Reason)> =
            chunks.iter().flat_map(|c| c.quarantine.iter().map(|q| (q.position, q.reason))).collect();
        quarantined.sort_by_key(|q| q.0);
        let mut want: Vec<(i64, Reason)> = bad_qty.iter().map(|&i| (i, Reason::Type)).collect();
        want.extend(no_ts.iter().map(|&i| (i, Reason::Missing)));
        want.sort_by_key(|q| q.0);
        assert_eq!(quarantined, want, "{format}");
        for c in &chunks {
            assert_eq!(c.rows.num_rows(), c.positions.len());
            let ids = c.rows.column(0).as_string::<i32>();
            let qty = c.rows.column(2).as_primitive::<Int32Type>();
            for (row, p) in c.positions.iter().enumerate() {
                assert_eq!((ids.value(row), qty.value(row) as i64), (format!("r{p}").as_str(), *p), "{format}");
            }
            for q in &c.quarantine {
                let raw = String::from_utf8_lossy(&q.raw);
                assert!(
                    raw.contains(&format!("r{},", q.position)) || raw.contains(&format!("\"r{}\"", q.position)),
                    "{raw}"
                );
            }
        }
    }
}

#[test]
fn an_object_store_prefix_is_listed_and_streamed_like_a_folder() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("sub")).unwrap();
    let text: String = (1..=3).map(|i| format!("{{\"id\":\"r{i}\",\"ts\":\"2026-11-01T00:00:0{i}Z\"}}\n")).collect();
    std::fs::write(dir.path().join("a.ndjson"), &text).unwrap();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(text.as_bytes()).unwrap();
    std::fs::write(dir.path().join("sub/b.ndjson.gz"), gz.finish().unwrap()).unwrap();
    std::fs::write(dir.path().join("_manifest.json"), "{}").unwrap();

    let rt = tokio::runtime::Runtime::new().unwrap();
    let _inside = rt.enter();
    let url = format!("file://{}", dir.path().display());
    let l = landing_at(&url, "");
    let scan = l.scan(None).unwrap();
    let names: Vec<&str> = scan.ready.iter().map(|f| f.key.path.as_str()).collect();
    assert_eq!(names, ["a.ndjson", "sub/b.ndjson.gz"], "`_` files are skipped, folders crossed");
    assert!(scan.ready.iter().all(|f| f.object.is_some() && f.key.mtime_ms > 0));
    let (rows, positions, bad) = read_all(&l, &schema(), 0);
    assert!(bad.is_empty(), "{bad:?}");
    assert_eq!(total(&rows), 6);
    assert_eq!(positions, vec![1, 2, 3, 1, 2, 3]);
}

#[test]
fn an_object_store_url_without_its_feature_says_how_to_get_it() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let _inside = rt.enter();
    let cfg: ingesta_config::Landing = serde_yaml::from_str("path: s3://bucket/landing").unwrap();
    match Landing::new("src", &cfg) {
        Err(e) if !cfg!(feature = "cloud") => assert!(e.to_string().contains("--features cloud"), "{e}"),
        Err(e) => panic!("{e}"),
        Ok(_) => {}
    }
}
