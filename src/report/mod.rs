//! The HTML report renderer: a page of sections, each with figures (an SVG chart and the same
//! data as a table), turned into one self-contained HTML file.
//!
//! Charts are plain SVG written by the minijinja template `report.html` from geometry computed
//! here (scales, ticks, positions): no script, no external file, no font metrics. This module
//! knows charts and tables, not providers or nodes; `commands::report` fills it with data.

use serde::Serialize;

/// The whole page.
#[derive(Debug, Clone, Serialize)]
pub struct Page {
    pub title: String,
    /// Lines under the title (generation time, filters, window).
    pub meta: Vec<String>,
    pub sections: Vec<Section>,
}

/// One section (`<section id=…>`), with a lead paragraph, key figures and figures.
#[derive(Debug, Clone, Serialize)]
pub struct Section {
    pub id: String,
    pub title: String,
    pub lead: Vec<String>,
    /// Key figures shown large: `(label, value)`.
    pub facts: Vec<(String, String)>,
    /// A highlighted statement (the cheapest fit), if any.
    pub callout: Option<String>,
    pub figures: Vec<Figure>,
}

/// A chart with its table; either may be absent (a table alone, a note instead of a chart).
#[derive(Debug, Clone, Serialize)]
pub struct Figure {
    pub id: String,
    pub chart: Option<Chart>,
    pub table: Table,
    /// Said instead of a chart when there is nothing to draw.
    pub empty: Option<String>,
    pub note: Option<String>,
}

/// A table: header and rows of cell text; numeric columns are right-aligned.
#[derive(Debug, Clone, Serialize, Default)]
pub struct Table {
    pub caption: String,
    pub columns: Vec<Column>,
    pub rows: Vec<Row>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Column {
    pub label: String,
    pub numeric: bool,
}

#[derive(Debug, Clone, Serialize, Default)]
pub struct Row {
    pub cells: Vec<String>,
    /// `highlight`, `total`, `warn` or empty.
    pub class: String,
}

impl Table {
    pub fn new(caption: &str, columns: &[(&str, bool)]) -> Table {
        Table {
            caption: caption.to_string(),
            columns: columns
                .iter()
                .map(|(l, n)| Column {
                    label: l.to_string(),
                    numeric: *n,
                })
                .collect(),
            rows: Vec::new(),
        }
    }

    pub fn push(&mut self, cells: Vec<String>, class: &str) {
        self.rows.push(Row {
            cells,
            class: class.to_string(),
        });
    }
}

// ---------------------------------------------------------------------------------------------
// chart geometry

/// Drawing size of every chart (SVG user units; the page scales it down on narrow screens).
const W: f64 = 640.0;

/// Where the plot area sits inside the SVG.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Rect {
    pub x: f64,
    pub y: f64,
    pub w: f64,
    pub h: f64,
}

/// A tick on an axis: its position along the axis (SVG units) and its label.
#[derive(Debug, Clone, Serialize)]
pub struct Tick {
    pub pos: f64,
    pub label: String,
}

/// A legend entry: `shape` is `circle`, `square`, `diamond`, `triangle`, `ring` or `bar`.
#[derive(Debug, Clone, Serialize)]
pub struct LegendItem {
    pub label: String,
    pub class: String,
    pub shape: String,
}

/// A drawn mark: a rectangle (bars) or a point symbol (scatter).
#[derive(Debug, Clone, Serialize)]
pub struct Mark {
    pub shape: String,
    pub x: f64,
    pub y: f64,
    pub w: f64,
    pub h: f64,
    pub class: String,
    /// Tooltip (`<title>`).
    pub title: String,
    pub ring: bool,
    pub highlight: bool,
}

/// Text placed on the chart: category labels, value labels, annotations.
#[derive(Debug, Clone, Serialize)]
pub struct Label {
    pub x: f64,
    pub y: f64,
    pub text: String,
    /// `start`, `middle` or `end`.
    pub anchor: String,
    pub class: String,
}

/// A finished chart: everything the template needs, positions included.
#[derive(Debug, Clone, Serialize)]
pub struct Chart {
    pub title: String,
    pub x_label: String,
    pub y_label: String,
    pub width: f64,
    pub height: f64,
    pub plot: Rect,
    pub x_ticks: Vec<Tick>,
    pub y_ticks: Vec<Tick>,
    /// Grid lines across the plot at the x ticks (value axes) or not (category axes).
    pub x_grid: bool,
    pub y_grid: bool,
    pub legend: Vec<LegendItem>,
    pub marks: Vec<Mark>,
    pub labels: Vec<Label>,
}

