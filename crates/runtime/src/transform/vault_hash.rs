//! Data Vault keys in SQL: `uuid5(namespace, name)`, and `dv_hash(profile,
//! v1, …)` / `dv_hashdiff(profile, v1, …)` for hub and link keys and
//! satellite hashdiffs, by a named, versioned profile (`docs/vault.md`).
//!
//! A profile fixes everything that decides the bytes: how each value becomes
//! text, how nulls, case and blanks are treated, the separator, the digest
//! and how it is printed. A profile's output never changes; a change would be
//! a new version (`uuid5@2`), the unversioned name meaning version 1.

use std::sync::Arc;

use arrow_array::builder::StringBuilder;
use arrow_array::{Array, ArrayRef, StringArray};
use arrow_schema::{DataType, Field, FieldRef};
use ingesta_lake::datafusion::common::{Result as DfResult, ScalarValue, exec_err, plan_err};
use ingesta_lake::datafusion::logical_expr::{
    ColumnarValue, ReturnFieldArgs, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};
use ingesta_lake::datafusion::prelude::SessionContext;
use md5::Digest as _;

/// The namespace of the seed's deployments' name-based keys.
pub const SEED_NAMESPACE: uuid::Uuid = uuid::uuid!("7f288a2e-0ad0-4039-8e59-6c9838d87307");

/// Registers `uuid5`, `dv_hash` and `dv_hashdiff` in a session.
pub fn register(ctx: &SessionContext) {
    ctx.register_udf(ScalarUDF::new_from_impl(Uuid5::default()));
    ctx.register_udf(ScalarUDF::new_from_impl(DvHash::new(false)));
    ctx.register_udf(ScalarUDF::new_from_impl(DvHash::new(true)));
}

/// The digest a profile hashes with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Digest {
    /// A name-based UUID (version 5, SHA-1) in this namespace.
    Uuid5(uuid::Uuid),
    Md5,
    Sha1,
    Sha256,
}

impl Digest {
    /// The digest of `text`, printed as a lower-case hyphenated UUID or as
    /// hex in the given case.
    fn of(self, text: &str, upper: bool) -> String {
        let hex = |bytes: &[u8]| hex(bytes, upper);
        match self {
            Digest::Uuid5(ns) => uuid5(&ns, text).to_string(),
            Digest::Md5 => hex(&md5::Md5::digest(text.as_bytes())),
            Digest::Sha1 => {
                use sha1::Digest as _;
                hex(&sha1::Sha1::digest(text.as_bytes()))
            }
            Digest::Sha256 => hex(&sha2::Sha256::digest(text.as_bytes())),
        }
    }

    /// The all-zero key in this digest's printed form.
    fn zero(self) -> String {
        match self {
            Digest::Uuid5(_) => uuid::Uuid::nil().to_string(),
            Digest::Md5 => "0".repeat(32),
            Digest::Sha1 => "0".repeat(40),
            Digest::Sha256 => "0".repeat(64),
        }
    }
}

/// A name-based UUID, version 5: SHA-1 of the namespace's bytes and the name,
/// with the version and variant bits set (RFC 9562 §5.5).
pub fn uuid5(namespace: &uuid::Uuid, name: &str) -> uuid::Uuid {
    use sha1::Digest as _;
    let mut h = sha1::Sha1::new();
    h.update(namespace.as_bytes());
    h.update(name.as_bytes());
    let d = h.finalize();
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&d[..16]);
    uuid::Builder::from_sha1_bytes(bytes).into_uuid()
}

fn hex(bytes: &[u8], upper: bool) -> String {
    let digits: &[u8; 16] = if upper { b"0123456789ABCDEF" } else { b"0123456789abcdef" };
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(digits[(b >> 4) as usize] as char);
        s.push(digits[(b & 15) as usize] as char);
    }
    s
}

