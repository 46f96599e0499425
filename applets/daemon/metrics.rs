//! `/metrics` on the `--stats` port: the figures of stock's stats page
//! (facts §5.5) in the OpenMetrics text format, for Prometheus.
//!
//! The stats port answers every request with stock's page, whatever it
//! asks; only a request for `/metrics` gets this form instead. The values
//! are taken from the stock page itself (`dcc_<name> <value>` lines), so the
//! two views can never disagree and the counters stay in `stats`.

use std::borrow::Cow;

/// The reply to send: OpenMetrics for `GET /metrics`, else the stock page.
pub fn answer<'a>(request: &[u8], stock_page: &'a str) -> Cow<'a, str> {
    if asks_for_metrics(request) {
        Cow::Owned(render(stock_page))
    } else {
        Cow::Borrowed(stock_page)
    }
}

fn asks_for_metrics(request: &[u8]) -> bool {
    let line = request.split(|&b| b == b'\n').next().unwrap_or_default();
    let mut words = line.split(|&b| b == b' ' || b == b'\r');
    let (Some(method), Some(target)) = (words.next(), words.next()) else {
        return false;
    };
    let path = target.split(|&b| b == b'?').next().unwrap_or_default();
    (method == b"GET" || method == b"HEAD") && path == b"/metrics"
}

/// The value of `dcc_<key>` on the stock page (text after the first space).
fn field<'a>(page: &'a str, key: &str) -> Option<&'a str> {
    page.lines().find_map(|l| {
        let (k, v) = l.split_once(' ')?;
        (k.strip_prefix("dcc_")? == key).then_some(v)
    })
}

fn number(page: &str, key: &str) -> Option<f64> {
    field(page, key)?.split(' ').next()?.parse().ok()
}

