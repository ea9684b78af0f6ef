//! The architecture's rules, checked on the source (ARCHITECTURE.md, "Rules"):
//! no import cycles between the top-level modules of a crate, no source file
//! over 800 lines and no function over 80 (tests aside), and a protocol core
//! that builds without the devices, so that neither tun-tap, pcap-file nor libc
//! is in its dependency tree.
//!
//! The source is read as text: strings and comments are blanked out first, so
//! that a brace or a `crate::` inside them is not taken for code.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

const CRATES: [&str; 3] = ["stack/src", "sockets-api/src", "tools/src"];
const MAX_FILE_LINES: usize = 800;
const MAX_FN_LINES: usize = 80;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

/// Every non-test `.rs` file below `dir` (a `tests` folder and `tests.rs` are tests).
fn sources(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            let name = p.file_name().unwrap().to_str().unwrap().to_string();
            if p.is_dir() {
                if name != "tests" {
                    todo.push(p);
                }
            } else if name.ends_with(".rs") && name != "tests.rs" {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

/// The text with comments, strings and character literals replaced by spaces
/// (newlines kept, so that line numbers still hold).
fn blank(text: &str) -> String {
    let b = text.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    let skip_to = |out: &mut Vec<u8>, from: usize, to: usize| {
        out.extend(b[from..to].iter().map(|&c| if c == b'\n' { b'\n' } else { b' ' }));
    };
    while i < b.len() {
        let rest = &text[i..];
        let prev_ident = i > 0 && (b[i - 1].is_ascii_alphanumeric() || b[i - 1] == b'_');
        let end = if rest.starts_with("//") {
            i + rest.find('\n').unwrap_or(rest.len())
        } else if rest.starts_with("/*") {
            i + rest.find("*/").map_or(rest.len(), |j| j + 2)
        } else if !prev_ident && (rest.starts_with("r\"") || rest.starts_with("r#")) {
            let hashes = rest[1..].bytes().take_while(|&c| c == b'#').count();
            if rest.as_bytes().get(1 + hashes) != Some(&b'"') {
                out.push(b[i]);
                i += 1;
                continue;
            }
            let close = format!("\"{}", "#".repeat(hashes));
            i + 2 + hashes + rest[2 + hashes..].find(&close).map_or(rest.len(), |j| j + close.len())
        } else if b[i] == b'"' {
            let mut j = i + 1;
            while j < b.len() && b[j] != b'"' {
                j += if b[j] == b'\\' { 2 } else { 1 };
            }
            j + 1
        } else if b[i] == b'\'' {
            // A character literal ('x', '\n', '\u{..}'); a lifetime has no closing quote.
            let lit = rest.char_indices().skip(1).take(12).find(|&(k, c)| c == '\'' && k > 1);
            match lit {
                Some((k, _)) if rest.as_bytes()[1] == b'\\' || rest[1..k].chars().count() == 1 => i + k + 1,
                _ => {
                    out.push(b[i]);
                    i += 1;
                    continue;
                }
            }
        } else {
            out.push(b[i]);
            i += 1;
            continue;
        };
        let end = end.min(b.len());
        skip_to(&mut out, i, end);
        i = end;
    }
    String::from_utf8(out).unwrap()
}

/// The code before an inline `#[cfg(test)] mod ... {` (the tests at a file's end).
fn without_test_module(code: &str) -> &str {
    let mut at = 0;
    while let Some(k) = code[at..].find("#[cfg(test)]") {
        let after = code[at + k + 12..].trim_start();
        if after.starts_with("mod ") && after.split('\n').next().is_some_and(|l| l.contains('{')) {
            return &code[..at + k];
        }
        at += k + 12;
    }
    code
}

/// The top-level module a file belongs to (`tcp` for `tcp/conn/input.rs`).
fn top_module(src: &Path, file: &Path) -> Option<String> {
    let rel = file.strip_prefix(src).unwrap();
    let first = rel.components().next()?.as_os_str().to_str()?.trim_end_matches(".rs").to_string();
    (first != "lib" && first != "main").then_some(first)
}

/// Names that a `crate::` path in `code` starts with, `crate::{a, b::c}` included.
fn crate_refs(code: &str) -> BTreeSet<String> {
    let mut refs = BTreeSet::new();
    let ident = |s: &str| s.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect::<String>();
    for (k, _) in code.match_indices("crate::") {
        let rest = &code[k + 7..];
        if let Some(group) = rest.strip_prefix('{') {
            let mut depth = 1;
            let mut start = true;
            for (j, c) in group.char_indices() {
                match c {
                    '{' => depth += 1,
                    '}' => depth -= 1,
                    ',' if depth == 1 => start = true,
                    c if c.is_alphabetic() && depth == 1 && start => {
                        refs.insert(ident(&group[j..]));
                        start = false;
                    }
                    _ => {}
                }
                if depth == 0 {
                    break;
                }
            }
        } else {
            refs.insert(ident(rest));
        }
    }
    refs
}

/// Module -> modules it uses, for one crate's source folder.
fn module_graph(src: &Path) -> BTreeMap<String, BTreeSet<String>> {
    let files = sources(src);
    let modules: BTreeSet<String> = files.iter().filter_map(|f| top_module(src, f)).collect();
    let mut graph: BTreeMap<String, BTreeSet<String>> = modules.iter().map(|m| (m.clone(), BTreeSet::new())).collect();
    for f in &files {
        let Some(m) = top_module(src, f) else { continue };
        let code = blank(&fs::read_to_string(f).unwrap());
        let mut refs = crate_refs(without_test_module(&code));
        if f.parent() == Some(src) {
            // In a top-level file, `super::x` is the crate root's module x.
            for (k, _) in code.match_indices("super::") {
                refs.insert(code[k + 7..].chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect());
            }
        }
        for r in refs {
            if r != m && modules.contains(&r) {
                graph.get_mut(&m).unwrap().insert(r);
            }
        }
    }
    graph
}

/// A cycle through `start`, if any (a path back to it).
fn cycle_through(graph: &BTreeMap<String, BTreeSet<String>>, start: &str) -> Option<Vec<String>> {
    let mut stack = vec![(start.to_string(), vec![start.to_string()])];
    let mut seen = BTreeSet::new();
    while let Some((node, path)) = stack.pop() {
        for next in &graph[&node] {
            if next == start {
                return Some(path.clone());
            }
            if seen.insert(next.clone()) {
                let mut p = path.clone();
                p.push(next.clone());
                stack.push((next.clone(), p));
            }
        }
    }
    None
}

#[test]
fn no_import_cycles_between_modules() {
    let mut cycles = Vec::new();
    for krate in CRATES {
        let graph = module_graph(&root().join(krate));
        for m in graph.keys() {
            if let Some(path) = cycle_through(&graph, m) {
                cycles.push(format!("{krate}: {} -> {m}", path.join(" -> ")));
            }
        }
    }
    assert!(cycles.is_empty(), "import cycles:\n{}", cycles.join("\n"));
}

#[test]
fn the_cycle_finder_sees_grouped_and_plain_imports() {
    let code = "use crate::{arp::Arp, ipv4::{self, Route}};\nfn f() { crate::tcp::x(); }\n// crate::udp\n";
    let refs = crate_refs(&blank(code));
    assert_eq!(refs, ["arp", "ipv4", "tcp"].map(String::from).into_iter().collect());
}

#[test]
fn no_source_file_over_800_lines() {
    let mut big = Vec::new();
    for krate in CRATES {
        for f in sources(&root().join(krate)) {
            let code = blank(&fs::read_to_string(&f).unwrap());
            let lines = without_test_module(&code).lines().count();
            if lines > MAX_FILE_LINES {
                big.push(format!("{} {lines}", f.display()));
            }
        }
    }
    assert!(big.is_empty(), "files over {MAX_FILE_LINES} lines:\n{}", big.join("\n"));
}

/// (name, first line, line count) of every function with a body in `code`.
fn functions(code: &str) -> Vec<(String, usize, usize)> {
    let mut out = Vec::new();
    let b = code.as_bytes();
    for (k, _) in code.match_indices("fn ") {
        if k > 0 && (b[k - 1].is_ascii_alphanumeric() || b[k - 1] == b'_') {
            continue;
        }
        let name: String = code[k + 3..].chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
        let (Some(open), semi) = (code[k..].find('{'), code[k..].find(';')) else { continue };
        if name.is_empty() || semi.is_some_and(|s| s < open) {
            continue; // a declaration without a body, or `fn(...)` as a type
        }
        let mut depth = 0;
        let mut end = k + open;
        for (j, c) in code[k + open..].char_indices() {
            match c {
                '{' => depth += 1,
                '}' => depth -= 1,
                _ => {}
            }
            if depth == 0 {
                end = k + open + j;
                break;
            }
        }
        let first = code[..k].matches('\n').count() + 1;
        let last = code[..end].matches('\n').count() + 1;
        out.push((name, first, last - first + 1));
    }
    out
}

#[test]
fn no_function_over_80_lines() {
    let mut long = Vec::new();
    for krate in CRATES {
        for f in sources(&root().join(krate)) {
            let code = blank(&fs::read_to_string(&f).unwrap());
            for (name, line, n) in functions(without_test_module(&code)) {
                if n > MAX_FN_LINES {
                    long.push(format!("{}:{line} {name} {n} lines", f.display()));
                }
            }
        }
    }
    assert!(long.is_empty(), "functions over {MAX_FN_LINES} lines:\n{}", long.join("\n"));
}

#[test]
fn the_function_measure_counts_braces_in_code_only() {
    let code = "fn a() {\n    let s = \"}\";\n    let c = '}';\n    // }\n}\nfn b(x: fn(u8) -> u8);\n";
    assert_eq!(functions(&blank(code)), [("a".to_string(), 1, 5)]);
}

#[test]
fn the_core_builds_without_devices_and_their_dependencies() {
    let out = Command::new(env!("CARGO"))
        .current_dir(root())
        .args(["tree", "-p", "stack", "--no-default-features", "-e", "normal", "--prefix", "none", "--offline"])
        .output()
        .expect("run cargo tree");
    assert!(out.status.success(), "cargo tree failed: {}", String::from_utf8_lossy(&out.stderr));
    let tree = String::from_utf8_lossy(&out.stdout);
    let names: BTreeSet<&str> = tree.lines().filter_map(|l| l.split_whitespace().next()).collect();
    for dep in ["tun-tap", "pcap-file", "libc"] {
        assert!(!names.contains(dep), "{dep} is in the core's tree without default features:\n{tree}");
    }
    assert!(names.contains("etherparse"), "the tree looks wrong:\n{tree}");
}
