//! Reading JSON Lines files (the catalog, the trained models): the lines
//! that hold something, numbered as an editor numbers them, so an error
//! can name the line to fix.

use std::io::{self, BufRead, BufReader};
use std::path::Path;

/// The non-blank lines of the file at `path`, each with its 1-based line
/// number.
pub fn lines(path: &Path) -> io::Result<impl Iterator<Item = io::Result<(usize, String)>>> {
    let file = std::fs::File::open(path)?;
    Ok(BufReader::new(file)
        .lines()
        .enumerate()
        .filter_map(|(index, line)| match line {
            Ok(line) if line.trim().is_empty() => None,
            line => Some(line.map(|line| (index + 1, line))),
        }))
}
