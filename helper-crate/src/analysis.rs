//! Analysis: what the stream said, once it is saved.
//!
//! A consumer's output is data like any other. `kafka_log.csv` goes into a polars
//! [`DataFrame`], where per-city statistics are one `group_by` away, and
//! [`TemperatureChart`] draws temperature over time per city as an SVG that a
//! notebook shows inline. The CSV keeps the Kafka coordinates (topic, partition,
//! offset) next to the reading, so every point on the chart can be traced back to
//! the message it came from.
//!
//! Built only with the `analysis` feature (polars is large to compile).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use chrono::{DateTime, Utc};
pub use polars;
use polars::prelude::*;

use crate::csv_log::{read_csv_log, CsvRow};
use crate::display::{escape_html, AsTable, Table};
use crate::error::{Error, Result};

/// Reads `kafka_log.csv` into a DataFrame with its six columns.
pub fn load_kafka_log(path: impl AsRef<Path>) -> Result<DataFrame> {
    rows_to_frame(&read_csv_log(path)?)
}

/// The CSV rows as a DataFrame (topic, partition, offset, timestamp, city, temperature).
pub fn rows_to_frame(rows: &[CsvRow]) -> Result<DataFrame> {
    let texts = |field: fn(&CsvRow) -> &str| rows.iter().map(field).collect::<Vec<&str>>();
    DataFrame::new(
        rows.len(),
        vec![
            Column::new("topic".into(), texts(|r| &r.topic)),
            Column::new(
                "partition".into(),
                rows.iter().map(|r| r.partition).collect::<Vec<_>>(),
            ),
            Column::new(
                "offset".into(),
                rows.iter().map(|r| r.offset).collect::<Vec<_>>(),
            ),
            Column::new("timestamp".into(), texts(|r| &r.timestamp)),
            Column::new("city".into(), texts(|r| &r.city)),
            Column::new(
                "temperature".into(),
                rows.iter().map(|r| r.temperature).collect::<Vec<_>>(),
            ),
        ],
    )
    .map_err(polars_error)
}

/// Readings, mean, min and max temperature per city, sorted by city.
pub fn city_stats(frame: &DataFrame) -> Result<DataFrame> {
    frame
        .clone()
        .lazy()
        .group_by([col("city")])
        .agg([
            col("temperature").count().alias("readings"),
            col("temperature")
                .mean()
                .round(1, RoundMode::HalfToEven)
                .alias("mean °C"),
            col("temperature").min().alias("min °C"),
            col("temperature").max().alias("max °C"),
        ])
        .sort(["city"], SortMultipleOptions::default())
        .collect()
        .map_err(polars_error)
}

fn polars_error(error: PolarsError) -> Error {
    Error::Analysis(error.to_string())
}

/// A DataFrame shown as an HTML table in notebooks (evcxr) and as text in a terminal.
#[derive(Clone, Debug)]
pub struct FrameTable {
    /// The frame.
    pub frame: DataFrame,
    /// A heading.
    pub title: String,
    /// Rows shown at most (the footer says how many there are).
    pub max_rows: usize,
}

impl FrameTable {
    /// Shows up to 20 rows of `frame` under `title`.
    pub fn new(title: impl Into<String>, frame: DataFrame) -> Self {
        FrameTable {
            frame,
            title: title.into(),
            max_rows: 20,
        }
    }
}

impl AsTable for FrameTable {
    fn as_table(&self) -> Table {
        let names: Vec<String> = self
            .frame
            .get_column_names()
            .iter()
            .map(|n| n.to_string())
            .collect();
        let headers: Vec<&str> = names.iter().map(String::as_str).collect();
        let mut table = Table::new(&headers).with_title(self.title.clone());
        let shown = self.frame.height().min(self.max_rows);
        for row in 0..shown {
            let cells = self
                .frame
                .columns()
                .iter()
                .map(|column| match column.get(row) {
                    Ok(AnyValue::String(text)) => text.to_string(),
                    Ok(AnyValue::Float64(value)) => format!("{value:.1}"),
                    Ok(value) => value.to_string(),
                    Err(_) => String::new(),
                })
                .collect();
            table.push_row(cells);
        }
        table.footer = Some(format!(
            "{} rows × {} columns{}",
            self.frame.height(),
            self.frame.width(),
            if shown < self.frame.height() {
                format!(" (first {shown} shown)")
            } else {
                String::new()
            }
        ));
        table
    }
}

