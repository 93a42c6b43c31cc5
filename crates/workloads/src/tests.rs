//! The scanner, the fast reader against the full parser, and the rewrite.

use std::path::PathBuf;

use crate::scan::{scan, scan_full, Quoting};
use crate::{
    rewrite, rewrite_inputs, write_in_place, Error, Input, Pins, ProblemKind, RewriteOptions,
    Source,
};

/// Every shape the fast reader takes, and some it leaves to the full parser.
const SHAPES: &[&str] = &[
    // A Deployment with init containers, a sidecar, comments, quoting and flow mappings.
    "# Source: chart/templates/deploy.yaml\napiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: op # the operator\n  labels: {app: op, tier: \"control\"}\nspec:\n  template:\n    spec:\n      initContainers:\n      - name: init\n        image: busybox:1.36\n        command: [\"sh\", \"-c\", 'echo ''hi''']\n      containers:\n        - name: manager\n          image: \"registry.local:5000/team/op:1.2\"   # pinned\n          args:\n            - --leader-elect\n            - --metrics=:8080\n          env:\n            - name: A\n              value: |\n                line one\n                  line two\n            - name: B\n              value: >-\n                folded\n        - name: proxy\n          image: 'quay.io/brancz/kube-rbac-proxy@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef'\n",
    // A CronJob, a document marker with a comment, a compact sequence.
    "--- # first\napiVersion: batch/v1\nkind: CronJob\nmetadata:\n  name: backup\nspec:\n  schedule: \"0 3 * * *\"\n  jobTemplate:\n    spec:\n      template:\n        spec:\n          containers:\n          - name: backup\n            image: library/busybox:1.36\n          restartPolicy: OnFailure\n---\n---\n",
    // A List, an ephemeral container, a custom resource with nested image fields.
    "apiVersion: v1\nkind: List\nitems:\n- apiVersion: v1\n  kind: Pod\n  metadata:\n    name: debug\n  spec:\n    containers:\n    - {name: app, image: nginx}\n    ephemeralContainers:\n    -\n      name: shell\n      image: registry.k8s.io/e2e-test-images/agnhost:2.39\n- apiVersion: example.com/v1\n  kind: Exporter\n  metadata: {name: ex}\n  spec:\n    image: bitnami/redis:7\n    sidecars:\n      - image: \"ghcr.io/acme/sidecar:v2\"\n    empty: {image: \"\"}\n    structured:\n      image: {repository: nginx, tag: \"1.25\"}\n",
    // JSON (a StatefulSet), escapes included.
    "{\n  \"apiVersion\": \"apps/v1\",\n  \"kind\": \"StatefulSet\",\n  \"metadata\": {\"name\": \"db\", \"annotations\": {\"note\": \"a \\\"quoted\\\" \\u00e9 word\"}},\n  \"spec\": {\"template\": {\"spec\": {\"containers\": [\n    {\"name\": \"db\", \"image\": \"postgres:16\", \"ports\": [{\"containerPort\": 5432}], \"tty\": true, \"x\": null}\n  ]}}}\n}\n",
    // Anchors and aliases (left to the full parser).
    "kind: Pod\nmetadata:\n  name: twins\nspec:\n  containers:\n  - name: a\n    image: &img docker.io/library/redis:7.2\n  - name: b\n    image: *img\n  initContainers: &inits\n  - name: i\n    image: alpine:3.19\n",
    // Problems: templates, invalid references, a container without a string image.
    "kind: Deployment\nmetadata:\n  name: bad\nspec:\n  template:\n    spec:\n      containers:\n      - name: t\n        image: \"{{ .Values.image }}\"\n      - name: u\n        image: Nginx:Latest\n      - name: v\n        image: \"app:tag with space\"\n      - name: w\n        image:\n---\nkind: Pod\nspec:\n  containers:\n  - name: x\n    image: {{ .Values.repo }}:{{ .Values.tag }}\n",
    // A tagged value, a multi-line plain scalar, a tab: all left to the full parser.
    "kind: Pod\nmetadata:\n  name: odd\n  annotations:\n    long: this goes\n      on and on\nspec:\n  containers:\n  - name: a\n    image: !!str nginx:1.25\n",
    // CRLF line ends and a root sequence.
    "- kind: Pod\r\n  metadata:\r\n    name: crlf\r\n  spec:\r\n    containers:\r\n    - name: a\r\n      image: nginx:1.25 # c\r\n",
];

