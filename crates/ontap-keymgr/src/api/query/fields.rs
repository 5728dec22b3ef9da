//! `fields=`: what the client selected, and the tree of paths a projection keeps.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use super::{LINKS, QueryError, Schema};

/// What `fields=` asked for.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct FieldSelection {
    /// `*` or `**`.
    pub(super) all_normal: bool,
    /// `**`.
    pub(super) all_expensive: bool,
    /// Named leaves and parents.
    pub(super) names: Vec<String>,
}

impl FieldSelection {
    /// `None` when no name was sent at all (`fields=` empty or absent): the default applies.
    /// Names dropped by `ignore_unknown_fields` still count as a selection, so
    /// `fields=bogus&ignore_unknown_fields=true` returns the keys only.
    pub(super) fn resolve(
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

    pub(super) fn add_to(&self, tree: &mut KeepTree, schema: &Schema) {
        if self.all_normal {
            tree.insert_all(super::names(schema.fields));
        }
        if self.all_expensive {
            tree.insert_all(super::names(schema.expensive));
        }
        for name in &self.names {
            tree.insert(name);
        }
    }
}

/// The paths a projection keeps, as a tree of path segments. A node marked `whole` keeps its
/// value entirely: a leaf, or a parent the client named (`fields=svm` keeps all of `svm`).
#[derive(Debug, Default)]
pub(super) struct KeepTree {
    whole: bool,
    children: BTreeMap<String, KeepTree>,
}

impl KeepTree {
    pub(super) fn insert(&mut self, path: &str) {
        let node = path.split('.').fold(self, |node, segment| {
            node.children.entry(segment.to_owned()).or_default()
        });
        node.whole = true;
    }

    pub(super) fn insert_all<'a>(&mut self, paths: impl IntoIterator<Item = &'a str>) {
        for path in paths {
            self.insert(path);
        }
    }

    /// Whether the tree keeps `path` or anything under it.
    pub(super) fn reaches(&self, path: &str) -> bool {
        let mut node = self;
        for segment in path.split('.') {
            if node.whole {
                return true;
            }
            match node.children.get(segment) {
                Some(child) => node = child,
                None => return false,
            }
        }
        true
    }

    /// What the tree keeps of `value`, moved rather than copied: a listing's records are built
    /// to be projected once.
    pub(super) fn project(&self, value: Value) -> Value {
        if self.whole {
            return value;
        }
        match value {
            Value::Object(members) => Value::Object(self.project_object(members)),
            // Paths go through arrays: project each element the same way.
            Value::Array(items) => {
                Value::Array(items.into_iter().map(|item| self.project(item)).collect())
            }
            // The schema expected an object; there is nothing to pick from a scalar.
            scalar => scalar,
        }
    }

    fn project_object(&self, members: Map<String, Value>) -> Map<String, Value> {
        let mut kept = Map::new();
        for (name, value) in members {
            if name == LINKS {
                kept.insert(name, value);
                continue;
            }
            let Some(child) = self.children.get(&name) else {
                continue;
            };
            let was_empty = is_empty_object(&value);
            let projected = child.project(value);
            // `fields=svm.name` on an SVM without a name should not leave `"svm": {}` behind.
            if is_empty_object(&projected) && !was_empty {
                continue;
            }
            kept.insert(name, projected);
        }
        kept
    }
}

fn is_empty_object(value: &Value) -> bool {
    value.as_object().is_some_and(Map::is_empty)
}

/// `child` is strictly below `parent` (`svm.name` is under `svm`, `svmx` is not).
pub(super) fn is_under(child: &str, parent: &str) -> bool {
    child
        .strip_prefix(parent)
        .is_some_and(|rest| rest.starts_with('.'))
}

pub(super) fn paths_overlap(a: &str, b: &str) -> bool {
    a == b || is_under(a, b) || is_under(b, a)
}
