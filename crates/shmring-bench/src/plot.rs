//! `shmring bench --plot FILE.svg`: the rows drawn with plotters' SVG backend (no fonts
//! or system libraries needed), so that users can look rather than read.
//!
//! One panel per unit, each with its legend beside the data, never over it:
//!
//! - **msgs/s** and **MB/s** against message size (log-log; sizes in B, KiB, MiB), one
//!   line per transport and mode;
//! - **round trip (ns)**: p50, p99 and p99.9 of each ping-pong row;
//! - **ops/s**: the lock rows (lock+unlock pairs) and the manager's dict calls, which
//!   have no message size.
//!
//! Within a panel every series has its own colour (20 of them) and its own marker (6
//! shapes), so that no two series look alike; msgs/s and MB/s share their series'
//! looks.

use super::report::{RateUnit, Row, size};
use super::{Result, err};
use plotters::coord::Shift;
use plotters::prelude::*;
use std::path::Path;

/// One line of a chart against message size: its label and its points (log2 of the
/// size, value).
type Series = Vec<(String, Vec<(f64, f64)>)>;

/// Colours of the series of a panel: Tableau 20, the ten strong ones first.
const PALETTE: [(u8, u8, u8); 20] = [
    (0x1f, 0x77, 0xb4),
    (0xff, 0x7f, 0x0e),
    (0x2c, 0xa0, 0x2c),
    (0xd6, 0x27, 0x28),
    (0x94, 0x67, 0xbd),
    (0x8c, 0x56, 0x4b),
    (0xe3, 0x77, 0xc2),
    (0x7f, 0x7f, 0x7f),
    (0xbc, 0xbd, 0x22),
    (0x17, 0xbe, 0xcf),
    (0xae, 0xc7, 0xe8),
    (0xff, 0xbb, 0x78),
    (0x98, 0xdf, 0x8a),
    (0xff, 0x98, 0x96),
    (0xc5, 0xb0, 0xd5),
    (0xc4, 0x9c, 0x94),
    (0xf7, 0xb6, 0xd2),
    (0xc7, 0xc7, 0xc7),
    (0xdb, 0xdb, 0x8d),
    (0x9e, 0xda, 0xe5),
];

/// Marker shapes: filled circle, triangle, square, diamond, a cross, a ring.
const MARKERS: usize = 6;

/// Width of a panel's legend column, pixels.
const LEGEND_W: u32 = 240;

/// The look of the `i`th series of a panel: its colour and marker (distinct pairs for
/// the first 60 series; colours alone for the first 20).
fn look(i: usize) -> (RGBAColor, usize) {
    let (r, g, b) = PALETTE[i % PALETTE.len()];
    (RGBColor(r, g, b).to_rgba(), i % MARKERS)
}

/// Draw `rows` (each with what its `msgs_per_s` counts) into the SVG file `path`.
pub(crate) fn plot(rows: &[(Row, RateUnit)], path: &Path) -> Result<()> {
    let label = |r: &Row| match r.mode {
        Some(m) => format!("{} {m}", r.transport),
        None => r.transport.to_owned(),
    };
    let mut msgs: Series = Vec::new();
    let mut mbs: Series = Vec::new();
    let mut rtt: Vec<(String, [f64; 3])> = Vec::new();
    let mut ops: Vec<(String, f64)> = Vec::new();
    let push = |s: &mut Series, l: String, p: (f64, f64)| match s.iter_mut().find(|(k, _)| *k == l) {
        Some((_, v)) => v.push(p),
        None => s.push((l, vec![p])),
    };
    for (r, unit) in rows.iter().filter(|(r, _)| r.size > 0) {
        let x = (r.size as f64).log2();
        match unit {
            RateUnit::Messages => {
                if let Some(v) = r.msgs_per_s.filter(|v| *v > 0.0) {
                    push(&mut msgs, label(r), (x, v));
                }
                if let Some(v) = r.mb_per_s.filter(|v| *v > 0.0) {
                    push(&mut mbs, label(r), (x, v));
                }
            }
            RateUnit::Operations => {
                if let Some(v) = r.msgs_per_s.filter(|v| *v > 0.0) {
                    ops.push((label(r), v));
                }
            }
        }
        if let (Some(a), Some(b), Some(c)) = (r.rtt_p50_ns, r.rtt_p99_ns, r.rtt_p999_ns) {
            if a > 0 && b > 0 && c > 0 {
                rtt.push((format!("{} {}", label(r), size(r.size)), [a as f64, b as f64, c as f64]));
            }
        }
    }
    if msgs.is_empty() && rtt.is_empty() && ops.is_empty() {
        return Err(err(
            "--plot: this run measured nothing to plot (no throughput, latency or operation rows)",
        ));
    }
    // MB/s draws the series of msgs/s with the same looks.
    let order: Vec<String> = msgs.iter().map(|(l, _)| l.clone()).collect();
    let look_of = |l: &str| look(order.iter().position(|o| o == l).unwrap_or(0));
    let root = SVGBackend::new(path, (1600, 1200)).into_drawing_area();
    root.fill(&WHITE).map_err(draw_err)?;
    let panels = root.split_evenly((2, 2));
    by_size(&panels[0], "Throughput: msgs/s", "msgs/s", &msgs, &look_of)?;
    by_size(
        &panels[1],
        "Throughput: MB/s (MB = 10^6 bytes of payload)",
        "MB/s",
        &mbs,
        &look_of,
    )?;
    percentiles(&panels[2], &rtt)?;
    operations(&panels[3], &ops)?;
    root.present().map_err(draw_err)?;
    Ok(())
}