/// Corners of the subset the fast reader takes, each compared with the full parser.
const CORNERS: &[&str] = &[
    "kind: Pod\nmetadata: {name: c, labels: {}}\nspec:\n  volumes: []\n  containers:\n  - name: a#b\n    image: nginx:1#c\n  - name: \"q\" # c\n    \"image\": \"busybox:1\" # c\n",
    "kind: Pod\nspec:\n  containers:\n  - - a\n    - b\n  - name: x\n    args: [-x, --y=1, \"z\"]\n    image:    redis:7   \n",
    "kind: Pod\nspec:\n  a b: c\n  script: |+\n    echo\n\n  containers:\n  - image: >-\n      nginx:1\n  - image: 'it''s'\n...\n# after\n",
    "{\"kind\": \"Pod\", # a comment in YAML flow\n \"spec\": {\"containers\": [\r\n {\"image\": \"a/b:1\",\r\n \"name\": \"x\"}]}}\n",
    "kind: Pod\nspec:\n  containers:\n    - name: a\n      image: nginx\n    -\n      image: redis\n  initContainers:\n  - image: alpine\n    name: i\n",
    "kind: Pod\nspec:\n  containers:\n  - image: \"a\\u0062c:1\"\n  - image: \"x/y:\\t\"\n",
    "kind: Pod\nmetadata:\n  name:\n    nested: true\nspec:\n  containers:\n  - image: x:1\n    name:\n",
];

#[test]
fn the_fast_reader_agrees_with_the_full_parser_in_corners() {
    for (i, text) in CORNERS.iter().enumerate() {
        let fast = scan("c.yaml", text);
        let full = scan_full("c.yaml", text);
        match (fast, full) {
            (Ok(a), Ok(b)) => assert_eq!(a, b, "corner {i}"),
            (Err(a), Err(b)) => assert_eq!(a.to_string(), b.to_string(), "corner {i}"),
            (a, b) => panic!("corner {i}: {a:?} against {b:?}"),
        }
    }
}

#[test]
fn the_fast_reader_agrees_with_the_full_parser() {
    for (i, text) in SHAPES.iter().enumerate() {
        let fast = scan("f.yaml", text).unwrap_or_else(|e| panic!("shape {i}: {e}"));
        let full = scan_full("f.yaml", text).unwrap_or_else(|e| panic!("shape {i}: {e}"));
        assert_eq!(fast, full, "shape {i}");
        // Documents glued into one stream give the same fields.
        let mut stream = String::new();
        for s in SHAPES
            .iter()
            .filter(|s| !s.starts_with('{') && !s.starts_with('-'))
        {
            stream.push_str(s);
            stream.push_str("\n---\n");
        }
        assert_eq!(
            scan("s", &stream).unwrap(),
            scan_full("s", &stream).unwrap()
        );
    }
}

fn refs(text: &str) -> Vec<(String, usize, String, Option<String>)> {
    scan("m.yaml", text)
        .unwrap()
        .fields
        .into_iter()
        .map(|f| {
            (
                f.reference.to_string(),
                f.location.line,
                f.location.field,
                f.location.container,
            )
        })
        .collect()
}

