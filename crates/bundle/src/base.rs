//! The bases of a delta bundle (`bundle --base`): an earlier bundle, the manifest written
//! beside one, or an inventory of a far-side registry. A base only decides which blobs the
//! new file leaves out; a wrong one can only make the delta too small, and `load` checks every
//! blob a delta leaves out before it pushes anything.

use std::collections::{BTreeSet, HashSet};
use std::io::Read;
use std::path::{Path, PathBuf};

use airlock_layout::{
    read_head, BaseBundle, BaseKind, BundleManifest, Digest, SiteInventory, VerifyingKey,
    MAX_MANIFEST_SIZE,
};

/// A base opened for a delta: its identity and every digest it holds.
#[derive(Debug, Clone)]
pub struct Base {
    /// The file as given.
    pub path: PathBuf,
    /// A bundle (or its manifest) or an inventory.
    pub kind: BaseKind,
    /// sha256 of the base's `airlock/manifest.json` bytes, or of the inventory file.
    pub digest: Digest,
    /// Its file name, recorded in the delta for people.
    pub name: String,
    /// Whether its signature was checked, and how that went.
    pub signature: BaseSignature,
    /// Every blob digest the base holds (a bundle: its full `blobs` list, so a delta of a
    /// delta works where the site loaded the chain; an inventory: every manifest and blob).
    pub digests: HashSet<Digest>,
}

/// What the signature of a base said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BaseSignature {
    /// No signature came with it.
    Unsigned,
    /// Signed, but no key was given to check it with.
    NotChecked,
    /// It verified with the public half of `--sign-key` (this fingerprint).
    Verified {
        /// `sha256:…` of the key.
        key: String,
    },
    /// It does not verify with the public half of `--sign-key` (signed by another key, or
    /// changed since): only a note, since a base only decides what is left out.
    OtherKey {
        /// `sha256:…` of the key it was checked with.
        key: String,
    },
}

/// Why a base cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum BaseError {
    /// The file cannot be read.
    #[error("cannot read the base `{}`", .path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// A zstd file whose head is not a bundle's.
    #[error("the base `{}` is not a bundle: its head cannot be read\n  hint: give an airlock bundle (`.tar.zst`), the `.manifest.json` beside it, or an inventory from `airlock inventory`", .path.display())]
    Head {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: airlock_layout::VerifyError,
    },
    /// Neither a bundle, a bundle manifest nor an inventory.
    #[error("the base `{}` is neither a bundle, a bundle manifest nor an inventory{}\n  hint: give an airlock bundle (`.tar.zst`), the `.manifest.json` beside it, or an inventory from `airlock inventory`", .path.display(), .detail.as_deref().map(|d| format!(": {d}")).unwrap_or_default())]
    NotABase {
        /// The file.
        path: PathBuf,
        /// What was wrong with it, when it looked like one of them.
        detail: Option<String>,
    },
    /// The same base given twice.
    #[error("the base `{}` is the same as `{}` (both {digest})\n  hint: give each base once", .path.display(), .first.display())]
    Duplicate {
        /// The second one.
        path: PathBuf,
        /// The first one.
        first: PathBuf,
        /// Their identity.
        digest: Digest,
    },
}

impl Base {
    /// Opens the base at `path`: a bundle (its head only), the manifest beside a bundle (and
    /// its `.sig` beside it), or an inventory (and its `.sig`). With `key`, a signature that
    /// comes with it is checked against it.
    pub fn open(path: &Path, key: Option<&VerifyingKey>) -> Result<Base, BaseError> {
        let read_err = |source| BaseError::Read {
            path: path.to_path_buf(),
            source,
        };
        // A split bundle's part list or first part opens as the whole stream.
        let open = || {
            airlock_layout::BundleFile::open(path).map_err(|e| read_err(std::io::Error::other(e)))
        };
        let mut file = open()?;
        let mut magic = [0u8; 4];
        let n = read_full(&mut file, &mut magic).map_err(read_err)?;
        let not_a_base = |detail: Option<String>| BaseError::NotABase {
            path: path.to_path_buf(),
            detail,
        };
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| path.display().to_string());
        if n == 4 && magic == airlock_layout::sniff::ZSTD_MAGIC {
            let file = open()?;
            let head =
                read_head(std::io::BufReader::new(file)).map_err(|source| BaseError::Head {
                    path: path.to_path_buf(),
                    source,
                })?;
            let signature = check(&head.manifest_json, head.signature.as_deref(), key);
            return Ok(Base::of_manifest(
                path,
                name,
                &head.manifest_json,
                &head.manifest,
                signature,
            ));
        }
        let mut bytes = magic[..n].to_vec();
        (&mut file)
            .take(MAX_MANIFEST_SIZE + 1)
            .read_to_end(&mut bytes)
            .map_err(read_err)?;
        if bytes.len() as u64 > MAX_MANIFEST_SIZE
            || bytes.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{')
        {
            return Err(not_a_base(None));
        }
        let sig_path = {
            let mut s = path.as_os_str().to_owned();
            s.push(".sig");
            PathBuf::from(s)
        };
        let sig = std::fs::read(&sig_path).ok();
        let signature = check(&bytes, sig.as_deref(), key);
        if SiteInventory::is_inventory(&bytes) {
            let inventory = SiteInventory::from_json_bytes(&bytes)
                .map_err(|e| not_a_base(Some(error_chain(&e))))?;
            return Ok(Base {
                path: path.to_path_buf(),
                kind: BaseKind::Inventory,
                digest: SiteInventory::digest_of(&bytes),
                name,
                signature,
                digests: inventory.digests().into_iter().cloned().collect(),
            });
        }
        let manifest = BundleManifest::from_json_bytes(&bytes)
            .map_err(|e| not_a_base(Some(error_chain(&e))))?;
        Ok(Base::of_manifest(path, name, &bytes, &manifest, signature))
    }