/// A continuous scale from data to SVG units.
#[derive(Debug, Clone, Copy)]
struct Scale {
    lo: f64,
    hi: f64,
    from: f64,
    to: f64,
    log: bool,
}

impl Scale {
    /// Left to right across the plot.
    fn across(lo: f64, hi: f64, plot: &Rect, log: bool) -> Scale {
        Scale {
            lo,
            hi,
            from: plot.x,
            to: plot.x + plot.w,
            log,
        }
    }

    /// Bottom to top up the plot.
    fn up(lo: f64, hi: f64, plot: &Rect, log: bool) -> Scale {
        Scale {
            lo,
            hi,
            from: plot.y + plot.h,
            to: plot.y,
            log,
        }
    }

    /// Ticks at `values`, labelled by `fmt`.
    fn ticks(&self, values: &[f64], fmt: &dyn Fn(f64) -> String) -> Vec<Tick> {
        values
            .iter()
            .map(|v| Tick {
                pos: self.at(*v),
                label: fmt(*v),
            })
            .collect()
    }

    fn at(&self, v: f64) -> f64 {
        let (lo, hi, v) = if self.log {
            (self.lo.ln(), self.hi.ln(), v.max(self.lo).ln())
        } else {
            (self.lo, self.hi, v)
        };
        if hi <= lo {
            return (self.from + self.to) / 2.0;
        }
        self.from + (v - lo) / (hi - lo) * (self.to - self.from)
    }
}

/// A point series of a scatter chart; `color` picks the palette entry (stable per provider).
#[derive(Debug, Clone)]
pub struct PointSeries {
    pub name: String,
    pub color: usize,
    pub points: Vec<Point>,
}

/// A named series of a bar chart and its palette entry.
#[derive(Debug, Clone)]
pub struct Series {
    pub name: String,
    pub color: usize,
}

#[derive(Debug, Clone)]
pub struct Point {
    pub x: f64,
    pub y: f64,
    pub title: String,
    /// Drawn with a ring (GPU templates).
    pub ring: bool,
    pub highlight: bool,
}

const SHAPES: [&str; 4] = ["circle", "square", "diamond", "triangle"];

fn series_class(i: usize) -> String {
    format!("s{}", i % 8)
}

/// Log ticks between `lo` and `hi`: powers of `base`, with 2× and 5× steps in between for base
/// 10 when the range spans few decades.
fn log_ticks(lo: f64, hi: f64, base: f64, fmt: &dyn Fn(f64) -> String) -> Vec<f64> {
    let mut out = Vec::new();
    let mut p = base.powf(lo.log(base).floor());
    let few = base == 10.0 && (hi / lo).log10() < 2.5;
    while p <= hi * 1.000_001 {
        for m in if few {
            &[1.0, 2.0, 5.0][..]
        } else {
            &[1.0][..]
        } {
            let v = p * m;
            if v >= lo * 0.999_999 && v <= hi * 1.000_001 && !fmt(v).is_empty() {
                out.push(v);
            }
        }
        p *= base;
    }
    out
}

/// "Nice" linear ticks from 0 to at least `hi`: about `n` of them.
fn linear_ticks(hi: f64, n: usize) -> (f64, Vec<f64>) {
    if hi.is_nan() || hi <= 0.0 {
        return (1.0, vec![0.0, 1.0]);
    }
    let raw = hi / n as f64;
    let mag = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 2.5, 5.0, 10.0]
        .iter()
        .map(|m| m * mag)
        .find(|s| *s >= raw)
        .unwrap_or(10.0 * mag);
    let top = (hi / step).ceil() * step;
    let count = (top / step).round() as usize;
    (top, (0..=count).map(|i| i as f64 * step).collect())
}