#[test]
fn every_kind_of_container_and_custom_image_fields() {
    let r = refs(SHAPES[0]);
    assert_eq!(
        r[0],
        (
            "docker.io/library/busybox:1.36".into(),
            12,
            "initContainers".into(),
            Some("init".into())
        )
    );
    assert_eq!(r[1].0, "registry.local:5000/team/op:1.2");
    assert_eq!((r[1].1, r[1].3.as_deref()), (16, Some("manager")));
    assert!(r[2].0.starts_with("quay.io/brancz/kube-rbac-proxy@sha256:"));
    assert_eq!(r.len(), 3);
    let f = scan("m", SHAPES[0]).unwrap().fields;
    assert_eq!(f[0].location.kind.as_deref(), Some("Deployment"));
    assert_eq!(f[0].location.name.as_deref(), Some("op"));
    assert_eq!(
        [f[0].quoting, f[1].quoting, f[2].quoting],
        [Quoting::Plain, Quoting::Double, Quoting::Single]
    );
    // Spans are the value, quotes included.
    assert_eq!(
        &SHAPES[0][f[1].span.clone()],
        "\"registry.local:5000/team/op:1.2\""
    );

    let r = refs(SHAPES[1]);
    assert_eq!(
        r,
        vec![(
            "docker.io/library/busybox:1.36".into(),
            14,
            "containers".into(),
            Some("backup".into())
        )]
    );

    let found = scan("l", SHAPES[2]).unwrap();
    let r: Vec<_> = found
        .fields
        .iter()
        .map(|f| {
            (
                f.reference.to_string(),
                f.location.field.as_str(),
                f.location.kind.as_deref(),
                f.location.line,
            )
        })
        .collect();
    assert_eq!(
        r,
        vec![
            (
                "docker.io/library/nginx:latest".to_string(),
                "containers",
                Some("Pod"),
                10
            ),
            (
                "registry.k8s.io/e2e-test-images/agnhost:2.39".into(),
                "ephemeralContainers",
                Some("Pod"),
                14
            ),
            (
                "docker.io/bitnami/redis:7".into(),
                "spec.image",
                Some("Exporter"),
                19
            ),
            (
                "ghcr.io/acme/sidecar:v2".into(),
                "spec.sidecars[0].image",
                Some("Exporter"),
                21
            ),
        ]
    );
    assert!(!found.fields[0].has_tag && found.fields[1].has_tag);
    // An empty or structured `image:` of a custom resource is not an image; no problem either.
    assert!(found.problems.is_empty(), "{:?}", found.problems);

    let r = refs(SHAPES[3]);
    assert_eq!(
        r,
        vec![(
            "docker.io/library/postgres:16".into(),
            6,
            "containers".into(),
            Some("db".into())
        )]
    );
}

#[test]
fn configmap_and_secret_data_are_not_image_fields() {
    let text = "kind: ConfigMap\nmetadata: {name: c}\ndata:\n  image: not/an-image:here\n---\nkind: Secret\nstringData:\n  image: x\n";
    assert_eq!(scan("c", text).unwrap(), crate::Scan::default());
}

#[test]
fn an_alias_does_not_duplicate_a_location() {
    let found = scan("a", SHAPES[4]).unwrap();
    let r: Vec<_> = found
        .fields
        .iter()
        .map(|f| {
            (
                f.reference.to_string(),
                f.location.line,
                f.location.container.clone(),
            )
        })
        .collect();
    assert_eq!(
        r,
        vec![
            ("docker.io/library/redis:7.2".into(), 7, Some("a".into())),
            ("docker.io/library/alpine:3.19".into(), 12, Some("i".into())),
        ]
    );
}

#[test]
fn templates_invalid_references_and_empty_images_are_problems_with_lines() {
    let found = scan("bad.yaml", SHAPES[5]).unwrap();
    assert!(found.fields.is_empty());
    let p: Vec<_> = found
        .problems
        .iter()
        .map(|p| (p.line, p.kind.code(), p.value.as_str()))
        .collect();
    assert_eq!(
        p,
        vec![
            (9, "template", "{{ .Values.image }}"),
            (11, "invalid-reference", "Nginx:Latest"),
            (13, "invalid-reference", "app:tag with space"),
            (15, "empty", ""),
            (
                21,
                "template",
                "image: {{ .Values.repo }}:{{ .Values.tag }}"
            ),
        ]
    );
    assert!(found.problems[0]
        .to_string()
        .starts_with("bad.yaml:9: error: unrendered template `{{ .Values.image }}`"));
    // A template that breaks the YAML: a problem, and the next document is still read.
    let text = "kind: Pod\nspec:\n{{- if .Values.x }}\n  containers: []\n{{- end }}\n---\nkind: Pod\nspec:\n  containers:\n  - image: nginx:1\n";
    let found = scan("t.yaml", text).unwrap();
    assert_eq!(found.problems.len(), 1);
    assert_eq!(
        (found.problems[0].line, found.problems[0].kind.code()),
        (3, "template")
    );
    assert_eq!(found.fields[0].location.line, 10);
}

