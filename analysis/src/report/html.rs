//! The pages' HTML: the shared head and style, tables, and the paragraphs
//! every A/B page ends or starts with.

use std::fmt::Write as _;

use crate::ab::{Analysis, Srm};
use crate::logs::ReadReport;
use crate::output::{Table, Tone};

pub(super) fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The page's head and style, up to the opened body.
pub(super) fn head(title: &str) -> String {
    format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <title>{title}</title>\n<style>\
         body{{font-family:sans-serif;max-width:960px;margin:2em auto;color:#222}}\
         table{{border-collapse:collapse;font-size:14px}}td,th{{padding:4px 10px;border-bottom:1px solid #ddd;text-align:right}}\
         td:nth-child(-n+2),th:nth-child(-n+2){{text-align:left}}.good{{color:#1a933a;font-weight:bold}}\
         .bad{{color:#c62828;font-weight:bold}}.warn{{background:#fdecea;border:2px solid #c62828;padding:1em}}\
         pre{{background:#f6f6f6;padding:.6em;white-space:pre-wrap}}</style></head><body>\n",
        title = escape(title)
    )
}

/// An output table as HTML rows, toned rows classed `good`/`bad`.
pub(super) fn table(page: &mut String, table: &Table) {
    page.push_str("<table>\n<tr>");
    for h in &table.headers {
        let _ = write!(page, "<th>{}</th>", escape(h));
    }
    page.push_str("</tr>\n");
    for (cells, tone) in &table.rows {
        let class = match tone {
            Tone::Good => " class=\"good\"",
            Tone::Bad => " class=\"bad\"",
            Tone::Plain => "",
        };
        let _ = write!(page, "<tr{class}>");
        for c in cells {
            let _ = write!(page, "<td>{}</td>", escape(c));
        }
        page.push_str("</tr>\n");
    }
    page.push_str("</table>\n");
}

/// ` class="warn"` for a split that is not as configured, else nothing.
pub(super) fn srm_class(srm: &Srm) -> &'static str {
    if srm.mismatch() {
        " class=\"warn\""
    } else {
        ""
    }
}

/// The head of an `ab --report` page: title, heading and the SRM verdict
/// (a warning when the split is broken).
pub(super) fn ab_page(experiment: &str, srm: &Srm) -> String {
    let mut page = head(&format!("A/B report: {experiment}"));
    let _ = writeln!(
        page,
        "<h1>A/B report: experiment {}</h1>",
        escape(experiment)
    );
    let _ = writeln!(page, "<p{}>{}</p>", srm_class(srm), escape(&srm.summary()));
    page
}

/// What was read and left out, closing an `ab --report` page.
pub(super) fn data_quality(page: &mut String, analysis: &Analysis, read: &ReadReport) {
    if analysis.sessions.is_empty() {
        // `ab --stats`: the events were read where the aggregates were made.
        page.push_str(
            "<h2>Data quality</h2>\n<p>Computed from sufficient statistics (<code>ab --stats</code>): \
             the counts of lines read, open sessions and arm assignments are the logs' and \
             the warehouse's.</p>\n</body></html>\n",
        );
        return;
    }
    let _ = writeln!(
        page,
        "<h2>Data quality</h2>\n<pre>{}\n{}\nevents without experiment {}: {}\nusers whose \
         logged arm differs from the mmh3 assignment: {}</pre>",
        escape(&read.to_string()),
        escape(&analysis.session_report.to_string()),
        escape(&analysis.table.experiment),
        analysis.events_without_arm,
        analysis.misassigned_users
    );
    page.push_str("</body></html>\n");
}

/// An image of the page's folder, as wide as the page allows.
pub(super) fn image(page: &mut String, file: &str, alt: &str) {
    let _ = writeln!(
        page,
        "<p><img src=\"{file}\" alt=\"{alt}\" style=\"max-width:100%\"></p>"
    );
}
