//! The rules of key management, free of HTTP and SQL: parsing client input into values that
//! cannot be invalid, ONTAP's checks in ONTAP's order, the KMIP checks, and the catalogue of
//! ONTAP error codes ([`Error`]).

pub mod accounts;
pub mod address;
pub mod audit;
pub mod catalogue;
pub mod certificates;
pub mod check_cache;
pub mod cluster;
pub mod connectivity;
pub mod error;
pub mod health_monitor;
pub mod ids;
pub mod jobs;
pub mod key_copies;
pub mod key_managers;
pub mod key_servers;
pub mod keys;
pub mod kmip_check;
pub mod limits;
pub mod login;
pub mod lookups;
pub mod model;
pub mod monitor_connectors;
pub mod pem;
pub mod security;
pub mod service;
pub mod settings;
pub mod store;
pub mod svms;
pub mod users;
pub mod versions;
pub mod volumes;
pub mod x509;

pub use error::{Error, Result, Status};
pub use service::{Service, ServiceOptions};

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, BTreeSet};

    /// Each file of the domain, with the files of the domain its code (not its comments or
    /// tests) refers to.
    fn references() -> BTreeMap<String, BTreeSet<String>> {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/domain");
        let files: BTreeMap<String, String> = std::fs::read_dir(&dir)
            .expect("the domain's folder")
            .filter_map(|entry| {
                let path = entry.ok()?.path();
                let module = path.file_stem()?.to_str()?.to_string();
                let is_file = path.extension().is_some_and(|e| e == "rs") && module != "mod";
                is_file.then(|| (module, std::fs::read_to_string(&path).expect("source")))
            })
            .collect();
        let mut graph = BTreeMap::new();
        for (module, source) in &files {
            let code = source
                .split("#[cfg(test)]\nmod tests")
                .next()
                .unwrap_or_default();
            let mut refers = BTreeSet::new();
            for line in code
                .lines()
                .map(|l| l.split("//").next().unwrap_or_default())
            {
                for prefix in ["super::", "crate::domain::"] {
                    for (at, _) in line.match_indices(prefix) {
                        let name: String = line[at + prefix.len()..]
                            .chars()
                            .take_while(|c| c.is_alphanumeric() || *c == '_')
                            .collect();
                        if files.contains_key(&name) && name != *module {
                            refers.insert(name);
                        }
                    }
                }
                // `use super::{a, b}` names several at once.
                if let Some(group) = line.trim().strip_prefix("use super::{") {
                    for name in group.split([',', '}', ':']).map(str::trim) {
                        if files.contains_key(name) && name != module {
                            refers.insert(name.to_string());
                        }
                    }
                }
            }
            graph.insert(module.clone(), refers);
        }
        graph
    }

    /// The parts and the files they use form no circle: a change in one file never needs the
    /// file that uses it.
    #[test]
    fn no_file_of_the_domain_refers_back_to_a_file_that_refers_to_it() {
        let graph = references();
        assert!(graph.contains_key("service") && graph["service"].contains("catalogue"));
        fn visit(
            graph: &BTreeMap<String, BTreeSet<String>>,
            module: &str,
            path: &mut Vec<String>,
            done: &mut BTreeSet<String>,
        ) {
            if let Some(start) = path.iter().position(|m| m == module) {
                panic!("a circle: {} -> {module}", path[start..].join(" -> "));
            }
            if done.contains(module) {
                return;
            }
            path.push(module.to_string());
            for next in &graph[module] {
                visit(graph, next, path, done);
            }
            path.pop();
            done.insert(module.to_string());
        }
        let mut done = BTreeSet::new();
        for module in graph.keys() {
            visit(&graph, module, &mut Vec::new(), &mut done);
        }
    }
}
