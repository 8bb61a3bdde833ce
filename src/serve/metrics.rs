//! Counters and latency histograms, rendered in the Prometheus text format.

use super::state::Registry;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::time::Duration;

/// Upper bounds of the latency buckets, in seconds.
const BUCKETS: [f64; 14] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

#[derive(Default)]
struct Histogram {
    /// Per bucket (not cumulative); the last entry counts the values above every bound.
    counts: [u64; BUCKETS.len() + 1],
    sum: f64,
}

#[derive(Default)]
struct Inner {
    requests: BTreeMap<(String, u16), u64>,
    latency: BTreeMap<String, Histogram>,
    rows: BTreeMap<String, u64>,
    reloads: BTreeMap<(String, bool), u64>,
    last_reload_ok: BTreeMap<String, bool>,
}

/// Everything `/metrics` reports. One short lock per request: cheap next to a request.
#[derive(Default)]
pub struct Metrics {
    inner: Mutex<Inner>,
}

impl Metrics {
    fn with<R>(&self, f: impl FnOnce(&mut Inner) -> R) -> R {
        // A panic elsewhere cannot leave these counters inconsistent: keep counting.
        let mut g = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut g)
    }

    pub fn record_request(&self, route: &str, status: u16, elapsed: Duration) {
        let secs = elapsed.as_secs_f64();
        let bucket = BUCKETS
            .iter()
            .position(|&b| secs <= b)
            .unwrap_or(BUCKETS.len());
        self.with(|m| {
            *m.requests.entry((route.to_owned(), status)).or_default() += 1;
            let h = m.latency.entry(route.to_owned()).or_default();
            h.counts[bucket] += 1;
            h.sum += secs;
        });
    }

    pub fn record_rows(&self, model: &str, rows: usize) {
        self.with(|m| *m.rows.entry(model.to_owned()).or_default() += rows as u64);
    }

    pub fn record_reload(&self, model: &str, ok: bool) {
        self.with(|m| {
            *m.reloads.entry((model.to_owned(), ok)).or_default() += 1;
            m.last_reload_ok.insert(model.to_owned(), ok);
        });
    }

    /// The Prometheus text exposition of every counter and of the served models.
    pub fn render(&self, registry: &Registry) -> String {
        let mut out = String::new();
        self.with(|m| render_counters(m, &mut out));
        let last_ok = self.with(|m| m.last_reload_ok.clone());
        header(
            &mut out,
            "nonneg_model_certified",
            "gauge",
            "1 when the served model is certified monotone in all features (computed at load)",
        );
        for (name, slot) in registry.slots() {
            let certified = slot.current.load().certificate.certified;
            let _ = writeln!(
                out,
                "nonneg_model_certified{{model=\"{name}\"}} {}",
                certified as u8
            );
        }
        header(
            &mut out,
            "nonneg_model_generation",
            "gauge",
            "1 at start, +1 per successful reload",
        );
        for (name, slot) in registry.slots() {
            let g = slot.current.load().generation;
            let _ = writeln!(out, "nonneg_model_generation{{model=\"{name}\"}} {g}");
        }
        header(
            &mut out,
            "nonneg_model_last_reload_ok",
            "gauge",
            "0 when the last reload's file was refused and the old model kept serving",
        );
        for (name, _) in registry.slots() {
            let ok = last_ok.get(name).copied().unwrap_or(true);
            let _ = writeln!(
                out,
                "nonneg_model_last_reload_ok{{model=\"{name}\"}} {}",
                ok as u8
            );
        }
        out
    }
}

fn header(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

fn render_counters(m: &Inner, out: &mut String) {
    header(
        out,
        "nonneg_requests_total",
        "counter",
        "HTTP requests by route and status",
    );
    for ((route, status), n) in &m.requests {
        let _ = writeln!(
            out,
            "nonneg_requests_total{{route=\"{route}\",status=\"{status}\"}} {n}"
        );
    }
    header(
        out,
        "nonneg_request_errors_total",
        "counter",
        "HTTP responses with a 4xx or 5xx status, by route and status",
    );
    for ((route, status), n) in m.requests.iter().filter(|((_, s), _)| *s >= 400) {
        let _ = writeln!(
            out,
            "nonneg_request_errors_total{{route=\"{route}\",status=\"{status}\"}} {n}"
        );
    }
    header(
        out,
        "nonneg_request_duration_seconds",
        "histogram",
        "time from request to response, by route",
    );
    for (route, h) in &m.latency {
        let mut cumulative = 0;
        for (bound, n) in BUCKETS.iter().zip(&h.counts) {
            cumulative += n;
            let _ = writeln!(out, "nonneg_request_duration_seconds_bucket{{route=\"{route}\",le=\"{bound}\"}} {cumulative}");
        }
        cumulative += h.counts[BUCKETS.len()];
        let _ = writeln!(
            out,
            "nonneg_request_duration_seconds_bucket{{route=\"{route}\",le=\"+Inf\"}} {cumulative}"
        );
        let _ = writeln!(
            out,
            "nonneg_request_duration_seconds_sum{{route=\"{route}\"}} {}",
            h.sum
        );
        let _ = writeln!(
            out,
            "nonneg_request_duration_seconds_count{{route=\"{route}\"}} {cumulative}"
        );
    }
    header(
        out,
        "nonneg_rows_scored_total",
        "counter",
        "rows and raw samples scored, by model",
    );
    for (model, n) in &m.rows {
        let _ = writeln!(out, "nonneg_rows_scored_total{{model=\"{model}\"}} {n}");
    }
    header(
        out,
        "nonneg_reloads_total",
        "counter",
        "model reloads by outcome (failed: the old model kept serving)",
    );
    for ((model, ok), n) in &m.reloads {
        let outcome = if *ok { "ok" } else { "failed" };
        let _ = writeln!(
            out,
            "nonneg_reloads_total{{model=\"{model}\",outcome=\"{outcome}\"}} {n}"
        );
    }
}
