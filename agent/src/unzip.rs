//! Safe extraction of a function's ZIP package.
//!
//! Refused, with the entry named: malformed archives; entry names that are
//! absolute or contain `..`; symlinks that are absolute or lead outside the
//! package, and entries written through a symlink; more than
//! [`UnzipLimits::max_entries`] entries; more than
//! [`UnzipLimits::max_unpacked_bytes`] unpacked bytes — counted from the bytes
//! actually written, never from the (forgeable) headers. Files keep only the
//! executable bit (0755 or 0644; never setuid/setgid/sticky). The tree is
//! built in a temporary directory beside `dest` and renamed into place.

use std::collections::HashSet;
use std::fs;
use std::io::{Cursor, Read, Write};
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::{Path, PathBuf};

/// Limits applied while unpacking.
#[derive(Debug, Clone)]
pub struct UnzipLimits {
    /// Largest total unpacked size.
    pub max_unpacked_bytes: u64,
    /// Largest number of entries.
    pub max_entries: usize,
}

impl Default for UnzipLimits {
    fn default() -> Self {
        Self {
            max_unpacked_bytes: kumo_proto::model::MAX_PACKAGE_UNZIPPED_BYTES,
            max_entries: 100_000,
        }
    }
}

/// What was unpacked.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExtractStats {
    /// Regular files written.
    pub files: usize,
    /// Bytes written.
    pub bytes: u64,
}

/// A package could not be unpacked.
#[derive(Debug, thiserror::Error)]
pub enum UnzipError {
    /// Not a readable ZIP archive.
    #[error("package is not a valid zip archive: {0}")]
    Malformed(String),
    /// An entry would land outside the package root.
    #[error("package entry {name:?} is unsafe: {reason}")]
    UnsafeEntry {
        /// The entry's name as stored.
        name: String,
        /// Why it was refused.
        reason: &'static str,
    },
    /// Too many entries.
    #[error("package has {count} entries; at most {limit} are allowed")]
    TooManyEntries {
        /// Entries in the archive.
        count: usize,
        /// The limit.
        limit: usize,
    },
    /// The unpacked size is over the limit.
    #[error("package unpacks to more than {limit} bytes (limit reached at entry {name:?})")]
    TooLarge {
        /// The limit in bytes.
        limit: u64,
        /// The entry being written when the limit was hit.
        name: String,
    },
    /// Writing the tree failed.
    #[error("unpacking {path}: {source}")]
    Io {
        /// The path being written.
        path: String,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
}

fn io_error(path: &Path) -> impl FnOnce(std::io::Error) -> UnzipError + '_ {
    move |source| UnzipError::Io {
        path: path.display().to_string(),
        source,
    }
}

/// Unpacks `zip_bytes` into `dest` (which must not exist yet).
pub fn extract(
    zip_bytes: &[u8],
    dest: &Path,
    limits: &UnzipLimits,
) -> Result<ExtractStats, UnzipError> {
    let staging = staging_dir(dest);
    let _ = fs::remove_dir_all(&staging);
    fs::create_dir_all(&staging).map_err(io_error(&staging))?;
    let result = extract_into(zip_bytes, &staging, limits).and_then(|stats| {
        fs::set_permissions(&staging, fs::Permissions::from_mode(0o755))
            .map_err(io_error(&staging))?;
        fs::rename(&staging, dest).map_err(io_error(dest))?;
        Ok(stats)
    });
    if result.is_err() {
        let _ = fs::remove_dir_all(&staging);
    }
    result
}

fn staging_dir(dest: &Path) -> PathBuf {
    let name = dest
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    dest.with_file_name(format!(".{name}.partial-{}", std::process::id()))
}

