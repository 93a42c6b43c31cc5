//! The bundle spec: a YAML document (`kind: Bundle`) or a plain `images.txt`.
//!
//! ```yaml
//! apiVersion: airlock.dev/v1
//! kind: Bundle
//! metadata: {name: demo}
//! spec:
//!   platforms: [linux/amd64, linux/arm64]
//!   images:
//!     - registry.k8s.io/pause:3.9
//!     - name: docker.io/library/nginx@sha256:…
//!       platforms: [all]
//!   registries:
//!     127.0.0.1:5000: {plainHttp: true}
//!     registry.k8s.io: {mirrors: [mirror.lan/google_containers]}
//! ```
//!
//! `spec.kubernetes: {version: v1.28.0, addons: [coredns, etcd, pause]}` adds the images
//! kubeadm of that release pulls ([`crate::kubernetes`]) in front of `spec.images` (unless
//! `images: false`); its node kit, `binaries: [kubeadm, kubelet, kubectl]`, `crictl: v…` and
//! `cni: v…` for each of its `platforms` (default: `spec.platforms`, else `linux/amd64`), adds
//! files after `spec.files`, each checked against the `.sha256` published beside it
//! ([`crate::kubernetes::node`]).

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::path::{Path, PathBuf};

use airlock_registry::Reference;
use serde::de::{self, MapAccess, Visitor};
use serde::{Deserialize, Deserializer};
use serde_saphyr::{Location, Spanned};
use sha2::{Digest as _, Sha256};

use crate::error::Error;
use crate::platform::PlatformFilter;

mod content;
pub use content::{check_name, default_repository, repository_chart_name, NameProblem, LOCAL_HOST};

/// The API version a YAML spec must declare.
pub const API_VERSION: &str = "airlock.dev/v1";

/// A parsed and validated spec.
#[derive(Debug, Clone)]
pub struct Spec {
    /// The file it came from.
    pub path: PathBuf,
    /// `metadata.name`, or the file stem of an `images.txt`.
    pub name: String,
    /// sha256 (hex) of the file's bytes, recorded in the bundle manifest.
    pub sha256: String,
    /// The default platform filter.
    pub platforms: PlatformFilter,
    /// The images, in the order of the file.
    pub images: Vec<ImageSpec>,
    /// Per-registry settings, keyed by `host[:port]`.
    pub registries: BTreeMap<String, RegistrySettings>,
    /// `spec.kubernetes`, when given (its images are already in `images`, its node binaries
    /// in `files`).
    pub kubernetes: Option<KubernetesSpec>,
    /// The files (`spec.files`, then the node binaries of `spec.kubernetes`), in the order of
    /// the file.
    pub files: Vec<FileSpec>,
    /// The Helm charts (`spec.charts`), in the order of the file.
    pub charts: Vec<ChartSpec>,
}

/// One file of the spec: an entry of `spec.files`, or a node binary of `spec.kubernetes`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileSpec {
    /// Its name in the bundle (`airlock_layout::FileInfo::name`): a relative path, unique in
    /// the spec; by default the last component of its URL or path.
    pub name: String,
    /// Where it comes from.
    pub source: FileSource,
    /// How its sha256 is known.
    pub checksum: ChecksumSpec,
    /// Its canonical name, `HOST/REPOSITORY` (HOST is the URL's host, `local` for a local
    /// file; REPOSITORY is `files/<name>` lowercased unless given): where `load` pushes it,
    /// by the same name rules as images.
    pub repository: String,
    /// Its tag there (`latest` unless given).
    pub tag: String,
    /// The permission bits `load --files-to` writes it with (`0o644`; `0o755` for node
    /// binaries, or as given).
    pub mode: u32,
    /// 1-based line of the entry in the spec.
    pub line: usize,
    /// 1-based column.
    pub column: usize,
}

/// Where a file comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileSource {
    /// Downloaded (`http://` or `https://`), through the host's mirrors as configured in
    /// `spec.registries`.
    Url(String),
    /// A local file, relative paths against the spec's directory.
    Local(PathBuf),
}

/// How a file's sha256 is known before its bytes are trusted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChecksumSpec {
    /// `sha256:` in the spec (hex, or `sha256:<hex>`).
    Sha256(airlock_layout::Digest),
    /// `checksumUrl:`: a published checksum file (`<hex>` or `<hex>  <name>` lines, as
    /// `sha256sum` writes them), fetched like the file.
    Url(String),
    /// A local file with neither: hashed as it is read.
    Local,
}

/// One Helm chart of the spec (`spec.charts`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChartSpec {
    /// Where it comes from.
    pub source: ChartSource,
    /// The chart's name.
    pub name: String,
    /// Its version (exact, as in the repository's `index.yaml` or the OCI tag).
    pub version: String,
    /// 1-based line of the entry in the spec.
    pub line: usize,
    /// 1-based column.
    pub column: usize,
}

/// Where a chart comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChartSource {
    /// `oci://HOST/PATH/NAME`: an OCI registry, pulled like an image (mirrors, credentials);
    /// the reference's tag is the version (with `+` as `_`).
    Oci(Reference),
    /// `repoURL:` of a classic chart repository, whose `index.yaml` names the archive and its
    /// `digest`.
    Repository {
        /// The repository URL, without a trailing `/`.
        url: String,
    },
}

impl Spec {
    /// The verification that applies to `img`: its own `verify:`, else its registry's.
    pub fn verify_for<'a>(&'a self, img: &'a ImageSpec) -> Option<&'a VerifySpec> {
        img.verify.as_ref().or_else(|| {
            self.registries
                .get(&img.reference.registry)
                .and_then(|r| r.verify.as_ref())
        })
    }
}

/// `spec.kubernetes`: a Kubernetes release whose kubeadm images the spec includes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KubernetesSpec {
    /// The release, canonical (`v1.28.0`).
    pub version: String,
    /// The addons asked for (`None`: all of pause, etcd and coredns).
    pub addons: Option<Vec<crate::kubernetes::Addon>>,
}

impl RegistrySettings {
    /// The settings for `host` in `registries`, merged with those of its alias
    /// (`k8s.gcr.io` ↔ `registry.k8s.io`): the host's own mirrors first, then the alias's.
    pub fn for_host(
        registries: &BTreeMap<String, RegistrySettings>,
        host: &str,
    ) -> Option<RegistrySettings> {
        let own = registries.get(host);
        let alias = crate::kubernetes::alias_of(host).and_then(|a| registries.get(a));
        match (own, alias) {
            (None, None) => None,
            (Some(o), None) => Some(o.clone()),
            (None, Some(a)) => Some(RegistrySettings {
                mirrors: a.mirrors.clone(),
                ..RegistrySettings::default()
            }),
            (Some(o), Some(a)) => {
                let mut merged = o.clone();
                for m in &a.mirrors {
                    if !merged.mirrors.contains(m) {
                        merged.mirrors.push(m.clone());
                    }
                }
                Some(merged)
            }
        }
    }
}

/// One image of the spec.
#[derive(Debug, Clone)]
pub struct ImageSpec {
    /// The normalised reference.
    pub reference: Reference,
    /// The text as written.
    pub original: String,
    /// The platform filter for this image.
    pub platforms: PlatformFilter,
    /// 1-based line of the image in the spec.
    pub line: usize,
    /// 1-based column.
    pub column: usize,
    /// Which signatures, attestations, SBOMs and referrers are carried with it.
    pub artifacts: ArtifactSelection,
    /// How its upstream signature is verified at bundle time (`verify:` of the image; the
    /// registry's and `--verify-upstream-key` apply when it has none).
    pub verify: Option<VerifySpec>,
}

/// `artifacts:`: which artifacts that refer to an image are carried with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArtifactSelection {
    /// cosign signatures (`.sig`, or referrers of the cosign signature type).
    pub signatures: bool,
    /// Attestations (`.att`, in-toto in DSSE).
    pub attestations: bool,
    /// SBOMs (`.sbom`, SPDX, CycloneDX).
    pub sboms: bool,
    /// Which OCI 1.1 referrers (found through the referrers API or its tag schema).
    pub referrers: ReferrerFilter,
}

/// `artifacts.referrers`: `all`, `none`, or a list of `artifactType`s.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReferrerFilter {
    /// Every referrer.
    All,
    /// None.
    None,
    /// Only those of these artifact types.
    Types(Vec<String>),
}

impl ReferrerFilter {
    /// Whether a referrer of `artifact_type` is carried.
    pub fn keeps(&self, artifact_type: Option<&str>) -> bool {
        match self {
            ReferrerFilter::All => true,
            ReferrerFilter::None => false,
            ReferrerFilter::Types(types) => {
                artifact_type.is_some_and(|t| types.iter().any(|w| w == t))
            }
        }
    }
}

impl Default for ArtifactSelection {
    /// Everything: artifacts are carried unless the spec says otherwise.
    fn default() -> Self {
        ArtifactSelection::all()
    }
}

impl ArtifactSelection {
    /// Every kind of artifact (`artifacts: all`, the default).
    pub fn all() -> ArtifactSelection {
        ArtifactSelection {
            signatures: true,
            attestations: true,
            sboms: true,
            referrers: ReferrerFilter::All,
        }
    }

