//! Fixed names and numbers of the bundle format (docs/bundle-format.md).

/// Path of the signed inventory inside a bundle.
pub const MANIFEST_PATH: &str = "airlock/manifest.json";
/// Path of the signature over [`MANIFEST_PATH`]'s exact bytes.
pub const SIGNATURE_PATH: &str = "airlock/manifest.json.sig";
/// Path of the OCI layout marker file.
pub const OCI_LAYOUT_PATH: &str = "oci-layout";
/// Contents of the OCI layout marker file.
pub const OCI_LAYOUT_JSON: &[u8] = br#"{"imageLayoutVersion":"1.0.0"}"#;
/// Path of the OCI image index.
pub const INDEX_PATH: &str = "index.json";

/// Size of a tar header block; every entry's data starts this far after its header.
pub const TAR_BLOCK: u64 = 512;

/// Skippable frame holding airlock's entry table (JSON).
pub(crate) const ENTRY_TABLE_MAGIC: u32 = 0x184D_2A5A;
/// Skippable frame holding the zstd seekable-format seek table.
pub(crate) const SEEK_TABLE_MAGIC: u32 = 0x184D_2A5E;
/// Last 4 bytes of a seekable zstd file.
pub(crate) const SEEKABLE_MAGIC: u32 = 0x8F92_EAB1;
/// Seek table footer: frame count (4), descriptor (1), magic (4).
pub(crate) const SEEK_FOOTER_LEN: u64 = 9;
/// Skippable frame header: magic (4), size (4).
pub(crate) const SKIPPABLE_HEADER_LEN: u64 = 8;
/// Version of the entry table JSON.
pub(crate) const ENTRY_TABLE_VERSION: u32 = 1;

/// Largest decompressed frame written or accepted; bounds the memory of one frame.
pub const MAX_FRAME_SIZE: usize = 1 << 30;
