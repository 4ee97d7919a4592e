//! A cache of catalogs that had to be merged and validated from TOML (a `--catalog` overlay, or
//! a refreshed layer over a changed embedded catalog), so that only the first command pays for
//! it.
//!
//! The key is a hash of everything the result depends on: this build of capsule, the embedded
//! catalog, the refreshed layer's bytes and every overlay file's path and content. A changed
//! byte anywhere gives another key, so an entry is never stale; it is never consulted by
//! modification times.
//!
//! An entry is `$CAPSULE_HOME/cache/catalog-<key>.bin`: a header (magic, key, payload length,
//! payload checksum) and the catalog with the notices its load produced, as MessagePack (named
//! fields, so every serde shape of the schema round-trips, and a field added to a schema type
//! is in the format with no change here). The payload is parts: the catalog without its
//! templates (with the notices), the query index's rows, the offset of each template, then the
//! templates, each one encoded alone (see `index.rs`). A read decodes the first part only: the
//! templates are decoded when something reads them, all of them on every core, or one by one
//! for a query the index serves. It is written atomically (a temporary file renamed into place); an entry that is truncated,
//! corrupt or of another format is ignored and rewritten, never trusted. Only the newest few
//! entries are kept.

use super::index::{self, Indexed};
use super::schema::Template;
use super::{Catalog, Templates};
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::path::{Path, PathBuf};
use xxhash_rust::xxh3::{xxh3_64, Xxh3};

/// Changes whenever the entry layout or its encoding changes.
const MAGIC: &[u8; 8] = b"CAPCAT03";
const HEADER: usize = 8 + 16 + 8 + 8;
/// Entries kept in the cache directory (the newest ones).
const KEEP: usize = 4;
/// Templates encoded or decoded by one worker at a time.
pub(crate) const RUN: usize = 8192;
/// Parts of a payload: head, index rows, template offsets, templates.
const PARTS: usize = 4;

/// What a cache entry holds: the catalog and the notices to print again.
#[derive(Serialize, Deserialize)]
pub struct Entry {
    pub catalog: Catalog,
    pub notes: Vec<String>,
}

/// The first part of a payload: the entry with no templates.
#[derive(Serialize, Deserialize)]
struct Head {
    catalog: Catalog,
    notes: Vec<String>,
}

/// The key of a load: a 128-bit hash over its inputs, each one length-prefixed.
pub struct Key(u128);

/// Builds a [`Key`] from the inputs of a load.
pub struct KeyBuilder(Xxh3);

impl Default for KeyBuilder {
    /// A key for this build of capsule.
    fn default() -> KeyBuilder {
        let mut k = KeyBuilder(Xxh3::new());
        k.part(MAGIC);
        k.part(env!("CARGO_PKG_VERSION").as_bytes());
        k.part(build_id().as_bytes());
        k
    }
}

impl KeyBuilder {
    /// One input (length-prefixed, so `ab`+`c` and `a`+`bc` differ).
    pub fn part(&mut self, bytes: &[u8]) -> &mut Self {
        self.0.update(&(bytes.len() as u64).to_le_bytes());
        self.0.update(bytes);
        self
    }

    pub fn finish(&self) -> Key {
        Key(self.0.digest128())
    }

    /// One catalog file: its path, folder, layer and text. The text enters as its own 128-bit
    /// digest, so a file on disk can be keyed as a stream ([`KeyBuilder::file`]) with the same
    /// result as the same text held in memory.
    pub fn source(
        &mut self,
        path: &str,
        folder: Option<&str>,
        layer: u8,
        digest: u128,
    ) -> &mut Self {
        self.part(path.as_bytes())
            .part(folder.unwrap_or("").as_bytes())
            .part(&[layer])
            .part(&digest.to_le_bytes())
    }
}

/// The digest of a catalog file's text (what [`file_digest`] gives for the file holding it).
pub fn text_digest(text: &str) -> u128 {
    xxhash_rust::xxh3::xxh3_128(text.as_bytes())
}

/// The digest of a file's text read as a stream, a leading UTF-8 byte-order mark left out as
/// the loader leaves it out: the same as [`text_digest`] of the text the loader reads, without
/// holding the file in memory.
pub fn file_digest(path: &Path) -> std::io::Result<u128> {
    use std::io::Read;
    let mut f = std::fs::File::open(path)?;
    let mut h = Xxh3::new();
    let mut buf = vec![0u8; 256 * 1024];
    let mut first = true;
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        let mut chunk = &buf[..n];
        if first {
            first = false;
            // A short first read could split the mark; read on until 3 bytes are known.
            let mut have = n;
            while have < 3 {
                let m = f.read(&mut buf[have..])?;
                if m == 0 {
                    break;
                }
                have += m;
            }
            chunk = &buf[..have];
            if chunk.starts_with(b"\xEF\xBB\xBF") {
                chunk = &chunk[3..];
            }
        }
        h.update(chunk);
    }
    Ok(h.digest128())
}

