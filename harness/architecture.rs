//! The shape of the crate, checked: dependencies point down (no module imports a module that
//! imports it back, directly or through others), every module says what it owns in a `//!`
//! paragraph, and no function is longer than a screenful and a half.
//!
//! The module graph is read from the sources: a module depends on every module whose
//! `crate::` path it names outside comments and outside its `#[cfg(test)]` part (tests may
//! reach anywhere). Macros and doc links are not imports.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The longest a function may be, in lines (tables excepted: a function that is one literal).
const FUNCTION_LINES_MAX: usize = 150;

fn sources() -> Vec<PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap().flatten() {
            let path = entry.path();
            if path.is_dir() {
                walk(&path, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path);
            }
        }
    }
    let mut out = Vec::new();
    walk(&Path::new(env!("CARGO_MANIFEST_DIR")).join("src"), &mut out);
    out.sort();
    out
}

/// `src/fault/kill.rs` → `fault::kill`; `src/report/mod.rs` → `report`.
fn module_of(path: &Path) -> String {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let rel = path.strip_prefix(&src).unwrap().with_extension("");
    let parts: Vec<String> = rel.iter().map(|p| p.to_string_lossy().into_owned()).collect();
    let parts: Vec<&str> = parts.iter().map(String::as_str).filter(|p| *p != "mod").collect();
    parts.join("::")
}

/// The code of a file without its comments and without its test module.
fn code_of(text: &str) -> String {
    let text = match text.find("#[cfg(test)]") {
        Some(i) => &text[..i],
        None => text,
    };
    text.lines().map(|l| l.split("//").next().unwrap_or("")).collect::<Vec<_>>().join("\n")
}

/// The modules `code` names through `crate::` paths, as the longest known module prefix of
/// each path (`crate::base::stats::percent` → `base::stats`), grouped imports included.
fn dependencies(code: &str, modules: &BTreeSet<String>) -> BTreeSet<String> {
    let mut deps = BTreeSet::new();
    let mut resolve = |path: &str| {
        let segments: Vec<&str> = path.split("::").filter(|s| !s.is_empty()).collect();
        for n in (1..=segments.len()).rev() {
            let candidate = segments[..n].join("::");
            if modules.contains(&candidate) {
                deps.insert(candidate);
                return;
            }
        }
    };
    for (at, _) in code.match_indices("crate::") {
        let rest = &code[at + "crate::".len()..];
        let path: String = rest.chars().take_while(|c| c.is_alphanumeric() || *c == '_' || *c == ':').collect();
        // `crate::a::{b, c::d}`: each item of the group is a path below `crate::a`.
        let after = &rest[path.len()..];
        if (path.is_empty() || path.ends_with("::")) && after.starts_with('{') {
            let group = &after[1..after.find('}').map_or(after.len(), |e| e)];
            for item in group.split(',') {
                let item: String =
                    item.trim().chars().take_while(|c| c.is_alphanumeric() || *c == '_' || *c == ':').collect();
                resolve(&format!("{path}{item}"));
            }
        }
        resolve(&path);
    }
    deps
}

fn graph() -> BTreeMap<String, BTreeSet<String>> {
    let files = sources();
    let modules: BTreeSet<String> = files.iter().map(|p| module_of(p)).filter(|m| m != "lib" && m != "main").collect();
    let mut graph = BTreeMap::new();
    for path in &files {
        let module = module_of(path);
        if module == "lib" || module == "main" {
            continue;
        }
        let code = code_of(&std::fs::read_to_string(path).unwrap());
        let mut deps = dependencies(&code, &modules);
        deps.remove(&module);
        // A module's parent is where it is declared, not a dependency.
        deps.retain(|d| !module.starts_with(&format!("{d}::")));
        graph.insert(module, deps);
    }
    graph
}

/// A cycle through `start`, if there is one: the modules in order.
fn cycle_from(graph: &BTreeMap<String, BTreeSet<String>>, start: &str) -> Option<Vec<String>> {
    let mut stack = vec![(start.to_string(), vec![start.to_string()])];
    let mut seen = BTreeSet::new();
    while let Some((node, path)) = stack.pop() {
        for next in graph.get(&node).into_iter().flatten() {
            if next == start {
                return Some(path);
            }
            if seen.insert(next.clone()) {
                let mut longer = path.clone();
                longer.push(next.clone());
                stack.push((next.clone(), longer));
            }
        }
    }
    None
}

