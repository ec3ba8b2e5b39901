//! Each write mode as set-based statements from the staging table (the rows
//! a write staged, numbered in arrival order by `_ingesta_ord`) into the
//! target, inside the commit's transaction. Commits of one table are
//! serialized by the lock on its row of `ingesta.tables`, so keyed modes
//! need no unique constraint to be exact (a declared key gets one anyway,
//! for speed). Keys match with `=`: a NULL key matches nothing.

use ingesta_core::{Measure, Result, WriteMode};

use crate::connect::classify;
use crate::types::{PgType, quote};

pub const STAGE: &str = "pg_temp.ingesta_stage";
pub const ORD: &str = "_ingesta_ord";
pub const VERSION: &str = "_ingesta_version";

/// The short name a commit records for its mode (`ingesta.commits.mode`).
pub fn label(mode: &WriteMode) -> &'static str {
    match mode {
        WriteMode::Append => "append",
        WriteMode::InsertIfAbsent { .. } => "insert_if_absent",
        WriteMode::Upsert { .. } => "upsert",
        WriteMode::Delete { .. } => "delete",
        WriteMode::CounterMerge { .. } => "counter_merge",
        WriteMode::History { .. } => "scd2",
    }
}

/// Applies the staged rows of `columns` (a subset of the target's, typed)
/// to `target` in `mode`, stamping changed rows with `version`; returns the
/// number of rows written or deleted. `unique`: the mode's key has a unique
/// index, so inserts of keys that may exist go through `ON CONFLICT` (one
/// index probe per row) instead of an anti-join with the whole table.
pub async fn apply(
    client: &tokio_postgres::Client,
    target: &str,
    columns: &[(String, PgType)],
    mode: &WriteMode,
    version: i64,
    unique: bool,
) -> Result<u64> {
    // the delete flag is staged beside the rows, never stored
    let stored = columns.iter().filter(|(n, _)| n != ingesta_core::DELETE_FLAG);
    let names: Vec<String> = stored.map(|(n, _)| quote(n)).collect();
    let list = names.join(", ");
    let on = |key: &[String], l: &str, r: &str| {
        key.iter().map(|k| format!("{l}.{k} = {r}.{k}", k = quote(k))).collect::<Vec<_>>().join(" AND ")
    };
    let keys = |key: &[String]| key.iter().map(|k| quote(k)).collect::<Vec<_>>().join(", ");
    let insert_from = |source: &str, filter: &str| {
        format!("INSERT INTO {target} ({list}, {VERSION}) SELECT {list}, {version} FROM {source} s {filter}")
    };
    let statements: Vec<String> = match mode {
        WriteMode::Append => vec![insert_from(STAGE, &format!("ORDER BY s.{ORD}"))],
        WriteMode::InsertIfAbsent { key } => {
            let first = format!("(SELECT DISTINCT ON ({k}) * FROM {STAGE} ORDER BY {k}, {ORD})", k = keys(key));
            let absent = match unique {
                true => format!("ON CONFLICT ({}) DO NOTHING", keys(key)),
                false => format!("WHERE NOT EXISTS (SELECT 1 FROM {target} t WHERE {})", on(key, "t", "s")),
            };
            vec![insert_from(&first, &absent)]
        }
        WriteMode::Upsert { key, sequence, deletes } => {
            let seq = quote(sequence);
            let winners = format!(
                "CREATE TEMP TABLE ingesta_winners ON COMMIT DROP AS SELECT DISTINCT ON ({k}) * FROM {STAGE} \
                 ORDER BY {k}, {seq} DESC NULLS LAST, {ORD} DESC",
                k = keys(key)
            );
            let newer = format!("(t.{seq} IS NULL OR t.{seq} < w.{seq})");
            let flag = quote(ingesta_core::DELETE_FLAG);
            let (deleting, keeping) = if *deletes {
                (format!("coalesce(w.{flag}, false)"), format!("NOT coalesce(w.{flag}, false)"))
            } else {
                ("false".to_string(), "true".to_string())
            };
            let set: Vec<String> = names.iter().map(|n| format!("{n} = w.{n}")).collect();
            let mut statements = vec![winners];
            if *deletes {
                statements.push(format!(
                    "DELETE FROM {target} t USING ingesta_winners w WHERE {} AND {deleting} AND {newer}",
                    on(key, "t", "w")
                ));
            }
            if unique {
                let set: Vec<String> = names.iter().map(|n| format!("{n} = EXCLUDED.{n}")).collect();
                statements.push(format!(
                    "INSERT INTO {target} AS t ({list}, {VERSION}) SELECT {list}, {version} FROM ingesta_winners w \
                     WHERE {keeping} ON CONFLICT ({}) DO UPDATE SET {}, {VERSION} = EXCLUDED.{VERSION} \
                     WHERE t.{seq} IS NULL OR t.{seq} < EXCLUDED.{seq}",
                    keys(key),
                    set.join(", ")
                ));
                return run(client, target, &statements).await;
            }
            statements.extend([
                format!(
                    "UPDATE {target} t SET {}, {VERSION} = {version} FROM ingesta_winners w WHERE {} AND {keeping} AND {newer}",
                    set.join(", "),
                    on(key, "t", "w")
                ),
                format!(
                    "INSERT INTO {target} ({list}, {VERSION}) SELECT {list}, {version} FROM ingesta_winners w \
                     WHERE {keeping} AND NOT EXISTS (SELECT 1 FROM {target} t WHERE {})",
                    on(key, "t", "w")
                ),
            ]);
            statements
        }
        WriteMode::Delete { key } => vec![format!(
            "DELETE FROM {target} t USING (SELECT DISTINCT {k} FROM {STAGE}) d WHERE {}",
            on(key, "t", "d"),
            k = keys(key)
        )],
        WriteMode::CounterMerge { key, measures } => counter_merge(target, columns, key, measures, version),
        WriteMode::History { key, sequence } => history(target, columns, key, sequence, version),
    };
    run(client, target, &statements).await
}

