//! Upload: compacted parts and their manifest to an object store.
//!
//! Parts go first, then objects of an earlier export of the same day that
//! the new one does not have are removed (the `manifest.json` of exports
//! older than [`MANIFEST`]'s name among them), and the manifest goes last,
//! so a manifest always describes complete parts. A part already at the
//! destination with an ETag equal to its MD5 (an S3 single upload of the
//! same bytes) is not sent again.

use std::collections::BTreeMap;
use std::time::Duration;

use futures::TryStreamExt;
use object_store::aws::AmazonS3Builder;
use object_store::azure::MicrosoftAzureBuilder;
use object_store::gcp::GoogleCloudStorageBuilder;
use object_store::local::LocalFileSystem;
use object_store::path::{Path as ObjectPath, PathPart};
use object_store::{BackoffConfig, ObjectStore, PutPayload, RetryConfig};

use super::{Compacted, ExportError, ExportReport, Manifest};

/// Name of the manifest beside the parts. Spark, Hive and Trino read every
/// file of a table's folder as data except those whose names start with
/// `_` or `.`, so the manifest's does.
pub const MANIFEST: &str = "_manifest.json";

/// Retries of a failing request: a few, within half a minute, so that an
/// unreachable destination fails the export soon (the next run resumes).
fn retry() -> RetryConfig {
    RetryConfig {
        backoff: BackoffConfig::default(),
        max_retries: 3,
        retry_timeout: Duration::from_secs(30),
    }
}

/// The store `url` names and the path prefix inside it. Settings come from
/// the environment (`AWS_*`, `GOOGLE_*`, `AZURE_*`), then from `options`
/// (`object_store`'s keys: `region`, `endpoint`, `allow_http` ...).
pub fn open_store(
    url: &str,
    options: &BTreeMap<String, String>,
) -> Result<(Box<dyn ObjectStore>, ObjectPath), ExportError> {
    let bad = |reason: String| ExportError::Destination {
        url: url.to_owned(),
        reason,
    };
    let parsed = url::Url::parse(url).map_err(|e| bad(e.to_string()))?;
    let prefix = ObjectPath::from_url_path(parsed.path()).map_err(|e| bad(e.to_string()))?;
    let store: Box<dyn ObjectStore> = match parsed.scheme() {
        "s3" | "s3a" => {
            let mut builder = AmazonS3Builder::from_env()
                .with_url(url)
                .with_retry(retry());
            let endpoint = ["AWS_ENDPOINT_URL", "AWS_ENDPOINT"]
                .iter()
                .find_map(|k| std::env::var(k).ok());
            if endpoint.is_some_and(|e| e.starts_with("http://")) {
                builder = builder.with_allow_http(true);
            }
            for (key, value) in options {
                builder = builder.with_config(option(key, &bad)?, value);
            }
            Box::new(builder.build().map_err(|e| bad(e.to_string()))?)
        }
        "gs" => {
            let mut builder = GoogleCloudStorageBuilder::from_env()
                .with_url(url)
                .with_retry(retry());
            for (key, value) in options {
                builder = builder.with_config(option(key, &bad)?, value);
            }
            Box::new(builder.build().map_err(|e| bad(e.to_string()))?)
        }
        "az" | "azure" | "abfs" | "abfss" => {
            let mut builder = MicrosoftAzureBuilder::from_env()
                .with_url(url)
                .with_retry(retry());
            for (key, value) in options {
                builder = builder.with_config(option(key, &bad)?, value);
            }
            Box::new(builder.build().map_err(|e| bad(e.to_string()))?)
        }
        "file" => {
            let root = parsed
                .to_file_path()
                .map_err(|()| bad("not a local path".into()))?;
            std::fs::create_dir_all(&root).map_err(|e| bad(e.to_string()))?;
            let store = LocalFileSystem::new_with_prefix(&root).map_err(|e| bad(e.to_string()))?;
            return Ok((Box::new(store), ObjectPath::default()));
        }
        other => {
            return Err(bad(format!(
                "unknown scheme {other}: use s3, gs, az or file"
            )))
        }
    };
    Ok((store, prefix))
}

/// A configuration key of the store's builder.
fn option<K: std::str::FromStr>(
    key: &str,
    bad: &impl Fn(String) -> ExportError,
) -> Result<K, ExportError> {
    key.parse()
        .map_err(|_| bad(format!("export.options: unknown key {key:?}")))
}

/// Where a (table, day, sensor) goes under `base`.
fn folder(base: &ObjectPath, manifest: &Manifest) -> ObjectPath {
    let mut path = base.clone();
    for part in [
        manifest.table.clone(),
        format!("date={}", manifest.date),
        format!("sensor={}", manifest.sensor),
    ] {
        path = path.child(PathPart::from(part.as_str()));
    }
    path
}

/// Uploads every compacted (table, sensor) with its manifest.
pub fn upload(
    store: &dyn ObjectStore,
    base: &ObjectPath,
    url: &str,
    compacted: &[Compacted],
    manifests: &[Manifest],
) -> Result<ExportReport, ExportError> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|source| ExportError::Io {
            path: "tokio runtime".into(),
            source,
        })?;
    runtime.block_on(async {
        let mut report = ExportReport::default();
        for (compacted, manifest) in compacted.iter().zip(manifests) {
            let folder = folder(base, manifest);
            let failed = |object: &ObjectPath| {
                let url = format!("{}/{}", url.trim_end_matches('/'), object);
                move |source| ExportError::Store { url, source }
            };
            for part in &compacted.parts {
                let object = folder.child(part.name.as_str());
                let same = match store.head(&object).await {
                    Ok(meta) => {
                        meta.size == part.bytes
                            && meta
                                .e_tag
                                .as_deref()
                                .is_some_and(|tag| tag.trim_matches('"') == part.md5)
                    }
                    Err(object_store::Error::NotFound { .. }) => false,
                    Err(e) => return Err(failed(&object)(e)),
                };
                if same {
                    report.skipped += 1;
                    continue;
                }
                let bytes = std::fs::read(&part.path).map_err(|source| ExportError::Io {
                    path: part.path.clone(),
                    source,
                })?;
                store
                    .put(&object, PutPayload::from(bytes))
                    .await
                    .map_err(failed(&object))?;
                report.uploaded += 1;
            }
            let keep: Vec<ObjectPath> = compacted
                .parts
                .iter()
                .map(|p| folder.child(p.name.as_str()))
                .chain([folder.child(MANIFEST)])
                .collect();
            let existing: Vec<ObjectPath> = store
                .list(Some(&folder))
                .map_ok(|meta| meta.location)
                .try_collect()
                .await
                .map_err(failed(&folder))?;
            for stale in existing.iter().filter(|o| !keep.contains(o)) {
                store.delete(stale).await.map_err(failed(stale))?;
                report.removed += 1;
            }
            let text = serde_json::to_vec_pretty(manifest).unwrap_or_default();
            let object = folder.child(MANIFEST);
            store
                .put(&object, PutPayload::from(text))
                .await
                .map_err(failed(&object))?;
        }
        Ok(report)
    })
}
