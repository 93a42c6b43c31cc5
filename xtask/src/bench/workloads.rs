//! `cargo xtask bench workloads`: `airlock images from` and `airlock rewrite` over a generated
//! ~50 MB manifest corpus (hundreds of multi-document files of varied workloads, the same
//! bytes every run), beside the naive pass people script today: `grep -rhoE 'image: …' | sort
//! -u` to list, `sed -E` over the image lines to rewrite.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::path::Path;
use std::process::Command;

use anyhow::{bail, Context as _};

use super::{mb, measure, median, prepare};

/// Files in the corpus, and documents in each.
const FILES: usize = 500;
const DOCS_PER_FILE: usize = 80;

/// What `rewrite` points the manifests at.
const TO: &str = "registry://harbor.lan/mirror";

pub fn bench_workloads(runs: usize) -> anyhow::Result<()> {
    let (airlock, work) = prepare("bench-workloads")?;
    let tree = work.join("manifests");
    let single = work.join("all.yaml");
    let (bytes, images) = generate(&tree, &single)?;
    eprintln!(
        "corpus: {FILES} files, {} documents, {:.1} MB, {} distinct images",
        FILES * DOCS_PER_FILE,
        mb(bytes),
        images.len()
    );

    // One check that the pass is the real one: the list is exactly what was written.
    let listed = work.join("images.txt");
    measure(to_file(&listed, &airlock, &["images", "from"], &tree))?;
    let got: BTreeSet<String> = std::fs::read_to_string(&listed)?
        .lines()
        .map(str::to_string)
        .collect();
    if got != images {
        bail!(
            "`airlock images from` listed {} images, the corpus has {}",
            got.len(),
            images.len()
        );
    }

    let copy = work.join("in-place");
    let mut from_dir = Vec::new();
    let mut from_file = Vec::new();
    let mut rewrite_out = Vec::new();
    let mut rewrite_in_place = Vec::new();
    let mut grep = Vec::new();
    let mut sed = Vec::new();
    let out = work.join("out.yaml");
    for _ in 0..runs {
        from_dir.push(measure(to_file(
            &listed,
            &airlock,
            &["images", "from"],
            &tree,
        ))?);
        from_file.push(measure(to_file(
            &listed,
            &airlock,
            &["images", "from"],
            &single,
        ))?);
        let args = ["rewrite", "--to", TO, "--names", "drop-host"];
        rewrite_out.push(measure(to_file(&out, &airlock, &args, &single))?);
        copy_dir(&tree, &copy)?;
        let mut c = Command::new(&airlock);
        c.args(args).arg("--in-place").arg(&copy);
        rewrite_in_place.push(measure(quietly(c))?);
        grep.push(measure(shell(&format!(
            "grep -rhoE 'image: *[^ ]+' '{}' | sort -u > '{}'",
            tree.display(),
            work.join("grep.txt").display()
        )))?);
        sed.push(measure(shell(&format!(
            "sed -E 's#(image: *[\"'\\'']?)[^/\"'\\'' ]+/#\\1harbor.lan/mirror/#' '{}' > '{}'",
            single.display(),
            out.display()
        )))?);
    }
    // And that the rewrite is: the tree rewritten in place names each image at harbor.lan.
    measure(to_file(&listed, &airlock, &["images", "from"], &copy))?;
    let moved: BTreeSet<String> = images
        .iter()
        .map(|i| format!("harbor.lan/mirror/{}", i.split_once('/').expect("a host").1))
        .collect();
    let got: BTreeSet<String> = std::fs::read_to_string(&listed)?
        .lines()
        .map(str::to_string)
        .collect();
    if got != moved {
        bail!("the rewritten tree does not name every image at harbor.lan/mirror");
    }
    println!();
    println!(
        "| {:.0} MB of manifests, median of {runs} | wall time | MB/s | peak RSS |",
        mb(bytes)
    );
    println!("|---|---|---|---|");
    for (label, s) in [
        (
            format!("`airlock images from DIR` ({FILES} files)"),
            median(&mut from_dir),
        ),
        (
            "`airlock images from FILE` (one file)".into(),
            median(&mut from_file),
        ),
        (
            "`airlock rewrite FILE` (to stdout)".into(),
            median(&mut rewrite_out),
        ),
        (
            format!("`airlock rewrite --in-place DIR` ({FILES} files)"),
            median(&mut rewrite_in_place),
        ),
        (
            "`grep -rhoE 'image: *[^ ]+' DIR \\| sort -u`".into(),
            median(&mut grep),
        ),
        (
            "`sed -E 's#(image: *…)[^/…]+/#…#' FILE`".into(),
            median(&mut sed),
        ),
    ] {
        println!(
            "| {label} | {:.3} s | {:.0} | {:.1} MiB |",
            s.seconds,
            mb(bytes) / s.seconds,
            s.max_rss_kib as f64 / 1024.0
        );
    }
    let grepped = std::fs::read_to_string(work.join("grep.txt"))?
        .lines()
        .count();
    println!();
    println!(
        "grep prints {grepped} distinct lines for the {} distinct images (quoting and implicit \
         docker.io not normalised, no file:line, no kind); sed leaves names without a `/` alone",
        images.len()
    );
    Ok(())
}