/// Runs `statements` in order; the rows they wrote or deleted.
async fn run(client: &tokio_postgres::Client, target: &str, statements: &[String]) -> Result<u64> {
    let mut written = 0;
    for sql in statements {
        let n = client.execute(sql.as_str(), &[]).await.map_err(|e| classify(e, &format!("writing {target}")))?;
        // a `CREATE TEMP TABLE … AS` only prepares (the upsert's winners, the folded counters)
        if !sql.starts_with("CREATE") {
            written += n;
        }
    }
    Ok(written)
}

/// A counter merge: the staged rows folded per key (`ingesta_folded`), then
/// combined with the stored rows of the same keys, and new keys inserted.
/// Columns that are neither key nor measure take the newest value.
fn counter_merge(
    target: &str,
    columns: &[(String, PgType)],
    key: &[String],
    measures: &[(String, Measure)],
    version: i64,
) -> Vec<String> {
    let measure = |n: &str| measures.iter().find(|(m, _)| m == n).map(|(_, m)| m);
    let k = key.iter().map(|c| quote(c)).collect::<Vec<_>>().join(", ");
    let mut fold = Vec::new();
    let mut combine = Vec::new();
    for (name, t) in columns.iter().filter(|(n, _)| !key.contains(n)) {
        let c = quote(name);
        let cast = t.sql();
        let (folded, combined) = match measure(name) {
            Some(Measure::Sum) => (format!("sum({c})"), format!("coalesce(t.{c} + f.{c}, t.{c}, f.{c})")),
            Some(Measure::Min) => (format!("min({c})"), format!("least(t.{c}, f.{c})")),
            Some(Measure::Max) => (format!("max({c})"), format!("greatest(t.{c}, f.{c})")),
            Some(Measure::Set) => (
                format!(
                    "(SELECT array_agg(DISTINCT e ORDER BY e) FROM {STAGE} s2, unnest(s2.{c}) e WHERE {})",
                    key.iter().map(|kc| format!("s2.{q} = s.{q}", q = quote(kc))).collect::<Vec<_>>().join(" AND ")
                ),
                set_union(&c),
            ),
            Some(Measure::Avg { sum, count }) => {
                let (s, n) = (quote(sum), quote(count));
                (
                    format!("(sum({s})::float8 / nullif(sum({n}), 0))::{cast}"),
                    format!(
                        "(coalesce(t.{s} + f.{s}, t.{s}, f.{s})::float8 / nullif(coalesce(t.{n} + f.{n}, t.{n}, f.{n}), 0))::{cast}"
                    ),
                )
            }
            Some(Measure::CountDistinct { set }) => {
                let s = quote(set);
                (
                    format!(
                        "(SELECT count(DISTINCT e) FROM {STAGE} s2, unnest(s2.{s}) e WHERE {})::{cast}",
                        key.iter().map(|kc| format!("s2.{q} = s.{q}", q = quote(kc))).collect::<Vec<_>>().join(" AND ")
                    ),
                    format!("coalesce(cardinality({}), 0)::{cast}", set_union(&s)),
                )
            }
            Some(Measure::Last) | None => (format!("(array_agg({c} ORDER BY {ORD} DESC))[1]"), format!("f.{c}")),
        };
        fold.push(format!("{folded} AS {c}"));
        combine.push(format!("{c} = {combined}"));
    }
    let folded_list: Vec<String> = columns.iter().map(|(n, _)| quote(n)).collect();
    let list = folded_list.join(", ");
    let on = key.iter().map(|c| format!("t.{q} = f.{q}", q = quote(c))).collect::<Vec<_>>().join(" AND ");
    let select = if fold.is_empty() { String::new() } else { format!(", {}", fold.join(", ")) };
    vec![
        format!("CREATE TEMP TABLE ingesta_folded ON COMMIT DROP AS SELECT {k}{select} FROM {STAGE} s GROUP BY {k}"),
        if combine.is_empty() {
            "SELECT 1 WHERE false".to_string()
        } else {
            format!(
                "UPDATE {target} t SET {}, {VERSION} = {version} FROM ingesta_folded f WHERE {on}",
                combine.join(", ")
            )
        },
        format!(
            "INSERT INTO {target} ({list}, {VERSION}) SELECT {list}, {version} FROM ingesta_folded f \
             WHERE NOT EXISTS (SELECT 1 FROM {target} t WHERE {on})"
        ),
    ]
}