    /// No artifact (`artifacts: none`).
    pub fn none() -> ArtifactSelection {
        ArtifactSelection {
            signatures: false,
            attestations: false,
            sboms: false,
            referrers: ReferrerFilter::None,
        }
    }

    /// Whether nothing is carried (discovery is skipped).
    pub fn is_none(&self) -> bool {
        *self == ArtifactSelection::none()
    }

    /// This selection with the fields `over` sets replaced.
    fn overridden(&self, over: &RawArtifacts) -> ArtifactSelection {
        match over {
            RawArtifacts::All => ArtifactSelection::all(),
            RawArtifacts::None => ArtifactSelection::none(),
            RawArtifacts::Fields {
                signatures,
                attestations,
                sboms,
                referrers,
            } => ArtifactSelection {
                signatures: signatures.unwrap_or(self.signatures),
                attestations: attestations.unwrap_or(self.attestations),
                sboms: sboms.unwrap_or(self.sboms),
                referrers: referrers.clone().unwrap_or_else(|| self.referrers.clone()),
            },
        }
    }
}

/// `verify:`: what an upstream signature of an image must be.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum VerifySpec {
    /// `{key: FILE}`: made with this public key (cosign or PEM), resolved against the spec's
    /// directory.
    Key(PathBuf),
    /// `{identity, issuer, trustedRoot}`: keyless, a Fulcio certificate naming exactly this
    /// identity and issuer, checked against a sigstore `trusted_root.json` (none given:
    /// `--trusted-root`).
    Keyless {
        /// The certificate identity (e-mail or URI).
        identity: String,
        /// The OIDC issuer.
        issuer: String,
        /// The trusted root file.
        trusted_root: Option<PathBuf>,
    },
}

/// Settings for one registry host.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RegistrySettings {
    /// Talk plain HTTP to it.
    pub plain_http: bool,
    /// A PEM file of CA certificates to trust for it (resolved against the spec's directory).
    pub ca_file: Option<PathBuf>,
    /// Mirrors tried in order before the origin: `host[:port][/path/prefix]`.
    pub mirrors: Vec<String>,
    /// How signatures of its images are verified (`verify:`), unless an image says.
    pub verify: Option<VerifySpec>,
}

/// How a spec is read.
#[derive(Debug, Clone, Default)]
pub struct SpecOptions {
    /// A kubeadm executable to ask for the images of a `spec.kubernetes` release that
    /// airlock's release data does not know (`--kubeadm PATH`, see
    /// [`crate::kubeadm::kubeadm_images`]).
    pub kubeadm: Option<PathBuf>,
}

impl Spec {
    /// Reads and validates a spec file (YAML, or one reference a line).
    pub fn load(path: &Path) -> Result<Spec, Error> {
        Spec::load_with(path, &SpecOptions::default())
    }

    /// [`Spec::load`], with options.
    pub fn load_with(path: &Path, options: &SpecOptions) -> Result<Spec, Error> {
        let bytes = std::fs::read(path).map_err(|source| Error::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let text = String::from_utf8(bytes.clone()).map_err(|e| Error::Spec {
            path: path.to_path_buf(),
            line: 1,
            column: 1,
            message: format!(
                "not UTF-8 text (invalid byte at offset {})",
                e.utf8_error().valid_up_to()
            ),
        })?;
        let sha256 = hex::encode(Sha256::digest(&bytes));
        if looks_like_yaml(path, &text) {
            parse_yaml_with(path, &text, sha256, options)
        } else {
            parse_list(path, &text, sha256)
        }
    }
}

fn looks_like_yaml(path: &Path, text: &str) -> bool {
    match path.extension().and_then(|e| e.to_str()) {
        Some("yaml" | "yml") => true,
        Some("txt" | "list") => false,
        _ => text
            .lines()
            .map(str::trim)
            .find(|l| !l.is_empty() && !l.starts_with('#'))
            .is_some_and(|l| l.starts_with("apiVersion:") || l.starts_with("kind:") || l == "---"),
    }
}

fn spec_error(path: &Path, line: usize, column: usize, message: impl Into<String>) -> Error {
    Error::Spec {
        path: path.to_path_buf(),
        line,
        column,
        message: message.into(),
    }
}

/// `images.txt`: one reference a line, `#` starts a comment.
fn parse_list(path: &Path, text: &str, sha256: String) -> Result<Spec, Error> {
    let mut images = Vec::new();
    let mut seen: HashMap<String, String> = HashMap::new();
    for (i, raw) in text.lines().enumerate() {
        let line = i + 1;
        let content = strip_comment(raw);
        let trimmed = content.trim();
        if trimmed.is_empty() {
            continue;
        }
        let column = content.len() - content.trim_start().len() + 1;
        if trimmed.contains(char::is_whitespace) {
            // A line with an `@` may hold `user:password@`: it is not echoed.
            let shown = if trimmed.contains('@') {
                "this line".to_string()
            } else {
                format!("`{trimmed}`")
            };
            return Err(spec_error(
                path,
                line,
                column,
                format!("{shown} is not one image reference (one reference a line)"),
            ));
        }
        let reference = Reference::parse(trimmed)
            .map_err(|e| spec_error(path, line, column, format!("bad image reference: {e}")))?;
        check_duplicate(path, &mut seen, &reference, line, column)?;
        images.push(ImageSpec {
            reference,
            original: trimmed.to_string(),
            platforms: PlatformFilter::All,
            line,
            column,
            artifacts: ArtifactSelection::all(),
            verify: None,
        });
    }
    if images.is_empty() {
        return Err(spec_error(path, 1, 1, "the image list is empty"));
    }
    let name = path
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or("images")
        .to_string();
    Ok(Spec {
        path: path.to_path_buf(),
        name,
        sha256,
        platforms: PlatformFilter::All,
        images,
        registries: BTreeMap::new(),
        kubernetes: None,
        files: Vec::new(),
        charts: Vec::new(),
    })
}

fn strip_comment(line: &str) -> &str {
    // `#` starts a comment at the start of a line or after white space; a reference never
    // contains one.
    match line.find('#') {
        Some(i) => &line[..i],
        None => line,
    }
}

/// `seen` maps each canonical reference to where it first appeared (`first listed on line 6`).
fn check_duplicate(
    path: &Path,
    seen: &mut HashMap<String, String>,
    reference: &Reference,
    line: usize,
    column: usize,
) -> Result<(), Error> {
    let key = reference.to_string();
    if let Some(first) = seen.get(&key) {
        return Err(spec_error(
            path,
            line,
            column,
            format!("duplicate image `{key}` ({first})"),
        ));
    }
    seen.insert(key, format!("first listed on line {line}"));
    Ok(())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSpec {
    #[serde(rename = "apiVersion")]
    api_version: Spanned<String>,
    kind: Spanned<String>,
    metadata: RawMetadata,
    spec: Spanned<RawBody>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMetadata {
    name: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawBody {
    #[serde(default)]
    platforms: Option<Spanned<Vec<String>>>,
    #[serde(default)]
    images: Option<Spanned<Vec<Spanned<RawImage>>>>,
    #[serde(default)]
    registries: HashMap<Spanned<String>, RawRegistry>,
    #[serde(default)]
    kubernetes: Option<Spanned<RawKubernetes>>,
    #[serde(default)]
    artifacts: Option<RawArtifacts>,
    #[serde(default)]
    files: Vec<Spanned<content::RawFile>>,
    #[serde(default)]
    charts: Vec<Spanned<content::RawChart>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawKubernetes {
    version: Spanned<String>,
    #[serde(default)]
    addons: Option<Vec<Spanned<String>>>,
    /// Of the node binaries (default: `spec.platforms`, else `linux/amd64`).
    #[serde(default)]
    platforms: Option<Spanned<Vec<String>>>,
    /// The kubeadm image set (default: true).
    #[serde(default)]
    images: Option<Spanned<bool>>,
    #[serde(default)]
    binaries: Option<Vec<Spanned<String>>>,
    #[serde(default)]
    crictl: Option<Spanned<String>>,
    #[serde(default)]
    cni: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawRegistry {
    #[serde(default)]
    plain_http: bool,
    #[serde(default)]
    ca_file: Option<PathBuf>,
    #[serde(default)]
    mirrors: Vec<Spanned<String>>,
    #[serde(default)]
    verify: Option<Spanned<RawVerify>>,
}

/// `artifacts:` as written: `all`, `none`, or a map of the fields it sets.
#[derive(Debug, Clone)]
enum RawArtifacts {
    All,
    None,
    Fields {
        signatures: Option<bool>,
        attestations: Option<bool>,
        sboms: Option<bool>,
        referrers: Option<ReferrerFilter>,
    },
}

const ARTIFACT_FIELDS: &[&str] = &["signatures", "attestations", "sboms", "referrers"];

impl<'de> Deserialize<'de> for RawArtifacts {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = RawArtifacts;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(
                    "`all`, `none`, or a map of `signatures`, `attestations`, `sboms` \
                     (true or false) and `referrers` (`all`, `none` or a list of artifact types)",
                )
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<RawArtifacts, E> {
                match v {
                    "all" => Ok(RawArtifacts::All),
                    "none" => Ok(RawArtifacts::None),
                    other => Err(E::custom(format!(
                        "`artifacts: {other}` is not `all`, `none` or a map of {}",
                        ARTIFACT_FIELDS.join(", ")
                    ))),
                }
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<RawArtifacts, A::Error> {
                let (mut signatures, mut attestations, mut sboms, mut referrers) =
                    (None, None, None, None);
                while let Some(key) = map.next_key::<String>()? {
                    let dup = match key.as_str() {
                        "signatures" => signatures.replace(map.next_value()?).is_some(),
                        "attestations" => attestations.replace(map.next_value()?).is_some(),
                        "sboms" => sboms.replace(map.next_value()?).is_some(),
                        "referrers" => referrers
                            .replace(map.next_value::<RawReferrers>()?.0)
                            .is_some(),
                        other => return Err(de::Error::unknown_field(other, ARTIFACT_FIELDS)),
                    };
                    if dup {
                        return Err(de::Error::custom(format!("duplicate field `{key}`")));
                    }
                }
                Ok(RawArtifacts::Fields {
                    signatures,
                    attestations,
                    sboms,
                    referrers,
                })
            }
        }
        d.deserialize_any(V)
    }
}

/// `artifacts.referrers` as written.
struct RawReferrers(ReferrerFilter);

impl<'de> Deserialize<'de> for RawReferrers {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = RawReferrers;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("`all`, `none`, or a list of artifact types")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<RawReferrers, E> {
                match v {
                    "all" => Ok(RawReferrers(ReferrerFilter::All)),
                    "none" => Ok(RawReferrers(ReferrerFilter::None)),
                    other => Err(E::custom(format!(
                        "`referrers: {other}` is not `all`, `none` or a list of artifact types \
                         (write `[{other}]` for one type)"
                    ))),
                }
            }
            fn visit_seq<A: de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<RawReferrers, A::Error> {
                let mut types = Vec::new();
                while let Some(t) = seq.next_element::<String>()? {
                    if t.is_empty() || !t.contains('/') || t.contains(char::is_whitespace) {
                        return Err(de::Error::custom(format!(
                            "`{t}` is not an artifact type (a media type such as \
                             `application/spdx+json`)"
                        )));
                    }
                    if !types.contains(&t) {
                        types.push(t);
                    }
                }
                Ok(RawReferrers(if types.is_empty() {
                    ReferrerFilter::None
                } else {
                    ReferrerFilter::Types(types)
                }))
            }
        }
        d.deserialize_any(V)
    }
}

/// `verify:` as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawVerify {
    #[serde(default)]
    key: Option<PathBuf>,
    #[serde(default)]
    identity: Option<String>,
    #[serde(default)]
    issuer: Option<String>,
    #[serde(default)]
    trusted_root: Option<PathBuf>,
}

impl RawVerify {
    /// The checked form, paths resolved against `base`.
    fn check(self, base: &Path) -> Result<VerifySpec, &'static str> {
        let resolve = |f: PathBuf| if f.is_relative() { base.join(f) } else { f };
        match self {
            RawVerify {
                key: Some(key),
                identity: None,
                issuer: None,
                trusted_root: None,
            } => Ok(VerifySpec::Key(resolve(key))),
            RawVerify { key: Some(_), .. } => {
                Err("`verify` takes either `key` or `identity` with `issuer` (keyless), not both")
            }
            RawVerify {
                key: None,
                identity: Some(identity),
                issuer: Some(issuer),
                trusted_root,
            } if !identity.is_empty() && !issuer.is_empty() => Ok(VerifySpec::Keyless {
                identity,
                issuer,
                trusted_root: trusted_root.map(resolve),
            }),
            _ => Err("`verify` needs `key: FILE`, or `identity` and `issuer` \
                      (with `trustedRoot: FILE` or `--trusted-root`) for keyless signatures"),
        }
    }
}

/// An entry of `spec.images`: a reference, or a map with `name` and `platforms`.
struct RawImage {
    name: String,
    /// Where `name` is, for the map form (the entry's own position otherwise).
    name_at: Option<Location>,
    platforms: Option<Vec<String>>,
    artifacts: Option<RawArtifacts>,
    verify: Option<Spanned<RawVerify>>,
}

const IMAGE_FIELDS: &[&str] = &["name", "platforms", "artifacts", "verify"];

impl<'de> Deserialize<'de> for RawImage {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = RawImage;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an image reference, or a map with `name` and optional `platforms`")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<RawImage, E> {
                Ok(RawImage {
                    name: v.to_string(),
                    name_at: None,
                    platforms: None,
                    artifacts: None,
                    verify: None,
                })
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<RawImage, A::Error> {
                let mut name: Option<Spanned<String>> = None;
                let mut platforms = None;
                let mut artifacts = None;
                let mut verify = None;
                while let Some(key) = map.next_key::<String>()? {
                    match key.as_str() {
                        "name" if name.is_none() => name = Some(map.next_value()?),
                        "platforms" if platforms.is_none() => {
                            platforms = Some(map.next_value::<Vec<String>>()?)
                        }
                        "artifacts" if artifacts.is_none() => {
                            artifacts = Some(map.next_value::<RawArtifacts>()?)
                        }
                        "verify" if verify.is_none() => {
                            verify = Some(map.next_value::<Spanned<RawVerify>>()?)
                        }
                        "name" => return Err(de::Error::duplicate_field("name")),
                        "platforms" => return Err(de::Error::duplicate_field("platforms")),
                        "artifacts" => return Err(de::Error::duplicate_field("artifacts")),
                        "verify" => return Err(de::Error::duplicate_field("verify")),
                        other => {
                            return Err(de::Error::unknown_field(other, IMAGE_FIELDS));
                        }
                    }
                }
                let name = name.ok_or_else(|| de::Error::missing_field("name"))?;
                Ok(RawImage {
                    name: name.value,
                    name_at: Some(name.referenced),
                    platforms,
                    artifacts,
                    verify,
                })
            }
        }
        d.deserialize_any(V)
    }
}

