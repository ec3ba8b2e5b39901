//! `${VAR}` and `${VAR:-default}` substitution on the raw text, before parsing,
//! so that line numbers stay those of the file. `$${` stands for a literal `${`.

/// A substitution made, kept so errors about its value can hide it.
#[derive(Debug, Clone)]
pub struct Substitution {
    pub line: usize,
    pub var: String,
}

#[derive(Debug)]
pub struct MissingVar {
    pub line: usize,
    pub column: usize,
    pub var: String,
}

/// Substitutes environment references line by line with `lookup`.
pub fn interpolate(
    text: &str,
    lookup: impl Fn(&str) -> Option<String>,
) -> (String, Vec<Substitution>, Vec<MissingVar>) {
    let mut out = String::with_capacity(text.len());
    let mut subs = Vec::new();
    let mut missing = Vec::new();
    for (i, line) in text.split_inclusive('\n').enumerate() {
        let line_no = i + 1;
        let mut rest = line;
        let mut col = 1;
        while let Some(at) = rest.find('$') {
            out.push_str(&rest[..at]);
            col += rest[..at].chars().count();
            let tail = &rest[at..];
            if let Some(after) = tail.strip_prefix("$${") {
                out.push_str("${");
                rest = after;
                col += 3;
                continue;
            }
            let Some(end) = tail.starts_with("${").then(|| tail.find('}')).flatten() else {
                out.push('$');
                rest = &tail[1..];
                col += 1;
                continue;
            };
            let inner = &tail[2..end];
            let (var, default) = match inner.split_once(":-") {
                Some((v, d)) => (v.trim(), Some(d)),
                None => (inner.trim(), None),
            };
            match lookup(var).filter(|v| !v.is_empty()).or(default.map(str::to_string)) {
                Some(value) => {
                    out.push_str(&value);
                    subs.push(Substitution { line: line_no, var: var.to_string() });
                }
                None => {
                    // keep the reference so the value stays a string and no
                    // follow-on error hides the real one
                    out.push_str(&tail[..=end]);
                    missing.push(MissingVar { line: line_no, column: col, var: var.to_string() });
                }
            }
            col += tail[..=end].chars().count();
            rest = &tail[end + 1..];
        }
        out.push_str(rest);
    }
    (out, subs, missing)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(k: &str) -> Option<String> {
        (k == "HOME_DIR").then(|| "/home/x".to_string())
    }

    #[test]
    fn substitutes_defaults_and_escapes() {
        let (out, subs, missing) = interpolate("a: ${HOME_DIR}/lake\nb: ${NOPE:-./x}\nc: $${LIT} $5\n", env);
        assert_eq!(out, "a: /home/x/lake\nb: ./x\nc: ${LIT} $5\n");
        assert_eq!(subs.len(), 2);
        assert!(missing.is_empty());
    }

    #[test]
    fn reports_missing_variable_with_its_place() {
        let (_, _, missing) = interpolate("a: 1\nroot: ${LAKE_ROOT}\n", env);
        assert_eq!(missing.len(), 1);
        assert_eq!((missing[0].line, missing[0].column), (2, 7));
        assert_eq!(missing[0].var, "LAKE_ROOT");
    }
}
