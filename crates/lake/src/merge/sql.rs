//! The SQL a merge runs, as text: the full join of the stored rows (`t`)
//! and the batch (`s`) on the key, the merged columns by write mode, the
//! rows a merge changes (for the change feed), one row per key.

use arrow_schema::{DataType, Field, SchemaRef};
use ingesta_core::{DELETE_FLAG, Measure, WriteMode};

use crate::changes::CHANGE_TYPE;

/// Quotes an identifier for SQL.
pub fn q(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// A query keeping one row of `from` per `key`: the one with the highest
/// `order` (any one without). A `row_number()` window: DataFusion's
/// `DISTINCT ON` keeps a `first_value` per column and is much slower.
pub fn one_per_key_sql(from: &str, key: &[String], order: Option<&str>) -> String {
    let keys: Vec<String> = key.iter().map(|k| q(k)).collect();
    // ordering by a key column again adds nothing (and trips DataFusion)
    let order = match order {
        Some(o) if !key.iter().any(|k| k == o) => format!(" ORDER BY {} DESC NULLS LAST", q(o)),
        _ => String::new(),
    };
    format!(
        "SELECT * EXCLUDE (__ingesta_rn) FROM (SELECT *, row_number() OVER (PARTITION BY {}{order}) \
         AS __ingesta_rn FROM {from} AS t) AS t WHERE __ingesta_rn = 1",
        keys.join(", ")
    )
}

/// The key columns of a keyed mode.
pub(super) fn key_of(mode: &WriteMode) -> &[String] {
    match mode {
        WriteMode::Append => &[],
        WriteMode::InsertIfAbsent { key }
        | WriteMode::Upsert { key, .. }
        | WriteMode::Delete { key }
        | WriteMode::CounterMerge { key, .. }
        | WriteMode::History { key, .. } => key,
    }
}

/// The rows a merge changes, with their `_change_type`, from the same join
/// as [`rewrite_sql`]: a key only in the batch is an `insert`; a stored key
/// the batch changes gives its old row (`update_preimage`) and its merged
/// one (`update_postimage`); a deleted key its old row (`delete`). An upsert
/// of an older version than the stored one changes nothing.
pub(super) fn changes_sql(mode: &WriteMode, schema: &SchemaRef, on: &str) -> String {
    let from = join_sql(on);
    if let WriteMode::Delete { .. } = mode {
        let cols: Vec<String> = schema.fields().iter().map(|f| format!("t.{c} AS {c}", c = q(f.name()))).collect();
        return format!("SELECT {}, 'delete' AS {CHANGE_TYPE} FROM {from} WHERE NOT {T} AND NOT {S}", cols.join(", "));
    }
    let (changed, deletes) = match mode {
        WriteMode::Upsert { sequence, deletes, .. } => (batch_wins(sequence), *deletes),
        _ => ("TRUE".to_string(), false),
    };
    let flag = if deletes { format!("s.{} IS TRUE", q(DELETE_FLAG)) } else { "FALSE".to_string() };
    let cols: Vec<String> = schema
        .fields()
        .iter()
        .map(|f| {
            let merged = merged_column(mode, f);
            format!(
                "CASE WHEN k.c IN ('update_preimage', 'delete') THEN t.{c} ELSE {merged} END AS {c}",
                c = q(f.name())
            )
        })
        .collect();
    format!(
        "SELECT {}, k.c AS {CHANGE_TYPE} FROM {from} \
         CROSS JOIN (VALUES ('insert'), ('update_preimage'), ('update_postimage'), ('delete')) AS k(c) \
         WHERE NOT {S} AND (({T} AND NOT {flag} AND k.c = 'insert') \
            OR (NOT {T} AND {changed} AND NOT {flag} AND k.c IN ('update_preimage', 'update_postimage')) \
            OR (NOT {T} AND {changed} AND {flag} AND k.c = 'delete'))",
        cols.join(", ")
    )
}

/// An upsert: the batch's row replaces the stored one (a higher sequence, or none stored).
pub(super) fn batch_wins(sequence: &str) -> String {
    format!("(t.{s} IS NULL OR s.{s} > t.{s})", s = q(sequence))
}

/// In the join: no stored row for the key.
pub(super) const T: &str = "t.__ingesta_t IS NULL";
/// In the join: no batch row for the key.
pub(super) const S: &str = "s.__ingesta_s IS NULL";

/// The full join of the stored rows (`t`) and the batch (`s`) on the key,
/// each side marked present.
pub(super) fn join_sql(on: &str) -> String {
    format!(
        "(SELECT *, TRUE AS __ingesta_t FROM stored) t FULL JOIN (SELECT *, TRUE AS __ingesta_s FROM source) s ON {on}"
    )
}

/// The query merging `source` into `stored` (aliases `s` and `t`) by the
/// mode, in the table's column order: a full join on the key; a row only
/// stored is kept, a row only in the batch is added, a matched pair merged.
pub(super) fn rewrite_sql(mode: &WriteMode, schema: &SchemaRef, on: &str) -> String {
    if let WriteMode::History { key, sequence } = mode {
        return history_sql(key, sequence, schema, on);
    }
    let from = join_sql(on);
    let cols: Vec<String> =
        schema.fields().iter().map(|f| format!("{} AS {}", merged_column(mode, f), q(f.name()))).collect();
    match mode {
        // the stored rows whose key is not in the batch
        WriteMode::Delete { .. } => format!("SELECT {} FROM {from} WHERE {S} AND NOT {T}", cols.join(", ")),
        // all but the keys a winning row deletes
        WriteMode::Upsert { sequence, deletes: true, .. } => format!(
            "SELECT {} FROM {from} WHERE NOT (s.{} IS TRUE AND {})",
            cols.join(", "),
            q(DELETE_FLAG),
            batch_wins(sequence)
        ),
        _ => format!("SELECT {} FROM {from}", cols.join(", ")),
    }
}

/// A column of the merged row: the batch's value for a new key, the stored
/// one for a key the batch does not hold, else the two merged by the mode.
pub(super) fn merged_column(mode: &WriteMode, f: &Field) -> String {
    let c = q(f.name());
    let (tc, sc) = (format!("t.{c}"), format!("s.{c}"));
    if key_of(mode).contains(f.name()) {
        return format!("CASE WHEN {T} THEN {sc} ELSE {tc} END");
    }
    let merged = match mode {
        WriteMode::Upsert { sequence, .. } => format!("CASE WHEN {} THEN {sc} ELSE {tc} END", batch_wins(sequence)),
        WriteMode::CounterMerge { measures, .. } => {
            let measure = measures.iter().find(|(m, _)| m == f.name()).map(|(_, k)| k);
            cast_to(&merged_measure(measure, &tc, &sc), f.data_type())
        }
        _ => tc.clone(),
    };
    format!("CASE WHEN {T} THEN {sc} WHEN {S} THEN {tc} ELSE {merged} END")
}

/// A measure's stored value `t` combined with the batch's `s` (both present).
pub(super) fn merged_measure(measure: Option<&Measure>, t: &str, s: &str) -> String {
    let pair = |c: &str| (format!("t.{}", q(c)), format!("s.{}", q(c)));
    match measure {
        Some(Measure::Sum) => format!("CASE WHEN {t} IS NULL THEN {s} WHEN {s} IS NULL THEN {t} ELSE {t} + {s} END"),
        Some(Measure::Min) => format!("CASE WHEN {t} IS NULL OR {s} < {t} THEN {s} ELSE {t} END"),
        Some(Measure::Max) => format!("CASE WHEN {t} IS NULL OR {s} > {t} THEN {s} ELSE {t} END"),
        Some(Measure::Avg { sum, count }) => {
            let part = |x: &str| {
                let (t, s) = pair(x);
                format!("CAST(coalesce({t}, 0) AS DOUBLE) + CAST(coalesce({s}, 0) AS DOUBLE)")
            };
            format!("({}) / ({})", part(sum), part(count))
        }
        Some(Measure::Set) => set_union(t, s),
        Some(Measure::CountDistinct { set }) => {
            let (t, s) = pair(set);
            format!("coalesce(cardinality({}), 0)", set_union(&t, &s))
        }
        Some(Measure::Last) | None => s.to_string(),
    }
}

/// The distinct values of a list column over a group's rows (null: none).
pub(super) fn set_union_agg(c: &str) -> String {
    format!("array_distinct(flatten(array_agg({c}) FILTER (WHERE {c} IS NOT NULL)))")
}

/// The stored and the new set of one key, merged (a null side is empty).
pub(super) fn set_union(t: &str, s: &str) -> String {
    format!("CASE WHEN {t} IS NULL THEN {s} WHEN {s} IS NULL THEN {t} ELSE array_union({t}, {s}) END")
}

/// `expr` cast to a numeric column type (sums widen decimals and integers).
pub(super) fn cast_to(expr: &str, ty: &DataType) -> String {
    match ty {
        DataType::Int8
        | DataType::Int16
        | DataType::Int32
        | DataType::Int64
        | DataType::Float32
        | DataType::Float64
        | DataType::Decimal128(_, _) => format!("arrow_cast({expr}, '{ty}')"),
        _ => expr.to_string(),
    }
}

/// A history (scd2) merge: the stored rows, plus the batch's versions not
/// stored yet (`valid_from` = their sequence); for the batch's keys, whose
/// every version the touched files hold, `valid_to` is the next version's
/// `valid_from` and `is_current` whether there is none. Other keys of the
/// touched files keep their ends (their other versions may be elsewhere).
pub(super) fn history_sql(key: &[String], sequence: &str, schema: &SchemaRef, on: &str) -> String {
    use ingesta_core::{IS_CURRENT, VALID_FROM, VALID_TO};
    let (vf, seq) = (q(VALID_FROM), q(sequence));
    let names: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
    let stored: Vec<String> = names.iter().map(|n| format!("t.{c} AS {c}", c = q(n))).collect();
    // the new versions' ends are placeholders of the right types, recomputed below
    let new: Vec<String> = names
        .iter()
        .map(|&n| match n {
            VALID_FROM | VALID_TO => format!("s.{seq} AS {}", q(n)),
            IS_CURRENT => format!("TRUE AS {}", q(n)),
            _ => format!("s.{c} AS {c}", c = q(n)),
        })
        .collect();
    let keys = key.iter().map(|k| q(k)).collect::<Vec<_>>().join(", ");
    let out: Vec<String> = names
        .iter()
        .map(|&n| match n {
            VALID_TO => format!("CASE WHEN __touched THEN __next ELSE {c} END AS {c}", c = q(n)),
            IS_CURRENT => format!("CASE WHEN __touched THEN __next IS NULL ELSE {c} END AS {c}", c = q(n)),
            _ => q(n),
        })
        .collect();
    format!(
        "SELECT {out} FROM (SELECT *, lead({vf}) OVER (PARTITION BY {keys} ORDER BY {vf}) AS __next FROM ( \
           SELECT {stored}, s.__touched IS NOT NULL AS __touched FROM stored t \
             LEFT JOIN (SELECT DISTINCT {keys}, TRUE AS __touched FROM source) s ON {on} \
           UNION ALL \
           SELECT {new}, TRUE AS __touched FROM source s \
             WHERE NOT EXISTS (SELECT 1 FROM stored t WHERE {on} AND t.{vf} = s.{seq}) \
         ) v) w",
        out = out.join(", "),
        stored = stored.join(", "),
        new = new.join(", "),
    )
}
