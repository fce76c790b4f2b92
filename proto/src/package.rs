//! Safety rules for a function's ZIP package, shared by kumod (refuses bad
//! packages at create, decompressing every entry to count real bytes) and
//! the agent (enforces them again while unpacking): one [`PackageTree`]
//! walks the entries in archive order, so both refuse the same packages
//! with the same message.
//!
//! Refused: more than [`PackageLimits::max_entries`] entries; names that are
//! absolute, contain `..`, a NUL or a backslash; symlinks with an absolute
//! target or one that — following the package's other symlinks, in any
//! order — resolves outside the package or loops; entries inside (or on top
//! of) a symlink; more than [`PackageLimits::max_unpacked_bytes`] unpacked
//! bytes, counted from the bytes actually decompressed, never from the
//! (forgeable) headers.
//!
//! The tree also remembers what each entry is, so that a runtime's entry
//! point (the `provided` runtime's `bootstrap`) can be checked before the
//! package is accepted ([`PackageTree::executable`]).

mod entry_point;

pub use entry_point::EntryPointError;

use std::collections::{HashMap, VecDeque};
use std::ffi::OsString;
use std::path::{Component, Path, PathBuf};

/// Limits applied to a package's contents.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PackageLimits {
    /// Largest total unpacked size in bytes.
    pub max_unpacked_bytes: u64,
    /// Largest number of entries.
    pub max_entries: usize,
}

impl Default for PackageLimits {
    fn default() -> Self {
        Self {
            max_unpacked_bytes: crate::model::MAX_PACKAGE_UNZIPPED_BYTES,
            max_entries: 100_000,
        }
    }
}

/// A package breaks a rule (the message is the same in kumod and the agent).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PackageRuleError {
    /// An entry would land, or point, outside the package root.
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
    #[error("package unpacks to more than {limit} bytes ({} MB; limit reached at entry {name:?})", limit / (1024 * 1024))]
    TooLarge {
        /// The limit in bytes.
        limit: u64,
        /// The entry being read when the limit was hit.
        name: String,
    },
}

/// What a file or directory entry is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryKind {
    /// A directory entry.
    Directory,
    /// A regular file; `executable` when its mode has an execute bit.
    File {
        /// Unpacked with mode 0755 (otherwise 0644).
        executable: bool,
    },
}

impl EntryKind {
    /// The kind of a ZIP entry that is not a symlink, from its directory
    /// flag and unix mode (a ZIP without modes gives 0644: not executable).
    pub fn of(is_dir: bool, mode: u32) -> Self {
        if is_dir {
            Self::Directory
        } else {
            Self::File {
                executable: mode & 0o111 != 0,
            }
        }
    }
}

/// Most symlinks followed while resolving one target.
const MAX_HOPS: usize = 40;

/// The entries of one package seen so far, in archive order.
#[derive(Debug)]
pub struct PackageTree {
    limits: PackageLimits,
    /// Every entry path (files, directories, symlinks).
    paths: HashMap<PathBuf, String>,
    /// Symlinks: path → (entry name, raw target).
    symlinks: HashMap<PathBuf, (String, String)>,
    /// Files and directories: path → what the last entry there is.
    kinds: HashMap<PathBuf, EntryKind>,
    bytes: u64,
}

impl PackageTree {
    /// Starts checking a package of `entry_count` entries.
    pub fn new(limits: PackageLimits, entry_count: usize) -> Result<Self, PackageRuleError> {
        if entry_count > limits.max_entries {
            return Err(PackageRuleError::TooManyEntries {
                count: entry_count,
                limit: limits.max_entries,
            });
        }
        Ok(Self {
            limits,
            paths: HashMap::new(),
            symlinks: HashMap::new(),
            kinds: HashMap::new(),
            bytes: 0,
        })
    }

    /// The path of entry `name` relative to the root, refused when it is not
    /// a plain relative path or lies inside a symlink already seen.
    fn outside_symlinks(&self, name: &str) -> Result<PathBuf, PackageRuleError> {
        let unsafe_entry = |reason| PackageRuleError::UnsafeEntry {
            name: name.to_string(),
            reason,
        };
        let relative = entry_path(name).map_err(unsafe_entry)?;
        if relative.ancestors().any(|a| self.symlinks.contains_key(a)) {
            return Err(unsafe_entry("it is inside a symlink"));
        }
        Ok(relative)
    }