    fn of_manifest(
        path: &Path,
        name: String,
        json: &[u8],
        manifest: &BundleManifest,
        signature: BaseSignature,
    ) -> Base {
        Base {
            path: path.to_path_buf(),
            kind: BaseKind::Bundle,
            digest: Digest::of_bytes(json),
            name,
            signature,
            digests: manifest.blobs.iter().map(|b| b.digest.clone()).collect(),
        }
    }

    /// Opens every base in order, refusing one given twice.
    pub fn open_all(paths: &[PathBuf], key: Option<&VerifyingKey>) -> Result<Vec<Base>, BaseError> {
        let mut bases: Vec<Base> = Vec::with_capacity(paths.len());
        for p in paths {
            let base = Base::open(p, key)?;
            if let Some(first) = bases.iter().find(|b| b.digest == base.digest) {
                return Err(BaseError::Duplicate {
                    path: p.clone(),
                    first: first.path.clone(),
                    digest: base.digest,
                });
            }
            bases.push(base);
        }
        Ok(bases)
    }
}

/// Which base each blob of `manifest` comes from: every blob a base holds is listed under
/// the first base (in the order given) that holds it. Bases that hold none of the blobs are
/// left out, so a bundle that shares nothing with its bases is a full bundle.
pub fn select(manifest: &BundleManifest, bases: &[Base]) -> Vec<BaseBundle> {
    let mut taken: HashSet<&Digest> = HashSet::new();
    let mut out = Vec::new();
    for base in bases {
        let blobs: BTreeSet<Digest> = manifest
            .blobs
            .iter()
            .map(|b| &b.digest)
            .filter(|d| base.digests.contains(*d) && !taken.contains(*d))
            .cloned()
            .collect();
        if blobs.is_empty() {
            continue;
        }
        for b in &manifest.blobs {
            if blobs.contains(&b.digest) {
                taken.insert(&b.digest);
            }
        }
        out.push(BaseBundle {
            kind: base.kind,
            digest: base.digest.clone(),
            name: Some(base.name.clone()),
            blobs: blobs.into_iter().collect(),
        });
    }
    out
}

/// `manifest` as a delta against `bases` (format 4 when any blob is left out); unchanged
/// when there are no bases or none shares a blob.
pub(crate) fn apply(mut manifest: BundleManifest, bases: &[Base]) -> BundleManifest {
    manifest.bases = select(&manifest, bases);
    if !manifest.bases.is_empty() {
        manifest.format_version = airlock_layout::manifest::DELTA_FORMAT_VERSION;
    }
    manifest
}

fn check(data: &[u8], signature: Option<&[u8]>, key: Option<&VerifyingKey>) -> BaseSignature {
    match (signature, key) {
        (None, _) => BaseSignature::Unsigned,
        (Some(_), None) => BaseSignature::NotChecked,
        (Some(sig), Some(key)) => match key.verify(data, sig) {
            Ok(()) => BaseSignature::Verified {
                key: key.fingerprint(),
            },
            Err(_) => BaseSignature::OtherKey {
                key: key.fingerprint(),
            },
        },
    }
}