/// The running executable's size and modification time: a rebuilt capsule (other merge or
/// validation rules) never reads the entries of another build.
fn build_id() -> String {
    let meta = std::env::current_exe().and_then(std::fs::metadata);
    match meta {
        Ok(m) => {
            let t = m
                .modified()
                .ok()
                .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                .map_or(0, |d| d.as_nanos());
            format!("{}:{t}", m.len())
        }
        Err(_) => String::new(),
    }
}

/// `$CAPSULE_HOME/cache`.
pub fn dir(home: &Path) -> PathBuf {
    home.join("cache")
}

fn path(home: &Path, key: &Key) -> PathBuf {
    dir(home).join(format!("catalog-{:032x}.bin", key.0))
}

/// The entry for `key`, if there is a sound one.
///
/// The file is mapped, not read: its pages come straight from the page cache, which spares
/// copying 20+ MB into fresh memory (about a fifth of the page faults of a cached load).
/// Mapping is sound here because an entry file is never changed in place: capsule writes a
/// new file and renames it over the old one, and pruning unlinks; a reader's mapping keeps the
/// old file's pages either way.
pub fn read(home: &Path, key: &Key) -> Option<Entry> {
    let at = path(home, key);
    let file = std::fs::File::open(&at).ok()?;
    // SAFETY: see above; the bytes are checked (length, checksum) before they are decoded.
    let map = unsafe { memmap2::Mmap::map(&file) }.ok()?;
    decode(map, key, at)
}

/// The bytes of an entry: a mapped file, or (in tests) memory.
pub(crate) trait Bytes: AsRef<[u8]> + Send + Sync + 'static {}
impl<T: AsRef<[u8]> + Send + Sync + 'static> Bytes for T {}

fn decode(bytes: impl Bytes, key: &Key, at: PathBuf) -> Option<Entry> {
    let all = bytes.as_ref();
    let (head, payload) = all.split_at_checked(HEADER)?;
    let (magic, rest) = head.split_at(8);
    let (stored_key, rest) = rest.split_at(16);
    let (len, sum) = rest.split_at(8);
    let len = u64::from_le_bytes(len.try_into().ok()?);
    let sum = u64::from_le_bytes(sum.try_into().ok()?);
    let sound = magic == MAGIC
        && stored_key == key.0.to_le_bytes()
        && len == payload.len() as u64
        && sum == xxh3_64(payload);
    if !sound {
        return None;
    }
    decode_payload(bytes, HEADER, at)
}

/// The payload: the number of parts (u32), each part's length (u64), then the parts: the entry
/// without its templates, the index rows, the templates' offsets and the templates.
///
/// Given as pieces whose concatenation is the payload, so that a write streams them out
/// without first copying 30 MB into one buffer.
fn encode_pieces(entry: &Entry) -> Option<Vec<Vec<u8>>> {
    // The entry without its templates: a shallow copy of everything else (small).
    let head = Head {
        catalog: entry.catalog.clone_without_templates(),
        notes: entry.notes.clone(),
    };
    let templates: &[Template] = &entry.catalog.templates;
    let runs: Vec<&[Template]> = templates.chunks(RUN).collect();
    // Each run: its templates' bytes, one after the other, and where each one ends.
    let encoded = super::cores::on_cores(&runs, |run| {
        // About 240 bytes a template: room for most runs without growing.
        let mut bytes = Vec::with_capacity(run.len() * 256);
        let mut ends = Vec::with_capacity(run.len());
        for t in *run {
            rmp_serde::encode::write_named(&mut bytes, t).ok()?;
            ends.push(bytes.len());
        }
        Some((bytes, ends))
    })
    .ok()?;
    let mut offsets = Vec::with_capacity(templates.len() * 8);
    let mut data_len = 0;
    let mut data = Vec::with_capacity(encoded.len());
    for e in encoded {
        let (bytes, ends) = e?;
        let mut start = 0;
        for end in ends {
            offsets.extend_from_slice(&((data_len + start) as u64).to_le_bytes());
            start = end;
        }
        data_len += bytes.len();
        data.push(bytes);
    }
    let parts = [
        rmp_serde::to_vec_named(&head).ok()?,
        index::encode_rows(&entry.catalog)?,
        offsets,
    ];
    let lens = [parts[0].len(), parts[1].len(), parts[2].len(), data_len];
    let mut lead = Vec::with_capacity(4 + 8 * PARTS);
    lead.extend_from_slice(&u32::try_from(PARTS).ok()?.to_le_bytes());
    for len in lens {
        lead.extend_from_slice(&(len as u64).to_le_bytes());
    }
    let mut pieces = Vec::with_capacity(1 + parts.len() + data.len());
    pieces.push(lead);
    pieces.extend(parts);
    pieces.extend(data);
    Some(pieces)
}

