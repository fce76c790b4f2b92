//! Unpacked packages by digest: fetched once from kumod, verified against
//! their SHA-256, unpacked safely into `dir/<digest>/` (mounted read-only at
//! `/var/task`). Layers are packages too; a function's list of layers is
//! merged into `dir/opt-<hash of the list>/` (mounted read-only at `/opt`,
//! see `layer_set`). A warm lookup is a map read; concurrent requests for
//! one digest (or list) fetch and unpack (or merge) it once.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use futures::future::BoxFuture;
use sha2::{Digest, Sha256};
use tokio::sync::OnceCell;

use crate::layer_set;
use crate::unzip::{self, UnzipLimits};

/// Where a function's code is on the host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CodeDirs {
    /// The unpacked package, mounted at `/var/task`.
    pub task: PathBuf,
    /// The merged layers, mounted at `/opt` (None: no layers, `/opt` is
    /// empty).
    pub opt: Option<PathBuf>,
}

/// Suffix of the marker file written next to a tree once it is complete
/// (`<digest>.complete`; kept outside the tree so `/var/task` shows only
/// the package's own files).
const COMPLETE_SUFFIX: &str = ".complete";

fn marker_of(dir: &std::path::Path) -> PathBuf {
    let mut name = dir.as_os_str().to_owned();
    name.push(COMPLETE_SUFFIX);
    PathBuf::from(name)
}
/// Downloads tried before giving up on a digest mismatch or transfer error.
const FETCH_ATTEMPTS: u32 = 3;

/// A package download failed.
#[derive(Debug, Clone, thiserror::Error)]
#[error("fetching package {digest}: {message}")]
pub struct FetchError {
    /// The requested digest.
    pub digest: String,
    /// What went wrong.
    pub message: String,
}

/// Where packages come from (kumod's `FetchPackage` in production).
pub trait PackageFetcher: Send + Sync {
    /// Returns the ZIP bytes of the package with this hex SHA-256.
    fn fetch(&self, digest: &str) -> BoxFuture<'_, Result<Vec<u8>, FetchError>>;
}

/// A package could not be made available.
#[derive(Debug, Clone, thiserror::Error)]
pub enum PackageError {
    /// The digest is not 64 lowercase hex characters.
    #[error("invalid package digest {0:?}")]
    InvalidDigest(String),
    /// Every download attempt failed.
    #[error("{0}")]
    Fetch(#[from] FetchError),
    /// Downloads never matched the digest.
    #[error("package {digest}: downloaded bytes hash to {actual}; refusing to run them")]
    DigestMismatch {
        /// Expected digest.
        digest: String,
        /// What the bytes hashed to.
        actual: String,
    },
    /// The archive was refused or could not be written.
    #[error("package {digest}: {message}")]
    Unpack {
        /// The digest.
        digest: String,
        /// The unzip error.
        message: String,
    },
}

/// The cache of unpacked packages.
pub struct PackageCache {
    dir: PathBuf,
    fetcher: Arc<dyn PackageFetcher>,
    limits: UnzipLimits,
    entries: Mutex<HashMap<String, Arc<OnceCell<PathBuf>>>>,
}

impl PackageCache {
    /// Opens the cache in `dir`, keeping complete trees from earlier runs and
    /// removing partial ones.
    pub fn new(
        dir: PathBuf,
        fetcher: Arc<dyn PackageFetcher>,
        limits: UnzipLimits,
    ) -> std::io::Result<Self> {
        std::fs::create_dir_all(&dir)?;
        let mut entries = HashMap::new();
        for entry in std::fs::read_dir(&dir)? {
            let entry = entry?;
            let name = entry.file_name().to_string_lossy().into_owned();
            let path = entry.path();
            if is_digest(&name) && marker_of(&path).exists() {
                entries.insert(name, Arc::new(OnceCell::new_with(Some(path))));
            } else if name
                .strip_suffix(COMPLETE_SUFFIX)
                .is_some_and(|digest| is_digest(digest) && dir.join(digest).is_dir())
            {
                // The marker of a complete tree.
            } else {
                let _ = std::fs::remove_dir_all(&path).or_else(|_| std::fs::remove_file(&path));
            }
        }
        Ok(Self {
            dir,
            fetcher,
            limits,
            entries: Mutex::new(entries),
        })
    }