/// Line and column (1-based) of a node; `(1, 1)` if the parser did not know.
fn at(l: Location) -> (usize, usize) {
    let line = usize::try_from(l.line()).unwrap_or(usize::MAX).max(1);
    let column = usize::try_from(l.column()).unwrap_or(usize::MAX).max(1);
    (line, column)
}

/// The limits of the YAML parser: wide enough for a spec of many thousand images, tight
/// enough that alias bombs and deep nesting stop early.
fn yaml_options() -> serde_saphyr::Options {
    let mut budget = serde_saphyr::Budget::default();
    budget.max_nodes = 4_000_000;
    budget.max_events = 8_000_000;
    let mut options = serde_saphyr::Options::default();
    options.budget = Some(budget);
    options.with_snippet = false;
    options
}

/// The parser's message without its own location suffix (the location goes in front).
fn yaml_message(e: &serde_saphyr::Error) -> String {
    let msg = e.without_snippet().to_string();
    let msg = match msg.rfind(" at line ") {
        Some(i) => &msg[..i],
        None => &msg,
    };
    // The parser's advice on its own API means nothing to the author of a spec.
    let msg = match msg.find(", set DuplicateKeyPolicy") {
        Some(i) => &msg[..i],
        None => msg,
    };
    if msg.starts_with("multiple YAML documents") {
        return "a spec is one YAML document (remove the `---` and what follows)".to_string();
    }
    msg.trim().to_string()
}

#[cfg(test)]
fn parse_yaml(path: &Path, text: &str, sha256: String) -> Result<Spec, Error> {
    parse_yaml_with(path, text, sha256, &SpecOptions::default())
}

