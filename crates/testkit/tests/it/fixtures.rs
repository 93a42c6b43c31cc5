use std::process::Command;
use std::time::Instant;

use airlock_testkit::fixtures::{self, FixtureSet};

use crate::{sha256, succeed, tool};

#[test]
fn build_is_deterministic() {
    let a = tempfile::tempdir().unwrap();
    let b = tempfile::tempdir().unwrap();
    let started = Instant::now();
    let first = fixtures::build(a.path()).unwrap();
    eprintln!("fixture build: {:?}", started.elapsed());
    let second = fixtures::build(b.path()).unwrap();
    assert_eq!(first.images, second.images);
    assert_eq!(first.unique_blob_bytes, second.unique_blob_bytes);
    assert_eq!(
        std::fs::read(first.layout.join("index.json")).unwrap(),
        std::fs::read(second.layout.join("index.json")).unwrap()
    );
}

fn cached() -> FixtureSet {
    fixtures::fixture_set().unwrap()
}

#[test]
fn every_blob_is_in_the_layout_under_its_digest() {
    let set = cached();
    let mut total = 0;
    for (digest, size) in set.all_blobs() {
        let bytes = std::fs::read(set.blob_path(&digest)).unwrap();
        assert_eq!(bytes.len() as u64, size, "{digest}");
        if size < 1 << 20 {
            assert_eq!(sha256(&bytes), digest);
        }
        total += size;
    }
    assert_eq!(total, set.unique_blob_bytes);
    let entries = std::fs::read_dir(set.layout.join("blobs/sha256"))
        .unwrap()
        .count();
    assert_eq!(
        entries,
        set.all_blobs().len(),
        "no stray files in the layout"
    );
}

#[test]
fn images_have_the_promised_shape() {
    let set = cached();
    let names: Vec<&str> = set.images.iter().map(|i| i.repository.as_str()).collect();
    assert_eq!(
        names,
        [
            "fixtures/base",
            "fixtures/app-a",
            "fixtures/app-b",
            "fixtures/many-layers",
            "fixtures/multi",
            "fixtures/docker-list",
            "fixtures/zstd",
            "fixtures/big",
            "k8s/pause"
        ]
    );
    let base = &set.image("fixtures/base").unwrap().manifests[0].layers[0];
    for app in ["fixtures/app-a", "fixtures/app-b"] {
        assert_eq!(
            &set.image(app).unwrap().manifests[0].layers[0],
            base,
            "{app} shares base"
        );
    }
    assert_eq!(set.image("fixtures/app-a").unwrap().tags, ["1", "latest"]);
    assert_eq!(
        set.image("fixtures/many-layers").unwrap().manifests[0]
            .layers
            .len(),
        40
    );
    let multi = set.image("fixtures/multi").unwrap();
    assert_eq!(multi.media_type, fixtures::OCI_INDEX);
    assert_eq!(multi.platforms, ["linux/amd64", "linux/arm64/v8"]);
    let list = set.image("fixtures/docker-list").unwrap();
    assert_eq!(list.media_type, fixtures::DOCKER_LIST);
    assert!(list
        .manifests
        .iter()
        .all(|m| m.media_type == fixtures::DOCKER_MANIFEST));
    let big = set.image("fixtures/big").unwrap();
    assert!(big.manifests[0].layers[0].1 >= 100 << 20);
    let zstd = set.image("fixtures/zstd").unwrap();
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(set.blob_path(&zstd.digest)).unwrap()).unwrap();
    assert_eq!(manifest["layers"][0]["mediaType"], fixtures::OCI_LAYER_ZSTD);
}

/// Every config's diff_ids are the digests of the uncompressed layers, and os/architecture
/// match the platform.
#[test]
fn configs_match_their_layers() {
    let set = cached();
    for image in &set.images {
        for manifest in &image.manifests {
            let config: serde_json::Value =
                serde_json::from_slice(&std::fs::read(set.blob_path(&manifest.config.0)).unwrap())
                    .unwrap();
            let platform: Vec<&str> = manifest.platform.split('/').collect();
            assert_eq!(config["os"], platform[0]);
            assert_eq!(config["architecture"], platform[1]);
            assert_eq!(config["variant"].as_str(), platform.get(2).copied());
            let diff_ids: Vec<String> = manifest
                .layers
                .iter()
                .map(|(digest, _)| {
                    let file = std::fs::File::open(set.blob_path(digest)).unwrap();
                    let mut hasher = sha2::Sha256::default();
                    let mut reader: Box<dyn std::io::Read> = if image.repository == "fixtures/zstd"
                    {
                        Box::new(zstd::Decoder::new(file).unwrap())
                    } else {
                        Box::new(flate2::read::GzDecoder::new(file))
                    };
                    std::io::copy(&mut reader, &mut hasher).unwrap();
                    use sha2::Digest as _;
                    format!("sha256:{}", hex::encode(hasher.finalize()))
                })
                .collect();
            assert_eq!(
                config["rootfs"]["diff_ids"],
                serde_json::json!(diff_ids),
                "{}",
                image.repository
            );
        }
    }
}

