//! The PNG chart of latency distributions written next to the Markdown
//! report: one panel per scenario (cold start, warm latency and, when
//! measured, cron lateness), each the empirical CDF of every series on a
//! log-scale millisecond axis.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use plotters::prelude::*;

use crate::report::Results;

/// The font every label is drawn with (Debian package `fonts-dejavu-core`,
/// installed by bench/run.sh when missing).
pub const FONT: &str = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf";
/// Width of the image in pixels.
pub const WIDTH: u32 = 1000;
/// Height of each panel in pixels.
pub const PANEL_HEIGHT: u32 = 420;
/// Height of the title band above the panels.
pub const TITLE_HEIGHT: u32 = 40;
/// At most this many points are drawn per series.
const MAX_POINTS: usize = 2000;
/// Samples below this (e.g. a cron fire that was not late) are drawn here,
/// since a log axis has no zero.
const FLOOR_MS: f64 = 0.001;
const COLORS: [RGBColor; 4] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
];

/// Why the chart could not be written.
#[derive(Debug, thiserror::Error)]
pub enum ChartError {
    /// The font file could not be read.
    #[error(
        "reading the chart font {path}: {source} (install the Debian package fonts-dejavu-core)"
    )]
    ReadFont {
        /// The font file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The font file is not a TrueType/OpenType font.
    #[error("loading the chart font {path}: not a TrueType/OpenType font")]
    InvalidFont {
        /// The font file.
        path: PathBuf,
    },
    /// No series had any samples.
    #[error("drawing the chart {path}: no latency samples to draw")]
    NoSamples {
        /// The PNG being written.
        path: PathBuf,
    },
    /// Plotters failed to draw or encode the image.
    #[error("drawing the chart {path}: {message}")]
    Draw {
        /// The PNG being written.
        path: PathBuf,
        /// Plotters' error.
        message: String,
    },
}

/// One curve: a label and its samples in milliseconds, sorted ascending.
#[derive(Debug, Clone, Copy)]
pub struct Series<'a> {
    /// The legend entry.
    pub label: &'a str,
    /// Samples in milliseconds, sorted ascending.
    pub sorted_ms: &'a [f64],
}

/// One panel: a title and the series drawn in it.
#[derive(Debug, Clone)]
pub struct Panel<'a> {
    /// The panel's caption.
    pub title: &'a str,
    /// The curves; empty ones are left out.
    pub series: Vec<Series<'a>>,
}

impl<'a> Series<'a> {
    /// A curve labelled `label` through `sorted_ms`.
    pub fn new(label: &'a str, sorted_ms: &'a [f64]) -> Self {
        Series { label, sorted_ms }
    }
}

/// The panels for one run's latency samples: cold start (Kumo against the
/// `python3 -c pass` and `bwrap` baselines), warm (Kumo against the floor)
/// and cron lateness when it was measured.
pub fn panels(r: &Results) -> Vec<Panel<'_>> {
    let c = &r.cold;
    let mut cold = vec![Series::new("Kumo cold start", &c.kumo.sorted_ms)];
    cold.extend(
        c.kumo_prewarmed
            .as_ref()
            .map(|p| Series::new("Kumo cold start, pre-started sandbox", &p.sorted_ms)),
    );
    cold.push(Series::new("python3 -c pass", &c.bare_python.sorted_ms));
    let bwrap = "bwrap --unshare-all python3 -c pass";
    cold.extend(
        c.bwrap_python
            .as_ref()
            .map(|b| Series::new(bwrap, &b.sorted_ms)),
    );
    let mut panels = vec![
        Panel {
            title: "Cold start: invoke to response, new instance each call",
            series: cold,
        },
        Panel {
            title: "Warm latency: no-op invoke",
            series: vec![
                Series::new("Kumo end to end (gRPC)", &r.warm.kumo.sorted_ms),
                Series::new("floor: in-process Runtime API", &r.warm.floor.sorted_ms),
            ],
        },
    ];
    if let Some(l) = &r.ingest.cron_lateness {
        panels.push(Panel {
            title: "Cron lateness: handler start after the due time",
            series: vec![Series::new("cron(* * * * ? *)", &l.sorted_ms)],
        });
    }
    panels
}