#[test]
fn text_that_is_not_yaml_is_an_error_with_its_line() {
    let e = scan("x.yaml", "kind: Pod\nmetadata:\n  name: [unclosed\n").unwrap_err();
    assert!(
        matches!(
            e,
            Error::Syntax { line: 4, .. } | Error::Syntax { line: 3, .. }
        ),
        "{e}"
    );
    assert!(e.to_string().starts_with("x.yaml:"), "{e}");
    let e = scan(
        "notes.yaml",
        "kind: Pod\n---\nThis is prose, not a manifest.\n",
    )
    .unwrap_err();
    assert!(matches!(e, Error::NotAManifest { line: 3, .. }), "{e}");
    let dir = tempfile::tempdir().unwrap();
    let bin = dir.path().join("b.yaml");
    std::fs::write(&bin, b"kind: Pod\n\xff\xfe\n").unwrap();
    let e = crate::find_images(&[bin]).unwrap_err();
    assert!(matches!(e, Error::NotText { line: 2, .. }), "{e}");
}

fn opts(to: &str, names: &str) -> RewriteOptions {
    RewriteOptions {
        target: to.parse().unwrap(),
        rule: names.parse().unwrap(),
        rewrites: Vec::new(),
        pins: None,
    }
}

fn input(text: &str) -> Input {
    Input {
        source: Source {
            file: "m.yaml".into(),
            path: None,
        },
        text: text.into(),
    }
}

#[test]
fn a_rewrite_changes_the_values_only_in_their_quoting() {
    let o = opts("registry://harbor.lan:8443/mirror", "drop-host");
    for text in SHAPES.iter().filter(|s| !s.contains("{{")) {
        let done = rewrite_inputs(vec![input(text)], &o).unwrap();
        assert!(done.problems.is_empty());
        let out = &done.files[0].text;
        // Outside the values, every byte is the input's.
        let fields = scan("m", text).unwrap().fields;
        let mut rebuilt = String::new();
        let mut at = 0;
        let new = scan("m", out).unwrap().fields;
        let mut at_new = 0;
        for (old, new) in fields.iter().zip(&new) {
            assert_eq!(&text[at..old.span.start], &out[at_new..new.span.start]);
            rebuilt.push_str(&text[at..old.span.start]);
            at = old.span.end;
            at_new = new.span.end;
            assert_eq!(old.quoting, new.quoting);
            assert_eq!(old.location.line, new.location.line);
            assert!(
                new.value.starts_with("harbor.lan:8443/mirror/"),
                "{}",
                new.value
            );
            assert_eq!(old.has_tag, new.has_tag);
            assert_eq!(old.reference.digest, new.reference.digest);
        }
        assert_eq!(&text[at..], &out[at_new..]);
        assert_eq!(fields.len(), new.len());
        // A second run changes nothing.
        let again = rewrite_inputs(vec![input(out)], &o).unwrap();
        assert_eq!(again.change_count(), 0, "{out}");
    }
    let done = rewrite_inputs(vec![input(SHAPES[2])], &o).unwrap();
    let new: Vec<_> = done.files[0]
        .changes
        .iter()
        .map(|c| c.new.as_str())
        .collect();
    assert_eq!(
        new,
        [
            "harbor.lan:8443/mirror/library/nginx",
            "harbor.lan:8443/mirror/e2e-test-images/agnhost:2.39",
            "harbor.lan:8443/mirror/bitnami/redis:7",
            "harbor.lan:8443/mirror/acme/sidecar:v2",
        ]
    );
    assert!(done.files[0]
        .text
        .contains("- {name: app, image: harbor.lan:8443/mirror/library/nginx}\n"));
}

