//! The picture cache's files on disk: a file is written whole or not at
//! all (a temporary name in the same directory, synced, then renamed), so a
//! half-written file is never served; a file's name in the cache comes
//! from its picture id and the server's name; a fetched file is checked
//! against the hash the server gave, when the hash has a known form; and
//! files the index does not know (a kill's leftovers) are swept. A leaf:
//! plain `std::io`, no engine type.

use std::collections::HashSet;
use std::fs;
use std::io::{self, Write};
use std::path::Path;

use md5::Digest as _;

/// The suffix of a file being written.
const PART: &str = ".part";

/// The cache's name of picture `id`'s file, from the server's `file_name`
/// (or URL): `<id>-<last path segment>`, with only ASCII letters, digits,
/// `.`, `-` and `_` (others become `_`), at most 100 characters.
pub fn local_name(id: i64, file_name: &str) -> String {
    let base = file_name
        .split(['?', '#'])
        .next()
        .unwrap_or_default()
        .rsplit(['/', '\\'])
        .next()
        .unwrap_or_default();
    let mut clean: String = base
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_') {
                c
            } else {
                '_'
            }
        })
        .collect();
    // Keep the end (the extension) of a long name.
    if clean.len() > 80 {
        clean = clean[clean.len() - 80..].to_string();
    }
    let clean = clean.trim_start_matches('.');
    if clean.is_empty() {
        format!("{id}-picture")
    } else {
        format!("{id}-{clean}")
    }
}

/// Writes `data` as `dir/name`, whole or not at all: into `.name.part`,
/// synced to disk, then renamed over any older file of that name (and the
/// directory synced, where the system allows). On an error the temporary
/// file is removed and an older file is left as it was.
pub fn write_whole(dir: &Path, name: &str, data: &[u8]) -> io::Result<()> {
    let part = dir.join(format!(".{name}{PART}"));
    let written = (|| {
        let mut file = fs::File::create(&part)?;
        file.write_all(data)?;
        file.sync_all()?;
        drop(file);
        fs::rename(&part, dir.join(name))
    })();
    if written.is_err() {
        let _ = fs::remove_file(&part);
    }
    written?;
    // The rename itself outlives a power cut once the directory is synced
    // (not possible on every system: a failure only loses durability).
    if let Ok(d) = fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

/// Removes `dir/name`; a file already gone is no error.
pub fn remove(dir: &Path, name: &str) -> io::Result<()> {
    match fs::remove_file(dir.join(name)) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

/// Removes the files of `dir` that look like the cache's (`<digits>-...`,
/// or a temporary `.part`) and are not in `keep`; returns how many went.
pub fn sweep(dir: &Path, keep: &HashSet<String>) -> io::Result<u64> {
    let mut removed = 0;
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let Ok(name) = entry.file_name().into_string() else {
            continue;
        };
        let ours = name.ends_with(PART)
            || name
                .split_once('-')
                .is_some_and(|(id, _)| !id.is_empty() && id.bytes().all(|b| b.is_ascii_digit()));
        if ours && !keep.contains(&name) && entry.file_type()?.is_file() {
            remove(dir, &name)?;
            removed += 1;
        }
    }
    Ok(removed)
}

/// Whether `data` has the hash `hash`, when the hash has a form this
/// engine can check: 32 hex digits (MD5) or 64 (SHA-256), in either case.
/// `None` for any other form: which hash the real server gives is not
/// known (WIRE.md section 7), so such a hash only tells when a picture
/// changed.
pub fn hash_matches(hash: &str, data: &[u8]) -> Option<bool> {
    let hash = hash.trim();
    if !hash.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let digest: Vec<u8> = match hash.len() {
        32 => md5::Md5::digest(data).to_vec(),
        64 => sha2::Sha256::digest(data).to_vec(),
        _ => return None,
    };
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    Some(hex.eq_ignore_ascii_case(hash))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_names_are_safe_and_keep_the_extension() {
        assert_eq!(local_name(7, "a b/ک.jpg"), "7-_.jpg");
        assert_eq!(local_name(7, "https://h/x/12.png?v=2"), "7-12.png");
        assert_eq!(local_name(7, "../.."), "7-picture");
        assert_eq!(local_name(7, ""), "7-picture");
        let long = format!("{}.jpeg", "x".repeat(300));
        assert!(local_name(1, &long).ends_with(".jpeg"));
        assert!(local_name(1, &long).len() <= 83);
    }

    #[test]
    fn hashes_of_known_forms_are_checked_and_others_are_not() {
        let md5 = "5d41402abc4b2a76b9719d911017c592"; // "hello"
        assert_eq!(hash_matches(md5, b"hello"), Some(true));
        assert_eq!(hash_matches(&md5.to_uppercase(), b"hello"), Some(true));
        assert_eq!(hash_matches(md5, b"hellO"), Some(false));
        let sha = "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824";
        assert_eq!(hash_matches(sha, b"hello"), Some(true));
        assert_eq!(hash_matches("v2", b"hello"), None);
        assert_eq!(hash_matches("abc123", b"hello"), None);
    }

    #[test]
    fn a_file_is_written_whole_and_strays_are_swept() {
        let dir = std::env::temp_dir().join(format!("rowsync-files-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        write_whole(&dir, "1-a.jpg", b"one").unwrap();
        write_whole(&dir, "1-a.jpg", b"two").unwrap();
        assert_eq!(fs::read(dir.join("1-a.jpg")).unwrap(), b"two");
        fs::write(dir.join(".2-b.jpg.part"), b"half").unwrap();
        fs::write(dir.join("3-c.jpg"), b"stray").unwrap();
        fs::write(dir.join("notes.txt"), b"not ours").unwrap();
        let keep: HashSet<String> = ["1-a.jpg".to_string()].into();
        assert_eq!(sweep(&dir, &keep).unwrap(), 2);
        let mut left: Vec<String> = fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        left.sort();
        assert_eq!(left, ["1-a.jpg", "notes.txt"]);
        remove(&dir, "1-a.jpg").unwrap();
        remove(&dir, "1-a.jpg").unwrap();
        let _ = fs::remove_dir_all(&dir);
    }
}
