//! Shared output plumbing: tables in the four formats and atomic file writes
//! (progress bars are in [`tally::progress`]).

use std::fmt::Write as _;
use std::fs::{self, File};
use std::io::BufWriter;
use std::path::Path;

use anstyle::{AnsiColor, Style};
use anyhow::{Context, Result};

/// How a table is printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// Aligned columns for a terminal, colored when stdout is a terminal and
    /// NO_COLOR is unset.
    Table,
    /// Comma-separated, with a header line.
    Csv,
    /// A JSON array of row objects.
    Json,
    /// A Markdown table; significant rows in bold.
    Markdown,
}

/// Meaning of a cell for coloring: significant gains green, losses red.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tone {
    Plain,
    Good,
    Bad,
}

impl Tone {
    fn style(self) -> Style {
        match self {
            Tone::Plain => Style::new(),
            Tone::Good => AnsiColor::Green.on_default().bold(),
            Tone::Bad => AnsiColor::Red.on_default().bold(),
        }
    }
}

/// A column of a [`Table::of`]: its header, and its cell of a row.
pub type Column<R> = (&'static str, fn(&R) -> String);

/// A table of text cells with one tone per row, rendered as a terminal
/// table, CSV or Markdown (JSON is rendered from the typed rows instead).
#[derive(Debug, Clone, Default)]
pub struct Table {
    pub headers: Vec<String>,
    pub rows: Vec<(Vec<String>, Tone)>,
}

impl Table {
    pub fn new(headers: &[&str]) -> Table {
        Table {
            headers: headers.iter().map(|h| h.to_string()).collect(),
            rows: Vec::new(),
        }
    }

    /// A table of `rows`, a cell per column, each row in the tone `tone`
    /// gives it. Each header stands beside the code that fills its cells,
    /// so the two cannot drift apart when a column is added or moved.
    pub fn of<'r, R: 'r>(
        columns: &[Column<R>],
        rows: impl IntoIterator<Item = &'r R>,
        tone: impl Fn(&R) -> Tone,
    ) -> Table {
        let headers: Vec<&str> = columns.iter().map(|(header, _)| *header).collect();
        let mut t = Table::new(&headers);
        for row in rows {
            let cells = columns.iter().map(|(_, cell)| cell(row)).collect();
            t.push(cells, tone(row));
        }
        t
    }

    /// [`Table::of`] with every row plain.
    pub fn plain<'r, R: 'r>(columns: &[Column<R>], rows: impl IntoIterator<Item = &'r R>) -> Table {
        Table::of(columns, rows, |_| Tone::Plain)
    }

    pub fn push(&mut self, cells: Vec<String>, tone: Tone) {
        self.rows.push((cells, tone));
    }

    /// Aligned columns; numbers (cells starting with a digit or sign) align right.
    /// Styles are ANSI escapes: print through `anstream` so they are stripped
    /// when the output is not a terminal or NO_COLOR is set.
    pub fn to_terminal(&self) -> String {
        let mut widths: Vec<usize> = self.headers.iter().map(|h| h.chars().count()).collect();
        for (cells, _) in &self.rows {
            for (w, c) in widths.iter_mut().zip(cells) {
                *w = (*w).max(c.chars().count());
            }
        }
        let mut out = String::new();
        let header_style = Style::new().bold();
        let line: Vec<String> = self
            .headers
            .iter()
            .zip(&widths)
            .map(|(h, &w)| format!("{h:<w$}"))
            .collect();
        let _ = writeln!(
            out,
            "{header_style}{}{header_style:#}",
            line.join("  ").trim_end()
        );
        let rule: Vec<String> = widths.iter().map(|&w| "─".repeat(w)).collect();
        let _ = writeln!(out, "{}", rule.join("  "));
        for (cells, tone) in &self.rows {
            let style = tone.style();
            let line: Vec<String> = cells
                .iter()
                .zip(&widths)
                .map(|(c, &w)| {
                    let numeric =
                        c.starts_with(|ch: char| ch.is_ascii_digit() || ch == '-' || ch == '+');
                    if numeric {
                        format!("{c:>w$}")
                    } else {
                        format!("{c:<w$}")
                    }
                })
                .collect();
            let _ = writeln!(out, "{style}{}{style:#}", line.join("  ").trim_end());
        }
        out
    }

    pub fn to_csv(&self) -> String {
        let mut out = String::new();
        let line = |cells: &[String]| {
            let quoted: Vec<String> = cells
                .iter()
                .map(|c| {
                    if c.contains([',', '"', '\n']) {
                        format!("\"{}\"", c.replace('"', "\"\""))
                    } else {
                        c.to_string()
                    }
                })
                .collect();
            quoted.join(",")
        };
        let _ = writeln!(out, "{}", line(&self.headers));
        for (cells, _) in &self.rows {
            let _ = writeln!(out, "{}", line(cells));
        }
        out
    }

    pub fn to_markdown(&self) -> String {
        let mut out = String::new();
        // Toned rows in bold: Markdown has no colour.
        let line = |cells: &[String], bold: bool| {
            let cells: Vec<String> = cells
                .iter()
                .map(|c| {
                    let c = c.replace('|', "\\|");
                    if bold {
                        format!("**{c}**")
                    } else {
                        c
                    }
                })
                .collect();
            format!("| {} |", cells.join(" | "))
        };
        let _ = writeln!(out, "{}", line(&self.headers, false));
        let _ = writeln!(out, "|{}|", vec!["---"; self.headers.len()].join("|"));
        for (cells, tone) in &self.rows {
            let _ = writeln!(out, "{}", line(cells, *tone != Tone::Plain));
        }
        out
    }
}

/// A number with `digits` decimals, `n/a` when not finite (e.g. a variance of
/// one user, or a zero control mean).
pub fn num(value: f64, digits: usize) -> String {
    if value.is_finite() {
        format!("{value:.digits$}")
    } else {
        "n/a".to_string()
    }
}

/// A signed percentage, `n/a` when not finite.
pub fn percent(value: f64) -> String {
    if value.is_finite() {
        format!("{value:+.2}%")
    } else {
        "n/a".to_string()
    }
}

/// A fraction as an unsigned percentage (0.123 → `12.30%`), `n/a` when not finite.
pub fn percent_of_one(value: f64) -> String {
    if value.is_finite() {
        format!("{:.2}%", value * 100.0)
    } else {
        "n/a".to_string()
    }
}

/// Writes `path` through `write`, atomically: the content goes to a temporary
/// file in the same folder, is flushed to disk, and is renamed over `path`.
/// A service reloading models mid-write sees the old file or the new one,
/// never half of one. The temporary file is removed if anything fails.
pub fn write_atomic(
    path: &Path,
    write: impl FnOnce(&mut BufWriter<File>) -> std::io::Result<()>,
) -> Result<()> {
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    fs::create_dir_all(dir).with_context(|| {
        format!(
            "cannot create output folder {}: check permissions",
            dir.display()
        )
    })?;
    let name = path
        .file_name()
        .with_context(|| format!("output path {} has no file name", path.display()))?
        .to_string_lossy();
    let tmp = dir.join(format!(".{name}.tmp-{}", std::process::id()));
    let result = (|| -> std::io::Result<()> {
        let mut out = BufWriter::with_capacity(1 << 20, File::create(&tmp)?);
        write(&mut out)?;
        let file = out.into_inner().map_err(|e| e.into_error())?;
        file.sync_all()?;
        fs::rename(&tmp, path)
    })();
    if let Err(err) = result {
        let _ = fs::remove_file(&tmp);
        return Err(err).with_context(|| {
            format!(
                "cannot write {}: check free space and permissions of {}",
                path.display(),
                dir.display()
            )
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn sample() -> Table {
        let mut t = Table::new(&["name", "value"]);
        t.push(vec!["a,b".into(), "1.00".into()], Tone::Good);
        t.push(vec!["c|d".into(), "-2.50".into()], Tone::Plain);
        t
    }

    #[test]
    fn csv_quotes_commas() {
        assert_eq!(sample().to_csv(), "name,value\n\"a,b\",1.00\nc|d,-2.50\n");
    }

    #[test]
    fn markdown_escapes_pipes_and_bolds_toned_rows() {
        let md = sample().to_markdown();
        assert_eq!(
            md,
            "| name | value |\n|---|---|\n| **a,b** | **1.00** |\n| c\\|d | -2.50 |\n"
        );
    }

    #[test]
    fn terminal_aligns_numbers_right_and_colors_toned_rows() {
        let text = sample().to_terminal();
        let plain = anstream::adapter::strip_str(&text).to_string();
        assert!(plain.contains("a,b    1.00"), "{plain}");
        assert!(plain.contains("c|d   -2.50"), "{plain}");
        assert!(
            text.contains("\u{1b}[1m\u{1b}[32m"),
            "green row is styled: {text:?}"
        );
    }

    #[test]
    fn non_finite_numbers_print_as_na() {
        assert_eq!(num(f64::NAN, 2), "n/a");
        assert_eq!(percent(f64::INFINITY), "n/a");
        assert_eq!(percent(1.234), "+1.23%");
    }

    #[test]
    fn write_atomic_replaces_whole_file_and_cleans_up() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("top_tracks.json");
        fs::write(&path, "old").unwrap();
        write_atomic(&path, |w| w.write_all(b"[1,2,3]")).unwrap();
        assert_eq!(fs::read_to_string(&path).unwrap(), "[1,2,3]");
        let err = write_atomic(&path, |_| Err(std::io::Error::other("disk full"))).unwrap_err();
        assert!(format!("{err:#}").contains("disk full"), "{err:#}");
        assert_eq!(
            fs::read_to_string(&path).unwrap(),
            "[1,2,3]",
            "old content survives a failed write"
        );
        let names: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("top_tracks.json")]);
    }
}
