//! Checking a whole bundle file in one streaming pass (`airlock verify`, docs/bundle-format.md).
//!
//! [`verify_bundle`] reads the file once, front to back, through any [`Read`]: no seeking, and
//! memory stays flat whatever the bundle's size (a few buffers of 1 MiB, one zstd window, the
//! manifest, and a list of entries and frames). Two threads share the work: one decodes the
//! zstd frames, the other walks the tar stream and hashes every blob.
//!
//! The checks, in order:
//! 1. the first entry is `airlock/manifest.json` (at most [`MAX_MANIFEST_SIZE`]);
//! 2. the signature `airlock/manifest.json.sig`, if the caller gave a key, is checked over the
//!    manifest's exact bytes **before anything in the manifest is used**;
//! 3. every entry is a regular file named `oci-layout`, `index.json` or
//!    `blobs/sha256/<hex>` (no links, devices, directories, absolute paths or `..`), and
//!    appears once;
//! 4. every blob has the size and sha256 the manifest lists, and every listed blob is there;
//! 5. `oci-layout` is valid and `index.json` names exactly the manifest's images and tags;
//! 6. the tar ends with its two zero blocks and the file does not end early;
//! 7. the trailing entry table and seek table describe exactly the entries and frames that
//!    were streamed.
//!
//! The first failure stops the pass; the error names the entry, the expected and actual
//! values and the byte offsets (in the tar stream, and of the zstd frame in the file).
//!
//! Rooms: [`report`] (the report and its errors), `decode` (the decoding thread), `tar` (the
//! checking thread's tar walker), `content` (what the manifest, `oci-layout` and `index.json`
//! say), `tail` (the trailing index against what was streamed) and `sizes` (what each image
//! uses, for the head).

use std::io::Read;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::time::Instant;

use crate::sign::VerifyingKey;

mod content;
mod decode;
pub mod report;
pub(crate) mod sizes;
mod tail;
mod tar;
#[cfg(test)]
pub(crate) mod tests;

pub use content::{IndexJsonDefect, ManifestDefect, OciLayoutDefect};
use decode::{decode, Msg, BUFFERS, CHUNK};
pub use report::{ManifestSummary, SignatureReport, VerifyError, VerifyErrorKind, VerifyReport};
pub(crate) use tar::check_size;
use tar::Checker;

/// Largest `airlock/manifest.json` accepted (it is held in memory to check its signature).
pub const MAX_MANIFEST_SIZE: u64 = 64 << 20;
/// Largest `airlock/manifest.json.sig` accepted (a base64 DER ECDSA signature is ~100 bytes).
pub(crate) const MAX_SIGNATURE_SIZE: u64 = 64 << 10;
/// Largest `index.json` accepted.
const MAX_INDEX_JSON_SIZE: u64 = 64 << 20;
/// Largest `oci-layout` accepted.
pub(crate) const MAX_OCI_LAYOUT_SIZE: u64 = 4 << 10;

/// Reads a whole bundle file and checks everything in it (see the module docs).
///
/// `key` is the signer's public key; `None` skips the signature check (only for an operator
/// who said `--insecure-skip-signature`): every digest is still checked, but against a
/// manifest nobody vouched for.
///
/// Never panics on bad input and never returns early: the report says what was read and
/// carries the first error, if any.
pub fn verify_bundle<R: Read + Send>(reader: R, key: Option<&VerifyingKey>) -> VerifyReport {
    let started = Instant::now();
    let consumed = AtomicU64::new(0);
    let (data_tx, data_rx) = mpsc::sync_channel::<Msg>(BUFFERS);
    let (pool_tx, pool_rx) = mpsc::channel::<Vec<u8>>();
    for _ in 0..BUFFERS + 1 {
        pool_tx.send(vec![0; CHUNK]).expect("receiver is alive");
    }

    let mut checker = Checker::new(key);
    let result = std::thread::scope(|s| {
        let consumed = &consumed;
        s.spawn(move || decode(reader, data_tx, pool_rx, consumed));
        // Dropping the receivers on return stops the decoder if we stop first.
        checker.run(data_rx, pool_tx)
    });

    let mut report = checker.report;
    report.bytes = checker.tar_pos;
    report.compressed_bytes = consumed.load(Ordering::Relaxed);
    report.seconds = started.elapsed().as_secs_f64();
    report.ok = result.is_ok();
    report.error = result.err();
    report
}
