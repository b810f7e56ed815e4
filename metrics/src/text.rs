//! The small parts of the Prometheus text format: names, escaping, numbers.

/// Whether `s` is a valid metric or label name (`[a-zA-Z_:][a-zA-Z0-9_:]*`).
pub(crate) fn valid_name(s: &str) -> bool {
    let mut bytes = s.bytes();
    matches!(bytes.next(), Some(b) if b.is_ascii_alphabetic() || b == b'_' || b == b':')
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b':')
}

/// HELP text: backslash and newline escaped.
pub(crate) fn help(s: &str) -> String {
    s.replace('\\', "\\\\").replace('\n', "\\n")
}

/// A label value: backslash, double quote and newline escaped.
fn value(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

/// `{a="x",b="y"}`, or nothing without labels.
pub(crate) fn labels(names: &[&str], values: &[String]) -> String {
    if names.is_empty() {
        return String::new();
    }
    let pairs: Vec<String> = names.iter().zip(values).map(|(n, v)| format!("{n}=\"{}\"", value(v))).collect();
    format!("{{{}}}", pairs.join(","))
}

/// `labels` with one more pair at the end (a histogram's `le`).
pub(crate) fn with_label(labels: &str, name: &str, v: &str) -> String {
    match labels.strip_suffix('}') {
        Some(open) => format!("{open},{name}=\"{}\"}}", value(v)),
        None => format!("{{{name}=\"{}\"}}", value(v)),
    }
}

/// A float as Prometheus reads it: the shortest form that round-trips (`0.005`, `1`, `3.055`).
pub(crate) fn number(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{}", v as i64)
    } else {
        format!("{v}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert!(valid_name("qpq_node_rpc_calls_total"));
        assert!(valid_name("_x:y"));
        assert!(!valid_name("1x"));
        assert!(!valid_name("a-b"));
        assert!(!valid_name(""));
    }

    #[test]
    fn numbers() {
        assert_eq!(number(1.0), "1");
        assert_eq!(number(0.0005), "0.0005");
        assert_eq!(number(2.5), "2.5");
    }
}
