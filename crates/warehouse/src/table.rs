//! A warehouse table under the table contract (`ingesta_core::TableStore`).
//!
//! Beside the user's tables the store keeps, in schema `ingesta`:
//! * `tables (name, version)`: each table's commit counter. A commit locks
//!   its table's row (`FOR UPDATE`) first, so commits of one table are
//!   serialized and a compare-and-set check cannot race;
//! * `positions (table_name, app_id, version)`: how far each input is
//!   committed, written in the same transaction as the rows;
//! * `commits (table_name, version, mode, rows, info, committed_at)`: what
//!   each commit did (`rows_since` refuses ranges holding changes).
//!
//! Each table gets a column `_ingesta_version`: the commit that last wrote
//! the row, which is how `rows_since` finds what is new.
//!
//! A write stages rows with binary `COPY` into a temporary table inside an
//! open transaction on its own connection; the commit applies the mode with
//! set-based statements, records positions and the version, and commits. An
//! append copies straight into the table instead (taking the table's lock
//! when it starts, so it knows its version): its rows are written once. A
//! write dropped before its commit closes its connection, and PostgreSQL
//! rolls it back.

use std::collections::HashMap;

use arrow_array::RecordBatch;
use futures::SinkExt;
use ingesta_core::{CommitReceipt, Error, Moved, Result, TableStore, WriteMode};

use crate::connect::{Conn, Warehouse, classify};
use crate::copy;
use crate::ddl::{self, TableSpec};
use crate::modes::{self, STAGE};
use crate::read;
use crate::types::{PgType, quote};

pub struct WarehouseTable {
    wh: Warehouse,
    name: String,
    /// `"schema"."table"`.
    target: String,
    /// The key in `ingesta.tables` and `ingesta.positions`: `schema.table`.
    id: String,
    /// The user's columns (without `_ingesta_version`), in table order.
    columns: Vec<(String, PgType)>,
    version: i64,
    /// The column sets of its unique indexes, each sorted.
    unique_keys: Vec<Vec<String>>,
    /// Its `NOT NULL` columns without a default.
    required: Vec<String>,
    /// Its columns with a default (serial, identity, `DEFAULT …`).
    defaulted: Vec<String>,
    /// (schema, table), unquoted.
    place: (String, String),
    /// Its time partitions, when it is natively partitioned by the store.
    partition: Option<crate::partitions::TimePartition>,
}

/// Rows staged for one commit: an open transaction holding a temporary table.
pub struct Staged {
    mode: WriteMode,
    conn: Option<Conn>,
    /// The staged columns, typed as the target's.
    columns: Vec<(String, PgType)>,
    rows: u64,
    /// An append copies straight into the table: it takes the table's lock
    /// when it starts and stamps its rows with this version.
    direct: Option<i64>,
    /// The time partitions this write has made sure of.
    partitions: std::collections::BTreeSet<chrono::NaiveDate>,
    /// The `COPY` a table without time partitions keeps open across batches:
    /// the server takes one batch while the next is read and encoded.
    copy: Option<std::pin::Pin<Box<tokio_postgres::CopyInSink<bytes::Bytes>>>>,
    /// A backfill: (column, first, last) of the stored rows the commit deletes.
    replace: Option<(String, String, String)>,
}

impl WarehouseTable {
    /// Opens `spec`'s table, creating it with `schema`'s columns when absent,
    /// adopting it when its columns accept `schema`'s, refusing it otherwise.
    /// What keeps the existing table from taking rows of `schema`, one line
    /// each; empty when it fits or does not exist yet. Nothing is changed.
    pub async fn misfits(wh: &Warehouse, spec: &TableSpec, schema: &arrow_schema::Schema) -> Result<Vec<String>> {
        let conn = wh.connect().await?;
        Ok(match ddl::existing(&conn.client, spec).await? {
            Some((columns, _)) => ddl::differences(&columns, schema),
            None => Vec::new(),
        })
    }

