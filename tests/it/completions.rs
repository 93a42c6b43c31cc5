//! `airlock completions SHELL` and `airlock generate-man`: generated from the clap
//! definitions, accepted by the shells and by man, naming every subcommand.

use std::process::{Command, Stdio};

use crate::support::*;

const SUBCOMMANDS: &[&str] = &[
    "bundle",
    "key",
    "verify",
    "inspect",
    "load",
    "serve",
    "lock",
    "sync",
    "images",
    "outdated",
    "config",
    "completions",
];

fn output(args: &[&str]) -> String {
    let work = workdir();
    let mut cmd = airlock(&work.path().join("cache"));
    cmd.args(args);
    let o = run(cmd, None);
    assert!(o.status.success(), "airlock {args:?}: {}", stderr(&o));
    assert!(
        o.stderr.is_empty(),
        "airlock {args:?} wrote to stderr: {}",
        stderr(&o)
    );
    String::from_utf8(o.stdout).expect("UTF-8 output")
}

fn installed(tool: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

#[test]
fn bash_completion_parses_and_completes_every_subcommand() {
    let script = output(&["completions", "bash"]);
    let work = workdir();
    let path = work.path().join("airlock.bash");
    std::fs::write(&path, &script).unwrap();
    let o = Command::new("bash").arg("-n").arg(&path).output().unwrap();
    assert!(o.status.success(), "bash -n: {}", stderr(&o));

    // Sourced, it completes the subcommands after `airlock `, and the flags of one.
    let complete = |words: &str| {
        let o = Command::new("bash")
            .arg("-c")
            .arg(format!(
                r#"source "$1"; COMP_WORDS=({words}); COMP_CWORD=$((${{#COMP_WORDS[@]}} - 1));
                   _airlock airlock "${{COMP_WORDS[-1]}}" "${{COMP_WORDS[-2]}}";
                   printf '%s\n' "${{COMPREPLY[@]}}""#
            ))
            .arg("bash")
            .arg(&path)
            .output()
            .unwrap();
        assert!(o.status.success(), "bash: {}", stderr(&o));
        String::from_utf8(o.stdout).unwrap()
    };
    let subs = complete(r#"airlock """#);
    let subs: Vec<&str> = subs.lines().collect();
    for sub in SUBCOMMANDS {
        assert!(
            subs.contains(sub),
            "`airlock <TAB>` offers {subs:?}, not `{sub}`"
        );
    }
    let flags = complete("airlock verify --");
    assert!(flags.lines().any(|l| l == "--key"), "{flags}");
}

#[test]
fn zsh_and_fish_completions_name_every_subcommand() {
    for shell in ["zsh", "fish", "elvish", "powershell"] {
        let script = output(&["completions", shell]);
        for sub in SUBCOMMANDS {
            assert!(
                script.contains(sub),
                "{shell} completion does not name `{sub}`"
            );
        }
        if ["zsh", "fish"].contains(&shell) && installed(shell) {
            let flag = if shell == "zsh" { "-n" } else { "--no-execute" };
            let o = Command::new(shell)
                .args([flag, "-c", &script])
                .output()
                .unwrap();
            assert!(o.status.success(), "{shell} {flag}: {}", stderr(&o));
        }
    }
    assert!(output(&["completions", "zsh"]).starts_with("#compdef airlock"));
}

#[test]
fn unknown_shell_is_a_usage_error() {
    let work = workdir();
    let mut cmd = airlock(&work.path().join("cache"));
    cmd.args(["completions", "tcsh"]);
    let o = run(cmd, None);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("bash"), "{}", stderr(&o));
}

#[test]
fn man_page_renders_and_names_every_subcommand() {
    let roff = output(&["generate-man"]);
    assert!(roff.contains(".TH AIRLOCK 1"), "{roff}");
    for sub in SUBCOMMANDS {
        assert!(roff.contains(sub), "the man page does not name `{sub}`");
    }
    if installed("groff") {
        let work = workdir();
        let path = work.path().join("airlock.1");
        std::fs::write(&path, &roff).unwrap();
        let o = Command::new("groff")
            .args(["-man", "-Tutf8", "-ww", "-z"])
            .arg(&path)
            .output()
            .unwrap();
        assert!(o.status.success(), "groff: {}", stderr(&o));
        assert!(o.stderr.is_empty(), "groff warns: {}", stderr(&o));
    }
    if installed("man") {
        let work = workdir();
        let path = work.path().join("airlock.1");
        std::fs::write(&path, &roff).unwrap();
        let o = Command::new("man")
            .arg("-l")
            .arg(&path)
            .env("MANPAGER", "cat")
            .env("MANWIDTH", "80")
            .output()
            .unwrap();
        assert!(o.status.success(), "man -l: {}", stderr(&o));
        let text = String::from_utf8_lossy(&o.stdout);
        assert!(
            text.contains("Carry container images across an air gap"),
            "{text}"
        );
    }
}

#[test]
fn man_pages_per_subcommand_are_written_whole() {
    let work = workdir();
    let dir = work.path().join("man");
    let listed = output(&["generate-man", "--out-dir", dir.to_str().unwrap()]);
    let mut files = listing(&dir);
    files.sort();
    for page in [
        "airlock.1",
        "airlock-bundle.1",
        "airlock-key-generate.1",
        "airlock-config-kubeadm.1",
    ] {
        assert!(files.iter().any(|f| f == page), "no {page} in {files:?}");
        assert!(
            listed.contains(page),
            "{page} not listed on stdout: {listed}"
        );
    }
    // Only the pages: no temporary file left, no page for the hidden command.
    assert!(
        files
            .iter()
            .all(|f| f.starts_with("airlock") && f.ends_with(".1")),
        "{files:?}"
    );
    assert!(
        !files.iter().any(|f| f.contains("generate-man")),
        "{files:?}"
    );
    let bundle = std::fs::read_to_string(dir.join("airlock-bundle.1")).unwrap();
    assert!(bundle.contains(".TH AIRLOCK-BUNDLE 1"), "{bundle}");
    assert!(bundle.contains("sign\\-key"), "{bundle}");
}

#[test]
fn closed_stdout_is_an_error_not_a_panic() {
    // A pipe whose reading end is closed before airlock writes: EPIPE on the first write.
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    for args in [&["completions", "bash"][..], &["generate-man"][..]] {
        let work = workdir();
        let o = airlock(&work.path().join("cache"))
            .args(args)
            .stdout(writer.try_clone().unwrap())
            .stderr(Stdio::piped())
            .output()
            .unwrap();
        let err = stderr(&o);
        assert!(!err.contains("panicked"), "airlock {args:?}: {err}");
        assert_eq!(o.status.code(), Some(2), "airlock {args:?}: {err}");
        assert!(err.contains("stdout"), "{err}");
    }
}
