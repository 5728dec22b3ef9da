//! ONTAP's collection query parameters, applied to records held as JSON.
//!
//! A collection GET in ONTAP takes reserved parameters (`fields`, `max_records`, `order_by`,
//! `return_records`, `return_timeout`, `ignore_unknown_fields`) and any number of field filters
//! (`name=ks1*|ks2`, `timeout=>=10`, `svm.name=!vs0`). [`parse`] checks them against the
//! resource's [`Schema`]; the resulting [`Query`] filters, sorts, pages and projects records.
//!
//! The engine is pure: it knows nothing of HTTP, so the caller maps [`QueryError`] to ONTAP's
//! error codes and builds the response envelope.
//!
//! ```ignore
//! const SVMS: Schema = Schema {
//!     fields: &["uuid", "name", "state"],
//!     expensive: &[],
//!     keys: &["uuid", "name"],
//!     path_params: &[],
//! };
//! let query = parse(&pairs, &SVMS)?;
//! let page = query.apply_collection(records);
//! let next = page.next_offset.map(|offset| {
//!     format!("/api/svm/svms?{}", query.to_query_string(&[(START_OFFSET, offset.to_string())]))
//! });
//! ```

use std::borrow::Cow;
use std::cmp::Ordering;
use std::collections::BTreeMap;

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use serde_json::{Map, Value};

/// The reserved parameter that carries the paging position of a `_links.next.href`.
pub const START_OFFSET: &str = "start.offset";

/// ONTAP's hypermedia member: kept in every projection, at every level.
const LINKS: &str = "_links";

/// The largest `return_timeout` ONTAP accepts, in seconds.
const MAX_RETURN_TIMEOUT: u32 = 120;

/// A query parameter that ONTAP would refuse. The caller maps each variant to ONTAP's code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QueryError {
    /// A filter or `order_by` names a field the resource does not have (ONTAP code 262179).
    #[error("Unexpected argument \"{0}\".")]
    UnknownField(String),
    /// A name in `fields=` is not a field of the resource (ONTAP code 262197).
    #[error("The value \"{0}\" is invalid for field \"fields\"")]
    InvalidFieldsValue(String),
    /// A reserved parameter has a value outside its type or range.
    #[error("The value \"{value}\" is invalid for field \"{field}\"")]
    InvalidValue { field: String, value: String },
}

/// The fields of one resource, as ONTAP documents them, declared as a `const`:
///
/// ```ignore
/// const KEY_SERVERS: Schema = Schema {
///     fields: &["server", "timeout", "username", "secondary_key_servers"],
///     expensive: &["connectivity.cluster_availability", "connectivity.node_states.state"],
///     keys: &["server"],
///     path_params: &["uuid"],
/// };
/// ```
///
/// Every entry is a dotted leaf path (`svm.name`); a parent (`svm`) is a valid name in `fields=`
/// because some leaf starts with `svm.`. Paths go through arrays transparently:
/// `external.servers.server` is the `server` of each element of the `servers` array.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Schema {
    /// The normal fields: returned by `fields=*` and by an instance GET without `fields`.
    pub fields: &'static [&'static str],
    /// Fields that cost something to compute: returned only when named, or with `fields=**`.
    pub expensive: &'static [&'static str],
    /// The identifying fields, always returned (ONTAP's default collection output).
    pub keys: &'static [&'static str],
    /// The route's path variables. ONTAP accepts them as query parameters too; since the path
    /// already chose the parent, such a parameter is accepted and ignored unless it is also a
    /// field (then it filters).
    pub path_params: &'static [&'static str],
}

impl Schema {
    fn all_fields(&self) -> impl Iterator<Item = &'static str> {
        self.fields.iter().chain(self.expensive).copied()
    }

    /// A leaf field: the only names that can be filtered or sorted on.
    fn is_leaf(&self, name: &str) -> bool {
        self.all_fields().any(|field| field == name)
    }

    /// A leaf or a parent of some leaf: the names `fields=` accepts.
    fn is_path(&self, name: &str) -> bool {
        self.all_fields()
            .any(|field| field == name || is_under(field, name))
    }
}

/// What [`Query::project`] returns when the client did not send `fields`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Projection {
    /// ONTAP's collection default: the key fields (and `_links`) only.
    Keys,
    /// ONTAP's instance default: every normal field, no expensive one.
    AllNormal,
}

/// One page of records, before projection.
#[derive(Debug, Clone, PartialEq)]
pub struct Page {
    pub records: Vec<Value>,
    /// Where the next page starts, when there are records after this page.
    pub next_offset: Option<usize>,
}

/// The answer to a collection GET: filtered, sorted, paged and projected records.
#[derive(Debug, Clone, PartialEq)]
pub struct Collection {
    /// This page's records. They are there even with `return_records=false`: the caller decides
    /// whether to emit them (it needs their count either way).
    pub records: Vec<Value>,
    /// How many records this page holds.
    pub num_records: usize,
    /// Where the next page starts, when there are records after this page.
    pub next_offset: Option<usize>,
}

/// A parsed, validated set of query parameters.
#[derive(Debug, Clone, PartialEq)]
pub struct Query {
    /// `return_records`, default true.
    pub return_records: bool,
    /// `max_records`: the page size; `None` means every record.
    pub max_records: Option<usize>,
    /// `start.offset`: where this page starts in the filtered, sorted records.
    pub offset: usize,
    /// `return_timeout`, in seconds (0..=120).
    pub return_timeout: Option<u32>,
    /// `ignore_unknown_fields`: unknown names in `fields=` were dropped instead of refused.
    pub ignore_unknown_fields: bool,
    /// `pretty`: a client's wish for indented JSON.
    pub pretty: bool,
    schema: Schema,
    /// `None` when the client sent no field name at all.
    selection: Option<FieldSelection>,
    filters: Vec<Filter>,
    order_by: Vec<SortKey>,
    /// Every parameter as it came, to rebuild the query string of `_links.next`.
    params: Vec<(String, String)>,
}