fn draw_err<E: std::error::Error + Send + Sync>(e: DrawingAreaErrorKind<E>) -> super::Error {
    err(format!("--plot: drawing failed: {e}"))
}

fn plot_err(e: impl std::fmt::Display) -> super::Error {
    err(format!("--plot: {e}"))
}

/// Draw marker `kind` of `color` at `at` (a point of `area`'s coordinates).
fn marker<DB: DrawingBackend, CT: CoordTranslate>(
    area: &DrawingArea<DB, CT>,
    at: CT::From,
    kind: usize,
    color: RGBAColor,
) -> Result<()>
where
    CT::From: Clone,
    DB::ErrorType: 'static,
{
    let fill = color.filled();
    let line = color.stroke_width(2);
    let e = EmptyElement::<CT::From, DB>::at(at);
    match kind % MARKERS {
        0 => area.draw(&(e + Circle::new((0, 0), 4, fill))),
        1 => area.draw(&(e + TriangleMarker::new((0, 0), 5, fill))),
        2 => area.draw(&(e + Rectangle::new([(-4, -4), (4, 4)], fill))),
        3 => area.draw(&(e + Polygon::new(vec![(0, -5), (5, 0), (0, 5), (-5, 0)], fill))),
        4 => area.draw(&(e + Cross::new((0, 0), 4, line))),
        _ => area.draw(&(e + Circle::new((0, 0), 4, line))),
    }
    .map_err(draw_err)
}

/// A legend column: one entry per `(label, colour, marker)`, a short line with the
/// marker, then the label; `line`: whether the series are drawn as lines.
fn legend<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    entries: &[(String, RGBAColor, usize)],
    line: bool,
) -> Result<()>
where
    DB::ErrorType: 'static,
{
    let (_, h) = area.dim_in_pixel();
    let step = 16i32;
    let top = 50i32;
    let fit = ((h as i32 - top - 10) / step).max(1) as usize;
    let font = ("sans-serif", 12).into_font().color(&BLACK);
    for (i, (label, color, kind)) in entries.iter().take(fit).enumerate() {
        let y = top + i as i32 * step;
        if line {
            area.draw(&PathElement::new(vec![(6, y), (30, y)], color.stroke_width(2)))
                .map_err(draw_err)?;
        }
        marker(area, (18, y), *kind, *color)?;
        area.draw(&Text::new(label.clone(), (38, y - 6), font.clone()))
            .map_err(draw_err)?;
    }
    if entries.len() > fit {
        let more = format!("... and {} more", entries.len() - fit);
        let y = top + fit as i32 * step;
        area.draw(&Text::new(more, (38, y - 6), font)).map_err(draw_err)?;
    }
    Ok(())
}

/// A panel without data: its title and why it is empty.
fn empty<DB: DrawingBackend>(area: &DrawingArea<DB, Shift>, title: &str) -> Result<()>
where
    DB::ErrorType: 'static,
{
    let area = area.titled(title, ("sans-serif", 18)).map_err(draw_err)?;
    area.draw(&Text::new(
        "not measured in this run",
        (40, 40),
        ("sans-serif", 14).into_font().color(&BLACK.mix(0.6)),
    ))
    .map_err(draw_err)
}