/// How a family of tools turns a row's values into the text it hashes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Style {
    /// The seed's deployments: each value as text, joined with `#$#`; a null
    /// value gives no key.
    Seed,
    /// AutomateDV 0.11: `NULLIF(UPPER(TRIM(CAST(x AS VARCHAR))), '')`, null
    /// as `^^`, joined with `||`; a key of nulls only is null (a hashdiff
    /// hashes `^^||^^…`); the digest's bytes, shown as upper-case hex.
    AutomateDv,
    /// datavault4dbt 2.0: each value trimmed, `\` doubled, `"`, `^^` and `||`
    /// replaced by its tokens, in double quotes; null as a bare `^^`; joined
    /// with `||`; keys upper-cased, hashdiffs as they are; line breaks and
    /// tabs removed; nulls only give the zero key; lower-case hex.
    Datavault4dbt,
}

/// What a row hashes to.
enum Hashed {
    Text(String),
    Null,
    Zero,
}

impl Style {
    fn text(self, values: &[Option<&str>], hashdiff: bool) -> Hashed {
        let nulls = values.iter().filter(|v| v.is_none()).count();
        match self {
            Style::Seed if nulls > 0 => Hashed::Null,
            Style::Seed => Hashed::Text(values.iter().map(|v| v.unwrap_or_default()).collect::<Vec<_>>().join("#$#")),
            Style::AutomateDv => {
                let cleaned: Vec<Option<String>> = values
                    .iter()
                    .map(|v| v.map(|v| v.trim_matches(' ').to_uppercase()).filter(|v| !v.is_empty()))
                    .collect();
                let nulls = cleaned.iter().filter(|v| v.is_none()).count();
                if nulls == values.len() && !hashdiff {
                    return Hashed::Null;
                }
                Hashed::Text(cleaned.iter().map(|v| v.as_deref().unwrap_or("^^")).collect::<Vec<_>>().join("||"))
            }
            Style::Datavault4dbt => {
                if nulls == values.len() {
                    return Hashed::Zero;
                }
                let mut text = String::new();
                for (i, v) in values.iter().enumerate() {
                    if i > 0 {
                        text.push_str("||");
                    }
                    match v {
                        None => text.push_str("^^"),
                        Some(v) => {
                            let v = v
                                .trim_matches(' ')
                                .replace('\\', "\\\\")
                                .replace('"', "dv4dbt-quote-replacement")
                                .replace("^^", "dv4dbt-null-replacement")
                                .replace("||", "dv4dbt-concat-replacement");
                            text.push('"');
                            text.push_str(&v);
                            text.push('"');
                        }
                    }
                }
                if !hashdiff {
                    text = text.to_uppercase();
                }
                text.retain(|c| !matches!(c, '\n' | '\t' | '\u{b}' | '\r'));
                Hashed::Text(text)
            }
        }
    }
}

/// A named, versioned way to make keys and hashdiffs.
#[derive(Debug, Clone, Copy)]
struct Profile {
    style: Style,
    digest: Digest,
}

impl Profile {
    fn hash(self, values: &[Option<&str>], hashdiff: bool) -> Option<String> {
        match self.style.text(values, hashdiff) {
            Hashed::Null => None,
            Hashed::Zero => Some(self.digest.zero()),
            Hashed::Text(t) => Some(self.digest.of(&t, self.style == Style::AutomateDv)),
        }
    }
}

/// The profile of a name (`uuid5`, `automate_dv_md5@1`, …), or `None`.
fn profile(name: &str) -> Option<Profile> {
    let base = name.strip_suffix("@1").unwrap_or(name);
    let (style, digest) = match base {
        "uuid5" => (Style::Seed, Digest::Uuid5(SEED_NAMESPACE)),
        "automate_dv" | "automate_dv_md5" => (Style::AutomateDv, Digest::Md5),
        "automate_dv_sha1" => (Style::AutomateDv, Digest::Sha1),
        "automate_dv_sha256" => (Style::AutomateDv, Digest::Sha256),
        "datavault4dbt" | "datavault4dbt_md5" => (Style::Datavault4dbt, Digest::Md5),
        "datavault4dbt_sha1" => (Style::Datavault4dbt, Digest::Sha1),
        "datavault4dbt_sha256" => (Style::Datavault4dbt, Digest::Sha256),
        _ => return None,
    };
    Some(Profile { style, digest })
}

const PROFILES: &str = "uuid5, automate_dv_md5 (automate_dv), automate_dv_sha1, automate_dv_sha256, \
                        datavault4dbt_md5 (datavault4dbt), datavault4dbt_sha1, datavault4dbt_sha256";

