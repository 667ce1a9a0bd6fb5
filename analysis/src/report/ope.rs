//! `ope --report DIR`: the estimates as a table and, per reward, a chart of
//! each estimate with its interval against the logging policy's own value.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::Result;

use super::charts::{effect_bars, EffectBar};
use super::html;
use crate::commands::{Note, Notes};
use crate::ope::{to_table, OpeRow};
use crate::output::Tone;

/// The page's file name.
pub const INDEX: &str = "index.html";

/// Writes the page and its charts into `dir`; returns the page's path.
pub fn write(dir: &Path, rows: &[OpeRow], notes: &Notes) -> Result<PathBuf> {
    super::create_folder(dir)?;
    let mut page = html::head("Off-policy evaluation");
    page.push_str("<h1>Off-policy evaluation</h1>\n");
    for note in &notes.0 {
        if let Note::Warning(text) = note {
            let _ = writeln!(page, "<p class=\"warn\">{}</p>", html::escape(text));
        }
    }
    html::table(&mut page, &to_table(rows));
    for reward in ["first_pick", "session"] {
        let of_reward: Vec<&OpeRow> = rows.iter().filter(|r| r.reward == reward).collect();
        let Some(first) = of_reward.first() else {
            continue;
        };
        let file = format!("{reward}.svg");
        let caption = format!(
            "{reward}: estimate and 95% interval, % vs the logging policy's {:.4}",
            first.logged_value
        );
        super::draw(dir, &file, |path| {
            effect_bars(path, &caption, &bars(&of_reward))
        })?;
        let _ = writeln!(page, "<h2>{reward}</h2>");
        html::image(&mut page, &file, &caption);
    }
    page.push_str("</body></html>\n");
    super::write_page(dir, INDEX, &page)
}

/// Each row as a bar in percent of the logging policy's value: 0 is the
/// logging policy, green when the whole interval is above it, red below.
fn bars(rows: &[&OpeRow]) -> Vec<EffectBar> {
    rows.iter()
        .map(|r| {
            let relative = |v: f64| 100.0 * (v - r.logged_value) / r.logged_value;
            let (lower, upper) = (relative(r.value.lower), relative(r.value.upper));
            EffectBar {
                label: format!("{} {}", r.target, r.estimator),
                lower,
                effect: relative(r.value.estimate),
                upper,
                tone: if lower > 0.0 {
                    Tone::Good
                } else if upper < 0.0 {
                    Tone::Bad
                } else {
                    Tone::Plain
                },
            }
        })
        .collect()
}
