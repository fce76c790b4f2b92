//! Safety rules for entries of a function's ZIP package, shared by kumod
//! (refuses bad packages at upload) and the agent (enforces them again while
//! unpacking, counting real bytes).

use std::path::{Component, Path, PathBuf};

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

    #[test]
    fn symlink_targets() {
        let rel = Path::new("lib/libfoo.so");
        assert!(check_symlink_target(rel, "libfoo.so.1").is_ok());
        assert!(check_symlink_target(rel, "../data.txt").is_ok());
        assert!(check_symlink_target(rel, "../../etc/passwd").is_err());
        assert!(check_symlink_target(rel, "/etc/passwd").is_err());
    }
}
