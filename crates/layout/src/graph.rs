//! The content graph of one image: index → manifests → config and layers, on oci-spec types.
//!
//! One set of structural rules, enforced here for every reader of images (the online walker
//! that fetches over the network, the offline planner and containerd that read a bundle, and
//! inspect's sizes):
//!
//! - every document (index, manifest) is checked against the size and the digest its
//!   descriptor declares before it is read;
//! - an index may name manifests, not other indexes;
//! - no deeper than [`MAX_DEPTH`];
//! - a config is at most [`MAX_CONFIG_SIZE`] bytes;
//! - Docker schema 1 manifests are refused with a hint;
//! - a manifest may point at a `subject` (a referrer: a signature, an SBOM); the subject is
//!   recorded on its node, not walked (it is the image referred to, not content of this one);
//! - a manifest's config need not be an image config (an artifact: a Helm chart, a file);
//!   such a config and its layers are [`Kind::Artifact`] nodes.
//!
//! The core is sans-IO: [`Walk`] says which document to fetch next and is handed its bytes, so
//! an async caller fetches one document at a time over the network and a sync caller reads
//! them from a bundle ([`walk`] does that loop).
//!
//! ```
//! use airlock_layout::graph::{descriptor, walk, Role, WalkError};
//! use airlock_layout::media::{OCI_CONFIG, OCI_LAYER_GZIP, OCI_MANIFEST};
//! use airlock_layout::Digest;
//!
//! let config = br#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}"#;
//! let layer = b"layer bytes";
//! let manifest = serde_json::to_vec(&serde_json::json!({
//!     "schemaVersion": 2,
//!     "mediaType": OCI_MANIFEST,
//!     "config": {"mediaType": OCI_CONFIG, "digest": Digest::of_bytes(config).to_string(), "size": config.len()},
//!     "layers": [{"mediaType": OCI_LAYER_GZIP, "digest": Digest::of_bytes(layer).to_string(), "size": layer.len()}],
//! }))
//! .unwrap();
//! let top = descriptor(OCI_MANIFEST, &Digest::of_bytes(&manifest), manifest.len() as u64);
//! let graph = walk(&top, |_node| Ok::<_, std::convert::Infallible>(manifest.clone())).unwrap();
//! let roles: Vec<Role> = graph.children_first().iter().map(|n| n.role).collect();
//! assert_eq!(roles, [Role::Config, Role::Layer, Role::Document]);
//! # let _: Option<WalkError<()>> = None;
//! ```

use std::collections::{HashMap, HashSet};
use std::fmt;

use oci_spec::image::{Descriptor, ImageIndex, ImageManifest, MediaType};

use crate::digest::Digest;
use crate::media::{self, Kind};
use crate::platform::Platform;

/// Configs larger than this are refused (real ones are a few KiB).
pub const MAX_CONFIG_SIZE: u64 = 16 << 20;

/// How many levels below the top a node may be (an index's manifests are at 1, their configs
/// and layers at 2; referrers and artifacts leave room for a few more).
pub const MAX_DEPTH: usize = 8;

/// Where a node stands in the graph.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// An index or manifest: its bytes are read to find its children.
    Document,
    /// A manifest's config.
    Config,
    /// One of a manifest's layers (an artifact's content).
    Layer,
}

/// One node of an image's content graph.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    /// The descriptor that names it (as its parent states it, or as the caller gave the top).
    pub descriptor: Descriptor,
    /// Its digest.
    pub digest: Digest,
    /// Its media type as the descriptor states it.
    pub media_type: String,
    /// What the media type names (for a document, as read: a generic media type is decided
    /// by the document's fields).
    pub kind: Kind,
    /// Where it stands.
    pub role: Role,
    /// The platform of the index entry it is under, if any.
    pub platform: Option<Platform>,
    /// The document that names it (none for the top).
    pub parent: Option<Digest>,
    /// For a manifest that refers to another one (OCI 1.1 referrers): that one's digest.
    pub subject: Option<Digest>,
    /// For an artifact manifest: its `artifactType`, or else its config's media type when
    /// that is not an image config.
    pub artifact_type: Option<String>,
    /// 0 for the top.
    pub depth: usize,
}