    pub async fn open(wh: &Warehouse, spec: &TableSpec, schema: &arrow_schema::Schema) -> Result<Self> {
        let conn = wh.connect().await?;
        let c = &conn.client;
        let doing = format!("opening warehouse table {}", spec.qualified());
        c.batch_execute("BEGIN").await.map_err(|e| classify(e, &doing))?;
        ddl::ensure_catalog(c).await?;
        let columns = ddl::create_or_adopt(c, spec, schema).await?;
        let unique_keys = ddl::unique_keys(c, spec).await?;
        let required = ddl::not_null(c, spec).await?;
        let partitioned = ddl::partitioned(c, spec).await?;
        let id = spec.qualified();
        c.execute("INSERT INTO ingesta.tables (name, version) VALUES ($1, 0) ON CONFLICT DO NOTHING", &[&id])
            .await
            .map_err(|e| classify(e, &doing))?;
        let row = c
            .query_one("SELECT version FROM ingesta.tables WHERE name = $1", &[&id])
            .await
            .map_err(|e| classify(e, &doing))?;
        c.batch_execute("COMMIT").await.map_err(|e| classify(e, &doing))?;
        let mut t = Self::handle(wh, spec, columns, row.get(0), (unique_keys, required));
        t.partition = spec.partition.clone().filter(|_| partitioned);
        Ok(t)
    }

    fn handle(
        wh: &Warehouse,
        spec: &TableSpec,
        columns: Vec<(String, PgType)>,
        version: i64,
        (unique_keys, (required, defaulted)): (Vec<Vec<String>>, ddl::NotNull),
    ) -> Self {
        Self {
            wh: wh.clone(),
            name: spec.name.clone(),
            target: format!("{}.{}", quote(&spec.schema), quote(&spec.table)),
            id: spec.qualified(),
            columns,
            version,
            unique_keys,
            required,
            defaulted,
            place: (spec.schema.clone(), spec.table.clone()),
            partition: None,
        }
    }

    /// Whether `mode`'s key has a unique index.
    fn unique(&self, mode: &WriteMode) -> bool {
        let key = match mode {
            WriteMode::InsertIfAbsent { key } | WriteMode::Upsert { key, .. } => key,
            _ => return false,
        };
        let mut key = key.clone();
        key.sort();
        self.unique_keys.contains(&key)
    }

    /// Opens `spec`'s table when the store has written it before (`None`
    /// otherwise): how a writer finds its positions before it knows its columns.
    pub async fn open_existing(wh: &Warehouse, spec: &TableSpec) -> Result<Option<Self>> {
        let conn = wh.connect().await?;
        let c = &conn.client;
        let doing = format!("opening warehouse table {}", spec.qualified());
        let known = c
            .query_opt("SELECT 1 FROM pg_tables WHERE schemaname = 'ingesta' AND tablename = 'tables'", &[])
            .await
            .map_err(|e| classify(e, &doing))?;
        if known.is_none() {
            return Ok(None);
        }
        let id = spec.qualified();
        let row = c
            .query_opt("SELECT version FROM ingesta.tables WHERE name = $1", &[&id])
            .await
            .map_err(|e| classify(e, &doing))?;
        let (Some(row), Some((columns, true))) = (row, ddl::existing(c, spec).await?) else {
            return Ok(None);
        };
        let unique_keys = ddl::unique_keys(c, spec).await?;
        let required = ddl::not_null(c, spec).await?;
        let partitioned = ddl::partitioned(c, spec).await?;
        let mut t = Self::handle(wh, spec, ddl::handled(columns), row.get(0), (unique_keys, required));
        t.partition = spec.partition.clone().filter(|_| partitioned);
        Ok(Some(t))
    }

    /// The table's columns as the warehouse holds them.
    pub fn columns(&self) -> &[(String, PgType)] {
        &self.columns
    }

    /// Adds nullable columns (`ALTER TABLE … ADD COLUMN`): old rows read null.
    pub async fn add_columns(&mut self, fields: &[arrow_schema::Field]) -> Result<()> {
        let conn = self.wh.connect().await?;
        let added = ddl::add_columns(&conn.client, &self.target, fields).await?;
        conn.release();
        self.columns.extend(added);
        Ok(())
    }

    /// The table's columns as Arrow reads them.
    pub fn arrow_schema(&self) -> arrow_schema::SchemaRef {
        read::schema(&self.columns)
    }

