//! Line charts as PNG (ROC curves, evasion rate vs budget), with the font embedded so
//! they render identically anywhere. Written atomically like every output.

use crate::error::{Error, Result};
use plotters::prelude::*;
use std::path::Path;
use std::sync::Once;

static FONT: &[u8] = include_bytes!("../assets/DejaVuSans.ttf");
static REGISTER: Once = Once::new();

fn register_font() {
    REGISTER.call_once(|| {
        // The bundled font is a valid TTF; a failure would only lose the text.
        let _ = plotters::style::register_font("sans-serif", FontStyle::Normal, FONT);
    });
}

/// One named line.
pub struct Series {
    pub name: String,
    pub points: Vec<(f64, f64)>,
}

/// A chart: title, axis labels, ranges, series; `diagonal` draws the chance line y = x;
/// `log_x` puts x on a log10 axis (an ROC curve's low false positive rates, where a
/// detector operates, are a sliver of a linear axis): x below `x_range.0` is drawn at it.
pub struct Chart<'a> {
    pub title: &'a str,
    pub x_label: &'a str,
    pub y_label: &'a str,
    pub x_range: (f64, f64),
    pub y_range: (f64, f64),
    pub series: Vec<Series>,
    pub diagonal: bool,
    pub markers: bool,
    pub log_x: bool,
}

/// Where `x` is drawn on the chart's x axis (log10 of it, clamped, for a log axis).
fn chart_x(chart: &Chart, x: f64) -> f64 {
    if chart.log_x {
        x.max(chart.x_range.0).log10()
    } else {
        x
    }
}

pub fn draw(chart: &Chart, path: &Path) -> Result<()> {
    register_font();
    // The backend picks the image format from the temporary file's extension.
    crate::atomic::write_via_path(path, ".png", |tmp| render(chart, path, tmp))
}

/// Draws `chart` into the PNG file `tmp`; errors name `path`, the file asked for.
fn render(chart: &Chart, path: &Path, tmp: &Path) -> Result<()> {
    let err = |e: String| Error::format(path, format!("drawing the plot failed: {e}"));
    {
        let root = BitMapBackend::new(tmp, (900, 640)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| err(e.to_string()))?;
        let mut c = ChartBuilder::on(&root)
            .caption(chart.title, ("sans-serif", 26))
            .margin(16)
            .x_label_area_size(48)
            .y_label_area_size(60)
            .build_cartesian_2d(
                chart_x(chart, chart.x_range.0)..chart_x(chart, chart.x_range.1),
                chart.y_range.0..chart.y_range.1,
            )
            .map_err(|e| err(e.to_string()))?;
        let log_label = |v: &f64| format!("{}", 10f64.powf(*v));
        let lin_label = |v: &f64| format!("{v}");
        c.configure_mesh()
            .x_labels(if chart.log_x { 5 } else { 10 })
            .x_label_formatter(if chart.log_x { &log_label } else { &lin_label })
            .x_desc(chart.x_label)
            .y_desc(chart.y_label)
            .label_style(("sans-serif", 16))
            .draw()
            .map_err(|e| err(e.to_string()))?;
        if chart.diagonal {
            // y = x, sampled: a curve on a log axis.
            let (a, b) = chart.x_range;
            let line = (0..=200).map(|i| {
                let x = if chart.log_x {
                    a * (b / a).powf(i as f64 / 200.0)
                } else {
                    a + (b - a) * i as f64 / 200.0
                };
                (chart_x(chart, x), x)
            });
            c.draw_series(LineSeries::new(line, BLACK.mix(0.3).stroke_width(1)))
                .map_err(|e| err(e.to_string()))?;
        }
        for (i, s) in chart.series.iter().enumerate() {
            let color = Palette99::pick(i).to_rgba();
            let points: Vec<(f64, f64)> = s
                .points
                .iter()
                .map(|&(x, y)| (chart_x(chart, x), y))
                .collect();
            c.draw_series(LineSeries::new(
                points.iter().copied(),
                color.stroke_width(3),
            ))
            .map_err(|e| err(e.to_string()))?
            .label(s.name.clone())
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 24, y)], color.stroke_width(3))
            });
            if chart.markers {
                c.draw_series(points.iter().map(|&p| Circle::new(p, 4, color.filled())))
                    .map_err(|e| err(e.to_string()))?;
            }
        }
        c.configure_series_labels()
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .label_font(("sans-serif", 16))
            .position(SeriesLabelPosition::LowerRight)
            .draw()
            .map_err(|e| err(e.to_string()))?;
        root.present().map_err(|e| err(e.to_string()))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_log_axis_draws_log10_and_clamps_below_its_range() {
        let mut chart = Chart {
            title: "",
            x_label: "",
            y_label: "",
            x_range: (1e-4, 1.0),
            y_range: (0.0, 1.0),
            series: Vec::new(),
            diagonal: false,
            markers: false,
            log_x: true,
        };
        assert_eq!(chart_x(&chart, 0.01), -2.0);
        assert_eq!(chart_x(&chart, 0.0), -4.0);
        chart.log_x = false;
        assert_eq!(chart_x(&chart, 0.01), 0.01);
    }
}
