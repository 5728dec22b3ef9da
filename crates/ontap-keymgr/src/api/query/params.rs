//! The reserved parameters: lists, counts, flags, `return_timeout`.

use super::QueryError;

/// The largest `return_timeout` ONTAP accepts, in seconds.
const MAX_RETURN_TIMEOUT: u32 = 120;

/// The non-empty, trimmed items of a comma-separated list.
pub(super) fn split_list(value: &str) -> impl Iterator<Item = &str> {
    value
        .split(',')
        .map(str::trim)
        .filter(|item| !item.is_empty())
}

pub(super) fn invalid(field: &str, value: &str) -> QueryError {
    QueryError::InvalidValue {
        field: field.to_owned(),
        value: value.to_owned(),
    }
}

pub(super) fn parse_count(field: &str, value: &str) -> Result<usize, QueryError> {
    value.trim().parse().map_err(|_| invalid(field, value))
}

pub(super) fn parse_flag(field: &str, value: &str) -> Result<bool, QueryError> {
    parse_bool(value).ok_or_else(|| invalid(field, value))
}

/// `true`/`false` in any case: Python clients send `True`/`False`.
pub fn parse_bool(value: &str) -> Option<bool> {
    let value = value.trim();
    if value.eq_ignore_ascii_case("true") {
        Some(true)
    } else if value.eq_ignore_ascii_case("false") {
        Some(false)
    } else {
        None
    }
}

pub(super) fn parse_return_timeout(value: &str) -> Result<u32, QueryError> {
    match value.trim().parse() {
        Ok(seconds) if seconds <= MAX_RETURN_TIMEOUT => Ok(seconds),
        _ => Err(invalid("return_timeout", value)),
    }
}
