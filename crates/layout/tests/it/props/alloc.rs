//! Peak memory of the test process, for tests of bounded memory (Linux: `/proc/self`).
//!
//! The peak is process-wide: tests running at the same time add their (small) use, so
//! bounds checked with [`Peak`] are generous.

/// Measures the peak resident size above the level when it was made.
pub struct Peak {
    base: u64,
}

fn status_kib(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("no {field} in /proc/self/status"))
}

impl Peak {
    pub fn start() -> Peak {
        // "5" resets the peak resident size (VmHWM) to the current one.
        std::fs::write("/proc/self/clear_refs", "5").expect("/proc/self/clear_refs");
        Peak {
            base: status_kib("VmRSS:") << 10,
        }
    }

    /// Peak resident bytes since [`Peak::start`], above the level then.
    pub fn bytes(&self) -> u64 {
        (status_kib("VmHWM:") << 10).saturating_sub(self.base)
    }
}
