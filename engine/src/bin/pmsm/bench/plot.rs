//! Minimal SVG line charts: transitions/s (log scale) against a workload parameter, one
//! line per protocol. Written by hand so the report needs no font stack.

use serde_json::Value;
use std::collections::BTreeMap;

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
    for x in xs {
        s.push_str(&format!(
            "<text x=\"{:.1}\" y=\"{}\" text-anchor=\"middle\">{}</text>\n",
            px(x),
            h - b + 18.0,
            fmt_x(x)
        ));
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

fn fmt_x(x: f64) -> String {
    if x >= 1e6 {
        format!("{:.0}M", x / 1e6)
    } else if x >= 1e3 {
        format!("{:.0}k", x / 1e3)
    } else {
        format!("{x}")
    }
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}
