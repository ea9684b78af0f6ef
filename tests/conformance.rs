//! Keeps the RFC 9293 conformance matrix (`tests/conformance/rfc9293.tsv`)
//! complete and honest:
//!
//! 1. the requirement list is `../shared/conformance/rfc9293-requirements.tsv`
//!    (beside the clone) when it exists, else the copy committed in
//!    `tests/conformance/rfc9293-requirements.tsv`; when both exist they must be
//!    identical;
//! 2. every requirement ID appears exactly once in the matrix, in the list's
//!    order, with the list's level and a valid status, and nothing else does;
//! 3. a `shown` row cites tests as `path::function` (`;`-separated, paths from
//!    the repository root), each an existing `#[test] fn` that is not `#[ignore]`d,
//!    or packetdrill scripts of tapstack's suite as `tests/packetdrill/DIR/NAME.pkt`;
//!    tests cited by other rows must exist too (they may be ignored: a
//!    `not yet` row may cite the ignored test that shows a bug);
//! 4. `not yet` and `not supported` rows explain themselves in the note.
//!
//! Run with `--nocapture` to see the summary line.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

const STATUSES: [&str; 3] = ["shown", "not yet", "not supported"];
const REQUIREMENTS_HEADER: &str = "id\tlevel\ttopic\tsummary";
const MATRIX_HEADER: &str = "id\tlevel\tstatus\tevidence\tnote";
const MATRIX: &str = "tests/conformance/rfc9293.tsv";
const REQUIREMENTS_COPY: &str = "tests/conformance/rfc9293-requirements.tsv";
const REQUIREMENTS_SHARED: &str = "../shared/conformance/rfc9293-requirements.tsv";

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("tests/ lives in the repository").to_path_buf()
}

/// (line number, line) of the lines that are neither blank nor `#` comments.
fn data_lines(text: &str) -> impl Iterator<Item = (usize, &str)> {
    text.lines().enumerate().map(|(i, l)| (i + 1, l)).filter(|(_, l)| !l.trim().is_empty() && !l.starts_with('#'))
}

#[derive(Debug, Clone)]
struct Requirement {
    id: String,
    level: String,
}

/// Parses the requirement list (id, level, topic, summary).
fn parse_requirements(text: &str) -> Result<Vec<Requirement>, Vec<String>> {
    let mut lines = data_lines(text);
    let mut problems = Vec::new();
    match lines.next() {
        Some((_, h)) if h == REQUIREMENTS_HEADER => {}
        other => return Err(vec![format!("requirement list: header should be {REQUIREMENTS_HEADER:?}, is {other:?}")]),
    }
    let mut out = Vec::new();
    for (n, line) in lines {
        let f: Vec<&str> = line.split('\t').collect();
        if f.len() != 4 || f[0].is_empty() || f[1].is_empty() {
            problems.push(format!("requirement list line {n}: expected 4 tab-separated fields: {line:?}"));
            continue;
        }
        out.push(Requirement { id: f[0].to_string(), level: f[1].to_string() });
    }
    if out.is_empty() {
        problems.push("requirement list: no requirements".into());
    }
    if problems.is_empty() {
        Ok(out)
    } else {
        Err(problems)
    }
}

#[derive(Debug, Clone)]
struct Row {
    line: usize,
    id: String,
    level: String,
    status: String,
    evidence: Vec<String>,
    note: String,
}

/// Parses the matrix (id, level, status, evidence, note).
fn parse_matrix(text: &str) -> Result<Vec<Row>, Vec<String>> {
    let mut lines = data_lines(text);
    match lines.next() {
        Some((_, h)) if h == MATRIX_HEADER => {}
        other => return Err(vec![format!("matrix: header should be {MATRIX_HEADER:?}, is {other:?}")]),
    }
    let mut rows = Vec::new();
    let mut problems = Vec::new();
    for (n, line) in lines {
        let f: Vec<&str> = line.split('\t').collect();
        if f.len() != 5 {
            problems.push(format!("matrix line {n}: expected 5 tab-separated fields, found {}: {line:?}", f.len()));
            continue;
        }
        rows.push(Row {
            line: n,
            id: f[0].trim().to_string(),
            level: f[1].trim().to_string(),
            status: f[2].trim().to_string(),
            evidence: f[3].split(';').map(str::trim).filter(|e| !e.is_empty()).map(String::from).collect(),
            note: f[4].trim().to_string(),
        });
    }
    if problems.is_empty() {
        Ok(rows)
    } else {
        Err(problems)
    }
}

