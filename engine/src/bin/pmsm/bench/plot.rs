//! Minimal SVG line charts: transitions/s (log scale) against a workload parameter, one
//! line per protocol. Written by hand so the report needs no font stack.
//!
//! A chart is drawn only where the profile's runs form a sweep of its parameter
//! ([`Plot::supported`]): a table-size sweep has no batch chart (its runs share a few
//! batch sizes, which drew vertical lines), a batch sweep no table chart.

use serde_json::Value;
use std::collections::BTreeMap;

/// One chart `pmsm bench --out` may write: transitions/s against the result field `x`.
pub struct Plot {
    /// File name in the output folder.
    pub file: &'static str,
    /// What the title says after the profile's name.
    pub title: &'static str,
    /// The result field on the x axis.
    pub x: &'static str,
    /// The x axis label.
    pub x_label: &'static str,
    /// Fields the runs of one protocol must share for their line to show the effect of
    /// `x` alone.
    pub held: &'static [&'static str],
}

/// The charts, in the order they are written.
pub const PLOTS: [Plot; 2] = [
    Plot {
        file: "throughput_vs_batch.svg",
        title: "throughput against batch size",
        x: "batch",
        x_label: "instances (batch)",
        // One machine per line: throughput against batch on different tables mixes two effects.
        held: &["states", "symbols", "classes", "table_bits"],
    },
    Plot {
        file: "throughput_vs_table.svg",
        title: "throughput against table size",
        x: "table_bits",
        x_label: "table domain bits n (N = 2^n)",
        // The table grows with the states at one alphabet (batches may shrink as it grows).
        held: &["symbols"],
    },
];

impl Plot {
    /// Whether `results` form a sweep of `x`: some protocol has runs at two values of
    /// it or more, no protocol has two runs at one value (they would draw a vertical
    /// line), and the runs of each protocol agree on every [`Plot::held`] field.
    pub fn supported<'a>(&self, results: impl Iterator<Item = &'a Value> + Clone) -> bool {
        let by_protocol = series(results.clone(), self.x);
        let mut held: BTreeMap<&str, Vec<&Value>> = BTreeMap::new();
        for v in results {
            if let (Some(p), Some(_)) = (v["protocol"].as_str(), v[self.x].as_f64()) {
                held.entry(p).or_default().push(v);
            }
        }
        let distinct = |pts: &[(f64, f64)]| pts.windows(2).all(|w| w[0].0 != w[1].0);
        let agree = |runs: &[&Value]| self.held.iter().all(|k| runs.iter().all(|v| v[*k] == runs[0][*k]));
        by_protocol.values().any(|pts| pts.len() >= 2)
            && by_protocol.values().all(|pts| distinct(pts))
            && held.values().all(|runs| agree(runs))
    }
}

/// Points `(x, transitions/s)` per protocol, from results whose `x_key` is a number.
pub fn series<'a>(results: impl Iterator<Item = &'a Value>, x_key: &str) -> BTreeMap<String, Vec<(f64, f64)>> {
    let mut out: BTreeMap<String, Vec<(f64, f64)>> = BTreeMap::new();
    for v in results {
        if let (Some(x), Some(y), Some(p)) =
            (v[x_key].as_f64(), v["transitions_per_sec"].as_f64(), v["protocol"].as_str())
        {
            out.entry(p.to_string()).or_default().push((x, y));
        }
    }
    for pts in out.values_mut() {
        pts.sort_by(|a, b| a.0.total_cmp(&b.0));
    }
    out
}

const COLORS: [&str; 4] = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd"];

/// Width of one character of a 12-pixel sans-serif label, generously (digits are about
/// 6.7 px).
const LABEL_CHAR_WIDTH: f64 = 7.5;
/// Room kept between two tick labels.
const LABEL_GAP: f64 = 6.0;