/// Parses ONTAP's query parameters (already percent-decoded) against `schema`.
///
/// Parameters are checked in order and the first bad one is reported; `fields=` names are
/// checked last, because `ignore_unknown_fields` may come after them.
pub fn parse(pairs: &[(String, String)], schema: &Schema) -> Result<Query, QueryError> {
    let mut query = Query {
        return_records: true,
        max_records: None,
        offset: 0,
        return_timeout: None,
        ignore_unknown_fields: false,
        pretty: false,
        schema: *schema,
        selection: None,
        filters: Vec::new(),
        order_by: Vec::new(),
        params: pairs.to_vec(),
    };
    let mut field_names = Vec::new();
    for (name, value) in pairs {
        match name.as_str() {
            "fields" => field_names.extend(split_list(value)),
            "max_records" => query.max_records = Some(parse_count(name, value)?),
            "order_by" | "$orderBy" => query.order_by.extend(parse_order_by(value, schema)?),
            "return_records" => query.return_records = parse_flag(name, value)?,
            "return_timeout" => query.return_timeout = Some(parse_return_timeout(value)?),
            "ignore_unknown_fields" => query.ignore_unknown_fields = parse_flag(name, value)?,
            // A bare `?pretty` is a wish for pretty output.
            "pretty" => query.pretty = value.trim().is_empty() || parse_flag(name, value)?,
            START_OFFSET => query.offset = parse_count(name, value)?,
            "start" => {}
            _ if schema.is_leaf(name) => query.filters.push(Filter::parse(name, value)),
            _ if schema.path_params.contains(&name.as_str()) => {}
            _ => return Err(QueryError::UnknownField(name.clone())),
        }
    }
    query.selection = FieldSelection::resolve(&field_names, schema, query.ignore_unknown_fields)?;
    Ok(query)
}

impl Query {
    /// Keeps the records that match every filter.
    pub fn filter(&self, records: Vec<Value>) -> Vec<Value> {
        records
            .into_iter()
            .filter(|record| self.filters.iter().all(|filter| filter.matches(record)))
            .collect()
    }

    /// Sorts by the `order_by` keys, in order. Missing values come first in ascending order,
    /// numbers compare numerically, strings case-insensitively; ties keep their order.
    pub fn sort(&self, records: &mut [Value]) {
        if !self.order_by.is_empty() {
            records.sort_by(|a, b| self.compare_records(a, b));
        }
    }

    /// Whether the response needs `field` or any field under or above it: it was named in
    /// `fields=` (or covered by `*` / `**`), or a filter or `order_by` uses it. Meant for
    /// expensive fields, which no default projection includes, so the caller computes them only
    /// when asked to.
    pub fn needs(&self, field: &str) -> bool {
        self.requested_paths()
            .any(|requested| paths_overlap(requested, field))
    }

    /// Keeps the requested fields of `record`, plus its keys, the fields used by filters and
    /// every `_links`. Without `fields=`, `default` decides. Expensive fields are dropped unless
    /// requested, even from `*`.
    pub fn project(&self, record: &Value, default: Projection) -> Value {
        self.keep_tree(default).project(record)
    }

    /// `max_records` records from `offset`, and where the next page would start.
    pub fn page(&self, records: Vec<Value>, offset: usize) -> Page {
        let total = records.len();
        let start = offset.min(total);
        let size = self.max_records.unwrap_or(usize::MAX);
        let end = start.saturating_add(size).min(total);
        // A page of zero records would link to itself forever.
        let next_offset = (end < total && size > 0).then_some(end);
        let records = records.into_iter().skip(start).take(end - start).collect();
        Page {
            records,
            next_offset,
        }
    }

    /// A collection GET: filter → sort → page from [`Query::offset`] → project with
    /// [`Projection::Keys`].
    pub fn apply_collection(&self, records: Vec<Value>) -> Collection {
        let mut records = self.filter(records);
        self.sort(&mut records);
        let page = self.page(records, self.offset);
        let keep = self.keep_tree(Projection::Keys);
        let records: Vec<Value> = page.records.iter().map(|r| keep.project(r)).collect();
        Collection {
            num_records: records.len(),
            records,
            next_offset: page.next_offset,
        }
    }

    /// The original parameters, percent-encoded, without any paging position, followed by
    /// `extra`: the query string of a `_links.next.href`. NetApp's Python client follows that
    /// link without its own parameters, so the link must carry them all.
    pub fn to_query_string(&self, extra: &[(&str, String)]) -> String {
        let kept = self
            .params
            .iter()
            .filter(|(name, _)| !is_paging_position(name))
            .map(|(name, value)| (name.as_str(), value.as_str()));
        let extra = extra.iter().map(|(name, value)| (*name, value.as_str()));
        kept.chain(extra)
            .map(|(name, value)| format!("{}={}", encode(name), encode(value)))
            .collect::<Vec<_>>()
            .join("&")
    }

    /// `path?<original parameters>&start.offset=<next_offset>`.
    pub fn next_href(&self, path: &str, next_offset: usize) -> String {
        let query = self.to_query_string(&[(START_OFFSET, next_offset.to_string())]);
        format!("{path}?{query}")
    }

    fn compare_records(&self, a: &Value, b: &Value) -> Ordering {
        self.order_by
            .iter()
            .map(|key| key.compare(a, b))
            .find(|ordering| ordering.is_ne())
            .unwrap_or(Ordering::Equal)
    }

    /// The paths the client asked for, one way or another.
    fn requested_paths(&self) -> impl Iterator<Item = &str> {
        let selected = self.selection.iter().flat_map(|selection| {
            let normal = selection.all_normal.then_some(self.schema.fields);
            let expensive = selection.all_expensive.then_some(self.schema.expensive);
            let wildcards = normal.into_iter().chain(expensive).flatten().copied();
            selection.names.iter().map(String::as_str).chain(wildcards)
        });
        let filtered = self.filters.iter().map(|filter| filter.field.as_str());
        let sorted = self.order_by.iter().map(|key| key.field.as_str());
        selected.chain(filtered).chain(sorted)
    }

    fn keep_tree(&self, default: Projection) -> KeepTree {
        let mut tree = KeepTree::default();
        match &self.selection {
            Some(selection) => selection.add_to(&mut tree, &self.schema),
            None if default == Projection::AllNormal => tree.insert_all(self.schema.fields),
            None => {}
        }
        tree.insert_all(self.schema.keys);
        // ONTAP returns the fields a query filtered on.
        for filter in &self.filters {
            tree.insert(&filter.field);
        }
        tree
    }
}

fn is_paging_position(name: &str) -> bool {
    name == START_OFFSET || name == "start"
}

/// Leaves `-_.~` and alphanumerics as they are, as RFC 3986 allows in a query.
fn encode(text: &str) -> String {
    const QUERY_COMPONENT: &AsciiSet = &NON_ALPHANUMERIC
        .remove(b'-')
        .remove(b'_')
        .remove(b'.')
        .remove(b'~');
    utf8_percent_encode(text, QUERY_COMPONENT).to_string()
}

// ---------------------------------------------------------------------------------------------
// Reserved parameters

/// The non-empty, trimmed items of a comma-separated list.
fn split_list(value: &str) -> impl Iterator<Item = &str> {
    value
        .split(',')
        .map(str::trim)
        .filter(|item| !item.is_empty())
}

fn invalid(field: &str, value: &str) -> QueryError {
    QueryError::InvalidValue {
        field: field.to_owned(),
        value: value.to_owned(),
    }
}

fn parse_count(field: &str, value: &str) -> Result<usize, QueryError> {
    value.trim().parse().map_err(|_| invalid(field, value))
}

