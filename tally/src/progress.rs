//! Progress bars on stderr, one look for every long step of `analysis` and
//! `sim`: a right-aligned label, a bar, then the count in the unit of the work.
//!
//! indicatif hides a bar by itself when stderr is not a terminal, so piped
//! runs, CI logs and tests get no bar noise; [`bar_if`] also hides it on a
//! terminal, for callers (library users, tests) that asked for quiet.

use std::borrow::Cow;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};

/// What a bar counts: decides how its position and rate are printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    /// Bytes, printed as sizes with a transfer rate (reading logs).
    Bytes,
    /// Steps of work: iterations, tracks, users, events written.
    Steps,
    /// Simulated listening sessions, with sessions per second.
    Sessions,
}

impl Unit {
    /// The template after the label and the bar.
    fn count(self) -> &'static str {
        match self {
            Unit::Bytes => "{bytes}/{total_bytes} ({bytes_per_sec}, {eta})",
            Unit::Steps => "{pos}/{len} ({elapsed}, {eta})",
            Unit::Sessions => "{pos}/{len} sessions ({per_sec}, eta {eta})",
        }
    }
}

/// A bar over `len` units of `unit`, labelled `label`.
pub fn bar(unit: Unit, len: u64, label: impl Into<Cow<'static, str>>) -> ProgressBar {
    let template = format!("{{msg:>14}} [{{bar:30}}] {}", unit.count());
    let bar = ProgressBar::new(len).with_message(label);
    bar.set_style(
        ProgressStyle::with_template(&template)
            .expect("valid template")
            .progress_chars("=> "),
    );
    bar
}

/// [`bar`] when `show` is true, else a hidden bar that callers drive the same way.
pub fn bar_if(
    show: bool,
    unit: Unit,
    len: u64,
    label: impl Into<Cow<'static, str>>,
) -> ProgressBar {
    if show {
        bar(unit, len, label)
    } else {
        ProgressBar::hidden()
    }
}

/// A spinner for work whose size is unknown up front (sorting, counting).
pub fn spinner(label: &'static str) -> ProgressBar {
    let bar = ProgressBar::new_spinner().with_message(label);
    bar.enable_steady_tick(Duration::from_millis(120));
    bar
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_unit_has_a_valid_template() {
        for unit in [Unit::Bytes, Unit::Steps, Unit::Sessions] {
            let shown = bar(unit, 10, "label");
            assert_eq!(
                (shown.length(), shown.message()),
                (Some(10), "label".into())
            );
            assert!(bar_if(false, unit, 10, "label").is_hidden());
        }
    }
}
