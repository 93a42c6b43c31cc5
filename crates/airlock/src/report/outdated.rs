//! What `airlock outdated` prints: one line per finding on stdout (or the `--json` document
//! instead), notes and the summary on stderr.

use std::process::ExitCode;

use airlock_bundle::outdated::{Lag, MirrorStatus, TagCheck, Verdict};
use airlock_bundle::OutdatedReport;
use serde_json::json;

/// How many missing tags of a lagging mirror are named before "and N more".
const SHOWN_TAGS: usize = 3;

/// The end of a check that ran. Exit 0 when everything is current, 1 when anything is
/// outdated or a mirror lags, 2 when a registry could not be asked (the report is incomplete).
pub fn finished(r: &OutdatedReport, json: bool, quiet: bool) -> anyhow::Result<ExitCode> {
    let verdict = r.verdict();
    if json {
        let mut doc = serde_json::to_value(r)?;
        doc["verdict"] = json!(verdict);
        println!("{}", serde_json::to_string_pretty(&doc)?);
    } else {
        for line in lines(r) {
            println!("{line}");
        }
    }
    if !quiet {
        for note in &r.notes {
            eprintln!("note: {note}");
        }
        for i in &r.images {
            match &i.check {
                TagCheck::NotAVersion { reason } => eprintln!(
                    "note: {}: tag `{}` is {reason}; not checked",
                    i.image,
                    i.tag.as_deref().unwrap_or_default()
                ),
                TagCheck::Pinned => eprintln!("note: {}: pinned, not checked", i.image),
                _ => {}
            }
        }
    }
    if !quiet {
        for l in &r.rate_limits {
            eprintln!("rate limit: {}: {}", l.registry, l.text);
        }
    }
    let t = &r.totals;
    if !quiet || verdict != Verdict::Current {
        eprintln!(
            "{} {} images checked: {} outdated, {} mirrors lagging, {} unreachable",
            match verdict {
                Verdict::Current => "current:",
                Verdict::Outdated => "outdated:",
                Verdict::Incomplete => "incomplete:",
            },
            t.images,
            t.outdated,
            t.mirrors_lagging,
            t.unreachable,
        );
    }
    Ok(ExitCode::from(match verdict {
        Verdict::Current => 0,
        Verdict::Outdated => 1,
        Verdict::Incomplete => 2,
    }))
}

/// One line per finding: newer releases, moved tags, lagging or unreachable mirrors and
/// origins, the Kubernetes release.
pub fn lines(r: &OutdatedReport) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(k) = r.kubernetes.as_ref().filter(|k| k.is_outdated()) {
        let mut to = Vec::new();
        to.extend(k.patch.as_ref().map(|p| format!("{p} (patch)")));
        to.extend(k.minor.as_ref().map(|m| format!("{m} (minor)")));
        out.push(format!("kubernetes {} → {}", k.version, to.join(", ")));
    }
    for i in &r.images {
        match &i.check {
            TagCheck::Outdated { patch, minor } => {
                let mut to = Vec::new();
                to.extend(patch.as_ref().map(|p| format!("{p} (patch)")));
                to.extend(minor.as_ref().map(|m| format!("{m} (minor)")));
                out.push(format!("{} → {}", i.image, to.join(", ")));
            }
            TagCheck::Unreachable { registry, error } => out.push(format!(
                "{}: cannot list the tags of {registry}: {}",
                i.image,
                first_line(error)
            )),
            _ => {}
        }
        if let Some(m) = &i.moved {
            out.push(format!(
                "{}: the tag moved upstream: {} serves {}, the lock has {}",
                i.image, i.origin, m.origin, m.locked
            ));
        }
        for m in &i.mirrors {
            match &m.status {
                MirrorStatus::Current => {}
                MirrorStatus::Lags { lags } => {
                    let what: Vec<String> = lags.iter().map(lag).collect();
                    out.push(format!(
                        "{} lags {}: {} (for {})",
                        m.mirror,
                        i.origin,
                        what.join("; "),
                        i.image
                    ));
                }
                MirrorStatus::Unreachable { registry, error } => out.push(format!(
                    "{}: mirror {} not checked: cannot ask {registry}: {}",
                    i.image,
                    m.mirror,
                    first_line(error)
                )),
            }
        }
    }
    out
}

