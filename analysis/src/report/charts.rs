//! The reports' SVG charts (plotters' SVG backend only: the bitmap backend
//! pulls in font rasterisation crates, and browsers render SVG text
//! themselves). Each page prepares its numbers and draws them with these:
//! one line per arm ([`arm_lines`]), effects with their intervals as
//! horizontal bars ([`effect_bars`]), and each treatment's effect per day
//! with error bars ([`effects_per_day`]), the last shared by the per-day and
//! the extended pages (whose days are named: [`effects_over_days`]).

use std::ops::Range;
use std::path::Path;

use anyhow::Result;
use plotters::coord::ranged1d::SegmentValue;
use plotters::coord::types::RangedCoordf64;
use plotters::coord::Shift;
use plotters::prelude::*;

use crate::output::Tone;

pub(super) const GREEN: RGBColor = RGBColor(0x1a, 0x93, 0x3a);
pub(super) const RED: RGBColor = RGBColor(0xc6, 0x28, 0x28);
pub(super) const GREY: RGBColor = RGBColor(0x70, 0x70, 0x70);

/// An arm's colour, the same on every chart.
pub(super) fn arm_color(arm: u8) -> RGBColor {
    const COLORS: [RGBColor; 6] = [
        RGBColor(0x1f, 0x77, 0xb4),
        RGBColor(0xff, 0x7f, 0x0e),
        RGBColor(0x2c, 0xa0, 0x2c),
        RGBColor(0xd6, 0x27, 0x28),
        RGBColor(0x94, 0x67, 0xbd),
        RGBColor(0x8c, 0x56, 0x4b),
    ];
    COLORS[arm as usize % COLORS.len()]
}

/// Writes one tick label of an axis.
pub(super) type TickLabel<'a> = dyn Fn(&f64) -> String + 'a;

/// Layout of a chart over two numeric axes.
pub(super) struct Axes<'a> {
    pub caption: &'a str,
    pub x: Range<f64>,
    pub y: Range<f64>,
    pub x_desc: &'a str,
    pub y_desc: &'a str,
    pub legend: SeriesLabelPosition,
    /// At most this many x labels, each written by the function (default:
    /// plotters' numbers).
    pub x_format: Option<(usize, &'a TickLabel<'a>)>,
    /// Mark each point (for a few points per line, e.g. one per day).
    pub markers: bool,
}

/// The tick label at `x` of an axis whose whole numbers index `labels`
/// (days): blank between them and past the end.
fn nth_label(labels: &[&str], x: f64) -> String {
    let i = x.round();
    if (x - i).abs() < 1e-6 && i >= 0.0 {
        labels
            .get(i as usize)
            .map_or(String::new(), |d| d.to_string())
    } else {
        String::new()
    }
}

/// The distinct `items` in the order they first come: the days (or the
/// treatments) of rows that repeat them.
pub(super) fn distinct<'a>(items: impl IntoIterator<Item = &'a str>) -> Vec<&'a str> {
    let mut seen: Vec<&str> = Vec::new();
    for item in items {
        if !seen.contains(&item) {
            seen.push(item);
        }
    }
    seen
}

/// [`effects_per_day`] over named `days` (point `x` is the day's index,
/// labelled with its name), on an effect axis covering `values`: the
/// chart of the extended page's looks and of its breakdown's trend.
pub(super) fn effects_over_days(
    path: &Path,
    caption: &str,
    x_desc: &str,
    days: &[&str],
    values: impl Iterator<Item = f64>,
    lines: Vec<EffectLine>,
) -> Result<()> {
    let label = |v: &f64| nth_label(days, *v);
    let axes = Axes {
        caption,
        x: -0.5..days.len() as f64 - 0.5,
        y: effect_range(values),
        x_desc,
        y_desc: "effect, %",
        legend: SeriesLabelPosition::UpperLeft,
        x_format: Some((days.len().clamp(1, 12), &label)),
        markers: false,
    };
    effects_per_day(path, &axes, lines)
}