/// What a cited test is, as far as its source says.
#[derive(Debug, PartialEq, Eq)]
enum Cited {
    Test,
    IgnoredTest,
    /// The file has `fn name(` but no `#[test]` on it.
    NotATest,
    NoSuchFunction,
    NoSuchFile,
    BadPath,
}

/// Looks up `path::function` under `root`: the file must exist and hold
/// `fn function(` with `#[test]` among the attributes right above it.
fn look_up(root: &Path, evidence: &str) -> Cited {
    if let Some(script) = evidence.strip_prefix("tests/packetdrill/") {
        return look_up_script(root, script);
    }
    let Some((path, name)) = evidence.rsplit_once("::") else { return Cited::BadPath };
    let valid_name = !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if !valid_name
        || !path.ends_with(".rs")
        || path.starts_with('/')
        || path.split('/').any(|c| c == ".." || c.is_empty())
    {
        return Cited::BadPath;
    }
    let Ok(source) = std::fs::read_to_string(root.join(path)) else { return Cited::NoSuchFile };
    let lines: Vec<&str> = source.lines().collect();
    let needle = format!("fn {name}(");
    let mut best = Cited::NoSuchFunction;
    for (i, line) in lines.iter().enumerate() {
        let t = line.trim_start();
        let decl = t.strip_prefix("pub ").unwrap_or(t);
        if !decl.starts_with(&needle) {
            continue;
        }
        // The attributes (and comments) directly above the function.
        let attrs: Vec<&str> = lines[..i]
            .iter()
            .rev()
            .map(|l| l.trim())
            .take_while(|l| l.starts_with("#[") || l.starts_with("//"))
            .filter(|l| l.starts_with("#["))
            .collect();
        let test = attrs.contains(&"#[test]");
        let ignored = attrs.iter().any(|a| a.starts_with("#[ignore"));
        let this = match (test, ignored) {
            (true, false) => return Cited::Test,
            (true, true) => Cited::IgnoredTest,
            (false, _) => Cited::NotATest,
        };
        if best != Cited::IgnoredTest {
            best = this;
        }
    }
    best
}

/// A packetdrill script of tapstack's suite (`tests/packetdrill/DIR/NAME.pkt`),
/// which `cargo test -p libtapstack --test packetdrill` runs: it counts as a test.
fn look_up_script(root: &Path, script: &str) -> Cited {
    if !script.ends_with(".pkt") || script.split('/').any(|c| c == ".." || c.is_empty()) {
        return Cited::BadPath;
    }
    match root.join("tests/packetdrill").join(script).is_file() {
        true => Cited::Test,
        false => Cited::NoSuchFile,
    }
}