/// A scatter chart with log or linear axes.
#[allow(clippy::too_many_arguments)]
pub fn scatter(
    title: &str,
    x_label: &str,
    y_label: &str,
    series: &[PointSeries],
    x_log: bool,
    y_log: bool,
    x_fmt: &dyn Fn(f64) -> String,
    y_fmt: &dyn Fn(f64) -> String,
    extra_legend: Vec<LegendItem>,
) -> Chart {
    let height = 420.0;
    let plot = Rect {
        x: 78.0,
        y: 16.0,
        w: W - 78.0 - 16.0,
        h: height - 16.0 - 56.0,
    };
    let xs: Vec<f64> = series
        .iter()
        .flat_map(|s| s.points.iter().map(|p| p.x))
        .filter(|v| v.is_finite() && (!x_log || *v > 0.0))
        .collect();
    let ys: Vec<f64> = series
        .iter()
        .flat_map(|s| s.points.iter().map(|p| p.y))
        .filter(|v| v.is_finite() && (!y_log || *v > 0.0))
        .collect();
    let range = |vals: &[f64], log: bool| -> (f64, f64) {
        let lo = vals.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = vals.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        if !lo.is_finite() {
            return if log { (1.0, 10.0) } else { (0.0, 1.0) };
        }
        if log {
            // A little room around the extremes, on the log scale.
            (lo / 1.25, hi * 1.25)
        } else {
            (0.0, if hi > 0.0 { hi * 1.05 } else { 1.0 })
        }
    };
    let (x_lo, x_hi) = range(&xs, x_log);
    let (y_lo, y_hi) = range(&ys, y_log);
    let (x_hi, x_tick_values) = if x_log {
        (x_hi, log_ticks(x_lo, x_hi, 2.0, x_fmt))
    } else {
        linear_ticks(x_hi, 6)
    };
    let (y_hi, y_tick_values) = if y_log {
        (y_hi, log_ticks(y_lo, y_hi, 10.0, y_fmt))
    } else {
        linear_ticks(y_hi, 5)
    };
    let sx = Scale::across(x_lo, x_hi, &plot, x_log);
    let sy = Scale::up(y_lo, y_hi, &plot, y_log);
    let mut marks = Vec::new();
    let mut legend = Vec::new();
    let mut labels = Vec::new();
    for (i, s) in series.iter().enumerate() {
        let shape = SHAPES[i % SHAPES.len()].to_string();
        legend.push(LegendItem {
            label: s.name.clone(),
            class: series_class(s.color),
            shape: shape.clone(),
        });
        for p in &s.points {
            if !(p.x.is_finite() && p.y.is_finite()) {
                continue;
            }
            let (x, y) = (sx.at(p.x), sy.at(p.y));
            marks.push(Mark {
                shape: shape.clone(),
                x,
                y,
                w: 0.0,
                h: 0.0,
                class: series_class(s.color),
                title: p.title.clone(),
                ring: p.ring,
                highlight: p.highlight,
            });
            if p.highlight {
                labels.push(Label {
                    x: x + 10.0,
                    y: y - 8.0,
                    text: p.title.split(':').next().unwrap_or("").to_string(),
                    anchor: "start".into(),
                    class: "callout".into(),
                });
            }
        }
    }
    legend.extend(extra_legend);
    Chart {
        title: title.into(),
        x_label: x_label.into(),
        y_label: y_label.into(),
        width: W,
        height,
        plot,
        x_ticks: sx.ticks(&x_tick_values, x_fmt),
        y_ticks: sy.ticks(&y_tick_values, y_fmt),
        x_grid: true,
        y_grid: true,
        legend,
        marks,
        labels,
    }
}

/// A category with one value per series (stacked).
#[derive(Debug, Clone)]
pub struct Category {
    pub label: String,
    pub values: Vec<f64>,
    /// Printed at the bar's end (horizontal bars).
    pub value_text: String,
    pub highlight: bool,
    /// Extra class for the category label (`warn`).
    pub class: String,
}

/// One drawn part of a stacked bar: from where to where along the value axis, its class and
/// tooltip.
struct Segment {
    from: f64,
    to: f64,
    class: String,
    title: String,
}

impl Segment {
    fn rect(self, x: f64, y: f64, w: f64, h: f64, highlight: bool) -> Mark {
        Mark {
            shape: "rect".into(),
            x,
            y,
            w,
            h,
            class: self.class,
            title: self.title,
            ring: false,
            highlight,
        }
    }
}

