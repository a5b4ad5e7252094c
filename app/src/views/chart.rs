//! A small SVG bar chart (60 one-minute bars), drawn from the data alone: no script, so it
//! renders the same in the webview and in SSR.

use dioxus::prelude::*;

const W: f64 = 240.0;
const H: f64 = 56.0;

/// Bars for `values` (oldest first) with the title and the latest/total figure.
#[component]
pub fn BarChart(title: String, values: Vec<f64>, summary: String, danger: bool) -> Element {
    let max = values.iter().cloned().fold(0.0_f64, f64::max);
    let n = values.len().max(1) as f64;
    let bw = W / n;
    let bars: Vec<(f64, f64, f64)> = values
        .iter()
        .enumerate()
        .filter(|(_, v)| **v > 0.0)
        .map(|(i, v)| {
            let h = if max > 0.0 {
                (v / max * (H - 2.0)).max(1.0)
            } else {
                0.0
            };
            (i as f64 * bw, H - h, h)
        })
        .collect();
    let class = if danger {
        "bc-chart bc-chart-danger"
    } else {
        "bc-chart"
    };
    rsx! {
        figure { class: "{class}",
            figcaption { span { class: "bc-chart-title", "{title}" } span { class: "bc-chart-value", "{summary}" } }
            svg {
                view_box: "0 0 {W} {H}",
                width: "100%",
                height: "{H}",
                preserve_aspect_ratio: "none",
                role: "img",
                "aria-label": "{title} over the last 60 minutes: {summary}",
                line { x1: "0", y1: "{H - 0.5}", x2: "{W}", y2: "{H - 0.5}", class: "bc-chart-axis" }
                for (x, y, h) in bars {
                    rect { x: "{x:.2}", y: "{y:.2}", width: "{(bw - 1.0).max(1.0):.2}", height: "{h:.2}", class: "bc-chart-bar" }
                }
            }
        }
    }
}
