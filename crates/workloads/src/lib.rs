//! Image references in Kubernetes manifests: found with their file and line, and rewritten to
//! name where `airlock load` puts the images (docs/workloads.md).
//!
//! ```
//! use airlock_workloads::{rewrite_inputs, scan, Input, RewriteOptions, Source};
//!
//! let yaml = "kind: Deployment\nmetadata: {name: web}\nspec:\n  template:\n    spec:\n      \
//!             containers:\n      - name: web\n        image: \"nginx:1.25\" # pinned later\n";
//! let found = scan("web.yaml", yaml).unwrap();
//! assert_eq!(found.fields[0].reference.to_string(), "docker.io/library/nginx:1.25");
//! assert_eq!(found.fields[0].location.line, 8);
//!
//! let opts = RewriteOptions {
//!     target: "registry://harbor.lan/mirror".parse().unwrap(),
//!     rule: "drop-host".parse().unwrap(),
//!     rewrites: Vec::new(),
//!     pins: None,
//! };
//! let source = Source { file: "web.yaml".into(), path: None };
//! let input = Input { source, text: yaml.into() };
//! let done = rewrite_inputs(vec![input], &opts).unwrap();
//! let file = &done.files[0];
//! assert!(file.text.ends_with("image: \"harbor.lan/mirror/library/nginx:1.25\" # pinned later\n"));
//! assert_eq!(file.changes[0].new, "harbor.lan/mirror/library/nginx:1.25");
//! ```
//!
//! The scanner reads YAML (multi-document, anchors, comments) and JSON through one event
//! parser with byte spans; a rewrite replaces the bytes of each image value and nothing else,
//! in the value's own quoting. Names are mapped by [`airlock_load::NameMapper`], the code
//! `load` uses. No network.

#![warn(missing_docs)]

mod error;
mod fast;
mod find;
mod input;
mod par;
mod pin;
mod rewrite;
mod scan;

pub use airlock_load::{NameRule, Rewrite, Target};
pub use error::{Error, PinError, Problem, ProblemKind};
pub use find::{find_images, Findings, Image};
pub use input::{sources, Input, Source, EXTENSIONS};
pub use pin::Pins;
pub use rewrite::{
    rewrite, rewrite_inputs, write_in_place, Change, RewriteOptions, Rewritten, RewrittenFile,
    Unpinned,
};
pub use scan::{has_tag, scan, Field, Location, Quoting, Scan, CONTAINER_KEYS};

#[cfg(test)]
mod tests;