crate::shown_as_table!(FrameTable);

/// Temperature over time, one line per city, as an SVG figure.
#[derive(Clone, Debug, PartialEq)]
pub struct TemperatureChart {
    /// Points per city: (time, °C), in time order.
    pub series: BTreeMap<String, Vec<(DateTime<Utc>, f64)>>,
    /// Width of the figure in pixels.
    pub width: f64,
    /// Height of the figure in pixels.
    pub height: f64,
}

const PALETTE: [&str; 6] = [
    "#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b",
];

impl TemperatureChart {
    /// Groups the CSV rows by city; rows whose timestamp does not parse are left out.
    pub fn from_rows(rows: &[CsvRow]) -> Self {
        let mut series: BTreeMap<String, Vec<(DateTime<Utc>, f64)>> = BTreeMap::new();
        for row in rows {
            if let Ok(time) = DateTime::parse_from_rfc3339(&row.timestamp) {
                series
                    .entry(row.city.clone())
                    .or_default()
                    .push((time.with_timezone(&Utc), row.temperature));
            }
        }
        for points in series.values_mut() {
            points.sort_by_key(|(time, _)| *time);
        }
        TemperatureChart {
            series,
            width: 720.0,
            height: 360.0,
        }
    }

    /// Number of points drawn.
    pub fn point_count(&self) -> usize {
        self.series.values().map(Vec::len).sum()
    }

    /// The first and last time (ms) and the lowest and highest value; `t0 > t1`
    /// when there are no points.
    fn ranges(&self) -> (i64, i64, f64, f64) {
        let (mut t0, mut t1, mut lo, mut hi) = (i64::MAX, i64::MIN, f64::MAX, f64::MIN);
        for (time, value) in self.series.values().flatten() {
            let ms = time.timestamp_millis();
            t0 = t0.min(ms);
            t1 = t1.max(ms);
            lo = lo.min(*value);
            hi = hi.max(*value);
        }
        (t0, t1, lo, hi)
    }

    /// The figure as an SVG document.
    pub fn to_svg(&self) -> String {
        let (left, right, top, bottom) = (56.0, 130.0, 30.0, 40.0);
        let (t0, t1, lo, hi) = self.ranges();
        let mut svg = format!(
            r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}" font-family="sans-serif" font-size="12">"#,
            w = self.width,
            h = self.height
        );
        let _ = write!(
            svg,
            r#"<text x="{}" y="18" font-size="14">Temperature over time per city (°C)</text>"#,
            left
        );
        if t0 > t1 {
            svg.push_str(r#"<text x="56" y="60">no readings</text></svg>"#);
            return svg;
        }
        let plot = PlotArea {
            left,
            top,
            width: self.width - left - right,
            height: self.height - top - bottom,
            t0,
            t1,
            // Pad the ranges so flat lines and single points still have room.
            lo: (lo - 1.0).floor(),
            hi: (hi + 1.0).ceil(),
        };
        plot.draw_axes(&mut svg);
        for (index, (city, points)) in self.series.iter().enumerate() {
            plot.draw_series(&mut svg, index, city, points);
        }
        svg.push_str("</svg>");
        svg
    }

    /// Shows the chart inline in a Jupyter notebook (evcxr kernel).
    pub fn evcxr_display(&self) {
        println!(
            "EVCXR_BEGIN_CONTENT image/svg+xml\n{}\nEVCXR_END_CONTENT",
            self.to_svg()
        );
    }
}

/// Where the chart's data goes in the SVG, and the ranges it spans: maps a
/// time and a temperature to a point.
struct PlotArea {
    left: f64,
    top: f64,
    width: f64,
    height: f64,
    /// First and last time, in ms.
    t0: i64,
    t1: i64,
    /// Lowest and highest temperature shown.
    lo: f64,
    hi: f64,
}

impl PlotArea {
    fn x(&self, ms: i64) -> f64 {
        let span = (self.t1 - self.t0).max(1) as f64;
        self.left + (ms - self.t0) as f64 / span * self.width
    }

    fn y(&self, value: f64) -> f64 {
        self.top + (self.hi - value) / (self.hi - self.lo) * self.height
    }

