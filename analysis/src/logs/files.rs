//! Which files to read: `--logs` arguments (files, folders, globs) expanded
//! into one sorted, deduplicated list. Sorted because it is the reading order
//! that `Record::seq` numbers: the same files, however they were named on the
//! command line, give the same records in the same order.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

/// Expands `--logs` arguments into a sorted list of files. Each argument may
/// be a file, a folder (searched recursively for names containing `.jsonl`,
/// which covers rotated `x.jsonl.1` and compressed `x.jsonl.gz`), or a glob
/// (`log/**/*.jsonl*`; quote it so the shell does not expand it first).
pub fn resolve(patterns: &[String]) -> Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for pattern in patterns {
        let before = files.len();
        let path = Path::new(pattern);
        if path.is_dir() {
            collect_dir(path, &mut files)?;
        } else if path.is_file() {
            files.push(path.to_path_buf());
        } else {
            let paths = glob::glob(pattern).with_context(|| {
                format!(
                    "--logs {pattern:?} is neither a file, a folder nor a valid glob; \
                     quote globs, e.g. --logs 'log/**/*.jsonl*'"
                )
            })?;
            for entry in paths {
                let path = entry.with_context(|| format!("cannot list files for {pattern:?}"))?;
                if path.is_file() {
                    files.push(path);
                }
            }
        }
        if files.len() == before {
            bail!(
                "no log files match {pattern:?}: pass a file, a folder of *.jsonl files, \
                 or a quoted glob such as 'log/**/*.jsonl*'"
            );
        }
    }
    files.sort();
    files.dedup();
    Ok(files)
}

fn collect_dir(dir: &Path, files: &mut Vec<PathBuf>) -> Result<()> {
    let entries = fs::read_dir(dir).with_context(|| {
        format!(
            "cannot list log folder {}: check it exists and is readable",
            dir.display()
        )
    })?;
    for entry in entries {
        let path = entry
            .with_context(|| format!("cannot list log folder {}", dir.display()))?
            .path();
        if path.is_dir() {
            collect_dir(&path, files)?;
        } else if path
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.contains(".jsonl"))
        {
            files.push(path);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolve_names_the_pattern_that_matched_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let pattern = format!("{}/*.jsonl", dir.path().display());
        let err = resolve(std::slice::from_ref(&pattern))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains(&pattern) && err.contains("no log files match"),
            "{err}"
        );
    }
}
