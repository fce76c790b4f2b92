//! Safe extraction of a function's ZIP package, under the rules shared with
//! kumod ([`kumo_proto::package`]: names, symlinks resolved through each
//! other, entries inside symlinks, entry count, unpacked bytes counted from
//! what is actually written). Files keep only the executable bit (0755 or
//! 0644; never setuid/setgid/sticky); directories are 0755 whatever the
//! umask. The tree is built in a temporary directory beside `dest` and
//! renamed into place.

use std::fs;
use std::io::{Cursor, Read, Write};
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::{Path, PathBuf};

use kumo_proto::package::{EntryKind, PackageRuleError, PackageTree};

/// Limits applied while unpacking (the rules kumod applies at create).
pub type UnzipLimits = kumo_proto::package::PackageLimits;

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
    /// The package breaks a rule shared with kumod.
    #[error(transparent)]
    Rule(#[from] PackageRuleError),
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
    let mut tree = PackageTree::new(limits.clone(), archive.len())?;
    let mut stats = ExtractStats::default();
    for index in 0..archive.len() {
        let mut entry = archive
            .by_index(index)
            .map_err(|e| UnzipError::Malformed(e.to_string()))?;
        let name = entry
            .name()
            .map_err(|e| UnzipError::Malformed(format!("entry {index}: {e}")))?
            .to_string();
        let mode = entry.unix_mode().unwrap_or(0o644);
        if !entry.is_dir() && kumo_proto::package::is_symlink_mode(mode) {
            let mut link = String::new();
            (&mut entry)
                .take(4096)
                .read_to_string(&mut link)
                .map_err(|e| UnzipError::Malformed(format!("symlink {name:?}: {e}")))?;
            let relative = tree.symlink(&name, &link)?;
            let target = root.join(&relative);
            if let Some(parent) = target.parent() {
                create_readable_dirs(root, parent)?;
            }
            symlink(&link, &target).map_err(io_error(&target))?;
            continue;
        }
        let kind = EntryKind::of(entry.is_dir(), mode);
        let relative = tree.entry(&name, kind)?;
        let target = root.join(&relative);
        if entry.is_dir() {
            create_readable_dirs(root, &target)?;
            continue;
        }
        if let Some(parent) = target.parent() {
            create_readable_dirs(root, parent)?;
        }
        let mut out = fs::File::create(&target).map_err(io_error(&target))?;
        let written = kumo_proto::package::copy_limited(&mut entry, &mut out, tree.remaining())
            .map_err(|e| match e.kind() {
                std::io::ErrorKind::InvalidData => UnzipError::Malformed(format!("{name:?}: {e}")),
                _ => UnzipError::Io {
                    path: target.display().to_string(),
                    source: e,
                },
            })?;
        let Some(written) = written else {
            return Err(tree.too_large(&name).into());
        };
        tree.add_bytes(&name, written)?;
        out.flush().map_err(io_error(&target))?;
        let permissions = if kind == (EntryKind::File { executable: true }) {
            0o755
        } else {
            0o644
        };
        fs::set_permissions(&target, fs::Permissions::from_mode(permissions))
            .map_err(io_error(&target))?;
        stats.files += 1;
    }
    tree.finish()?;
    stats.bytes = tree.bytes();
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
