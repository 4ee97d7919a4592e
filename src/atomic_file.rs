//! Replacing a file atomically: a private (0600) temporary file in the target's directory,
//! written, synced, then renamed over the target with `tempfile`'s `persist`, and the directory
//! synced so the rename survives a crash. A failure removes the temporary file; a crash before
//! the rename leaves the old file intact.
//!
//! Temporary files are named `.<file name>.<random>.tmp`, so an owner can recognise what a
//! crashed writer left ([`TEMP_SUFFIX`]).

use std::fs::File;
use std::io::{BufWriter, Write as _};
use std::path::Path;

/// Ending of every temporary file written here.
pub const TEMP_SUFFIX: &str = ".tmp";

/// Write `path` through `fill`, atomically; `fill`'s value is returned.
pub fn replace<T, E: From<std::io::Error>>(
    path: &Path,
    fill: impl FnOnce(&mut BufWriter<&File>) -> Result<T, E>,
) -> Result<T, E> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let name = path
        .file_name()
        .map_or_else(|| "file".into(), |n| n.to_string_lossy().into_owned());
    let temp = tempfile::Builder::new()
        .prefix(&format!(".{name}."))
        .suffix(TEMP_SUFFIX)
        .tempfile_in(dir)?;
    let mut out = BufWriter::new(temp.as_file());
    let value = fill(&mut out)?;
    out.flush()?;
    drop(out);
    temp.as_file().sync_all()?;
    crate::credentials::crash_point(&format!(
        "{}-before-rename",
        name.split('.').next().unwrap_or_default()
    ));
    temp.persist(path).map_err(|e| e.error)?;
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_whole_or_not_at_all() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.csv");
        std::fs::write(&path, "old").unwrap();
        let failed: std::io::Result<()> = replace(&path, |w| {
            w.write_all(b"half")?;
            Err(std::io::Error::other("broken"))
        });
        assert!(failed.is_err());
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "old");
        let n = replace(&path, |w| w.write_all(b"new").map(|()| 3)).unwrap();
        assert_eq!(
            (n, std::fs::read_to_string(&path).unwrap().as_str()),
            (3, "new")
        );
        let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().flatten().collect();
        assert_eq!(names.len(), 1, "no temporary file is left");
    }
}
