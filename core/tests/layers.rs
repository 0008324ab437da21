//! The layering of `core/src`, kept: every `crate::` and `super::` path of
//! the sources (test modules aside), and every path a `mod.rs` takes from
//! its own children, is read as an import of the module it names. An
//! import from one top-level module to another must go down the table at
//! the top of `lib.rs`; the files of one folder must import each other
//! without a loop; and nothing outside `api/dialect/` and `catalogue/`
//! names a dialect's module. A new top-level module needs its row in that
//! table first.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// `core/src`, every `.rs` file under it.
fn sources() -> Vec<PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
            .expect("core/src is readable")
            .map(|e| e.expect("a directory entry").path())
            .collect();
        entries.sort();
        for p in entries {
            if p.is_dir() {
                walk(&p, out);
            } else if p.extension().is_some_and(|e| e == "rs") {
                out.push(p);
            }
        }
    }
    let mut out = Vec::new();
    walk(&src(), &mut out);
    out
}

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// The module a file is (`api::dialect::mahak`; `""` for `lib.rs`).
fn module_of(path: &Path) -> String {
    let rel = path.strip_prefix(src()).expect("under core/src");
    let mut parts: Vec<String> = rel
        .iter()
        .map(|p| p.to_string_lossy().trim_end_matches(".rs").to_string())
        .collect();
    if parts.last().is_some_and(|p| p == "mod" || p == "lib") {
        parts.pop();
    }
    parts.join("::")
}

