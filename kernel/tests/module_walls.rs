//! Keeps the walls between the kernel's top-level modules where they were put: no two
//! modules use each other (directly or round a circle), and the server uses only `wire`.
//! Reads the source: every `crate::` path, and `super::` paths that reach the crate root.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

type Graph = BTreeMap<String, BTreeSet<String>>;

/// Which top-level modules each top-level module names in its code (not its tests).
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
        let parts: Vec<&str> = relative.iter().map(|p| p.to_str().unwrap()).collect();
        let module = parts[0].trim_end_matches(".rs").to_owned();
        if module == "main" || module == "lib" {
            continue;
        }
        // How deep the file's module sits: `x.rs` and `x/mod.rs` are 1, `x/y.rs` is 2.
        let depth = parts.len() - usize::from(parts.last() == Some(&"mod.rs"));
        let code = std::fs::read_to_string(&path).unwrap();
        let used = graph.entry(module.clone()).or_default();
        for name in modules_named(&code, depth) {
            if name != module {
                used.insert(name);
            }
        }
    }
    graph
}

/// The top-level modules that code at `depth` names: `crate::x`, `crate::{x, y::{z}}`
/// over any number of lines, and `super::` paths that climb to the crate's root.
/// Comment lines and what follows the first `#[cfg(test)]` are left out.
fn modules_named(code: &str, depth: usize) -> Vec<String> {
    let code: String = code
        .lines()
        .take_while(|line| line.trim() != "#[cfg(test)]")
        .filter(|line| !line.trim_start().starts_with("//"))
        .flat_map(|line| [line, "\n"])
        .collect();
    let mut names = Vec::new();
    let mut at = 0;
    while let Some(found) = next_path_start(&code, at) {
        let mut rest = &code[found..];
        let root = if let Some(after) = rest.strip_prefix("crate::") {
            rest = after;
            true
        } else {
            let mut climbed = 0;
            while let Some(after) = rest.strip_prefix("super::") {
                rest = after;
                climbed += 1;
            }
            climbed >= depth
        };
        at = code.len() - rest.len();
        if !root {
            continue;
        }
        match rest.strip_prefix('{') {
            Some(group) => names.extend(group_items(group).iter().map(|i| identifier(i))),
            None => names.push(identifier(rest)),
        }
    }
    names.retain(|name| !name.is_empty() && name != "self");
    names
}

/// Where the next `crate::` or `super::` path begins (not inside a longer word).
fn next_path_start(code: &str, from: usize) -> Option<usize> {
    let mut at = from;
    loop {
        let next = ["crate::", "super::"]
            .iter()
            .filter_map(|word| code[at..].find(word).map(|i| at + i))
            .min()?;
        let before = code[..next].chars().next_back();
        if before.is_none_or(|c| !(c.is_alphanumeric() || c == '_')) {
            return Some(next);
        }
        at = next + 1;
    }
}

/// The items of a `{...}` group (its opening brace already taken), split at top-level
/// commas.
fn group_items(group: &str) -> Vec<&str> {
    let mut items = Vec::new();
    let (mut level, mut start) = (0usize, 0);
    for (i, c) in group.char_indices() {
        match c {
            '{' => level += 1,
            '}' if level == 0 => {
                items.push(group[start..i].trim());
                break;
            }
            '}' => level -= 1,
            ',' if level == 0 => {
                items.push(group[start..i].trim());
                start = i + 1;
            }
            _ => {}
        }
    }
    items
}

fn identifier(text: &str) -> String {
    text.trim_start()
        .chars()
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
fn the_check_finds_circles_and_every_way_of_naming_a_module() {
    let code = "use crate::{\n    engine::{Engine, Interrupter},\n    wire, self,\n};\n\
                // use crate::commented_out;\n\
                let x = crate::timing::x(); let y = super::super::server::Iopub;\n\
                use super::sibling; my_crate::not_this;\n\
                #[cfg(test)]\nmod tests { use crate::only_in_tests; }";
    assert_eq!(
        modules_named(code, 2),
        ["engine", "wire", "timing", "server"]
    );
    assert_eq!(
        modules_named("use super::sibling;", 1),
        ["sibling"],
        "from a top-level file, super is the crate"
    );
    let mut graph = Graph::new();
    graph.insert("a".into(), ["b".into()].into());
    graph.insert("b".into(), ["a".into()].into());
    assert_eq!(find_circle(&graph).unwrap(), ["a", "b", "a"]);
}
