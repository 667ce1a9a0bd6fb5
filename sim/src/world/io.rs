//! Reading and writing the three world files.
//!
//! Files are written to a temporary name and renamed into place, so an
//! interrupted `sim world` never leaves a truncated file that looks valid.
//! Every read error names the file and says how to get a good one.

use std::fs::{self, File};
use std::io::{BufRead, BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use anyhow::{anyhow, Context, Result};
use botify::catalog::Track;
use ndarray::{Array2, ArrayView2};
use ndarray_npy::{ReadNpyExt, ViewNpyError, ViewNpyExt, WriteNpyExt};
use serde::de::DeserializeOwned;
use serde::Serialize;
use tally::progress::{bar_if, Unit};

use super::{User, WorldData};

pub const TRACKS_FILE: &str = "tracks.jsonl";
pub const EMBEDDINGS_FILE: &str = "embeddings.npy";
pub const USERS_FILE: &str = "users.jsonl";

const WRITE_BUFFER: usize = 1 << 20;

/// Writes `data` as `tracks.jsonl`, `embeddings.npy` and `users.jsonl` in
/// `dir` (created if missing), replacing any previous world there.
pub fn write_world(dir: &Path, data: &WorldData, progress: bool) -> Result<()> {
    fs::create_dir_all(dir)
        .with_context(|| format!("cannot create directory {}", dir.display()))?;
    write_jsonl(&dir.join(TRACKS_FILE), &data.tracks, progress)?;
    let rows = data.embeddings.len() / data.dim.max(1);
    let array = ArrayView2::from_shape((rows, data.dim), &data.embeddings)
        .context("embeddings do not form a [tracks, dim] matrix")?;
    let bar = bar_if(progress, Unit::Steps, 1, EMBEDDINGS_FILE);
    write_atomically(&dir.join(EMBEDDINGS_FILE), |w| {
        array.write_npy(w).map_err(anyhow::Error::from)
    })?;
    bar.finish_and_clear();
    write_jsonl(&dir.join(USERS_FILE), &data.users, progress)
}

/// Writes a catalog (`tracks.jsonl` format) atomically: the grown catalog
/// of a run with new releases, for training to read.
pub fn write_catalog(path: &Path, tracks: &[Track]) -> Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    write_jsonl(path, tracks, false)
}

fn write_jsonl<T: Serialize>(path: &Path, records: &[T], progress: bool) -> Result<()> {
    let name = path
        .file_name()
        .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
    let bar = bar_if(progress, Unit::Steps, records.len() as u64, name);
    write_atomically(path, |w| {
        for (i, record) in records.iter().enumerate() {
            serde_json::to_writer(&mut *w, record)?;
            w.write_all(b"\n")?;
            if i % 8192 == 0 {
                bar.set_position(i as u64);
            }
        }
        Ok(())
    })?;
    bar.finish_and_clear();
    Ok(())
}

fn write_atomically(
    path: &Path,
    write: impl FnOnce(&mut BufWriter<File>) -> Result<()>,
) -> Result<()> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    let file = File::create(&tmp).with_context(|| format!("cannot create {}", tmp.display()))?;
    let mut writer = BufWriter::with_capacity(WRITE_BUFFER, file);
    write(&mut writer)
        .and_then(|()| writer.flush().map_err(anyhow::Error::from))
        .with_context(|| format!("cannot write {}", tmp.display()))?;
    drop(writer);
    fs::rename(&tmp, path)
        .with_context(|| format!("cannot rename {} to {}", tmp.display(), path.display()))
}

/// Reads a world's files, every error naming the folder (every command
/// that reads a world); a missing or broken file's error already says how
/// to generate one.
pub fn load_world_data(dir: &Path) -> Result<WorldData> {
    read_world_data(dir).with_context(|| format!("cannot load the world in {}", dir.display()))
}

/// Reads the world files in `dir` as records (validated by [`super::World::new`]).
pub fn read_world_data(dir: &Path) -> Result<WorldData> {
    let tracks: Vec<Track> = read_jsonl(
        dir,
        TRACKS_FILE,
        r#"{"track": <id>, "artist": "...", "title": "..."}"#,
    )?;
    let (dim, embeddings) = read_embeddings(dir)?;
    let users: Vec<User> = read_jsonl(
        dir,
        USERS_FILE,
        r#"{"user": <id>, "interests": [<track>, ...], "consume_bias": <f64>, "consume_sharpness": <f64>}"#,
    )?;
    Ok(WorldData {
        tracks,
        dim,
        embeddings,
        users,
    })
}

