//! What `airlock serve` says on stderr: start-up, one access line per request, refused blobs.

use std::net::SocketAddr;
use std::path::Path;

use airlock_serve::{AccessLog, ServeReporter};

/// Plain lines on stderr: start-up, one access line per request, refused blobs.
pub struct Lines {
    /// Only warnings and refused blobs.
    pub quiet: bool,
}

impl ServeReporter for Lines {
    fn warn(&self, message: &str) {
        eprintln!("warning: {message}");
    }

    fn image(&self, reference: &str, digest: &str) {
        if !self.quiet {
            eprintln!("serving {reference} ({digest})");
        }
    }

    fn file(&self, name: &str, digest: &str) {
        if !self.quiet {
            eprintln!("serving /files/{name} ({digest})");
        }
    }

    fn listening(&self, addr: SocketAddr, tls: bool, images: usize, repositories: usize) {
        if !self.quiet {
            let scheme = if tls { "https" } else { "http" };
            eprintln!(
                "listening on {scheme}://{addr}: {images} images in {repositories} repositories \
                 (read-only; SIGTERM or Ctrl-C stops)"
            );
        }
    }

    fn access(&self, l: &AccessLog) {
        if !self.quiet {
            eprintln!(
                "{} {} {} {} {} {}ms{}",
                l.peer,
                l.method,
                l.path,
                l.status,
                l.bytes,
                l.millis,
                if l.aborted { " aborted" } else { "" }
            );
        }
    }

    fn blob_refused(&self, digest: &str, bundle: &Path, reason: &str) {
        // Always said, even with --quiet: the bundle is damaged.
        eprintln!(
            "error: blob `{digest}` of `{}` does not match the signed manifest and will not be \
             served: {reason}\n  hint: check the bundle with `airlock verify`",
            bundle.display()
        );
    }

    fn stopping(&self) {
        if !self.quiet {
            eprintln!("stopping: no new connections; finishing responses in flight");
        }
    }
}