/// An SVG chart; x is log-scaled when it spans more than a factor of 16.
pub fn svg(title: &str, x_label: &str, series: &BTreeMap<String, Vec<(f64, f64)>>) -> String {
    let (w, h, l, r, t, b) = (720.0, 420.0, 80.0, 160.0, 40.0, 60.0);
    let pts: Vec<(f64, f64)> = series.values().flatten().copied().collect();
    let mut s = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{h}\" font-family=\"sans-serif\" font-size=\"12\">\n<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n<text x=\"{}\" y=\"24\" text-anchor=\"middle\" font-size=\"15\">{}</text>\n",
        w / 2.0,
        esc(title)
    );
    if pts.is_empty() {
        s.push_str("<text x=\"360\" y=\"210\" text-anchor=\"middle\">no data</text>\n</svg>\n");
        return s;
    }
    let (xmin, xmax) = pts.iter().fold((f64::MAX, f64::MIN), |(a, b), p| (a.min(p.0), b.max(p.0)));
    let log_x = xmin > 0.0 && xmax / xmin > 16.0;
    let fx = |x: f64| if log_x { x.log10() } else { x };
    let (x0, x1) = (fx(xmin), fx(xmax).max(fx(xmin) + 1e-9));
    let (ymin, ymax) = pts.iter().fold((f64::MAX, f64::MIN), |(a, b), p| (a.min(p.1), b.max(p.1)));
    let (y0, y1) =
        (ymin.max(1.0).log10().floor(), ymax.max(1.0).log10().ceil().max(ymin.max(1.0).log10().floor() + 1.0));
    let px = |x: f64| l + (fx(x) - x0) / (x1 - x0) * (w - l - r);
    let py = |y: f64| h - b - (y.max(1.0).log10() - y0) / (y1 - y0) * (h - t - b);
    s.push_str(&format!(
        "<rect x=\"{l}\" y=\"{t}\" width=\"{}\" height=\"{}\" fill=\"none\" stroke=\"#888\"/>\n",
        w - l - r,
        h - t - b
    ));
    for d in (y0 as i32)..=(y1 as i32) {
        let y = py(10f64.powi(d));
        s.push_str(&format!("<line x1=\"{l}\" x2=\"{}\" y1=\"{y:.1}\" y2=\"{y:.1}\" stroke=\"#eee\"/><text x=\"{}\" y=\"{:.1}\" text-anchor=\"end\">1e{d}</text>\n", w - r, l - 6.0, y + 4.0));
    }
    let mut xs: Vec<f64> = pts.iter().map(|p| p.0).collect();
    xs.sort_by(f64::total_cmp);
    xs.dedup();
    // Tick labels left to right, each only where it clears the last one drawn.
    let mut free_from = f64::MIN;
    for x in xs {
        let (at, label) = (px(x), fmt_x(x));
        let half = LABEL_CHAR_WIDTH * label.chars().count() as f64 / 2.0;
        if at - half < free_from {
            continue;
        }
        free_from = at + half + LABEL_GAP;
        s.push_str(&format!("<text x=\"{at:.1}\" y=\"{}\" text-anchor=\"middle\">{label}</text>\n", h - b + 18.0));
    }
    s.push_str(&format!(
        "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\">{}</text>\n",
        l + (w - l - r) / 2.0,
        h - 16.0,
        esc(x_label)
    ));
    s.push_str(&format!(
        "<text transform=\"translate(18 {}) rotate(-90)\" text-anchor=\"middle\">transitions/s (log)</text>\n",
        t + (h - t - b) / 2.0
    ));
    for (i, (name, pts)) in series.iter().enumerate() {
        let c = COLORS[i % COLORS.len()];
        let path: Vec<String> = pts.iter().map(|p| format!("{:.1},{:.1}", px(p.0), py(p.1))).collect();
        s.push_str(&format!(
            "<polyline fill=\"none\" stroke=\"{c}\" stroke-width=\"2\" points=\"{}\"/>\n",
            path.join(" ")
        ));
        for p in pts {
            s.push_str(&format!("<circle cx=\"{:.1}\" cy=\"{:.1}\" r=\"3\" fill=\"{c}\"/>\n", px(p.0), py(p.1)));
        }
        let ly = t + 16.0 + 18.0 * i as f64;
        s.push_str(&format!("<line x1=\"{}\" x2=\"{}\" y1=\"{ly}\" y2=\"{ly}\" stroke=\"{c}\" stroke-width=\"2\"/><text x=\"{}\" y=\"{}\">{}</text>\n", w - r + 10.0, w - r + 30.0, w - r + 36.0, ly + 4.0, esc(name)));
    }
    s.push_str("</svg>\n");
    s
}

