//! `order_by`: sort keys and the total order records are sorted by.

use std::cmp::Ordering;

use serde_json::Value;

use super::filter::caseless_cmp;
use super::params::{invalid, split_list};
use super::records::values_at;
use super::{QueryError, Schema};

/// One `order_by` item: `field [asc|desc]`.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct SortKey {
    pub(super) field: String,
    descending: bool,
}

pub(super) fn parse_order_by(value: &str, schema: &Schema) -> Result<Vec<SortKey>, QueryError> {
    split_list(value)
        .map(|item| SortKey::parse(item, schema))
        .collect()
}

impl SortKey {
    fn parse(item: &str, schema: &Schema) -> Result<SortKey, QueryError> {
        let mut words = item.split_whitespace();
        let field = words.next().unwrap_or_default();
        let direction = words.next();
        if words.next().is_some() {
            return Err(invalid("order_by", item));
        }
        let descending = match direction {
            None => false,
            Some(word) if word.eq_ignore_ascii_case("asc") => false,
            Some(word) if word.eq_ignore_ascii_case("desc") => true,
            Some(_) => return Err(invalid("order_by", item)),
        };
        if !schema.is_leaf(field) {
            return Err(QueryError::UnknownField(field.to_owned()));
        }
        Ok(SortKey {
            field: field.to_owned(),
            descending,
        })
    }

    /// What a record is sorted by: the field's first value (the first element through arrays).
    fn value_of<'a>(&self, record: &'a Value) -> Option<&'a Value> {
        values_at(record, &self.field).first().copied()
    }

    fn compare(&self, a: Option<&Value>, b: Option<&Value>) -> Ordering {
        let ordering = compare_for_sort(a, b);
        if self.descending {
            ordering.reverse()
        } else {
            ordering
        }
    }
}

/// Sorts `records` by `keys`, stably. Each record's values are read once, not at each of the
/// n·log n comparisons: reading walks the record's path and allocates.
pub(super) fn sort_records(records: &mut Vec<Value>, keys: &[SortKey]) {
    if keys.is_empty() {
        return;
    }
    let mut order: Vec<usize> = (0..records.len()).collect();
    {
        let values: Vec<Vec<Option<&Value>>> = records
            .iter()
            .map(|record| keys.iter().map(|key| key.value_of(record)).collect())
            .collect();
        order.sort_by(|&a, &b| {
            keys.iter()
                .zip(values[a].iter().zip(&values[b]))
                .map(|(key, (x, y))| key.compare(*x, *y))
                .find(|ordering| ordering.is_ne())
                .unwrap_or(Ordering::Equal)
        });
    }
    let mut unsorted = std::mem::take(records);
    *records = order
        .into_iter()
        .map(|index| std::mem::take(&mut unsorted[index]))
        .collect();
}

/// A total order, as `sort_by` requires: missing < booleans < numbers < strings < the rest;
/// numbers by value, strings ignoring case (never numerically, which would break transitivity
/// between numeric and other strings).
fn compare_for_sort(a: Option<&Value>, b: Option<&Value>) -> Ordering {
    match (a, b) {
        (Some(Value::Bool(a)), Some(Value::Bool(b))) => a.cmp(b),
        (Some(Value::Number(a)), Some(Value::Number(b))) => {
            let as_float = |n: &serde_json::Number| n.as_f64().unwrap_or(0.0);
            as_float(a).total_cmp(&as_float(b))
        }
        (Some(Value::String(a)), Some(Value::String(b))) => caseless_cmp(a, b),
        (a, b) => sort_rank(a).cmp(&sort_rank(b)),
    }
}

fn sort_rank(value: Option<&Value>) -> u8 {
    match value {
        None | Some(Value::Null) => 0,
        Some(Value::Bool(_)) => 1,
        Some(Value::Number(_)) => 2,
        Some(Value::String(_)) => 3,
        Some(Value::Array(_) | Value::Object(_)) => 4,
    }
}
