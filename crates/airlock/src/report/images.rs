//! What `airlock images` prints: one image a line, or `{"kubernetesVersion", "images"}`.

use airlock_kube::Version;
use serde_json::json;

/// A release's images on stdout.
pub fn list(version: &Version, images: &[String], json: bool) -> anyhow::Result<()> {
    if json {
        let doc = json!({"kubernetesVersion": version.to_string(), "images": images});
        println!("{}", serde_json::to_string_pretty(&doc)?);
    } else {
        for i in images {
            println!("{i}");
        }
    }
    Ok(())
}
