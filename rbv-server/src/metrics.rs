// SPDX-License-Identifier: MPL-2.0
//! Prometheus text metrics: processing time per model and resolution
//! (p50/p95 over the last jobs), request counts, and gauges filled in when
//! scraped (queue depth, busy workers, jobs by status).

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;

/// Processing times kept per (model, resolution) for the quantiles.
const WINDOW: usize = 1024;

#[derive(Default)]
struct Series {
    recent: Vec<f64>,
    next: usize,
    count: u64,
    sum: f64,
}

/// A gauge: name, help and (labels, value) pairs.
pub type Gauge<'a> = (&'a str, &'a str, Vec<(String, f64)>);

#[derive(Default)]
pub struct Metrics {
    processing: Mutex<BTreeMap<(String, String), Series>>,
    requests: Mutex<BTreeMap<(String, u16), u64>>,
    jobs_finished: Mutex<BTreeMap<(String, String), u64>>,
}

/// Nearest-rank quantile of unsorted samples.
pub fn quantile(samples: &[f64], q: f64) -> f64 {
    if samples.is_empty() {
        return f64::NAN;
    }
    let mut v = samples.to_vec();
    v.sort_by(f64::total_cmp);
    let rank = ((q * v.len() as f64).ceil() as usize).clamp(1, v.len());
    v[rank - 1]
}

fn escape(label: &str) -> String {
    label
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

impl Metrics {
    pub fn job_processed(&self, model: &str, resolution: &str, seconds: f64) {
        let mut m = self.processing.lock().unwrap_or_else(|e| e.into_inner());
        let s = m.entry((model.into(), resolution.into())).or_default();
        if s.recent.len() < WINDOW {
            s.recent.push(seconds);
        } else {
            s.recent[s.next] = seconds;
        }
        s.next = (s.next + 1) % WINDOW;
        s.count += 1;
        s.sum += seconds;
    }

    pub fn job_finished(&self, model: &str, status: &str) {
        let mut m = self.jobs_finished.lock().unwrap_or_else(|e| e.into_inner());
        *m.entry((model.into(), status.into())).or_default() += 1;
    }

    /// `route` is the matched route pattern, never the raw path.
    pub fn request(&self, route: &str, status: u16) {
        let mut m = self.requests.lock().unwrap_or_else(|e| e.into_inner());
        *m.entry((route.into(), status)).or_default() += 1;
    }

    /// The exposition text; `gauges` are (name, help, [(labels, value)]).
    pub fn render(&self, gauges: &[Gauge]) -> String {
        let mut out = String::new();
        for (name, help, values) in gauges {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge");
            for (labels, v) in values {
                let _ = writeln!(out, "{name}{labels} {v}");
            }
        }
        let _ = writeln!(
            out,
            "# HELP rbv_job_processing_seconds Time from a worker taking a job to its output written, \
             per model and input resolution (quantiles over the last {WINDOW} jobs).\n\
             # TYPE rbv_job_processing_seconds summary"
        );
        for ((model, res), s) in self
            .processing
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
        {
            let l = format!("model=\"{}\",resolution=\"{}\"", escape(model), escape(res));
            for q in [0.5, 0.95] {
                let _ = writeln!(
                    out,
                    "rbv_job_processing_seconds{{{l},quantile=\"{q}\"}} {:.4}",
                    quantile(&s.recent, q)
                );
            }
            let _ = writeln!(out, "rbv_job_processing_seconds_sum{{{l}}} {:.4}", s.sum);
            let _ = writeln!(out, "rbv_job_processing_seconds_count{{{l}}} {}", s.count);
        }
        let _ = writeln!(
            out,
            "# HELP rbv_jobs_finished_total Jobs finished since start, per model and status.\n\
             # TYPE rbv_jobs_finished_total counter"
        );
        for ((model, status), n) in self
            .jobs_finished
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
        {
            let _ = writeln!(
                out,
                "rbv_jobs_finished_total{{model=\"{}\",status=\"{}\"}} {n}",
                escape(model),
                escape(status)
            );
        }
        let _ = writeln!(
            out,
            "# HELP rbv_http_requests_total HTTP requests since start, per route and status.\n\
             # TYPE rbv_http_requests_total counter"
        );
        for ((route, status), n) in self
            .requests
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
        {
            let _ = writeln!(
                out,
                "rbv_http_requests_total{{route=\"{}\",status=\"{status}\"}} {n}",
                escape(route)
            );
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_quantiles() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(quantile(&v, 0.5), 50.0);
        assert_eq!(quantile(&v, 0.95), 95.0);
        assert_eq!(quantile(&[3.0], 0.95), 3.0);
        assert!(quantile(&[], 0.5).is_nan());
    }

    #[test]
    fn exposition_has_quantiles_per_model_and_resolution() {
        let m = Metrics::default();
        for i in 1..=20 {
            m.job_processed("human", "320x240", f64::from(i));
        }
        m.job_processed("pro", "1920x1080", 7.0);
        m.request("/v1/jobs", 200);
        m.job_finished("human", "completed");
        let text = m.render(&[(
            "rbv_queue_depth",
            "Jobs waiting.",
            vec![("{pool=\"light\"}".into(), 3.0)],
        )]);
        assert!(text.contains("rbv_queue_depth{pool=\"light\"} 3"));
        assert!(text.contains(
            "rbv_job_processing_seconds{model=\"human\",resolution=\"320x240\",quantile=\"0.5\"} 10.0000"
        ));
        assert!(text.contains(
            "rbv_job_processing_seconds{model=\"human\",resolution=\"320x240\",quantile=\"0.95\"} 19.0000"
        ));
        assert!(text.contains(
            "rbv_job_processing_seconds_count{model=\"pro\",resolution=\"1920x1080\"} 1"
        ));
        assert!(text.contains("rbv_http_requests_total{route=\"/v1/jobs\",status=\"200\"} 1"));
        assert!(text.contains("rbv_jobs_finished_total{model=\"human\",status=\"completed\"} 1"));
    }

    #[test]
    fn window_keeps_the_latest() {
        let m = Metrics::default();
        for _ in 0..WINDOW {
            m.job_processed("light", "a", 100.0);
        }
        for _ in 0..WINDOW {
            m.job_processed("light", "a", 1.0);
        }
        let text = m.render(&[]);
        assert!(text.contains("quantile=\"0.95\"} 1.0000"), "{text}");
    }
}