/// `BIN ARGS… PATH > OUT`, exec'd by `sh` so that the time and RSS measured are the binary's.
fn to_file(out: &Path, bin: &Path, args: &[&str], path: &Path) -> Command {
    let mut c = Command::new("sh");
    c.arg("-c")
        .arg("out=$1; shift; exec \"$@\" > \"$out\" 2>/dev/null")
        .arg("sh")
        .arg(out)
        .arg(bin)
        .args(args)
        .arg(path);
    c
}

/// A command with stderr thrown away (one line per change would fill the terminal).
fn quietly(c: Command) -> Command {
    let mut s = Command::new("sh");
    s.arg("-c")
        .arg("exec \"$@\" 2>/dev/null")
        .arg("sh")
        .arg(c.get_program())
        .args(c.get_args());
    s
}

fn shell(script: &str) -> Command {
    let mut c = Command::new("sh");
    c.arg("-c").arg(script);
    c
}

fn copy_dir(from: &Path, to: &Path) -> anyhow::Result<()> {
    let _ = std::fs::remove_dir_all(to);
    std::fs::create_dir_all(to)?;
    for e in std::fs::read_dir(from)? {
        let e = e?;
        std::fs::copy(e.path(), to.join(e.file_name()))?;
    }
    Ok(())
}

/// A small deterministic generator (xorshift), so the corpus is the same bytes every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// An image as written in a manifest and as `images from` prints it. The repository paths
/// of the registries differ, so that drop-host maps no two of them onto one name.
fn image(rng: &mut Rng) -> (String, String) {
    let n = rng.below(400);
    let t = rng.below(8);
    match rng.below(7) {
        0 => {
            let w = format!("registry.local:5000/platform/svc{n}:1.{t}");
            (w.clone(), w)
        }
        1 => (
            format!("example/app{n}:v{t}"),
            format!("docker.io/example/app{n}:v{t}"),
        ),
        2 => (
            format!("tool{n}"),
            format!("docker.io/library/tool{n}:latest"),
        ),
        3 => {
            let w = format!("quay.io/ops/agent{n}:2.{t}.0");
            (w.clone(), w)
        }
        4 => {
            let w = format!("registry.k8s.io/sig/comp{n}:v1.{t}.0");
            (w.clone(), w)
        }
        5 => {
            let d = format!("sha256:{:064x}", (n as u128) << 64 | t as u128);
            let w = format!("ghcr.io/org/op{n}:v{t}@{d}");
            (w.clone(), w)
        }
        _ => (
            format!("library/base{n}:{t}"),
            format!("docker.io/library/base{n}:{t}"),
        ),
    }
}

/// Writes the corpus as `FILES` files under `tree` and as one stream `single`; returns its
/// size and the set `images from` must print.
fn generate(tree: &Path, single: &Path) -> anyhow::Result<(u64, BTreeSet<String>)> {
    std::fs::create_dir_all(tree)?;
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut images = BTreeSet::new();
    let mut all = String::new();
    let mut bytes = 0u64;
    for f in 0..FILES {
        let mut text = String::new();
        for d in 0..DOCS_PER_FILE {
            text.push_str("---\n");
            document(&mut rng, &mut text, &mut images, f, d);
        }
        let path = tree.join(format!("release-{f:04}.yaml"));
        std::fs::write(&path, &text).with_context(|| format!("writing {}", path.display()))?;
        bytes += text.len() as u64;
        all.push_str(&text);
    }
    std::fs::write(single, &all)?;
    Ok((bytes, images))
}

