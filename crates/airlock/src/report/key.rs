//! What `airlock key generate` says.

use airlock_layout::KeyPairPaths;
use serde_json::json;

/// The files written and the fingerprint (stderr), and `{"key", "pub", "fingerprint"}` on
/// stdout with `--json`.
pub fn generated(
    paths: &KeyPairPaths,
    encrypted: bool,
    fingerprint: &str,
    json: bool,
    quiet: bool,
) -> anyhow::Result<()> {
    if !quiet {
        eprintln!(
            "wrote `{}` ({}) and `{}`\npublic key fingerprint: {fingerprint}",
            paths.key.display(),
            if encrypted {
                "encrypted"
            } else {
                "NOT encrypted"
            },
            paths.public.display(),
        );
    }
    if json {
        let doc = json!({"key": paths.key, "pub": paths.public, "fingerprint": fingerprint});
        println!("{}", serde_json::to_string_pretty(&doc)?);
    }
    Ok(())
}