/// Registers [`FONT`] as plotters' "sans-serif" once per process.
fn register_font() -> Result<(), ChartError> {
    static REGISTERED: OnceLock<()> = OnceLock::new();
    if REGISTERED.get().is_some() {
        return Ok(());
    }
    let path = PathBuf::from(FONT);
    let bytes = std::fs::read(&path).map_err(|source| ChartError::ReadFont {
        path: path.clone(),
        source,
    })?;
    // plotters keeps fonts for the life of the process.
    let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
    plotters::style::register_font("sans-serif", FontStyle::Normal, bytes)
        .map_err(|_| ChartError::InvalidFont { path })?;
    let _ = REGISTERED.set(());
    Ok(())
}

/// The empirical CDF of sorted samples as a step curve of
/// (milliseconds, percent of samples at or below), at most [`MAX_POINTS`].
fn cdf(sorted_ms: &[f64]) -> Vec<(f64, f64)> {
    let n = sorted_ms.len();
    let stride = (2 * n).div_ceil(MAX_POINTS).max(1);
    let mut points = Vec::with_capacity(2 * n / stride + 2);
    for (i, &v) in sorted_ms.iter().enumerate() {
        if i % stride == 0 || i + 1 == n {
            let x = v.max(FLOOR_MS);
            points.push((x, 100.0 * i as f64 / n as f64));
            points.push((x, 100.0 * (i + 1) as f64 / n as f64));
        }
    }
    points
}

/// The log axis range covering every sample, padded a little each side.
fn x_range(panel: &Panel) -> (f64, f64) {
    let values = panel.series.iter().flat_map(|s| s.sorted_ms.iter());
    let lo = values.clone().copied().fold(f64::INFINITY, f64::min);
    let hi = values.copied().fold(f64::NEG_INFINITY, f64::max);
    let (lo, hi) = (lo.max(FLOOR_MS), hi.max(FLOOR_MS));
    (lo / 1.3, (hi * 1.3).max(lo * 2.0))
}

/// Axis ticks in `lo..hi`: labelled at 1, 2 and 5 times each power of
/// ten, light grid lines at 1..9 times.
fn ticks(lo: f64, hi: f64) -> (Vec<f64>, Vec<f64>) {
    let (mut bold, mut light) = (Vec::new(), Vec::new());
    for exp in (lo.log10().floor() as i32)..=(hi.log10().ceil() as i32) {
        for m in 1..=9 {
            let v = f64::from(m) * 10f64.powi(exp);
            if (lo..=hi).contains(&v) {
                let list = if matches!(m, 1 | 2 | 5) {
                    &mut bold
                } else {
                    &mut light
                };
                list.push(v);
            }
        }
    }
    (bold, light)
}

/// A tick label with as many decimals as the value needs (0.05, 0.2, 10).
fn tick_label(v: &f64) -> String {
    let decimals = (-v.log10() - 1e-9).ceil().max(0.0) as usize;
    format!("{v:.decimals$}")
}

fn draw_panel<DB: DrawingBackend>(
    area: &DrawingArea<DB, plotters::coord::Shift>,
    panel: &Panel,
) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
    let (lo, hi) = x_range(panel);
    let (bold, light) = ticks(lo, hi);
    let x = (lo..hi)
        .log_scale()
        .with_key_points(bold)
        .with_light_points(light);
    let mut chart = ChartBuilder::on(area)
        .caption(panel.title, ("sans-serif", 20))
        .margin(12)
        .x_label_area_size(45)
        .y_label_area_size(60)
        .build_cartesian_2d(x, 0.0..100.0)?;
    chart
        .configure_mesh()
        .x_desc("latency (ms, log scale)")
        .y_desc("% of calls at or below")
        .x_label_formatter(&tick_label)
        .y_labels(11)
        .y_label_formatter(&|v| format!("{v:.0}"))
        .light_line_style(RGBColor(238, 238, 238))
        .label_style(("sans-serif", 14))
        .axis_desc_style(("sans-serif", 15))
        .draw()?;
    for (i, s) in panel.series.iter().enumerate() {
        let color = COLORS[i % COLORS.len()];
        let label = format!("{} (n={})", s.label, s.sorted_ms.len());
        chart
            .draw_series(LineSeries::new(cdf(s.sorted_ms), color.stroke_width(2)))?
            .label(label)
            .legend(move |(x, y)| PathElement::new([(x, y), (x + 24, y)], color.stroke_width(3)));
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::LowerRight)
        .label_font(("sans-serif", 14))
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()?;
    Ok(())
}