/// What to tell a user whose world file is missing or broken.
fn regenerate_hint(dir: &Path) -> String {
    format!("generate a world with `sim world --out {}`", dir.display())
}

fn open(dir: &Path, name: &str) -> Result<File> {
    let path = dir.join(name);
    File::open(&path).map_err(|e| {
        anyhow!(
            "cannot open {}: {e}; {}",
            path.display(),
            regenerate_hint(dir)
        )
    })
}

fn read_jsonl<T: DeserializeOwned>(dir: &Path, name: &str, expected: &str) -> Result<Vec<T>> {
    let path = dir.join(name);
    let mut reader = BufReader::with_capacity(WRITE_BUFFER, open(dir, name)?);
    let mut records = Vec::new();
    let mut line = String::new();
    for number in 1.. {
        line.clear();
        let read = reader
            .read_line(&mut line)
            .with_context(|| format!("cannot read {} at line {number}", path.display()))?;
        if read == 0 {
            break;
        }
        if line.trim().is_empty() {
            continue;
        }
        let record = serde_json::from_str(&line).map_err(|e| {
            anyhow!(
                "{}, line {number}: {e}; expected {expected} (or {})",
                path.display(),
                regenerate_hint(dir)
            )
        })?;
        records.push(record);
    }
    Ok(records)
}

