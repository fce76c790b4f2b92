//! A runtime's entry point in a checked package: the `provided` runtime
//! runs the package's `bootstrap`, which must be an executable file at the
//! root (or a symlink, inside the package, to one), so a package without
//! one is refused when it is uploaded instead of failing at the first
//! invoke.

use std::path::{Path, PathBuf};

use super::{entry_path, resolve, EntryKind, PackageTree};

/// Why a package's entry point cannot be run.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EntryPointError {
    /// Nothing of that name at the root.
    #[error("the package has no executable file {name:?} at its root (the runtime starts it)")]
    Missing {
        /// The entry point's name.
        name: String,
    },
    /// A directory of that name (or a symlink to one).
    #[error("{name:?} at the package root is a directory, not an executable file")]
    Directory {
        /// The entry point's name.
        name: String,
    },
    /// A file without an execute bit in its ZIP entry.
    #[error("{name:?} at the package root is not executable (its ZIP entry has no execute permission: `chmod 755 {name}` before zipping, with a zip tool that keeps Unix permissions)")]
    NotExecutable {
        /// The entry point's name.
        name: String,
    },
    /// A symlink whose target is not in the package.
    #[error(
        "{name:?} at the package root is a symlink to {target:?}, which is not in the package"
    )]
    Dangling {
        /// The entry point's name.
        name: String,
        /// Where it points, relative to the root.
        target: PathBuf,
    },
}

impl PackageTree {
    /// Checks that `name` (a plain file name, e.g. `bootstrap`) is an
    /// executable file at the package root, directly or through the
    /// package's symlinks (which the package rules keep inside the
    /// package). Call after the last entry.
    pub fn executable(&self, name: &str) -> Result<(), EntryPointError> {
        let owned = || name.to_string();
        let Ok(relative) = entry_path(name) else {
            return Err(EntryPointError::Missing { name: owned() });
        };
        let target = match self.symlinks.get(&relative) {
            Some((_, link)) => match resolve(&self.symlinks, &relative, link) {
                Ok(target) => target,
                Err(_) => return Err(EntryPointError::Missing { name: owned() }),
            },
            None => relative.clone(),
        };
        match self.kinds.get(&target) {
            Some(EntryKind::File { executable: true }) => Ok(()),
            Some(EntryKind::File { executable: false }) => {
                Err(EntryPointError::NotExecutable { name: owned() })
            }
            Some(EntryKind::Directory) => Err(EntryPointError::Directory { name: owned() }),
            None if self.holds_below(&target) => Err(EntryPointError::Directory { name: owned() }),
            None if target != relative => Err(EntryPointError::Dangling {
                name: owned(),
                target,
            }),
            None => Err(EntryPointError::Missing { name: owned() }),
        }
    }

    /// Whether some entry lies below `dir` (a directory the ZIP only
    /// implies, e.g. `bootstrap/x` without `bootstrap/`).
    fn holds_below(&self, dir: &Path) -> bool {
        self.paths.keys().any(|p| p != dir && p.starts_with(dir))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::package::PackageLimits;

    const EXECUTABLE: EntryKind = EntryKind::File { executable: true };
    const PLAIN: EntryKind = EntryKind::File { executable: false };

    fn tree(entries: &[(&str, EntryKind)], links: &[(&str, &str)]) -> PackageTree {
        let mut tree = PackageTree::new(PackageLimits::default(), 100).unwrap();
        for (name, kind) in entries {
            tree.entry(name, *kind).unwrap();
        }
        for (name, link) in links {
            tree.symlink(name, link).unwrap();
        }
        tree.finish().unwrap();
        tree
    }

    fn check(entries: &[(&str, EntryKind)], links: &[(&str, &str)]) -> Result<(), EntryPointError> {
        tree(entries, links).executable("bootstrap")
    }

    #[test]
    fn an_executable_file_or_a_link_to_one_is_accepted() {
        check(&[("bootstrap", EXECUTABLE)], &[]).unwrap();
        check(&[("./bootstrap", EXECUTABLE)], &[]).unwrap();
        check(&[("bin/run", EXECUTABLE)], &[("bootstrap", "bin/run")]).unwrap();
        check(
            &[("bin/run", EXECUTABLE)],
            &[("b2", "bin/run"), ("bootstrap", "b2")],
        )
        .unwrap();
    }

    #[test]
    fn missing_plain_directory_and_dangling_entry_points_are_refused() {
        let err = check(&[("app.py", PLAIN)], &[]).unwrap_err();
        assert!(matches!(err, EntryPointError::Missing { .. }), "{err}");
        assert!(err.to_string().contains("\"bootstrap\""), "{err}");
        let err = check(&[("sub/bootstrap", EXECUTABLE)], &[]).unwrap_err();
        assert!(matches!(err, EntryPointError::Missing { .. }), "{err}");
        let err = check(&[("bootstrap", PLAIN)], &[]).unwrap_err();
        assert!(
            matches!(err, EntryPointError::NotExecutable { .. }),
            "{err}"
        );
        assert!(err.to_string().contains("chmod 755 bootstrap"), "{err}");
        let err = check(&[("bootstrap/", EntryKind::Directory)], &[]).unwrap_err();
        assert!(matches!(err, EntryPointError::Directory { .. }), "{err}");
        let err = check(&[("bootstrap/run", EXECUTABLE)], &[]).unwrap_err();
        assert!(matches!(err, EntryPointError::Directory { .. }), "{err}");
        let err = check(&[("bin/run", EXECUTABLE)], &[("bootstrap", "bin")]).unwrap_err();
        assert!(matches!(err, EntryPointError::Directory { .. }), "{err}");
        let err = check(&[("bin/plain", PLAIN)], &[("bootstrap", "bin/plain")]).unwrap_err();
        assert!(
            matches!(err, EntryPointError::NotExecutable { .. }),
            "{err}"
        );
        let err = check(&[], &[("bootstrap", "nowhere")]).unwrap_err();
        assert_eq!(
            err,
            EntryPointError::Dangling {
                name: "bootstrap".into(),
                target: "nowhere".into()
            }
        );
    }

    #[test]
    fn zip_modes_decide_executability() {
        assert_eq!(EntryKind::of(false, 0o100755), EXECUTABLE);
        assert_eq!(EntryKind::of(false, 0o100744), EXECUTABLE);
        assert_eq!(EntryKind::of(false, 0o100644), PLAIN);
        assert_eq!(EntryKind::of(true, 0o40755), EntryKind::Directory);
    }
}