impl Node {
    /// Checks bytes fetched for this node against the size and digest its descriptor
    /// declares.
    pub fn check(&self, bytes: &[u8]) -> Result<(), GraphError> {
        check(&self.descriptor, &self.digest, bytes)
    }

    fn error(&self, problem: Problem) -> GraphError {
        GraphError {
            digest: self.digest.to_string(),
            media_type: self.media_type.clone(),
            problem,
        }
    }
}

/// A structural rule an image breaks: which document or blob, and what is wrong.
#[derive(Debug, thiserror::Error)]
#[error("{media_type} `{digest}`: {problem}")]
pub struct GraphError {
    /// The digest of the document or blob concerned, as its descriptor states it.
    pub digest: String,
    /// Its media type, as its descriptor states it.
    pub media_type: String,
    /// What is wrong.
    pub problem: Problem,
}

/// What is wrong with a document or blob of an image.
#[derive(Debug, thiserror::Error)]
pub enum Problem {
    /// The descriptor's digest is not a `sha256:` digest.
    #[error("{0}")]
    BadDigest(Box<crate::error::Error>),
    /// The bytes are not as long as the descriptor says.
    #[error("size {actual} differs from the {declared} bytes its descriptor declares")]
    Size {
        /// Bytes received.
        actual: u64,
        /// Bytes declared.
        declared: u64,
    },
    /// The bytes do not hash to the descriptor's digest.
    #[error("the bytes hash to `{actual}`, not to the digest their descriptor declares")]
    Digest {
        /// What they hash to.
        actual: Digest,
    },
    /// The document is not JSON of its kind.
    #[error("{0}")]
    Json(serde_json::Error),
    /// An index names another index.
    #[error("nested image indexes are not supported")]
    NestedIndex,
    /// A Docker schema 1 manifest.
    #[error(
        "Docker schema 1 manifests are not supported; hint: rebuild or re-push the image with a current tool"
    )]
    Schema1,
    /// A config larger than [`MAX_CONFIG_SIZE`].
    #[error("config of {size} bytes is too large")]
    ConfigTooLarge {
        /// Its declared size.
        size: u64,
    },
    /// Deeper than [`MAX_DEPTH`].
    #[error("more than {limit} levels below the top")]
    TooDeep {
        /// [`MAX_DEPTH`].
        limit: usize,
    },
}

/// A descriptor of `size` bytes of `media_type` at `digest`.
pub fn descriptor(media_type: &str, digest: &Digest, size: u64) -> Descriptor {
    let digest: oci_spec::image::Digest = digest
        .to_string()
        .parse()
        .expect("a sha256 digest is an OCI digest");
    Descriptor::new(MediaType::from(media_type), size, digest)
}

/// The media type of a manifest or index: `header` (a `Content-Type`) unless it is missing or
/// generic, else the document's `mediaType`, else an OCI index if it lists `manifests`, else
/// an OCI manifest (`mediaType` is optional in OCI documents).
pub fn document_media_type(header: Option<&str>, bytes: &[u8]) -> String {
    let header = header.map(media::essence).unwrap_or_default();
    if !header.is_empty() && header != "application/json" && header != "application/octet-stream" {
        return header;
    }
    let probe = Probe::of(bytes);
    match probe.media_type {
        Some(m) if !m.is_empty() => m,
        _ if probe.manifests => media::OCI_INDEX.to_string(),
        _ => media::OCI_MANIFEST.to_string(),
    }
}

/// The fields that tell an index from a manifest when the media type does not.
#[derive(Default)]
struct Probe {
    media_type: Option<String>,
    manifests: bool,
}

impl Probe {
    fn of(bytes: &[u8]) -> Probe {
        #[derive(serde::Deserialize)]
        struct Raw {
            #[serde(rename = "mediaType", default)]
            media_type: Option<String>,
            #[serde(default)]
            manifests: Option<serde::de::IgnoredAny>,
        }
        match serde_json::from_slice::<Raw>(bytes) {
            Ok(r) => Probe {
                media_type: r.media_type,
                manifests: r.manifests.is_some(),
            },
            Err(_) => Probe::default(),
        }
    }
}

/// The body of a document.
// Documents are read one at a time and dropped soon after: boxing would buy nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Body {
    /// An image index or Docker manifest list.
    Index(ImageIndex),
    /// An image or artifact manifest.
    Manifest(ImageManifest),
}