/// `uuid5(namespace, name)`: a name-based UUID (version 5) as text, exactly
/// what Python's `uuid.uuid5` gives; null for a null name.
#[derive(Debug, PartialEq, Eq, Hash)]
struct Uuid5 {
    signature: Signature,
}

impl Default for Uuid5 {
    fn default() -> Self {
        Self { signature: Signature::any(2, Volatility::Immutable) }
    }
}

impl ScalarUDFImpl for Uuid5 {
    fn name(&self) -> &str {
        "uuid5"
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, _: &[DataType]) -> DfResult<DataType> {
        Ok(DataType::Utf8)
    }
    fn return_field_from_args(&self, args: ReturnFieldArgs) -> DfResult<FieldRef> {
        if let Some(Some(ns)) = args.scalar_arguments.first() {
            namespace(&ns.to_string())?;
        }
        Ok(Arc::new(Field::new(self.name(), DataType::Utf8, true)))
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> DfResult<ColumnarValue> {
        let n = args.number_rows;
        let ns = text(&args.args[0].to_array(n)?)?;
        let names = text(&args.args[1].to_array(n)?)?;
        let mut out = StringBuilder::with_capacity(n, n * 36);
        let mut last: Option<(String, uuid::Uuid)> = None;
        for i in 0..n {
            if ns.is_null(i) || names.is_null(i) {
                out.append_null();
                continue;
            }
            let ns_text = ns.value(i);
            let id = match &last {
                Some((t, id)) if t == ns_text => *id,
                _ => {
                    let id = namespace(ns_text)?;
                    last = Some((ns_text.to_string(), id));
                    id
                }
            };
            out.append_value(uuid5(&id, names.value(i)).to_string());
        }
        Ok(ColumnarValue::Array(Arc::new(out.finish())))
    }
}

fn namespace(s: &str) -> DfResult<uuid::Uuid> {
    match s {
        "dns" => Ok(uuid::Uuid::NAMESPACE_DNS),
        "url" => Ok(uuid::Uuid::NAMESPACE_URL),
        "oid" => Ok(uuid::Uuid::NAMESPACE_OID),
        "x500" => Ok(uuid::Uuid::NAMESPACE_X500),
        _ => uuid::Uuid::parse_str(s)
            .or_else(|_| plan_err!("uuid5: the namespace `{s}` is not a UUID (nor dns, url, oid, x500)")),
    }
}

/// Any column as text, as a cast to a string prints it.
fn text(a: &ArrayRef) -> DfResult<StringArray> {
    let s = arrow_cast::cast(a, &DataType::Utf8)?;
    Ok(s.as_any().downcast_ref::<StringArray>().expect("a cast to Utf8 gives a StringArray").clone())
}

/// `dv_hash(profile, v1, …)` (keys) and `dv_hashdiff(profile, v1, …)`.
#[derive(Debug, PartialEq, Eq, Hash)]
struct DvHash {
    signature: Signature,
    hashdiff: bool,
}

impl DvHash {
    fn new(hashdiff: bool) -> Self {
        Self { signature: Signature::variadic_any(Volatility::Immutable), hashdiff }
    }