/// oci-image-tool validates the gzip OCI images (it rejects zstd layers and Docker media
/// types, and 1.0.0-rc1 finds no `name=` ref in a layout of many images: one layout each).
#[test]
fn oci_image_tool_validates_the_oci_gzip_images() {
    let set = cached();
    let oci_image_tool = tool("oci-image-tool");
    for image in &set.images {
        if image.repository == "fixtures/zstd" || image.repository == "fixtures/docker-list" {
            continue;
        }
        let dir = tempfile::tempdir().unwrap();
        let blobs = dir.path().join("blobs/sha256");
        std::fs::create_dir_all(&blobs).unwrap();
        for (digest, _) in &image.blobs {
            let target = blobs.join(&digest["sha256:".len()..]);
            if std::fs::hard_link(set.blob_path(digest), &target).is_err() {
                std::fs::copy(set.blob_path(digest), &target).unwrap();
            }
        }
        std::fs::copy(set.layout.join("oci-layout"), dir.path().join("oci-layout")).unwrap();
        let index = serde_json::json!({
            "schemaVersion": 2,
            "manifests": [{
                "mediaType": image.media_type,
                "digest": image.digest,
                "size": image.size,
                "annotations": {"org.opencontainers.image.ref.name": image.tags[0]},
            }],
        });
        std::fs::write(dir.path().join("index.json"), index.to_string()).unwrap();
        let out = succeed(
            Command::new(&oci_image_tool)
                .args(["validate", "--type", "image"])
                .arg(dir.path()),
        );
        assert!(
            String::from_utf8_lossy(&out).contains("Validation succeeded"),
            "{}",
            image.repository
        );
    }
}

/// skopeo verifies every digest it copies: each image, all platforms, out of the layout.
/// Except the Docker manifest list: skopeo 1.9's `oci:` transport skips index.json entries
/// with Docker media types ("no descriptor found for reference"); the registry test covers it.
#[test]
fn skopeo_copies_every_image_out_of_the_layout() {
    let set = cached();
    let skopeo = tool("skopeo");
    for image in set
        .images
        .iter()
        .filter(|i| i.media_type != fixtures::DOCKER_LIST)
    {
        let out = tempfile::tempdir().unwrap();
        let source = format!(
            "oci:{}:{}:{}",
            set.layout.display(),
            image.repository,
            image.tags[0]
        );
        succeed(
            Command::new(&skopeo)
                .args(["copy", "--all", "--quiet", &source])
                .arg(format!("dir:{}", out.path().display())),
        );
        let manifest = std::fs::read(out.path().join("manifest.json")).unwrap();
        assert_eq!(sha256(&manifest), image.digest, "{}", image.repository);
    }
}

#[test]
fn the_many_images_corpus_shares_one_base_layer() {
    let set = fixtures::many_images(5).unwrap();
    assert_eq!(set.images.len(), 5);
    let base = &set.images[0].manifests[0].layers[0];
    let mut own = std::collections::BTreeSet::new();
    for (i, image) in set.images.iter().enumerate() {
        assert_eq!(image.repository, format!("many/img-{i:04}"));
        assert_eq!(image.tags, ["1"]);
        let layers = &image.manifests[0].layers;
        assert_eq!(layers.len(), 2, "{}", image.repository);
        assert_eq!(&layers[0], base, "{}", image.repository);
        assert!(
            own.insert(layers[1].0.clone()),
            "{} has its own layer",
            image.repository
        );
        for (digest, size) in &image.blobs {
            let bytes = std::fs::read(set.blob_path(digest)).unwrap();
            assert_eq!(bytes.len() as u64, *size);
            assert_eq!(sha256(&bytes), *digest);
        }
    }
}