fn parse_yaml_with(
    path: &Path,
    text: &str,
    sha256: String,
    options: &SpecOptions,
) -> Result<Spec, Error> {
    let raw: RawSpec = serde_saphyr::from_str_with_options(text, yaml_options()).map_err(|e| {
        let (line, column) = e.location().map(at).unwrap_or((1, 1));
        spec_error(path, line, column, yaml_message(&e))
    })?;
    if raw.api_version.value != API_VERSION {
        let (line, column) = at(raw.api_version.referenced);
        return Err(spec_error(
            path,
            line,
            column,
            format!(
                "unsupported apiVersion `{}` (expected `{API_VERSION}`)",
                raw.api_version.value
            ),
        ));
    }
    if raw.kind.value != "Bundle" {
        let (line, column) = at(raw.kind.referenced);
        return Err(spec_error(
            path,
            line,
            column,
            format!("unsupported kind `{}` (expected `Bundle`)", raw.kind.value),
        ));
    }
    let spec_at = at(raw.spec.referenced);
    let body = raw.spec.value;
    let base = path.parent().unwrap_or(Path::new("."));
    let platforms = match &body.platforms {
        None => PlatformFilter::All,
        Some(list) => {
            let (line, column) = at(list.referenced);
            PlatformFilter::parse_list(&list.value)
                .map_err(|m| spec_error(path, line, column, m.to_string()))?
        }
    };

    let artifacts = match &body.artifacts {
        None => ArtifactSelection::all(),
        Some(a) => ArtifactSelection::all().overridden(a),
    };
    let raw_images = body.images.map(|i| (at(i.referenced), i.value));
    let mut images = Vec::with_capacity(raw_images.as_ref().map_or(0, |(_, list)| list.len()) + 7);
    let mut seen = HashMap::new();
    let mut node_files = Vec::new();
    let kubernetes = match &body.kubernetes {
        None => None,
        Some(k) => Some(expand_kubernetes(
            path,
            &k.value,
            (&platforms, &artifacts),
            &mut images,
            &mut seen,
            &mut node_files,
            options.kubeadm.as_deref(),
        )?),
    };

    // Every image carries its own position: one pass, whatever the number of images.
    let (images_at, raw_images) = raw_images.unwrap_or((spec_at, Vec::new()));
    for img in raw_images {
        let (line, column) = at(img.value.name_at.unwrap_or(img.referenced));
        let img = img.value;
        let reference = Reference::parse(&img.name)
            .map_err(|e| spec_error(path, line, column, format!("bad image reference: {e}")))?;
        check_duplicate(path, &mut seen, &reference, line, column)?;
        let image_platforms = match &img.platforms {
            None => platforms.clone(),
            Some(list) => PlatformFilter::parse_list(list)
                .map_err(|m| spec_error(path, line, column, m.to_string()))?,
        };
        let verify = match img.verify {
            None => None,
            Some(v) => {
                let (line, column) = at(v.referenced);
                Some(
                    v.value
                        .check(base)
                        .map_err(|m| spec_error(path, line, column, m))?,
                )
            }
        };
        images.push(ImageSpec {
            reference,
            original: img.name,
            platforms: image_platforms,
            line,
            column,
            artifacts: match &img.artifacts {
                None => artifacts.clone(),
                Some(a) => artifacts.overridden(a),
            },
            verify,
        });
    }
    // `spec.files`, then the node kit of `spec.kubernetes`: one name space.
    let mut files = content::files(path, base, body.files)?;
    files.append(&mut node_files);
    content::check_unique(path, &files)?;
    let charts = content::charts(path, body.charts)?;
    if images.is_empty() && files.is_empty() && charts.is_empty() {
        let (line, column) = images_at;
        return Err(spec_error(
            path,
            line,
            column,
            "`spec.images` is empty (list images, or name a release in `spec.kubernetes`)",
        ));
    }

    // In the order of the file, so that the first bad entry is the one reported.
    let mut entries: Vec<(Spanned<String>, RawRegistry)> = body.registries.into_iter().collect();
    entries.sort_by_key(|(k, _)| at(k.referenced));
    let mut registries = BTreeMap::new();
    for (host, r) in entries {
        let (line, column) = at(host.referenced);
        let host = host.value;
        if host.is_empty() || host.contains('/') || host.contains("://") {
            return Err(spec_error(
                path,
                line,
                column,
                format!("registry key `{host}` must be a host with an optional port, such as `harbor.lan:5000`"),
            ));
        }
        for m in &r.mirrors {
            let bare = m
                .value
                .strip_prefix("https://")
                .or_else(|| m.value.strip_prefix("http://"))
                .unwrap_or(&m.value);
            if bare.is_empty() || bare.contains("://") || m.value.ends_with('/') {
                let (line, column) = at(m.referenced);
                return Err(spec_error(
                    path,
                    line,
                    column,
                    format!(
                        "mirror `{}` must be `host[:port][/path]` (or an http(s):// URL for a file host)",
                        m.value
                    ),
                ));
            }
        }
        let ca_file = r
            .ca_file
            .map(|f| if f.is_relative() { base.join(f) } else { f });
        let verify = match r.verify {
            None => None,
            Some(v) => {
                let (line, column) = at(v.referenced);
                Some(
                    v.value
                        .check(base)
                        .map_err(|m| spec_error(path, line, column, m))?,
                )
            }
        };
        registries.insert(
            host,
            RegistrySettings {
                plain_http: r.plain_http,
                ca_file,
                mirrors: r.mirrors.into_iter().map(|m| m.value).collect(),
                verify,
            },
        );
    }

    Ok(Spec {
        path: path.to_path_buf(),
        name: raw.metadata.name,
        sha256,
        platforms,
        images,
        registries,
        kubernetes,
        files,
        charts,
    })
}

/// Adds the images of `spec.kubernetes` (in kubeadm's order) at the position of its `version`,
/// unless `images: false`, and its node kit (`binaries`, `crictl`, `cni`) to `files`.
fn expand_kubernetes(
    path: &Path,
    k: &RawKubernetes,
    (platforms, artifacts): (&PlatformFilter, &ArtifactSelection),
    images: &mut Vec<ImageSpec>,
    seen: &mut HashMap<String, String>,
    files: &mut Vec<FileSpec>,
    kubeadm: Option<&Path>,
) -> Result<KubernetesSpec, Error> {
    use crate::kubernetes::{self, Addon, KubernetesError, Version};
    let (line, column) = at(k.version.referenced);
    let with_images = k.images.as_ref().is_none_or(|i| i.value);
    let addons = match &k.addons {
        None => None,
        Some(_) if !with_images => {
            let (l, c) = at(k
                .images
                .as_ref()
                .map_or(k.version.referenced, |i| i.referenced));
            return Err(spec_error(
                path,
                l,
                c,
                "`addons` narrows the kubeadm images, which `images: false` leaves out (remove one of the two)",
            ));
        }
        Some(list) => {
            let mut out = Vec::new();
            for a in list {
                let addon = a.value.parse::<Addon>().map_err(|e| {
                    let (l, c) = at(a.referenced);
                    spec_error(path, l, c, e.to_string())
                })?;
                if !out.contains(&addon) {
                    out.push(addon);
                }
            }
            Some(out)
        }
    };
    // The node binaries need only a version; the images need the release data.
    let version: Version = if with_images {
        let located = |e: &dyn std::fmt::Display| spec_error(path, line, column, e.to_string());
        let (version, list) = match (kubernetes::release(&k.version.value), kubeadm) {
            (Ok((version, _)), _) => (
                version,
                kubernetes::images(&k.version.value, addons.as_deref()).map_err(|e| located(&e))?,
            ),
            // A release the data does not know: ask a real kubeadm of it, when one is given.
            (
                Err(KubernetesError::Unsupported { .. } | KubernetesError::TooNew { .. }),
                Some(kubeadm),
            ) => {
                let version: Version = k.version.value.parse().map_err(|e| located(&e))?;
                let list = crate::kubeadm::kubeadm_images(kubeadm, &version, addons.as_deref())
                    .map_err(|e| located(&e))?;
                (version, list)
            }
            (Err(e), _) => return Err(located(&e)),
        };
        for name in list {
            // The release data holds valid references, and kubeadm's lines were checked.
            let reference = Reference::parse(&name).map_err(|e| {
                spec_error(
                    path,
                    line,
                    column,
                    format!("bad image reference `{name}`: {e}"),
                )
            })?;
            seen.insert(
                reference.to_string(),
                format!("also in `spec.kubernetes` {version} on line {line}"),
            );
            images.push(ImageSpec {
                reference,
                original: name,
                platforms: platforms.clone(),
                line,
                column,
                artifacts: artifacts.clone(),
                verify: None,
            });
        }
        version
    } else {
        k.version
            .value
            .parse()
            .map_err(|e: kubernetes::KubernetesError| {
                spec_error(path, line, column, e.to_string())
            })?
    };
    expand_node_kit(path, k, &version, platforms, files)?;
    Ok(KubernetesSpec {
        version: version.to_string(),
        addons,
    })
}