/// An error's first line: the finding stays one line (the `--json` report has it whole).
fn first_line(error: &str) -> &str {
    error.lines().next().unwrap_or_default()
}

fn lag(l: &Lag) -> String {
    match l {
        Lag::MissingTag { tag } => format!("tag `{tag}` missing"),
        Lag::MissingDigest { digest } => format!("digest {digest} missing"),
        Lag::DifferentDigest {
            tag,
            mirror,
            origin,
        } => format!("tag `{tag}` is {mirror} there, {origin} at the origin"),
        Lag::MissingNewer { tags } => {
            let shown: Vec<&str> = tags.iter().take(SHOWN_TAGS).map(String::as_str).collect();
            let more = tags.len().saturating_sub(SHOWN_TAGS);
            format!(
                "newer {} {} missing{}",
                if tags.len() == 1 { "tag" } else { "tags" },
                shown.join(", "),
                if more > 0 {
                    format!(" (and {more} more)")
                } else {
                    String::new()
                }
            )
        }
    }
}

/// A check that could not run: with `--json`, a document saying so on stdout.
pub fn fatal(json: bool, e: anyhow::Error) -> anyhow::Error {
    if json {
        let doc =
            json!({"verdict": "error", "error": super::error_chain(e.as_ref()), "images": []});
        println!(
            "{}",
            serde_json::to_string_pretty(&doc).expect("a JSON value serialises")
        );
    }
    e
}

#[cfg(test)]
mod tests {
    use airlock_bundle::outdated::{
        ImageReport, InputKind, KubernetesReport, MirrorReport, Totals,
    };

    use super::*;

    #[test]
    fn one_line_per_finding() {
        let r = OutdatedReport {
            input: "k8s.yaml".into(),
            kind: InputKind::Spec,
            images: vec![ImageReport {
                image: "registry.k8s.io/etcd:3.5.9-0".into(),
                origin: "registry.k8s.io/etcd".into(),
                tag: Some("3.5.9-0".into()),
                check: TagCheck::Outdated {
                    patch: Some("3.5.15-0".into()),
                    minor: Some("3.6.4-0".into()),
                },
                moved: None,
                mirrors: vec![MirrorReport {
                    mirror: "mirror.lan/k8s/etcd".into(),
                    status: MirrorStatus::Lags {
                        lags: vec![
                            Lag::MissingTag {
                                tag: "3.5.9-0".into(),
                            },
                            Lag::MissingNewer {
                                tags: ["3.5.10-0", "3.5.12-0", "3.5.15-0", "3.6.4-0"]
                                    .map(String::from)
                                    .to_vec(),
                            },
                        ],
                    },
                }],
            }],
            kubernetes: Some(KubernetesReport {
                version: "v1.28.3".into(),
                patch: Some("v1.28.15".into()),
                minor: None,
            }),
            notes: Vec::new(),
            totals: Totals::default(),
            rate_limits: Vec::new(),
        };
        assert_eq!(
            lines(&r),
            [
                "kubernetes v1.28.3 → v1.28.15 (patch)",
                "registry.k8s.io/etcd:3.5.9-0 → 3.5.15-0 (patch), 3.6.4-0 (minor)",
                "mirror.lan/k8s/etcd lags registry.k8s.io/etcd: tag `3.5.9-0` missing; newer tags \
                 3.5.10-0, 3.5.12-0, 3.5.15-0 missing (and 1 more) (for \
                 registry.k8s.io/etcd:3.5.9-0)",
            ]
        );
    }
}
