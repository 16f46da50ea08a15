//! `shmring bench --plot FILE.svg`: throughput and round-trip percentiles per transport
//! against message size, drawn with plotters' SVG backend (no fonts or system libraries
//! needed), so that users can look rather than read.

use super::report::Row;
use super::{Result, err};
use plotters::prelude::*;
use std::collections::BTreeMap;
use std::path::Path;

/// One line of a chart: a label and its points (message size, value).
type Series = BTreeMap<String, Vec<(f64, f64)>>;

/// Draw `rows` into the SVG file `path`: throughput (messages per second) against message
/// size on the left (log-log), round-trip p50 / p99 / p99.9 per transport on the right.
pub(crate) fn plot(rows: &[Row], path: &Path) -> Result<()> {
    let mut thr: Series = BTreeMap::new();
    // Round trips: one category per transport, mode and size, with its percentiles.
    let mut lat: Vec<(String, [f64; 3])> = Vec::new();
    for r in rows.iter().filter(|r| r.size > 0) {
        let label = match r.mode {
            Some(m) => format!("{} {m}", r.transport),
            None => r.transport.to_owned(),
        };
        let x = r.size as f64;
        if let Some(v) = r.msgs_per_s.filter(|v| *v > 0.0) {
            thr.entry(label.clone()).or_default().push((x, v));
        }
        if let (Some(a), Some(b), Some(c)) = (r.rtt_p50_ns, r.rtt_p99_ns, r.rtt_p999_ns) {
            if a > 0 && b > 0 && c > 0 {
                let cat = format!("{label} {}", super::report::size(r.size));
                lat.push((cat, [a as f64, b as f64, c as f64]));
            }
        }
    }
    if thr.is_empty() && lat.is_empty() {
        return Err(err(
            "--plot: this run measured nothing to plot (no throughput or latency rows)",
        ));
    }
    // One color per transport and mode, the same in both charts.
    let mut names: Vec<String> = thr.keys().cloned().collect();
    for (cat, _) in &lat {
        // A category is "<label> <size> <unit>": drop the size.
        let label = cat
            .rsplit_once(' ')
            .and_then(|(l, _)| l.rsplit_once(' '))
            .map_or(cat.as_str(), |(l, _)| l);
        if !names.iter().any(|n| n == label) {
            names.push(label.to_owned());
        }
    }
    let color_of = |label: &str| Palette99::pick(names.iter().position(|n| n == label).unwrap_or(0)).to_rgba();
    let root = SVGBackend::new(path, (1400, 650)).into_drawing_area();
    root.fill(&WHITE).map_err(draw_err)?;
    let (left, right) = root.split_horizontally(700);
    chart(&left, "Throughput (messages/s)", "msgs/s", &thr, &color_of)?;
    percentiles(&right, &lat, &color_of)?;
    root.present().map_err(draw_err)?;
    Ok(())
}

fn draw_err<E: std::error::Error + Send + Sync>(e: DrawingAreaErrorKind<E>) -> super::Error {
    err(format!("--plot: drawing failed: {e}"))
}

/// One log-log chart of `series` in `area`.
fn chart<DB: DrawingBackend>(
    area: &DrawingArea<DB, plotters::coord::Shift>,
    title: &str,
    y: &str,
    series: &Series,
    color_of: &dyn Fn(&str) -> RGBAColor,
) -> Result<()>
where
    DB::ErrorType: 'static,
{
    let pts = || series.values().flatten();
    let (mut x0, mut x1, mut y0, mut y1) = (f64::MAX, f64::MIN, f64::MAX, f64::MIN);
    for &(x, v) in pts() {
        x0 = x0.min(x);
        x1 = x1.max(x);
        y0 = y0.min(v);
        y1 = y1.max(v);
    }
    if series.is_empty() {
        (x0, x1, y0, y1) = (1.0, 10.0, 1.0, 10.0);
    }
    let mut ch = ChartBuilder::on(area)
        .caption(title, ("sans-serif", 20))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(70)
        .build_cartesian_2d((x0 / 1.5..x1 * 1.5).log_scale(), (y0 / 2.0..y1 * 2.0).log_scale())
        .map_err(|e| err(format!("--plot: {e}")))?;
    ch.configure_mesh()
        .x_desc("message size")
        .y_desc(y)
        .x_label_formatter(&|v| super::report::size(v.round() as u64))
        .y_label_formatter(&|v| compact(*v))
        .light_line_style(BLACK.mix(0.04))
        .draw()
        .map_err(|e| err(format!("--plot: {e}")))?;
    for (label, points) in series {
        let mut points = points.clone();
        points.sort_by(|a, b| a.0.total_cmp(&b.0));
        let color = color_of(label);
        ch.draw_series(LineSeries::new(points.iter().copied(), color.stroke_width(2)))
            .map_err(|e| err(format!("--plot: {e}")))?
            .label(label.clone())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], color.stroke_width(2)));
        ch.draw_series(points.iter().map(|&p| Circle::new(p, 3, color.filled())))
            .map_err(|e| err(format!("--plot: {e}")))?;
    }
    ch.configure_series_labels()
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .label_font(("sans-serif", 11))
        .position(SeriesLabelPosition::LowerLeft)
        .draw()
        .map_err(|e| err(format!("--plot: {e}")))?;
    Ok(())
}