/// The node kit of `spec.kubernetes`, for each of its platforms: the `binaries` of release
/// `version`, then crictl, then the CNI plugins, each checked against the `.sha256` published
/// beside it.
fn expand_node_kit(
    path: &Path,
    k: &RawKubernetes,
    version: &crate::kubernetes::Version,
    spec_platforms: &PlatformFilter,
    files: &mut Vec<FileSpec>,
) -> Result<(), Error> {
    use crate::kubernetes::node::{self, NodeFile};
    let located = |s: Location, e: crate::kubernetes::KubernetesError| {
        let (l, c) = at(s);
        spec_error(path, l, c, e.to_string())
    };
    // Each entry checked first, so a bad one is reported wherever the platforms are.
    let mut binaries: Vec<&Spanned<String>> = Vec::new();
    for b in k.binaries.iter().flatten() {
        if !node::BINARIES.contains(&b.value.as_str()) {
            return Err(located(
                b.referenced,
                crate::kubernetes::KubernetesError::UnknownBinary {
                    binary: b.value.clone(),
                },
            ));
        }
        if !binaries.iter().any(|seen| seen.value == b.value) {
            binaries.push(b);
        }
    }
    // The versions too, with a stand-in platform: only the version can be wrong here.
    if let Some(c) = &k.crictl {
        node::crictl(&c.value, "linux", "amd64").map_err(|e| located(c.referenced, e))?;
    }
    if let Some(n) = &k.cni {
        node::cni(&n.value, "linux", "amd64").map_err(|e| located(n.referenced, e))?;
    }
    if binaries.is_empty() && k.crictl.is_none() && k.cni.is_none() {
        if let Some(p) = &k.platforms {
            let (l, c) = at(p.referenced);
            return Err(spec_error(
                path,
                l,
                c,
                "`platforms` of `spec.kubernetes` is for its node kit: add `binaries`, `crictl` or `cni`, or remove it",
            ));
        }
        return Ok(());
    }
    let (list, list_at): (Vec<String>, Location) = match (&k.platforms, spec_platforms) {
        (Some(p), _) => (p.value.clone(), p.referenced),
        (None, PlatformFilter::Only(list)) => (
            list.iter().map(|p| p.to_string()).collect(),
            k.version.referenced,
        ),
        (None, PlatformFilter::All) => (vec!["linux/amd64".to_string()], k.version.referenced),
    };
    if list.is_empty() {
        let (l, c) = at(list_at);
        return Err(spec_error(
            path,
            l,
            c,
            "`platforms` of `spec.kubernetes` is empty",
        ));
    }
    let mut platforms: Vec<(&str, &str)> = Vec::new();
    for p in &list {
        let split = node::platform(p).map_err(|e| {
            let (l, c) = at(list_at);
            let from = if k.platforms.is_none() {
                " (from `spec.platforms`; set `platforms` in `spec.kubernetes` for the node kit)"
            } else {
                ""
            };
            spec_error(path, l, c, format!("{e}{from}"))
        })?;
        if !platforms.contains(&split) {
            platforms.push(split);
        }
    }
    let file = |f: NodeFile, at_: Location| {
        let (line, column) = at(at_);
        let host = f
            .url
            .strip_prefix("https://")
            .and_then(|u| u.split('/').next())
            .unwrap_or_default();
        FileSpec {
            checksum: ChecksumSpec::Url(f.checksum_url()),
            repository: format!("{host}/{}", f.repository),
            name: f.name,
            source: FileSource::Url(f.url),
            tag: f.tag,
            mode: f.mode,
            line,
            column,
        }
    };
    for (os, arch) in platforms {
        for b in &binaries {
            let f =
                node::binary(version, os, arch, &b.value).map_err(|e| located(b.referenced, e))?;
            files.push(file(f, b.referenced));
        }
        if let Some(c) = &k.crictl {
            let f = node::crictl(&c.value, os, arch).map_err(|e| located(c.referenced, e))?;
            files.push(file(f, c.referenced));
        }
        if let Some(n) = &k.cni {
            let f = node::cni(&n.value, os, arch).map_err(|e| located(n.referenced, e))?;
            files.push(file(f, n.referenced));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap();
        p
    }

    #[test]
    fn yaml_spec_parses_with_defaults_and_registries() {
        let dir = tempfile::tempdir().unwrap();
        let p = write(
            dir.path(),
            "s.yaml",
            "apiVersion: airlock.dev/v1\nkind: Bundle\nmetadata: {name: demo}\nspec:\n  platforms: [linux/amd64, linux/arm64]\n  images:\n    - registry.k8s.io/pause:3.9\n    - name: nginx\n      platforms: [all]\n  registries:\n    127.0.0.1:5000: {plainHttp: true}\n    harbor.lan: {caFile: ./ca.pem}\n    registry.k8s.io: {mirrors: [mirror.lan/google_containers]}\n",
        );
        let s = Spec::load(&p).unwrap();
        assert_eq!(s.name, "demo");
        assert_eq!(s.images.len(), 2);
        assert_eq!(
            s.images[0].reference.to_string(),
            "registry.k8s.io/pause:3.9"
        );
        assert_eq!(s.images[0].line, 7);
        assert_eq!(
            s.images[1].reference.to_string(),
            "docker.io/library/nginx:latest"
        );
        assert_eq!(s.images[1].line, 8);
        assert_eq!(s.images[1].platforms, PlatformFilter::All);
        assert!(matches!(s.images[0].platforms, PlatformFilter::Only(ref v) if v.len() == 2));
        assert!(s.registries["127.0.0.1:5000"].plain_http);
        assert_eq!(
            s.registries["harbor.lan"].ca_file.as_deref(),
            Some(dir.path().join("./ca.pem").as_path())
        );
        assert_eq!(
            s.registries["registry.k8s.io"].mirrors,
            vec!["mirror.lan/google_containers"]
        );
        assert_eq!(s.sha256.len(), 64);
    }

    #[test]
    fn unknown_field_names_line_and_column() {
        let dir = tempfile::tempdir().unwrap();
        let p = write(
            dir.path(),
            "s.yaml",
            "apiVersion: airlock.dev/v1\nkind: Bundle\nmetadata: {name: demo}\nspec:\n  images: [a]\n  platfroms: [linux/amd64]\n",
        );
        let e = Spec::load(&p).unwrap_err().to_string();
        assert!(e.contains("s.yaml:6:"), "{e}");
        assert!(e.contains("platfroms"), "{e}");
    }

    #[test]
    fn bad_reference_and_duplicates_are_located() {
        let dir = tempfile::tempdir().unwrap();
        let p = write(
            dir.path(),
            "s.yaml",
            "apiVersion: airlock.dev/v1\nkind: Bundle\nmetadata: {name: demo}\nspec:\n  images:\n    - busybox\n    - Bad/UPPER:1\n",
        );
        let e = Spec::load(&p).unwrap_err().to_string();
        assert!(e.contains("s.yaml:7:"), "{e}");
        assert!(e.contains("Bad/UPPER:1"), "{e}");

        let p = write(
            dir.path(),
            "d.yaml",
            "apiVersion: airlock.dev/v1\nkind: Bundle\nmetadata: {name: demo}\nspec:\n  images:\n    - busybox\n    - a/b:1\n    - docker.io/library/busybox:latest\n",
        );
        let e = Spec::load(&p).unwrap_err().to_string();
        assert!(e.contains("d.yaml:8:7"), "{e}");
        assert!(
            e.contains(
                "duplicate image `docker.io/library/busybox:latest` (first listed on line 6)"
            ),
            "{e}"
        );
    }

    #[test]
    fn wrong_kind_and_bad_platform() {
        let dir = tempfile::tempdir().unwrap();
        let p = write(
            dir.path(),
            "k.yaml",
            "apiVersion: airlock.dev/v1\nkind: Pod\nmetadata: {name: x}\nspec: {images: [a]}\n",
        );
        let e = Spec::load(&p).unwrap_err().to_string();
        assert!(e.contains("k.yaml:2:7") && e.contains("`Pod`"), "{e}");
        let p = write(dir.path(), "p.yaml", "apiVersion: airlock.dev/v1\nkind: Bundle\nmetadata: {name: x}\nspec:\n  platforms: [amd64]\n  images: [a]\n");
        let e = Spec::load(&p).unwrap_err().to_string();
        assert!(e.contains("p.yaml:5:") && e.contains("amd64"), "{e}");
    }

    #[test]
    fn image_list_with_comments() {
        let dir = tempfile::tempdir().unwrap();
        let p = write(
            dir.path(),
            "images.txt",
            "# kube\nregistry.k8s.io/pause:3.9  # infra\n\n  nginx\n",
        );
        let s = Spec::load(&p).unwrap();
        assert_eq!(s.name, "images");
        assert_eq!(s.images.len(), 2);
        assert_eq!((s.images[1].line, s.images[1].column), (4, 3));
        let p = write(dir.path(), "bad.txt", "nginx\nfoo bar\n");
        let e = Spec::load(&p).unwrap_err().to_string();
        assert!(e.contains("bad.txt:2:1"), "{e}");
        let p = write(dir.path(), "pw.txt", "u:Secret-1@r.lan/a:1 r.lan/b\n");
        let e = Spec::load(&p).unwrap_err().to_string();
        assert!(e.contains("pw.txt:1:1") && !e.contains("Secret-1"), "{e}");
    }

    #[test]
    fn kubernetes_release_expands_in_front_of_the_images() {
        let dir = tempfile::tempdir().unwrap();
        let p = write(
            dir.path(),
            "k.yaml",
            "apiVersion: airlock.dev/v1\nkind: Bundle\nmetadata: {name: k}\nspec:\n  platforms: [linux/amd64]\n  kubernetes: {version: v1.28.0}\n  images:\n    - quay.io/calico/node:v3.26.1\n",
        );
        let s = Spec::load(&p).unwrap();
        let names: Vec<String> = s.images.iter().map(|i| i.reference.to_string()).collect();
        let mut want = crate::kubernetes::images("v1.28.0", None).unwrap();
        want.push("quay.io/calico/node:v3.26.1".into());
        assert_eq!(names, want);
        assert_eq!((s.images[0].line, s.images[0].column), (6, 25));
        assert!(matches!(s.images[0].platforms, PlatformFilter::Only(ref v) if v.len() == 1));
        assert_eq!(
            s.kubernetes,
            Some(KubernetesSpec {
                version: "v1.28.0".into(),
                addons: None
            })
        );
        assert!(s.files.is_empty());

        // Only the kubernetes release, narrowed: the four control-plane images and etcd.
        let p = write(
            dir.path(),
            "n.yaml",
            "apiVersion: airlock.dev/v1\nkind: Bundle\nmetadata: {name: k}\nspec:\n  kubernetes:\n    version: 1.31.2\n    addons: [etcd]\n",
        );
        let s = Spec::load(&p).unwrap();
        assert_eq!(s.images.len(), 5);
        assert_eq!(
            s.images[4].reference.to_string(),
            "registry.k8s.io/etcd:3.5.15-0"
        );
        assert_eq!(
            s.images[0].original,
            "registry.k8s.io/kube-apiserver:v1.31.2"
        );
    }

    /// The node kit of `spec.kubernetes` becomes files after `spec.files`, named and checked
    /// as published: dl.k8s.io for the binaries, GitHub releases for crictl and the CNI
    /// plugins, each with the `.sha256` beside it.
    #[test]
    fn node_kit_expands_into_files() {
        let dir = tempfile::tempdir().unwrap();
        let p = write(
            dir.path(),
            "n.yaml",
            "apiVersion: airlock.dev/v1\nkind: Bundle\nmetadata: {name: n}\nspec:\n  platforms: [linux/amd64, linux/arm64]\n  kubernetes:\n    version: v1.35.2\n    platforms: [linux/amd64]\n    binaries: [kubeadm, kubelet, kubectl, kubelet]\n    crictl: v1.35.0\n    cni: v1.8.0\n",
        );
        let s = Spec::load(&p).unwrap();
        assert_eq!(s.images.len(), 7);
        let names: Vec<&str> = s.files.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "kubernetes/v1.35.2/linux/amd64/kubeadm",
                "kubernetes/v1.35.2/linux/amd64/kubelet",
                "kubernetes/v1.35.2/linux/amd64/kubectl",
                "crictl/v1.35.0/crictl-v1.35.0-linux-amd64.tar.gz",
                "cni/v1.8.0/cni-plugins-linux-amd64-v1.8.0.tgz",
            ]
        );
        let kubelet = &s.files[1];
        assert_eq!(
            kubelet.source,
            FileSource::Url("https://dl.k8s.io/release/v1.35.2/bin/linux/amd64/kubelet".into())
        );
        assert_eq!(
            kubelet.checksum,
            ChecksumSpec::Url(
                "https://dl.k8s.io/release/v1.35.2/bin/linux/amd64/kubelet.sha256".into()
            )
        );
        assert_eq!(kubelet.repository, "dl.k8s.io/files/kubelet");
        assert_eq!(kubelet.tag, "v1.35.2-linux-amd64");
        assert_eq!(kubelet.mode, 0o755);
        assert_eq!((kubelet.line, kubelet.column), (9, 25));
        let crictl = &s.files[3];
        assert_eq!(crictl.source, FileSource::Url("https://github.com/kubernetes-sigs/cri-tools/releases/download/v1.35.0/crictl-v1.35.0-linux-amd64.tar.gz".into()));
        assert_eq!(crictl.repository, "github.com/files/crictl");
        assert_eq!(crictl.tag, "v1.35.0-linux-amd64");
        assert_eq!(crictl.mode, 0o644);
        assert_eq!((crictl.line, crictl.column), (10, 13));
        let cni = &s.files[4];
        assert_eq!(cni.checksum, ChecksumSpec::Url("https://github.com/containernetworking/plugins/releases/download/v1.8.0/cni-plugins-linux-amd64-v1.8.0.tgz.sha256".into()));
        assert_eq!(cni.repository, "github.com/files/cni-plugins");
        assert_eq!(cni.tag, "v1.8.0-linux-amd64");

        // Platforms default to `spec.platforms`, one set each; without them, linux/amd64.
        let p = write(
            dir.path(),
            "d.yaml",
            "apiVersion: airlock.dev/v1\nkind: Bundle\nmetadata: {name: n}\nspec:\n  platforms: [linux/amd64, linux/arm64]\n  kubernetes: {version: v1.35.2, binaries: [kubectl]}\n",
        );
        let s = Spec::load(&p).unwrap();
        let tags: Vec<&str> = s.files.iter().map(|f| f.tag.as_str()).collect();
        assert_eq!(tags, ["v1.35.2-linux-amd64", "v1.35.2-linux-arm64"]);
        let p = write(
            dir.path(),
            "e.yaml",
            "apiVersion: airlock.dev/v1\nkind: Bundle\nmetadata: {name: n}\nspec:\n  kubernetes: {version: v1.35.2, cni: v1.8.0}\n",
        );
        let s = Spec::load(&p).unwrap();
        assert_eq!(s.files.len(), 1);
        assert_eq!(s.files[0].tag, "v1.8.0-linux-amd64");

        // `images: false`: the binaries only, for any release (the release data is not needed).
        let p = write(
            dir.path(),
            "f.yaml",
            "apiVersion: airlock.dev/v1\nkind: Bundle\nmetadata: {name: n}\nspec:\n  kubernetes: {version: v1.38.0, images: false, binaries: [kubeadm]}\n",
        );
        let s = Spec::load(&p).unwrap();
        assert!(s.images.is_empty());
        assert_eq!(s.files[0].name, "kubernetes/v1.38.0/linux/amd64/kubeadm");
        assert_eq!(s.kubernetes.unwrap().version, "v1.38.0");

        // No node kit: no files, and the spec is what it was.
        let p = write(
            dir.path(),
            "g.yaml",
            "apiVersion: airlock.dev/v1\nkind: Bundle\nmetadata: {name: n}\nspec:\n  kubernetes: {version: v1.35.2}\n",
        );
        assert!(Spec::load(&p).unwrap().files.is_empty());
    }

    /// A release the data does not know: with `SpecOptions::kubeadm`, the images that kubeadm
    /// lists (a stand-in script here); without it, the located error that names `--kubeadm`.
    #[test]
    fn unknown_release_asks_the_given_kubeadm() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let p = write(
            dir.path(),
            "u.yaml",
            "apiVersion: airlock.dev/v1\nkind: Bundle\nmetadata: {name: u}\nspec:\n  kubernetes: {version: v1.38.1, addons: [etcd]}\n  images: [quay.io/calico/node:v3.26.1]\n",
        );
        let stand_in = |name: &str, body: &str| {
            let k = dir.path().join(name);
            let tmp = dir.path().join(format!("{name}.tmp"));
            std::fs::write(&tmp, format!("#!/bin/sh\n{body}")).unwrap();
            std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o755)).unwrap();
            std::fs::rename(&tmp, &k).unwrap();
            k
        };
        let good = stand_in(
            "kubeadm",
            "[ \"$*\" = 'config images list --kubernetes-version v1.38.1' ] || exit 3\n\
             for i in kube-apiserver kube-controller-manager kube-scheduler kube-proxy; do echo registry.k8s.io/$i:v1.38.1; done\n\
             echo registry.k8s.io/pause:3.10.2\necho registry.k8s.io/etcd:3.7.1-0\necho registry.k8s.io/coredns/coredns:v1.14.7\n",
        );
        let s = Spec::load_with(
            &p,
            &SpecOptions {
                kubeadm: Some(good),
            },
        )
        .unwrap();
        let names: Vec<String> = s.images.iter().map(|i| i.reference.to_string()).collect();
        assert_eq!(
            names,
            [
                "registry.k8s.io/kube-apiserver:v1.38.1",
                "registry.k8s.io/kube-controller-manager:v1.38.1",
                "registry.k8s.io/kube-scheduler:v1.38.1",
                "registry.k8s.io/kube-proxy:v1.38.1",
                "registry.k8s.io/etcd:3.7.1-0",
                "quay.io/calico/node:v3.26.1",
            ]
        );
        assert_eq!(s.kubernetes.unwrap().version, "v1.38.1");

        let e = Spec::load(&p).unwrap_err().to_string();
        assert!(
            e.contains("u.yaml:5:25:") && e.contains("--kubeadm PATH"),
            "{e}"
        );
        let bad = stand_in("failing", "echo 'kubeadm: no such version' >&2\nexit 1\n");
        let e = Spec::load_with(&p, &SpecOptions { kubeadm: Some(bad) })
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("u.yaml:5:25:") && e.contains("kubeadm: no such version"),
            "{e}"
        );
    }

    #[test]
    fn node_kit_errors_are_located() {
        let dir = tempfile::tempdir().unwrap();
        let cases: &[(&str, &str, &str)] = &[
            (
                "  kubernetes:\n    version: v1.35.2\n    binaries: [kubeadm, kubeproxy]\n",
                "7:25:",
                "unknown Kubernetes node binary `kubeproxy`",
            ),
            (
                "  kubernetes:\n    version: v1.35.2\n    crictl: 1.35.0\n",
                "7:13:",
                "crictl version `1.35.0` is not a release tag",
            ),
            (
                "  kubernetes:\n    version: v1.35.2\n    cni: latest\n",
                "7:10:",
                "cni version `latest`",
            ),
            (
                "  kubernetes:\n    version: v1.35.2\n    platforms: [linux/amd64, windows/amd64]\n    binaries: [kubectl]\n",
                "7:16:",
                "no binaries for platform `windows/amd64`",
            ),
            (
                "  platforms: [linux/arm/v7]\n  kubernetes:\n    version: v1.35.2\n    binaries: [kubectl]\n",
                "7:14:",
                "(from `spec.platforms`; set `platforms` in `spec.kubernetes`",
            ),
            (
                "  kubernetes:\n    version: v1.35.2\n    platforms: [linux/amd64]\n",
                "7:16:",
                "add `binaries`, `crictl` or `cni`",
            ),
            (
                "  kubernetes:\n    version: v1.35.2\n    images: false\n    addons: [etcd]\n    binaries: [kubectl]\n",
                "7:13:",
                "`images: false`",
            ),
            (
                "  kubernetes:\n    version: v1.35\n    images: false\n    binaries: [kubectl]\n",
                "6:14:",
                "`v1.35` is not a Kubernetes version",
            ),
            (
                "  kubernetes:\n    version: v1.38.0\n    binaries: [kubectl]\n",
                "6:14:",
                "--kubeadm PATH",
            ),
            (
                "  kubernetes:\n    version: v1.35.2\n    binarys: [kubectl]\n",
                "7:5:",
                "binarys",
            ),
        ];
        for (i, (body, at_, says)) in cases.iter().enumerate() {
            let name = format!("k{i}.yaml");
            let p = write(
                dir.path(),
                &name,
                &format!("apiVersion: airlock.dev/v1\nkind: Bundle\nmetadata: {{name: k}}\nspec:\n{body}"),
            );
            let e = Spec::load(&p).unwrap_err().to_string();
            assert!(e.contains(&format!("{name}:{at_}")), "{body}: {e}");
            assert!(e.contains(says), "{body}: {e}");
        }
    }

    #[test]
    fn kubernetes_errors_are_located() {
        let dir = tempfile::tempdir().unwrap();
        let p = write(
            dir.path(),
            "u.yaml",
            "apiVersion: airlock.dev/v1\nkind: Bundle\nmetadata: {name: k}\nspec:\n  kubernetes:\n    version: v1.19.4\n",
        );
        let e = Spec::load(&p).unwrap_err().to_string();
        assert!(e.contains("u.yaml:6:14:"), "{e}");
        assert!(e.contains("v1.27.0\u{2013}v1.27.16, v1.28.0"), "{e}");
        assert!(e.contains("--kubeadm PATH"), "{e}");

        let p = write(
            dir.path(),
            "a.yaml",
            "apiVersion: airlock.dev/v1\nkind: Bundle\nmetadata: {name: k}\nspec:\n  kubernetes:\n    version: v1.28.0\n    addons: [coredns, kube-dns]\n",
        );
        let e = Spec::load(&p).unwrap_err().to_string();
        assert!(
            e.contains("a.yaml:7:23:") && e.contains("`kube-dns`"),
            "{e}"
        );

        let p = write(
            dir.path(),
            "d.yaml",
            "apiVersion: airlock.dev/v1\nkind: Bundle\nmetadata: {name: k}\nspec:\n  kubernetes: {version: v1.28.0}\n  images:\n    - registry.k8s.io/pause:3.9\n",
        );
        let e = Spec::load(&p).unwrap_err().to_string();
        assert!(e.contains("d.yaml:7:7:"), "{e}");
        assert!(
            e.contains("duplicate image `registry.k8s.io/pause:3.9` (also in `spec.kubernetes` v1.28.0 on line 5)"),
            "{e}"
        );

        let p = write(
            dir.path(),
            "x.yaml",
            "apiVersion: airlock.dev/v1\nkind: Bundle\nmetadata: {name: k}\nspec:\n  kubernetes: {version: v1.28.0, adons: []}\n",
        );
        let e = Spec::load(&p).unwrap_err().to_string();
        assert!(e.contains("x.yaml:5:") && e.contains("adons"), "{e}");
    }

    #[test]
    fn legacy_and_new_kubernetes_registries_share_mirrors() {
        let mut r = BTreeMap::new();
        r.insert(
            "registry.k8s.io".to_string(),
            RegistrySettings {
                plain_http: true,
                mirrors: vec!["m.lan/k8s".into()],
                ..RegistrySettings::default()
            },
        );
        let legacy = RegistrySettings::for_host(&r, "k8s.gcr.io").unwrap();
        assert_eq!(legacy.mirrors, vec!["m.lan/k8s"]);
        // Connection settings belong to a host, not to its alias.
        assert!(!legacy.plain_http);
        r.insert(
            "k8s.gcr.io".to_string(),
            RegistrySettings {
                mirrors: vec!["old.lan/gcr".into(), "m.lan/k8s".into()],
                ..RegistrySettings::default()
            },
        );
        assert_eq!(
            RegistrySettings::for_host(&r, "k8s.gcr.io")
                .unwrap()
                .mirrors,
            vec!["old.lan/gcr", "m.lan/k8s"]
        );
        assert_eq!(
            RegistrySettings::for_host(&r, "registry.k8s.io")
                .unwrap()
                .mirrors,
            vec!["m.lan/k8s", "old.lan/gcr"]
        );
        assert!(RegistrySettings::for_host(&r, "quay.io").is_none());
    }

    /// Every YAML error keeps the line and column of its cause (the YAML parser changed; the
    /// positions must not).
    #[test]
    fn yaml_errors_keep_line_and_column() {
        let dir = tempfile::tempdir().unwrap();
        let head = "apiVersion: airlock.dev/v1\nkind: Bundle\nmetadata: {name: x}\nspec:\n";
        for (body, want, needle) in [
            ("  images: [a\n", "5:11", "unclosed bracket"),
            (
                "  images: [a]\n  images: [b]\n",
                "6:3",
                "duplicate mapping key: images",
            ),
            (
                "  images:\n    - name: a\n      platfoo: [x]\n",
                "7:7",
                "`platfoo`",
            ),
            (
                "  images:\n    - {platforms: [x]}\n",
                "6:",
                "missing field `name`",
            ),
            (
                "  images:\n    - UPPER/case\n",
                "6:7",
                "uppercase letter `U`",
            ),
            (
                "  registries:\n    a/b: {}\n  images: [a]\n",
                "6:5",
                "registry key `a/b`",
            ),
            (
                "  registries:\n    r.lan: {mirrors: [x, 'y/']}\n  images: [a]\n",
                "6:26",
                "mirror `y/`",
            ),
            ("  images: []\n", "5:11", "`spec.images` is empty"),
            ("  images: [a]\n---\nfoo: 1\n", "7:1", "one YAML document"),
        ] {
            let p = write(dir.path(), "s.yaml", &format!("{head}{body}"));
            let e = Spec::load(&p).unwrap_err().to_string();
            assert!(e.contains(&format!("s.yaml:{want}")), "{body:?}: {e}");
            assert!(e.contains(needle), "{body:?}: {e}");
            assert!(
                !e.contains("DuplicateKeyPolicy") && !e.contains("from_str"),
                "{e}"
            );
        }
    }

    /// Regression: the images were located in the text by searching from the start for each
    /// one, so a spec of 20 000 images took seconds and one of 100 000 minutes. Each image
    /// now carries its position from the parser; 100 000 images are one pass (the bound is
    /// far above a linear parse on a loaded machine and far below a quadratic one).
    #[test]
    fn a_spec_of_100k_images_parses_in_one_pass() {
        let dir = tempfile::tempdir().unwrap();
        let n = 100_000;
        let mut yaml = String::from(
            "apiVersion: airlock.dev/v1\nkind: Bundle\nmetadata: {name: big}\nspec:\n  images:\n",
        );
        let mut list = String::new();
        for i in 0..n {
            yaml.push_str(&format!("    - r.lan/team/app{i}:1\n"));
            list.push_str(&format!("r.lan/team/app{i}:1\n"));
        }
        let p = write(dir.path(), "big.yaml", &yaml);
        let started = std::time::Instant::now();
        let s = Spec::load(&p).unwrap();
        assert_eq!(s.images.len(), n);
        let last = &s.images[n - 1];
        assert_eq!((last.line, last.column), (5 + n, 7));
        assert_eq!(last.original, format!("r.lan/team/app{}:1", n - 1));
        let p = write(dir.path(), "big.txt", &list);
        assert_eq!(Spec::load(&p).unwrap().images.len(), n);
        let took = started.elapsed();
        assert!(
            took < std::time::Duration::from_secs(60),
            "100 000 images took {took:?}"
        );
    }

    /// Every ready-made spec in `bundle-specs/` parses.
    #[test]
    fn every_bundle_spec_parses() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../bundle-specs");
        let mut n = 0;
        for entry in std::fs::read_dir(&dir).unwrap() {
            let p = entry.unwrap().path();
            if !matches!(
                p.extension().and_then(|e| e.to_str()),
                Some("yaml" | "yml" | "txt")
            ) {
                continue;
            }
            let s = Spec::load(&p).unwrap_or_else(|e| panic!("{e}"));
            assert!(!s.images.is_empty(), "{}", p.display());
            let stem = p.file_stem().unwrap().to_str().unwrap();
            if let Some(minor) = stem.strip_prefix("kubernetes-v") {
                let k = s.kubernetes.as_ref().unwrap_or_else(|| panic!("{stem}"));
                assert!(k.version.starts_with(&format!("v{minor}.")), "{stem}");
                assert_eq!(s.images.len(), 7, "{stem}");
                assert_eq!(
                    s.platforms.to_string(),
                    "linux/amd64, linux/arm64",
                    "{stem}"
                );
            }
            n += 1;
        }
        assert!(n >= 13, "only {n} specs in {}", dir.display());
    }

    const HEAD_A: &str = "apiVersion: airlock.dev/v1\nkind: Bundle\nmetadata: {name: a}\nspec:\n";

    #[test]
    fn artifacts_default_on_and_override_field_by_field() {
        let dir = tempfile::tempdir().unwrap();
        let p = write(
            dir.path(),
            "a.yaml",
            &format!(
                "{HEAD_A}  artifacts: {{sboms: false, referrers: [application/spdx+json]}}\n  images:\n    - a\n    - name: b\n      artifacts: {{sboms: true}}\n    - name: c\n      artifacts: none\n    - name: d\n      artifacts: all\n"
            ),
        );
        let s = Spec::load(&p).unwrap();
        let a = &s.images[0].artifacts;
        assert!(a.signatures && a.attestations && !a.sboms);
        assert_eq!(
            a.referrers,
            ReferrerFilter::Types(vec!["application/spdx+json".into()])
        );
        let b = &s.images[1].artifacts;
        assert!(b.sboms && b.signatures);
        assert_eq!(b.referrers, a.referrers, "fields not given are the spec's");
        assert!(s.images[2].artifacts.is_none());
        assert_eq!(s.images[3].artifacts, ArtifactSelection::all());

        let p = write(dir.path(), "d.yaml", &format!("{HEAD_A}  images: [a]\n"));
        assert_eq!(
            Spec::load(&p).unwrap().images[0].artifacts,
            ArtifactSelection::all()
        );
        let p = write(dir.path(), "t.txt", "a\n");
        assert_eq!(
            Spec::load(&p).unwrap().images[0].artifacts,
            ArtifactSelection::all()
        );
        assert!(ReferrerFilter::All.keeps(None));
        assert!(!ReferrerFilter::None.keeps(Some("x/y")));
        assert!(!a.referrers.keeps(None));
    }

    #[test]
    fn bad_artifacts_are_located() {
        let dir = tempfile::tempdir().unwrap();
        for (body, at, needle) in [
            ("  artifacts: some\n  images: [a]\n", "b.yaml:5:", "some"),
            (
                "  images:\n    - name: a\n      artifacts: {signature: true}\n",
                "b.yaml:7:",
                "signature",
            ),
            (
                "  images:\n    - name: a\n      artifacts: {referrers: [spdx]}\n",
                "b.yaml:7:",
                "spdx",
            ),
            (
                "  artifacts: {sboms: maybe}\n  images: [a]\n",
                "b.yaml:5:",
                "",
            ),
        ] {
            let p = write(dir.path(), "b.yaml", &format!("{HEAD_A}{body}"));
            let e = Spec::load(&p).unwrap_err().to_string();
            assert!(e.contains(at) && e.contains(needle), "{body}: {e}");
        }
    }

    #[test]
    fn verify_per_registry_and_image_with_paths_beside_the_spec() {
        let dir = tempfile::tempdir().unwrap();
        let p = write(
            dir.path(),
            "v.yaml",
            &format!(
                "{HEAD_A}  images:\n    - r.lan/a\n    - name: r.lan/b\n      verify: {{identity: me@example.com, issuer: https://issuer.example, trustedRoot: root.json}}\n    - other.lan/c\n  registries:\n    r.lan: {{verify: {{key: keys/k.pub}}}}\n"
            ),
        );
        let s = Spec::load(&p).unwrap();
        assert_eq!(
            s.verify_for(&s.images[0]),
            Some(&VerifySpec::Key(dir.path().join("keys/k.pub")))
        );
        assert_eq!(
            s.verify_for(&s.images[1]),
            Some(&VerifySpec::Keyless {
                identity: "me@example.com".into(),
                issuer: "https://issuer.example".into(),
                trusted_root: Some(dir.path().join("root.json")),
            })
        );
        assert_eq!(s.verify_for(&s.images[2]), None);

        for (body, at) in [
            (
                "  images:\n    - name: a\n      verify: {key: k.pub, identity: x}\n",
                "v.yaml:7:",
            ),
            (
                "  images:\n    - name: a\n      verify: {identity: x}\n",
                "v.yaml:7:",
            ),
            (
                "  images: [a]\n  registries:\n    r.lan: {verify: {keys: k}}\n",
                "v.yaml:7:",
            ),
        ] {
            let p = write(dir.path(), "v.yaml", &format!("{HEAD_A}{body}"));
            let e = Spec::load(&p).unwrap_err().to_string();
            assert!(
                e.contains(at) && e.contains("verify") || e.contains("keys"),
                "{body}: {e}"
            );
            assert!(e.contains(at), "{body}: {e}");
        }
    }
}

