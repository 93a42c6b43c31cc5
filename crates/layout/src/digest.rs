//! sha256 content digests as used by OCI (`sha256:<hex>`).

use std::fmt;
use std::str::FromStr;

use sha2::Digest as _;

use crate::error::Error;

const PREFIX: &str = "sha256:";
const HEX_LEN: usize = 64;

/// A `sha256:<64 lowercase hex digits>` content digest.
///
/// Only sha256 is accepted: it is what every registry and OCI layout in practice uses, and
/// one algorithm keeps blob paths and the store simple.
///
/// Ordering is the lexicographic order of the hex string, which equals the order of the raw
/// hash bytes.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Digest {
    // Invariant: exactly 64 lowercase hex digits.
    hex: String,
}

impl Digest {
    /// Parses `sha256:<64 lowercase hex digits>`; anything else is an error naming the string.
    pub fn parse(s: &str) -> Result<Digest, Error> {
        let invalid = |reason| Error::InvalidDigest {
            input: s.to_owned(),
            reason,
        };
        let hex = s
            .strip_prefix(PREFIX)
            .ok_or_else(|| invalid("expected the `sha256:` prefix"))?;
        if hex.len() != HEX_LEN {
            return Err(invalid("expected 64 hex digits after `sha256:`"));
        }
        if !hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
            return Err(invalid(
                "expected only lowercase hex digits after `sha256:`",
            ));
        }
        Ok(Digest {
            hex: hex.to_owned(),
        })
    }

    /// The sha256 digest of `data`.
    pub fn of_bytes(data: &[u8]) -> Digest {
        let mut h = Hasher::new();
        h.update(data);
        h.finish()
    }

    /// The 64 lowercase hex digits, without the `sha256:` prefix.
    pub fn hex(&self) -> &str {
        &self.hex
    }

    /// The path of this blob inside an OCI image layout: `blobs/sha256/<hex>`.
    pub fn blob_path(&self) -> String {
        format!("blobs/sha256/{}", self.hex)
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{PREFIX}{}", self.hex)
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Digest({self})")
    }
}

impl FromStr for Digest {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Digest::parse(s)
    }
}

impl serde::Serialize for Digest {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Digest {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = Digest;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a `sha256:<hex>` digest string")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Digest, E> {
                Digest::parse(v).map_err(E::custom)
            }
        }
        deserializer.deserialize_str(Visitor)
    }
}

/// Incremental sha256, producing a [`Digest`].
///
/// Also implements [`std::io::Write`], so `std::io::copy(&mut reader, &mut hasher)` hashes a
/// stream.
#[derive(Clone, Default)]
pub struct Hasher {
    inner: sha2::Sha256,
}

impl Hasher {
    /// A hasher over no data yet.
    pub fn new() -> Hasher {
        Hasher::default()
    }

    /// Feeds `data`.
    pub fn update(&mut self, data: &[u8]) {
        self.inner.update(data);
    }

    /// The digest of everything fed so far.
    pub fn finish(self) -> Digest {
        Digest {
            hex: hex::encode(self.inner.finalize()),
        }
    }
}

impl fmt::Debug for Hasher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Hasher")
    }
}

impl std::io::Write for Hasher {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.update(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EMPTY: &str = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    #[test]
    fn parse_good() {
        let d = Digest::parse(EMPTY).unwrap();
        assert_eq!(d.to_string(), EMPTY);
        assert_eq!(d.hex(), &EMPTY[7..]);
        assert_eq!(d.blob_path(), format!("blobs/sha256/{}", &EMPTY[7..]));
        assert_eq!(EMPTY.parse::<Digest>().unwrap(), d);
        assert_eq!(Digest::of_bytes(b""), d);
    }

    #[test]
    fn parse_bad() {
        let upper = EMPTY.to_uppercase().replace("SHA256", "sha256");
        let short = &EMPTY[..EMPTY.len() - 1];
        let long = format!("{EMPTY}0");
        let sha512 = EMPTY.replace("sha256", "sha512");
        let no_prefix = &EMPTY[7..];
        let non_hex = EMPTY.replace('e', "g");
        for bad in [
            "", "sha256:", short, &long, &sha512, no_prefix, &upper, &non_hex,
        ] {
            let err = Digest::parse(bad).unwrap_err();
            assert!(
                err.to_string().contains(&format!("`{bad}`")),
                "error must name the input: {err}"
            );
        }
    }

    #[test]
    fn hasher_is_incremental() {
        let mut h = Hasher::new();
        h.update(b"hello ");
        h.update(b"world");
        assert_eq!(h.finish(), Digest::of_bytes(b"hello world"));
        assert_eq!(
            Digest::of_bytes(b"hello world").hex(),
            "b94d27b9934d3e08a52e52d7da7dabfac484efe37a5380ee9088f7ace2efcde9"
        );
    }

    #[test]
    fn serde_as_string() {
        let d = Digest::parse(EMPTY).unwrap();
        let json = serde_json::to_string(&d).unwrap();
        assert_eq!(json, format!("\"{EMPTY}\""));
        assert_eq!(serde_json::from_str::<Digest>(&json).unwrap(), d);
        let err = serde_json::from_str::<Digest>("\"md5:00\"").unwrap_err();
        assert!(err.to_string().contains("`md5:00`"), "{err}");
    }

    #[test]
    fn ordering_follows_hex() {
        let a = Digest::of_bytes(b"a");
        let b = Digest::of_bytes(b"b");
        assert_eq!(a.cmp(&b), a.hex().cmp(b.hex()));
    }
}
