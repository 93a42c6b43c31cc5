//! Digests, the content-addressed blob store, the signed bundle manifest and the bundle file
//! format of airlock. This crate does no networking.
//!
//! ```
//! use airlock_layout::{
//!     open_entry, read_entry, write_bundle, ArchiveOptions, BlobRecord, BlobStore,
//!     BundleContents, Digest, FrameIndex,
//! };
//! use std::io::{Read, Write};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let dir = tempfile::tempdir()?;
//! let store = BlobStore::open(dir.path().join("cache"))?;
//!
//! // A small blob, stored in one go.
//! let config = br#"{"architecture":"amd64","os":"linux"}"#;
//! let config_digest = Digest::of_bytes(config);
//! store.put_bytes(&config_digest, config)?;
//!
//! // A layer, streamed in (and resumable after an interruption).
//! let layer = vec![7u8; 100_000];
//! let layer_digest = Digest::of_bytes(&layer);
//! let mut w = store.begin(&layer_digest, layer.len() as u64)?;
//! w.write_all(&layer[w.offset() as usize..])?;
//! w.commit()?;
//!
//! let blobs = [
//!     BlobRecord {
//!         digest: layer_digest.clone(),
//!         size: layer.len() as u64,
//!         media_type: media::OCI_LAYER.into(),
//!     },
//!     BlobRecord {
//!         digest: config_digest.clone(),
//!         size: config.len() as u64,
//!         media_type: media::OCI_CONFIG.into(),
//!     },
//! ];
//! let out = dir.path().join("demo.tar.zst");
//! let stats = write_bundle(
//!     &out,
//!     &BundleContents {
//!         manifest_json: b"{}\n",
//!         signature: None,
//!         index_json: br#"{"schemaVersion":2,"manifests":[]}"#,
//!         blobs: &blobs,
//!         store: &store,
//!         gate: None,
//!     },
//!     &ArchiveOptions::default(),
//! )?;
//! assert_eq!(stats.entries, 5);
//!
//! // Random access through the trailing index.
//! let mut file = std::fs::File::open(&out)?;
//! let index = FrameIndex::read_from(&mut file)?;
//! assert_eq!(read_entry(&mut file, &index, &config_digest.blob_path())?, config);
//! let mut streamed = Vec::new();
//! open_entry(&mut file, &index, &layer_digest.blob_path())?.read_to_end(&mut streamed)?;
//! assert_eq!(Digest::of_bytes(&streamed), layer_digest);
//! # Ok(())
//! # }
//! ```
//!
//! Modules:
//! - [`digest`]: `sha256:<hex>` digests and an incremental hasher;
//! - [`store`]: the blob cache of the online side, where nothing is visible under its digest
//!   before it was verified;
//! - [`manifest`]: `airlock/manifest.json`, the signed inventory;
//! - [`media`]: the OCI and Docker media types, each stated once, and what each names;
//! - [`platform`]: `os/arch[/variant]` and the one rule by which platforms match;
//! - [`graph`]: the content graph of an image and the one walker over it;
//! - [`archive`]: writing a bundle file, a tar stream in seekable zstd frames;
//! - [`reader`]: reading a bundle file: its head, its trailing index, single entries without
//!   decompressing the rest, and the frames a byte range needs;
//! - [`site`]: what a registry on the far side holds (`airlock inventory`), a delta's base;
//! - [`sign`]: ECDSA P-256 keys and the `cosign sign-blob` signature of the manifest;
//! - [`trust`]: the one signature policy of the offline commands (a key, or none on purpose);
//! - [`verify`]: checking a whole bundle file in one streaming pass.
#![warn(missing_docs)]

pub mod archive;
pub mod content;
pub mod digest;
pub mod error;
pub mod format;
pub mod graph;
pub mod keyfile;
pub mod manifest;
pub mod media;
pub mod output;
pub mod platform;
pub mod reader;
pub mod sign;
pub mod site;
pub mod sniff;
pub mod store;
#[cfg(any(test, feature = "testing"))]
#[doc(hidden)]
pub mod testing;
pub mod trust;
pub mod verify;
pub mod volume;

pub use archive::{
    write_bundle, write_bundle_until, write_split_bundle_until, ArchiveOptions, ArchiveStats,
    Arrival, BlobGate, BundleContents, SplitOptions,
};
pub use digest::{Digest, Hasher};
pub use error::{Error, IndexDefect, KeyProblem, SignatureDefect};
pub use format::{
    INDEX_PATH, MANIFEST_PATH, MAX_FRAME_SIZE, OCI_LAYOUT_JSON, OCI_LAYOUT_PATH, SIGNATURE_PATH,
    TAR_BLOCK,
};
pub use graph::{Document, Graph, GraphError, Node, Role, Walk};
pub use keyfile::{KeyFileError, KeyPairPaths, SigningKeyFile};
pub use manifest::{
    format_version_for, ArtifactKind, ArtifactRecord, BaseBundle, BaseKind, BlobRecord,
    BundleManifest, CertificateIdentity, ChartInfo, Content, FileChecksum, FileInfo, ImageRecord,
    IndexEntry, SpecInfo, Totals, UpstreamVerification, FORMAT_VERSION, MIN_FORMAT_VERSION,
};
pub use media::{is_compressed_media_type, is_small_media_type};
pub use output::{check_output, file_id, same_target, write_atomic, OutputError};
pub use platform::{Platform, PlatformError};
pub use reader::{
    check_entry_header, open_entry, open_entry_owned, read_entry, read_head, BundleHead,
    EntryHeaderMismatch, EntryInfo, EntryReader, FrameIndex, FrameInfo, ImageSize, TarHeaderDefect,
};
pub use sign::{SigningKey, VerifyingKey};
pub use site::{SiteInventory, SiteInventoryError, SiteRepository};
pub use sniff::{read_inventory, Inventory, InventoryError, InventorySource};
pub use store::{BlobStore, BlobWriter};
pub use trust::{Purpose, SignatureCheck, Trust, TrustError};
pub use verify::{
    verify_bundle, IndexJsonDefect, ManifestDefect, ManifestSummary, OciLayoutDefect,
    SignatureReport, VerifyError, VerifyErrorKind, VerifyReport, MAX_MANIFEST_SIZE,
};
pub use volume::{BundleFile, PartList, VolumeError};
