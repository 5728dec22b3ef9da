//! Field filters: `name=ks1*|ks2`, `timeout=>=10`, `svm.name=!vs0`.

use std::cmp::Ordering;

use serde_json::Value;

use super::params::parse_bool;
use super::records::{scalar_text, values_at};

/// `field=<alternatives>`: the record matches when any alternative does.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Filter {
    pub(super) field: String,
    alternatives: Vec<Condition>,
}

/// One `|`-separated alternative, possibly negated with a leading `!`.
#[derive(Debug, Clone, PartialEq)]
struct Condition {
    negated: bool,
    test: Test,
}

/// What one alternative checks against one value.
///
/// Equality and wildcards ignore case, as ONTAP does for most string fields (names, servers,
/// user names); a JSON number equals an operand that is the same number (`10` = `10.0`).
/// Ordering comparisons are numeric when both sides parse as numbers, textual (ignoring case)
/// otherwise.
#[derive(Debug, Clone, PartialEq)]
enum Test {
    /// `null` or an empty value: the field is not set.
    Unset,
    Equals(String),
    /// Contains `*`: any run of characters, anywhere.
    Wildcard(String),
    Less(String),
    LessOrEqual(String),
    Greater(String),
    GreaterOrEqual(String),
    /// `low..high`, both ends included; an empty end is open.
    Between(String, String),
}

impl Filter {
    pub(super) fn parse(field: &str, value: &str) -> Filter {
        Filter {
            field: field.to_owned(),
            alternatives: value.split('|').map(Condition::parse).collect(),
        }
    }

    pub(super) fn matches(&self, record: &Value) -> bool {
        let values = values_at(record, &self.field);
        self.alternatives
            .iter()
            .any(|condition| condition.matches(&values))
    }
}

impl Condition {
    fn parse(alternative: &str) -> Condition {
        match alternative.strip_prefix('!') {
            Some(rest) => Condition {
                negated: true,
                test: Test::parse(rest),
            },
            None => Condition {
                negated: false,
                test: Test::parse(alternative),
            },
        }
    }

    /// `values` are the field's non-null values in one record (several through arrays).
    ///
    /// A positive test matches when any value passes. A negated one matches when the field is
    /// set and no value passes: ONTAP leaves unset fields out of matches (`!null` is the way to
    /// ask for "set"), and `secondary_key_servers=!ks1` reads as "ks1 is not among them".
    fn matches(&self, values: &[&Value]) -> bool {
        let is_set = !values.is_empty();
        match (&self.test, self.negated) {
            (Test::Unset, negated) => is_set == negated,
            (test, false) => values.iter().any(|value| test.accepts(value)),
            (test, true) => is_set && !values.iter().any(|value| test.accepts(value)),
        }
    }
}

/// Builds a comparison test from its operand.
type MakeComparison = fn(String) -> Test;

/// Two-character operators first, so `<=5` is not read as `<` and `=5`.
const COMPARISONS: [(&str, MakeComparison); 4] = [
    ("<=", Test::LessOrEqual),
    (">=", Test::GreaterOrEqual),
    ("<", Test::Less),
    (">", Test::Greater),
];

impl Test {
    fn parse(operand: &str) -> Test {
        if operand.is_empty() || operand.eq_ignore_ascii_case("null") {
            return Test::Unset;
        }
        for (operator, test) in COMPARISONS {
            if let Some(rest) = operand.strip_prefix(operator) {
                return test(rest.to_owned());
            }
        }
        if let Some((low, high)) = operand.split_once("..") {
            return Test::Between(low.to_owned(), high.to_owned());
        }
        if operand.contains('*') {
            return Test::Wildcard(operand.to_owned());
        }
        Test::Equals(operand.to_owned())
    }

    fn accepts(&self, value: &Value) -> bool {
        let is = |operand: &str, wanted: &[Ordering]| {
            compare_with(value, operand).is_some_and(|ordering| wanted.contains(&ordering))
        };
        match self {
            Test::Unset => false,
            Test::Equals(operand) => equals(value, operand),
            Test::Wildcard(pattern) => {
                scalar_text(value).is_some_and(|text| wildcard_matches(pattern, &text))
            }
            Test::Less(operand) => is(operand, &[Ordering::Less]),
            Test::LessOrEqual(operand) => is(operand, &[Ordering::Less, Ordering::Equal]),
            Test::Greater(operand) => is(operand, &[Ordering::Greater]),
            Test::GreaterOrEqual(operand) => is(operand, &[Ordering::Greater, Ordering::Equal]),
            Test::Between(low, high) => {
                (low.is_empty() || is(low, &[Ordering::Greater, Ordering::Equal]))
                    && (high.is_empty() || is(high, &[Ordering::Less, Ordering::Equal]))
            }
        }
    }
}

/// Strings compare as text only (a string "010" does not equal `10`: server names and versions
/// are not numbers); JSON numbers compare numerically; booleans take `true`/`True`/`TRUE`.
fn equals(value: &Value, operand: &str) -> bool {
    match value {
        Value::Bool(flag) => parse_bool(operand) == Some(*flag),
        Value::Number(number) => compare_text(&number.to_string(), operand).is_eq(),
        Value::String(text) => caseless_cmp(text, operand).is_eq(),
        _ => false,
    }
}

fn compare_with(value: &Value, operand: &str) -> Option<Ordering> {
    scalar_text(value).map(|text| compare_text(&text, operand))
}

/// Numerically when both sides are numbers, else as text ignoring case.
pub(super) fn compare_text(a: &str, b: &str) -> Ordering {
    compare_numbers(a, b).unwrap_or_else(|| caseless_cmp(a, b))
}

fn compare_numbers(a: &str, b: &str) -> Option<Ordering> {
    // Integers exactly first: a u64 does not fit an f64.
    if let (Ok(a), Ok(b)) = (a.parse::<i128>(), b.parse::<i128>()) {
        return Some(a.cmp(&b));
    }
    let finite = |text: &str| text.parse::<f64>().ok().filter(|n| n.is_finite());
    finite(a)?.partial_cmp(&finite(b)?)
}

pub(super) fn caseless_cmp(a: &str, b: &str) -> Ordering {
    a.to_lowercase().cmp(&b.to_lowercase())
}

/// `*` stands for any run of characters (also none); everything else matches itself, ignoring
/// case.
pub(super) fn wildcard_matches(pattern: &str, text: &str) -> bool {
    let pattern = pattern.to_lowercase();
    let text = text.to_lowercase();
    let mut pieces = pattern.split('*');
    let first = pieces.next().unwrap_or_default();
    let Some(mut rest) = text.strip_prefix(first) else {
        return false;
    };
    let mut pieces: Vec<&str> = pieces.collect();
    let last = pieces.pop().unwrap_or_default();
    for piece in pieces {
        match rest.find(piece) {
            Some(at) => rest = &rest[at + piece.len()..],
            None => return false,
        }
    }
    rest.ends_with(last)
}