fn document(rng: &mut Rng, s: &mut String, images: &mut BTreeSet<String>, f: usize, d: usize) {
    let mut img = |rng: &mut Rng| {
        let (written, canonical) = image(rng);
        images.insert(canonical);
        // Quoting as people write it: plain, double, single.
        match rng.below(3) {
            0 => written,
            1 => format!("\"{written}\""),
            _ => format!("'{written}'"),
        }
    };
    let name = format!("svc-{f}-{d}");
    let _ = writeln!(s, "# Source: chart-{}/templates/{}.yaml", f % 17, d % 9);
    match rng.below(8) {
        0..=2 => {
            let _ = write!(
                s,
                "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: {name}\n  namespace: team-{ns}\n  labels:\n    app.kubernetes.io/name: {name}\n    app.kubernetes.io/part-of: shop\n  annotations:\n    deployment.kubernetes.io/revision: \"{rev}\"\nspec:\n  replicas: {rep}\n  selector:\n    matchLabels: {{app: {name}}}\n  template:\n    metadata:\n      labels: {{app: {name}}}\n    spec:\n      serviceAccountName: {name}\n      initContainers:\n        - name: migrate\n          image: {i0}\n          command: [\"/bin/migrate\", \"--up\"]\n      containers:\n        - name: app\n          image: {i1}\n          imagePullPolicy: IfNotPresent\n          ports:\n            - {{name: http, containerPort: 8080}}\n          env:\n            - name: LOG_LEVEL\n              value: info\n            - name: DATABASE_URL\n              valueFrom:\n                secretKeyRef: {{name: {name}-db, key: url}}\n          readinessProbe:\n            httpGet: {{path: /healthz, port: http}}\n            periodSeconds: 10\n          resources:\n            requests: {{cpu: 100m, memory: 128Mi}}\n            limits: {{cpu: \"1\", memory: 512Mi}}\n        - name: proxy   # the mesh sidecar\n          image: {i2}\n          args: [--listen=:15001, --upstream=127.0.0.1:8080]\n",
                ns = f % 23,
                rev = d % 7 + 1,
                rep = d % 3 + 1,
                i0 = img(rng),
                i1 = img(rng),
                i2 = img(rng),
            );
        }
        3 => {
            let _ = write!(
                s,
                "apiVersion: apps/v1\nkind: DaemonSet\nmetadata:\n  name: {name}\n  namespace: kube-system\nspec:\n  selector:\n    matchLabels: {{k8s-app: {name}}}\n  template:\n    metadata:\n      labels: {{k8s-app: {name}}}\n    spec:\n      hostNetwork: true\n      tolerations:\n        - operator: Exists\n      initContainers:\n        - name: install-cni\n          image: {i0}\n          command: [cp, -f, /cni/bin/plugin, /host/opt/cni/bin/]\n          volumeMounts:\n            - {{name: cni-bin, mountPath: /host/opt/cni/bin}}\n      containers:\n        - name: agent\n          image: {i1}\n          securityContext: {{privileged: true}}\n      volumes:\n        - name: cni-bin\n          hostPath: {{path: /opt/cni/bin}}\n",
                i0 = img(rng),
                i1 = img(rng),
            );
        }
        4 => {
            let _ = write!(
                s,
                "apiVersion: batch/v1\nkind: CronJob\nmetadata:\n  name: {name}\nspec:\n  schedule: \"{m} 3 * * *\"\n  jobTemplate:\n    spec:\n      template:\n        spec:\n          restartPolicy: OnFailure\n          containers:\n            - name: job\n              image: {i0}\n              args: [--once, --target=s3://backups/{name}]\n",
                m = d % 60,
                i0 = img(rng),
            );
        }
        5 => {
            let _ = write!(
                s,
                "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}-config\ndata:\n  app.properties: |\n"
            );
            for k in 0..40 {
                let _ = writeln!(
                    s,
                    "    feature.{k}.enabled=true\n    feature.{k}.endpoint=http://{name}.svc.cluster.local:{port}/v{k}",
                    port = 8000 + k
                );
            }
        }
        6 => {
            let _ = write!(
                s,
                "apiVersion: db.example.com/v1\nkind: PostgresCluster\nmetadata:\n  name: {name}\nspec:\n  instances: 3\n  image: {i0}\n  backup:\n    schedule: \"0 1 * * *\"\n    image: {i1}\n  storage: {{size: 20Gi, class: fast}}\n",
                i0 = img(rng),
                i1 = img(rng),
            );
        }
        _ => {
            let _ = write!(
                s,
                "apiVersion: v1\nkind: Service\nmetadata:\n  name: {name}\n  labels: {{app: {name}}}\nspec:\n  type: ClusterIP\n  selector: {{app: {name}}}\n  ports:\n    - name: http\n      port: 80\n      targetPort: http\n---\napiVersion: apps/v1\nkind: StatefulSet\nmetadata:\n  name: {name}-store\nspec:\n  serviceName: {name}\n  template:\n    spec:\n      containers:\n        - name: store\n          image: {i0}\n          volumeMounts: [{{name: data, mountPath: /data}}]\n  volumeClaimTemplates:\n    - metadata: {{name: data}}\n      spec:\n        accessModes: [ReadWriteOnce]\n        resources: {{requests: {{storage: 10Gi}}}}\n",
                i0 = img(rng),
            );
        }
    }
}
