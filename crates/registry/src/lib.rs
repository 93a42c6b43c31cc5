//! A client for the OCI distribution API, for pulling images: manifests and blobs, with
//! docker-style references, basic and bearer-token auth, docker credential lookup, private
//! CAs, and retries.
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
//! The client knows nothing of bundles: it speaks the protocol and verifies what the
//! protocol lets it verify (manifest digests, small blobs). Credentials never appear in
//! logs, errors or `Debug` output.
//!
//! Modules, one per protocol concern: [`reference`](mod@reference) (names), [`credentials`] (where
//! credentials come from), `auth` (challenges and token scopes), `token_cache`, [`envelope`]
//! (the OCI error body), [`error`], and the [`Client`] itself.

#![warn(missing_docs)]

mod auth;
mod client;
pub mod credentials;
pub mod envelope;
pub mod error;
pub mod reference;
mod retry;
mod token_cache;

pub use auth::Scope;
pub use client::{
    BlobResponse, BlobStream, Client, ClientOptions, HostConfig, Manifest, DOCKER_MANIFEST,
    DOCKER_MANIFEST_LIST, MANIFEST_MAX_SIZE, MANIFEST_MEDIA_TYPES, OCI_INDEX, OCI_MANIFEST,
};
pub use credentials::Credentials;
pub use envelope::{ErrorCode, ErrorEnvelope};
pub use error::{Error, HelperError, ReferenceError, TlsProblem};
pub use reference::Reference;