/// The payload in one buffer.
#[cfg(test)]
fn encode_payload(entry: &Entry) -> Option<Vec<u8>> {
    encode_pieces(entry).map(|p| p.concat())
}

/// The entry whose payload starts at `from` in `bytes`: the head decoded, the templates left
/// to an [`Indexed`] that keeps the bytes.
fn decode_payload(bytes: impl Bytes, from: usize, at: PathBuf) -> Option<Entry> {
    let payload = bytes.as_ref().get(from..)?;
    let (count, rest) = payload.split_at_checked(4)?;
    let count = usize::try_from(u32::from_le_bytes(count.try_into().ok()?)).ok()?;
    if count != PARTS {
        return None;
    }
    let (lens, body) = rest.split_at_checked(count * 8)?;
    let mut ranges = Vec::with_capacity(count);
    let mut start = from + 4 + count * 8;
    for len in lens.chunks_exact(8) {
        let len = usize::try_from(u64::from_le_bytes(len.try_into().ok()?)).ok()?;
        let end = start.checked_add(len)?;
        ranges.push(start..end);
        start = end;
    }
    if start - (from + 4 + count * 8) != body.len() {
        return None;
    }
    let Head { mut catalog, notes } =
        rmp_serde::from_slice(bytes.as_ref().get(ranges[0].clone())?).ok()?;
    let ix = Indexed::new(
        Box::new(bytes),
        ranges[1].clone(),
        ranges[2].clone(),
        ranges[3].clone(),
        at,
    )?;
    catalog.templates = Templates::deferred(std::sync::Arc::new(ix));
    Some(Entry { catalog, notes })
}

/// Store an entry; a cache that cannot be written is no error (the next command loads again).
pub fn write(home: &Path, key: &Key, entry: &Entry) {
    let Some(pieces) = encode_pieces(entry) else {
        return;
    };
    // The checksum of the payload, streamed over its pieces (the same as over one buffer).
    let mut sum = Xxh3::new();
    let mut len = 0u64;
    for p in &pieces {
        sum.update(p);
        len += p.len() as u64;
    }
    let d = dir(home);
    if std::fs::create_dir_all(&d).is_err() {
        return;
    }
    let dest = path(home, key);
    let tmp = d.join(format!(
        ".catalog-{:032x}.tmp-{}",
        key.0,
        std::process::id()
    ));
    let written = (|| -> std::io::Result<()> {
        let mut f = std::io::BufWriter::new(std::fs::File::create(&tmp)?);
        f.write_all(MAGIC)?;
        f.write_all(&key.0.to_le_bytes())?;
        f.write_all(&len.to_le_bytes())?;
        f.write_all(&sum.digest().to_le_bytes())?;
        for p in &pieces {
            f.write_all(p)?;
        }
        // No fsync: an entry is a cache, and one torn by a crash fails its checksum and is
        // rebuilt; syncing 20+ MB would cost the first load more than the rest of the write.
        f.flush()?;
        std::fs::rename(&tmp, &dest)
    })();
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
        return;
    }
    prune(&d, &dest);
}

