//! Placement constraints: Marathon's `[field, OPERATOR, value]` triples, typed, with their
//! regular expressions compiled once.
//!
//! An app's constraints are parsed when its instances are queued for offers; LIKE and UNLIKE
//! patterns come from a [`RegexCache`] kept for the scheduler's lifetime (as Nomad's feasibility
//! context keeps its regexp cache), so matching thousands of offers compiles nothing.

use regex::Regex;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

/// Marathon's constraint operators (matched case-insensitively, as Marathon does for apps).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Operator {
    Unique,
    Cluster,
    GroupBy,
    Like,
    Unlike,
    MaxPer,
    Is,
}

impl Operator {
    pub fn parse(text: &str) -> Option<Operator> {
        Some(match text.to_ascii_uppercase().as_str() {
            "UNIQUE" => Operator::Unique,
            "CLUSTER" => Operator::Cluster,
            "GROUP_BY" => Operator::GroupBy,
            "LIKE" => Operator::Like,
            "UNLIKE" => Operator::Unlike,
            "MAX_PER" => Operator::MaxPer,
            "IS" => Operator::Is,
            _ => return None,
        })
    }
}

/// What a constraint looks at on an agent.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Field {
    Hostname,
    /// An agent attribute by name; `@region` and `@zone` name the agent's fault domain, which
    /// the driver hands over as attributes of those names.
    Attribute(String),
}

impl Field {
    fn parse(text: &str) -> Field {
        match text {
            "hostname" | "@hostname" => Field::Hostname,
            other => Field::Attribute(other.to_string()),
        }
    }

    /// The agent's value for this field, if it has one.
    pub fn value_on<'a>(
        &self,
        hostname: &'a str,
        attributes: &'a [(String, String)],
    ) -> Option<&'a str> {
        match self {
            Field::Hostname => Some(hostname),
            Field::Attribute(name) => attributes
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, v)| v.as_str()),
        }
    }
}

/// A constraint ready to be checked: the operator with its value already interpreted.
#[derive(Clone, Debug)]
pub enum Rule {
    Unique,
    /// `None`: all instances on the value of the first one placed.
    Cluster(Option<String>),
    /// Spread over at least this many values (0: no minimum).
    GroupBy(usize),
    Like(Arc<Regex>),
    Unlike(Arc<Regex>),
    MaxPer(usize),
    Is(String),
    /// Never satisfied: a constraint validation should have refused (kept so that a stored
    /// definition from an older, laxer release still places nothing rather than anywhere).
    Invalid,
}

#[derive(Clone, Debug)]
pub struct Constraint {
    pub field: Field,
    pub rule: Rule,
}

/// Compiled LIKE/UNLIKE patterns, by pattern text. Invalid patterns are remembered too.
#[derive(Default)]
pub struct RegexCache(HashMap<String, Option<Arc<Regex>>>);

impl RegexCache {
    /// The pattern compiled to match whole values (Java's `matches`), compiled at most once.
    pub fn full_match(&mut self, pattern: &str) -> Option<Arc<Regex>> {
        self.0
            .entry(pattern.to_string())
            .or_insert_with(|| Regex::new(&format!("^(?:{pattern})$")).ok().map(Arc::new))
            .clone()
    }
}

/// The fields of an app's GROUP_BY constraints: the only ones that choose which instances a
/// scale-down stops (SEMANTICS.md §6).
pub fn group_by_fields(constraints: &[Vec<String>]) -> Vec<Field> {
    constraints
        .iter()
        .filter(|raw| raw.get(1).and_then(|op| Operator::parse(op)) == Some(Operator::GroupBy))
        .map(|raw| Field::parse(raw.first().map(String::as_str).unwrap_or("")))
        .collect()
}

impl Constraint {
    pub fn parse(raw: &[String], cache: &mut RegexCache) -> Constraint {
        let field = Field::parse(raw.first().map(String::as_str).unwrap_or(""));
        let value = raw.get(2).map(String::as_str);
        let number = |v: Option<&str>| v.and_then(|v| v.parse::<usize>().ok());
        let rule = match raw.get(1).and_then(|op| Operator::parse(op)) {
            Some(Operator::Unique) => Rule::Unique,
            Some(Operator::Cluster) => {
                Rule::Cluster(value.filter(|v| !v.is_empty()).map(str::to_string))
            }
            Some(Operator::GroupBy) => Rule::GroupBy(number(value).unwrap_or(0)),
            Some(Operator::Like) => value
                .and_then(|p| cache.full_match(p))
                .map_or(Rule::Invalid, Rule::Like),
            Some(Operator::Unlike) => value
                .and_then(|p| cache.full_match(p))
                .map_or(Rule::Invalid, Rule::Unlike),
            Some(Operator::MaxPer) => number(value).map_or(Rule::Invalid, Rule::MaxPer),
            Some(Operator::Is) => value.map_or(Rule::Invalid, |v| Rule::Is(v.to_string())),
            None => Rule::Invalid,
        };
        Constraint { field, rule }
    }