impl Category {
    /// The category's positive finite values stacked in series order, each with its series'
    /// class and a tooltip naming the category, the series and the value.
    fn segments(&self, series: &[Series], fmt: &dyn Fn(f64) -> String) -> Vec<Segment> {
        let mut cum = 0.0;
        let mut out = Vec::new();
        for (s, v) in self.values.iter().enumerate() {
            if !(v.is_finite() && *v > 0.0) {
                continue;
            }
            let name = series
                .get(s)
                .map_or(String::new(), |n| format!(" {}", n.name));
            let color = series.get(s).map_or(s, |n| n.color);
            out.push(Segment {
                from: cum,
                to: cum + v,
                class: series_class(color),
                title: format!("{}{name}: {}", self.label, fmt(*v)),
            });
            cum += v;
        }
        out
    }

    /// The height of the whole stack.
    fn total(&self) -> f64 {
        self.values.iter().filter(|v| v.is_finite()).sum::<f64>()
    }
}

/// Horizontal bars, one per category, stacked by series, value axis from zero.
pub fn hbars(
    title: &str,
    value_label: &str,
    category_label: &str,
    series: &[Series],
    cats: &[Category],
    fmt: &dyn Fn(f64) -> String,
) -> Chart {
    let label_w = cats
        .iter()
        .map(|c| c.label.chars().count())
        .max()
        .unwrap_or(4)
        .clamp(4, 28) as f64
        * 6.6
        + 14.0;
    let bar_h = 16.0;
    let gap = 5.0;
    let top = 16.0;
    let plot_h = cats.len().max(1) as f64 * (bar_h + gap) + gap;
    let height = top + plot_h + 58.0;
    let plot = Rect {
        x: label_w + 24.0,
        y: top,
        w: W - label_w - 24.0 - 90.0,
        h: plot_h,
    };
    let max = cats.iter().map(Category::total).fold(0.0, f64::max);
    let (hi, ticks) = linear_ticks(max, 5);
    let sx = Scale::across(0.0, hi, &plot, false);
    let mut marks = Vec::new();
    let mut labels = Vec::new();
    for (i, c) in cats.iter().enumerate() {
        let y = plot.y + gap + i as f64 * (bar_h + gap);
        let mut cum = 0.0;
        for seg in c.segments(series, fmt) {
            let (x0, x1) = (sx.at(seg.from), sx.at(seg.to));
            cum = seg.to;
            marks.push(seg.rect(x0, y, (x1 - x0).max(1.0), bar_h, c.highlight));
        }
        labels.push(Label {
            x: plot.x - 6.0,
            y: y + bar_h * 0.75,
            text: truncate(&c.label, 28),
            anchor: "end".into(),
            class: if c.highlight {
                "cat callout".into()
            } else {
                format!("cat {}", c.class).trim().to_string()
            },
        });
        labels.push(Label {
            x: sx.at(cum) + 4.0,
            y: y + bar_h * 0.75,
            text: c.value_text.clone(),
            anchor: "start".into(),
            class: if c.highlight {
                "value callout".into()
            } else {
                "value".into()
            },
        });
    }
    Chart {
        title: title.into(),
        x_label: value_label.into(),
        y_label: category_label.into(),
        width: W,
        height,
        plot,
        x_ticks: sx.ticks(&ticks, fmt),
        y_ticks: Vec::new(),
        x_grid: true,
        y_grid: false,
        legend: stacked_legend(series),
        marks,
        labels,
    }
}

fn stacked_legend(series: &[Series]) -> Vec<LegendItem> {
    series
        .iter()
        .map(|s| LegendItem {
            label: s.name.clone(),
            class: series_class(s.color),
            shape: "bar".into(),
        })
        .collect()
}