/// An index or manifest whose bytes were checked against its descriptor and read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Document {
    /// Its digest.
    pub digest: Digest,
    /// Its media type: the descriptor's, or the document's own when that one is generic.
    pub media_type: String,
    /// What it says.
    pub body: Body,
}

fn check(d: &Descriptor, digest: &Digest, bytes: &[u8]) -> Result<(), GraphError> {
    let bad = |problem| GraphError {
        digest: d.digest().to_string(),
        media_type: d.media_type().to_string(),
        problem,
    };
    if bytes.len() as u64 != d.size() {
        return Err(bad(Problem::Size {
            actual: bytes.len() as u64,
            declared: d.size(),
        }));
    }
    let actual = Digest::of_bytes(bytes);
    if actual != *digest {
        return Err(bad(Problem::Digest { actual }));
    }
    Ok(())
}

fn digest_of(d: &Descriptor) -> Result<Digest, GraphError> {
    Digest::parse(d.digest().as_ref()).map_err(|e| GraphError {
        digest: d.digest().to_string(),
        media_type: d.media_type().to_string(),
        problem: Problem::BadDigest(Box::new(e)),
    })
}

impl Document {
    /// Checks `bytes` against the size and digest `descriptor` declares and reads them as the
    /// index or manifest its media type names (a generic or unknown media type: by the
    /// document's own `mediaType`, else by whether it lists `manifests`).
    pub fn parse(descriptor: &Descriptor, bytes: &[u8]) -> Result<Document, GraphError> {
        let digest = digest_of(descriptor)?;
        check(descriptor, &digest, bytes)?;
        let declared = descriptor.media_type().to_string();
        let bad = |problem| GraphError {
            digest: digest.to_string(),
            media_type: declared.clone(),
            problem,
        };
        let media_type = match media::kind(&declared) {
            Kind::Index | Kind::Manifest | Kind::Schema1 => declared.clone(),
            _ => document_media_type(None, bytes),
        };
        let body = match media::kind(&media_type) {
            Kind::Schema1 => return Err(bad(Problem::Schema1)),
            Kind::Index => {
                Body::Index(serde_json::from_slice(bytes).map_err(|e| bad(Problem::Json(e)))?)
            }
            Kind::Manifest => {
                Body::Manifest(serde_json::from_slice(bytes).map_err(|e| bad(Problem::Json(e)))?)
            }
            _ => {
                tracing::debug!(%media_type, "unusual manifest media type, reading it as an image manifest");
                Body::Manifest(serde_json::from_slice(bytes).map_err(|e| bad(Problem::Json(e)))?)
            }
        };
        Ok(Document {
            digest,
            media_type,
            body,
        })
    }

    /// [`Kind::Index`] or [`Kind::Manifest`].
    pub fn kind(&self) -> Kind {
        match self.body {
            Body::Index(_) => Kind::Index,
            Body::Manifest(_) => Kind::Manifest,
        }
    }

    /// The index, if it is one.
    pub fn index(&self) -> Option<&ImageIndex> {
        match &self.body {
            Body::Index(i) => Some(i),
            Body::Manifest(_) => None,
        }
    }

    /// The manifest, if it is one.
    pub fn manifest(&self) -> Option<&ImageManifest> {
        match &self.body {
            Body::Manifest(m) => Some(m),
            Body::Index(_) => None,
        }
    }

    /// What it names, in document order: an index's manifests; a manifest's config, then its
    /// layers. A manifest's `subject` is not among them (see [`Node::subject`]).
    pub fn children(&self) -> Vec<(Role, &Descriptor)> {
        match &self.body {
            Body::Index(i) => i.manifests().iter().map(|d| (Role::Document, d)).collect(),
            Body::Manifest(m) => std::iter::once((Role::Config, m.config()))
                .chain(m.layers().iter().map(|d| (Role::Layer, d)))
                .collect(),
        }
    }

    /// The digest of the manifest this one refers to (OCI 1.1 `subject`), if any.
    pub fn subject(&self) -> Option<Digest> {
        let s = self.manifest()?.subject().as_ref()?;
        Digest::parse(s.digest().as_ref()).ok()
    }