/// A tick label: `4k`, `1M` for round thousands and millions, else the number (`1250`,
/// not a second `1k`).
fn fmt_x(x: f64) -> String {
    if x >= 1e6 && x % 1e6 == 0.0 {
        format!("{}M", x / 1e6)
    } else if x >= 1e3 && x % 1e3 == 0.0 {
        format!("{}k", x / 1e3)
    } else {
        format!("{x}")
    }
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn run(protocol: &str, states: u64, batch: u64, table_bits: u64, tps: f64) -> Value {
        json!({"protocol": protocol, "states": states, "symbols": 16, "classes": null,
               "table_bits": table_bits, "batch": batch, "transitions_per_sec": tps})
    }

    /// sweep-size.toml's shape: per protocol one run per table size, batches repeated.
    fn size_sweep() -> Vec<Value> {
        let mut v = Vec::new();
        for (n, batch) in [(6, 4000), (8, 4000), (10, 4000), (18, 1250), (20, 312), (22, 100)] {
            v.push(run("lookup-xor", 1 << (n - 4), batch, n, 1e6 / n as f64));
            v.push(run("lookup-ring", 1 << (n - 4), batch / 4, n, 1e4 / n as f64));
        }
        v
    }

    /// sweep-batch.toml's shape: one machine, batch 1 to 10^6.
    fn batch_sweep() -> Vec<Value> {
        (0..7).map(|k| run("lookup-xor", 64, 10u64.pow(k), 14, 1e5 * (k + 1) as f64)).collect()
    }

    #[test]
    fn a_sweep_gets_its_own_plot_only() {
        let [batch, table] = &PLOTS;
        let (size, bat) = (size_sweep(), batch_sweep());
        assert!(table.supported(size.iter()) && !batch.supported(size.iter()));
        assert!(batch.supported(bat.iter()) && !table.supported(bat.iter()));
        // One run per protocol sweeps nothing; runs of one protocol over different
        // machines are no batch sweep.
        assert!(!batch.supported(size[..2].iter()) && !table.supported(size[..2].iter()));
        let machines = [run("lookup-xor", 64, 10_000, 14, 1e6), run("lookup-xor", 1024, 2000, 18, 1e5)];
        assert!(!batch.supported(machines.iter()) && table.supported(machines.iter()));
    }

    /// Tick labels (x, text) along the x axis of a chart.
    fn ticks(svg: &str) -> Vec<(f64, String)> {
        svg.lines()
            .filter(|l| l.starts_with("<text x=\"") && l.contains("y=\"378\""))
            .map(|l| {
                let x = l["<text x=\"".len()..].split('"').next().unwrap().parse().unwrap();
                (x, l.split('>').nth(1).unwrap().trim_end_matches("</text").to_string())
            })
            .collect()
    }

    #[test]
    fn tick_labels_do_not_overlap() {
        // Batches 100 … 4000 on a log axis: 100 and 110, 1000 and 1100 sit 12 px apart.
        let pts: Vec<(f64, f64)> = [100.0, 110.0, 312.0, 1000.0, 1100.0, 4000.0].iter().map(|&x| (x, 1e5)).collect();
        let chart = svg("t", "x", &BTreeMap::from([("lookup-xor".to_string(), pts)]));
        let t = ticks(&chart);
        let labels: Vec<&str> = t.iter().map(|(_, l)| l.as_str()).collect();
        assert_eq!(labels, ["100", "312", "1k", "4k"]);
        for w in t.windows(2) {
            let room = LABEL_CHAR_WIDTH * (w[0].1.len() + w[1].1.len()) as f64 / 2.0;
            assert!(w[1].0 - w[0].0 >= room, "{w:?}");
        }
        assert_eq!([fmt_x(1250.0), fmt_x(4000.0), fmt_x(1e6)], ["1250", "4k", "1M"]);
        // Well-spaced ticks are all drawn.
        let pts: Vec<(f64, f64)> = (6..=22).step_by(2).map(|n| (f64::from(n), 1e5)).collect();
        assert_eq!(ticks(&svg("t", "n", &BTreeMap::from([("x".to_string(), pts)]))).len(), 9);
    }
}
