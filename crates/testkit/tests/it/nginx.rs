use std::time::Duration;

use airlock_testkit::{Auth, Nginx, Registry, RegistryOptions};

/// nginx proxies `/v2/` over TLS with the upstream's answers, refuses bodies over its limit
/// with 413, keeps everything in its own directory, and is gone after drop.
#[test]
fn nginx_proxies_the_registry_and_limits_bodies() {
    let upstream = Registry::start(RegistryOptions {
        tls: false,
        auth: Auth::None,
        storage: None,
    })
    .unwrap_or_else(|e| panic!("{e:#}"));
    let nginx = Nginx::start_tls_proxy(&upstream, "1m").unwrap_or_else(|e| panic!("{e:#}"));
    assert!(nginx.host.starts_with("127.0.0.1:"));
    let pem = std::fs::read(&nginx.ca_file).unwrap();
    let client = reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(10))
        .no_proxy()
        .tls_built_in_root_certs(false)
        .add_root_certificate(reqwest::Certificate::from_pem(&pem).unwrap())
        .build()
        .unwrap();

    let resp = client.get(format!("{}/v2/", nginx.url())).send().unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(
        resp.headers()["docker-distribution-api-version"],
        "registry/2.0"
    );

    // The registry builds its `Location` from the `Host` nginx passes on: back through nginx.
    let resp = client
        .post(format!("{}/v2/t/blobs/uploads/", nginx.url()))
        .send()
        .unwrap();
    assert_eq!(resp.status(), 202);
    let location = resp.headers()["location"].to_str().unwrap();
    assert!(
        location.starts_with(&format!("https://{}/v2/t/blobs/uploads/", nginx.host)),
        "{location}"
    );
    let resp = client
        .patch(location)
        .header("content-type", "application/octet-stream")
        .body(vec![0u8; 2 * 1024 * 1024])
        .send()
        .unwrap();
    assert_eq!(resp.status(), 413);

    let pid = nginx.pid().unwrap();
    let dir = nginx.error_log().parent().unwrap().to_path_buf();
    assert!(nginx.access_log().is_file());
    drop(nginx);
    assert!(!dir.exists());
    assert!(!std::path::Path::new(&format!("/proc/{pid}")).exists());
}