/// Every problem with `rows` as a matrix for `reqs`, and the count per status.
fn check(reqs: &[Requirement], rows: &[Row], root: &Path) -> (Vec<String>, BTreeMap<String, usize>) {
    let mut problems = Vec::new();
    let level: HashMap<&str, &str> = reqs.iter().map(|r| (r.id.as_str(), r.level.as_str())).collect();
    let mut seen: HashMap<&str, usize> = HashMap::new();
    let mut counts: BTreeMap<String, usize> = STATUSES.iter().map(|s| (s.to_string(), 0)).collect();
    for row in rows {
        let at = format!("matrix line {} ({})", row.line, row.id);
        match level.get(row.id.as_str()) {
            None => problems.push(format!("{at}: not a requirement ID of RFC 9293 Appendix B")),
            Some(&l) if l != row.level => problems.push(format!("{at}: level {:?}, the list says {l:?}", row.level)),
            Some(_) => {}
        }
        if let Some(first) = seen.insert(row.id.as_str(), row.line) {
            problems.push(format!("{at}: listed again (first on line {first})"));
        }
        match counts.get_mut(&row.status) {
            Some(n) => *n += 1,
            None => problems.push(format!("{at}: status {:?} is not one of {STATUSES:?}", row.status)),
        }
        if row.status == "shown" && row.evidence.is_empty() {
            problems.push(format!("{at}: shown, but cites no test"));
        }
        if row.status != "shown" && row.note.is_empty() {
            problems.push(format!("{at}: {}, but the note does not say why", row.status));
        }
        for e in &row.evidence {
            match (look_up(root, e), row.status == "shown") {
                (Cited::Test, _) | (Cited::IgnoredTest, false) => {}
                (Cited::IgnoredTest, true) => problems.push(format!("{at}: {e} is #[ignore]d, so it shows nothing")),
                (Cited::NotATest, _) => problems.push(format!("{at}: {e} is not a #[test] function")),
                (Cited::NoSuchFunction, _) => problems.push(format!("{at}: {e}: no such function in that file")),
                (Cited::NoSuchFile, _) => problems.push(format!("{at}: {e}: no such file")),
                (Cited::BadPath, _) => problems.push(format!("{at}: {e}: not of the form path/from/root.rs::function")),
            }
        }
    }
    let missing: Vec<&str> = reqs.iter().map(|r| r.id.as_str()).filter(|id| !seen.contains_key(id)).collect();
    if !missing.is_empty() {
        problems.push(format!("matrix: requirements missing: {}", missing.join(", ")));
    }
    // The order: the matrix's known IDs, first occurrences, against the list.
    let mut order: Vec<&str> = Vec::new();
    for row in rows {
        if level.contains_key(row.id.as_str()) && !order.contains(&row.id.as_str()) {
            order.push(row.id.as_str());
        }
    }
    let expected: Vec<&str> = reqs.iter().map(|r| r.id.as_str()).filter(|id| order.contains(id)).collect();
    if let Some(i) = (0..order.len()).find(|&i| order[i] != expected[i]) {
        problems.push(format!("matrix: out of the list's order: {} where {} should be", order[i], expected[i]));
    }
    (problems, counts)
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The requirement list: the shared one beside the clone if present, else the copy.
fn requirements() -> Vec<Requirement> {
    let root = repo_root();
    let shared = root.join(REQUIREMENTS_SHARED);
    let path = if shared.exists() { shared } else { root.join(REQUIREMENTS_COPY) };
    parse_requirements(&read(&path)).unwrap_or_else(|p| panic!("{}:\n{}", path.display(), p.join("\n")))
}

fn matrix() -> Vec<Row> {
    let path = repo_root().join(MATRIX);
    parse_matrix(&read(&path)).unwrap_or_else(|p| panic!("{}:\n{}", path.display(), p.join("\n")))
}

fn summary(counts: &BTreeMap<String, usize>) -> String {
    format!(
        "rfc9293 conformance: {} shown, {} not yet, {} not supported",
        counts["shown"], counts["not yet"], counts["not supported"]
    )
}

#[test]
fn requirement_list_copy_matches_the_shared_list() {
    let root = repo_root();
    let copy = read(&root.join(REQUIREMENTS_COPY));
    let shared = root.join(REQUIREMENTS_SHARED);
    if !shared.exists() {
        eprintln!("{} is absent: using the copy {REQUIREMENTS_COPY}", shared.display());
        return;
    }
    assert!(read(&shared) == copy, "{REQUIREMENTS_COPY} differs from {}: copy the shared list again", shared.display());
}

#[test]
fn rfc9293_matrix_is_complete_and_its_evidence_real() {
    let reqs = requirements();
    let rows = matrix();
    let (problems, counts) = check(&reqs, &rows, &repo_root());
    assert!(problems.is_empty(), "{MATRIX}: {} problem(s):\n{}", problems.len(), problems.join("\n"));
    assert_eq!(counts.values().sum::<usize>(), reqs.len());
    println!("{}", summary(&counts));
}

// The checker itself, on small made-up inputs: each kind of mistake is caught.

const REQS: &str = "# comment\nid\tlevel\ttopic\tsummary\nMUST-1\tMUST\tw\tx\nSHLD-2\tSHOULD\tw\ty\nMAY-3\tMAY\tw\tz\n";

/// A made-up source file for the evidence of made-up matrices.
const SOURCE: &str = "\
#[test]
fn a_test() {}

/// A comment between the attributes and the function is fine.
#[test]
#[ignore = \"reason: shows a bug\"]
// and so is this one
fn an_ignored_test() {}

fn a_helper() {}

#[cfg(test)]
mod inner {
    #[test]
    pub fn a_test_in_a_module() {}
}
";

/// The problems of a made-up matrix (rows `body`) against [`REQS`], its
/// evidence looked up in a directory holding [`SOURCE`] as `src/t.rs`.
fn problems_of(body: &str) -> Vec<String> {
    static CALLS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let call = CALLS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let root = std::env::temp_dir().join(format!("tapstack-conformance-{}-{call}", std::process::id()));
    std::fs::create_dir_all(root.join("src")).unwrap();
    std::fs::write(root.join("src/t.rs"), SOURCE).unwrap();
    let reqs = parse_requirements(REQS).unwrap();
    let rows = parse_matrix(&format!("{MATRIX_HEADER}\n{body}")).unwrap();
    let problems = check(&reqs, &rows, &root).0;
    let _ = std::fs::remove_dir_all(&root);
    problems
}

const T: &str = "src/t.rs";

#[test]
fn checker_accepts_a_good_matrix() {
    let body = format!(
        "MUST-1\tMUST\tshown\t{T}::a_test; {T}::a_test_in_a_module\t\n\
         SHLD-2\tSHOULD\tnot yet\t{T}::an_ignored_test\tmissing, see the ignored test\n\
         MAY-3\tMAY\tnot supported\t\tno such feature\n"
    );
    assert_eq!(problems_of(&body), Vec::<String>::new());
}

#[test]
fn checker_catches_bad_rows() {
    let good2 = "SHLD-2\tSHOULD\tnot yet\t\tmissing";
    let good3 = "MAY-3\tMAY\tnot supported\t\twhy";
    let cases = [
        // Missing, duplicated, unknown and out-of-order IDs.
        (format!("{good2}\n{good3}\n"), "requirements missing: MUST-1"),
        (format!("MUST-1\tMUST\tnot yet\t\tx\n{good2}\n{good2}\n{good3}\n"), "listed again"),
        (
            format!("MUST-1\tMUST\tnot yet\t\tx\n{good2}\n{good3}\nMUST-99\tMUST\tnot yet\t\tx\n"),
            "not a requirement ID",
        ),
        (format!("{good2}\nMUST-1\tMUST\tnot yet\t\tx\n{good3}\n"), "out of the list's order"),
        // Wrong level, unknown status, missing note, shown without evidence.
        (format!("MUST-1\tSHOULD\tnot yet\t\tx\n{good2}\n{good3}\n"), "the list says \"MUST\""),
        (format!("MUST-1\tMUST\tdone\t\tx\n{good2}\n{good3}\n"), "is not one of"),
        (format!("MUST-1\tMUST\tnot yet\t\t\n{good2}\n{good3}\n"), "the note does not say why"),
        (format!("MUST-1\tMUST\tshown\t\t\n{good2}\n{good3}\n"), "cites no test"),
        // Evidence that is ignored, not a test, absent, or malformed.
        (format!("MUST-1\tMUST\tshown\t{T}::an_ignored_test\t\n{good2}\n{good3}\n"), "is #[ignore]d"),
        (format!("MUST-1\tMUST\tshown\t{T}::a_helper\t\n{good2}\n{good3}\n"), "not a #[test] function"),
        (format!("MUST-1\tMUST\tshown\t{T}::no_such_test\t\n{good2}\n{good3}\n"), "no such function"),
        (format!("MUST-1\tMUST\tshown\t{T}::a\t\n{good2}\n{good3}\n"), "no such function"),
        (format!("MUST-1\tMUST\tshown\tsrc/nowhere.rs::a_test\t\n{good2}\n{good3}\n"), "no such file"),
        (format!("MUST-1\tMUST\tshown\t../t.rs::a_test\t\n{good2}\n{good3}\n"), "not of the form"),
        (format!("MUST-1\tMUST\tnot yet\t{T}\tx\n{good2}\n{good3}\n"), "not of the form"),
        // A packetdrill script that is not there, or not a script.
        (format!("MUST-1\tMUST\tshown\ttests/packetdrill/no/such.pkt\t\n{good2}\n{good3}\n"), "no such file"),
        (format!("MUST-1\tMUST\tshown\ttests/packetdrill/../x.pkt\t\n{good2}\n{good3}\n"), "not of the form"),
        // A missing test cited by a row that is not `shown` is caught too.
        (format!("MUST-1\tMUST\tnot yet\t{T}::gone\tx\n{good2}\n{good3}\n"), "no such function"),
    ];
    for (body, expect) in cases {
        let p = problems_of(&body);
        assert!(p.iter().any(|m| m.contains(expect)), "expected a problem with {expect:?} for\n{body}got {p:#?}");
    }
    // Rows of the wrong width, and a wrong header, are refused outright.
    assert!(parse_matrix(&format!("{MATRIX_HEADER}\nMUST-1\tMUST\tshown\n")).is_err());
    assert!(parse_matrix("id\tstatus\nMUST-1\tshown\n").is_err());
    assert!(parse_requirements("id\tlevel\nMUST-1\tMUST\n").is_err());
}
