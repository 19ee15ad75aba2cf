//! Marathon's label selector for `GET /v2/apps?label=` (SEMANTICS.md §18).
//!
//! `key`, `key==value`, `key!=value`, `key in (a,b)`, `key notin (a,b)`, joined by commas; all
//! must hold. Terms are made of `[-A-Za-z0-9_.]`; any other character is escaped with `\`.

use std::collections::BTreeMap;

#[derive(Clone, Debug, PartialEq, Eq)]
enum Selector {
    Exists(String),
    Equals(String, String),
    NotEquals(String, String),
    In(String, Vec<String>),
    NotIn(String, Vec<String>),
}

/// A parsed selector: all of its parts must match.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LabelSelector(Vec<Selector>);

/// Splits into tokens: terms (escapes resolved), and the punctuation `==`, `!=`, `(`, `)`, `,`.
fn tokens(query: &str) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    let mut chars = query.chars().peekable();
    let mut term = String::new();
    let flush = |term: &mut String, out: &mut Vec<String>| {
        if !term.is_empty() {
            out.push(std::mem::take(term));
        }
    };
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some(escaped) => term.push(escaped),
                None => return Err("a trailing backslash escapes nothing".into()),
            },
            c if c.is_ascii_alphanumeric() || "-_.".contains(c) => term.push(c),
            c if c.is_whitespace() => flush(&mut term, &mut out),
            '(' | ')' | ',' => {
                flush(&mut term, &mut out);
                out.push(c.to_string());
            }
            '=' | '!' if chars.peek() == Some(&'=') => {
                chars.next();
                flush(&mut term, &mut out);
                out.push(format!("{c}="));
            }
            other => return Err(format!("unexpected character '{other}'")),
        }
    }
    flush(&mut term, &mut out);
    Ok(out)
}

fn is_term(t: &str) -> bool {
    !matches!(t, "==" | "!=" | "(" | ")" | ",")
}

impl LabelSelector {
    pub fn parse(query: &str) -> Result<LabelSelector, String> {
        let error =
            |reason: String| format!("Can not parse label selector {query}. Reason: {reason}");
        let tokens = tokens(query).map_err(error)?;
        let mut selectors = Vec::new();
        let mut rest = tokens.as_slice();
        loop {
            let (key, after) = match rest {
                [key, after @ ..] if is_term(key) => (key.clone(), after),
                _ => return Err(error("expected a label name".into())),
            };
            let (selector, after) = match after {
                [op, value, after @ ..] if op == "==" && is_term(value) => {
                    (Selector::Equals(key, value.clone()), after)
                }
                [op, value, after @ ..] if op == "!=" && is_term(value) => {
                    (Selector::NotEquals(key, value.clone()), after)
                }
                [op, open, after @ ..] if (op == "in" || op == "notin") && open == "(" => {
                    let close = after
                        .iter()
                        .position(|t| t == ")")
                        .ok_or_else(|| error("missing ')'".into()))?;
                    let values: Vec<String> = after[..close]
                        .iter()
                        .filter(|t| *t != ",")
                        .cloned()
                        .collect();
                    if values.is_empty() || values.iter().any(|v| !is_term(v)) {
                        return Err(error("expected values in parentheses".into()));
                    }
                    let selector = if op == "in" {
                        Selector::In(key, values)
                    } else {
                        Selector::NotIn(key, values)
                    };
                    (selector, &after[close + 1..])
                }
                _ => (Selector::Exists(key), after),
            };
            selectors.push(selector);
            match after {
                [] => return Ok(LabelSelector(selectors)),
                [comma, more @ ..] if comma == "," => rest = more,
                [other, ..] => return Err(error(format!("unexpected '{other}'"))),
            }
        }
    }

    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.0.iter().all(|s| match s {
            Selector::Exists(k) => labels.contains_key(k),
            Selector::Equals(k, v) => labels.get(k) == Some(v),
            Selector::NotEquals(k, v) => labels.get(k).is_some_and(|l| l != v),
            Selector::In(k, vs) => labels.get(k).is_some_and(|l| vs.contains(l)),
            Selector::NotIn(k, vs) => labels.get(k).is_some_and(|l| !vs.contains(l)),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn selects_like_marathon() {
        let l = labels(&[("env", "prod"), ("team", "core"), ("a!b", "x")]);
        let holds = |q: &str| LabelSelector::parse(q).unwrap().matches(&l);
        assert!(holds("env"));
        assert!(holds("env==prod, team != web"));
        assert!(holds("env in (prod, stage)"));
        assert!(holds("team notin (web,db)"));
        assert!(holds("a\\!b==x"));
        assert!(!holds("missing"));
        assert!(!holds("missing!=x"), "!= needs the label to exist");
        assert!(!holds("env==stage"));
        assert!(!holds("env,missing"));
    }

    #[test]
    fn reports_parse_errors_in_marathons_words() {
        let e = LabelSelector::parse("env==").unwrap_err();
        assert!(
            e.starts_with("Can not parse label selector env==. Reason:"),
            "{e}"
        );
        assert!(LabelSelector::parse("a!b").is_err());
        assert!(LabelSelector::parse("env in (a,b").is_err());
        assert!(LabelSelector::parse("").is_err());
    }
}
