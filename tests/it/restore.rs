//! Signatures, attestations, SBOMs and referrers carried by a bundle, restored by `airlock
//! load` into Debian's registry (distribution 2.8: no referrers API, so the referrers tag
//! schema), checked with skopeo, curl and openssl; then `airlock check` on the target.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use airlock_layout::testing::artifacts::{artifact_bundle, ArtifactBundle, Carried, NAME, TAG};
use airlock_layout::{media, ArtifactKind, SigningKey};
use airlock_testkit::{Registry, RegistryOptions};
use serde_json::Value;

use crate::support::*;

const PREFIX: &str = "mirror";
/// Where `--names drop-host` puts [`NAME`] under [`PREFIX`].
const REPO: &str = "mirror/signed/app";

/// A work directory, the bundle signer's public key file, and bundles made with it.
pub(crate) struct Signed {
    pub(crate) work: tempfile::TempDir,
    pub(crate) public: PathBuf,
    signer: SigningKey,
}

impl Signed {
    pub(crate) fn new() -> Signed {
        let work = workdir();
        let signer = SigningKey::generate();
        let public = work.path().join("signer.pub");
        std::fs::write(&public, signer.verifying_key().to_pem()).unwrap();
        Signed {
            work,
            public,
            signer,
        }
    }

    pub(crate) fn bundle(&self, carried: Carried) -> ArtifactBundle {
        let dir = self.work.path().join(format!("{carried:?}"));
        artifact_bundle(&dir, &self.signer, carried)
    }

    /// `airlock ARGS… BUNDLE --key PUB --json …`: the output and the JSON on stdout.
    pub(crate) fn airlock(&self, command: &str, bundle: &Path, args: &[&str]) -> (Output, Value) {
        let mut cmd = airlock(&self.work.path().join("cache"));
        cmd.arg(command).arg(bundle).arg("--key").arg(&self.public);
        cmd.args(["--json"]).args(args);
        let o = run(cmd, None);
        let text = String::from_utf8_lossy(&o.stdout);
        let doc = serde_json::from_str(&text).unwrap_or_else(|e| {
            panic!("stdout is not JSON ({e}):\n{text}\nstderr:\n{}", stderr(&o))
        });
        (o, doc)
    }
}

fn load(s: &Signed, b: &ArtifactBundle, host: &str) -> (Output, Value) {
    let to = format!("registry://{host}/{PREFIX}");
    let args = ["--to", &to, "--names", "drop-host", "--plain-http"];
    s.airlock("load", &b.path, &args)
}

pub(crate) fn check(s: &Signed, b: &ArtifactBundle, host: &str) -> (Output, Value) {
    let against = format!("registry://{host}/{PREFIX}");
    let args = [
        "--against",
        &against,
        "--names",
        "drop-host",
        "--plain-http",
    ];
    s.airlock("check", &b.path, &args)
}