    /// The columns as rows written to the table must be: [`Self::arrow_schema`]
    /// with the `NOT NULL` columns not nullable, without the columns with a
    /// default that `produced` (the transform's columns) does not have.
    pub fn write_schema(&self, produced: &arrow_schema::Schema) -> arrow_schema::Schema {
        let schema = self.arrow_schema();
        let fields = schema.fields().iter().filter_map(|f| {
            if self.defaulted.contains(f.name()) && produced.field_with_name(f.name()).is_err() {
                return None;
            }
            let required = self.required.contains(f.name());
            Some(f.as_ref().clone().with_nullable(!required))
        });
        arrow_schema::Schema::new(fields.collect::<Vec<_>>())
    }

    /// The version read, the rows the table holds and its size on disk (with indexes).
    pub async fn stats(&self) -> Result<(i64, u64, u64)> {
        let conn = self.wh.connect().await?;
        let sql = format!("SELECT count(*), pg_total_relation_size($1::text::regclass) FROM {}", self.target);
        let row = conn
            .client
            .query_one(&sql, &[&self.target])
            .await
            .map_err(|e| classify(e, &self.doing("counting the rows of")))?;
        let (rows, bytes): (i64, i64) = (row.get(0), row.get(1));
        Ok((self.version, rows as u64, bytes as u64))
    }

    /// The `info` of the newest `limit` commits, newest first.
    pub async fn commit_infos(&self, limit: i64) -> Result<Vec<serde_json::Map<String, serde_json::Value>>> {
        let conn = self.wh.connect().await?;
        let rows = conn
            .client
            .query(
                "SELECT (coalesce(info, '{}'::jsonb) || jsonb_build_object('timestamp', \
                 (extract(epoch FROM committed_at) * 1000)::bigint, 'ingesta.rows', rows::text))::text \
                 FROM ingesta.commits WHERE table_name = $1 ORDER BY version DESC LIMIT $2",
                &[&self.id, &limit],
            )
            .await
            .map_err(|e| classify(e, &self.doing("reading the commits of")))?;
        Ok(rows.into_iter().filter_map(|r| serde_json::from_str(r.get::<_, Option<&str>>(0)?).ok()).collect())
    }

    /// Where the table is: `user@host:port/database schema.table`, no password.
    pub fn location(&self) -> String {
        format!("postgresql://{} {}", self.wh.describe(), self.id)
    }

    /// The inputs with a recorded position whose id starts with `prefix`.
    pub async fn app_ids(&self, prefix: &str) -> Result<Vec<String>> {
        let conn = self.wh.connect().await?;
        let rows = conn
            .client
            .query(
                "SELECT app_id FROM ingesta.positions WHERE table_name = $1 AND starts_with(app_id, $2)",
                &[&self.id, &prefix],
            )
            .await
            .map_err(|e| classify(e, &self.doing("reading the positions of")))?;
        conn.release();
        Ok(rows.into_iter().map(|r| r.get(0)).collect())
    }

    /// Makes `staged` a backfill of `column`'s values `from..=to` (the
    /// stored rows in it are deleted in the transaction writing the new ones).
    pub fn replacing(&self, staged: &mut Staged, column: &str, from: &str, to: &str) -> Result<()> {
        if !self.columns.iter().any(|(n, _)| n == column) {
            return Err(Error::stop(format!("warehouse table `{}` has no column `{column}`", self.name)));
        }
        staged.replace = Some((column.to_string(), from.to_string(), to.to_string()));
        Ok(())
    }

    fn doing(&self, what: &str) -> String {
        format!("{what} warehouse table `{}`", self.name)
    }

