//! `mirador export`: one day of the sensor's Parquet output, compacted and
//! shipped to a data lake.
//!
//! For each table (`flows`, `detections`, `services`) and each sensor found in the
//! day's hourly files, [`compact`] rewrites the rows into a few large
//! files (`part-N.parquet`, about `target_bytes` each, sorted by time) in a
//! staging folder under the output (`OUT/.export/DATE/`), and checks that
//! they hold as many rows as the inputs. [`upload`] then puts them at
//! `URL/TABLE/date=DATE/sensor=NAME/part-N.parquet` through `object_store`
//! (`s3://`, `gs://`, `az://`, `file://`; credentials from the usual
//! environment variables), removes objects of an earlier export of that day
//! that the new one does not have, and writes `_manifest.json` beside the
//! parts last (the leading `_` keeps Spark, Hive and Trino from reading it
//! as data). Only then is the day marked exported locally
//! (`OUT/.exported/DATE.json`), and, when asked, its files removed.
//!
//! Re-running a day replaces it: the parts get the same names, and a part
//! already uploaded whole (its S3 ETag equals its MD5) is not sent again,
//! so an interrupted export resumes where it stopped. A day of an older
//! lake, whose manifest was `manifest.json`, resumes alike, and its old
//! manifest goes with the other stale objects. The local files are
//! only read until the export has succeeded.

mod compact;
mod upload;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

pub use compact::{compact, Compacted, Part};
pub use upload::{open_store, upload};

use crate::output::schema::SCHEMA_VERSION;

/// The tables a day is exported for.
pub const TABLES: [&str; 3] = ["flows", "detections", "services"];

/// What to export.
#[derive(Debug, Clone)]
pub struct ExportRequest {
    /// The day, `YYYY-MM-DD`.
    pub date: String,
    /// The sensor's output folder.
    pub from: PathBuf,
    /// Destination: `s3://bucket/prefix`, `gs://...`, `az://...`, `file:///...`.
    pub to: String,
    /// Size a compacted file grows to before the next one starts, bytes.
    pub target_bytes: u64,
    /// Remove the day's local files once it is exported.
    pub delete: bool,
    /// Settings of the destination's client (`object_store` keys), over
    /// those of the environment.
    pub options: BTreeMap<String, String>,
}

/// The description of one exported (table, day, sensor), written beside
/// its parts as `_manifest.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// `mirador.schema_version` of the files.
    pub schema_version: String,
    /// The table.
    pub table: String,
    /// The day.
    pub date: String,
    /// The sensor.
    pub sensor: String,
    /// Rows in all parts (equal to the rows of the hourly inputs).
    pub rows: u64,
    /// The parts.
    pub files: Vec<ManifestFile>,
    /// The hourly files they were made from, relative to the output folder.
    pub sources: Vec<String>,
}

/// One part in a manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManifestFile {
    /// File name (`part-N.parquet`).
    pub name: String,
    /// Rows.
    pub rows: u64,
    /// Bytes.
    pub bytes: u64,
    /// SHA-256 of the file, hex.
    pub sha256: String,
}

impl Manifest {
    fn new(date: &str, compacted: &Compacted, from: &Path) -> Self {
        Self {
            schema_version: SCHEMA_VERSION.to_owned(),
            table: compacted.table.to_owned(),
            date: date.to_owned(),
            sensor: compacted.sensor.clone(),
            rows: compacted.rows,
            files: compacted
                .parts
                .iter()
                .map(|p| ManifestFile {
                    name: p.name.clone(),
                    rows: p.rows,
                    bytes: p.bytes,
                    sha256: p.sha256.clone(),
                })
                .collect(),
            sources: compacted
                .sources
                .iter()
                .map(|s| s.strip_prefix(from).unwrap_or(s).display().to_string())
                .collect(),
        }
    }
}

/// What an export did.
#[derive(Debug, Clone, Default)]
pub struct ExportReport {
    /// A manifest per exported (table, sensor).
    pub manifests: Vec<Manifest>,
    /// Parts uploaded.
    pub uploaded: usize,
    /// Parts already at the destination whole (resumed).
    pub skipped: usize,
    /// Objects of an earlier export removed.
    pub removed: usize,
    /// Local files removed (with `delete`).
    pub deleted_local: usize,
}

