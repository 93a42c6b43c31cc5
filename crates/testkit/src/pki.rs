//! A private CA and a server certificate for `127.0.0.1` / `localhost`, made with the openssl CLI.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::Context as _;

use crate::{require_tool, run};

/// A private certificate authority and a server certificate it signed.
#[derive(Debug, Clone)]
pub struct Pki {
    /// The directory holding every file below.
    pub dir: PathBuf,
    /// `ca.crt`: the CA certificate (PEM), what a client must trust.
    pub ca_cert: PathBuf,
    /// `server.crt`: valid for `IP:127.0.0.1` and `DNS:localhost` (PEM).
    pub server_cert: PathBuf,
    /// `server.key`: the server's private key (PEM, unencrypted).
    pub server_key: PathBuf,
}

impl Pki {
    /// Makes a new CA (`basicConstraints=critical,CA:TRUE`) and a server certificate in `dir`
    /// (created if needed). Keys are ECDSA P-256: fast to make, and accepted by Go, rustls and
    /// OpenSSL clients alike.
    pub fn generate(dir: &Path) -> anyhow::Result<Pki> {
        let openssl = require_tool("openssl")?;
        std::fs::create_dir_all(dir).with_context(|| format!("creating `{}`", dir.display()))?;
        let pki = Pki {
            dir: dir.to_path_buf(),
            ca_cert: dir.join("ca.crt"),
            server_cert: dir.join("server.crt"),
            server_key: dir.join("server.key"),
        };
        let ca_key = dir.join("ca.key");
        let csr = dir.join("server.csr");
        let ext = dir.join("server.ext");
        std::fs::write(
            &ext,
            "basicConstraints=critical,CA:FALSE\n\
             keyUsage=critical,digitalSignature,keyEncipherment\n\
             extendedKeyUsage=serverAuth\n\
             subjectAltName=IP:127.0.0.1,DNS:localhost\n",
        )?;
        let ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"];
        run(Command::new(&openssl)
            .args(["req", "-x509", "-nodes", "-days", "3650", "-sha256"])
            .args(ec)
            .args(["-subj", "/CN=airlock test CA"])
            .args(["-addext", "basicConstraints=critical,CA:TRUE"])
            .args(["-addext", "keyUsage=critical,keyCertSign,cRLSign"])
            .arg("-keyout")
            .arg(&ca_key)
            .arg("-out")
            .arg(&pki.ca_cert))?;
        run(Command::new(&openssl)
            .args(["req", "-nodes", "-sha256"])
            .args(ec)
            .args(["-subj", "/CN=localhost"])
            .arg("-keyout")
            .arg(&pki.server_key)
            .arg("-out")
            .arg(&csr))?;
        let serial = format!("0x{}", hex::encode(crate::token::random_bytes::<8>()));
        run(Command::new(&openssl)
            .args([
                "x509",
                "-req",
                "-days",
                "3650",
                "-sha256",
                "-set_serial",
                &serial,
            ])
            .arg("-in")
            .arg(&csr)
            .arg("-CA")
            .arg(&pki.ca_cert)
            .arg("-CAkey")
            .arg(&ca_key)
            .arg("-extfile")
            .arg(&ext)
            .arg("-out")
            .arg(&pki.server_cert))?;
        Ok(pki)
    }
}
