//! Content-addressed package blobs: `<dir>/<sha256 hex>.zip`, written
//! atomically (mode 0600). Uploads are checked before they are stored: size,
//! a readable ZIP, the package rules the agent applies when unpacking
//! (names, symlinks, entry count, real unpacked bytes), and the runtime's
//! entry point when it has one (the `provided` runtime's `bootstrap`).

use std::io::{Cursor, Read, Write};
use std::path::{Path, PathBuf};

use base64::Engine;
use kumo_proto::model::MAX_PACKAGE_ZIPPED_BYTES;
use kumo_proto::package::{self, EntryKind, EntryPointError, PackageLimits, PackageTree};
use sha2::{Digest, Sha256};

/// A package was refused or could not be stored.
#[derive(Debug, thiserror::Error)]
pub enum PackageError {
    /// The upload breaks a rule; the message says which.
    #[error("invalid package: {0}")]
    Invalid(String),
    /// The runtime's entry point is missing or cannot be run.
    #[error("invalid package: {0}")]
    EntryPoint(#[from] EntryPointError),
    /// No blob with this digest.
    #[error("package {0} not found")]
    NotFound(String),
    /// A filesystem operation failed.
    #[error("{op} {path}: {source}")]
    Io {
        /// What was being done.
        op: &'static str,
        /// The file.
        path: String,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
}

/// Identity of a stored package.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredPackage {
    /// Hex SHA-256 (the blob's name).
    pub digest: String,
    /// Base64 SHA-256, Lambda's `CodeSha256`.
    pub code_sha256: String,
    /// Size in bytes.
    pub size: u64,
}

/// The blob directory.
#[derive(Debug, Clone)]
pub struct PackageStore {
    dir: PathBuf,
}

impl PackageStore {
    /// Opens (creating) the blob directory.
    pub fn open(dir: PathBuf) -> Result<Self, PackageError> {
        kumo_common::private_state::ensure_private_dir(&dir).map_err(|e| PackageError::Io {
            op: e.op,
            path: dir.display().to_string(),
            source: e.source,
        })?;
        Ok(Self { dir })
    }

    fn path(&self, digest: &str) -> PathBuf {
        self.dir.join(format!("{digest}.zip"))
    }

    /// Checks and stores a package and returns it with its checked tree
    /// (unpacked size, entry points) for the caller to inspect.
    pub fn put_with_tree(&self, zip: &[u8]) -> Result<(StoredPackage, PackageTree), PackageError> {
        let tree = validate(zip)?;
        Ok((self.put_validated(zip)?, tree))
    }

    /// The unpacked size of the stored package `digest`.
    pub fn unpacked_size(&self, digest: &str) -> Result<u64, PackageError> {
        Ok(validate(&self.get(digest)?)?.bytes())
    }

    /// Stores a package already checked with [`validate`]; storing equal
    /// bytes twice is a no-op.
    pub fn put_validated(&self, zip: &[u8]) -> Result<StoredPackage, PackageError> {
        let hash = Sha256::digest(zip);
        let digest = hex::encode(hash);
        let stored = StoredPackage {
            code_sha256: base64::engine::general_purpose::STANDARD.encode(hash),
            size: zip.len() as u64,
            digest: digest.clone(),
        };
        let path = self.path(&digest);
        if path.exists() {
            return Ok(stored);
        }
        let tmp = self
            .dir
            .join(format!(".{digest}.{}.tmp", uuid::Uuid::new_v4()));
        let io = |op, p: &Path| {
            let path = p.display().to_string();
            move |source| PackageError::Io { op, path, source }
        };
        let mut file = {
            use std::os::unix::fs::OpenOptionsExt;
            std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&tmp)
                .map_err(io("creating", &tmp))?
        };
        file.write_all(zip).map_err(io("writing", &tmp))?;
        file.sync_all().map_err(io("syncing", &tmp))?;
        std::fs::rename(&tmp, &path).map_err(io("renaming into", &path))?;
        Ok(stored)
    }

    /// Reads a package's bytes.
    pub fn get(&self, digest: &str) -> Result<Vec<u8>, PackageError> {
        if !is_digest(digest) {
            return Err(PackageError::NotFound(digest.to_string()));
        }
        let path = self.path(digest);
        std::fs::read(&path).map_err(|source| match source.kind() {
            std::io::ErrorKind::NotFound => PackageError::NotFound(digest.to_string()),
            _ => PackageError::Io {
                op: "reading",
                path: path.display().to_string(),
                source,
            },
        })
    }

    /// Checks that the stored package `digest` holds the executable
    /// `entry_point` at its root (for a function switched to a runtime
    /// that needs one).
    pub fn check_entry_point(&self, digest: &str, entry_point: &str) -> Result<(), PackageError> {
        Ok(validate(&self.get(digest)?)?.executable(entry_point)?)
    }

    /// Removes a blob no function uses any more.
    pub fn remove(&self, digest: &str) {
        if is_digest(digest) {
            let _ = std::fs::remove_file(self.path(digest));
        }
    }
}

fn is_digest(s: &str) -> bool {
    s.len() == 64
        && s.bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
}

/// Refuses packages the agent would refuse, before they are stored: the
/// rules shared with the agent ([`kumo_proto::package::PackageTree`]),
/// decompressing every file to count its real size. Returns the checked
/// tree.
pub fn validate(zip: &[u8]) -> Result<PackageTree, PackageError> {
    let invalid = |m: String| Err(PackageError::Invalid(m));
    if zip.len() as u64 > MAX_PACKAGE_ZIPPED_BYTES {
        return invalid(format!(
            "{} bytes is over the {MAX_PACKAGE_ZIPPED_BYTES}-byte (50 MB) limit for a zipped package",
            zip.len()
        ));
    }
    let mut archive = match zip::ZipArchive::new(Cursor::new(zip)) {
        Ok(archive) => archive,
        Err(e) => return invalid(format!("not a valid zip archive: {e}")),
    };
    let rule = |e: package::PackageRuleError| PackageError::Invalid(e.to_string());
    let mut tree = PackageTree::new(PackageLimits::default(), archive.len()).map_err(rule)?;
    for index in 0..archive.len() {
        let mut entry = match archive.by_index(index) {
            Ok(entry) => entry,
            Err(e) => return invalid(format!("entry {index} is unreadable: {e}")),
        };
        let name = match entry.name() {
            Ok(name) => name.to_string(),
            Err(e) => return invalid(format!("entry {index} has an unreadable name: {e}")),
        };
        let mode = entry.unix_mode().unwrap_or(0o644);
        if !entry.is_dir() && package::is_symlink_mode(mode) {
            let mut link = String::new();
            if (&mut entry).take(4096).read_to_string(&mut link).is_err() {
                return invalid(format!("symlink entry {name:?} is unreadable"));
            }
            tree.symlink(&name, &link).map_err(rule)?;
            continue;
        }
        tree.entry(&name, EntryKind::of(entry.is_dir(), mode))
            .map_err(rule)?;
        if entry.is_dir() {
            continue;
        }
        match package::copy_limited(&mut entry, &mut std::io::sink(), tree.remaining()) {
            Ok(Some(bytes)) => tree.add_bytes(&name, bytes).map_err(rule)?,
            Ok(None) => return Err(rule(tree.too_large(&name))),
            Err(e) => return invalid(format!("package is not a valid zip archive: {name:?}: {e}")),
        }
    }
    tree.finish().map_err(rule)?;
    Ok(tree)
}