fn escape(label: &str) -> String {
    label
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

struct Out(String);

impl Out {
    fn family(&mut self, name: &str, kind: &str, unit: Option<&str>, help: &str) {
        self.0.push_str(&format!("# TYPE {name} {kind}\n"));
        if let Some(u) = unit {
            self.0.push_str(&format!("# UNIT {name} {u}\n"));
        }
        self.0.push_str(&format!("# HELP {name} {help}\n"));
    }

    fn sample(&mut self, name: &str, labels: &str, value: f64) {
        let labels = if labels.is_empty() {
            String::new()
        } else {
            format!("{{{labels}}}")
        };
        self.0.push_str(&format!("{name}{labels} {value}\n"));
    }
}

/// The OpenMetrics response (HTTP header included) for a stock stats page.
pub fn render(page: &str) -> String {
    let mut o = Out(String::new());
    let v = |key: &str| number(page, key);

    o.family(
        "distccd_tcp_accept",
        "counter",
        None,
        "Connections accepted.",
    );
    o.sample(
        "distccd_tcp_accept_total",
        "",
        v("tcp_accept").unwrap_or(0.0),
    );

    o.family(
        "distccd_rejected",
        "counter",
        None,
        "Connections refused, by reason.",
    );
    for (reason, key) in [("bad_request", "rej_bad_req"), ("overload", "rej_overload")] {
        let labels = format!("reason=\"{reason}\"");
        o.sample("distccd_rejected_total", &labels, v(key).unwrap_or(0.0));
    }

    o.family("distccd_jobs", "counter", None, "Finished jobs, by result.");
    for key in [
        "compile_ok",
        "compile_error",
        "compile_timeout",
        "cli_disconnect",
        "other",
    ] {
        let labels = format!("result=\"{key}\"");
        o.sample("distccd_jobs_total", &labels, v(key).unwrap_or(0.0));
    }

    if let Some(ms) = v("longest_job_time_msecs").filter(|ms| *ms >= 0.0) {
        o.family(
            "distccd_longest_job_seconds",
            "gauge",
            Some("seconds"),
            "Duration of the longest job so far, with its input and compiler.",
        );
        let labels = format!(
            "file=\"{}\",compiler=\"{}\"",
            escape(field(page, "longest_job").unwrap_or("none")),
            escape(field(page, "longest_job_compiler").unwrap_or("none"))
        );
        o.sample("distccd_longest_job_seconds", &labels, ms / 1000.0);
    }

    o.family(
        "distccd_max_kids",
        "gauge",
        None,
        "Most compilers running at once so far.",
    );
    o.sample("distccd_max_kids", "", v("max_kids").unwrap_or(0.0));

    let windows = [("1m", "1"), ("5m", "2"), ("15m", "3")];
    o.family(
        "distccd_avg_kids",
        "gauge",
        None,
        "Average number of running compilers over a window.",
    );
    for (w, n) in windows {
        let value = v(&format!("avg_kids{n}")).unwrap_or(0.0);
        o.sample("distccd_avg_kids", &format!("window=\"{w}\""), value);
    }
    o.family(
        "distccd_compiles",
        "gauge",
        None,
        "Compiles finished within a window.",
    );
    for (w, n) in windows {
        let value = v(&format!("num_compiles{n}")).unwrap_or(0.0);
        o.sample("distccd_compiles", &format!("window=\"{w}\""), value);
    }
    o.family(
        "distccd_load",
        "gauge",
        None,
        "System load average over a window.",
    );
    for (w, n) in windows {
        let value = v(&format!("load{n}")).unwrap_or(0.0);
        o.sample("distccd_load", &format!("window=\"{w}\""), value);
    }
    o.family(
        "distccd_running_processes",
        "gauge",
        None,
        "Runnable processes on the machine (from /proc/loadavg).",
    );
    o.sample(
        "distccd_running_processes",
        "",
        v("current_load").unwrap_or(0.0),
    );
    o.family(
        "distccd_processes_in_d_state",
        "gauge",
        None,
        "Processes in uninterruptible sleep.",
    );
    o.sample(
        "distccd_processes_in_d_state",
        "",
        v("num_procstate_D").unwrap_or(0.0),
    );
    o.family(
        "distccd_max_rss_bytes",
        "gauge",
        Some("bytes"),
        "Largest resident set among the machine's processes.",
    );
    o.sample(
        "distccd_max_rss_bytes",
        "",
        v("max_RSS").unwrap_or(0.0) * 1024.0,
    );
    if let Some(rate) = v("io_rate").filter(|r| *r >= 0.0) {
        o.family(
            "distccd_disk_sectors_per_second",
            "gauge",
            None,
            "Disk sectors read and written per second since the previous request.",
        );
        o.sample("distccd_disk_sectors_per_second", "", rate);
    }
    o.family(
        "distccd_free_space_bytes",
        "gauge",
        Some("bytes"),
        "Free space in the daemon's TMPDIR.",
    );
    o.sample(
        "distccd_free_space_bytes",
        "",
        v("free_space").unwrap_or(0.0) * 1024.0 * 1024.0,
    );
    o.0.push_str("# EOF\n");
    format!(
        "HTTP/1.0 200 OK\r\nContent-Type: application/openmetrics-text; version=1.0.0; charset=utf-8\r\nConnection: close\r\n\r\n{}",
        o.0
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const PAGE: &str = "HTTP/1.0 200 OK\nContent-Type: text/plain\nConnection: close\n\n\
argv /distccd\n<distccstats>\ndcc_tcp_accept 7\ndcc_rej_bad_req 1\ndcc_rej_overload 0\n\
dcc_compile_ok 5\ndcc_compile_error 1\ndcc_compile_timeout 0\ndcc_cli_disconnect 0\ndcc_other 1\n\
dcc_longest_job hel\"lo.c\ndcc_longest_job_compiler gcc\ndcc_longest_job_time_msecs 1500\n\
dcc_max_kids 2\ndcc_avg_kids1 1\ndcc_avg_kids2 0\ndcc_avg_kids3 0\ndcc_current_load 3\n\
dcc_load1 0.50\ndcc_load2 0.25\ndcc_load3 0.10\ndcc_num_compiles1 6\ndcc_num_compiles2 6\n\
dcc_num_compiles3 6\ndcc_num_procstate_D 0\ndcc_max_RSS 2048\ndcc_max_RSS_name (cc1)\n\
dcc_io_rate -1\ndcc_free_space 100 MB\n</distccstats>\n";

    #[test]
    fn only_get_metrics_gets_openmetrics() {
        assert!(matches!(
            answer(b"GET / HTTP/1.0\r\n", PAGE),
            Cow::Borrowed(_)
        ));
        assert!(matches!(answer(b"", PAGE), Cow::Borrowed(_)));
        assert!(matches!(
            answer(b"GET /metricsx HTTP/1.1\r\n", PAGE),
            Cow::Borrowed(_)
        ));
        assert!(matches!(
            answer(b"POST /metrics HTTP/1.1\r\n", PAGE),
            Cow::Borrowed(_)
        ));
        assert!(matches!(
            answer(b"GET /metrics HTTP/1.1\r\nHost: x\r\n", PAGE),
            Cow::Owned(_)
        ));
        assert!(matches!(
            answer(b"GET /metrics?x=1 HTTP/1.1\r\n", PAGE),
            Cow::Owned(_)
        ));
    }

    #[test]
    fn figures_carry_over() {
        let m = render(PAGE);
        let body = m.split("\r\n\r\n").nth(1).unwrap();
        for line in [
            "distccd_tcp_accept_total 7",
            "distccd_rejected_total{reason=\"bad_request\"} 1",
            "distccd_jobs_total{result=\"compile_ok\"} 5",
            "distccd_jobs_total{result=\"other\"} 1",
            "distccd_longest_job_seconds{file=\"hel\\\"lo.c\",compiler=\"gcc\"} 1.5",
            "distccd_compiles{window=\"1m\"} 6",
            "distccd_load{window=\"5m\"} 0.25",
            "distccd_max_rss_bytes 2097152",
            "distccd_free_space_bytes 104857600",
        ] {
            assert!(body.lines().any(|l| l == line), "missing {line}:\n{body}");
        }
        assert!(!body.contains("disk_sectors"), "io rate -1 is not a value");
        assert!(body.ends_with("# EOF\n"));
        // Every sample belongs to a family declared before it.
        let mut declared = Vec::new();
        for l in body.lines() {
            if let Some(rest) = l.strip_prefix("# TYPE ") {
                declared.push(rest.split(' ').next().unwrap().to_string());
            } else if !l.starts_with('#') {
                let name = l.split(['{', ' ']).next().unwrap();
                let family = name.strip_suffix("_total").unwrap_or(name);
                assert_eq!(declared.last().map(String::as_str), Some(family), "{l}");
            }
        }
    }
}
