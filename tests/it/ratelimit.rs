//! Rate limits outside `sync`: a registry that answers the first request for a repository
//! with 429, `Retry-After` and Docker Hub's budget headers (`testkit::RateLimited`, in front of
//! a real registry) is waited out by `bundle` and `outdated`, each run completes, and each
//! reports the budget the registry announced. (`sync` has its own test in `sync.rs`.)

use std::path::{Path, PathBuf};

use airlock_testkit::{Auth, RateLimited, Registry};

use crate::support::*;

fn spec(work: &Path, host: &str) -> PathBuf {
    let p = work.join("spec.yaml");
    std::fs::write(
        &p,
        format!(
            "apiVersion: airlock.dev/v1\nkind: Bundle\nmetadata: {{name: limited}}\nspec:\n  \
             artifacts: none\n  images:\n    - {host}/k8s/pause:3.9\n  registries:\n    \
             {host}: {{plainHttp: true}}\n"
        ),
    )
    .unwrap();
    p
}

/// The first request for the repository answered 429, then the same request again, answered
/// 200.
fn refused_then_served(front: &RateLimited) {
    let asked = front.requests();
    let first = asked
        .iter()
        .position(|l| l.target.starts_with("/v2/k8s/pause/"))
        .unwrap_or_else(|| panic!("nothing asked of the repository: {asked:#?}"));
    assert_eq!(asked[first].status, 429, "{asked:#?}");
    assert!(
        asked[first + 1..]
            .iter()
            .any(|l| l.target == asked[first].target && l.status == 200),
        "the refused request was not asked again: {asked:#?}"
    );
    let refused = asked.iter().filter(|l| l.status == 429).count();
    assert_eq!(refused, 1, "{asked:#?}");
}

#[test]
fn bundle_and_outdated_wait_out_a_429_and_report_the_budget() {
    let upstream = Registry::with_fixtures(false, Auth::None).unwrap();
    let work = workdir();

    let front = RateLimited::start(&upstream.host, (100, 100), 1, 1).unwrap();
    let spec_file = spec(work.path(), &front.host);
    let out = work.path().join("limited.tar.zst");
    let mut cmd = airlock(&work.path().join("cache"));
    cmd.args(["bundle", "-o"]).arg(&out).arg(&spec_file);
    let o = run(cmd, None);
    let text = stderr(&o);
    assert!(o.status.success(), "{text}");
    assert!(out.is_file(), "{text}");
    refused_then_served(&front);
    let left = front.remaining();
    assert!(left < 100, "no manifest GET spent the budget");
    assert!(
        text.contains(&format!(
            "rate limit: {}: {left} of 100 requests left (per 6 h)",
            front.host
        )),
        "{text}"
    );

    // `outdated` asks tag lists (and `HEAD`s of mirrors), which spend none of the budget.
    let front = RateLimited::start(&upstream.host, (100, 40), 1, 1).unwrap();
    let spec_file = spec(work.path(), &front.host);
    let mut cmd = airlock(&work.path().join("cache"));
    cmd.arg("outdated").arg(&spec_file);
    let o = run(cmd, None);
    let text = stderr(&o);
    assert_eq!(o.status.code(), Some(0), "{text}");
    refused_then_served(&front);
    assert_eq!(front.remaining(), 40);
    assert!(
        text.contains(&format!(
            "rate limit: {}: 40 of 100 requests left (per 6 h)",
            front.host
        )),
        "{text}"
    );
}
