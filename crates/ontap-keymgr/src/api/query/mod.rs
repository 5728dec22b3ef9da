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

mod fields;
mod filter;
mod order;
pub mod params;
mod records;
#[cfg(test)]
mod tests;

use serde_json::Value;

use self::fields::{FieldSelection, KeepTree, is_under, paths_overlap};
use self::filter::Filter;
use self::order::{SortKey, parse_order_by, sort_records};
use self::params::{parse_count, parse_flag, parse_return_timeout, split_list};

/// The reserved parameter that carries the paging position of a `_links.next.href`.
pub const START_OFFSET: &str = "start.offset";

/// ONTAP's hypermedia member: kept in every projection, at every level.
const LINKS: &str = "_links";

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
    pub fields: &'static [Field],
    /// Fields that cost something to compute: returned only when named, or with `fields=**`.
    pub expensive: &'static [Field],
    /// The identifying fields, always returned (ONTAP's default collection output).
    pub keys: &'static [&'static str],
    /// The route's path variables. ONTAP accepts them as query parameters too; since the path
    /// already chose the parent, such a parameter is accepted and ignored unless it is also a
    /// field (then it filters).
    pub path_params: &'static [&'static str],
    /// Fields a collection GET without `fields` returns besides the keys (the audit log returns
    /// whole records, as ONTAP's does).
    pub collection_default: &'static [&'static str],
    /// The dotted prefixes that are arrays of objects (`external.servers`), for the OpenAPI
    /// document.
    pub arrays: &'static [&'static str],
}

/// A field's JSON type, for the OpenAPI document.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Type {
    String,
    Integer,
    Boolean,
    StringList,
    /// An object read whole or left aside (`_links` sent back by a client).
    Object,
}

/// A field of a resource: its dotted name and its type. Each resource has one table of them,
/// which both the query engine and the OpenAPI document read.
pub type Field = (&'static str, Type);

/// The names of some fields.
pub fn names(fields: &'static [Field]) -> impl Iterator<Item = &'static str> + Clone {
    fields.iter().map(|(name, _)| *name)
}

impl Schema {
    fn all_fields(&self) -> impl Iterator<Item = &'static str> {
        names(self.fields).chain(names(self.expensive))
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
    /// Whether one record passes every filter.
    pub fn matches(&self, record: &Value) -> bool {
        self.filters.iter().all(|filter| filter.matches(record))
    }

    /// Whether the client asked for an order of its own (`order_by`).
    pub fn has_order(&self) -> bool {
        !self.order_by.is_empty()
    }

    pub fn filter(&self, records: Vec<Value>) -> Vec<Value> {
        records
            .into_iter()
            .filter(|record| self.filters.iter().all(|filter| filter.matches(record)))
            .collect()
    }

    /// Sorts by the `order_by` keys, in order. Missing values come first in ascending order,
    /// numbers compare numerically, strings case-insensitively; ties keep their order.
    pub fn sort(&self, records: &mut Vec<Value>) {
        sort_records(records, &self.order_by);
    }

    /// Whether the response needs `field` or any field under or above it: it was named in
    /// `fields=` (or covered by `*` / `**`), or a filter or `order_by` uses it. Meant for
    /// expensive fields, which no default projection includes, so the caller computes them only
    /// when asked to.
    pub fn needs(&self, field: &str) -> bool {
        self.requested_paths()
            .any(|requested| paths_overlap(requested, field))
    }

    /// Whether the answer, projected with `default` when `fields=` is absent, or a filter or
    /// `order_by` uses `field` or anything under it: building a record may leave out the rest.
    pub fn uses(&self, field: &str, default: Projection) -> bool {
        self.needs(field) || self.keep_tree(default).reaches(field)
    }

    /// Keeps the requested fields of `record`, plus its keys, the fields used by filters and
    /// every `_links`. Without `fields=`, `default` decides. Expensive fields are dropped unless
    /// requested, even from `*`.
    pub fn project(&self, record: Value, default: Projection) -> Value {
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
        let records: Vec<Value> = page.records.into_iter().map(|r| keep.project(r)).collect();
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

    /// The paths the client asked for, one way or another.
    fn requested_paths(&self) -> impl Iterator<Item = &str> {
        /// A field name of the schema, as long as the query's own strings.
        fn widen<'a>(name: &'static str) -> &'a str {
            name
        }
        let selected = self.selection.iter().flat_map(|selection| {
            let normal = selection.all_normal.then(|| names(self.schema.fields));
            let expensive = selection
                .all_expensive
                .then(|| names(self.schema.expensive));
            let wildcards = normal.into_iter().chain(expensive).flatten().map(widen);
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
            None if default == Projection::AllNormal => tree.insert_all(names(self.schema.fields)),
            None => tree.insert_all(self.schema.collection_default.iter().copied()),
        }
        tree.insert_all(self.schema.keys.iter().copied());
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

fn encode(text: &str) -> String {
    crate::api::envelope::encode_segment(text)
}
