//! Units of the configuration. The runtime structs hold bytes and
//! nanoseconds; their TOML keys say KiB, MiB or seconds (`*_kib`,
//! `*_mib`, `*_secs`). These `serde(with)` modules convert between the two
//! when a configuration is read or written, the one place units change.

use serde::{Deserialize, Deserializer, Serializer};

const NANOS_PER_SEC: u64 = 1_000_000_000;

/// Writes bytes in units of `1 << shift` bytes.
fn write_bytes<S: Serializer>(bytes: usize, shift: u32, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_u64((bytes >> shift) as u64)
}

/// Reads units of `1 << shift` bytes as bytes.
fn read_bytes<'de, D: Deserializer<'de>>(d: D, shift: u32) -> Result<usize, D::Error> {
    let units = u64::deserialize(d)?;
    Ok(usize::try_from(units.saturating_mul(1 << shift)).unwrap_or(usize::MAX))
}

/// Bytes held as `usize`, written in KiB.
pub mod kib {
    use super::*;

    /// Writes bytes as KiB.
    pub fn serialize<S: Serializer>(bytes: &usize, s: S) -> Result<S::Ok, S::Error> {
        write_bytes(*bytes, 10, s)
    }

    /// Reads KiB as bytes.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<usize, D::Error> {
        read_bytes(d, 10)
    }
}

/// Bytes held as `usize`, written in MiB.
pub mod mib {
    use super::*;

    /// Writes bytes as MiB.
    pub fn serialize<S: Serializer>(bytes: &usize, s: S) -> Result<S::Ok, S::Error> {
        write_bytes(*bytes, 20, s)
    }

    /// Reads MiB as bytes.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<usize, D::Error> {
        read_bytes(d, 20)
    }
}

/// Nanoseconds held as `u64`, written in seconds.
pub mod secs {
    use super::*;

    /// Writes nanoseconds as seconds.
    pub fn serialize<S: Serializer>(nanos: &u64, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(*nanos / NANOS_PER_SEC)
    }

    /// Reads seconds as nanoseconds.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
        Ok(u64::deserialize(d)?.saturating_mul(NANOS_PER_SEC))
    }
}