    fn profile_of(&self, v: Option<&ScalarValue>) -> DfResult<Profile> {
        let name = match v {
            Some(ScalarValue::Utf8(Some(s)) | ScalarValue::Utf8View(Some(s)) | ScalarValue::LargeUtf8(Some(s))) => s,
            _ => return plan_err!("{}: the first argument is the profile's name, e.g. '{}'", self.name(), "uuid5"),
        };
        profile(name).map_or_else(|| plan_err!("{}: no profile `{name}` (there are: {PROFILES})", self.name()), Ok)
    }
}

impl ScalarUDFImpl for DvHash {
    fn name(&self) -> &str {
        if self.hashdiff { "dv_hashdiff" } else { "dv_hash" }
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, _: &[DataType]) -> DfResult<DataType> {
        Ok(DataType::Utf8)
    }
    fn return_field_from_args(&self, args: ReturnFieldArgs) -> DfResult<FieldRef> {
        if args.arg_fields.len() < 2 {
            return plan_err!("{}: a profile and at least one value, e.g. {}('uuid5', id)", self.name(), self.name());
        }
        self.profile_of(args.scalar_arguments[0])?;
        Ok(Arc::new(Field::new(self.name(), DataType::Utf8, true)))
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> DfResult<ColumnarValue> {
        let n = args.number_rows;
        let profile = match &args.args[0] {
            ColumnarValue::Scalar(v) => self.profile_of(Some(v))?,
            ColumnarValue::Array(_) => return exec_err!("{}: the profile must be a literal", self.name()),
        };
        let texts = args.args[1..].iter().map(|a| text(&a.to_array(n)?)).collect::<DfResult<Vec<_>>>()?;
        let mut out = StringBuilder::with_capacity(n, n * 36);
        let mut row: Vec<Option<&str>> = Vec::with_capacity(texts.len());
        for i in 0..n {
            row.clear();
            row.extend(texts.iter().map(|t| (!t.is_null(i)).then(|| t.value(i))));
            out.append_option(profile.hash(&row, self.hashdiff));
        }
        Ok(ColumnarValue::Array(Arc::new(out.finish())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(p: &str, values: &[Option<&str>]) -> Option<String> {
        profile(p).unwrap().hash(values, false)
    }

    fn diff(p: &str, values: &[Option<&str>]) -> Option<String> {
        profile(p).unwrap().hash(values, true)
    }

    #[test]
    fn uuid5_is_pythons() {
        // python3 -c 'import uuid; print(uuid.uuid5(uuid.NAMESPACE_DNS, "python.org"))'
        assert_eq!(uuid5(&uuid::Uuid::NAMESPACE_DNS, "python.org").to_string(), "886313e1-3b8a-5372-9b90-0c9aee199e5d");
    }

    #[test]
    fn seed_keys_join_with_their_separator() {
        let one = key("uuid5", &[Some("626a81ce9a8cd1920641e29c")]).unwrap();
        assert_eq!(one, uuid5(&SEED_NAMESPACE, "626a81ce9a8cd1920641e29c").to_string());
        let link = key("uuid5@1", &[Some("1371198"), Some("CLOSED")]).unwrap();
        assert_eq!(link, uuid5(&SEED_NAMESPACE, "1371198#$#CLOSED").to_string());
        assert_eq!(key("uuid5", &[Some("1"), None]), None);
        assert!(profile("uuid5@2").is_none());
    }

    #[test]
    fn automate_dv_examples() {
        // documented (best_practises/null_handling.md): a hashdiff of three nulls
        assert_eq!(diff("automate_dv", &[None, None, None]).unwrap(), "3C92E664B39D90428DBC94975B5DDA58");
        // 'ABC||^^||X'
        assert_eq!(
            key("automate_dv_md5", &[Some(" abc "), None, Some("x")]).unwrap(),
            "84C883DA6B5E9B1B21EF65A16470C13D"
        );
        assert_eq!(key("automate_dv", &[Some("1001")]).unwrap(), "B8C37E33DEFDE51CF91E1E03E51657DA");
        assert_eq!(key("automate_dv", &[None, Some("  ")]), None);
        assert_eq!(key("automate_dv", &[Some(" ")]), None);
    }

    #[test]
    fn datavault4dbt_examples() {
        // documented (general-usage-notes/rehashing): hub key of order 2400102
        assert_eq!(key("datavault4dbt", &[Some("2400102")]).unwrap(), "1f3a375fb2b610de97f1ca606b4228e0");
        // "ABC"||^^ and "Abc"||"x|y"
        assert_eq!(key("datavault4dbt", &[Some("abc"), None]).unwrap(), "74e5062b734a223691fa9298535517d4");
        assert_eq!(diff("datavault4dbt", &[Some("Abc"), Some("x|y")]).unwrap(), "bed155dcb824a6490df1831fb386d76f");
        assert_eq!(key("datavault4dbt", &[None, None]).unwrap(), "0".repeat(32));
        assert_eq!(key("datavault4dbt_sha256", &[None]).unwrap().len(), 64);
    }
}