#[test]
fn names_follow_load_and_collisions_are_refused() {
    let text = "kind: Pod\nspec:\n  containers:\n  - image: registry.k8s.io/coredns/coredns:v1.11.1\n  - image: docker.io/coredns/coredns:1.11.1\n";
    let o = opts("registry://h/k8s", "keep-host");
    let done = rewrite_inputs(vec![input(text)], &o).unwrap();
    let new: Vec<_> = done.files[0]
        .changes
        .iter()
        .map(|c| c.new.as_str())
        .collect();
    assert_eq!(
        new,
        [
            "h/k8s/registry.k8s.io/coredns/coredns:v1.11.1",
            "h/k8s/docker.io/coredns/coredns:1.11.1"
        ]
    );
    let mut o = opts("registry://h/k8s", "flat");
    let e = rewrite_inputs(vec![input(text)], &o).unwrap_err();
    assert!(matches!(e, Error::Names(_)), "{e}");
    o.rewrites = vec!["docker.io/coredns=hub".parse().unwrap()];
    let done = rewrite_inputs(vec![input(text)], &o).unwrap();
    assert_eq!(done.files[0].changes[1].new, "h/k8s/hub/coredns:1.11.1");
    assert_eq!(done.files[0].changes[0].new, "h/k8s/coredns:v1.11.1");
}

#[test]
fn a_value_that_would_need_quoting_is_a_problem() {
    let text = "kind: Pod\nspec:\n  containers:\n  - image: nginx:1\n";
    let done = rewrite_inputs(
        vec![input(text)],
        &opts("registry://[fd00::1]:5000/m", "drop-host"),
    )
    .unwrap();
    assert_eq!(done.problems[0].kind.code(), "needs-quoting");
    assert!(done.files.is_empty());
    let quoted = "kind: Pod\nspec:\n  containers:\n  - image: \"nginx:1\"\n";
    let done = rewrite_inputs(
        vec![input(quoted)],
        &opts("registry://[fd00::1]:5000/m", "drop-host"),
    )
    .unwrap();
    assert!(done.files[0]
        .text
        .ends_with("image: \"[fd00::1]:5000/m/library/nginx:1\"\n"));
}

#[test]
fn pins_add_digests_to_the_tags_they_know() {
    let d = "sha256:1111111111111111111111111111111111111111111111111111111111111111";
    let text = format!("kind: Pod\nspec:\n  containers:\n  - image: nginx:1.25\n  - image: nginx\n  - image: quay.io/a/b:2@{d}\n  - image: ghcr.io/x/y:3\n");
    let mut o = opts("registry://h/m", "drop-host");
    o.pins = Some(Pins::from_pairs([
        ("docker.io/library/nginx:1.25".to_string(), d.to_string()),
        ("nginx".to_string(), d.to_string()),
    ]));
    let done = rewrite_inputs(vec![input(&text)], &o).unwrap();
    let new: Vec<_> = done.files[0]
        .changes
        .iter()
        .map(|c| c.new.clone())
        .collect();
    assert_eq!(
        new,
        [
            format!("h/m/library/nginx:1.25@{d}"),
            format!("h/m/library/nginx@{d}"),
            format!("h/m/a/b:2@{d}"),
            "h/m/x/y:3".into()
        ]
    );
    assert_eq!(done.unpinned.len(), 1);
    assert_eq!(done.unpinned[0].line, 7);
}

#[test]
fn pins_from_a_bundle_manifest_and_a_lock() {
    let dir = tempfile::tempdir().unwrap();
    let d = "sha256:2222222222222222222222222222222222222222222222222222222222222222";
    let lock = dir.path().join("app.lock.json");
    std::fs::write(&lock, format!("{{\"lockVersion\": 1, \"spec\": \"s\", \"images\": {{\"docker.io/library/nginx:1.25\": {{\"digest\": \"{d}\", \"source\": \"docker.io/library/nginx\"}}}}}}")).unwrap();
    let pins = Pins::read(&lock).unwrap();
    assert_eq!(pins.digest("docker.io/library/nginx", "1.25"), Some(d));
    let bad = dir.path().join("bad.json");
    std::fs::write(&bad, "[]").unwrap();
    assert!(Pins::read(&bad).is_err());
}

