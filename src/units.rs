//! Units of the configuration. The runtime structs hold bytes and
//! nanoseconds; their TOML keys say KiB, MiB or seconds (`*_kib`,
//! `*_mib`, `*_secs`). These `serde(with)` modules convert between the two
//! when a configuration is read or written, the one place units change.

use serde::{Deserialize, Deserializer, Serializer};

const NANOS_PER_SEC: u64 = 1_000_000_000;

/// Bytes held as `usize`, written in KiB.
pub mod kib {
    use super::*;

    /// Writes bytes as KiB.
    pub fn serialize<S: Serializer>(bytes: &usize, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64((*bytes >> 10) as u64)
    }

    /// Reads KiB as bytes.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<usize, D::Error> {
        let kib = u64::deserialize(d)?;
        Ok(usize::try_from(kib.saturating_mul(1 << 10)).unwrap_or(usize::MAX))
    }
}

/// Bytes held as `usize`, written in MiB.
pub mod mib {
    use super::*;

    /// Writes bytes as MiB.
    pub fn serialize<S: Serializer>(bytes: &usize, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64((*bytes >> 20) as u64)
    }

    /// Reads MiB as bytes.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<usize, D::Error> {
        let mib = u64::deserialize(d)?;
        Ok(usize::try_from(mib.saturating_mul(1 << 20)).unwrap_or(usize::MAX))
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
