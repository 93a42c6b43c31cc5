//! The offline side of airlock: a bundle file into a registry, into containerd, or served as a
//! read-only registry.
//!
//! Not written yet: today a bundle is read with the stock tools (`zstd -d FILE.tar.zst`, then
//! `skopeo copy oci-archive:…` or `ctr images import`). This crate will read the bundle through
//! `airlock-layout` (the frame index, the manifest) and push with `airlock-registry`.

#![warn(missing_docs)]
