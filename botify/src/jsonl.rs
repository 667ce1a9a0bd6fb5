//! Reading JSON Lines files (the catalog, the trained models): the lines
//! that hold something, numbered as an editor numbers them, so an error
//! can name the line to fix.

use std::io::{self, BufRead, BufReader};
use std::path::Path;

use serde::de::DeserializeOwned;

/// The non-blank lines of the file at `path` read as `T`s, each with its
/// line number, in the caller's error type: `io` for a file that cannot be
/// read, `invalid` for a line that is not a `T` (given its number). Lazy,
/// so a caller checking each record stops at the first bad line.
pub fn records<T: DeserializeOwned, E>(
    path: &Path,
    io: impl Fn(io::Error) -> E,
    invalid: impl Fn(usize, serde_json::Error) -> E,
) -> Result<impl Iterator<Item = Result<(usize, T), E>>, E> {
    let lines = lines(path).map_err(&io)?;
    Ok(lines.map(move |line| {
        let (number, line) = line.map_err(&io)?;
        let record = serde_json::from_str(&line).map_err(|e| invalid(number, e))?;
        Ok((number, record))
    }))
}

/// The non-blank lines of the file at `path`, each with its 1-based line
/// number.
fn lines(path: &Path) -> io::Result<impl Iterator<Item = io::Result<(usize, String)>>> {
    let file = std::fs::File::open(path)?;
    Ok(BufReader::new(file)
        .lines()
        .enumerate()
        .filter_map(|(index, line)| match line {
            Ok(line) if line.trim().is_empty() => None,
            line => Some(line.map(|line| (index + 1, line))),
        }))
}
