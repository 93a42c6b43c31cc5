//! A client for the OCI distribution API, for pulling and pushing images: manifests and
//! blobs, with docker-style references, basic and bearer-token auth, docker credential
//! lookup, private CAs, and retries.
//!
//! ```no_run
//! use airlock_registry::{Client, ClientOptions, Reference};
//! use futures_util::StreamExt as _;
//!
//! # async fn run() -> Result<(), airlock_registry::Error> {
//! let client = Client::new(ClientOptions::default())?;
//! let image = Reference::parse("registry.k8s.io/pause:3.9")?;
//! let manifest = client
//!     .get_manifest(&image.registry, &image.repository, image.reference())
//!     .await?;
//! println!("{} is a {}", manifest.digest, manifest.media_type);
//!
//! // Stream a blob from the start; on an `Err` item, ask again from where it broke off.
//! let digest = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
//! let mut blob = client.get_blob(&image.registry, &image.repository, digest, 0).await?;
//! while let Some(chunk) = blob.stream.next().await {
//!     let _bytes = chunk?;
//! }
//! # Ok(()) }
//! ```
//!
//! Pushing: blobs first (skipped when present, mounted from another repository when
//! possible), then the manifest that references them.
//!
//! ```no_run
//! use airlock_registry::{Client, ClientOptions};
//! use bytes::Bytes;
//!
//! # async fn run(manifest: Bytes, media_type: &str) -> Result<(), airlock_registry::Error> {
//! let client = Client::new(ClientOptions::default())?;
//! let (registry, repository) = ("harbor.lan", "mirror/pause");
//! let layer = Bytes::from_static(b"layer bytes");
//! let digest = "sha256:3a1f0ca7d3e5f2e0b7c8a6b0f6e9c6a0b1d2e3f4a5b6c7d8e9f0a1b2c3d4e5f6";
//! if client.blob_exists(registry, repository, digest).await?.is_none() {
//!     // The body is a factory: a retry or a resumed upload asks again from an offset.
//!     let outcome = client
//!         .push_blob(registry, repository, digest, layer.len() as u64, |offset| {
//!             let rest = layer.slice(offset as usize..);
//!             futures_util::stream::iter([Ok::<_, std::io::Error>(rest)])
//!         })
//!         .await?;
//!     println!("sent {} bytes", outcome.bytes_sent);
//! }
//! let digest = client
//!     .put_manifest(registry, repository, "3.9", media_type, manifest)
//!     .await?;
//! println!("pushed {registry}/{repository}@{digest}");
//! # Ok(()) }
//! ```
//!
//! The client knows no media type of its own: its caller says which manifest types to ask for
//! and to assume ([`ManifestTypes`], in [`ClientOptions::manifest_types`]).
//!
//! The client knows nothing of bundles: it speaks the protocol and verifies what the
//! protocol lets it verify (manifest digests, small blobs). Credentials never appear in
//! logs, errors or `Debug` output.
//!
//! Modules, one per protocol concern: [`reference`](mod@reference) (names), [`credentials`] (where
//! credentials come from), `auth` (challenges and token scopes), `token_cache`, [`envelope`]
//! (the OCI error body), [`error`], and the [`Client`] itself, whose push operations
//! (uploads, mounts, manifests) live in `push`.

#![warn(missing_docs)]

mod auth;
mod client;
pub mod credentials;
pub mod envelope;
pub mod error;
mod fetch;
mod push;
mod ratelimit;
pub mod reference;
mod referrers;
mod retry;
mod token_cache;

pub use auth::Scope;
pub use client::{
    BlobResponse, BlobStream, Client, ClientOptions, HostConfig, Manifest, ManifestHead,
    ManifestTypes, Referrers, MANIFEST_MAX_SIZE,
};
pub use credentials::Credentials;
pub use envelope::{ErrorCode, ErrorEnvelope};
pub use error::{
    render_error, ComponentDefect, Error, HelperError, ReferenceError, ReferenceProblem, TlsProblem,
};
pub use fetch::host_key;
pub use push::{PushOutcome, PushedManifest};
pub use ratelimit::RateLimit;
pub use reference::Reference;
pub use referrers::{Lookup, ReferrersApi};
