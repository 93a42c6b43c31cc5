//! `cargo xtask services`: the tests' real servers, for working by hand, until Ctrl-C.

use airlock_testkit::{Auth, Containerd, Registry, RegistryOptions};
use anyhow::Context as _;
use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::iterator::Signals;

const USER: &str = "airlock";
const PASSWORD: &str = "airlock-test";

pub fn run() -> anyhow::Result<()> {
    // Register first: a signal arriving while servers start must still stop them.
    let mut signals = Signals::new([SIGINT, SIGTERM]).context("installing signal handlers")?;
    let storage = airlock_testkit::fixtures::registry_storage()?;
    let plain = Registry::with_fixtures(false, Auth::None)?;
    let tls = Registry::with_fixtures(true, Auth::None)?;
    let basic = Registry::with_fixtures(false, Auth::basic(USER, PASSWORD))?;
    let token = Registry::with_fixtures(false, Auth::token(USER, PASSWORD))?;
    let target = Registry::start(RegistryOptions::default())?;
    let containerd = Containerd::start()?;
    let ca = tls.ca_file.as_ref().expect("a TLS registry has a CA");

    eprintln!(
        "fixture registries (read-only, storage {}):",
        storage.display()
    );
    eprintln!("  plain  {}", plain.url());
    eprintln!("  tls    {}  CA {}", tls.url(), ca.display());
    eprintln!("  basic  {}  user {USER} password {PASSWORD}", basic.url());
    eprintln!(
        "  token  {}  user {USER} password {PASSWORD}  realm {}",
        token.url(),
        token.token_issuer().expect("token auth").realm
    );
    eprintln!("empty writable registry:\n  target {}", target.url());
    eprintln!("containerd:\n  socket {}", containerd.socket.display());
    eprintln!(
        "\nexample:\n  skopeo inspect --tls-verify=false docker://{}/fixtures/multi:1",
        plain.host
    );
    eprintln!("  ctr -a {} version\n", containerd.socket.display());
    println!("export AIRLOCK_REGISTRY_PLAIN={}", plain.host);
    println!("export AIRLOCK_REGISTRY_TLS={}", tls.host);
    println!("export AIRLOCK_REGISTRY_TLS_CA={}", ca.display());
    println!("export AIRLOCK_REGISTRY_BASIC={}", basic.host);
    println!("export AIRLOCK_REGISTRY_TOKEN={}", token.host);
    println!("export AIRLOCK_REGISTRY_USER={USER}");
    println!("export AIRLOCK_REGISTRY_PASSWORD={PASSWORD}");
    println!("export AIRLOCK_REGISTRY_TARGET={}", target.host);
    println!("export CONTAINERD_ADDRESS={}", containerd.socket.display());
    eprintln!("running; Ctrl-C stops everything");

    if let Some(signal) = signals.forever().next() {
        eprintln!("signal {signal}: stopping");
    }
    // Dropping stops each server and removes its directory.
    drop((plain, tls, basic, token, target, containerd));
    Ok(())
}