    /// Checks a file or directory entry's name; its path relative to the root.
    pub fn entry(&mut self, name: &str, kind: EntryKind) -> Result<PathBuf, PackageRuleError> {
        let relative = self.outside_symlinks(name)?;
        self.paths.insert(relative.clone(), name.to_string());
        self.kinds.insert(relative.clone(), kind);
        Ok(relative)
    }

    /// Checks a symlink entry `name` pointing at `link`; its path relative
    /// to the root.
    pub fn symlink(&mut self, name: &str, link: &str) -> Result<PathBuf, PackageRuleError> {
        let unsafe_entry = |reason| PackageRuleError::UnsafeEntry {
            name: name.to_string(),
            reason,
        };
        let relative = self.outside_symlinks(name)?;
        if self.paths.keys().any(|p| p.starts_with(&relative)) {
            return Err(unsafe_entry("it is a symlink over another entry"));
        }
        check_symlink_target(&relative, link).map_err(unsafe_entry)?;
        self.symlinks
            .insert(relative.clone(), (name.to_string(), link.to_string()));
        resolve(&self.symlinks, &relative, link).map_err(unsafe_entry)?;
        self.paths.insert(relative.clone(), name.to_string());
        Ok(relative)
    }

    /// Bytes the next entry may still unpack to.
    pub fn remaining(&self) -> u64 {
        self.limits.max_unpacked_bytes.saturating_sub(self.bytes)
    }

    /// Counts `bytes` really unpacked from entry `name`.
    pub fn add_bytes(&mut self, name: &str, bytes: u64) -> Result<(), PackageRuleError> {
        self.bytes = self.bytes.saturating_add(bytes);
        if self.bytes > self.limits.max_unpacked_bytes {
            return Err(self.too_large(name));
        }
        Ok(())
    }

    /// The error for an entry that went over the unpacked-size limit.
    pub fn too_large(&self, name: &str) -> PackageRuleError {
        PackageRuleError::TooLarge {
            limit: self.limits.max_unpacked_bytes,
            name: name.to_string(),
        }
    }

    /// Unpacked bytes counted so far.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// After the last entry: every symlink still resolves inside the
    /// package now that all of them are known (a symlink may lead through
    /// one stored after it).
    pub fn finish(&self) -> Result<(), PackageRuleError> {
        let mut links: Vec<_> = self.symlinks.iter().collect();
        links.sort();
        for (relative, (name, link)) in links {
            resolve(&self.symlinks, relative, link).map_err(|reason| {
                PackageRuleError::UnsafeEntry {
                    name: name.clone(),
                    reason,
                }
            })?;
        }
        Ok(())
    }
}

/// Copies at most `limit` bytes from `source` to `sink`; `Ok(None)` when
/// the source has more (the unpacked-size check, on real bytes).
pub fn copy_limited(
    source: &mut impl std::io::Read,
    sink: &mut impl std::io::Write,
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

/// Where the symlink at `relative` pointing at `link` leads, following the
/// package's `symlinks`; why not when it leaves the package or loops.
fn resolve(
    symlinks: &HashMap<PathBuf, (String, String)>,
    relative: &Path,
    link: &str,
) -> Result<PathBuf, &'static str> {
    let mut current = relative.parent().map(Path::to_path_buf).unwrap_or_default();
    let mut pending: VecDeque<OsString> = components(link);
    let mut hops = 0;
    while let Some(part) = pending.pop_front() {
        if part == ".." {
            if !current.pop() {
                return Err("symlink that leads outside the package");
            }
            continue;
        }
        current.push(&part);
        if let Some((_, target)) = symlinks.get(&current) {
            hops += 1;
            if hops > MAX_HOPS {
                return Err("symlink loop");
            }
            if Path::new(target).is_absolute() {
                return Err("symlink to an absolute path");
            }
            current.pop();
            for (i, c) in components(target).into_iter().enumerate() {
                pending.insert(i, c);
            }
        }
    }
    Ok(current)
}

/// A relative target's components (`.` dropped, `..` kept as "..").
fn components(link: &str) -> VecDeque<OsString> {
    Path::new(link)
        .components()
        .filter_map(|c| match c {
            Component::Normal(part) => Some(part.to_os_string()),
            Component::ParentDir => Some(OsString::from("..")),
            _ => None,
        })
        .collect()
}

