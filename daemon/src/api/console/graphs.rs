//! Graphs of a function drawn as inline SVG from the in-memory series
//! ([`crate::series`]): invocations, errors, throttles, duration p50/p99,
//! concurrency, async queue depth and dead letters over the last hour or
//! day; and the sampler feeding the gauges.

use std::sync::Arc;
use std::time::Duration;

use hyper::Response;
use kumo_proto::control::control_server::Control;
use kumo_proto::control::ListFunctionsRequest;

use super::html::{self, esc, url, Body};
use super::{get_function, Call};
use crate::api::control::ControlService;
use crate::dispatch::concurrency::ConcurrencyLimiter;
use crate::series::{Point, Series};

/// How often the gauges are sampled.
const SAMPLE_EVERY: Duration = Duration::from_secs(10);
const WIDTH: f64 = 600.0;
const HEIGHT: f64 = 120.0;

/// One chart: `values` as bars scaled to the largest, with its total (or
/// peak) in `data-total` and the caption.
fn chart(id: &str, caption: &str, unit: &str, values: &[f64], summed: bool) -> String {
    let peak = values.iter().copied().fold(0.0, f64::max);
    let total: f64 = if summed { values.iter().sum() } else { peak };
    let scale = if peak > 0.0 {
        (HEIGHT - 4.0) / peak
    } else {
        0.0
    };
    let bar = WIDTH / values.len().max(1) as f64;
    let bars: String = values
        .iter()
        .enumerate()
        .filter(|(_, v)| **v > 0.0)
        .map(|(i, v)| {
            let h = (v * scale).max(1.0);
            format!(
                "<rect x=\"{:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{h:.1}\"><title>{v:.2}</title></rect>",
                i as f64 * bar,
                HEIGHT - h,
                (bar - 1.0).max(1.0),
            )
        })
        .collect();
    let label = if summed { "total" } else { "peak" };
    format!(
        "<figure class=\"chart\"><figcaption>{} — {label} {}{}</figcaption>\
         <svg id=\"chart-{id}\" data-total=\"{total}\" viewBox=\"0 0 {WIDTH} {HEIGHT}\" width=\"{WIDTH}\" height=\"{HEIGHT}\" \
         role=\"img\" aria-label=\"{}\"><rect class=\"frame\" x=\"0\" y=\"0\" width=\"{WIDTH}\" height=\"{HEIGHT}\"></rect>{bars}</svg></figure>",
        esc(caption),
        total.round(),
        esc(unit),
        esc(caption),
    )
}

fn series_of(points: &[Point], f: impl Fn(&Point) -> f64) -> Vec<f64> {
    points.iter().map(f).collect()
}

/// The invocation chart of the last hour (on the function's page).
pub(super) fn invocations_svg(call: &Call<'_>, name: &str) -> String {
    let now = chrono::Utc::now().timestamp_millis();
    let points = call.console.series.points(name, now, 60, 1);
    chart(
        "invocations",
        "Invocations, last hour",
        "",
        &series_of(&points, |p| p.invocations as f64),
        true,
    )
}

/// `GET /console/fn/{name}/graphs?span=hour|day`.
pub(super) async fn page(call: &Call<'_>, name: &str) -> Response<Body> {
    if let Err(response) = get_function(call, name).await {
        return response;
    }
    let day = call.arg("span") == "day";
    let (span, step, label) = if day {
        (1440, 15, "last day, 15-minute steps")
    } else {
        (60, 1, "last hour, 1-minute steps")
    };
    let points =
        call.console
            .series
            .points(name, chrono::Utc::now().timestamp_millis(), span, step);
    let charts = [
        chart(
            "invocations",
            "Invocations",
            "",
            &series_of(&points, |p| p.invocations as f64),
            true,
        ),
        chart(
            "errors",
            "Errors",
            "",
            &series_of(&points, |p| p.errors as f64),
            true,
        ),
        chart(
            "throttles",
            "Throttles",
            "",
            &series_of(&points, |p| p.throttles as f64),
            true,
        ),
        chart(
            "p50",
            "Duration p50",
            " ms",
            &series_of(&points, |p| p.p50_ms),
            false,
        ),
        chart(
            "p99",
            "Duration p99",
            " ms",
            &series_of(&points, |p| p.p99_ms),
            false,
        ),
        chart(
            "concurrency",
            "Concurrent executions",
            "",
            &series_of(&points, |p| f64::from(p.concurrency)),
            false,
        ),
        chart(
            "queued",
            "Async queue depth",
            "",
            &series_of(&points, |p| p.queued as f64),
            false,
        ),
        chart(
            "dead-letters",
            "Dead letters",
            "",
            &series_of(&points, |p| p.dead_letters as f64),
            false,
        ),
    ]
    .concat();
    let base = format!("/console/fn/{}", url(name));
    let body = format!(
        "<p class=\"actions\"><a href=\"{base}\">Back to {}</a> <a href=\"{base}/graphs?span=hour\">Hour</a> \
         <a href=\"{base}/graphs?span=day\" id=\"span-day\">Day</a> <span class=\"hint\">{label}; refreshes every 30 s</span></p>\
         <div class=\"charts\" data-refresh=\"30\">{charts}</div>",
        esc(name)
    );
    html::html(html::page(
        &format!("Graphs of {name}"),
        Some(call.csrf()),
        None,
        &body,
    ))
}

/// Samples every function's running invocations, queue depth and dead
/// letters into `series`, forever.
pub(crate) async fn sample_gauges(
    control: Arc<ControlService>,
    series: Series,
    limiter: ConcurrencyLimiter,
) {
    let mut tick = tokio::time::interval(SAMPLE_EVERY);
    loop {
        tick.tick().await;
        let Ok(list) = control
            .list_functions(tonic::Request::new(ListFunctionsRequest {}))
            .await
        else {
            continue;
        };
        let now = chrono::Utc::now().timestamp_millis();
        let mut names = std::collections::HashSet::new();
        for info in list.into_inner().functions {
            let name = info.config.map(|c| c.name).unwrap_or_default();
            let queue = info.queue.unwrap_or_default();
            series.gauges(
                &name,
                now,
                limiter.running(&name),
                queue.queued,
                queue.dead_letters,
            );
            names.insert(name);
        }
        series.retain(&names);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn charts_scale_to_their_peak() {
        let svg = chart("x", "X <y>", "", &[0.0, 2.0, 4.0], true);
        assert!(svg.contains("data-total=\"6\""));
        assert!(svg.contains("X &lt;y&gt;"));
        assert_eq!(svg.matches("<rect x=").count(), 2);
        assert!(svg.contains("height=\"116.0\""));
        let empty = chart("e", "E", "", &[0.0; 60], false);
        assert!(empty.contains("data-total=\"0\""));
    }
}