    /// Horizontal grid lines with their temperatures, and the time axis with
    /// its first and last time.
    fn draw_axes(&self, svg: &mut String) {
        let (left, x2) = (self.left, self.left + self.width);
        for step in 0..=4 {
            let value = self.lo + (self.hi - self.lo) * f64::from(step) / 4.0;
            let _ = write!(
                svg,
                r##"<line x1="{left}" x2="{x2}" y1="{py:.1}" y2="{py:.1}" stroke="#ddd"/><text x="{tx}" y="{ty:.1}" text-anchor="end">{value:.1}</text>"##,
                py = self.y(value),
                tx = left - 6.0,
                ty = self.y(value) + 4.0
            );
        }
        let start = DateTime::<Utc>::from_timestamp_millis(self.t0).unwrap_or_default();
        let end = DateTime::<Utc>::from_timestamp_millis(self.t1).unwrap_or_default();
        let _ = write!(
            svg,
            r##"<line x1="{left}" x2="{x2}" y1="{yb}" y2="{yb}" stroke="#333"/><text x="{left}" y="{ty}">{a}</text><text x="{x2}" y="{ty}" text-anchor="end">{b}</text>"##,
            yb = self.top + self.height,
            ty = self.top + self.height + 18.0,
            a = start.format("%H:%M:%S%.3f UTC"),
            b = end.format("%H:%M:%S%.3f UTC")
        );
    }

    /// One city's line, its points (each with a tooltip) and its legend entry.
    fn draw_series(
        &self,
        svg: &mut String,
        index: usize,
        city: &str,
        points: &[(DateTime<Utc>, f64)],
    ) {
        let color = PALETTE[index % PALETTE.len()];
        let path: Vec<String> = points
            .iter()
            .map(|(t, v)| format!("{:.1},{:.1}", self.x(t.timestamp_millis()), self.y(*v)))
            .collect();
        let _ = write!(
            svg,
            r#"<polyline fill="none" stroke="{color}" stroke-width="2" points="{}"/>"#,
            path.join(" ")
        );
        for (t, v) in points {
            let _ = write!(
                svg,
                r#"<circle cx="{:.1}" cy="{:.1}" r="3" fill="{color}"><title>{} {} {v:.1} °C</title></circle>"#,
                self.x(t.timestamp_millis()),
                self.y(*v),
                escape_html(city),
                t.format("%H:%M:%S%.3f")
            );
        }
        let ly = self.top + 14.0 + 18.0 * index as f64;
        let _ = write!(
            svg,
            r#"<rect x="{lx}" y="{ry}" width="12" height="12" fill="{color}"/><text x="{tx}" y="{ly}">{}</text>"#,
            escape_html(city),
            lx = self.left + self.width + 14.0,
            ry = ly - 10.0,
            tx = self.left + self.width + 32.0,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows() -> Vec<CsvRow> {
        [
            ("Toronto", 3.0),
            ("Fuzhou", 17.5),
            ("Toronto", 5.0),
            ("Fuzhou", 18.5),
        ]
        .iter()
        .enumerate()
        .map(|(i, (city, temperature))| CsvRow {
            topic: "weather".into(),
            partition: 0,
            offset: i as i64,
            timestamp: format!("2026-11-25T03:00:0{i}.000Z"),
            city: city.to_string(),
            temperature: *temperature,
        })
        .collect()
    }

    #[test]
    fn stats_per_city_are_computed() {
        let frame = rows_to_frame(&rows()).unwrap();
        assert_eq!(frame.height(), 4);
        let stats = city_stats(&frame).unwrap();
        let table = FrameTable::new("stats", stats).as_table();
        assert_eq!(
            table.headers,
            ["city", "readings", "mean °C", "min °C", "max °C"]
        );
        assert_eq!(table.rows[0], ["Fuzhou", "2", "18.0", "17.5", "18.5"]);
        assert_eq!(table.rows[1], ["Toronto", "2", "4.0", "3.0", "5.0"]);
    }

    #[test]
    fn chart_draws_one_line_per_city() {
        let chart = TemperatureChart::from_rows(&rows());
        assert_eq!(chart.point_count(), 4);
        let svg = chart.to_svg();
        assert!(svg.starts_with("<svg") && svg.ends_with("</svg>"));
        assert_eq!(svg.matches("<polyline").count(), 2);
        assert_eq!(svg.matches("<circle").count(), 4);
        assert!(svg.contains(">Toronto</text>") && svg.contains(">Fuzhou</text>"));
        let empty = TemperatureChart::from_rows(&[]).to_svg();
        assert!(empty.contains("no readings"));
    }
}
