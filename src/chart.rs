//! Terminal pictures: horizontal Unicode bar charts, sized to a width, for `compare --chart` and
//! `cost --chart`. Pure: data and a width in, text out. Colour only when asked (the caller
//! decides from the terminal and `NO_COLOR`); without colour, stacked series differ by glyph.

use colored::Colorize;

/// One bar: a label, one value per series (stacked left to right), the figure printed after it.
#[derive(Debug, Clone, PartialEq)]
pub struct Bar {
    pub label: String,
    pub values: Vec<f64>,
    /// The figure printed right of the bar (`$0.0210/h`).
    pub value_text: String,
    /// Printed after the figure (`◀ cheapest`); empty for none.
    pub note: String,
    /// Drawn in bold green when colour is on.
    pub highlight: bool,
}

/// A titled bar chart. With more than one series, a legend names each series' glyph.
#[derive(Debug, Clone, PartialEq)]
pub struct BarChart {
    pub title: String,
    /// What the length measures, with its unit (`USD per hour`); printed under the bars.
    pub axis: String,
    /// The value a full-width bar stands for, as text (`$0.0500/h`).
    pub max_text: String,
    pub series: Vec<String>,
    pub bars: Vec<Bar>,
}

/// Glyphs of stacked series, told apart without colour.
const GLYPHS: [char; 7] = ['█', '▓', '▒', '░', '▚', '▞', '▪'];
/// Eighths of a cell, for a single series' fractional end.
const EIGHTHS: [char; 8] = [' ', '▏', '▎', '▍', '▌', '▋', '▊', '▉'];
const NARROWEST: usize = 40;

/// The width to draw for: `COLUMNS` when set, else the terminal's, else 80.
pub fn terminal_width() -> usize {
    if let Some(n) = std::env::var("COLUMNS")
        .ok()
        .and_then(|v| v.trim().parse::<usize>().ok())
        .filter(|n| *n > 0)
    {
        return n;
    }
    terminal_size::terminal_size_of(std::io::stdout())
        .map(|(w, _)| usize::from(w.0))
        .filter(|w| *w > 0)
        .unwrap_or(80)
}

fn chars(s: &str) -> usize {
    s.chars().count()
}

/// `s` cut to `n` characters, with `…` when cut.
fn fit(s: &str, n: usize) -> String {
    if chars(s) <= n {
        s.to_string()
    } else if n == 0 {
        String::new()
    } else {
        let mut out: String = s.chars().take(n - 1).collect();
        out.push('…');
        out
    }
}

fn paint(text: &str, series: usize, color: bool) -> String {
    if !color {
        return text.to_string();
    }
    match series % 6 {
        0 => text.green(),
        1 => text.blue(),
        2 => text.yellow(),
        3 => text.magenta(),
        4 => text.cyan(),
        _ => text.red(),
    }
    .to_string()
}