/// `curl` of `url`: the body (panics on an HTTP error).
pub(crate) fn curl(url: &str, accept: Option<&str>) -> Vec<u8> {
    let mut cmd = Command::new("curl");
    cmd.args(["-sSf", url]).stdin(Stdio::null());
    if let Some(a) = accept {
        cmd.args(["-H", &format!("Accept: {a}")]);
    }
    let o = cmd.output().expect("run curl");
    assert!(
        o.status.success(),
        "{url}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    o.stdout
}

/// sha256 of what `skopeo inspect --raw` reads at `reference` of `host`.
pub(crate) fn skopeo_raw(host: &str, reference: &str) -> String {
    let o = Command::new("skopeo")
        .args(["inspect", "--raw", "--tls-verify=false"])
        .arg(format!("docker://{host}/{reference}"))
        .stdin(Stdio::null())
        .output()
        .expect("run skopeo (install it: `cargo xtask install`)");
    assert!(
        o.status.success(),
        "{reference}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    use sha2::Digest as _;
    format!("sha256:{}", hex::encode(sha2::Sha256::digest(&o.stdout)))
}

/// The cosign key-based check, done with openssl: the `.sig` manifest and its payload
/// fetched from `base` (`http://HOST/v2/REPO`), the signature annotation verified over the
/// payload with `public`, the payload's digest compared with `image`.
pub(crate) fn openssl_cosign_check(base: &str, tag: &str, public: &str, image: &str, dir: &Path) {
    use base64::Engine as _;
    let manifest: Value = serde_json::from_slice(&curl(
        &format!("{base}/manifests/{tag}"),
        Some(media::OCI_MANIFEST),
    ))
    .unwrap();
    let layer = &manifest["layers"][0];
    assert_eq!(layer["mediaType"], media::COSIGN_SIMPLE_SIGNING);
    let payload = curl(
        &format!("{base}/blobs/{}", layer["digest"].as_str().unwrap()),
        None,
    );
    let signature = base64::engine::general_purpose::STANDARD
        .decode(
            layer["annotations"][media::COSIGN_SIGNATURE_ANNOTATION]
                .as_str()
                .unwrap(),
        )
        .unwrap();
    std::fs::create_dir_all(dir).unwrap();
    let (p, sig, key) = (dir.join("payload"), dir.join("sig.der"), dir.join("k.pub"));
    std::fs::write(&p, &payload).unwrap();
    std::fs::write(&sig, signature).unwrap();
    std::fs::write(&key, public).unwrap();
    let o = Command::new("openssl")
        .args(["dgst", "-sha256", "-verify"])
        .arg(&key)
        .arg("-signature")
        .arg(&sig)
        .arg(&p)
        .output()
        .expect("run openssl");
    assert!(
        o.status.success(),
        "openssl: {}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    let payload: Value = serde_json::from_slice(&payload).unwrap();
    assert_eq!(
        payload["critical"]["image"]["docker-manifest-digest"],
        image
    );
}

/// The referrers tag index of `subject` in `base`: the digests it lists.
pub(crate) fn tag_index(base: &str, subject: &str) -> Vec<(String, Value)> {
    let tag = subject.replace(':', "-");
    let index: Value = serde_json::from_slice(&curl(
        &format!("{base}/manifests/{tag}"),
        Some(media::OCI_INDEX),
    ))
    .unwrap();
    index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| (d["digest"].as_str().unwrap().to_string(), d.clone()))
        .collect()
}

/// Round trip into an empty registry without the referrers API: every cosign tag and the
/// referrer with identical digests, the signature checked with openssl, the referrer found
/// through the tag-schema index; a second referrer of the same subject keeps both.
#[test]
fn load_restores_cosign_tags_and_the_referrers_tag_index() {
    let s = Signed::new();
    let all = s.bundle(Carried::All);
    let reg = Registry::start(RegistryOptions::default()).unwrap();
    let (o, doc) = load(&s, &all, &reg.host);
    assert!(o.status.success(), "{}", stderr(&o));
    let image = &doc["images"][0];
    assert_eq!(image["artifacts"].as_array().unwrap().len(), 4, "{doc:#}");
    assert!(
        stderr(&o).contains("listed in the referrers tag index"),
        "{}",
        stderr(&o)
    );

    assert_eq!(
        skopeo_raw(&reg.host, &format!("{REPO}:{TAG}")),
        all.index.to_string()
    );
    for a in all.artifacts() {
        let at = match &a.tag {
            Some(t) => format!("{REPO}:{t}"),
            None => format!("{REPO}@{}", a.digest),
        };
        assert_eq!(skopeo_raw(&reg.host, &at), a.digest.to_string(), "{at}");
    }
    let base = format!("http://{}/v2/{REPO}", reg.host);
    let sig = all.artifact(ArtifactKind::Signature);
    openssl_cosign_check(
        &base,
        sig.tag.as_deref().unwrap(),
        &all.cosign_key.verifying_key().to_pem(),
        &all.index.to_string(),
        &s.work.path().join("openssl"),
    );

    let referrer = all.referrer();
    let subject = all.platforms[0].to_string();
    assert_eq!(referrer.subject.to_string(), subject);
    let listed = tag_index(&base, &subject);
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(listed[0].0, referrer.digest.to_string());
    assert_eq!(listed[0].1["artifactType"], media::IN_TOTO);
    assert!(listed[0].1["annotations"].is_object(), "{listed:?}");

    // A second referrer of the same subject, from another bundle: both listed.
    let second = s.bundle(Carried::SecondReferrer);
    let (o, _) = load(&s, &second, &reg.host);
    assert!(o.status.success(), "{}", stderr(&o));
    let listed: Vec<String> = tag_index(&base, &subject)
        .into_iter()
        .map(|l| l.0)
        .collect();
    let other = second.referrer().digest.to_string();
    assert_eq!(listed, vec![referrer.digest.to_string(), other]);
    // Loading the first bundle again changes nothing.
    let (o, _) = load(&s, &all, &reg.host);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(tag_index(&base, &subject).len(), 2);

    // The proof on the far side: everything there.
    let (o, doc) = check(&s, &all, &reg.host);
    assert!(o.status.success(), "{}\n{doc:#}", stderr(&o));
    assert_eq!(doc["totals"]["missing"], 0, "{doc:#}");
    // tags, manifests, blobs of the image; manifests, blobs and tags of three artifacts.
    assert!(doc["totals"]["checked"].as_u64().unwrap() >= 14, "{doc:#}");

    // One layer's data gone, one referrer's manifest gone and dropped from the tag index.
    let layer = all
        .manifest
        .blobs
        .iter()
        .find(|b| b.media_type == media::OCI_LAYER)
        .unwrap()
        .digest
        .clone();
    let blobs = reg.storage.join("docker/registry/v2/blobs/sha256");
    std::fs::remove_dir_all(blobs.join(&layer.hex()[..2]).join(layer.hex())).unwrap();
    let revisions = reg
        .storage
        .join("docker/registry/v2/repositories")
        .join(REPO)
        .join("_manifests/revisions/sha256");
    std::fs::remove_dir_all(revisions.join(referrer.digest.hex())).unwrap();
    let kept: Vec<Value> = tag_index(&base, &subject)
        .into_iter()
        .filter(|(d, _)| *d != referrer.digest.to_string())
        .map(|(_, e)| e)
        .collect();
    let index =
        serde_json::json!({"schemaVersion": 2, "mediaType": media::OCI_INDEX, "manifests": kept});
    let o = Command::new("curl")
        .args(["-sSf", "-X", "PUT", "-H"])
        .arg(format!("Content-Type: {}", media::OCI_INDEX))
        .args(["--data-binary", &index.to_string()])
        .arg(format!("{base}/manifests/{}", subject.replace(':', "-")))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));

    let (o, doc) = check(&s, &all, &reg.host);
    assert_eq!(o.status.code(), Some(1), "{}\n{doc:#}", stderr(&o));
    let problems: Vec<(String, String, String)> = doc["problems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["what"].as_str().unwrap().to_string(),
                p["reference"].as_str().unwrap().to_string(),
                p["found"]["state"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let at = |d: &dyn std::fmt::Display| format!("{}/{REPO}@{d}", reg.host);
    let tag = format!("{}/{REPO}:{}", reg.host, subject.replace(':', "-"));
    assert_eq!(
        problems,
        vec![
            ("blob".into(), at(&layer), "missing".into()),
            (
                "artifact-manifest".into(),
                at(&referrer.digest),
                "missing".into()
            ),
            ("referrer".into(), tag, "missing".into()),
        ],
        "{doc:#}"
    );
    let text = stderr(&o);
    assert!(text.contains(&format!("blob `{}`", at(&layer))), "{text}");
    assert!(text.contains(&referrer.digest.to_string()), "{text}");
    assert!(text.contains("incomplete: 1 images"), "{text}");
    assert_eq!(all.image().name, NAME);
}

/// `airlock serve` of a bundle with artifacts: the referrers API for a subject (all, and
/// filtered by `artifactType` with `OCI-Filters-Applied`), an empty index for a subject
/// without referrers, 404 for an unknown name; the cosign tags listed and `skopeo copy` of
/// the `.sig` gives the same digest.
#[test]
fn serve_answers_the_referrers_api_and_the_cosign_tags() {
    use crate::serve::{skopeo_pull, Served};
    let s = Signed::new();
    let all = s.bundle(Carried::All);
    let served = Served::start(s.work.path(), &[&all.path], &s.public, &[]);
    let referrer = all.referrer();
    let subject = &all.platforms[0];

    let r = served.get(&format!("/v2/{NAME}/referrers/{subject}"), &[]);
    assert_eq!(r.status, 200, "{}", served.log());
    assert_eq!(r.header("content-type"), Some(media::OCI_INDEX));
    assert_eq!(r.header("oci-filters-applied"), None);
    let index: Value = serde_json::from_slice(&r.body).unwrap();
    let listed = index["manifests"].as_array().unwrap();
    assert_eq!(listed.len(), 1, "{index:#}");
    assert_eq!(listed[0]["digest"], referrer.digest.to_string());
    assert_eq!(listed[0]["artifactType"], media::IN_TOTO);
    assert_eq!(listed[0]["size"], referrer.size);
    assert!(listed[0]["annotations"].is_object(), "{index:#}");

    let filtered = |t: &str| {
        let path = format!(
            "/v2/{NAME}/referrers/{subject}?artifactType={}",
            t.replace('+', "%2B")
        );
        let r = served.get(&path, &[]);
        assert_eq!(r.status, 200);
        assert_eq!(r.header("oci-filters-applied"), Some("artifactType"));
        let index: Value = serde_json::from_slice(&r.body).unwrap();
        index["manifests"].as_array().unwrap().len()
    };
    assert_eq!(filtered(media::IN_TOTO), 1);
    assert_eq!(filtered(media::SPDX_JSON), 0);

    let none = served.get(&format!("/v2/{NAME}/referrers/{}", all.platforms[1]), &[]);
    assert_eq!(none.status, 200);
    let index: Value = serde_json::from_slice(&none.body).unwrap();
    assert_eq!(index["manifests"], serde_json::json!([]));
    let unknown = served.get(&format!("/v2/nowhere/referrers/{subject}"), &[]);
    assert_eq!(unknown.status, 404);

    let tags: Value =
        serde_json::from_slice(&served.get(&format!("/v2/{NAME}/tags/list"), &[]).body).unwrap();
    let sig = all.artifact(ArtifactKind::Signature);
    let sbom = all.artifact(ArtifactKind::Sbom);
    let att = all.artifact(ArtifactKind::Attestation);
    let cosign_tags = [sig, sbom, att].map(|a| a.tag.as_deref().unwrap());
    for t in std::iter::once(TAG).chain(cosign_tags) {
        assert!(
            tags["tags"].as_array().unwrap().iter().any(|x| x == t),
            "{t}: {tags}"
        );
    }
    let head = served.get(
        &format!("/v2/{NAME}/manifests/{}", sig.tag.as_deref().unwrap()),
        &["-I", "-H", &format!("Accept: {}", media::OCI_MANIFEST)],
    );
    assert_eq!(head.status, 200);
    assert_eq!(
        head.header("docker-content-digest"),
        Some(&*sig.digest.to_string())
    );

    let out = s.work.path().join("sig");
    let pulled = skopeo_pull(
        &format!("{}/{NAME}:{}", served.host(), sig.tag.as_deref().unwrap()),
        &out,
    )
    .unwrap();
    assert_eq!(pulled, sig.digest.to_string());
    openssl_cosign_check(
        &served.url(&format!("/v2/{NAME}")),
        sig.tag.as_deref().unwrap(),
        &all.cosign_key.verifying_key().to_pem(),
        &all.index.to_string(),
        &s.work.path().join("openssl"),
    );
}

/// A target with the referrers API (an in-process stand-in: no packaged registry here has
/// one): the referrer is pushed by digest with its `subject`, the registry answers
/// `OCI-Subject` and lists it, no referrers tag index is written, and `airlock check` finds
/// it through the API.
#[test]
fn a_registry_with_the_referrers_api_indexes_the_referrers_itself() {
    let s = Signed::new();
    let all = s.bundle(Carried::All);
    let reg = airlock_testkit::ReferrersRegistry::start().unwrap();
    let (o, doc) = load(&s, &all, &reg.host);
    assert!(o.status.success(), "{}", stderr(&o));
    let referrer = all.referrer();
    let subject = all.platforms[0].to_string();
    let reported: Vec<&Value> = doc["images"][0]["artifacts"]
        .as_array()
        .unwrap()
        .iter()
        .collect();
    let r = reported
        .iter()
        .find(|a| a["digest"] == referrer.digest.to_string())
        .unwrap();
    assert_eq!(r["listedBy"], "api", "{doc:#}");

    let requests = reg.requests();
    let put = format!("/v2/{REPO}/manifests/{}", referrer.digest);
    assert!(
        requests
            .iter()
            .any(|l| l.method == "PUT" && l.target == put && l.status == 201),
        "{requests:#?}"
    );
    let tag_index = format!("/v2/{REPO}/manifests/{}", subject.replace(':', "-"));
    assert!(
        !requests
            .iter()
            .any(|l| l.method == "PUT" && l.target == tag_index),
        "{requests:#?}"
    );
    let listed = reg.referrers(REPO, &subject);
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(listed[0]["digest"], referrer.digest.to_string());
    assert_eq!(listed[0]["artifactType"], media::IN_TOTO);
    // The API, as a client asks it, filter included.
    let api = format!("http://{}/v2/{REPO}/referrers/{subject}", reg.host);
    let index: Value = serde_json::from_slice(&curl(&api, None)).unwrap();
    assert_eq!(index["manifests"][0]["digest"], referrer.digest.to_string());
    let sig = all.artifact(ArtifactKind::Signature);
    assert_eq!(
        reg.tag(REPO, sig.tag.as_deref().unwrap()),
        Some(sig.digest.to_string())
    );

    let (o, doc) = check(&s, &all, &reg.host);
    assert!(o.status.success(), "{}\n{doc:#}", stderr(&o));
    let asked = format!("/v2/{REPO}/referrers/{subject}");
    assert!(
        reg.requests()
            .iter()
            .any(|l| l.method == "GET" && l.target == asked),
        "the check did not ask the referrers API"
    );
}

/// containerd has no referrers store: the image is loaded and unpacked, its artifacts are
/// left out, said once for the image with how many and where they can go instead, and no
/// image record names a cosign tag.
#[test]
fn containerd_gets_the_image_and_a_line_saying_its_artifacts_were_left_out() {
    let s = Signed::new();
    let all = s.bundle(Carried::All);
    let ctrd = airlock_testkit::Containerd::start()
        .expect("start containerd (needs root; is it installed? run `cargo xtask install`)");
    let to = format!("containerd://{}?namespace=k8s.io", ctrd.socket.display());
    let (o, doc) = s.airlock("load", &all.path, &["--to", &to]);
    assert!(o.status.success(), "{}\n{doc:#}", stderr(&o));
    let image = &doc["images"][0];
    assert_eq!(image["artifactsNotLoaded"], 4, "{doc:#}");
    let text = stderr(&o);
    let line: Vec<&str> = text.lines().filter(|l| l.contains("not loaded")).collect();
    assert_eq!(line.len(), 1, "{text}");
    assert!(
        line[0].contains(&format!("`{NAME}:{TAG}`: 4 artifacts")),
        "{text}"
    );
    assert!(line[0].contains("registry://"), "{text}");
    let o = ctrd
        .ctr()
        .args(["-n", "k8s.io", "images", "ls", "-q"])
        .output()
        .unwrap();
    let names = String::from_utf8_lossy(&o.stdout);
    assert_eq!(names.trim(), format!("{NAME}:{TAG}"), "{names}");
}

/// A cosign tag moved to another manifest in the target is *different*, not missing: the
/// check names the tag, the digest the bundle has and the one found.
#[test]
fn check_tells_a_moved_cosign_tag_from_a_missing_one() {
    let s = Signed::new();
    let all = s.bundle(Carried::All);
    let reg = Registry::start(RegistryOptions::default()).unwrap();
    let (o, _) = load(&s, &all, &reg.host);
    assert!(o.status.success(), "{}", stderr(&o));
    let base = format!("http://{}/v2/{REPO}", reg.host);
    let (sig, sbom) = (
        all.artifact(ArtifactKind::Signature),
        all.artifact(ArtifactKind::Sbom),
    );
    let sig_bytes = curl(
        &format!("{base}/manifests/{}", sig.digest),
        Some(media::OCI_MANIFEST),
    );
    let sig_file = s.work.path().join("sig.json");
    std::fs::write(&sig_file, sig_bytes).unwrap();
    let sbom_tag = sbom.tag.as_deref().unwrap();
    let o = Command::new("curl")
        .args(["-sSf", "-X", "PUT", "-H"])
        .arg(format!("Content-Type: {}", media::OCI_MANIFEST))
        .arg("--data-binary")
        .arg(format!("@{}", sig_file.display()))
        .arg(format!("{base}/manifests/{sbom_tag}"))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));

    let (o, doc) = check(&s, &all, &reg.host);
    assert_eq!(o.status.code(), Some(1), "{}\n{doc:#}", stderr(&o));
    let problems = doc["problems"].as_array().unwrap();
    assert_eq!(problems.len(), 1, "{doc:#}");
    let p = &problems[0];
    assert_eq!(p["what"], "cosign-tag");
    assert_eq!(p["reference"], format!("{}/{REPO}:{sbom_tag}", reg.host));
    assert_eq!(p["expected"], sbom.digest.to_string());
    assert_eq!(p["found"]["state"], "different");
    assert_eq!(p["found"]["actual"], sig.digest.to_string());
    assert_eq!(doc["totals"]["different"], 1);
    assert_eq!(doc["totals"]["missing"], 0);
    let text = stderr(&o);
    assert!(
        text.contains(&format!("different (found {})", sig.digest)),
        "{text}"
    );
}