/// The code of a file without its test module (by convention the last
/// item) and without comments.
fn code(text: &str) -> String {
    let text = match text.find("#[cfg(test)]\nmod tests") {
        Some(i) => &text[..i],
        None => text,
    };
    text.lines()
        .map(|l| match l.trim_start().starts_with("//") {
            true => "",
            false => l,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Every path in `use` trees and in code that starts with one of `roots`
/// (`crate`, `super`, or a child module's name), expanded: `crate::a::{b,
/// c::d}` gives `crate::a::b` and `crate::a::c::d`.
fn paths(code: &str, roots: &[String]) -> Vec<String> {
    let bytes: Vec<char> = code.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    let ident = |c: char| c.is_ascii_alphanumeric() || c == '_';
    while i < bytes.len() {
        if !ident(bytes[i]) || (i > 0 && (ident(bytes[i - 1]) || bytes[i - 1] == ':')) {
            i += 1;
            continue;
        }
        let start = i;
        while i < bytes.len() && ident(bytes[i]) {
            i += 1;
        }
        let word: String = bytes[start..i].iter().collect();
        if !roots.contains(&word) || bytes.get(i..i + 2) != Some(&[':', ':']) {
            continue;
        }
        let (found, end) = tree(&bytes, start);
        out.extend(found);
        i = end;
    }
    out
}

/// The paths of the use tree (or plain path) starting at `at`, and where
/// it ends.
fn tree(bytes: &[char], mut at: usize) -> (Vec<String>, usize) {
    let ident = |c: char| c.is_ascii_alphanumeric() || c == '_';
    let mut prefix = String::new();
    loop {
        let start = at;
        while at < bytes.len() && ident(bytes[at]) {
            at += 1;
        }
        prefix.push_str(&bytes[start..at].iter().collect::<String>());
        if bytes.get(at..at + 2) != Some(&[':', ':']) {
            return (vec![prefix], at);
        }
        at += 2;
        if bytes.get(at) == Some(&'{') {
            at += 1;
            let mut out = Vec::new();
            loop {
                while at < bytes.len() && (bytes[at].is_whitespace() || bytes[at] == ',') {
                    at += 1;
                }
                match bytes.get(at) {
                    None => return (out, at),
                    Some('}') => return (out, at + 1),
                    Some(c) if ident(*c) => {
                        let (inner, end) = tree(bytes, at);
                        out.extend(inner.into_iter().map(|p| format!("{prefix}::{p}")));
                        at = end;
                        // `x as y`
                        while at < bytes.len() && !matches!(bytes[at], ',' | '}') {
                            at += 1;
                        }
                    }
                    Some(_) => at += 1,
                }
            }
        }
        if bytes.get(at) == Some(&'*') {
            return (vec![prefix], at + 1);
        }
        prefix.push_str("::");
    }
}

/// The longest module of `modules` that `path` (from the crate root) names.
fn resolve(path: &[&str], modules: &BTreeSet<String>) -> Option<String> {
    (0..=path.len()).rev().find_map(|n| {
        let m = path[..n].join("::");
        modules.contains(&m).then_some(m)
    })
}

/// The layer table of `lib.rs`: top-level module -> layer.
fn layers() -> BTreeMap<String, u32> {
    let lib = std::fs::read_to_string(src().join("lib.rs")).expect("lib.rs");
    let mut out = BTreeMap::new();
    for line in lib.lines() {
        let Some(row) = line.strip_prefix("//! | ") else {
            continue;
        };
        let mut cells = row.split(" | ");
        let (Some(layer), Some(modules)) = (cells.next(), cells.next()) else {
            continue;
        };
        let Ok(layer) = layer.trim().parse::<u32>() else {
            continue;
        };
        for m in modules.split(',') {
            out.insert(m.trim().trim_matches('`').to_string(), layer);
        }
    }
    out
}

/// Every import edge between files: (importing module, imported module).
fn edges() -> (BTreeSet<String>, BTreeSet<(String, String)>) {
    let files = sources();
    let modules: BTreeSet<String> = files.iter().map(|p| module_of(p)).collect();
    let mut edges = BTreeSet::new();
    for file in &files {
        let me = module_of(file);
        let text = std::fs::read_to_string(file).expect("a source file");
        let code = code(&text);
        let is_dir = file.ends_with("mod.rs") || file.ends_with("lib.rs");
        // Where `super` points from this file.
        let mut own: Vec<&str> = if me.is_empty() {
            Vec::new()
        } else {
            me.split("::").collect()
        };
        if !is_dir {
            own.pop();
        }
        let children: Vec<String> = if is_dir {
            modules
                .iter()
                .filter_map(|m| {
                    let rest = if me.is_empty() {
                        Some(m.as_str())
                    } else {
                        m.strip_prefix(&format!("{me}::"))
                    }?;
                    (!rest.is_empty() && !rest.contains("::")).then(|| rest.to_string())
                })
                .collect()
        } else {
            Vec::new()
        };
        let mut roots = vec!["crate".to_string(), "super".to_string()];
        roots.extend(children.iter().cloned());
        for path in paths(&code, &roots) {
            let segs: Vec<&str> = path.split("::").collect();
            let absolute: Vec<&str> = match segs[0] {
                "crate" => segs[1..].to_vec(),
                "super" => {
                    let ups = segs.iter().take_while(|s| **s == "super").count();
                    let base = own.len().saturating_sub(ups - 1);
                    own[..base]
                        .iter()
                        .copied()
                        .chain(segs[ups..].iter().copied())
                        .collect()
                }
                _ => {
                    let mut base: Vec<&str> = if me.is_empty() {
                        Vec::new()
                    } else {
                        me.split("::").collect()
                    };
                    base.extend(&segs);
                    base
                }
            };
            if let Some(target) = resolve(&absolute, &modules) {
                if target != me && !target.is_empty() {
                    edges.insert((me.clone(), target));
                }
            }
        }
    }
    (modules, edges)
}

fn unit(module: &str) -> &str {
    module.split("::").next().unwrap_or("")
}

#[test]
fn every_import_goes_down_the_layers() {
    let layers = layers();
    let (modules, edges) = edges();
    assert!(
        edges.len() > 100,
        "the sources were read: {} imports",
        edges.len()
    );
    let mut problems = Vec::new();
    for m in &modules {
        if !m.is_empty() && !layers.contains_key(unit(m)) {
            problems.push(format!("`{}` has no row in lib.rs's layer table", unit(m)));
        }
    }
    for (from, to) in &edges {
        let (a, b) = (unit(from), unit(to));
        if from.is_empty() || a == b {
            continue;
        }
        if let (Some(la), Some(lb)) = (layers.get(a), layers.get(b)) {
            if la <= lb {
                problems.push(format!(
                    "{from} (layer {la}) imports {to} (layer {lb}): an import must go down"
                ));
            }
        }
    }
    problems.sort();
    problems.dedup();
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn no_files_import_each_other_in_a_loop() {
    let (modules, edges) = edges();
    // Depth-first search for a cycle, reporting the loop it finds.
    let mut graph: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for (a, b) in &edges {
        if !a.is_empty() {
            graph.entry(a).or_default().push(b);
        }
    }
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        New,
        Open,
        Done,
    }
    fn visit<'a>(
        m: &'a str,
        graph: &BTreeMap<&'a str, Vec<&'a str>>,
        marks: &mut BTreeMap<&'a str, Mark>,
        stack: &mut Vec<&'a str>,
    ) -> Option<Vec<&'a str>> {
        marks.insert(m, Mark::Open);
        stack.push(m);
        for &n in graph.get(m).into_iter().flatten() {
            match marks.get(n).copied().unwrap_or(Mark::New) {
                Mark::Open => {
                    let at = stack.iter().position(|s| *s == n).unwrap_or(0);
                    let mut ring = stack[at..].to_vec();
                    ring.push(n);
                    return Some(ring);
                }
                Mark::New => {
                    if let Some(ring) = visit(n, graph, marks, stack) {
                        return Some(ring);
                    }
                }
                Mark::Done => {}
            }
        }
        stack.pop();
        marks.insert(m, Mark::Done);
        None
    }
    let mut marks = BTreeMap::new();
    for m in modules.iter().filter(|m| !m.is_empty()) {
        if marks.get(m.as_str()).copied().unwrap_or(Mark::New) == Mark::New {
            let ring = visit(m, &graph, &mut marks, &mut Vec::new());
            assert!(
                ring.is_none(),
                "an import loop: {}",
                ring.unwrap_or_default().join(" -> ")
            );
        }
    }
}

#[test]
fn only_the_dialect_folder_names_a_dialects_module() {
    let mut named = Vec::new();
    for file in sources() {
        let m = module_of(&file);
        if m.starts_with("api::dialect") || m.starts_with("catalogue") {
            continue;
        }
        let text = std::fs::read_to_string(&file).expect("a source file");
        for (i, line) in code(&text).lines().enumerate() {
            if line.contains("mahak::") || line.contains("documented::") {
                named.push(format!("{}:{}: {}", file.display(), i + 1, line.trim()));
            }
        }
    }
    assert!(named.is_empty(), "{}", named.join("\n"));
}

/// The reader finds what it should, on a few lines of its own.
#[test]
fn paths_are_read_from_use_trees_and_code() {
    let roots = vec!["crate".to_string(), "super".to_string()];
    let got = paths(
        "use crate::store::{self, meta, Db};\nuse super::codec::{A, b::C as D};\nlet x = crate::url::check(1);",
        &roots,
    );
    assert_eq!(
        got,
        [
            "crate::store::self",
            "crate::store::meta",
            "crate::store::Db",
            "super::codec::A",
            "super::codec::b::C",
            "crate::url::check",
        ]
    );
}