fn parse_flag(field: &str, value: &str) -> Result<bool, QueryError> {
    parse_bool(value).ok_or_else(|| invalid(field, value))
}

/// `true`/`false` in any case: Python clients send `True`/`False`.
fn parse_bool(value: &str) -> Option<bool> {
    let value = value.trim();
    if value.eq_ignore_ascii_case("true") {
        Some(true)
    } else if value.eq_ignore_ascii_case("false") {
        Some(false)
    } else {
        None
    }
}

fn parse_return_timeout(value: &str) -> Result<u32, QueryError> {
    match value.trim().parse() {
        Ok(seconds) if seconds <= MAX_RETURN_TIMEOUT => Ok(seconds),
        _ => Err(invalid("return_timeout", value)),
    }
}

// ---------------------------------------------------------------------------------------------
// fields=

/// What `fields=` asked for.
#[derive(Debug, Clone, PartialEq)]
struct FieldSelection {
    /// `*` or `**`.
    all_normal: bool,
    /// `**`.
    all_expensive: bool,
    /// Named leaves and parents.
    names: Vec<String>,
}

impl FieldSelection {
    /// `None` when no name was sent at all (`fields=` empty or absent): the default applies.
    /// Names dropped by `ignore_unknown_fields` still count as a selection, so
    /// `fields=bogus&ignore_unknown_fields=true` returns the keys only.
    fn resolve(
        names: &[&str],
        schema: &Schema,
        ignore_unknown: bool,
    ) -> Result<Option<FieldSelection>, QueryError> {
        if names.is_empty() {
            return Ok(None);
        }
        let mut selection = FieldSelection {
            all_normal: false,
            all_expensive: false,
            names: Vec::new(),
        };
        for &name in names {
            match name {
                "*" => selection.all_normal = true,
                "**" => (selection.all_normal, selection.all_expensive) = (true, true),
                // Always returned; naming it changes nothing.
                LINKS => {}
                _ if schema.is_path(name) => selection.names.push(name.to_owned()),
                _ if ignore_unknown => {}
                _ => return Err(QueryError::InvalidFieldsValue(name.to_owned())),
            }
        }
        Ok(Some(selection))
    }

    fn add_to(&self, tree: &mut KeepTree, schema: &Schema) {
        if self.all_normal {
            tree.insert_all(schema.fields);
        }
        if self.all_expensive {
            tree.insert_all(schema.expensive);
        }
        for name in &self.names {
            tree.insert(name);
        }
    }
}

/// The paths a projection keeps, as a tree of path segments. A node marked `whole` keeps its
/// value entirely: a leaf, or a parent the client named (`fields=svm` keeps all of `svm`).
#[derive(Debug, Default)]
struct KeepTree {
    whole: bool,
    children: BTreeMap<String, KeepTree>,
}

impl KeepTree {
    fn insert(&mut self, path: &str) {
        let node = path.split('.').fold(self, |node, segment| {
            node.children.entry(segment.to_owned()).or_default()
        });
        node.whole = true;
    }

    fn insert_all(&mut self, paths: &[&str]) {
        for path in paths {
            self.insert(path);
        }
    }

    fn project(&self, value: &Value) -> Value {
        if self.whole {
            return value.clone();
        }
        match value {
            Value::Object(members) => Value::Object(self.project_object(members)),
            // Paths go through arrays: project each element the same way.
            Value::Array(items) => {
                Value::Array(items.iter().map(|item| self.project(item)).collect())
            }
            // The schema expected an object; there is nothing to pick from a scalar.
            scalar => scalar.clone(),
        }
    }

    fn project_object(&self, members: &Map<String, Value>) -> Map<String, Value> {
        let mut kept = Map::new();
        for (name, value) in members {
            if name == LINKS {
                kept.insert(name.clone(), value.clone());
                continue;
            }
            let Some(child) = self.children.get(name) else {
                continue;
            };
            let projected = child.project(value);
            // `fields=svm.name` on an SVM without a name should not leave `"svm": {}` behind.
            if is_empty_object(&projected) && !is_empty_object(value) {
                continue;
            }
            kept.insert(name.clone(), projected);
        }
        kept
    }
}

fn is_empty_object(value: &Value) -> bool {
    value.as_object().is_some_and(Map::is_empty)
}

/// `child` is strictly below `parent` (`svm.name` is under `svm`, `svmx` is not).
fn is_under(child: &str, parent: &str) -> bool {
    child
        .strip_prefix(parent)
        .is_some_and(|rest| rest.starts_with('.'))
}

fn paths_overlap(a: &str, b: &str) -> bool {
    a == b || is_under(a, b) || is_under(b, a)
}

// ---------------------------------------------------------------------------------------------
// Reading records

/// The non-null values at a dotted `path`. Arrays met on the way, or at the end, are flattened:
/// `external.servers.server` gives the `server` of every element of `servers`.
fn values_at<'a>(record: &'a Value, path: &str) -> Vec<&'a Value> {
    let segments: Vec<&str> = path.split('.').collect();
    let mut found = Vec::new();
    collect_values(record, &segments, &mut found);
    found
}

fn collect_values<'a>(value: &'a Value, segments: &[&str], found: &mut Vec<&'a Value>) {
    match value {
        Value::Null => {}
        Value::Array(items) => {
            for item in items {
                collect_values(item, segments, found);
            }
        }
        _ => match segments.split_first() {
            None => found.push(value),
            Some((segment, rest)) => {
                if let Some(child) = value.get(segment) {
                    collect_values(child, rest, found);
                }
            }
        },
    }
}

/// A scalar as the text a filter compares with.
fn scalar_text(value: &Value) -> Option<Cow<'_, str>> {
    match value {
        Value::String(text) => Some(Cow::Borrowed(text)),
        Value::Number(number) => Some(Cow::Owned(number.to_string())),
        Value::Bool(flag) => Some(Cow::Borrowed(if *flag { "true" } else { "false" })),
        _ => None,
    }
}

// ---------------------------------------------------------------------------------------------
// Filters

/// `field=<alternatives>`: the record matches when any alternative does.
#[derive(Debug, Clone, PartialEq)]
struct Filter {
    field: String,
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
    fn parse(field: &str, value: &str) -> Filter {
        Filter {
            field: field.to_owned(),
            alternatives: value.split('|').map(Condition::parse).collect(),
        }
    }

