//! The tar header parser of the bundle readers: one ustar (or GNU) header block, its checksum,
//! and the names a bundle may hold.

use crate::digest::Digest;
use crate::format::TAR_BLOCK;

/// One parsed tar header block.
#[derive(Debug)]
pub(crate) struct Header {
    pub(crate) path: String,
    pub(crate) size: u64,
    /// What the entry is, when it is not a regular file.
    pub(crate) not_regular: Option<&'static str>,
    pub(crate) link: Option<String>,
}

/// Why a 512-byte block is not a readable tar header.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TarHeaderDefect {
    /// The checksum field is not an octal number.
    #[error("unreadable checksum field")]
    UnreadableChecksum,
    /// The checksum field does not match the block's bytes.
    #[error("checksum {stored:o} does not match the header's sum {sum:o}")]
    Checksum {
        /// The checksum the header stores.
        stored: u64,
        /// The sum of the header's bytes.
        sum: u64,
    },
    /// A GNU base-256 size above 2^64.
    #[error("size of entry `{path}` is out of range")]
    SizeOutOfRange {
        /// The entry's path.
        path: String,
    },
    /// The size field is not an octal number.
    #[error("unreadable size of entry `{path}`")]
    UnreadableSize {
        /// The entry's path.
        path: String,
    },
    /// A zero block that is not followed by the second end block.
    #[error("a lone zero block inside the archive")]
    LoneZeroBlock,
}

/// How a tar header differs from the entry the (unsigned) frame index lists there (see
/// [`check_entry_header`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EntryHeaderMismatch {
    /// The block is no readable header.
    #[error(transparent)]
    Header(#[from] TarHeaderDefect),
    /// The header is of a link, device, directory, ….
    #[error("it is a {kind}, not a regular file")]
    NotRegular {
        /// What it is.
        kind: &'static str,
    },
    /// The header names another path.
    #[error("it names `{}`", .found.escape_debug())]
    OtherPath {
        /// The path in the header.
        found: String,
    },
    /// The header gives another size.
    #[error("it says {size} bytes")]
    OtherSize {
        /// The size in the header.
        size: u64,
    },
}

fn field_str(b: &[u8]) -> &[u8] {
    let end = b.iter().position(|&c| c == 0).unwrap_or(b.len());
    &b[..end]
}

fn parse_octal(b: &[u8]) -> Option<u64> {
    let s = std::str::from_utf8(field_str(b)).ok()?;
    let s = s.trim_matches(|c| c == ' ');
    if s.is_empty() {
        return Some(0);
    }
    u64::from_str_radix(s, 8).ok()
}

/// A ustar (or GNU) header block; the checksum is checked.
pub(crate) fn parse_header(block: &[u8; TAR_BLOCK as usize]) -> Result<Header, TarHeaderDefect> {
    let stored = parse_octal(&block[148..156]).ok_or(TarHeaderDefect::UnreadableChecksum)?;
    let sum: u64 = block
        .iter()
        .enumerate()
        .map(|(i, &b)| {
            if (148..156).contains(&i) {
                32
            } else {
                u64::from(b)
            }
        })
        .sum();
    if sum != stored {
        return Err(TarHeaderDefect::Checksum { stored, sum });
    }
    let name = String::from_utf8_lossy(field_str(&block[0..100])).into_owned();
    let posix = &block[257..263] == b"ustar\0";
    let prefix = if posix {
        String::from_utf8_lossy(field_str(&block[345..500])).into_owned()
    } else {
        String::new()
    };
    let path = if prefix.is_empty() {
        name
    } else {
        format!("{prefix}/{name}")
    };
    let size_field = &block[124..136];
    let size = if size_field[0] & 0x80 != 0 {
        // GNU base-256, as written for entries of 8 GiB and more.
        if size_field[1..4].iter().any(|&b| b != 0) || size_field[0] != 0x80 {
            return Err(TarHeaderDefect::SizeOutOfRange { path });
        }
        size_field[4..]
            .iter()
            .fold(0u64, |n, &b| (n << 8) | u64::from(b))
    } else {
        match parse_octal(size_field) {
            Some(size) => size,
            None => return Err(TarHeaderDefect::UnreadableSize { path }),
        }
    };
    let link = || Some(String::from_utf8_lossy(field_str(&block[157..257])).into_owned());
    let (not_regular, link) = match block[156] {
        b'0' | 0 => (None, None),
        b'1' => (Some("hard link"), link()),
        b'2' => (Some("symbolic link"), link()),
        b'3' => (Some("character device"), None),
        b'4' => (Some("block device"), None),
        b'5' => (Some("directory"), None),
        b'6' => (Some("FIFO"), None),
        b'7' => (Some("contiguous file"), None),
        b'x' | b'g' => (Some("pax extended header"), None),
        b'L' | b'K' => (Some("GNU long name record"), None),
        _ => (Some("special entry"), None),
    };
    Ok(Header {
        path,
        size,
        not_regular,
        link,
    })
}

/// Checks that `block` is the tar header of the regular-file entry `path` of `size` bytes, with
/// a checksum that holds: what a reader that seeks to an entry through the (unsigned) frame
/// index checks before it trusts the bytes after it. The error says what differs.
pub fn check_entry_header(
    block: &[u8; TAR_BLOCK as usize],
    path: &str,
    size: u64,
) -> Result<(), EntryHeaderMismatch> {
    let h = parse_header(block)?;
    if let Some(kind) = h.not_regular {
        return Err(EntryHeaderMismatch::NotRegular { kind });
    }
    if h.path != path {
        return Err(EntryHeaderMismatch::OtherPath { found: h.path });
    }
    if h.size != size {
        return Err(EntryHeaderMismatch::OtherSize { size: h.size });
    }
    Ok(())
}

/// The digest of a `blobs/sha256/<64 lowercase hex>` path.
pub(crate) fn blob_digest(path: &str) -> Option<Digest> {
    let hex = path.strip_prefix("blobs/sha256/")?;
    Digest::parse(&format!("sha256:{hex}")).ok()
}

/// Why a path is unsafe to unpack, if it is.
pub(crate) fn unsafe_path(path: &str) -> Option<&'static str> {
    if path.starts_with('/') || path.starts_with('\\') || path.as_bytes().get(1) == Some(&b':') {
        return Some("has an absolute path");
    }
    if path.split(['/', '\\']).any(|c| c == "..") {
        return Some("climbs out of the bundle with `..`");
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_refuse_special_entries_and_escaping_names() {
        let mut h = tar::Header::new_ustar();
        h.as_old_mut().name[..4].copy_from_slice(b"../x");
        h.set_size(0);
        h.set_entry_type(tar::EntryType::Fifo);
        h.set_cksum();
        let parsed = parse_header(h.as_bytes()).unwrap();
        assert_eq!(parsed.path, "../x");
        assert_eq!(parsed.not_regular, Some("FIFO"));
        assert!(unsafe_path("../x").is_some());
        assert!(unsafe_path("a/../../x").is_some());
        assert!(unsafe_path("/x").is_some());
        assert!(unsafe_path("blobs/sha256/ab").is_none());

        let mut block = *h.as_bytes();
        block[0] ^= 1;
        assert!(parse_header(&block)
            .unwrap_err()
            .to_string()
            .contains("checksum"));
    }
}