#[test]
fn in_place_writes_changed_files_only_and_nothing_on_a_problem() {
    let dir = tempfile::tempdir().unwrap();
    let sub = dir.path().join("apps");
    std::fs::create_dir(&sub).unwrap();
    let a = sub.join("a.yaml");
    let b = sub.join("b.yml");
    let c = sub.join("notes.txt");
    std::fs::write(
        &a,
        "kind: Pod\nspec:\n  containers:\n  - image: nginx:1 # keep\n",
    )
    .unwrap();
    std::fs::write(&b, "kind: ConfigMap\ndata: {x: y}\n").unwrap();
    std::fs::write(&c, "not read\n").unwrap();
    let before_b = std::fs::metadata(&b).unwrap().modified().unwrap();
    let o = opts("registry://h/m", "drop-host");
    let paths: Vec<PathBuf> = vec![dir.path().to_owned()];
    let done = rewrite(&paths, &o).unwrap();
    assert_eq!(done.files.len(), 2);
    assert_eq!(done.files[0].source.file, a.display().to_string());
    assert_eq!(write_in_place(&done).unwrap(), 1);
    assert_eq!(
        std::fs::read_to_string(&a).unwrap(),
        "kind: Pod\nspec:\n  containers:\n  - image: h/m/library/nginx:1 # keep\n"
    );
    assert_eq!(std::fs::metadata(&b).unwrap().modified().unwrap(), before_b);
    let leftovers: Vec<_> = std::fs::read_dir(&sub)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(leftovers.len(), 3, "{leftovers:?}");

    // One bad file: nothing rewritten anywhere.
    std::fs::write(&a, "kind: Pod\nspec:\n  containers:\n  - image: nginx:2\n").unwrap();
    std::fs::write(
        &b,
        "kind: Pod\nspec:\n  containers:\n  - image: \"{{ .Values.image }}\"\n",
    )
    .unwrap();
    let done = rewrite(&paths, &o).unwrap();
    assert!(done.files.is_empty() && done.problems[0].kind.code() == "template");
    assert_eq!(write_in_place(&done).unwrap(), 0);
    assert!(std::fs::read_to_string(&a)
        .unwrap()
        .ends_with("image: nginx:2\n"));
    assert!(matches!(
        done.problems[0].kind,
        ProblemKind::Template { .. }
    ));
}

#[test]
fn a_large_stream_scanned_on_every_core_is_the_stream_scanned_in_order() {
    let mut stream = String::new();
    let mut i = 0;
    while stream.len() < (5 << 20) {
        stream.push_str(SHAPES[i % 3]);
        stream.push_str("\n---\n");
        i += 1;
    }
    let fast = scan("big.yaml", &stream).unwrap();
    assert_eq!(fast, scan_full("big.yaml", &stream).unwrap());
    assert!(fast.fields.len() > 10_000);
    let lines: Vec<usize> = fast.fields.iter().map(|f| f.location.line).collect();
    assert!(lines.windows(2).all(|w| w[0] < w[1]));
}

/// Speed: the common shapes never go to the full parser (a regression here halves the speed
/// silently, the results being the same).
#[test]
fn the_fast_reader_takes_the_common_shapes() {
    for i in [0, 1, 2, 3, 7] {
        for (range, line) in crate::scan::documents(SHAPES[i]) {
            let mut doc = crate::scan::Doc::default();
            let taken = crate::fast::build(SHAPES[i], range.clone(), line, &mut doc);
            assert!(taken.is_some(), "shape {i}: {}", &SHAPES[i][range]);
        }
    }
    for i in [4, 6] {
        let taken = crate::fast::build(SHAPES[i], 0..SHAPES[i].len(), 1, &mut Default::default());
        assert!(taken.is_none(), "shape {i}");
    }
}