/// Property tests: `PROPTEST_CASES` sets how many cases (`cargo xtask fuzz` runs many more).
#[cfg(test)]
mod props {
    use proptest::prelude::*;

    use super::*;

    const HEAD: &str = "apiVersion: airlock.dev/v1\nkind: Bundle\nmetadata: {name: p}\nspec:\n";

    /// Whether 1-based (line, column) is inside `text` (or just past the end of a line).
    fn fits(text: &str, line: usize, column: usize) -> bool {
        let lines: Vec<&str> = text.split('\n').collect();
        line >= 1
            && column >= 1
            && line <= lines.len()
            && column <= lines[line - 1].chars().count() + 1
    }

    fn check(text: &str, result: Result<Spec, Error>) -> Result<Option<Spec>, TestCaseError> {
        match result {
            Ok(spec) => {
                for i in &spec.images {
                    prop_assert!(
                        fits(text, i.line, i.column),
                        "{}:{} for {}",
                        i.line,
                        i.column,
                        i.original
                    );
                }
                Ok(Some(spec))
            }
            Err(Error::Spec {
                line,
                column,
                message,
                ..
            }) => {
                prop_assert!(
                    fits(text, line, column),
                    "{}:{} outside the text: {}",
                    line,
                    column,
                    message
                );
                Ok(None)
            }
            Err(e) => Err(TestCaseError::fail(format!("not a spec error: {e}"))),
        }
    }