    fn matches(&self, record: &Value) -> bool {
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
fn compare_text(a: &str, b: &str) -> Ordering {
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

fn caseless_cmp(a: &str, b: &str) -> Ordering {
    a.to_lowercase().cmp(&b.to_lowercase())
}

/// `*` stands for any run of characters (also none); everything else matches itself, ignoring
/// case.
fn wildcard_matches(pattern: &str, text: &str) -> bool {
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

// ---------------------------------------------------------------------------------------------
// order_by

/// One `order_by` item: `field [asc|desc]`.
#[derive(Debug, Clone, PartialEq)]
struct SortKey {
    field: String,
    descending: bool,
}

fn parse_order_by(value: &str, schema: &Schema) -> Result<Vec<SortKey>, QueryError> {
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

    /// Compares by the first value of the field (the first element through arrays).
    fn compare(&self, a: &Value, b: &Value) -> Ordering {
        let first = |record| values_at(record, &self.field).first().copied();
        let ordering = compare_for_sort(first(a), first(b));
        if self.descending {
            ordering.reverse()
        } else {
            ordering
        }
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const KEY_SERVERS: Schema = Schema {
        fields: &[
            "server",
            "timeout",
            "username",
            "secondary_key_servers",
            "create_remove_timeout",
        ],
        expensive: &[
            "connectivity.cluster_availability",
            "connectivity.node_states.node.name",
            "connectivity.node_states.node.uuid",
            "connectivity.node_states.state",
        ],
        keys: &["server"],
        path_params: &["uuid"],
    };

    const KEY_MANAGERS: Schema = Schema {
        fields: &[
            "uuid",
            "scope",
            "svm.name",
            "svm.uuid",
            "external.client_certificate.uuid",
            "external.client_certificate.name",
            "external.server_ca_certificates.uuid",
            "external.server_ca_certificates.name",
            "external.servers.server",
            "external.servers.timeout",
            "external.servers.username",
            "external.servers.secondary_key_servers",
            "onboard.enabled",
            "onboard.key_backup",
        ],
        expensive: &["status.code", "status.message"],
        keys: &["uuid"],
        path_params: &[],
    };

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(name, value)| (name.to_string(), value.to_string()))
            .collect()
    }

    fn query(schema: &Schema, list: &[(&str, &str)]) -> Query {
        parse(&pairs(list), schema).expect("valid query")
    }

    fn error(schema: &Schema, list: &[(&str, &str)]) -> QueryError {
        parse(&pairs(list), schema).expect_err("invalid query")
    }

    fn key_server(server: &str, timeout: i64, secondaries: &[&str]) -> Value {
        json!({
            "server": server,
            "timeout": timeout,
            "username": format!("user-{server}"),
            "secondary_key_servers": secondaries,
            "create_remove_timeout": 60,
            "connectivity": {
                "cluster_availability": true,
                "node_states": [{"node": {"name": "node1", "uuid": "n-1"}, "state": "available"}]
            },
            "_links": {"self": {"href": format!("/api/x/{server}")}}
        })
    }

    fn key_servers() -> Vec<Value> {
        vec![
            key_server("ks1.example.com:5696", 10, &["ks1b.example.com"]),
            key_server("KS2.example.com:5696", 25, &[]),
            key_server(
                "ks10.other.net:5696",
                5,
                &["backup.other.net", "ks1b.example.com"],
            ),
            json!({"server": "ks3.example.com:5696", "username": null}),
        ]
    }

    fn key_manager(uuid: &str, svm: Option<&str>, servers: &[(&str, i64)]) -> Value {
        let servers: Vec<Value> = servers
            .iter()
            .map(|(server, timeout)| {
                json!({"server": server, "timeout": timeout, "username": "admin",
                       "secondary_key_servers": [], "_links": {"self": {"href": "/s"}}})
            })
            .collect();
        let scope = if svm.is_some() { "svm" } else { "cluster" };
        let mut record = json!({
            "uuid": uuid,
            "scope": scope,
            "external": {
                "client_certificate": {"uuid": "c-1", "name": "client"},
                "server_ca_certificates": [{"uuid": "ca-1", "name": "ca"}],
                "servers": servers
            },
            "onboard": {"enabled": false},
            "status": {"code": 65537300, "message": "ok"},
            "_links": {"self": {"href": format!("/api/security/key-managers/{uuid}")}}
        });
        if let Some(name) = svm {
            record["svm"] = json!({"name": name, "uuid": format!("svm-{name}"), "_links": {"self": {"href": "/svm"}}});
        }
        record
    }

    fn servers_of(records: &[Value]) -> Vec<&str> {
        records
            .iter()
            .map(|record| record["server"].as_str().unwrap_or("?"))
            .collect()
    }

    fn filter_servers(list: &[(&str, &str)]) -> Vec<String> {
        let records = query(&KEY_SERVERS, list).filter(key_servers());
        servers_of(&records).iter().map(|s| s.to_string()).collect()
    }

    // --- parsing -------------------------------------------------------------------------

    #[test]
    fn defaults_without_parameters() {
        let query = query(&KEY_SERVERS, &[]);
        assert!(query.return_records);
        assert_eq!(query.max_records, None);
        assert_eq!(query.offset, 0);
        assert_eq!(query.return_timeout, None);
        assert!(!query.ignore_unknown_fields);
        assert_eq!(query.filter(key_servers()).len(), 4);
    }

    #[test]
    fn reads_reserved_parameters() {
        let query = query(
            &KEY_SERVERS,
            &[
                ("max_records", "2"),
                ("return_records", "False"),
                ("return_timeout", "120"),
                ("ignore_unknown_fields", "TRUE"),
                ("start.offset", "4"),
                ("start", "whatever"),
                ("pretty", ""),
                ("uuid", "path-param"),
            ],
        );
        assert_eq!(query.max_records, Some(2));
        assert!(!query.return_records);
        assert_eq!(query.return_timeout, Some(120));
        assert!(query.ignore_unknown_fields);
        assert_eq!(query.offset, 4);
        assert!(query.pretty);
    }

    #[test]
    fn booleans_accept_python_spelling() {
        for (text, expected) in [
            ("true", true),
            ("True", true),
            ("false", false),
            ("False", false),
        ] {
            assert_eq!(
                query(&KEY_SERVERS, &[("return_records", text)]).return_records,
                expected
            );
        }
    }

    #[test]
    fn refuses_bad_reserved_values() {
        let cases = [
            ("max_records", "abc"),
            ("max_records", "-1"),
            ("max_records", "1.5"),
            ("return_records", "maybe"),
            ("return_timeout", "500"),
            ("return_timeout", "-1"),
            ("ignore_unknown_fields", "yes"),
            ("start.offset", "x"),
        ];
        for (field, value) in cases {
            assert_eq!(
                error(&KEY_SERVERS, &[(field, value)]),
                QueryError::InvalidValue {
                    field: field.into(),
                    value: value.into()
                },
                "{field}={value}"
            );
        }
    }

    #[test]
    fn unknown_filter_is_an_unexpected_argument() {
        assert_eq!(
            error(&KEY_SERVERS, &[("bogus", "1")]),
            QueryError::UnknownField("bogus".into())
        );
        // A parent is not a filterable field.
        assert_eq!(
            error(&KEY_MANAGERS, &[("svm", "vs0")]),
            QueryError::UnknownField("svm".into())
        );
        assert_eq!(
            QueryError::UnknownField("bogus".into()).to_string(),
            "Unexpected argument \"bogus\"."
        );
    }

    #[test]
    fn unknown_fields_name_is_invalid_unless_ignored() {
        assert_eq!(
            error(&KEY_SERVERS, &[("fields", "server,bogus")]),
            QueryError::InvalidFieldsValue("bogus".into())
        );
        assert_eq!(
            QueryError::InvalidFieldsValue("bogus".into()).to_string(),
            "The value \"bogus\" is invalid for field \"fields\""
        );
        // ignore_unknown_fields may come after fields.
        let query = query(
            &KEY_SERVERS,
            &[
                ("fields", "timeout,bogus"),
                ("ignore_unknown_fields", "true"),
            ],
        );
        let projected = query.project(&key_servers()[0], Projection::Keys);
        assert_eq!(
            projected,
            json!({"server": "ks1.example.com:5696", "timeout": 10,
                   "_links": {"self": {"href": "/api/x/ks1.example.com:5696"}}})
        );
    }

    #[test]
    fn fields_accepts_parents_and_expensive_names() {
        for name in [
            "svm",
            "external",
            "external.servers",
            "status",
            "status.code",
            "onboard.enabled",
        ] {
            assert!(
                parse(&pairs(&[("fields", name)]), &KEY_MANAGERS).is_ok(),
                "{name}"
            );
        }
        for name in [
            "sv",
            "svm.nam",
            "svm.name.x",
            "external.servers.server.port",
        ] {
            assert_eq!(
                error(&KEY_MANAGERS, &[("fields", name)]),
                QueryError::InvalidFieldsValue(name.into())
            );
        }
    }

    #[test]
    fn order_by_syntax() {
        assert!(
            parse(
                &pairs(&[("order_by", "server asc, timeout DESC")]),
                &KEY_SERVERS
            )
            .is_ok()
        );
        assert!(parse(&pairs(&[("$orderBy", "timeout")]), &KEY_SERVERS).is_ok());
        assert_eq!(
            error(&KEY_SERVERS, &[("order_by", "server sideways")]),
            QueryError::InvalidValue {
                field: "order_by".into(),
                value: "server sideways".into()
            }
        );
        assert_eq!(
            error(&KEY_SERVERS, &[("order_by", "server asc desc")]),
            QueryError::InvalidValue {
                field: "order_by".into(),
                value: "server asc desc".into()
            }
        );
        assert_eq!(
            error(&KEY_SERVERS, &[("order_by", "bogus desc")]),
            QueryError::UnknownField("bogus".into())
        );
    }

    #[test]
    fn odd_inputs_do_not_panic() {
        let odd = [
            "", "|", "||", "!", "!!", "*", "**", "..", "<", ">=", "<=..", "ü*ß", "*ǅ*", "\u{0}",
            "!*|",
        ];
        for value in odd {
            for field in [
                "server",
                "timeout",
                "secondary_key_servers",
                "connectivity.node_states.state",
            ] {
                let _ = query(&KEY_SERVERS, &[(field, value)]).filter(key_servers());
            }
            let _ = parse(&pairs(&[("fields", value)]), &KEY_SERVERS);
            let _ = parse(&pairs(&[("order_by", value)]), &KEY_SERVERS);
            let _ = parse(&pairs(&[("max_records", value)]), &KEY_SERVERS);
        }
        let _ = query(
            &KEY_SERVERS,
            &[
                ("max_records", "18446744073709551615"),
                ("start.offset", "18446744073709551615"),
            ],
        )
        .apply_collection(key_servers());
    }

    // --- filters -------------------------------------------------------------------------

    #[test]
    fn equality_ignores_case() {
        assert_eq!(
            filter_servers(&[("server", "ks2.EXAMPLE.com:5696")]),
            ["KS2.example.com:5696"]
        );
        assert!(filter_servers(&[("server", "ks2.example.com")]).is_empty());
    }

    #[test]
    fn wildcards_match_anywhere() {
        assert_eq!(
            filter_servers(&[("server", "ks1*")]),
            ["ks1.example.com:5696", "ks10.other.net:5696"]
        );
        assert_eq!(
            filter_servers(&[("server", "*EXAMPLE*")]),
            [
                "ks1.example.com:5696",
                "KS2.example.com:5696",
                "ks3.example.com:5696"
            ]
        );
        assert_eq!(
            filter_servers(&[("server", "*.net:5696")]),
            ["ks10.other.net:5696"]
        );
        assert_eq!(
            filter_servers(&[("server", "k*1*other*")]),
            ["ks10.other.net:5696"]
        );
        assert_eq!(filter_servers(&[("server", "*")]).len(), 4);
        assert_eq!(
            filter_servers(&[("timeout", "2*")]),
            ["KS2.example.com:5696"]
        );
    }

    #[test]
    fn wildcard_pieces_do_not_overlap() {
        assert!(wildcard_matches("ab*ba", "abba"));
        assert!(!wildcard_matches("ab*ba", "aba"));
        assert!(wildcard_matches("a*a*a", "aaa"));
        assert!(!wildcard_matches("a*a*a", "aa"));
    }

    #[test]
    fn numeric_comparisons() {
        assert_eq!(
            filter_servers(&[("timeout", "<10")]),
            ["ks10.other.net:5696"]
        );
        assert_eq!(
            filter_servers(&[("timeout", "<=10")]),
            ["ks1.example.com:5696", "ks10.other.net:5696"]
        );
        assert_eq!(
            filter_servers(&[("timeout", ">10")]),
            ["KS2.example.com:5696"]
        );
        assert_eq!(
            filter_servers(&[("timeout", ">=10")]),
            ["ks1.example.com:5696", "KS2.example.com:5696"]
        );
        // Numerically, 5 < 10 although "5" > "10" as text.
        assert_eq!(
            filter_servers(&[("timeout", "5..10")]),
            ["ks1.example.com:5696", "ks10.other.net:5696"]
        );
        assert_eq!(
            filter_servers(&[("timeout", "10")]),
            ["ks1.example.com:5696"]
        );
        assert_eq!(
            filter_servers(&[("timeout", "10.0")]),
            ["ks1.example.com:5696"]
        );
    }

    #[test]
    fn open_ranges() {
        assert_eq!(
            filter_servers(&[("timeout", "20..")]),
            ["KS2.example.com:5696"]
        );
        assert_eq!(
            filter_servers(&[("timeout", "..5")]),
            ["ks10.other.net:5696"]
        );
    }

    #[test]
    fn string_comparisons_fall_back_to_text() {
        assert_eq!(
            filter_servers(&[("server", "<ks1.example.com:5696")]),
            Vec::<String>::new()
        );
        assert_eq!(
            filter_servers(&[("server", ">=ks2")]),
            ["KS2.example.com:5696", "ks3.example.com:5696"]
        );
        assert_eq!(
            filter_servers(&[("server", "ks1..ks2")]),
            ["ks1.example.com:5696", "ks10.other.net:5696"]
        );
        // Text and number: compared as text.
        assert!(filter_servers(&[("timeout", ">abc")]).is_empty());
        assert!(compare_text("9", "10").is_lt());
        assert!(compare_text("b", "A").is_gt());
        assert!(compare_text("18446744073709551615", "18446744073709551614").is_gt());
    }

    #[test]
    fn string_equality_is_not_numeric() {
        let record = json!({"server": "010"});
        let query = query(&KEY_SERVERS, &[("server", "10")]);
        assert!(query.filter(vec![record.clone()]).is_empty());
        let query = parse(&pairs(&[("server", "010")]), &KEY_SERVERS).expect("valid");
        assert_eq!(query.filter(vec![record]).len(), 1);
    }

    #[test]
    fn or_and_not() {
        assert_eq!(
            filter_servers(&[("server", "ks1*|ks3*")]),
            [
                "ks1.example.com:5696",
                "ks10.other.net:5696",
                "ks3.example.com:5696"
            ]
        );
        assert_eq!(
            filter_servers(&[("server", "!ks1*")]),
            ["KS2.example.com:5696", "ks3.example.com:5696"]
        );
        // `!a|b` is not-a OR b.
        assert_eq!(
            filter_servers(&[("server", "!ks1*|ks10*")]),
            [
                "KS2.example.com:5696",
                "ks10.other.net:5696",
                "ks3.example.com:5696"
            ]
        );
        assert_eq!(
            filter_servers(&[("timeout", "!10")]),
            ["KS2.example.com:5696", "ks10.other.net:5696"]
        );
        assert_eq!(
            filter_servers(&[("timeout", "!<10")]),
            ["ks1.example.com:5696", "KS2.example.com:5696"]
        );
    }

    #[test]
    fn several_filters_are_anded() {
        assert_eq!(
            filter_servers(&[("server", "ks*"), ("timeout", ">=10")]),
            ["ks1.example.com:5696", "KS2.example.com:5696"]
        );
        assert_eq!(
            filter_servers(&[("timeout", ">1"), ("timeout", "<20")]),
            ["ks1.example.com:5696", "ks10.other.net:5696"]
        );
    }

    #[test]
    fn null_matches_unset_fields() {
        assert_eq!(
            filter_servers(&[("timeout", "null")]),
            ["ks3.example.com:5696"]
        );
        assert_eq!(filter_servers(&[("timeout", "")]), ["ks3.example.com:5696"]);
        // username is an explicit null on ks3.
        assert_eq!(
            filter_servers(&[("username", "NULL")]),
            ["ks3.example.com:5696"]
        );
        assert_eq!(filter_servers(&[("timeout", "!null")]).len(), 3);
        // An empty array is unset too.
        assert_eq!(
            filter_servers(&[("secondary_key_servers", "null")]),
            ["KS2.example.com:5696", "ks3.example.com:5696"]
        );
        // Unset fields never match a value, even a negated one.
        assert!(
            !filter_servers(&[("timeout", "!10")]).contains(&"ks3.example.com:5696".to_string())
        );
        assert_eq!(
            filter_servers(&[("timeout", "null|25")]),
            ["KS2.example.com:5696", "ks3.example.com:5696"]
        );
    }

    #[test]
    fn arrays_of_strings_match_any_element() {
        assert_eq!(
            filter_servers(&[("secondary_key_servers", "ks1b.example.com")]),
            ["ks1.example.com:5696", "ks10.other.net:5696"]
        );
        assert_eq!(
            filter_servers(&[("secondary_key_servers", "backup*")]),
            ["ks10.other.net:5696"]
        );
        // Negated: the element is not among them (and the array is not empty).
        assert_eq!(
            filter_servers(&[("secondary_key_servers", "!backup*")]),
            ["ks1.example.com:5696"]
        );
    }

    #[test]
    fn paths_through_arrays_of_objects() {
        let records = vec![
            key_manager("km-1", None, &[("ks1:5696", 10), ("ks2:5696", 20)]),
            key_manager("km-2", Some("vs0"), &[("ks3:5696", 30)]),
            key_manager("km-3", Some("vs1"), &[]),
        ];
        let uuids = |list: &[(&str, &str)]| -> Vec<String> {
            query(&KEY_MANAGERS, list)
                .filter(records.clone())
                .iter()
                .map(|r| r["uuid"].as_str().unwrap_or("?").to_string())
                .collect()
        };
        assert_eq!(uuids(&[("external.servers.server", "ks2:5696")]), ["km-1"]);
        assert_eq!(
            uuids(&[("external.servers.server", "ks*")]),
            ["km-1", "km-2"]
        );
        assert_eq!(
            uuids(&[("external.servers.timeout", ">15")]),
            ["km-1", "km-2"]
        );
        assert_eq!(uuids(&[("external.servers.server", "null")]), ["km-3"]);
        assert_eq!(uuids(&[("svm.name", "VS0")]), ["km-2"]);
        assert_eq!(uuids(&[("svm.name", "null")]), ["km-1"]);
        assert_eq!(
            uuids(&[("scope", "cluster|svm"), ("svm.name", "!vs0")]),
            ["km-3"]
        );
        assert_eq!(
            uuids(&[("external.server_ca_certificates.name", "ca")]).len(),
            3
        );
        assert_eq!(uuids(&[("status.code", "65537300")]).len(), 3);
    }

    #[test]
    fn booleans_match_true_and_false() {
        let records = vec![
            json!({"uuid": "a", "onboard": {"enabled": true}}),
            json!({"uuid": "b", "onboard": {"enabled": false}}),
        ];
        for (value, expected) in [("true", "a"), ("True", "a"), ("FALSE", "b"), ("false", "b")] {
            let found = query(&KEY_MANAGERS, &[("onboard.enabled", value)]).filter(records.clone());
            assert_eq!(found.len(), 1, "{value}");
            assert_eq!(found[0]["uuid"], expected);
        }
        assert!(
            query(&KEY_MANAGERS, &[("onboard.enabled", "yes")])
                .filter(records.clone())
                .is_empty()
        );
        assert_eq!(
            query(&KEY_MANAGERS, &[("onboard.enabled", "!true")])
                .filter(records)
                .len(),
            1
        );
    }

    // --- sorting -------------------------------------------------------------------------

    #[test]
    fn sorts_ascending_by_default_ignoring_case() {
        let mut records = key_servers();
        query(&KEY_SERVERS, &[("order_by", "server")]).sort(&mut records);
        assert_eq!(
            servers_of(&records),
            [
                "ks1.example.com:5696",
                "ks10.other.net:5696",
                "KS2.example.com:5696",
                "ks3.example.com:5696"
            ]
        );
    }

    #[test]
    fn sorts_numbers_numerically_with_missing_first() {
        let mut records = key_servers();
        query(&KEY_SERVERS, &[("order_by", "timeout")]).sort(&mut records);
        assert_eq!(
            servers_of(&records),
            [
                "ks3.example.com:5696",
                "ks10.other.net:5696",
                "ks1.example.com:5696",
                "KS2.example.com:5696"
            ]
        );
        query(&KEY_SERVERS, &[("order_by", "timeout desc")]).sort(&mut records);
        assert_eq!(
            servers_of(&records),
            [
                "KS2.example.com:5696",
                "ks1.example.com:5696",
                "ks10.other.net:5696",
                "ks3.example.com:5696"
            ]
        );
    }

    #[test]
    fn sorts_by_several_keys_stably() {
        let mut records = vec![
            json!({"server": "b", "timeout": 1, "username": "x"}),
            json!({"server": "a", "timeout": 2, "username": "y"}),
            json!({"server": "c", "timeout": 1, "username": "z"}),
            json!({"server": "d", "timeout": 2, "username": "w"}),
            json!({"server": "e", "timeout": 1, "username": "x"}),
        ];
        query(&KEY_SERVERS, &[("order_by", "timeout desc,username")]).sort(&mut records);
        assert_eq!(servers_of(&records), ["d", "a", "b", "e", "c"]);
        // order_by given twice: keys append.
        query(
            &KEY_SERVERS,
            &[("order_by", "username"), ("order_by", "server desc")],
        )
        .sort(&mut records);
        assert_eq!(servers_of(&records), ["d", "e", "b", "a", "c"]);
    }

    #[test]
    fn sorts_mixed_types_without_panicking() {
        let mut records = vec![
            json!({"server": "s", "timeout": "text"}),
            json!({"server": "n", "timeout": 3}),
            json!({"server": "b", "timeout": true}),
            json!({"server": "m"}),
            json!({"server": "o", "timeout": {"x": 1}}),
            json!({"server": "f", "timeout": 1.5}),
        ];
        query(&KEY_SERVERS, &[("order_by", "timeout")]).sort(&mut records);
        assert_eq!(servers_of(&records), ["m", "b", "f", "n", "s", "o"]);
    }

    // --- projection ----------------------------------------------------------------------

    #[test]
    fn collection_default_is_keys_and_links() {
        let query = query(&KEY_SERVERS, &[]);
        assert_eq!(
            query.project(&key_servers()[0], Projection::Keys),
            json!({"server": "ks1.example.com:5696",
                   "_links": {"self": {"href": "/api/x/ks1.example.com:5696"}}})
        );
    }

    #[test]
    fn instance_default_is_all_normal_fields() {
        let query = query(&KEY_SERVERS, &[]);
        let projected = query.project(&key_servers()[0], Projection::AllNormal);
        let mut expected = key_servers()[0].clone();
        if let Some(members) = expected.as_object_mut() {
            members.remove("connectivity");
        }
        assert_eq!(projected, expected);
    }

    #[test]
    fn star_is_normal_fields_and_double_star_adds_expensive() {
        let record = key_servers()[0].clone();
        let star = query(&KEY_SERVERS, &[("fields", "*")]).project(&record, Projection::Keys);
        assert!(star.get("connectivity").is_none());
        assert_eq!(star["timeout"], 10);
        assert_eq!(star["secondary_key_servers"], json!(["ks1b.example.com"]));
        let all = query(&KEY_SERVERS, &[("fields", "**")]).project(&record, Projection::Keys);
        assert_eq!(all, record);
    }

    #[test]
    fn named_fields_keep_keys_and_links() {
        let query = query(&KEY_SERVERS, &[("fields", "timeout")]);
        assert_eq!(
            query.project(&key_servers()[1], Projection::AllNormal),
            json!({"server": "KS2.example.com:5696", "timeout": 25,
                   "_links": {"self": {"href": "/api/x/KS2.example.com:5696"}}})
        );
    }

    #[test]
    fn several_fields_parameters_merge() {
        let query = query(
            &KEY_SERVERS,
            &[("fields", "timeout"), ("fields", "username")],
        );
        let projected = query.project(&key_servers()[0], Projection::Keys);
        assert_eq!(projected["timeout"], 10);
        assert_eq!(projected["username"], "user-ks1.example.com:5696");
        assert!(projected.get("create_remove_timeout").is_none());
    }

    #[test]
    fn expensive_sub_field_alone() {
        let query = query(
            &KEY_SERVERS,
            &[("fields", "connectivity.node_states.state")],
        );
        assert_eq!(
            query.project(&key_servers()[0], Projection::Keys),
            json!({"server": "ks1.example.com:5696",
                   "connectivity": {"node_states": [{"state": "available"}]},
                   "_links": {"self": {"href": "/api/x/ks1.example.com:5696"}}})
        );
    }

    #[test]
    fn parent_keeps_whole_sub_object_and_leaf_keeps_only_itself() {
        let record = key_manager("km-1", Some("vs0"), &[("ks1:5696", 10)]);
        let whole = query(&KEY_MANAGERS, &[("fields", "svm")]).project(&record, Projection::Keys);
        assert_eq!(whole["svm"], record["svm"]);
        let leaf =
            query(&KEY_MANAGERS, &[("fields", "svm.name")]).project(&record, Projection::Keys);
        assert_eq!(
            leaf["svm"],
            json!({"name": "vs0", "_links": {"self": {"href": "/svm"}}})
        );
        assert_eq!(leaf["uuid"], "km-1");
        assert!(leaf.get("scope").is_none());
    }

    #[test]
    fn fields_through_arrays_project_each_element() {
        let record = key_manager("km-1", None, &[("ks1:5696", 10), ("ks2:5696", 20)]);
        let projected = query(&KEY_MANAGERS, &[("fields", "external.servers.server")])
            .project(&record, Projection::Keys);
        assert_eq!(
            projected,
            json!({
                "uuid": "km-1",
                "external": {"servers": [
                    {"server": "ks1:5696", "_links": {"self": {"href": "/s"}}},
                    {"server": "ks2:5696", "_links": {"self": {"href": "/s"}}}
                ]},
                "_links": {"self": {"href": "/api/security/key-managers/km-1"}}
            })
        );
    }

    #[test]
    fn missing_sub_object_leaves_nothing_behind() {
        let record = json!({"uuid": "km-1", "svm": {"uuid": "s"}});
        let projected =
            query(&KEY_MANAGERS, &[("fields", "svm.name")]).project(&record, Projection::Keys);
        assert_eq!(projected, json!({"uuid": "km-1"}));
    }

    #[test]
    fn expensive_fields_dropped_from_star_and_kept_when_named() {
        let record = key_manager("km-1", None, &[]);
        let star = query(&KEY_MANAGERS, &[("fields", "*")]).project(&record, Projection::Keys);
        assert!(star.get("status").is_none());
        assert_eq!(star["onboard"], json!({"enabled": false}));
        let named =
            query(&KEY_MANAGERS, &[("fields", "*,status")]).project(&record, Projection::Keys);
        assert_eq!(named["status"], record["status"]);
        let instance = query(&KEY_MANAGERS, &[]).project(&record, Projection::AllNormal);
        assert!(instance.get("status").is_none());
        assert_eq!(instance["external"], record["external"]);
    }

    #[test]
    fn filtered_fields_are_returned() {
        let query = query(&KEY_SERVERS, &[("timeout", ">1")]);
        let collection = query.apply_collection(key_servers());
        assert_eq!(collection.records[0]["timeout"], 10);
        assert!(collection.records[0].get("username").is_none());
    }

    #[test]
    fn ignored_unknown_fields_still_select_keys_only() {
        let query = query(
            &KEY_SERVERS,
            &[("fields", "bogus"), ("ignore_unknown_fields", "true")],
        );
        let projected = query.project(&key_servers()[0], Projection::AllNormal);
        assert_eq!(projected.as_object().map(Map::len), Some(2));
    }

    // --- needs ---------------------------------------------------------------------------

    #[test]
    fn needs_expensive_fields_only_when_requested() {
        assert!(!query(&KEY_SERVERS, &[]).needs("connectivity"));
        assert!(!query(&KEY_SERVERS, &[("fields", "*")]).needs("connectivity"));
        assert!(query(&KEY_SERVERS, &[("fields", "**")]).needs("connectivity"));
        assert!(query(&KEY_SERVERS, &[("fields", "connectivity")]).needs("connectivity"));
        assert!(
            query(&KEY_SERVERS, &[("fields", "connectivity")])
                .needs("connectivity.node_states.state")
        );
        assert!(
            query(
                &KEY_SERVERS,
                &[("fields", "connectivity.node_states.state")]
            )
            .needs("connectivity")
        );
        assert!(
            query(
                &KEY_SERVERS,
                &[("connectivity.cluster_availability", "true")]
            )
            .needs("connectivity")
        );
        assert!(
            query(
                &KEY_SERVERS,
                &[("order_by", "connectivity.node_states.state")]
            )
            .needs("connectivity")
        );
        assert!(!query(&KEY_SERVERS, &[("fields", "connectivity")]).needs("connectivityx"));
        assert!(query(&KEY_MANAGERS, &[("fields", "status.code")]).needs("status"));
        assert!(!query(&KEY_MANAGERS, &[("fields", "svm")]).needs("status"));
    }

    // --- paging --------------------------------------------------------------------------

    #[test]
    fn pages_from_an_offset() {
        let query = query(&KEY_SERVERS, &[("max_records", "2")]);
        let first = query.page(key_servers(), 0);
        assert_eq!(
            servers_of(&first.records),
            ["ks1.example.com:5696", "KS2.example.com:5696"]
        );
        assert_eq!(first.next_offset, Some(2));
        let last = query.page(key_servers(), 2);
        assert_eq!(last.records.len(), 2);
        assert_eq!(last.next_offset, None);
        let beyond = query.page(key_servers(), 10);
        assert!(beyond.records.is_empty());
        assert_eq!(beyond.next_offset, None);
    }

    #[test]
    fn no_max_records_is_one_page_and_zero_has_no_next() {
        let everything = query(&KEY_SERVERS, &[]).page(key_servers(), 0);
        assert_eq!(
            (everything.records.len(), everything.next_offset),
            (4, None)
        );
        let nothing = query(&KEY_SERVERS, &[("max_records", "0")]).page(key_servers(), 0);
        assert_eq!((nothing.records.len(), nothing.next_offset), (0, None));
    }

    #[test]
    fn collection_pages_and_rebuilds_the_next_link() {
        let list = [
            ("fields", "timeout,username"),
            ("server", "*example*|ks10*"),
            ("order_by", "timeout desc"),
            ("max_records", "2"),
        ];
        let first = query(&KEY_SERVERS, &list);
        let page = first.apply_collection(key_servers());
        assert_eq!(
            servers_of(&page.records),
            ["KS2.example.com:5696", "ks1.example.com:5696"]
        );
        assert_eq!(page.num_records, 2);
        assert_eq!(page.next_offset, Some(2));
        assert_eq!(page.records[0]["username"], "user-KS2.example.com:5696");
        let href = first.next_href("/api/security/key-managers/u/key-servers", 2);
        assert_eq!(
            href,
            "/api/security/key-managers/u/key-servers?fields=timeout%2Cusername\
             &server=%2Aexample%2A%7Cks10%2A&order_by=timeout%20desc&max_records=2&start.offset=2"
        );

        // The client follows the link: decode it as axum would and ask again.
        let next_pairs: Vec<(String, String)> = href
            .split_once('?')
            .map(|(_, query)| query)
            .unwrap_or_default()
            .split('&')
            .filter_map(|pair| pair.split_once('='))
            .map(|(name, value)| (decode(name), decode(value)))
            .collect();
        let second = parse(&next_pairs, &KEY_SERVERS).expect("valid next link");
        assert_eq!(second.offset, 2);
        let page = second.apply_collection(key_servers());
        assert_eq!(
            servers_of(&page.records),
            ["ks10.other.net:5696", "ks3.example.com:5696"]
        );
        assert_eq!(page.next_offset, None);
        // The paging position is replaced, never repeated.
        assert_eq!(second.next_href("/p", 4).matches("start.offset").count(), 1);
    }

    #[test]
    fn query_string_encodes_spaces_and_reserved_characters() {
        let query = query(
            &KEY_SERVERS,
            &[("username", "a b&c=d"), ("start.offset", "3")],
        );
        assert_eq!(query.to_query_string(&[]), "username=a%20b%26c%3Dd");
        assert_eq!(
            query.to_query_string(&[("start.offset", "9".into())]),
            "username=a%20b%26c%3Dd&start.offset=9"
        );
    }

    #[test]
    fn return_records_false_keeps_the_count() {
        let query = query(
            &KEY_SERVERS,
            &[("return_records", "false"), ("server", "ks1*")],
        );
        let collection = query.apply_collection(key_servers());
        assert!(!query.return_records);
        assert_eq!(collection.num_records, 2);
    }

    fn decode(text: &str) -> String {
        percent_encoding::percent_decode_str(text)
            .decode_utf8_lossy()
            .into_owned()
    }
}
