//! The offline side of airlock: a bundle file into a registry, into containerd, or served as a
//! read-only registry.
//!
//! ```
//! use airlock_load::names::{NameMapper, NameRule};
//!
//! let m = NameMapper { prefix: "k8s".into(), rule: NameRule::Flat, rewrites: vec![] };
//! assert_eq!(m.repository("registry.k8s.io/coredns/coredns"), "k8s/coredns");
//! ```

#![warn(missing_docs)]

pub mod names;