/// A log-log chart of `series` against message size in `area`, its legend at the right.
fn by_size<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    title: &str,
    y: &str,
    series: &Series,
    look_of: &dyn Fn(&str) -> (RGBAColor, usize),
) -> Result<()>
where
    DB::ErrorType: 'static,
{
    if series.is_empty() {
        return empty(area, title);
    }
    let (w, _) = area.dim_in_pixel();
    let (plot, key) = area.split_horizontally(w.saturating_sub(LEGEND_W));
    let pts = || series.iter().flat_map(|(_, p)| p);
    let (mut x0, mut x1, mut y0, mut y1) = (f64::MAX, f64::MIN, f64::MAX, f64::MIN);
    for &(x, v) in pts() {
        x0 = x0.min(x);
        x1 = x1.max(x);
        y0 = y0.min(v);
        y1 = y1.max(v);
    }
    let mut ch = ChartBuilder::on(&plot)
        .caption(title, ("sans-serif", 18))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .build_cartesian_2d(x0 - 0.5..x1 + 0.5, (y0 / 2.0..y1 * 2.0).log_scale())
        .map_err(plot_err)?;
    ch.configure_mesh()
        .x_desc("message size")
        .y_desc(y)
        .x_labels(12)
        // x is log2 of the size: label the whole powers of two in binary units.
        .x_label_formatter(&|v| {
            let r = v.round();
            if (v - r).abs() < 1e-6 && (0.0..63.0).contains(&r) {
                size(1u64 << r as u32)
            } else {
                String::new()
            }
        })
        .y_label_formatter(&|v| compact(*v))
        .light_line_style(BLACK.mix(0.04))
        .draw()
        .map_err(plot_err)?;
    let mut keys = Vec::new();
    for (label, points) in series {
        let mut points = points.clone();
        points.sort_by(|a, b| a.0.total_cmp(&b.0));
        let (color, kind) = look_of(label);
        ch.draw_series(LineSeries::new(points.iter().copied(), color.stroke_width(2)))
            .map_err(plot_err)?;
        for &p in &points {
            marker(ch.plotting_area(), p, kind, color)?;
        }
        keys.push((label.clone(), color, kind));
    }
    legend(&key, &keys, true)
}

/// Round-trip percentiles, one row per transport, mode and size: a line from p50 to
/// p99.9 with a dot at p50, a triangle at p99 and a cross at p99.9 (log scale).
fn percentiles<DB: DrawingBackend>(area: &DrawingArea<DB, Shift>, cats: &[(String, [f64; 3])]) -> Result<()>
where
    DB::ErrorType: 'static,
{
    let title = "Round trip (ns): p50, p99, p99.9";
    if cats.is_empty() {
        return empty(area, title);
    }
    let (w, _) = area.dim_in_pixel();
    let (plot, key) = area.split_horizontally(w.saturating_sub(LEGEND_W / 2));
    let lo = cats.iter().map(|c| c.1[0]).fold(f64::MAX, f64::min);
    let hi = cats.iter().map(|c| c.1[2]).fold(f64::MIN, f64::max);
    let n = cats.len();
    let label_of = |v: &f64| category(cats.iter().map(|c| c.0.as_str()), *v);
    let mut ch = ChartBuilder::on(&plot)
        .caption(title, ("sans-serif", 18))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(200)
        .build_cartesian_2d((lo / 2.0..hi * 2.0).log_scale(), -0.5f64..n as f64 - 0.5)
        .map_err(plot_err)?;
    ch.configure_mesh()
        .disable_y_mesh()
        .y_labels(n)
        .y_label_formatter(&label_of)
        .x_desc("round trip (ns)")
        .x_label_formatter(&|v| compact(*v))
        .light_line_style(BLACK.mix(0.04))
        .draw()
        .map_err(plot_err)?;
    // The markers say which percentile; the colour, which row.
    const P50: usize = 0;
    const P99: usize = 1;
    const P999: usize = 4;
    for (i, (_, [p50, p99, p999])) in cats.iter().enumerate() {
        let y = i as f64;
        let (color, _) = look(i);
        ch.draw_series(std::iter::once(PathElement::new(
            vec![(*p50, y), (*p999, y)],
            color.stroke_width(2),
        )))
        .map_err(plot_err)?;
        marker(ch.plotting_area(), (*p50, y), P50, color)?;
        marker(ch.plotting_area(), (*p99, y), P99, color)?;
        marker(ch.plotting_area(), (*p999, y), P999, color)?;
    }
    let grey = BLACK.mix(0.7);
    legend(
        &key,
        &[
            ("p50".into(), grey, P50),
            ("p99".into(), grey, P99),
            ("p99.9".into(), grey, P999),
        ],
        false,
    )
}

