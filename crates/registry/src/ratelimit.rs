//! Request budgets that registries announce: Docker Hub's `RateLimit-Limit` and
//! `RateLimit-Remaining` (`100;w=21600`: 100 requests per 21600 s window).

use std::fmt;
use std::time::Duration;

use reqwest::header::HeaderMap;

/// A registry's request budget, as its last answer carrying the headers stated it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    /// Requests allowed per window (`RateLimit-Limit`).
    pub limit: u64,
    /// Requests left in the current window (`RateLimit-Remaining`).
    pub remaining: u64,
    /// The window (`w=` in seconds), when the registry said.
    pub window: Option<Duration>,
}

impl RateLimit {
    /// The budget in `headers`, when both `RateLimit-Limit` and `RateLimit-Remaining` are
    /// there and readable.
    pub fn from_headers(headers: &HeaderMap) -> Option<RateLimit> {
        let value = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
        let (limit, window) = parse(value("ratelimit-limit")?)?;
        let (remaining, remaining_window) = parse(value("ratelimit-remaining")?)?;
        Some(RateLimit {
            limit,
            remaining,
            window: window.or(remaining_window),
        })
    }
}

/// `100;w=21600` (or `100`): the count and the window.
fn parse(text: &str) -> Option<(u64, Option<Duration>)> {
    let mut parts = text.split(';').map(str::trim);
    let count = parts.next()?.parse().ok()?;
    let window = parts
        .filter_map(|p| p.strip_prefix("w="))
        .find_map(|w| w.trim().parse().ok())
        .map(Duration::from_secs);
    Some((count, window))
}

impl fmt::Display for RateLimit {
    /// `76 of 100 requests left (per 6 h)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} of {} requests left", self.remaining, self.limit)?;
        if let Some(w) = self.window {
            write!(f, " (per {})", duration(w))?;
        }
        Ok(())
    }
}

/// `6 h`, `15 min`, `90 s`.
pub(crate) fn duration(d: Duration) -> String {
    let s = d.as_secs();
    if s >= 3600 && s.is_multiple_of(3600) {
        format!("{} h", s / 3600)
    } else if s >= 60 && s.is_multiple_of(60) {
        format!("{} min", s / 60)
    } else {
        format!("{s} s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, v.parse().unwrap());
        }
        h
    }

    #[test]
    fn reads_docker_hub_headers() {
        let h = headers(&[
            ("RateLimit-Limit", "100;w=21600"),
            ("RateLimit-Remaining", "76;w=21600"),
        ]);
        let r = RateLimit::from_headers(&h).unwrap();
        assert_eq!(
            r,
            RateLimit {
                limit: 100,
                remaining: 76,
                window: Some(Duration::from_secs(21600))
            }
        );
        assert_eq!(r.to_string(), "76 of 100 requests left (per 6 h)");
    }

    #[test]
    fn without_a_window_or_with_junk() {
        let h = headers(&[("RateLimit-Limit", "5000"), ("RateLimit-Remaining", "0")]);
        assert_eq!(
            RateLimit::from_headers(&h).unwrap().to_string(),
            "0 of 5000 requests left"
        );
        assert_eq!(
            RateLimit::from_headers(&headers(&[("RateLimit-Limit", "5")])),
            None
        );
        let junk = headers(&[("RateLimit-Limit", "many"), ("RateLimit-Remaining", "3")]);
        assert_eq!(RateLimit::from_headers(&junk), None);
        assert_eq!(duration(Duration::from_secs(90)), "90 s");
        assert_eq!(duration(Duration::from_secs(900)), "15 min");
    }
}