fn read_full(r: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..])? {
            0 => break,
            k => n += k,
        }
    }
    Ok(n)
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use airlock_layout::{BlobRecord, SpecInfo, Totals};

    fn blob(name: &str) -> BlobRecord {
        BlobRecord {
            digest: Digest::of_bytes(name.as_bytes()),
            size: name.len() as u64,
            media_type: "application/octet-stream".into(),
        }
    }

    fn manifest(names: &[&str]) -> BundleManifest {
        let blobs: Vec<BlobRecord> = names.iter().map(|n| blob(n)).collect();
        BundleManifest {
            format_version: 1,
            created: "1970-01-01T00:00:00Z".into(),
            airlock_version: "0".into(),
            spec: SpecInfo {
                name: "t".into(),
                sha256: String::new(),
            },
            images: Vec::new(),
            totals: Totals::of(&[], &blobs),
            blobs,
            bases: Vec::new(),
        }
    }

    fn base(name: &str, kind: BaseKind, holds: &[&str]) -> Base {
        Base {
            path: name.into(),
            kind,
            digest: Digest::of_bytes(name.as_bytes()),
            name: name.into(),
            signature: BaseSignature::Unsigned,
            digests: holds.iter().map(|n| blob(n).digest).collect(),
        }
    }

    #[test]
    fn each_left_out_blob_is_under_the_first_base_that_has_it() {
        let m = manifest(&["a", "b", "c", "d", "e"]);
        let bases = [
            base("one", BaseKind::Bundle, &["b", "c", "x"]),
            base("two", BaseKind::Inventory, &["c", "d"]),
            base("three", BaseKind::Bundle, &["y"]),
        ];
        let delta = apply(m.clone(), &bases);
        assert_eq!(delta.format_version, 4);
        assert_eq!(delta.bases.len(), 2, "a base sharing nothing is left out");
        let sorted = |names: &[&str]| {
            let mut v: Vec<Digest> = names.iter().map(|n| blob(n).digest).collect();
            v.sort();
            v
        };
        assert_eq!(delta.bases[0].blobs, sorted(&["b", "c"]));
        assert_eq!(delta.bases[0].kind, BaseKind::Bundle);
        assert_eq!(delta.bases[1].blobs, sorted(&["d"]));
        assert_eq!(delta.bases[1].kind, BaseKind::Inventory);
        assert_eq!(delta.bases[1].name.as_deref(), Some("two"));
        let carried: Vec<_> = delta.carried_blobs().map(|b| b.digest.clone()).collect();
        assert_eq!(carried, vec![blob("a").digest, blob("e").digest]);
        // The audit inventory is whole.
        assert_eq!(delta.blobs, m.blobs);
        assert_eq!(delta.totals, m.totals);
    }

    #[test]
    fn no_shared_blob_keeps_a_full_bundle() {
        let m = manifest(&["a", "b"]);
        assert_eq!(apply(m.clone(), &[]), m);
        assert_eq!(apply(m.clone(), &[base("z", BaseKind::Bundle, &["z"])]), m);
    }

    #[test]
    fn a_base_holding_everything_leaves_nothing_carried() {
        let m = manifest(&["a", "b"]);
        let delta = apply(m, &[base("all", BaseKind::Bundle, &["a", "b"])]);
        assert_eq!(delta.carried_blobs().count(), 0);
        assert!(delta.is_delta());
    }

    #[test]
    fn files_that_are_no_base_are_refused_naming_them() {
        let dir = tempfile::tempdir().unwrap();
        for (name, bytes) in [
            ("notes.txt", &b"hello"[..]),
            ("other.json", &br#"{"kind": "something"}"#[..]),
            ("broken.tar.zst", &[0x28, 0xB5, 0x2F, 0xFD, 1, 2, 3][..]),
        ] {
            let p = dir.path().join(name);
            std::fs::write(&p, bytes).unwrap();
            let e = Base::open(&p, None).unwrap_err();
            assert!(e.to_string().contains(name), "{e}");
        }
    }

    #[test]
    fn an_inventory_is_a_base_identified_by_its_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let inv = SiteInventory {
            kind: airlock_layout::site::SITE_INVENTORY_KIND.into(),
            format_version: airlock_layout::site::SITE_INVENTORY_VERSION,
            created: "1970-01-01T00:00:00Z".into(),
            airlock_version: "0".into(),
            registry: "127.0.0.1:5000".into(),
            prefix: String::new(),
            repositories: vec![airlock_layout::SiteRepository {
                name: "r".into(),
                tags: Default::default(),
                manifests: vec![blob("m").digest],
                blobs: vec![blob("l").digest],
            }],
        };
        let bytes = inv.to_json_bytes();
        let p = dir.path().join("site.inventory.json");
        std::fs::write(&p, &bytes).unwrap();
        let b = Base::open(&p, None).unwrap();
        assert_eq!(b.kind, BaseKind::Inventory);
        assert_eq!(b.digest, Digest::of_bytes(&bytes));
        assert_eq!(b.digests.len(), 2);
        assert_eq!(b.signature, BaseSignature::Unsigned);
    }
}
