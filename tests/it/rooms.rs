//! The shape of the code, checked on its sources: each media type written once, one
//! `Platform`, no `Result<_, String>` in a library crate, thin command files.

use std::path::{Path, PathBuf};

/// Every `.rs` file below `dir`.
fn sources(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                todo.push(p);
            } else if p.extension().is_some_and(|x| x == "rs") {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

/// The non-test code of the library crates and the binary: each file up to its first
/// `#[cfg(test)]` (test modules stand at the end), test-only files left out.
fn non_test_code() -> Vec<(PathBuf, String)> {
    let root = airlock_testkit::workspace_root().join("crates");
    let mut out = Vec::new();
    for krate in [
        "layout", "kube", "registry", "bundle", "load", "serve", "sync", "airlock",
    ] {
        for path in sources(&root.join(krate).join("src")) {
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            if name == "tests.rs" || name == "testing.rs" {
                continue;
            }
            let text = std::fs::read_to_string(&path).unwrap();
            let code = match text.find("#[cfg(test)]") {
                Some(i) => text[..i].to_string(),
                None => text,
            };
            // Doc examples are tests too.
            let code: String = code
                .lines()
                .filter(|l| !l.trim_start().starts_with("//"))
                .map(|l| format!("{l}\n"))
                .collect();
            out.push((path, code));
        }
    }
    assert!(out.len() > 50, "the sources were not found: {}", out.len());
    out
}

#[test]
fn media_types_are_written_in_layout_media_only() {
    let with: Vec<PathBuf> = non_test_code()
        .into_iter()
        .filter(|(_, code)| code.contains("\"application/vnd."))
        .map(|(p, _)| p)
        .collect();
    assert_eq!(
        with.iter()
            .map(|p| p.ends_with("crates/layout/src/media.rs"))
            .collect::<Vec<_>>(),
        vec![true],
        "{with:?}"
    );
}

/// Whether `line` names a `Result<_, String>`.
fn string_error(line: &str) -> bool {
    let squeezed: String = line.split_whitespace().collect();
    squeezed.match_indices("Result<").any(|(at, m)| {
        let rest = &squeezed[at + m.len()..];
        let mut depth = 1;
        for (i, c) in rest.char_indices() {
            match c {
                '<' => depth += 1,
                '>' => depth -= 1,
                _ => {}
            }
            if depth == 0 {
                return rest[..i].ends_with(",String");
            }
        }
        false
    })
}

#[test]
fn the_string_error_check_tells_them_apart() {
    assert!(string_error("fn f() -> Result<(), String> {"));
    assert!(string_error("x: HashMap<D, Result<Bytes, String>>,"));
    assert!(!string_error(
        "fn f(l: HashMap<String, String>) -> Result<(), Said> {"
    ));
    assert!(!string_error(
        "fn f() -> Result<BTreeMap<String, String>, NameError> {"
    ));
}

#[test]
fn one_platform_type_and_no_string_errors_in_libraries() {
    let mut platforms = Vec::new();
    for (path, code) in non_test_code() {
        if code.contains("struct Platform ") || code.contains("struct Platform<") {
            platforms.push(path.clone());
        }
        if !path.to_string_lossy().contains("crates/airlock/") {
            for (n, line) in code.lines().enumerate() {
                assert!(!string_error(line), "{}:{}: {line}", path.display(), n + 1);
            }
        }
    }
    assert_eq!(platforms.len(), 1, "{platforms:?}");
    assert!(platforms[0].ends_with("crates/layout/src/platform.rs"));
}

#[test]
fn command_files_parse_call_and_render_in_80_lines_or_fewer() {
    let dir = airlock_testkit::workspace_root().join("crates/airlock/src/commands");
    let files = sources(&dir);
    assert!(files.len() >= 10, "{files:?}");
    for path in files {
        let lines = std::fs::read_to_string(&path).unwrap().lines().count();
        assert!(lines <= 80, "{}: {lines} lines", path.display());
    }
}
