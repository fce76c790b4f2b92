//! A function's `/opt` (docs/wire-formats.md §13): its layers' unpacked
//! trees merged in order into one read-only tree, a later layer's files
//! replacing an earlier one's. Files are hard links to the unpacked layers
//! (the same file store), so a merge costs one directory walk and no copies.
//! The merged tree is built beside its final path and renamed into place.

use std::fs;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

/// A merge failed.
#[derive(Debug, thiserror::Error)]
#[error("merging layers into {path}: {op}: {source}")]
pub struct MergeError {
    /// What was being done.
    pub op: &'static str,
    /// The path it was done to.
    pub path: String,
    /// The OS error.
    #[source]
    pub source: std::io::Error,
}

fn failed(op: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> MergeError {
    let path = path.display().to_string();
    move |source| MergeError { op, path, source }
}

/// The name of the merged tree of these layer digests, in this order.
pub fn merged_name(digests: &[String]) -> String {
    let mut hash = Sha256::new();
    for digest in digests {
        hash.update(digest.as_bytes());
        hash.update(b"\n");
    }
    format!("opt-{}", hex::encode(hash.finalize()))
}

/// Merges the unpacked `layers` (in order) into `dest`, which must not
/// exist yet.
pub fn merge(layers: &[PathBuf], dest: &Path) -> Result<(), MergeError> {
    let name = dest
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let staging = dest.with_file_name(format!(".{name}.partial-{}", std::process::id()));
    let _ = fs::remove_dir_all(&staging);
    fs::create_dir(&staging).map_err(failed("creating", &staging))?;
    let result = layers
        .iter()
        .try_for_each(|layer| overlay(layer, &staging))
        .and_then(|()| {
            fs::set_permissions(&staging, fs::Permissions::from_mode(0o755))
                .map_err(failed("setting permissions of", &staging))?;
            fs::rename(&staging, dest).map_err(failed("renaming into place", dest))
        });
    if result.is_err() {
        let _ = fs::remove_dir_all(&staging);
    }
    result
}

/// Copies the tree `from` over `into`: directories merge, anything else
/// replaces what is there.
fn overlay(from: &Path, into: &Path) -> Result<(), MergeError> {
    for entry in fs::read_dir(from).map_err(failed("reading", from))? {
        let entry = entry.map_err(failed("reading", from))?;
        let source = entry.path();
        let target = into.join(entry.file_name());
        let kind = entry.file_type().map_err(failed("inspecting", &source))?;
        let existing = fs::symlink_metadata(&target).ok();
        if kind.is_dir() {
            match existing {
                Some(meta) if meta.is_dir() => {}
                Some(_) => {
                    fs::remove_file(&target).map_err(failed("replacing", &target))?;
                    make_dir(&target)?;
                }
                None => make_dir(&target)?,
            }
            overlay(&source, &target)?;
            continue;
        }
        match existing {
            Some(meta) if meta.is_dir() => {
                fs::remove_dir_all(&target).map_err(failed("replacing", &target))?
            }
            Some(_) => fs::remove_file(&target).map_err(failed("replacing", &target))?,
            None => {}
        }
        if kind.is_symlink() {
            let link = fs::read_link(&source).map_err(failed("reading the link", &source))?;
            symlink(&link, &target).map_err(failed("linking", &target))?;
        } else if fs::hard_link(&source, &target).is_err() {
            fs::copy(&source, &target).map_err(failed("copying", &target))?;
        }
    }
    Ok(())
}

fn make_dir(path: &Path) -> Result<(), MergeError> {
    fs::create_dir(path).map_err(failed("creating", path))?;
    fs::set_permissions(path, fs::Permissions::from_mode(0o755))
        .map_err(failed("setting permissions of", path))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(root: &Path, relative: &str, body: &str) {
        let path = root.join(relative);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, body).unwrap();
    }

    #[test]
    fn later_layers_win_and_directories_merge() {
        let dir = tempfile::tempdir().unwrap();
        let (first, second) = (dir.path().join("a"), dir.path().join("b"));
        write(&first, "python/shared.py", "first");
        write(&first, "python/only_first.py", "1");
        write(&first, "lib/thing", "a file in the first");
        symlink("only_first.py", first.join("python/alias.py")).unwrap();
        write(&second, "python/shared.py", "second");
        write(&second, "lib/thing/inside", "a directory in the second");
        write(&second, "python/alias.py", "a file now");
        let dest = dir.path().join(merged_name(&["x".into(), "y".into()]));
        merge(&[first.clone(), second], &dest).unwrap();
        let read = |p: &str| fs::read_to_string(dest.join(p)).unwrap();
        assert_eq!(read("python/shared.py"), "second");
        assert_eq!(read("python/only_first.py"), "1");
        assert_eq!(read("lib/thing/inside"), "a directory in the second");
        assert_eq!(read("python/alias.py"), "a file now");
        assert_eq!(
            fs::read_to_string(first.join("python/shared.py")).unwrap(),
            "first",
            "the unpacked layer is untouched"
        );
        assert!(!dir.path().read_dir().unwrap().any(|e| e
            .unwrap()
            .file_name()
            .to_string_lossy()
            .contains("partial")));
    }

    #[test]
    fn names_depend_on_the_order() {
        let (a, b) = ("a".to_string(), "b".to_string());
        assert_ne!(
            merged_name(&[a.clone(), b.clone()]),
            merged_name(&[b, a.clone()])
        );
        assert!(merged_name(&[a]).starts_with("opt-"));
    }
}