/// One arm's line: its index (for the colour), label and points.
pub(super) struct Line {
    pub arm: u8,
    pub label: String,
    pub points: Vec<(f64, f64)>,
}

impl Line {
    pub fn of(arm: u8, label: &str, points: Vec<(f64, f64)>) -> Line {
        Line {
            arm,
            label: label.to_string(),
            points,
        }
    }
}

/// One treatment's effect at one day (`x`), in percent of the control, with
/// its interval where it is bounded; drawn filled when significant.
pub(super) struct DayEffect {
    pub x: f64,
    pub effect: f64,
    pub bounds: Option<(f64, f64)>,
    pub significant: bool,
}

/// One treatment's effects, day by day.
pub(super) struct EffectLine {
    pub arm: u8,
    pub label: String,
    pub points: Vec<DayEffect>,
}

/// One effect as a horizontal bar: its label, interval, effect and tone.
pub(super) struct EffectBar {
    pub label: String,
    pub lower: f64,
    pub effect: f64,
    pub upper: f64,
    pub tone: Tone,
}

/// An effect axis: the finite `values` and 0, with a tenth of margin (at
/// least half a percent).
fn effect_range(values: impl Iterator<Item = f64>) -> Range<f64> {
    let finite: Vec<f64> = values.filter(|v| v.is_finite()).collect();
    let lo = finite.iter().copied().fold(0.0f64, f64::min);
    let hi = finite.iter().copied().fold(0.0f64, f64::max);
    let pad = ((hi - lo) * 0.1).max(0.5);
    lo - pad..hi + pad
}

type Chart<'a, 'b> = ChartContext<'a, SVGBackend<'b>, Cartesian2d<RangedCoordf64, RangedCoordf64>>;

/// A 900×420 chart of `axes` with its mesh drawn.
fn chart<'a, 'b>(
    root: &'a DrawingArea<SVGBackend<'b>, Shift>,
    axes: &Axes<'_>,
) -> Result<Chart<'a, 'b>> {
    root.fill(&WHITE)?;
    let mut chart = ChartBuilder::on(root)
        .caption(axes.caption, ("sans-serif", 18))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .build_cartesian_2d(axes.x.clone(), axes.y.clone())?;
    let mut mesh = chart.configure_mesh();
    mesh.x_desc(axes.x_desc).y_desc(axes.y_desc);
    if let Some((labels, format)) = axes.x_format {
        mesh.x_labels(labels).x_label_formatter(format);
    }
    mesh.draw()?;
    Ok(chart)
}

/// A short stroke in `color`, for a series' legend entry.
fn legend_mark(color: RGBColor) -> impl Fn((i32, i32)) -> PathElement<(i32, i32)> {
    move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
}

fn draw_legend<'a, 'b: 'a>(chart: &mut Chart<'a, 'b>, position: SeriesLabelPosition) -> Result<()> {
    chart
        .configure_series_labels()
        .position(position)
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()?;
    Ok(())
}

/// Draws one line per arm, in the arm's colour, with a legend, as an SVG.
pub(super) fn arm_lines(path: &Path, axes: &Axes<'_>, series: Vec<Line>) -> Result<()> {
    let root = SVGBackend::new(path, (900, 420)).into_drawing_area();
    let mut chart = chart(&root, axes)?;
    let point_size = if axes.markers { 4 } else { 0 };
    for line in series {
        let color = arm_color(line.arm);
        chart
            .draw_series(
                LineSeries::new(line.points, color.stroke_width(2)).point_size(point_size),
            )?
            .label(line.label)
            .legend(legend_mark(color));
    }
    draw_legend(&mut chart, axes.legend.clone())?;
    root.present()?;
    Ok(())
}