/// Operations per second, one row per lock or dict call and mode (log scale).
fn operations<DB: DrawingBackend>(area: &DrawingArea<DB, Shift>, cats: &[(String, f64)]) -> Result<()>
where
    DB::ErrorType: 'static,
{
    let title = "Operations: ops/s (locks: lock+unlock; manager: dict calls)";
    if cats.is_empty() {
        return empty(area, title);
    }
    let lo = cats.iter().map(|c| c.1).fold(f64::MAX, f64::min);
    let hi = cats.iter().map(|c| c.1).fold(f64::MIN, f64::max);
    let n = cats.len();
    let label_of = |v: &f64| category(cats.iter().map(|c| c.0.as_str()), *v);
    let mut ch = ChartBuilder::on(area)
        .caption(title, ("sans-serif", 18))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(200)
        .build_cartesian_2d((lo / 2.0..hi * 2.0).log_scale(), -0.5f64..n as f64 - 0.5)
        .map_err(plot_err)?;
    ch.configure_mesh()
        .disable_y_mesh()
        .y_labels(n)
        .y_label_formatter(&label_of)
        .x_desc("ops/s")
        .x_label_formatter(&|v| compact(*v))
        .light_line_style(BLACK.mix(0.04))
        .draw()
        .map_err(plot_err)?;
    for (i, (_, v)) in cats.iter().enumerate() {
        let y = i as f64;
        let (color, kind) = look(i);
        ch.draw_series(std::iter::once(PathElement::new(
            vec![(lo / 2.0, y), (*v, y)],
            color.mix(0.35).stroke_width(1),
        )))
        .map_err(plot_err)?;
        marker(ch.plotting_area(), (*v, y), kind, color)?;
    }
    Ok(())
}

/// The label of the category at `v` (a whole number: its index), else nothing.
fn category<'a>(mut labels: impl Iterator<Item = &'a str>, v: f64) -> String {
    let i = v.round();
    if (v - i).abs() < 1e-6 && i >= 0.0 {
        labels.nth(i as usize).unwrap_or_default().to_owned()
    } else {
        String::new()
    }
}

/// `1.2M`, `350k`, `950`.
fn compact(v: f64) -> String {
    if v >= 1e9 {
        format!("{:.1}G", v / 1e9).replace(".0G", "G")
    } else if v >= 1e6 {
        format!("{:.1}M", v / 1e6).replace(".0M", "M")
    } else if v >= 1e3 {
        format!("{:.1}k", v / 1e3).replace(".0k", "k")
    } else {
        format!("{v:.0}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels() {
        assert_eq!(compact(1_500_000.0), "1.5M");
        assert_eq!(compact(2_000_000.0), "2M");
        assert_eq!(compact(350_000.0), "350k");
        assert_eq!(compact(950.0), "950");
        assert_eq!(category(["a", "b"].into_iter(), 1.0), "b");
        assert_eq!(category(["a", "b"].into_iter(), 0.5), "");
    }

    #[test]
    fn looks_are_distinct() {
        let looks: Vec<_> = (0..60).map(look).collect();
        for (i, a) in looks.iter().enumerate() {
            assert!(looks[i + 1..].iter().all(|b| a != b), "series {i} looks like another");
        }
        let colours: Vec<_> = (0..20).map(|i| look(i).0).collect();
        for (i, a) in colours.iter().enumerate() {
            assert!(!colours[i + 1..].contains(a), "colour {i} repeats");
        }
    }

    #[test]
    fn draws_a_panel_per_unit_and_refuses_nothing_to_draw() {
        let row = |transport, size, thr: Option<f64>, p50: Option<u64>| Row {
            transport,
            mode: None,
            size,
            msgs_per_s: thr,
            mb_per_s: thr.map(|v| v * size as f64 / 1e6),
            rtt_p50_ns: p50,
            rtt_p99_ns: p50.map(|v| v * 2),
            rtt_p999_ns: p50.map(|v| v * 3),
        };
        let dir = std::env::temp_dir().join(format!("shmring-plot-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("p.svg");
        let m = RateUnit::Messages;
        let rows = [
            (row("a", 64, Some(1e6), Some(300)), m),
            (row("a", 4096, Some(2e5), None), m),
            (row("a", 1 << 20, Some(2e3), None), m),
            (row("b", 64, Some(5e5), Some(900)), m),
            (row("lock", 8, Some(3e7), None), RateUnit::Operations),
        ];
        plot(&rows, &path).unwrap();
        let svg = std::fs::read_to_string(&path).unwrap();
        assert!(svg.starts_with("<svg"));
        for text in ["msgs/s", "MB/s", "Round trip (ns)", "ops/s", "KiB", "MiB", "lock"] {
            assert!(svg.contains(text), "no {text:?} in the SVG");
        }
        assert!(plot(&[(row("c", 64, None, None), RateUnit::Messages)], &path).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