    /// Image-like words: references, near misses, uppercase, userinfo, YAML punctuation.
    fn word() -> impl Strategy<Value = String> {
        prop_oneof![
            "[a-z0-9]{1,6}(\\.[a-z]{1,4})?(:[0-9]{1,4})?/[a-z0-9_.-]{1,8}(:[a-zA-Z0-9_.-]{1,6})?",
            "[a-zA-Z0-9:/@._-]{1,24}",
            "[A-Z]{1,5}/[a-z]{1,5}",
            "[a-z]{1,4}:[A-Za-z0-9]{1,8}@[a-z]{1,6}\\.lan/[a-z]{1,5}",
            "[-:#&*!|>'\"%@`{}\\[\\], a-z]{1,12}",
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::default())]

        /// No text panics the YAML parser; an error points inside the text.
        #[test]
        fn prop_yaml_never_panics(body in "\\PC{0,200}|[-:#&*!|>'\"%@{}\\[\\], a-z0-9\n]{0,200}") {
            let text = format!("{HEAD}{body}");
            check(&text, parse_yaml(Path::new("s.yaml"), &text, String::new()))?;
            check(&body, parse_yaml(Path::new("s.yaml"), &body, String::new()))?;
        }

        /// No text panics the list parser; an error points inside the text.
        #[test]
        fn prop_list_never_panics(text in "\\PC{0,200}|[a-zA-Z0-9:/@._# \n-]{0,200}") {
            check(&text, parse_list(Path::new("s.txt"), &text, String::new()))?;
        }

