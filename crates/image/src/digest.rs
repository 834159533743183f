//! sha256 digests: parsing (untrusted strings in, typed values out) and
//! hashing readers/writers used while blobs stream in.

use std::fmt;
use std::io::{self, Read, Write};

use sha2::{Digest as _, Sha256};

use crate::error::{Error, Result};

/// A validated `sha256:<64 lowercase hex>` digest. Only this form is
/// accepted, so the hex part is always safe to use as a file name.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Digest {
    hex: String,
}

impl Digest {
    pub fn parse(s: &str) -> Result<Digest> {
        let Some(hex) = s.strip_prefix("sha256:") else {
            if let Some((alg, _)) = s.split_once(':') {
                return Err(Error::Unsupported(format!(
                    "digest algorithm {alg:?} (only sha256 is supported)"
                )));
            }
            return Err(Error::invalid("digest", format!("{s:?} has no algorithm")));
        };
        Self::from_hex(hex).ok_or_else(|| Error::invalid("digest", format!("{s:?}")))
    }

    pub fn from_hex(hex: &str) -> Option<Digest> {
        (hex.len() == 64 && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))).then(
            || Digest {
                hex: hex.to_owned(),
            },
        )
    }

    pub fn of(bytes: &[u8]) -> Digest {
        Digest {
            hex: hex::encode(Sha256::digest(bytes)),
        }
    }

    /// From a raw 32-byte sha256 output.
    pub fn from_hash(raw: &[u8]) -> Digest {
        Digest {
            hex: hex::encode(raw),
        }
    }

    pub fn hex(&self) -> &str {
        &self.hex
    }

    /// The 12-character short form used as an image ID.
    pub fn short(&self) -> &str {
        &self.hex[..12]
    }

    pub fn to_oci(&self) -> oci_spec::image::Digest {
        // A sha256 digest we validated is always a valid oci-spec digest.
        self.to_string()
            .parse()
            .unwrap_or_else(|_| unreachable!("validated sha256 digest"))
    }

    pub fn from_oci(d: &oci_spec::image::Digest) -> Result<Digest> {
        Digest::parse(d.as_ref())
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "sha256:{}", self.hex)
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl serde::Serialize for Digest {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Digest {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Digest, D::Error> {
        let s = String::deserialize(d)?;
        Digest::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// Counts and hashes everything read through it.
pub struct HashingReader<R> {
    inner: R,
    hasher: Sha256,
    count: u64,
}

impl<R: Read> HashingReader<R> {
    pub fn new(inner: R) -> Self {
        HashingReader {
            inner,
            hasher: Sha256::new(),
            count: 0,
        }
    }

    pub fn count(&self) -> u64 {
        self.count
    }

    pub fn finish(self) -> (Digest, u64) {
        (
            Digest {
                hex: hex::encode(self.hasher.finalize()),
            },
            self.count,
        )
    }
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.count += n as u64;
        Ok(n)
    }
}

/// Counts and hashes everything written through it.
pub struct HashingWriter<W> {
    inner: W,
    hasher: Sha256,
    count: u64,
}

impl<W: Write> HashingWriter<W> {
    pub fn new(inner: W) -> Self {
        HashingWriter {
            inner,
            hasher: Sha256::new(),
            count: 0,
        }
    }

    pub fn finish(self) -> (W, Digest, u64) {
        (
            self.inner,
            Digest {
                hex: hex::encode(self.hasher.finalize()),
            },
            self.count,
        )
    }
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.count += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Check an observed digest and size against what a descriptor promised.
pub fn verify(
    what: &str,
    expected: &Digest,
    expected_size: u64,
    got: &Digest,
    size: u64,
) -> Result<()> {
    if size != expected_size {
        return Err(Error::SizeMismatch {
            what: what.to_owned(),
            expected: expected_size,
            actual: size,
        });
    }
    if got != expected {
        return Err(Error::DigestMismatch {
            what: what.to_owned(),
            expected: expected.to_string(),
            actual: got.to_string(),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_only_sha256_hex() {
        let ok = format!("sha256:{}", "a".repeat(64));
        assert_eq!(Digest::parse(&ok).map(|d| d.to_string()).ok(), Some(ok));
        assert!(Digest::parse("sha256:../../etc/passwd").is_err());
        assert!(Digest::parse(&format!("sha256:{}", "A".repeat(64))).is_err());
        assert!(Digest::parse(&format!("sha256:{}", "a".repeat(63))).is_err());
        assert!(matches!(
            Digest::parse(&format!("sha512:{}", "a".repeat(128))),
            Err(Error::Unsupported(_))
        ));
        assert!(Digest::parse("").is_err());
    }

    #[test]
    fn hashing_reader_matches_one_shot() {
        let data = b"hello berth";
        let mut r = HashingReader::new(&data[..]);
        let mut out = Vec::new();
        r.read_to_end(&mut out).ok();
        let (d, n) = r.finish();
        assert_eq!(n, data.len() as u64);
        assert_eq!(d, Digest::of(data));
    }
}
