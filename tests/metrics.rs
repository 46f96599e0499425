//! `/metrics` on our daemon's stats port: OpenMetrics text with the same
//! figures as stock's page, which every other request still gets.

use crate::daemon::{HELLO_C, start, stock_client};
use crate::util::{TestDir, free_port, run, show, wait_for_port};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

fn fetch(port: u16, request: &str) -> String {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    s.write_all(request.as_bytes()).unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).unwrap();
    text
}

#[test]
fn metrics_and_stock_page_agree() {
    let stats_port = free_port();
    let sp = stats_port.to_string();
    let d = start(&["--stats", "--stats-port", &sp]);
    assert!(wait_for_port(
        "127.0.0.1",
        stats_port,
        Duration::from_secs(10)
    ));
    let t = TestDir::new("metrics");
    t.write("hello.c", HELLO_C);
    for n in 0..2 {
        let out = run(stock_client(&t, &d.host(",lzo")).args([
            "gcc",
            "-c",
            "hello.c",
            "-o",
            &format!("h{n}.o"),
        ]));
        assert!(out.status.success(), "{}", show(&out));
    }
    let metrics = fetch(
        stats_port,
        "GET /metrics HTTP/1.1\r\nHost: localhost\r\n\r\n",
    );
    let (head, body) = metrics.split_once("\r\n\r\n").expect("HTTP header");
    assert!(head.starts_with("HTTP/1.0 200 OK\r\n"), "{head}");
    assert!(head.contains("Content-Type: application/openmetrics-text; version=1.0.0"));
    assert!(body.ends_with("# EOF\n"), "{body}");
    assert!(
        body.lines()
            .any(|l| l == "distccd_jobs_total{result=\"compile_ok\"} 2"),
        "{body}"
    );
    assert!(
        body.lines()
            .any(|l| l.starts_with("distccd_longest_job_seconds{file=\"hello.c\""))
    );
    // Any other request gets stock's page, with the same count.
    let page = fetch(stats_port, "GET / HTTP/1.0\r\n\r\n");
    assert!(
        page.starts_with("HTTP/1.0 200 OK\nContent-Type: text/plain\n"),
        "{page}"
    );
    assert!(page.contains("\ndcc_compile_ok 2\n"), "{page}");
    let accepted: u64 = page
        .lines()
        .find_map(|l| l.strip_prefix("dcc_tcp_accept "))
        .and_then(|v| v.parse().ok())
        .unwrap();
    assert!(accepted >= 2);
}
