//! Function packages for tests: directories, zips, copies.

use std::path::Path;
use std::process::Command;

/// Writes `files` into a fresh directory (world-readable) and returns it.
pub fn package_dir(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    for (name, content) in files {
        let path = dir.path().join(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).expect("mkdir");
        }
        std::fs::write(&path, content).expect("write");
    }
    dir
}

/// Zips the files of `dir` into `out` (a `.zip` path) with Python's
/// `shutil.make_archive`, as a user would.
pub fn zip_dir(dir: &Path, out: &Path) {
    python(
        "import shutil,sys; shutil.make_archive(sys.argv[1], 'zip', sys.argv[2])",
        &[
            &out.with_extension("").to_string_lossy(),
            &dir.to_string_lossy(),
        ],
    );
}

/// Copies the directory tree `from` to `to` (created if missing).
pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for entry in std::fs::read_dir(from).expect("read_dir") {
        let entry = entry.expect("directory entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("file type").is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).expect("copy");
        }
    }
}

/// Runs `/usr/bin/python3 -c script args…`, panicking on failure.
pub fn python(script: &str, args: &[&str]) {
    let status = Command::new("/usr/bin/python3")
        .arg("-c")
        .arg(script)
        .args(args)
        .status()
        .expect("running /usr/bin/python3");
    assert!(status.success(), "python helper failed");
}