/// Draws `panels`, stacked, into the PNG at `path` ([`WIDTH`] wide,
/// [`TITLE_HEIGHT`] plus [`PANEL_HEIGHT`] per non-empty panel high).
pub fn render(path: &Path, title: &str, panels: &[Panel]) -> Result<(), ChartError> {
    let panels: Vec<Panel> = panels
        .iter()
        .map(|p| Panel {
            title: p.title,
            series: p
                .series
                .iter()
                .copied()
                .filter(|s| !s.sorted_ms.is_empty())
                .collect(),
        })
        .filter(|p| !p.series.is_empty())
        .collect();
    if panels.is_empty() {
        return Err(ChartError::NoSamples { path: path.into() });
    }
    register_font()?;
    let draw_error = |e: &dyn std::fmt::Display| ChartError::Draw {
        path: path.into(),
        message: e.to_string(),
    };
    let height = TITLE_HEIGHT + PANEL_HEIGHT * panels.len() as u32;
    let root = BitMapBackend::new(path, (WIDTH, height)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| draw_error(&e))?;
    let (top, body) = root.split_vertically(TITLE_HEIGHT);
    top.titled(title, ("sans-serif", 24))
        .map_err(|e| draw_error(&e))?;
    for (area, panel) in body.split_evenly((panels.len(), 1)).iter().zip(&panels) {
        draw_panel(area, panel).map_err(|e| draw_error(&e))?;
    }
    root.present().map_err(|e| draw_error(&e))
}

/// Writes the latency chart of one run to `path`.
pub fn write(r: &Results, path: &Path) -> Result<(), ChartError> {
    let title = format!("Kumo latency distributions ({})", r.date);
    render(path, &title, &panels(r))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Width and height from a PNG's signature and IHDR chunk.
    fn png_size(bytes: &[u8]) -> (u32, u32) {
        assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n", "PNG signature");
        assert_eq!(&bytes[12..16], b"IHDR");
        let be = |at: usize| u32::from_be_bytes(bytes[at..at + 4].try_into().unwrap());
        (be(16), be(20))
    }

    #[test]
    fn renders_a_png_of_the_expected_size() {
        let skewed: Vec<f64> = (1..=500)
            .map(|i| 0.2 + (i as f64 / 100.0).powi(3))
            .collect();
        let flat: Vec<f64> = (1..=500).map(|i| 10.0 + i as f64 / 50.0).collect();
        let zeros = vec![0.0; 3];
        let panels = [
            Panel {
                title: "two series",
                series: vec![Series::new("skewed", &skewed), Series::new("flat", &flat)],
            },
            Panel {
                title: "zeros on a log axis",
                series: vec![Series::new("zeros", &zeros)],
            },
            Panel {
                title: "empty, left out",
                series: vec![Series::new("none", &[])],
            },
        ];
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("chart.png");
        render(&path, "test", &panels).unwrap();
        let bytes = std::fs::read(&path).unwrap();
        assert_eq!(png_size(&bytes), (WIDTH, TITLE_HEIGHT + 2 * PANEL_HEIGHT));
        assert!(bytes.len() > 10_000, "{} bytes", bytes.len());
    }

    #[test]
    fn no_samples_is_an_error_naming_the_path() {
        let err = render(Path::new("/nonexistent/x.png"), "t", &[]).unwrap_err();
        assert!(err.to_string().contains("/nonexistent/x.png"), "{err}");
    }

    #[test]
    fn cdf_is_bounded_and_monotonic() {
        let samples: Vec<f64> = (0..100_000).map(f64::from).collect();
        let points = cdf(&samples);
        assert!(points.len() <= MAX_POINTS + 2);
        assert_eq!(points.last(), Some(&(99_999.0, 100.0)));
        assert!(points
            .windows(2)
            .all(|w| w[0].0 <= w[1].0 && w[0].1 <= w[1].1));
    }
}