    /// For an artifact manifest: its `artifactType`, or else its config's media type when
    /// that is not an image config.
    pub fn artifact_type(&self) -> Option<String> {
        let m = self.manifest()?;
        if let Some(t) = m.artifact_type() {
            return Some(t.to_string());
        }
        let config = m.config().media_type().to_string();
        (media::kind(&config) != Kind::Config).then_some(config)
    }
}

/// A walk over one image's graph, depth first, each node once (by digest).
///
/// [`Walk::next_node`] gives the nodes in discovery order (a parent before its children, children
/// in document order); a [`Role::Document`] node must be answered with [`Walk::feed`] before
/// the next call. Configs and layers are not fetched by the walk: a caller that wants a
/// config's bytes fetches them and checks them with [`Node::check`].
#[derive(Debug)]
pub struct Walk {
    nodes: Vec<Node>,
    pending: Vec<Node>,
    seen: HashSet<Digest>,
    awaiting: Option<usize>,
}

impl Walk {
    /// A walk from the top document (an index or a manifest) that `top` names.
    pub fn new(top: &Descriptor) -> Result<Walk, GraphError> {
        let digest = digest_of(top)?;
        let media_type = top.media_type().to_string();
        let node = Node {
            descriptor: top.clone(),
            kind: media::kind(&media_type),
            digest,
            media_type,
            role: Role::Document,
            platform: top.platform().as_ref().map(Platform::from_oci),
            parent: None,
            subject: None,
            artifact_type: None,
            depth: 0,
        };
        Ok(Walk {
            nodes: Vec::new(),
            pending: vec![node],
            seen: HashSet::new(),
            awaiting: None,
        })
    }

    /// The next node, or `None` when the walk is done. A document must be fed next.
    ///
    /// # Panics
    ///
    /// If the document given last was not fed.
    pub fn next_node(&mut self) -> Option<Node> {
        assert!(
            self.awaiting.is_none(),
            "the document given last must be fed before the walk goes on"
        );
        while let Some(node) = self.pending.pop() {
            if !self.seen.insert(node.digest.clone()) {
                continue;
            }
            if node.role == Role::Document {
                self.awaiting = Some(self.nodes.len());
            }
            self.nodes.push(node.clone());
            return Some(node);
        }
        None
    }

    /// Hands over the bytes of the document [`Walk::next_node`] gave last: they are checked and
    /// read, and its children are walked next.
    ///
    /// # Panics
    ///
    /// If no document is waiting for its bytes.
    pub fn feed(&mut self, bytes: &[u8]) -> Result<Document, GraphError> {
        let at = self
            .awaiting
            .take()
            .expect("feed answers a document given by next_node");
        let node = &self.nodes[at];
        let doc = Document::parse(&node.descriptor, bytes)?;
        if node.depth > 0 && doc.kind() == Kind::Index {
            return Err(node.error(Problem::NestedIndex));
        }
        let depth = node.depth + 1;
        let mut children = Vec::new();
        for (role, d) in doc.children() {
            let child = Node {
                descriptor: d.clone(),
                digest: digest_of(d)?,
                media_type: d.media_type().to_string(),
                kind: media::kind(d.media_type().as_ref()),
                role,
                platform: d
                    .platform()
                    .as_ref()
                    .map(Platform::from_oci)
                    .or_else(|| node.platform.clone()),
                parent: Some(doc.digest.clone()),
                subject: None,
                artifact_type: None,
                depth,
            };
            if depth > MAX_DEPTH {
                return Err(child.error(Problem::TooDeep { limit: MAX_DEPTH }));
            }
            if role == Role::Config && d.size() > MAX_CONFIG_SIZE {
                return Err(child.error(Problem::ConfigTooLarge { size: d.size() }));
            }
            children.push(child);
        }
        let node = &mut self.nodes[at];
        node.kind = doc.kind();
        node.subject = doc.subject();
        node.artifact_type = doc.artifact_type();
        // Popped from the end: reversed, they come out in document order.
        self.pending.extend(children.into_iter().rev());
        Ok(doc)
    }

    /// The nodes given so far, in discovery order (parents first).
    pub fn nodes(&self) -> &[Node] {
        &self.nodes
    }