/// Each treatment's effect per day as a line, each day's interval as an
/// error bar (none where unbounded) and a dot, filled when significant.
/// Treatments are spread a little around each day so their bars do not
/// overlap; the zero line is grey.
pub(super) fn effects_per_day(path: &Path, axes: &Axes<'_>, lines: Vec<EffectLine>) -> Result<()> {
    let root = SVGBackend::new(path, (900, 420)).into_drawing_area();
    let mut chart = chart(&root, axes)?;
    chart.draw_series(std::iter::once(PathElement::new(
        vec![(axes.x.start, 0.0), (axes.x.end, 0.0)],
        GREY.stroke_width(1),
    )))?;
    let spread = 0.25 / lines.len().max(1) as f64;
    let middle = (lines.len() as f64 - 1.0) / 2.0;
    for (i, line) in lines.iter().enumerate() {
        let shift = (i as f64 - middle) * spread;
        let color = arm_color(line.arm);
        chart
            .draw_series(LineSeries::new(
                line.points.iter().map(|p| (p.x + shift, p.effect)),
                color.stroke_width(2),
            ))?
            .label(line.label.clone())
            .legend(legend_mark(color));
        let cap = 0.04;
        for p in &line.points {
            let x = p.x + shift;
            if let Some((lo, hi)) = p.bounds.filter(|(lo, hi)| lo.is_finite() && hi.is_finite()) {
                chart.draw_series([
                    PathElement::new(vec![(x, lo), (x, hi)], color.stroke_width(2)),
                    PathElement::new(vec![(x - cap, lo), (x + cap, lo)], color.stroke_width(2)),
                    PathElement::new(vec![(x - cap, hi), (x + cap, hi)], color.stroke_width(2)),
                ])?;
            }
            let fill = if p.significant {
                color.filled()
            } else {
                WHITE.filled()
            };
            chart.draw_series([
                Circle::new((x, p.effect), 5, fill),
                Circle::new((x, p.effect), 5, color.stroke_width(2)),
            ])?;
        }
    }
    if !lines.is_empty() {
        draw_legend(&mut chart, axes.legend.clone())?;
    }
    root.present()?;
    Ok(())
}

/// One horizontal bar per effect, top to bottom, on an axis with 0 marked:
/// green/red by tone, grey otherwise; bars with an undefined bound are left
/// out (their label stays).
pub(super) fn effect_bars(path: &Path, caption: &str, bars: &[EffectBar]) -> Result<()> {
    let x = effect_range(bars.iter().flat_map(|b| [b.lower, b.upper, b.effect]));
    let n = bars.len().max(1) as i32;
    let height = 80 + 34 * n as u32;
    let root = SVGBackend::new(path, (900, height)).into_drawing_area();
    root.fill(&WHITE)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(caption, ("sans-serif", 18))
        .margin(12)
        .x_label_area_size(36)
        .y_label_area_size(230)
        .build_cartesian_2d(x, (0..n - 1).into_segmented())?;
    chart
        .configure_mesh()
        .disable_y_mesh()
        .x_desc("effect, %")
        .y_labels(n as usize)
        .y_label_formatter(&|v| match v {
            SegmentValue::CenterOf(i) | SegmentValue::Exact(i) => bars
                .get((n - 1 - *i) as usize)
                .map(|b| b.label.clone())
                .unwrap_or_default(),
            SegmentValue::Last => String::new(),
        })
        .draw()?;
    chart.draw_series(std::iter::once(PathElement::new(
        vec![(0.0, SegmentValue::Exact(0)), (0.0, SegmentValue::Last)],
        BLACK.stroke_width(1),
    )))?;
    for (i, bar) in bars.iter().enumerate() {
        if !(bar.lower.is_finite() && bar.upper.is_finite() && bar.effect.is_finite()) {
            continue;
        }
        let y = SegmentValue::CenterOf(n - 1 - i as i32);
        let color = match bar.tone {
            Tone::Good => GREEN,
            Tone::Bad => RED,
            Tone::Plain => GREY,
        };
        chart.draw_series([
            PathElement::new(
                vec![(bar.lower, y.clone()), (bar.upper, y.clone())],
                color.stroke_width(3),
            )
            .into_dyn(),
            Circle::new((bar.effect, y), 5, color.filled()).into_dyn(),
        ])?;
    }
    root.present()?;
    Ok(())
}
