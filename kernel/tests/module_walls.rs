//! Keeps the walls between the kernel's top-level modules where they were put: no two
//! modules use each other (directly or round a circle), and the server uses only `wire`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

type Graph = BTreeMap<String, BTreeSet<String>>;

/// Which top-level modules each top-level module names through `crate::` in its code.
fn module_graph() -> Graph {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut graph = Graph::new();
    let mut files = vec![src.clone()];
    while let Some(path) = files.pop() {
        if path.is_dir() {
            files.extend(std::fs::read_dir(&path).unwrap().map(|e| e.unwrap().path()));
            continue;
        }
        if path.extension().is_none_or(|ext| ext != "rs") {
            continue;
        }
        let relative = path.strip_prefix(&src).unwrap();
        let first = relative.components().next().unwrap().as_os_str();
        let module = first.to_str().unwrap().trim_end_matches(".rs").to_owned();
        if module == "main" || module == "lib" {
            continue;
        }
        let code = std::fs::read_to_string(&path).unwrap();
        let used = graph.entry(module.clone()).or_default();
        for line in code.lines().map(str::trim_start) {
            if line.starts_with("//") {
                continue;
            }
            for name in crate_paths(line) {
                if name != module {
                    used.insert(name);
                }
            }
        }
    }
    graph
}

/// The first segment of every `crate::` path on a line, `crate::{a, b::c}` included.
fn crate_paths(line: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut rest = line;
    while let Some(at) = rest.find("crate::") {
        rest = &rest[at + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            let end = group.find('}').unwrap_or(group.len());
            for item in group[..end].split(',') {
                names.push(identifier(item.trim()));
            }
        } else {
            names.push(identifier(rest));
        }
    }
    names.retain(|name| !name.is_empty() && name != "self");
    names
}

fn identifier(text: &str) -> String {
    text.chars()
        .take_while(|c| c.is_alphanumeric() || *c == '_')
        .collect()
}

/// A circle of modules, if there is one.
fn find_circle(graph: &Graph) -> Option<Vec<String>> {
    fn visit(
        module: &str,
        graph: &Graph,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(at) = path.iter().position(|m| m == module) {
            let mut circle = path[at..].to_vec();
            circle.push(module.to_owned());
            return Some(circle);
        }
        if done.contains(module) {
            return None;
        }
        path.push(module.to_owned());
        for next in graph.get(module).into_iter().flatten() {
            if let Some(circle) = visit(next, graph, path, done) {
                return Some(circle);
            }
        }
        path.pop();
        done.insert(module.to_owned());
        None
    }
    let mut done = BTreeSet::new();
    graph
        .keys()
        .find_map(|module| visit(module, graph, &mut Vec::new(), &mut done))
}

#[test]
fn no_two_top_level_modules_use_each_other() {
    let graph = module_graph();
    assert!(
        graph.contains_key("server") && graph.contains_key("engine"),
        "{graph:?}"
    );
    for (module, used) in &graph {
        println!("{module} uses {used:?}");
    }
    if let Some(circle) = find_circle(&graph) {
        panic!("modules in a circle: {}", circle.join(" -> "));
    }
}

#[test]
fn the_server_uses_only_the_wire_format() {
    let graph = module_graph();
    let used: Vec<&String> = graph["server"].iter().filter(|m| *m != "wire").collect();
    assert!(used.is_empty(), "server uses {used:?}");
}

#[test]
fn the_check_finds_circles_and_grouped_paths() {
    assert_eq!(
        crate_paths("use crate::{engine::Engine, wire, self}; crate::timing::x"),
        ["engine", "wire", "timing"]
    );
    let mut graph = Graph::new();
    graph.insert("a".into(), ["b".into()].into());
    graph.insert("b".into(), ["a".into()].into());
    assert_eq!(find_circle(&graph).unwrap(), ["a", "b", "a"]);
}