#[test]
fn no_module_imports_a_module_that_imports_it_back() {
    let graph = graph();
    assert!(graph.len() > 30, "the crate's modules were not found: {graph:?}");
    assert!(graph["run::trial"].contains("oracle"), "the parser misses imports: {:?}", graph["run::trial"]);
    let cycles: Vec<String> =
        graph.keys().filter_map(|m| cycle_from(&graph, m)).map(|c| format!("{} -> {}", c.join(" -> "), c[0])).collect();
    assert!(cycles.is_empty(), "import cycles:\n{}", cycles.join("\n"));
}

#[test]
fn the_cycle_finder_finds_a_cycle() {
    let graph: BTreeMap<String, BTreeSet<String>> = [
        ("a".to_string(), BTreeSet::from(["b".to_string()])),
        ("b".to_string(), BTreeSet::from(["c".to_string()])),
        ("c".to_string(), BTreeSet::from(["a".to_string()])),
        ("d".to_string(), BTreeSet::from(["a".to_string()])),
    ]
    .into_iter()
    .collect();
    assert_eq!(cycle_from(&graph, "a"), Some(vec!["a".to_string(), "b".to_string(), "c".to_string()]));
    assert_eq!(cycle_from(&graph, "d"), None);
    let modules: BTreeSet<String> = ["base::stats", "base", "record"].iter().map(|s| s.to_string()).collect();
    let deps = dependencies("use crate::{base::stats::percent, record};\nlet x = crate::base::stats::f();", &modules);
    assert_eq!(deps, BTreeSet::from(["base::stats".to_string(), "record".to_string()]));
}

#[test]
fn every_module_says_what_it_owns() {
    let undocumented: Vec<String> = sources()
        .into_iter()
        .filter(|p| !std::fs::read_to_string(p).unwrap().trim_start().starts_with("//!"))
        .map(|p| p.display().to_string())
        .collect();
    assert!(undocumented.is_empty(), "modules without a //! paragraph: {undocumented:?}");
}

/// The functions of `text` longer than `max` lines: (name, first line, lines).
fn long_functions(text: &str, max: usize) -> Vec<(String, usize, usize)> {
    let lines: Vec<&str> = text.lines().collect();
    let mut out = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        let trimmed = line.trim_start();
        let Some(at) = trimmed.find("fn ") else { continue };
        let head = &trimmed[..at];
        let is_fn = head.split_whitespace().all(|w| matches!(w, "pub" | "pub(crate)" | "async" | "unsafe" | "const"))
            || head.starts_with("extern");
        if !is_fn || trimmed.ends_with(';') {
            continue;
        }
        let name: String = trimmed[at + 3..].chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
        let (mut depth, mut started, mut end) = (0i64, false, i);
        for (j, l) in lines.iter().enumerate().skip(i) {
            let code = l.split("//").next().unwrap_or("");
            let code: String = strip_literals(code);
            depth += code.matches('{').count() as i64 - code.matches('}').count() as i64;
            started |= code.contains('{');
            if started && depth <= 0 {
                end = j;
                break;
            }
        }
        let n = end - i + 1;
        if n > max {
            out.push((name, i + 1, n));
        }
    }
    out
}

/// A line with its string and char literals emptied, so their braces do not count.
fn strip_literals(code: &str) -> String {
    let mut out = String::new();
    let mut chars = code.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' => {
                while let Some(d) = chars.next() {
                    match d {
                        '\\' => {
                            chars.next();
                        }
                        '"' => break,
                        _ => {}
                    }
                }
                out.push_str("\"\"");
            }
            '\'' if chars.clone().nth(1) == Some('\'') => {
                chars.next();
                chars.next();
            }
            _ => out.push(c),
        }
    }
    out
}
#[test]
fn no_function_is_longer_than_a_screenful_and_a_half() {
    let mut long = Vec::new();
    for path in sources() {
        for (name, line, n) in long_functions(&std::fs::read_to_string(&path).unwrap(), FUNCTION_LINES_MAX) {
            long.push(format!("{}:{line} {name}: {n} lines", path.display()));
        }
    }
    assert!(long.is_empty(), "functions over {FUNCTION_LINES_MAX} lines:\n{}", long.join("\n"));
    let sample = "fn short() {\n    let s = \"}\";\n}\nfn long() {\n".to_string() + &"    x();\n".repeat(200) + "}\n";
    let found = long_functions(&sample, FUNCTION_LINES_MAX);
    assert_eq!(found, vec![("long".to_string(), 4, 202)]);
}