    /// The graph walked: every node given, each once.
    pub fn finish(self) -> Graph {
        Graph { nodes: self.nodes }
    }
}

/// The nodes of one image's graph, each once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Graph {
    /// In discovery order: a parent before its children, children in document order.
    pub nodes: Vec<Node>,
}

impl Graph {
    /// Every node after all of its children: the order in which content can be pushed so
    /// that nothing is named before it exists (configs and layers, then their manifest, …,
    /// the top last).
    pub fn children_first(&self) -> Vec<&Node> {
        // Depth first, a node after its subtree: reverse of (parent, then children reversed).
        let mut out: Vec<&Node> = Vec::with_capacity(self.nodes.len());
        let mut children: HashMap<&Digest, Vec<usize>> = HashMap::new();
        for (j, n) in self.nodes.iter().enumerate() {
            if let Some(p) = &n.parent {
                children.entry(p).or_default().push(j);
            }
        }
        let mut stack: Vec<(usize, bool)> = Vec::new();
        let roots = self
            .nodes
            .iter()
            .enumerate()
            .filter(|(_, n)| n.parent.is_none());
        for (i, _) in roots.collect::<Vec<_>>().into_iter().rev() {
            stack.push((i, false));
        }
        while let Some((i, expanded)) = stack.pop() {
            if expanded {
                out.push(&self.nodes[i]);
                continue;
            }
            stack.push((i, true));
            let parent = &self.nodes[i];
            if parent.role != Role::Document {
                continue;
            }
            for &j in children.get(&parent.digest).into_iter().flatten().rev() {
                stack.push((j, false));
            }
        }
        out
    }

    /// The documents (indexes and manifests), children first (the top last).
    pub fn documents(&self) -> Vec<&Node> {
        self.children_first()
            .into_iter()
            .filter(|n| n.role == Role::Document)
            .collect()
    }

    /// The configs and layers, each once, in the order their manifests list them.
    pub fn blobs(&self) -> impl Iterator<Item = &Node> {
        self.nodes.iter().filter(|n| n.role != Role::Document)
    }
}

/// Why a [`walk`] stopped.
#[derive(Debug)]
pub enum WalkError<E> {
    /// The image breaks a structural rule.
    Graph(GraphError),
    /// The caller could not give a document's bytes.
    Fetch(E),
}

impl<E: fmt::Display> fmt::Display for WalkError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WalkError::Graph(e) => e.fmt(f),
            WalkError::Fetch(e) => e.fmt(f),
        }
    }
}

impl<E: std::error::Error + 'static> std::error::Error for WalkError<E> {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            WalkError::Graph(e) => e.source(),
            WalkError::Fetch(e) => e.source(),
        }
    }
}