/// The sorted distinct union of the stored and the folded set `c`.
fn set_union(c: &str) -> String {
    format!("ARRAY(SELECT DISTINCT e FROM unnest(array_cat(t.{c}, f.{c})) e WHERE e IS NOT NULL ORDER BY e)")
}

/// History (scd2): the staged versions not stored yet (one per key and
/// sequence) are inserted with `valid_from` = their sequence, then every
/// version of the staged keys gets `valid_to` = the next one's `valid_from`
/// and `is_current` = there is none (only rows whose ends change are
/// updated). A staged row without a sequence has no place in the history:
/// the caller quarantines it before.
fn history(target: &str, columns: &[(String, PgType)], key: &[String], sequence: &str, version: i64) -> Vec<String> {
    use ingesta_core::{IS_CURRENT, VALID_FROM, VALID_TO};
    let (vf, vt, cur, seq) = (quote(VALID_FROM), quote(VALID_TO), quote(IS_CURRENT), quote(sequence));
    let k = key.iter().map(|c| quote(c)).collect::<Vec<_>>().join(", ");
    let tk = key.iter().map(|c| format!("t.{}", quote(c))).collect::<Vec<_>>().join(", ");
    let on = |l: &str, r: &str| key.iter().map(|c| format!("{l}.{q} = {r}.{q}", q = quote(c))).collect::<Vec<_>>();
    let base: Vec<String> = columns
        .iter()
        .filter(|(n, _)| ![VALID_FROM, VALID_TO, IS_CURRENT].contains(&n.as_str()))
        .map(|(n, _)| quote(n))
        .collect();
    let list = base.join(", ");
    vec![
        format!(
            "CREATE TEMP TABLE ingesta_versions ON COMMIT DROP AS SELECT DISTINCT ON ({k}, {seq}) * FROM {STAGE} \
             WHERE {seq} IS NOT NULL ORDER BY {k}, {seq}, {ORD} DESC"
        ),
        format!(
            "INSERT INTO {target} ({list}, {vf}, {VERSION}) SELECT {list}, {seq}, {version} FROM ingesta_versions s \
             WHERE NOT EXISTS (SELECT 1 FROM {target} t WHERE {} AND t.{vf} = s.{seq})",
            on("t", "s").join(" AND ")
        ),
        format!(
            "WITH w AS (SELECT {tk}, t.{vf}, lead(t.{vf}) OVER (PARTITION BY {tk} ORDER BY t.{vf}) AS nxt \
               FROM {target} t WHERE ({tk}) IN (SELECT {k} FROM ingesta_versions)) \
             UPDATE {target} t SET {vt} = w.nxt, {cur} = (w.nxt IS NULL), {VERSION} = {version} FROM w \
             WHERE {} AND t.{vf} = w.{vf} AND (t.{vt} IS DISTINCT FROM w.nxt OR t.{cur} IS DISTINCT FROM (w.nxt IS NULL))",
            on("t", "w").join(" AND ")
        ),
    ]
}

/// A backfill's delete: the stored rows whose `range.0` lies in `range.1..=range.2`
/// (text, cast to the column's type), but not those `version` wrote already.
pub(crate) async fn delete_range(
    c: &tokio_postgres::Client,
    target: &str,
    columns: &[(String, PgType)],
    range: &(String, String, String),
    version: i64,
) -> std::result::Result<u64, tokio_postgres::Error> {
    let (column, from, to) = range;
    let ty = columns.iter().find(|(n, _)| n == column).map(|(_, t)| t.sql()).unwrap_or_else(|| "text".into());
    let sql = format!(
        "DELETE FROM {target} WHERE {c} BETWEEN CAST($1::text AS {ty}) AND CAST($2::text AS {ty}) AND {v} < $3",
        c = quote(column),
        v = quote(VERSION)
    );
    c.execute(&sql, &[from, to, &version]).await
}