/// Vertical columns over ordered categories (days), stacked by series.
pub fn columns(
    title: &str,
    value_label: &str,
    category_label: &str,
    series: &[Series],
    cats: &[Category],
    fmt: &dyn Fn(f64) -> String,
) -> Chart {
    let height = 380.0;
    let plot = Rect {
        x: 78.0,
        y: 16.0,
        w: W - 78.0 - 16.0,
        h: height - 16.0 - 70.0,
    };
    let max = cats.iter().map(Category::total).fold(0.0, f64::max);
    let (hi, ticks) = linear_ticks(max, 5);
    let sy = Scale::up(0.0, hi, &plot, false);
    let n = cats.len().max(1) as f64;
    let slot = plot.w / n;
    let bar_w = (slot * 0.8).max(1.0);
    let every = (cats.len() / 10).max(1);
    let mut marks = Vec::new();
    let mut x_ticks = Vec::new();
    for (i, c) in cats.iter().enumerate() {
        let x = plot.x + i as f64 * slot + (slot - bar_w) / 2.0;
        for seg in c.segments(series, fmt) {
            let (y0, y1) = (sy.at(seg.from), sy.at(seg.to));
            marks.push(seg.rect(x, y1, bar_w, (y0 - y1).max(0.5), c.highlight));
        }
        if i % every == 0 || i + 1 == cats.len() && cats.len() <= 10 {
            x_ticks.push(Tick {
                pos: x + bar_w / 2.0,
                label: c.label.clone(),
            });
        }
    }
    Chart {
        title: title.into(),
        x_label: category_label.into(),
        y_label: value_label.into(),
        width: W,
        height,
        plot,
        x_ticks,
        y_ticks: sy.ticks(&ticks, fmt),
        x_grid: false,
        y_grid: true,
        legend: stacked_legend(series),
        marks,
        labels: Vec::new(),
    }
}

fn truncate(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else {
        let mut t: String = s.chars().take(n - 1).collect();
        t.push('…');
        t
    }
}

// ---------------------------------------------------------------------------------------------
// rendering

const TEMPLATE: &str = include_str!("report.html");

/// The page as one HTML document.
pub fn render(page: &Page) -> anyhow::Result<String> {
    let mut env = minijinja::Environment::new();
    env.set_auto_escape_callback(|_| minijinja::AutoEscape::Html);
    env.set_undefined_behavior(minijinja::UndefinedBehavior::Strict);
    env.set_trim_blocks(true);
    env.set_lstrip_blocks(true);
    env.add_filter("n", |v: f64| -> String {
        // Coordinates with one decimal: enough for the eye, small in the file.
        let r = (v * 10.0).round() / 10.0;
        if r == r.trunc() {
            format!("{}", r as i64)
        } else {
            format!("{r:.1}")
        }
    });
    env.add_template("report.html", TEMPLATE)?;
    let html = env.get_template("report.html")?.render(page)?;
    Ok(html)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn linear_ticks_are_round_and_cover_the_maximum() {
        let (top, t) = linear_ticks(7.3, 5);
        assert_eq!(top, 8.0);
        assert_eq!(t, [0.0, 2.0, 4.0, 6.0, 8.0]);
        let (top, _) = linear_ticks(0.0, 5);
        assert_eq!(top, 1.0);
    }

    #[test]
    fn log_ticks_are_powers() {
        let f = |v: f64| format!("{v}");
        assert_eq!(
            log_ticks(0.8, 70.0, 2.0, &f),
            [1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0]
        );
        assert_eq!(log_ticks(0.004, 3.0, 10.0, &f), [0.01, 0.1, 1.0]);
        assert_eq!(log_ticks(0.15, 3.0, 10.0, &f), [0.2, 0.5, 1.0, 2.0]);
    }

    #[test]
    fn renders_escaped_self_contained_html() {
        let mut table = Table::new("t", &[("name", false), ("n", true)]);
        table.push(vec!["<b>x</b>".into(), "1".into()], "highlight");
        let chart = hbars(
            "Bars",
            "USD",
            "thing",
            &[Series {
                name: "a".into(),
                color: 0,
            }],
            &[Category {
                label: "<b>x</b>".into(),
                values: vec![1.0],
                value_text: "$1".into(),
                highlight: true,
                class: String::new(),
            }],
            &|v| format!("{v}"),
        );
        let page = Page {
            title: "T".into(),
            meta: vec![],
            sections: vec![Section {
                id: "s".into(),
                title: "S".into(),
                lead: vec![],
                facts: vec![],
                callout: None,
                figures: vec![Figure {
                    id: "f".into(),
                    chart: Some(chart),
                    table,
                    empty: None,
                    note: None,
                }],
            }],
        };
        let html = render(&page).unwrap();
        assert!(html.starts_with("<!DOCTYPE html>"), "{}", &html[..40]);
        assert!(!html.contains("<b>x</b>"));
        assert!(html.contains("&lt;b&gt;x&lt;&#x2f;b&gt;"));
        assert!(html.contains("<svg"));
    }
}