/// Round-trip percentiles, one row per transport, mode and size: a line from p50 to
/// p99.9 with a dot at p50, a triangle at p99 and a cross at p99.9 (log scale).
fn percentiles<DB: DrawingBackend>(
    area: &DrawingArea<DB, plotters::coord::Shift>,
    cats: &[(String, [f64; 3])],
    color_of: &dyn Fn(&str) -> RGBAColor,
) -> Result<()>
where
    DB::ErrorType: 'static,
{
    let e = |e: &dyn std::fmt::Display| err(format!("--plot: {e}"));
    let lo = cats.iter().map(|c| c.1[0]).fold(f64::MAX, f64::min);
    let hi = cats.iter().map(|c| c.1[2]).fold(f64::MIN, f64::max);
    let (lo, hi) = if cats.is_empty() { (1.0, 10.0) } else { (lo, hi) };
    let n = cats.len().max(1);
    let label_of = |v: &f64| {
        let i = v.round();
        if (v - i).abs() < 1e-6 && i >= 0.0 {
            cats.get(i as usize).map(|c| c.0.clone()).unwrap_or_default()
        } else {
            String::new()
        }
    };
    let mut ch = ChartBuilder::on(area)
        .caption(
            "Round trip: p50 (dot), p99 (triangle), p99.9 (cross)",
            ("sans-serif", 20),
        )
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(210)
        .build_cartesian_2d((lo / 2.0..hi * 2.0).log_scale(), -0.5f64..n as f64 - 0.5)
        .map_err(|x| e(&x))?;
    ch.configure_mesh()
        .disable_y_mesh()
        .y_labels(n)
        .y_label_formatter(&label_of)
        .x_desc("round trip (ns)")
        .x_label_formatter(&|v| compact(*v))
        .light_line_style(BLACK.mix(0.04))
        .draw()
        .map_err(|x| e(&x))?;
    for (i, (label, [p50, p99, p999])) in cats.iter().enumerate() {
        let y = i as f64;
        let color = color_of(
            label
                .rsplit_once(' ')
                .and_then(|(l, _)| l.rsplit_once(' '))
                .map_or("", |(l, _)| l),
        );
        ch.draw_series(std::iter::once(PathElement::new(
            vec![(*p50, y), (*p999, y)],
            color.stroke_width(2),
        )))
        .map_err(|x| e(&x))?;
        ch.draw_series(std::iter::once(Circle::new((*p50, y), 5, color.filled())))
            .map_err(|x| e(&x))?;
        ch.draw_series(std::iter::once(TriangleMarker::new((*p99, y), 6, color.filled())))
            .map_err(|x| e(&x))?;
        ch.draw_series(std::iter::once(Cross::new((*p999, y), 6, color.stroke_width(2))))
            .map_err(|x| e(&x))?;
    }
    Ok(())
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
    }

    #[test]
    fn draws_a_file_and_refuses_nothing_to_draw() {
        let row = |transport, size, thr: Option<f64>, p50: Option<u64>| Row {
            transport,
            mode: None,
            size,
            msgs_per_s: thr,
            mb_per_s: None,
            rtt_p50_ns: p50,
            rtt_p99_ns: p50.map(|v| v * 2),
            rtt_p999_ns: p50.map(|v| v * 3),
        };
        let dir = std::env::temp_dir().join(format!("shmring-plot-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("p.svg");
        let rows = [
            row("a", 64, Some(1e6), Some(300)),
            row("a", 4096, Some(2e5), None),
            row("b", 64, Some(5e5), Some(900)),
        ];
        plot(&rows, &path).unwrap();
        let svg = std::fs::read_to_string(&path).unwrap();
        assert!(svg.starts_with("<svg") && svg.contains("Throughput") && svg.contains("Round trip"));
        assert!(plot(&[row("c", 64, None, None)], &path).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