    /// Opens the write's transaction, typed after `batch`'s columns: an
    /// append locks the table (its version is the commit's), other modes
    /// make their staging table.
    async fn open_stage(&self, staged: &mut Staged, batch: &RecordBatch) -> Result<()> {
        let mut columns = Vec::new();
        for field in batch.schema().fields() {
            let name = field.name();
            if name == ingesta_core::DELETE_FLAG {
                columns.push((name.clone(), PgType::Bool));
            } else if let Some((_, t)) = self.columns.iter().find(|(n, _)| n == name) {
                columns.push((name.clone(), t.clone()));
            } else {
                return Err(Error::stop(format!(
                    "warehouse table `{}` has no column `{name}` (it has: {})",
                    self.name,
                    self.columns.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>().join(", ")
                )));
            }
        }
        let conn = self.wh.connect().await?;
        let doing = self.doing("staging rows for");
        if staged.mode == WriteMode::Append {
            conn.client.batch_execute("BEGIN").await.map_err(|e| classify(e, &doing))?;
            staged.direct = Some(lock(&conn.client, &self.id, &doing).await? + 1);
        } else {
            let defs: Vec<String> = columns.iter().map(|(n, t)| format!("{} {}", quote(n), t.sql())).collect();
            let sql = format!(
                "BEGIN; CREATE TEMP TABLE ingesta_stage ({}{}{} bigint GENERATED ALWAYS AS IDENTITY) ON COMMIT DROP",
                defs.join(", "),
                if defs.is_empty() { "" } else { ", " },
                modes::ORD
            );
            conn.client.batch_execute(&sql).await.map_err(|e| classify(e, &doing))?;
        }
        staged.conn = Some(conn);
        staged.columns = columns;
        Ok(())
    }
}

impl TableStore for WarehouseTable {
    type Staged = Staged;

    fn name(&self) -> &str {
        &self.name
    }

    fn version(&self) -> i64 {
        self.version
    }

    async fn refresh(&mut self) -> Result<()> {
        let conn = self.wh.connect().await?;
        let row = conn
            .client
            .query_one("SELECT version FROM ingesta.tables WHERE name = $1", &[&self.id])
            .await
            .map_err(|e| classify(e, &self.doing("reading the version of")))?;
        self.version = row.get(0);
        conn.release();
        Ok(())
    }

    async fn position(&self, app_id: &str) -> Result<Option<i64>> {
        let conn = self.wh.connect().await?;
        let row = conn
            .client
            .query_opt(
                "SELECT version FROM ingesta.positions WHERE table_name = $1 AND app_id = $2",
                &[&self.id, &app_id],
            )
            .await
            .map_err(|e| classify(e, &self.doing("reading a position of")))?;
        conn.release();
        Ok(row.map(|r| r.get(0)))
    }

    fn begin(&self, mode: &WriteMode) -> Result<Staged> {
        let partitions = Default::default();
        Ok(Staged {
            mode: mode.clone(),
            conn: None,
            columns: Vec::new(),
            rows: 0,
            direct: None,
            partitions,
            copy: None,
            replace: None,
        })
    }

    async fn stage(&self, staged: &mut Staged, batch: RecordBatch) -> Result<()> {
        if batch.num_rows() == 0 {
            return Ok(());
        }
        if staged.conn.is_none() {
            self.open_stage(staged, &batch).await?;
        }
        if let (Some(p), Some(conn)) = (&self.partition, staged.conn.as_ref()) {
            let place = (self.place.0.as_str(), self.place.1.as_str());
            crate::partitions::ensure(&conn.client, place, p, &batch, &mut staged.partitions).await?;
        }
        let (mut names, mut types): (Vec<String>, Vec<PgType>) = staged.columns.iter().cloned().unzip();
        let mut arrays = copy::columns(&batch, &names, &types)?;
        let into = match staged.direct {
            Some(version) => {
                arrays.push(std::sync::Arc::new(arrow_array::Int64Array::from_value(version, batch.num_rows())));
                names.push(modes::VERSION.to_string());
                types.push(PgType::Int8);
                &self.target
            }
            None => STAGE,
        };
        let conn = staged.conn.as_ref().ok_or_else(|| Error::stop("a staged write lost its connection"))?;
        let list = names.iter().map(|n| quote(n)).collect::<Vec<_>>().join(", ");
        let doing = self.doing("copying rows into");
        if self.partition.is_none() {
            // one COPY for the whole write, fed batch by batch, ended by the commit
            let first = staged.copy.is_none();
            let bytes = copy::encode_rows(&arrays, &types, batch.num_rows(), first)?;
            if first {
                let statement = format!("COPY {into} ({list}) FROM STDIN (FORMAT binary)");
                let sink = conn.client.copy_in::<_, bytes::Bytes>(&statement).await.map_err(|e| classify(e, &doing))?;
                staged.copy = Some(Box::pin(sink));
            }
            let sink = staged.copy.as_mut().expect("opened");
            return sink.send(bytes.freeze()).await.map_err(|e| classify(e, &doing));
        }
        // partitions are made between batches, on the same connection: a COPY per batch
        let bytes = copy::encode(&arrays, &types, batch.num_rows())?;
        let sink = conn
            .client
            .copy_in::<_, bytes::Bytes>(&format!("COPY {into} ({list}) FROM STDIN (FORMAT binary)"))
            .await
            .map_err(|e| classify(e, &doing))?;
        futures::pin_mut!(sink);
        sink.send(bytes.freeze()).await.map_err(|e| classify(e, &doing))?;
        staged.rows += sink.as_mut().finish().await.map_err(|e| classify(e, &doing))?;
        Ok(())
    }