        /// Specs of image-like words, plain, quoted or in maps: every accepted image is where
        /// the parser says, and no accepted reference has an uppercase first component or
        /// userinfo.
        #[test]
        fn prop_images_are_located(
            words in proptest::collection::vec((word(), 0..3u8), 1..12),
        ) {
            let mut text = format!("{HEAD}  images:\n");
            let mut list = String::new();
            for (w, style) in &words {
                let quoted = serde_json::to_string(w).unwrap();
                match style {
                    0 => text.push_str(&format!("    - {w}\n")),
                    1 => text.push_str(&format!("    - {quoted}\n")),
                    _ => text.push_str(&format!("    - name: {quoted}\n      platforms: [all]\n")),
                }
                list.push_str(w);
                list.push('\n');
            }
            for (text, result) in [
                (&text, parse_yaml(Path::new("s.yaml"), &text, String::new())),
                (&list, parse_list(Path::new("s.txt"), &list, String::new())),
            ] {
                let Some(spec) = check(text, result)? else { continue };
                for i in &spec.images {
                    let first = i.original.split('/').next().unwrap_or("");
                    let upper_host = i.original.contains('/')
                        && !first.contains(['.', ':'])
                        && first != "localhost"
                        && first.chars().any(|c| c.is_ascii_uppercase());
                    prop_assert!(!upper_host, "accepted {}", i.original);
                    let userinfo = i
                        .original
                        .split_once('@')
                        .is_some_and(|(_, after)| after.contains('/'));
                    prop_assert!(!userinfo, "accepted {}", i.original);
                    // The position is that of the reference itself (quoted or not).
                    let line = text.split('\n').nth(i.line - 1).unwrap();
                    let at: String = line.chars().skip(i.column - 1).collect();
                    prop_assert!(
                        at.starts_with(&i.original) || at.starts_with(&format!("\"{}", i.original.chars().next().unwrap())),
                        "{} at {}:{} is {:?}", i.original, i.line, i.column, at
                    );
                }
            }
        }
    }
}