/// Walks the image `top` names, reading each document's bytes with `fetch` (configs and
/// layers are not read). Blocking callers use it; an async caller drives [`Walk`] itself.
pub fn walk<B, E>(
    top: &Descriptor,
    mut fetch: impl FnMut(&Node) -> Result<B, E>,
) -> Result<Graph, WalkError<E>>
where
    B: AsRef<[u8]>,
{
    let mut w = Walk::new(top).map_err(WalkError::Graph)?;
    while let Some(node) = w.next_node() {
        if node.role == Role::Document {
            let bytes = fetch(&node).map_err(WalkError::Fetch)?;
            w.feed(bytes.as_ref()).map_err(WalkError::Graph)?;
        }
    }
    Ok(w.finish())
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use serde_json::json;

    use super::*;
    use crate::media::*;

    /// Content by digest, as a registry or a bundle holds it.
    #[derive(Default)]
    struct Store(HashMap<Digest, Vec<u8>>);

    impl Store {
        fn put(&mut self, media_type: &str, bytes: Vec<u8>) -> serde_json::Value {
            let d = Digest::of_bytes(&bytes);
            let v = json!({"mediaType": media_type, "digest": d.to_string(), "size": bytes.len()});
            self.0.insert(d, bytes);
            v
        }

        fn put_json(&mut self, media_type: &str, doc: serde_json::Value) -> serde_json::Value {
            self.put(media_type, serde_json::to_vec(&doc).unwrap())
        }

        /// An image manifest of `media_type` with a config for `arch` and one layer.
        fn image(&mut self, media_type: &str, config_type: &str, arch: &str) -> serde_json::Value {
            let config = self.put_json(
                config_type,
                json!({"architecture": arch, "os": "linux", "rootfs": {"type": "layers", "diff_ids": []}}),
            );
            let layer = self.put(OCI_LAYER_GZIP, format!("layer of {arch}").into_bytes());
            self.put_json(
                media_type,
                json!({"schemaVersion": 2, "mediaType": media_type, "config": config, "layers": [layer]}),
            )
        }

        fn walk(&self, top: &serde_json::Value) -> Result<Graph, WalkError<String>> {
            let top: Descriptor = serde_json::from_value(top.clone()).unwrap();
            walk(&top, |n| {
                self.0
                    .get(&n.digest)
                    .cloned()
                    .ok_or_else(|| format!("{} is missing", n.digest))
            })
        }
    }

    fn with_platform(
        mut d: serde_json::Value,
        os: &str,
        arch: &str,
        variant: Option<&str>,
    ) -> serde_json::Value {
        let mut p = json!({"os": os, "architecture": arch});
        if let Some(v) = variant {
            p["variant"] = json!(v);
        }
        d["platform"] = p;
        d
    }

    fn graph_error(r: Result<Graph, WalkError<String>>) -> GraphError {
        match r {
            Err(WalkError::Graph(e)) => e,
            other => panic!("expected a graph error, got {other:?}"),
        }
    }

    #[test]
    fn an_index_with_two_platforms() {
        let mut s = Store::default();
        let amd = s.image(OCI_MANIFEST, OCI_CONFIG, "amd64");
        let arm = s.image(OCI_MANIFEST, OCI_CONFIG, "arm64");
        let index = s.put_json(
            OCI_INDEX,
            json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [
                with_platform(amd.clone(), "linux", "amd64", None),
                with_platform(arm.clone(), "linux", "arm64", Some("v8")),
            ]}),
        );
        let g = s.walk(&index).unwrap();
        let roles: Vec<(Role, usize)> = g.nodes.iter().map(|n| (n.role, n.depth)).collect();
        assert_eq!(
            roles,
            [
                (Role::Document, 0),
                (Role::Document, 1),
                (Role::Config, 2),
                (Role::Layer, 2),
                (Role::Document, 1),
                (Role::Config, 2),
                (Role::Layer, 2),
            ]
        );
        assert_eq!(g.nodes[0].kind, Kind::Index);
        assert_eq!(g.nodes[1].kind, Kind::Manifest);
        assert_eq!(g.nodes[2].kind, Kind::Config);
        assert_eq!(g.nodes[3].kind, Kind::Layer);
        // Configs and layers carry the platform of the index entry above them.
        let amd64 = Platform::parse("linux/amd64").unwrap();
        let arm64 = Platform::parse("linux/arm64/v8").unwrap();
        assert_eq!(g.nodes[1].platform.as_ref(), Some(&amd64));
        assert_eq!(g.nodes[3].platform.as_ref(), Some(&amd64));
        assert_eq!(g.nodes[6].platform.as_ref(), Some(&arm64));
        assert_eq!(g.nodes[4].parent.as_ref(), Some(&g.nodes[0].digest));
        assert_eq!(g.nodes[5].parent.as_ref(), Some(&g.nodes[4].digest));

        // Children first: each manifest after its config and layer, the index last.
        let order: Vec<&Digest> = g.children_first().iter().map(|n| &n.digest).collect();
        let at = |i: usize| order.iter().position(|d| **d == g.nodes[i].digest).unwrap();
        assert_eq!(order.len(), 7);
        assert!(at(2) < at(1) && at(3) < at(1));
        assert!(at(5) < at(4) && at(6) < at(4));
        assert_eq!(at(0), 6);
        let docs: Vec<&Digest> = g.documents().iter().map(|n| &n.digest).collect();
        assert_eq!(
            docs,
            [&g.nodes[1].digest, &g.nodes[4].digest, &g.nodes[0].digest]
        );
        // Every blob with its size.
        let sizes: u64 = g.children_first().iter().map(|n| n.descriptor.size()).sum();
        assert_eq!(sizes, s.0.values().map(|b| b.len() as u64).sum::<u64>());
    }

    #[test]
    fn a_docker_manifest_list() {
        let mut s = Store::default();
        let amd = s.image(DOCKER_MANIFEST, DOCKER_CONFIG, "amd64");
        let arm = s.image(DOCKER_MANIFEST, DOCKER_CONFIG, "arm");
        let list = s.put_json(
            DOCKER_LIST,
            json!({"schemaVersion": 2, "mediaType": DOCKER_LIST, "manifests": [
                with_platform(amd, "linux", "amd64", None),
                with_platform(arm, "linux", "arm", Some("v7")),
            ]}),
        );
        let g = s.walk(&list).unwrap();
        assert_eq!(g.nodes.len(), 7);
        assert_eq!(g.nodes[0].kind, Kind::Index);
        assert_eq!(g.nodes[4].media_type, DOCKER_MANIFEST);
        assert_eq!(g.nodes[5].kind, Kind::Config);
        assert!(g.nodes[4]
            .platform
            .as_ref()
            .unwrap()
            .matches(&Platform::parse("linux/arm").unwrap()));
    }

    #[test]
    fn a_nested_index_is_refused() {
        let mut s = Store::default();
        let amd = s.image(OCI_MANIFEST, OCI_CONFIG, "amd64");
        let inner = s.put_json(OCI_INDEX, json!({"schemaVersion": 2, "manifests": [amd]}));
        let outer = s.put_json(
            OCI_INDEX,
            json!({"schemaVersion": 2, "manifests": [inner.clone()]}),
        );
        let e = graph_error(s.walk(&outer));
        assert!(matches!(e.problem, Problem::NestedIndex), "{e}");
        assert_eq!(e.digest, inner["digest"].as_str().unwrap());
        let text = e.to_string();
        assert!(
            text.contains("nested image indexes are not supported"),
            "{text}"
        );
        assert!(text.contains(inner["digest"].as_str().unwrap()), "{text}");
    }

    #[test]
    fn a_manifest_with_a_subject() {
        let mut s = Store::default();
        let image = s.image(OCI_MANIFEST, OCI_CONFIG, "amd64");
        let empty = s.put(OCI_EMPTY, b"{}".to_vec());
        let sig = s.put(
            "application/vnd.dev.cosign.simplesigning.v1+json",
            b"{\"critical\":{}}".to_vec(),
        );
        let referrer = s.put_json(
            OCI_MANIFEST,
            json!({"schemaVersion": 2, "mediaType": OCI_MANIFEST,
                   "artifactType": "application/vnd.dev.cosign.artifact.sig.v1+json",
                   "config": empty, "layers": [sig], "subject": image.clone()}),
        );
        let g = s.walk(&referrer).unwrap();
        let top = &g.nodes[0];
        assert_eq!(
            top.subject.as_ref().map(|d| d.to_string()).as_deref(),
            image["digest"].as_str()
        );
        assert_eq!(
            top.artifact_type.as_deref(),
            Some("application/vnd.dev.cosign.artifact.sig.v1+json")
        );
        // The subject is not content of the referrer: it is not walked.
        assert_eq!(g.nodes.len(), 3);
        assert_eq!(g.nodes[1].kind, Kind::Artifact);
        assert_eq!(g.nodes[2].kind, Kind::Artifact);
    }

    #[test]
    fn an_artifact_with_a_non_image_config() {
        let mut s = Store::default();
        let config = s.put_json(
            "application/vnd.cncf.helm.config.v1+json",
            json!({"name": "demo", "version": "1.0.0"}),
        );
        let chart = s.put(
            "application/vnd.cncf.helm.chart.content.v1.tar+gzip",
            b"chart".to_vec(),
        );
        let m = s.put_json(
            OCI_MANIFEST,
            json!({"schemaVersion": 2, "config": config, "layers": [chart]}),
        );
        let g = s.walk(&m).unwrap();
        assert_eq!(g.nodes[0].kind, Kind::Manifest);
        assert_eq!(
            g.nodes[0].artifact_type.as_deref(),
            Some("application/vnd.cncf.helm.config.v1+json")
        );
        assert_eq!(g.nodes[1].role, Role::Config);
        assert_eq!(g.nodes[1].kind, Kind::Artifact);
        assert_eq!(g.nodes[1].platform, None);
        assert_eq!(g.nodes[2].kind, Kind::Artifact);
    }

    #[test]
    fn wrong_sizes_and_digests_are_refused_by_digest() {
        let mut s = Store::default();
        let amd = s.image(OCI_MANIFEST, OCI_CONFIG, "amd64");
        let digest = amd["digest"].as_str().unwrap().to_string();

        // The index declares one byte more than the manifest has.
        let mut longer = amd.clone();
        longer["size"] = json!(amd["size"].as_u64().unwrap() + 1);
        let index = s.put_json(
            OCI_INDEX,
            json!({"schemaVersion": 2, "manifests": [longer]}),
        );
        let e = graph_error(s.walk(&index));
        assert!(matches!(e.problem, Problem::Size { .. }), "{e}");
        assert!(e.to_string().contains(&digest), "{e}");

        // The bytes under a digest are not the ones it names.
        let d = Digest::parse(&digest).unwrap();
        let mut other = s.0[&d].clone();
        let last = other.len() - 2;
        other[last] = b' ';
        s.0.insert(d, other);
        let index = s.put_json(OCI_INDEX, json!({"schemaVersion": 2, "manifests": [amd]}));
        let e = graph_error(s.walk(&index));
        assert!(matches!(e.problem, Problem::Digest { .. }), "{e}");
        assert!(e.to_string().contains(&digest), "{e}");

        // A descriptor's digest that is no digest.
        let mut top = index.clone();
        top["digest"] = json!(format!("sha512:{}", "a".repeat(128)));
        let e = graph_error(s.walk(&top));
        assert!(matches!(e.problem, Problem::BadDigest(_)), "{e}");
        assert!(e.to_string().contains("sha512:"), "{e}");
    }

    #[test]
    fn schema_1_and_large_configs_are_refused() {
        let mut s = Store::default();
        let old = s.put_json(DOCKER_SCHEMA1_SIGNED, json!({"schemaVersion": 1}));
        let e = graph_error(s.walk(&old));
        assert!(matches!(e.problem, Problem::Schema1), "{e}");
        assert!(e.to_string().contains("hint: rebuild or re-push"), "{e}");

        let config = json!({"mediaType": OCI_CONFIG, "digest": Digest::of_bytes(b"x").to_string(), "size": MAX_CONFIG_SIZE + 1});
        let m = s.put_json(
            OCI_MANIFEST,
            json!({"schemaVersion": 2, "config": config, "layers": []}),
        );
        let e = graph_error(s.walk(&m));
        assert!(matches!(e.problem, Problem::ConfigTooLarge { .. }), "{e}");
        assert_eq!(e.digest, Digest::of_bytes(b"x").to_string());
    }

    #[test]
    fn shared_blobs_are_given_once_and_generic_types_are_read_by_their_fields() {
        let mut s = Store::default();
        let layer = s.put(OCI_LAYER, b"shared".to_vec());
        let config = s.put_json(OCI_CONFIG, json!({"architecture": "amd64", "os": "linux"}));
        let m1 = s.put_json(OCI_MANIFEST, json!({"schemaVersion": 2, "config": config, "layers": [layer.clone()], "annotations": {"n": "1"}}));
        let m2 = s.put_json(OCI_MANIFEST, json!({"schemaVersion": 2, "config": config, "layers": [layer], "annotations": {"n": "2"}}));
        let index = s.put_json(
            "application/json",
            json!({"schemaVersion": 2, "manifests": [m1, m2]}),
        );
        let g = s.walk(&index).unwrap();
        assert_eq!(g.nodes[0].kind, Kind::Index);
        let roles: Vec<Role> = g.nodes.iter().map(|n| n.role).collect();
        assert_eq!(
            roles,
            [
                Role::Document,
                Role::Document,
                Role::Config,
                Role::Layer,
                Role::Document
            ]
        );
        assert_eq!(g.blobs().count(), 2);
        assert_eq!(
            document_media_type(Some("text/plain; charset=utf-8"), b"{}"),
            "text/plain"
        );
        assert_eq!(
            document_media_type(Some("application/json"), b"{\"manifests\":[]}"),
            OCI_INDEX
        );
        assert_eq!(document_media_type(None, b"{}"), OCI_MANIFEST);
    }
}
