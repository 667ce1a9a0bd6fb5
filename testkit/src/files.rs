//! What a command left in a folder.

use std::path::Path;

/// The names of the entries of `dir`, sorted: what a test lists to check
/// the files a command wrote, or the temporary ones it must not leave.
pub fn file_names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()))
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}