/// Why an export failed; the local files are untouched whenever it does.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    /// The date is not `YYYY-MM-DD` (or `yesterday`/`today`).
    #[error("--date {0:?}: expected YYYY-MM-DD, yesterday or today")]
    Date(String),
    /// Nothing was written that day.
    #[error("no Parquet files for {date} under {dir}")]
    NoData {
        /// The day.
        date: String,
        /// The output folder.
        dir: PathBuf,
    },
    /// A local file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// A Parquet file could not be read or written.
    #[error("{path}: parquet: {source}")]
    Parquet {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: parquet::errors::ParquetError,
    },
    /// Rows could not be sorted or combined.
    #[error("{path}: arrow: {source}")]
    Arrow {
        /// The file being made.
        path: PathBuf,
        /// The cause.
        source: arrow::error::ArrowError,
    },
    /// The compacted files do not hold the inputs' rows.
    #[error("{table} of {sensor}: the compacted files hold {got} rows, the inputs {expected}")]
    RowCount {
        /// The table.
        table: String,
        /// The sensor.
        sensor: String,
        /// Rows of the inputs.
        expected: u64,
        /// Rows of the outputs.
        got: u64,
    },
    /// The destination URL is not one `object_store` can open.
    #[error("--to {url:?}: {reason}")]
    Destination {
        /// The URL.
        url: String,
        /// Why.
        reason: String,
    },
    /// The destination refused or could not be reached.
    #[error("{url}: {source}")]
    Store {
        /// Where the failing object is.
        url: String,
        /// The cause.
        source: object_store::Error,
    },
}

/// `YYYY-MM-DD` for `date` (`yesterday` and `today` in UTC as of `now_secs`).
pub fn resolve_date(date: &str, now_secs: u64) -> Result<String, ExportError> {
    let day = |secs: u64| crate::utc::UtcTime::from_unix_secs(secs).date();
    match date {
        "today" => return Ok(day(now_secs)),
        "yesterday" => return Ok(day(now_secs.saturating_sub(86_400))),
        _ => {}
    }
    let bytes = date.as_bytes();
    let valid = bytes.len() == 10
        && bytes[4] == b'-'
        && bytes[7] == b'-'
        && bytes
            .iter()
            .enumerate()
            .all(|(i, b)| i == 4 || i == 7 || b.is_ascii_digit())
        && (1..=12).contains(&date[5..7].parse::<u32>().unwrap_or(0))
        && (1..=31).contains(&date[8..10].parse::<u32>().unwrap_or(0));
    if valid {
        Ok(date.to_owned())
    } else {
        Err(ExportError::Date(date.to_owned()))
    }
}

/// Exports one day: compacts, uploads, then marks it exported.
pub fn export(request: &ExportRequest) -> Result<ExportReport, ExportError> {
    let staging = request.from.join(".export").join(&request.date);
    let mut compacted = Vec::new();
    for table in TABLES {
        let day = request
            .from
            .join(table)
            .join(format!("date={}", request.date));
        if day.is_dir() {
            compacted.extend(compact(
                table,
                &day,
                &staging.join(table),
                request.target_bytes,
            )?);
        }
    }
    if compacted.is_empty() {
        return Err(ExportError::NoData {
            date: request.date.clone(),
            dir: request.from.clone(),
        });
    }
    let manifests: Vec<Manifest> = compacted
        .iter()
        .map(|c| Manifest::new(&request.date, c, &request.from))
        .collect();
    let (store, base) = open_store(&request.to, &request.options)?;
    let mut report = upload(&*store, &base, &request.to, &compacted, &manifests)?;
    let marker_dir = request.from.join(".exported");
    std::fs::create_dir_all(&marker_dir).map_err(io(&marker_dir))?;
    let marker = marker_dir.join(format!("{}.json", request.date));
    let record = serde_json::json!({ "to": request.to, "manifests": manifests });
    let text = serde_json::to_string_pretty(&record).unwrap_or_default();
    let temp = marker.with_extension("json.tmp");
    std::fs::write(&temp, text).map_err(io(&temp))?;
    std::fs::rename(&temp, &marker).map_err(io(&marker))?;
    std::fs::remove_dir_all(&staging).map_err(io(&staging))?;
    if request.delete {
        // Only what was exported: a file still being written that day stays.
        for source in compacted.iter().flat_map(|c| &c.sources) {
            std::fs::remove_file(source).map_err(io(source))?;
            report.deleted_local += 1;
            let hour = source.parent();
            for dir in [hour, hour.and_then(Path::parent)].into_iter().flatten() {
                // Empty folders go too; one still holding files stays.
                let _ = std::fs::remove_dir(dir);
            }
        }
    }
    report.manifests = manifests;
    Ok(report)
}

/// Names `path` in an I/O error of the export.
fn io(path: &Path) -> impl Fn(std::io::Error) -> ExportError + '_ {
    move |source| ExportError::Io {
        path: path.to_owned(),
        source,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_are_days_or_yesterday_and_today() {
        let now = 1_709_294_400; // 2024-03-01T12:00:00Z
        assert_eq!(resolve_date("today", now).unwrap(), "2024-03-01");
        assert_eq!(resolve_date("yesterday", now).unwrap(), "2024-02-29");
        assert_eq!(resolve_date("2024-02-29", now).unwrap(), "2024-02-29");
        for bad in [
            "2024-2-29",
            "2024-13-01",
            "2024-02-32",
            "tomorrow",
            "2024/02/29",
        ] {
            assert!(resolve_date(bad, now).is_err(), "{bad}");
        }
    }
}