    async fn commit(
        &mut self,
        staged: Staged,
        positions: Vec<(String, i64)>,
        info: Vec<(String, String)>,
    ) -> Result<CommitReceipt> {
        match self.commit_checked(staged, positions, &[], info).await? {
            Ok(receipt) => Ok(receipt),
            Err(moved) => Err(Error::stop(format!("an unchecked commit reported a moved position {moved:?}"))),
        }
    }

    async fn commit_checked(
        &mut self,
        staged: Staged,
        positions: Vec<(String, i64)>,
        expected: &[(String, Option<i64>)],
        info: Vec<(String, String)>,
    ) -> Result<std::result::Result<CommitReceipt, Moved>> {
        let doing = self.doing("committing to");
        let mut staged = staged;
        if let Some(mut sink) = staged.copy.take() {
            let end = bytes::Bytes::from_static(&copy::TRAILER);
            sink.send(end).await.map_err(|e| classify(e, &doing))?;
            staged.rows += sink.as_mut().finish().await.map_err(|e| classify(e, &doing))?;
        }
        let conn = match staged.conn {
            Some(conn) => conn,
            None => {
                let conn = self.wh.connect().await?;
                conn.client.batch_execute("BEGIN").await.map_err(|e| classify(e, &doing))?;
                conn
            }
        };
        let c = &conn.client;
        let err = |e| classify(e, &doing);
        // the fence: one commit of this table at a time, from here to COMMIT
        // (an append holds it since it started copying)
        let current = match staged.direct {
            Some(version) => version - 1,
            None => lock(c, &self.id, &doing).await?,
        };
        if !expected.is_empty() {
            let ids: Vec<&str> = expected.iter().map(|(a, _)| a.as_str()).collect();
            let stored: HashMap<String, i64> = c
                .query(
                    "SELECT app_id, version FROM ingesta.positions WHERE table_name = $1 AND app_id = ANY($2)",
                    &[&self.id, &ids],
                )
                .await
                .map_err(err)?
                .into_iter()
                .map(|r| (r.get(0), r.get(1)))
                .collect();
            for (app_id, want) in expected {
                let have = stored.get(app_id).copied();
                if have != *want {
                    c.batch_execute("ROLLBACK").await.map_err(err)?;
                    return Ok(Err(Moved { app_id: app_id.clone(), expected: *want, stored: have }));
                }
            }
        }
        let version = current + 1;
        if let Some(range) = &staged.replace {
            modes::delete_range(c, &self.target, &self.columns, range, version).await.map_err(err)?;
        }
        let rows = if staged.direct.is_some() {
            staged.rows
        } else if staged.rows > 0 {
            modes::apply(c, &self.target, &staged.columns, &staged.mode, version, self.unique(&staged.mode)).await?
        } else {
            0
        };
        if !positions.is_empty() {
            let (ids, versions): (Vec<String>, Vec<i64>) = positions.into_iter().unzip();
            c.execute(
                "INSERT INTO ingesta.positions (table_name, app_id, version) \
                 SELECT $1, a, v FROM unnest($2::text[], $3::int8[]) AS p(a, v) \
                 ON CONFLICT (table_name, app_id) DO UPDATE SET version = EXCLUDED.version",
                &[&self.id, &ids, &versions],
            )
            .await
            .map_err(err)?;
        }
        let info: serde_json::Map<String, serde_json::Value> =
            info.into_iter().map(|(k, v)| (k, serde_json::Value::String(v))).collect();
        let info = serde_json::Value::Object(info).to_string();
        c.execute("UPDATE ingesta.tables SET version = $2 WHERE name = $1", &[&self.id, &version])
            .await
            .map_err(err)?;
        c.execute(
            "INSERT INTO ingesta.commits (table_name, version, mode, rows, info) VALUES ($1, $2, $3, $4, $5::text::jsonb)",
            &[&self.id, &version, &modes::label(&staged.mode), &(rows as i64), &info],
        )
        .await
        .map_err(err)?;
        c.batch_execute("COMMIT").await.map_err(err)?;
        self.version = version;
        if let Some(p) = self.partition.as_ref().filter(|p| p.retention.is_some()) {
            // after the commit: a failure here loses nothing, the next commit tries again
            match crate::partitions::drop_expired(c, (&self.place.0, &self.place.1), p).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(table = %self.name, dropped = n, "dropped partitions past the retention"),
                Err(e) => tracing::warn!(table = %self.name, error = %e, "cannot drop old partitions; tried again"),
            }
        }
        // committed: the staging table went with the transaction (ON COMMIT DROP)
        conn.release();
        Ok(Ok(CommitReceipt { version, rows }))
    }

    async fn rows_since(&self, after: i64) -> Result<(i64, Vec<RecordBatch>)> {
        self.rows_between(after, self.version).await
    }

    async fn scan(&self) -> Result<Vec<RecordBatch>> {
        let conn = self.wh.connect().await?;
        let sql = format!("SELECT {} FROM {}", read::select_list(&self.columns), self.target);
        read::query(&conn.client, &sql, &[], &self.columns, &self.doing("reading")).await
    }
}