/// The entry's path relative to the package root, or why it is unsafe.
pub fn entry_path(name: &str) -> Result<PathBuf, &'static str> {
    if name.contains('\0') || name.contains('\\') {
        return Err("it contains a NUL byte or a backslash");
    }
    let mut relative = PathBuf::new();
    for component in Path::new(name).components() {
        match component {
            Component::Normal(part) => relative.push(part),
            Component::CurDir => {}
            Component::ParentDir => return Err("it contains '..'"),
            Component::RootDir | Component::Prefix(_) => return Err("it is an absolute path"),
        }
    }
    if relative.as_os_str().is_empty() {
        return Err("it has an empty name");
    }
    Ok(relative)
}

/// A symlink at `relative` may only point inside the package, by a relative path.
pub fn check_symlink_target(relative: &Path, link: &str) -> Result<(), &'static str> {
    if link.is_empty() || link.contains('\0') {
        return Err("symlink with an empty or invalid target");
    }
    let target = Path::new(link);
    if target.is_absolute() {
        return Err("symlink to an absolute path");
    }
    let mut depth: i64 = relative.components().count() as i64 - 1;
    for component in target.components() {
        match component {
            Component::ParentDir => depth -= 1,
            Component::Normal(_) => depth += 1,
            _ => {}
        }
        if depth < 0 {
            return Err("symlink that leads outside the package");
        }
    }
    Ok(())
}

/// Whether a ZIP entry's unix mode marks a symlink.
pub fn is_symlink_mode(mode: u32) -> bool {
    mode & 0o170000 == 0o120000
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entry_paths() {
        assert!(entry_path("a/b.py").is_ok());
        assert!(entry_path("./a").is_ok());
        assert!(entry_path("../evil").is_err());
        assert!(entry_path("a/../../x").is_err());
        assert!(entry_path("/abs").is_err());
        assert!(entry_path("a\\..\\b").is_err());
    }

    const FILE: EntryKind = EntryKind::File { executable: false };

    fn tree() -> PackageTree {
        PackageTree::new(PackageLimits::default(), 10).unwrap()
    }

    #[test]
    fn chained_symlinks_are_resolved() {
        // d/up -> .. is the root; up2 -> d/up/.. is lexically inside but
        // really the root's parent.
        let mut t = tree();
        t.entry("d/", EntryKind::Directory).unwrap();
        t.symlink("d/up", "..").unwrap();
        let err = t.symlink("up2", "d/up/..").unwrap_err();
        assert!(err.to_string().contains("outside the package"), "{err}");
        // Order does not matter: the link through a later link is caught
        // at the end.
        let mut t = tree();
        t.symlink("a", "b/..").unwrap();
        t.symlink("b", "c").unwrap();
        t.symlink("c", "..").unwrap_err();
        let mut t = tree();
        t.symlink("x", "y").unwrap();
        t.symlink("y", "x").unwrap_err();
        let mut t = tree();
        t.symlink("lib/l", "../data").unwrap();
        t.entry("data/file", FILE).unwrap();
        t.finish().unwrap();
    }

    #[test]
    fn entries_under_or_below_symlinks_are_refused() {
        let mut t = tree();
        t.symlink("dir", "real").unwrap();
        assert!(t.entry("dir/file", FILE).is_err());
        assert!(t.entry("dir", EntryKind::Directory).is_err());
        let mut t = tree();
        t.entry("dir/file", FILE).unwrap();
        assert!(t.symlink("dir", "real").is_err());
        assert!(PackageTree::new(PackageLimits::default(), 100_001).is_err());
        let mut t = tree();
        t.add_bytes("a", 10).unwrap();
        let err = t
            .add_bytes("b", crate::model::MAX_PACKAGE_UNZIPPED_BYTES)
            .unwrap_err();
        assert!(err.to_string().contains("250 MB"), "{err}");
    }

    #[test]
    fn symlink_targets() {
        let rel = Path::new("lib/libfoo.so");
        assert!(check_symlink_target(rel, "libfoo.so.1").is_ok());
        assert!(check_symlink_target(rel, "../data.txt").is_ok());
        assert!(check_symlink_target(rel, "../../etc/passwd").is_err());
        assert!(check_symlink_target(rel, "/etc/passwd").is_err());
    }
}