fn extract_into(
    zip_bytes: &[u8],
    root: &Path,
    limits: &UnzipLimits,
) -> Result<ExtractStats, UnzipError> {
    let mut archive = zip::ZipArchive::new(Cursor::new(zip_bytes))
        .map_err(|e| UnzipError::Malformed(e.to_string()))?;
    if archive.len() > limits.max_entries {
        return Err(UnzipError::TooManyEntries {
            count: archive.len(),
            limit: limits.max_entries,
        });
    }
    let mut stats = ExtractStats::default();
    let mut symlinks: HashSet<PathBuf> = HashSet::new();
    for index in 0..archive.len() {
        let mut entry = archive
            .by_index(index)
            .map_err(|e| UnzipError::Malformed(e.to_string()))?;
        let name = entry
            .name()
            .map_err(|e| UnzipError::Malformed(format!("entry {index}: {e}")))?
            .to_string();
        let relative =
            kumo_proto::package::entry_path(&name).map_err(|reason| UnzipError::UnsafeEntry {
                name: name.clone(),
                reason,
            })?;
        if relative.ancestors().any(|a| symlinks.contains(a)) {
            return Err(UnzipError::UnsafeEntry {
                name,
                reason: "it is inside a symlink",
            });
        }
        let target = root.join(&relative);
        if entry.is_dir() {
            create_readable_dirs(root, &target)?;
            continue;
        }
        if let Some(parent) = target.parent() {
            create_readable_dirs(root, parent)?;
        }
        let mode = entry.unix_mode().unwrap_or(0o644);
        if kumo_proto::package::is_symlink_mode(mode) {
            let mut link = String::new();
            (&mut entry)
                .take(4096)
                .read_to_string(&mut link)
                .map_err(|e| UnzipError::Malformed(format!("symlink {name:?}: {e}")))?;
            kumo_proto::package::check_symlink_target(&relative, &link).map_err(|reason| {
                UnzipError::UnsafeEntry {
                    name: name.clone(),
                    reason,
                }
            })?;
            symlink(&link, &target).map_err(io_error(&target))?;
            symlinks.insert(relative);
            continue;
        }
        let remaining = limits.max_unpacked_bytes.saturating_sub(stats.bytes);
        let mut out = fs::File::create(&target).map_err(io_error(&target))?;
        let written =
            copy_limited(&mut entry, &mut out, remaining).map_err(|e| match e.kind() {
                std::io::ErrorKind::InvalidData => UnzipError::Malformed(format!("{name:?}: {e}")),
                _ => UnzipError::Io {
                    path: target.display().to_string(),
                    source: e,
                },
            })?;
        let Some(written) = written else {
            return Err(UnzipError::TooLarge {
                limit: limits.max_unpacked_bytes,
                name,
            });
        };
        out.flush().map_err(io_error(&target))?;
        let permissions = if mode & 0o111 != 0 { 0o755 } else { 0o644 };
        fs::set_permissions(&target, fs::Permissions::from_mode(permissions))
            .map_err(io_error(&target))?;
        stats.bytes += written;
        stats.files += 1;
    }
    Ok(stats)
}

/// Creates `dir` and its missing ancestors below `root`, each 0755 whatever
/// the process umask (instance uids must be able to read the tree).
fn create_readable_dirs(root: &Path, dir: &Path) -> Result<(), UnzipError> {
    fs::create_dir_all(dir).map_err(io_error(dir))?;
    for ancestor in dir
        .ancestors()
        .take_while(|a| *a != root && a.starts_with(root))
    {
        fs::set_permissions(ancestor, fs::Permissions::from_mode(0o755))
            .map_err(io_error(ancestor))?;
    }
    Ok(())
}

/// Copies at most `limit` bytes; `Ok(None)` when the source has more.
fn copy_limited(
    source: &mut impl Read,
    sink: &mut impl Write,
    limit: u64,
) -> std::io::Result<Option<u64>> {
    let mut buf = vec![0u8; 64 * 1024];
    let mut total = 0u64;
    loop {
        let n = source.read(&mut buf)?;
        if n == 0 {
            return Ok(Some(total));
        }
        total += n as u64;
        if total > limit {
            return Ok(None);
        }
        sink.write_all(&buf[..n])?;
    }
}