    /// Whether an agent with `offered` (its value for the field, if any) may take one more
    /// instance, given how the instances already placed spread over the field (SEMANTICS.md §7;
    /// GROUP_BY is the released ≤1.10 algorithm).
    pub fn holds(&self, offered: Option<&str>, placed: &Tally) -> bool {
        let Some(offered) = offered else {
            return matches!(self.rule, Rule::Unlike(_));
        };
        match &self.rule {
            Rule::Unique => placed.count(offered) == 0,
            Rule::Cluster(Some(v)) => offered == v,
            Rule::Cluster(None) => placed
                .first
                .as_ref()
                .is_none_or(|first| first.as_deref() == Some(offered)),
            Rule::Like(re) => re.is_match(offered),
            Rule::Unlike(re) => !re.is_match(offered),
            Rule::Is(v) => offered == v,
            Rule::MaxPer(max) => placed.count(offered) < *max,
            Rule::GroupBy(minimum) => match placed.count(offered) {
                0 => true,
                n => placed.groups() >= *minimum && Some(n) == placed.smallest_group(),
            },
            Rule::Invalid => false,
        }
    }
}

/// How the instances already placed spread over one constraint's field: a count per value,
/// kept as instances are placed so that checking an offer never walks the instances.
#[derive(Clone, Debug, Default)]
pub struct Tally {
    by_value: HashMap<String, usize>,
    /// Instances on agents that have no value for the field (they form a group of their own).
    without_value: usize,
    /// How many groups hold each count: the smallest group is the first key.
    group_sizes: BTreeMap<usize, usize>,
    /// The value of the first instance placed (CLUSTER without a value follows it).
    first: Option<Option<String>>,
}

impl Tally {
    /// Counts one more instance on an agent with `value`.
    pub fn add(&mut self, value: Option<&str>) {
        if self.first.is_none() {
            self.first = Some(value.map(str::to_string));
        }
        let count = match value {
            None => &mut self.without_value,
            Some(v) => match self.by_value.get_mut(v) {
                Some(n) => n,
                None => self.by_value.entry(v.to_string()).or_insert(0),
            },
        };
        let before = *count;
        *count += 1;
        let after = *count;
        if before > 0 {
            if let Some(n) = self.group_sizes.get_mut(&before) {
                *n -= 1;
                if *n == 0 {
                    self.group_sizes.remove(&before);
                }
            }
        }
        *self.group_sizes.entry(after).or_insert(0) += 1;
    }

    fn count(&self, value: &str) -> usize {
        self.by_value.get(value).copied().unwrap_or(0)
    }

    fn groups(&self) -> usize {
        self.by_value.len() + usize::from(self.without_value > 0)
    }

    fn smallest_group(&self) -> Option<usize> {
        self.group_sizes.keys().next().copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(parts: &[&str], cache: &mut RegexCache) -> Constraint {
        let raw: Vec<String> = parts.iter().map(|s| s.to_string()).collect();
        Constraint::parse(&raw, cache)
    }

    #[test]
    fn operators_follow_marathon() {
        let mut cache = RegexCache::default();
        let none = Tally::default;
        let of = |values: &[&str]| {
            let mut tally = Tally::default();
            values.iter().for_each(|v| tally.add(Some(v)));
            tally
        };
        assert!(rule(&["rack", "LIKE", "r[0-9]"], &mut cache).holds(Some("r1"), &none()));
        assert!(!rule(&["rack", "like", "r"], &mut cache).holds(Some("r1"), &none()));
        assert!(rule(&["zone", "UNLIKE", "x"], &mut cache).holds(None, &none()));
        assert!(!rule(&["zone", "LIKE", ".*"], &mut cache).holds(None, &none()));
        assert!(rule(&["rack", "IS", "r1"], &mut cache).holds(Some("r1"), &none()));
        let max2 = rule(&["rack", "MAX_PER", "2"], &mut cache);
        assert!(max2.holds(Some("r1"), &of(&["r1"])));
        assert!(!max2.holds(Some("r1"), &of(&["r1", "r1"])));
        let cluster = rule(&["rack", "CLUSTER"], &mut cache);
        assert!(cluster.holds(Some("r2"), &none()));
        assert!(!cluster.holds(Some("r2"), &of(&["r1"])));
        let group = rule(&["rack", "GROUP_BY"], &mut cache);
        assert!(!group.holds(Some("r1"), &of(&["r1", "r1", "r2"])));
        assert!(group.holds(Some("r1"), &of(&["r1", "r2"])));
        assert!(
            group.holds(Some("r3"), &of(&["r1"])),
            "a new group is always fine"
        );
        assert!(!rule(&["rack", "FOO"], &mut cache).holds(Some("r1"), &none()));
    }

    #[test]
    fn a_pattern_is_compiled_once() {
        let mut cache = RegexCache::default();
        let a = cache.full_match("r[0-9]+").unwrap();
        let b = cache.full_match("r[0-9]+").unwrap();
        assert!(Arc::ptr_eq(&a, &b));
        assert!(cache.full_match("(").is_none());
    }
}