/// Draw `chart` in at most `width` columns (never narrower than 40). Every line ends in `\n`.
pub fn draw(chart: &BarChart, width: usize, color: bool) -> String {
    let width = width.max(NARROWEST);
    let mut out = String::new();
    let title = fit(&chart.title, width);
    out.push_str(&if color {
        title.bold().to_string()
    } else {
        title
    });
    out.push('\n');
    let stacked = chart.series.len() > 1;
    if stacked {
        let mut legend = String::new();
        let mut used = 0;
        for (i, name) in chart.series.iter().enumerate() {
            let item = format!("{} {name}", GLYPHS[i % GLYPHS.len()]);
            let gap = if i == 0 { 0 } else { 2 };
            if used + gap + chars(&item) > width && used > 0 {
                out.push_str(&legend);
                out.push('\n');
                legend.clear();
                used = 0;
            } else if i > 0 {
                legend.push_str("  ");
                used += 2;
            }
            used += chars(&item);
            legend.push_str(&paint(&item, i, color));
        }
        out.push_str(&legend);
        out.push('\n');
    }
    let label_w = chart
        .bars
        .iter()
        .map(|b| chars(&b.label))
        .max()
        .unwrap_or(0)
        .min(width / 3);
    let value_w = chart
        .bars
        .iter()
        .map(|b| chars(&b.value_text))
        .max()
        .unwrap_or(0);
    let note_w = chart
        .bars
        .iter()
        .map(|b| chars(&b.note))
        .max()
        .map_or(0, |n| if n > 0 { n + 1 } else { 0 });
    // label ␣ bar ␣ value [␣ note]
    let bar_w = width
        .saturating_sub(label_w + 1 + 1 + value_w + note_w)
        .max(8);
    let max: f64 = chart
        .bars
        .iter()
        .map(|b| b.values.iter().filter(|v| v.is_finite()).sum::<f64>())
        .fold(0.0, f64::max);
    let scale = if max > 0.0 { bar_w as f64 / max } else { 0.0 };
    for b in &chart.bars {
        let mut line = format!("{:<label_w$} ", fit(&b.label, label_w));
        let (bar, cells) = if stacked {
            stacked_bar(&b.values, scale, color)
        } else {
            single_bar(b.values.first().copied().unwrap_or(0.0), scale)
        };
        let bar = if color && b.highlight && !stacked {
            bar.green().bold().to_string()
        } else if color && !stacked {
            bar.cyan().to_string()
        } else {
            bar
        };
        line.push_str(&bar);
        line.push_str(&" ".repeat(bar_w.saturating_sub(cells)));
        line.push(' ');
        let value = format!("{:>value_w$}", b.value_text);
        line.push_str(&if color && b.highlight {
            value.bold().to_string()
        } else {
            value
        });
        if !b.note.is_empty() {
            line.push(' ');
            line.push_str(&if color {
                b.note.green().bold().to_string()
            } else {
                b.note.clone()
            });
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    let axis = format!(
        "{:label_w$} 0{}",
        "",
        right_aligned(&chart.max_text, bar_w.saturating_sub(1))
    );
    out.push_str(axis.trim_end());
    out.push('\n');
    let caption = fit(
        &format!("{:label_w$} bar length: {}", "", chart.axis),
        width,
    );
    out.push_str(&caption);
    out.push('\n');
    out
}

fn right_aligned(text: &str, w: usize) -> String {
    format!("{:>w$}", fit(text, w))
}

/// A single value: whole cells and an eighth-cell end. Returns the text and its width in cells.
fn single_bar(v: f64, scale: f64) -> (String, usize) {
    let eighths = if v.is_finite() && v > 0.0 {
        ((v * scale * 8.0).round() as usize).max(1)
    } else {
        0
    };
    let mut s: String = "█".repeat(eighths / 8);
    let mut cells = eighths / 8;
    if eighths % 8 > 0 {
        s.push(EIGHTHS[eighths % 8]);
        cells += 1;
    }
    (s, cells)
}

/// Stacked values in whole cells; rounding on the running sum keeps the total length exact.
fn stacked_bar(values: &[f64], scale: f64, color: bool) -> (String, usize) {
    let mut s = String::new();
    let mut cum = 0.0;
    let mut drawn = 0usize;
    for (i, v) in values.iter().enumerate() {
        if !(v.is_finite() && *v > 0.0) {
            continue;
        }
        cum += v;
        let end = (cum * scale).round() as usize;
        let n = end.saturating_sub(drawn);
        if n > 0 {
            let seg: String = std::iter::repeat_n(GLYPHS[i % GLYPHS.len()], n).collect();
            s.push_str(&paint(&seg, i, color));
            drawn = end;
        }
    }
    (s, drawn)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bar(label: &str, values: &[f64], text: &str) -> Bar {
        Bar {
            label: label.into(),
            values: values.to_vec(),
            value_text: text.into(),
            note: String::new(),
            highlight: false,
        }
    }

    #[test]
    fn single_series_scales_to_the_width_with_eighths() {
        let chart = BarChart {
            title: "Price".into(),
            axis: "USD per hour".into(),
            max_text: "$1.00".into(),
            series: vec![],
            bars: vec![bar("a", &[1.0], "$1.00"), bar("bb", &[0.5], "$0.50")],
        };
        let text = draw(&chart, 40, false);
        for line in text.lines() {
            assert!(chars(line) <= 40, "{line:?}");
        }
        // 40 - label 2 - 2 spaces - value 5 = 31 cells; half of it is 15.5 cells.
        assert!(
            text.contains(&format!("a  {} $1.00", "█".repeat(31))),
            "{text}"
        );
        assert!(text.contains(&format!("bb {}▌", "█".repeat(15))), "{text}");
    }

    #[test]
    fn stacks_keep_their_total_length_and_have_a_legend() {
        let chart = BarChart {
            title: "Daily".into(),
            axis: "USD per day".into(),
            max_text: "$3.00".into(),
            series: vec!["p".into(), "q".into()],
            bars: vec![
                bar("d1", &[1.0, 2.0], "$3.00"),
                bar("d2", &[0.0, 1.5], "$1.50"),
            ],
        };
        let text = draw(&chart, 51, false);
        assert!(text.contains("█ p  ▓ q"), "{text}");
        let d1 = text.lines().find(|l| l.starts_with("d1")).unwrap();
        let d2 = text.lines().find(|l| l.starts_with("d2")).unwrap();
        let cells = |l: &str| l.chars().filter(|c| GLYPHS.contains(c)).count();
        assert_eq!(cells(d1), 2 * cells(d2));
        assert!(!d2.contains('█'), "no p on day 2: {d2}");
    }

    #[test]
    fn no_escape_codes_without_colour() {
        let chart = BarChart {
            title: "T".into(),
            axis: "x".into(),
            max_text: "1".into(),
            series: vec![],
            bars: vec![Bar {
                highlight: true,
                note: "◀ cheapest".into(),
                ..bar("a", &[1.0], "1")
            }],
        };
        assert!(!draw(&chart, 80, false).contains('\u{1b}'));
    }

    #[test]
    fn long_labels_are_cut() {
        assert_eq!(fit("abcdef", 4), "abc…");
        assert_eq!(fit("abc", 4), "abc");
    }
}