/// Keep the newest [`KEEP`] entries (`keep` among them).
fn prune(d: &Path, keep: &Path) {
    let Ok(rd) = std::fs::read_dir(d) else {
        return;
    };
    let mut entries: Vec<(std::time::SystemTime, PathBuf)> = rd
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("catalog-") && n.ends_with(".bin"))
        })
        .filter(|p| p != keep)
        .filter_map(|p| Some((std::fs::metadata(&p).ok()?.modified().ok()?, p)))
        .collect();
    entries.sort_by_key(|e| std::cmp::Reverse(e.0));
    for (_, p) in entries.into_iter().skip(KEEP - 1) {
        let _ = std::fs::remove_file(p);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Entry {
        let mut catalog = crate::catalog::embedded().unwrap();
        catalog.refreshed.insert("x".into(), "2026-01-01".into());
        Entry {
            catalog,
            notes: vec!["a note".into()],
        }
    }

    #[test]
    fn an_entry_round_trips_and_any_damage_is_ignored() {
        let home = tempfile::tempdir().unwrap();
        let key = KeyBuilder::default().part(b"overlay").finish();
        let e = sample();
        write(home.path(), &key, &e);
        let back = read(home.path(), &key).expect("entry reads back");
        assert_eq!(back.notes, e.notes);
        assert_eq!(
            serde_json::to_string(&back.catalog).unwrap(),
            serde_json::to_string(&e.catalog).unwrap()
        );
        let p = path(home.path(), &key);
        let good = std::fs::read(&p).unwrap();
        // A flipped payload byte, a truncation, a foreign key: all ignored.
        let mut flipped = good.clone();
        let last = flipped.len() - 10;
        flipped[last] ^= 0x20;
        assert!(decode(flipped, &key, p.clone()).is_none());
        assert!(decode(good[..good.len() - 1].to_vec(), &key, p.clone()).is_none());
        assert!(decode(good[..10].to_vec(), &key, p.clone()).is_none());
        let other = KeyBuilder::default().part(b"overlay2").finish();
        assert!(decode(good, &other, p).is_none());
    }

    #[test]
    fn a_catalog_of_many_runs_round_trips_in_order() {
        let mut e = sample();
        let base = e.catalog.templates.clone();
        // Several runs and a partial last one, every template distinct.
        let n = RUN * 2 + 17;
        e.catalog.templates = (0..n)
            .map(|i| {
                let mut t = base[i % base.len()].clone();
                t.id = format!("{}-{i}", t.id);
                t.price_hourly += i as f64 / 1e6;
                t
            })
            .collect();
        let payload = encode_payload(&e).unwrap();
        let at = PathBuf::from("entry");
        let back = decode_payload(payload.clone(), 0, at.clone()).expect("decodes");
        assert_eq!(back.catalog.templates.len(), n);
        assert_eq!(
            serde_json::to_string(&back.catalog).unwrap(),
            serde_json::to_string(&e.catalog).unwrap()
        );
        assert_eq!(back.notes, e.notes);
        // A part's length that does not add up is refused, not misread.
        let mut bad = payload.clone();
        bad[4] ^= 1;
        assert!(decode_payload(bad, 0, at.clone()).is_none());
        assert!(decode_payload(payload[..payload.len() - 1].to_vec(), 0, at.clone()).is_none());
        assert!(decode_payload(Vec::new(), 0, at).is_none());
    }

    #[test]
    fn keys_follow_every_input() {
        let k = |parts: &[&[u8]]| {
            let mut b = KeyBuilder::default();
            for p in parts {
                b.part(p);
            }
            b.finish().0
        };
        assert_eq!(k(&[b"ab", b"c"]), k(&[b"ab", b"c"]));
        assert_ne!(k(&[b"ab", b"c"]), k(&[b"a", b"bc"]));
        assert_ne!(k(&[b"ab", b"c"]), k(&[b"ab", b"d"]));
    }

    #[test]
    fn a_file_streamed_keys_like_its_text_in_memory() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("a.toml");
        let big = "x = 1\n".repeat(100_000); // several read chunks
        for text in ["", "a", "ab", "[t]\nid = \"é\"\n", big.as_str()] {
            std::fs::write(&p, text).unwrap();
            assert_eq!(file_digest(&p).unwrap(), text_digest(text), "{text:.20}");
            // The loader drops a UTF-8 byte-order mark, and so does the streamed digest.
            std::fs::write(&p, format!("\u{feff}{text}")).unwrap();
            assert_eq!(file_digest(&p).unwrap(), text_digest(text));
        }
        std::fs::write(&p, "a = 1").unwrap();
        assert_ne!(file_digest(&p).unwrap(), text_digest("a = 2"));
        let k = |text: &str, layer: u8| {
            let mut b = KeyBuilder::default();
            b.source("p", Some("aws"), layer, text_digest(text));
            b.finish().0
        };
        assert_ne!(k("a", 1), k("b", 1));
        assert_ne!(k("a", 1), k("a", 2));
    }

    #[test]
    fn only_the_newest_entries_are_kept() {
        let home = tempfile::tempdir().unwrap();
        let e = Entry {
            catalog: Catalog::default(),
            notes: vec![],
        };
        for n in 0..(KEEP + 3) {
            let key = KeyBuilder::default().part(&n.to_le_bytes()).finish();
            write(home.path(), &key, &e);
        }
        let left = std::fs::read_dir(dir(home.path())).unwrap().count();
        assert_eq!(left, KEEP);
    }
}