/// A referrers tag that holds something else than an index is left as it is: the referrer
/// fails its image, named with its kind, digest and subject, while the image, its tags and
/// the artifacts before it are in the target.
#[test]
fn a_referrers_tag_that_is_not_an_index_fails_the_image_naming_the_artifact() {
    let s = Signed::new();
    let (all, second) = (s.bundle(Carried::All), s.bundle(Carried::SecondReferrer));
    let reg = Registry::start(RegistryOptions::default()).unwrap();
    let (o, _) = load(&s, &second, &reg.host);
    assert!(o.status.success(), "{}", stderr(&o));
    // The referrers tag of the amd64 manifest made to hold that manifest itself.
    let base = format!("http://{}/v2/{REPO}", reg.host);
    let subject = all.platforms[0].to_string();
    let bytes = curl(
        &format!("{base}/manifests/{subject}"),
        Some(media::OCI_MANIFEST),
    );
    let file = s.work.path().join("m.json");
    std::fs::write(&file, bytes).unwrap();
    let tag = subject.replace(':', "-");
    let o = Command::new("curl")
        .args(["-sSf", "-X", "PUT", "-H"])
        .arg(format!("Content-Type: {}", media::OCI_MANIFEST))
        .arg("--data-binary")
        .arg(format!("@{}", file.display()))
        .arg(format!("{base}/manifests/{tag}"))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));

    let (o, doc) = load(&s, &all, &reg.host);
    assert_eq!(o.status.code(), Some(1), "{}\n{doc:#}", stderr(&o));
    let failure = &doc["failures"][0];
    let referrer = all.referrer();
    let artifact = failure["artifact"].as_str().unwrap();
    assert!(artifact.starts_with("attestation `"), "{doc:#}");
    assert!(artifact.contains(&referrer.digest.to_string()), "{doc:#}");
    assert!(artifact.contains(&subject), "{doc:#}");
    let error = failure["error"].as_str().unwrap();
    assert!(
        error.contains(&format!("{}/{REPO}:{tag}", reg.host)),
        "{error}"
    );
    assert!(error.contains("is not an OCI index"), "{error}");
    assert_eq!(error.matches("missing field").count(), 1, "{error}");
    let text = stderr(&o);
    assert!(text.contains("without all their artifacts"), "{text}");
    // The image and the artifacts pushed before the referrer are there; the tag is untouched.
    assert_eq!(
        skopeo_raw(&reg.host, &format!("{REPO}:{TAG}")),
        all.index.to_string()
    );
    let sig = all.artifact(ArtifactKind::Signature);
    let at = format!("{REPO}:{}", sig.tag.as_deref().unwrap());
    assert_eq!(skopeo_raw(&reg.host, &at), sig.digest.to_string());
    assert_eq!(skopeo_raw(&reg.host, &format!("{REPO}:{tag}")), subject);
}