    /// The package `digest` and the layers `layer_digests` (in order),
    /// fetched, unpacked and merged as needed.
    pub async fn ensure_code(
        &self,
        digest: &str,
        layer_digests: &[String],
    ) -> Result<CodeDirs, PackageError> {
        let task = self.ensure(digest).await?;
        let opt = match layer_digests {
            [] => None,
            [one] => Some(self.ensure(one).await?),
            many => Some(self.ensure_merged(many).await?),
        };
        Ok(CodeDirs { task, opt })
    }

    /// The merged tree of several layers.
    async fn ensure_merged(&self, digests: &[String]) -> Result<PathBuf, PackageError> {
        let name = layer_set::merged_name(digests);
        let cell = {
            let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
            entries.entry(name.clone()).or_default().clone()
        };
        cell.get_or_try_init(|| async {
            let layers =
                futures::future::try_join_all(digests.iter().map(|d| self.ensure(d))).await?;
            let dest = self.dir.join(&name);
            tokio::task::spawn_blocking(move || {
                let _ = std::fs::remove_dir_all(&dest);
                layer_set::merge(&layers, &dest).map(|()| dest)
            })
            .await
            .map_err(|e| e.to_string())
            .and_then(|r| r.map_err(|e| e.to_string()))
            .map_err(|message| PackageError::Unpack {
                digest: name.clone(),
                message,
            })
        })
        .await
        .cloned()
    }

    /// The unpacked directory of the package `digest`, fetching and
    /// unpacking it first if needed.
    pub async fn ensure(&self, digest: &str) -> Result<PathBuf, PackageError> {
        if !is_digest(digest) {
            return Err(PackageError::InvalidDigest(digest.to_string()));
        }
        let cell = {
            let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
            entries.entry(digest.to_string()).or_default().clone()
        };
        cell.get_or_try_init(|| self.fetch_and_unpack(digest))
            .await
            .cloned()
    }

    async fn fetch_and_unpack(&self, digest: &str) -> Result<PathBuf, PackageError> {
        let bytes = self.fetch_verified(digest).await?;
        let dest = self.dir.join(digest);
        let limits = self.limits.clone();
        let digest_owned = digest.to_string();
        let unpacked = dest.clone();
        tokio::task::spawn_blocking(move || {
            let _ = std::fs::remove_dir_all(&unpacked);
            unzip::extract(&bytes, &unpacked, &limits)
                .map_err(|e| e.to_string())
                .and_then(|_| {
                    std::fs::write(marker_of(&unpacked), b"")
                        .map_err(|e| format!("writing the completion marker: {e}"))
                })
        })
        .await
        .map_err(|e| e.to_string())
        .and_then(|r| r)
        .map_err(|message| PackageError::Unpack {
            digest: digest_owned,
            message,
        })?;
        Ok(dest)
    }

    async fn fetch_verified(&self, digest: &str) -> Result<Vec<u8>, PackageError> {
        let mut last = None;
        for attempt in 1..=FETCH_ATTEMPTS {
            match self.fetcher.fetch(digest).await {
                Ok(bytes) => {
                    let actual = hex::encode(Sha256::digest(&bytes));
                    if actual == digest {
                        return Ok(bytes);
                    }
                    tracing::warn!(%digest, %actual, attempt, "package download does not match its digest");
                    last = Some(PackageError::DigestMismatch {
                        digest: digest.to_string(),
                        actual,
                    });
                }
                Err(err) => {
                    tracing::warn!(%digest, attempt, error = %err, "package download failed");
                    last = Some(err.into());
                }
            }
            tokio::time::sleep(std::time::Duration::from_millis(50 * u64::from(attempt))).await;
        }
        Err(last.unwrap_or_else(|| PackageError::InvalidDigest(digest.to_string())))
    }
}

/// Whether `s` is a hex SHA-256 (64 lowercase hex characters).
pub fn is_digest(s: &str) -> bool {
    s.len() == 64
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}
