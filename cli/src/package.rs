//! Turning `--code` into ZIP bytes: a .zip is sent as is; a directory is
//! zipped in memory, deterministically (sorted entries, fixed timestamps),
//! keeping the executable bit. Symlinks are followed.

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use zip::write::SimpleFileOptions;

/// Where a package comes from: bytes to upload, or an object kumod
/// fetches from an S3-compatible store (`s3://bucket/key` with a profile).
pub fn source(
    code: &Path,
    s3_profile: Option<&str>,
) -> Result<(Vec<u8>, Option<kumo_proto::control::S3Location>), String> {
    let text = code.to_string_lossy();
    let Some(location) = text.strip_prefix("s3://") else {
        if s3_profile.is_some() {
            return Err("--s3-profile applies only to --code s3://bucket/key".into());
        }
        return Ok((load(code)?, None));
    };
    let (bucket, key) = location
        .split_once('/')
        .filter(|(b, k)| !b.is_empty() && !k.is_empty())
        .ok_or_else(|| format!("--code {text}: use s3://bucket/key"))?;
    let profile = s3_profile.ok_or_else(|| {
        format!("--code {text} needs --s3-profile NAME (a profile in kumod's [s3.profiles])")
    })?;
    Ok((
        Vec::new(),
        Some(kumo_proto::control::S3Location {
            profile: profile.to_string(),
            bucket: bucket.to_string(),
            key: key.to_string(),
        }),
    ))
}

/// Reads or builds the package for `path`.
pub fn load(path: &Path) -> Result<Vec<u8>, String> {
    let meta = std::fs::metadata(path).map_err(|e| format!("--code {}: {e}", path.display()))?;
    let bytes = if meta.is_dir() {
        zip_dir(path)?
    } else {
        std::fs::read(path).map_err(|e| format!("reading {}: {e}", path.display()))?
    };
    if bytes.len() as u64 > kumo_proto::model::MAX_PACKAGE_ZIPPED_BYTES {
        return Err(format!(
            "package is {} bytes; the limit is 50 MB zipped",
            bytes.len()
        ));
    }
    Ok(bytes)
}

fn walk(dir: &Path, files: &mut Vec<PathBuf>) -> Result<(), String> {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| format!("reading {}: {e}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    entries.sort();
    for entry in entries {
        let meta = std::fs::metadata(&entry).map_err(|e| format!("{}: {e}", entry.display()))?;
        if meta.is_dir() {
            walk(&entry, files)?;
        } else {
            files.push(entry);
        }
    }
    Ok(())
}

/// Zips a directory's contents (the directory itself is the package root).
pub fn zip_dir(dir: &Path) -> Result<Vec<u8>, String> {
    let mut files = Vec::new();
    walk(dir, &mut files)?;
    let mut out = std::io::Cursor::new(Vec::new());
    let mut zip = zip::ZipWriter::new(&mut out);
    for file in files {
        let name = file
            .strip_prefix(dir)
            .map_err(|e| e.to_string())?
            .to_string_lossy()
            .into_owned();
        let meta = std::fs::metadata(&file).map_err(|e| format!("{}: {e}", file.display()))?;
        let mode = if meta.permissions().mode() & 0o111 != 0 {
            0o755
        } else {
            0o644
        };
        let options = SimpleFileOptions::default()
            .last_modified_time(zip::DateTime::default())
            .unix_permissions(mode);
        let data = std::fs::read(&file).map_err(|e| format!("reading {}: {e}", file.display()))?;
        zip.start_file(name, options).map_err(|e| e.to_string())?;
        zip.write_all(&data).map_err(|e| e.to_string())?;
    }
    zip.finish().map_err(|e| e.to_string())?;
    Ok(out.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn directories_zip_deterministically_with_modes() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("lib")).unwrap();
        std::fs::write(dir.path().join("lib/x.txt"), "x").unwrap();
        std::fs::write(dir.path().join("bootstrap"), "#!/bin/sh\n").unwrap();
        std::fs::set_permissions(
            dir.path().join("bootstrap"),
            std::fs::Permissions::from_mode(0o755),
        )
        .unwrap();
        let a = zip_dir(dir.path()).unwrap();
        assert_eq!(a, zip_dir(dir.path()).unwrap());
        let mut archive = zip::ZipArchive::new(std::io::Cursor::new(a)).unwrap();
        let names: Vec<String> = archive
            .file_names()
            .map(|n| n.unwrap().to_string())
            .collect();
        assert_eq!(names, ["bootstrap", "lib/x.txt"]);
        assert_eq!(
            archive.by_name("bootstrap").unwrap().unix_mode().unwrap() & 0o777,
            0o755
        );
    }

    #[test]
    fn missing_code_is_a_clear_error() {
        let err = load(Path::new("/no/such/dir")).unwrap_err();
        assert!(err.contains("/no/such/dir"), "{err}");
    }
}