impl WarehouseTable {
    /// The rows appended by versions `after+1..=to` (`to` at most the
    /// version read), and `to`; refused when one of them changed rows.
    pub async fn rows_between(&self, after: i64, to: i64) -> Result<(i64, Vec<RecordBatch>)> {
        let to = to.min(self.version);
        if after >= to {
            return Ok((to, Vec::new()));
        }
        let conn = self.wh.connect().await?;
        let doing = self.doing("reading new rows of");
        let changed = conn
            .client
            .query_opt(
                "SELECT version, mode FROM ingesta.commits WHERE table_name = $1 AND version > $2 AND version <= $3 \
                 AND rows > 0 AND mode NOT IN ('append', 'insert_if_absent') ORDER BY version LIMIT 1",
                &[&self.id, &after, &to],
            )
            .await
            .map_err(|e| classify(e, &doing))?;
        if let Some(row) = changed {
            let (v, mode): (i64, String) = (row.get(0), row.get(1));
            return Err(Error::stop(format!(
                "warehouse table `{}` changed rows in version {v} (a {mode}); only appended rows can be read \
                 incrementally; read the table whole",
                self.name
            )));
        }
        let sql = format!(
            "SELECT {} FROM {} WHERE {v} > $1 AND {v} <= $2",
            read::select_list(&self.columns),
            self.target,
            v = modes::VERSION
        );
        let batches = read::query(&conn.client, &sql, &[&after, &to], &self.columns, &doing).await?;
        Ok((to, batches))
    }

    /// How PostgreSQL partitions the table: `range`, `hypertable`, or not at all.
    pub async fn partitioning(&self) -> Result<Option<&'static str>> {
        let conn = self.wh.connect().await?;
        crate::partitions::kind(&conn.client, (&self.place.0, &self.place.1)).await
    }

    /// What tells this table from an earlier one of the same name (dropped
    /// and created again): PostgreSQL's object id of the table.
    pub async fn identity(&self) -> Result<String> {
        let conn = self.wh.connect().await?;
        let row = conn
            .client
            .query_one("SELECT to_regclass($1)::oid::bigint", &[&self.target])
            .await
            .map_err(|e| classify(e, &self.doing("identifying")))?;
        Ok(format!("pg-{}", row.get::<_, Option<i64>>(0).unwrap_or_default()))
    }
}

/// Locks table `id`'s row of the catalog until the transaction ends; returns its version.
async fn lock(c: &tokio_postgres::Client, id: &str, doing: &str) -> Result<i64> {
    let row = c
        .query_one("SELECT version FROM ingesta.tables WHERE name = $1 FOR UPDATE", &[&id])
        .await
        .map_err(|e| classify(e, doing))?;
    Ok(row.get(0))
}
