//! Reading files the user names (`--catalog` files, `--user-data`, CSV imports, the
//! credentials file) without trusting them: regular files only, a size cap checked while
//! reading, and UTF-8 text with UTF-16 recognized and named.
//!
//! A FIFO would block the read forever and a device such as `/dev/zero` never ends; both are
//! refused before they are opened. Every refusal is bad input (exit 2) naming the file.

use crate::error::bad_input;
use std::io::Read;
use std::path::Path;

/// Largest catalog file (a catalog of 100k templates is about 30 MB).
pub const MAX_CATALOG_FILE: u64 = 128 * 1024 * 1024;
/// Largest `--user-data` file (providers accept 16 KB to 64 KB; this is a generous bound).
pub const MAX_USER_DATA: u64 = 1024 * 1024;
/// Largest CSV import.
pub const MAX_CSV: u64 = 256 * 1024 * 1024;
/// Largest credentials file.
pub const MAX_CREDENTIALS: u64 = 1024 * 1024;

/// What kind of non-regular file a path is, in words.
fn kind_of(meta: &std::fs::Metadata) -> &'static str {
    let ft = meta.file_type();
    if ft.is_dir() {
        return "a directory";
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if ft.is_fifo() {
            return "a named pipe (FIFO)";
        }
        if ft.is_char_device() || ft.is_block_device() {
            return "a device";
        }
        if ft.is_socket() {
            return "a socket";
        }
    }
    "not a regular file"
}

/// The bytes of a regular file of at most `max` bytes; `what` names it in errors
/// (`--user-data`, `catalog file`).
pub fn read_bytes(path: &Path, what: &str, max: u64) -> anyhow::Result<Vec<u8>> {
    let shown = path.display();
    let meta = std::fs::metadata(path)
        .map_err(|e| bad_input(format!("cannot read {what} {shown}: {}", io_reason(&e))))?;
    if !meta.is_file() {
        return Err(bad_input(format!(
            "{what} {shown} is {} — pass a regular file",
            kind_of(&meta)
        )));
    }
    let file = std::fs::File::open(path)
        .map_err(|e| bad_input(format!("cannot read {what} {shown}: {}", io_reason(&e))))?;
    // The path may have been swapped between the check and the open: check the handle too.
    let meta = file
        .metadata()
        .map_err(|e| bad_input(format!("cannot read {what} {shown}: {}", io_reason(&e))))?;
    if !meta.is_file() {
        return Err(bad_input(format!(
            "{what} {shown} is {} — pass a regular file",
            kind_of(&meta)
        )));
    }
    let too_big = || {
        bad_input(format!(
            "{what} {shown} is larger than {} — pass a smaller file",
            human(max)
        ))
    };
    if meta.len() > max {
        return Err(too_big());
    }
    let mut buf = Vec::with_capacity(meta.len() as usize);
    // The size can change after the check (a growing file): the cap holds while reading.
    file.take(max + 1)
        .read_to_end(&mut buf)
        .map_err(|e| bad_input(format!("cannot read {what} {shown}: {}", io_reason(&e))))?;
    if buf.len() as u64 > max {
        return Err(too_big());
    }
    Ok(buf)
}

/// The text of a regular UTF-8 file of at most `max` bytes (a UTF-8 byte-order mark is
/// dropped; UTF-16 is named as such).
pub fn read_text(path: &Path, what: &str, max: u64) -> anyhow::Result<String> {
    let bytes = read_bytes(path, what, max)?;
    decode(bytes, &format!("{what} {}", path.display()))
}

/// UTF-8 text from bytes; `what` names the source in errors.
pub fn decode(mut bytes: Vec<u8>, what: &str) -> anyhow::Result<String> {
    if let Some(enc) = utf16_bom(&bytes) {
        return Err(bad_input(format!(
            "{what} is {enc} text — save it as UTF-8 and try again"
        )));
    }
    if bytes.starts_with(b"\xEF\xBB\xBF") {
        bytes.drain(..3);
    }
    String::from_utf8(bytes).map_err(|e| {
        bad_input(format!(
            "{what} is not UTF-8 text (invalid byte at offset {}) — save it as UTF-8",
            e.utf8_error().valid_up_to()
        ))
    })
}

/// The UTF-16 flavour announced by a byte-order mark, if any.
pub fn utf16_bom(bytes: &[u8]) -> Option<&'static str> {
    match bytes {
        [0xFF, 0xFE, ..] => Some("UTF-16 (little-endian)"),
        [0xFE, 0xFF, ..] => Some("UTF-16 (big-endian)"),
        _ => None,
    }
}

fn io_reason(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::NotFound => "no such file".to_string(),
        std::io::ErrorKind::PermissionDenied => "permission denied".to_string(),
        _ => e.to_string(),
    }
}

fn human(bytes: u64) -> String {
    if bytes >= 1024 * 1024 {
        format!("{} MB", bytes / (1024 * 1024))
    } else {
        format!("{} KB", bytes / 1024)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regular_files_only() {
        let err = read_bytes(Path::new("/dev/zero"), "--user-data", 1024).unwrap_err();
        assert_eq!(crate::error::exit_code(&err), 2);
        assert!(err.to_string().contains("is a device"), "{err}");
        let dir = tempfile::tempdir().unwrap();
        let err = read_bytes(dir.path(), "--user-data", 1024).unwrap_err();
        assert!(err.to_string().contains("is a directory"), "{err}");
    }

    #[test]
    fn size_cap() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("big");
        std::fs::write(&p, vec![b'a'; 2048]).unwrap();
        let err = read_bytes(&p, "--user-data", 1024).unwrap_err();
        assert!(err.to_string().contains("larger than 1 KB"), "{err}");
        assert_eq!(read_bytes(&p, "x", 2048).unwrap().len(), 2048);
    }

    #[test]
    fn utf16_is_named() {
        let err = decode(vec![0xFF, 0xFE, b'a', 0], "nodes.csv").unwrap_err();
        assert!(err.to_string().contains("UTF-16 (little-endian)"), "{err}");
        let err = decode(vec![0xFE, 0xFF, 0, b'a'], "nodes.csv").unwrap_err();
        assert!(err.to_string().contains("UTF-16 (big-endian)"), "{err}");
        assert_eq!(decode(b"\xEF\xBB\xBFok".to_vec(), "x").unwrap(), "ok");
    }
}