/// Reads `embeddings.npy` as `(dim, row-major values)`.
///
/// The file is read whole and viewed in place first: the view checks the
/// header's shape against the bytes actually present, so a corrupt header
/// cannot make us allocate a huge array. Only if the buffer happens to be
/// misaligned for f32 (after the length check passed) is it parsed again by
/// copying.
fn read_embeddings(dir: &Path) -> Result<(usize, Vec<f32>)> {
    let path = dir.join(EMBEDDINGS_FILE);
    let mut bytes = Vec::new();
    open(dir, EMBEDDINGS_FILE)?
        .read_to_end(&mut bytes)
        .with_context(|| format!("cannot read {}", path.display()))?;
    let bad = |e: &dyn std::fmt::Display| {
        anyhow!(
            "{} is not a float32 [tracks, dim] .npy array: {e}; {}",
            path.display(),
            regenerate_hint(dir)
        )
    };
    let array: Array2<f32> = match ArrayView2::<f32>::view_npy(&bytes) {
        Ok(view) => view.as_standard_layout().into_owned(),
        Err(ViewNpyError::MisalignedData) => Array2::read_npy(&bytes[..]).map_err(|e| bad(&e))?,
        Err(e) => return Err(bad(&e)),
    };
    let dim = array.ncols();
    if dim == 0 {
        return Err(bad(&"the array has zero columns"));
    }
    let (values, offset) = array.into_raw_vec_and_offset();
    debug_assert_eq!(offset.unwrap_or(0), 0);
    Ok((dim, values))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::world::{generate, World, WorldParams};
    use testkit::file_names;

    fn tiny_params() -> WorldParams {
        WorldParams {
            tracks: 300,
            users: 50,
            dim: 8,
            ..WorldParams::default()
        }
    }

    #[test]
    fn written_world_reads_back_identically() {
        let dir = tempfile::tempdir().unwrap();
        let data = generate(&tiny_params(), false).unwrap();
        write_world(dir.path(), &data, false).unwrap();
        assert_eq!(read_world_data(dir.path()).unwrap(), data);
        assert!(World::load(dir.path()).is_ok());
        let leftovers: Vec<_> = file_names(dir.path())
            .into_iter()
            .filter(|n| n.ends_with(".tmp"))
            .collect();
        assert!(leftovers.is_empty(), "{leftovers:?}");
    }

    #[test]
    fn same_seed_gives_byte_identical_files() {
        let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        write_world(a.path(), &generate(&tiny_params(), false).unwrap(), false).unwrap();
        write_world(b.path(), &generate(&tiny_params(), false).unwrap(), false).unwrap();
        for name in [TRACKS_FILE, EMBEDDINGS_FILE, USERS_FILE] {
            let (x, y) = (
                fs::read(a.path().join(name)).unwrap(),
                fs::read(b.path().join(name)).unwrap(),
            );
            assert!(!x.is_empty());
            assert!(x == y, "{name} differs between two runs with the same seed");
        }
    }

    #[test]
    fn npy_header_is_numpy_float32_two_dimensional() {
        let dir = tempfile::tempdir().unwrap();
        write_world(dir.path(), &generate(&tiny_params(), false).unwrap(), false).unwrap();
        let bytes = fs::read(dir.path().join(EMBEDDINGS_FILE)).unwrap();
        assert_eq!(&bytes[..6], b"\x93NUMPY");
        let header = String::from_utf8_lossy(&bytes[10..128]);
        assert!(header.contains("'descr': '<f4'"), "{header}");
        assert!(header.contains("'shape': (300, 8)"), "{header}");
        assert!(header.contains("'fortran_order': False"), "{header}");
    }

    #[test]
    fn fortran_order_embeddings_are_read_in_row_order() {
        let dir = tempfile::tempdir().unwrap();
        let data = generate(&tiny_params(), false).unwrap();
        write_world(dir.path(), &data, false).unwrap();
        // Store the same matrix column-major, as numpy may with order='F'.
        let rows = ArrayView2::from_shape((300, 8), &data.embeddings).unwrap();
        let mut columns = Array2::<f32>::zeros((8, 300));
        columns.assign(&rows.t());
        let file = File::create(dir.path().join(EMBEDDINGS_FILE)).unwrap();
        columns.t().write_npy(BufWriter::new(file)).unwrap();
        let header = fs::read(dir.path().join(EMBEDDINGS_FILE)).unwrap();
        assert!(String::from_utf8_lossy(&header[..128]).contains("'fortran_order': True"));
        assert_eq!(
            read_world_data(dir.path()).unwrap().embeddings,
            data.embeddings
        );
    }

    #[test]
    fn missing_files_name_the_file_and_the_fix() {
        let dir = tempfile::tempdir().unwrap();
        let e = format!("{:#}", World::load(&dir.path().join("nope")).unwrap_err());
        assert!(
            e.contains(TRACKS_FILE) && e.contains("sim world --out"),
            "{e}"
        );

        write_world(dir.path(), &generate(&tiny_params(), false).unwrap(), false).unwrap();
        fs::remove_file(dir.path().join(USERS_FILE)).unwrap();
        let e = format!("{:#}", World::load(dir.path()).unwrap_err());
        assert!(
            e.contains(USERS_FILE) && e.contains("sim world --out"),
            "{e}"
        );
    }

    #[test]
    fn corrupt_files_are_errors_not_panics() {
        let dir = tempfile::tempdir().unwrap();
        let data = generate(&tiny_params(), false).unwrap();
        write_world(dir.path(), &data, false).unwrap();
        let npy = dir.path().join(EMBEDDINGS_FILE);
        let good = fs::read(&npy).unwrap();

        // Truncated data.
        fs::write(&npy, &good[..good.len() - 10]).unwrap();
        let e = format!("{:#}", World::load(dir.path()).unwrap_err());
        assert!(e.contains(EMBEDDINGS_FILE), "{e}");

        // A header claiming an enormous shape (same header length, so it
        // parses) must be rejected without allocating that shape.
        let data_start = 10 + usize::from(u16::from_le_bytes([good[8], good[9]]));
        let header = String::from_utf8(good[10..data_start].to_vec()).unwrap();
        let lying = header.replace("(300, 8)", "(99999999999, 8)");
        let extra = lying.len() - header.len();
        let lying = lying.replacen(&format!("{}\n", " ".repeat(extra)), "\n", 1);
        assert_eq!(lying.len(), header.len());
        let mut huge = good[..10].to_vec();
        huge.extend_from_slice(lying.as_bytes());
        huge.extend_from_slice(&good[data_start..]);
        fs::write(&npy, &huge).unwrap();
        let e = format!("{:#}", World::load(dir.path()).unwrap_err());
        assert!(e.contains(EMBEDDINGS_FILE), "{e}");

        // Not an .npy file at all.
        fs::write(&npy, b"not numpy at all").unwrap();
        assert!(World::load(dir.path()).is_err());
        fs::write(&npy, &good).unwrap();

        // Broken JSON line, reported with its line number.
        let tracks = dir.path().join(TRACKS_FILE);
        let mut text = fs::read_to_string(&tracks).unwrap();
        text.insert_str(0, "{\"track\": oops}\n");
        fs::write(&tracks, text).unwrap();
        let e = format!("{:#}", World::load(dir.path()).unwrap_err());
        assert!(e.contains("line 1") && e.contains(TRACKS_FILE), "{e}");
    }

    #[test]
    fn rows_that_do_not_match_the_catalog_are_rejected() {
        let dir = tempfile::tempdir().unwrap();
        let mut data = generate(&tiny_params(), false).unwrap();
        data.embeddings.truncate(8 * 299);
        write_world(dir.path(), &data, false).unwrap();
        let e = format!("{:#}", World::load(dir.path()).unwrap_err());
        assert!(e.contains("299 rows") && e.contains(TRACKS_FILE), "{e}");
    }
}
