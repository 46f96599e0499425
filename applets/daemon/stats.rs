//! The `--stats` HTTP page in stock distccd's exact text format (facts §5.5).
//!
//! The event loop records every job result here and samples how many
//! compilers run; a connection to the stats port gets the page whatever it
//! asks. Counters over 1, 5 and 15 minutes use 300 buckets of 3 seconds,
//! as stock does. System figures come from /proc and statvfs.

use super::runner::JobResult;
use std::fmt::Write;
use std::path::Path;
use std::time::{Duration, Instant};

const BUCKETS: usize = 300;
const BUCKET_SECS: u64 = 3;

/// Counters of the daemon.
pub struct Stats {
    start: Instant,
    pub tcp_accept: u64,
    pub rej_bad_req: u64,
    pub rej_overload: u64,
    compile_ok: u64,
    compile_error: u64,
    compile_timeout: u64,
    cli_disconnect: u64,
    other: u64,
    longest: Option<(String, String, u128)>,
    /// The job limit (`--jobs`), which stock reports as `dcc_max_kids`.
    max_kids: usize,
    /// Per bucket: (bucket number, compiles, max running).
    buckets: Vec<(u64, u64, usize)>,
    last_io: Option<(Instant, u64)>,
}

impl Stats {
    /// Empty counters for a daemon running at most `jobs` compilers.
    pub fn new(jobs: usize) -> Stats {
        Stats {
            start: Instant::now(),
            tcp_accept: 0,
            rej_bad_req: 0,
            rej_overload: 0,
            compile_ok: 0,
            compile_error: 0,
            compile_timeout: 0,
            cli_disconnect: 0,
            other: 0,
            longest: None,
            max_kids: jobs,
            buckets: vec![(u64::MAX, 0, 0); BUCKETS],
            last_io: None,
        }
    }

    fn bucket(&mut self) -> &mut (u64, u64, usize) {
        let n = self.start.elapsed().as_secs() / BUCKET_SECS;
        let b = &mut self.buckets[(n % BUCKETS as u64) as usize];
        if b.0 != n {
            *b = (n, 0, 0);
        }
        b
    }

    /// Records how many compilers run now.
    pub fn sample(&mut self, running: usize) {
        let b = self.bucket();
        b.2 = b.2.max(running);
    }

    /// Records a finished job.
    pub fn record(&mut self, result: JobResult, elapsed: Duration, input: &str, compiler: &str) {
        match result {
            JobResult::CompileOk => self.compile_ok += 1,
            JobResult::CompileError => self.compile_error += 1,
            JobResult::CompileTimeout => self.compile_timeout += 1,
            JobResult::CliDisconn => self.cli_disconnect += 1,
            JobResult::Other => self.other += 1,
        }
        if matches!(result, JobResult::CompileOk | JobResult::CompileError) {
            let ms = elapsed.as_millis();
            if self.longest.as_ref().is_none_or(|l| ms > l.2) {
                self.longest = Some((input.to_string(), compiler.to_string(), ms));
            }
            self.bucket().1 += 1;
        }
    }

    /// (compiles, average of per-bucket max running) over the last `minutes`.
    fn window(&self, minutes: u64) -> (u64, usize) {
        let now = self.start.elapsed().as_secs() / BUCKET_SECS;
        let span = minutes * 60 / BUCKET_SECS;
        let mut compiles = 0;
        let mut kids = 0;
        for &(n, c, k) in &self.buckets {
            if n != u64::MAX && now - n < span {
                compiles += c;
                kids += k;
            }
        }
        (compiles, kids / span.max(1) as usize)
    }

    /// The whole HTTP response.
    pub fn page(&mut self, tmpdir: &Path) -> String {
        let (c1, k1) = self.window(1);
        let (c2, k2) = self.window(5);
        let (c3, k3) = self.window(15);
        let loadavg = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
        let fields: Vec<&str> = loadavg.split_whitespace().collect();
        let load = |i: usize| {
            fields
                .get(i)
                .and_then(|f| f.parse::<f64>().ok())
                .unwrap_or(0.0)
        };
        let current = fields
            .get(3)
            .and_then(|f| f.split('/').next())
            .and_then(|f| f.parse::<u64>().ok())
            .unwrap_or(0);
        let (dstate, rss, rss_name) = scan_procs();
        let io_rate = self.io_rate();
        let (lj, ljc, ljt) = match &self.longest {
            Some((i, c, t)) => (i.clone(), c.clone(), t.to_string()),
            None => ("none".into(), "none".into(), "-1".into()),
        };
        let mut s = String::with_capacity(1024);
        s.push_str("HTTP/1.0 200 OK\nContent-Type: text/plain\nConnection: close\n\n");
        s.push_str("argv /distccd\n<distccstats>\n");
        let _ = write!(
            s,
            "dcc_tcp_accept {}\ndcc_rej_bad_req {}\ndcc_rej_overload {}\ndcc_compile_ok {}\n\
             dcc_compile_error {}\ndcc_compile_timeout {}\ndcc_cli_disconnect {}\ndcc_other {}\n\
             dcc_longest_job {lj}\ndcc_longest_job_compiler {ljc}\ndcc_longest_job_time_msecs {ljt}\n\
             dcc_max_kids {}\ndcc_avg_kids1 {k1}\ndcc_avg_kids2 {k2}\ndcc_avg_kids3 {k3}\n\
             dcc_current_load {current}\ndcc_load1 {:.2}\ndcc_load2 {:.2}\ndcc_load3 {:.2}\n\
             dcc_num_compiles1 {c1}\ndcc_num_compiles2 {c2}\ndcc_num_compiles3 {c3}\n\
             dcc_num_procstate_D {dstate}\ndcc_max_RSS {rss}\ndcc_max_RSS_name ({rss_name})\n\
             dcc_io_rate {io_rate}\ndcc_free_space {} MB\n</distccstats>\n",
            self.tcp_accept,
            self.rej_bad_req,
            self.rej_overload,
            self.compile_ok,
            self.compile_error,
            self.compile_timeout,
            self.cli_disconnect,
            self.other,
            self.max_kids,
            load(0),
            load(1),
            load(2),
            free_mb(tmpdir),
        );
        s
    }

    /// Disk sectors per second since the previous page (-1 the first time).
    fn io_rate(&mut self) -> i64 {
        let text = std::fs::read_to_string("/proc/diskstats").unwrap_or_default();
        let sectors: u64 = text
            .lines()
            .filter_map(|l| {
                let f: Vec<&str> = l.split_whitespace().collect();
                let r = f.get(5)?.parse::<u64>().ok()?;
                let w = f.get(9)?.parse::<u64>().ok()?;
                Some(r + w)
            })
            .sum();
        let now = Instant::now();
        let rate = match self.last_io {
            Some((t, s)) => {
                let secs = now.duration_since(t).as_secs().max(1);
                (sectors.saturating_sub(s) / secs) as i64
            }
            None => -1,
        };
        self.last_io = Some((now, sectors));
        rate
    }
}

/// (processes in D state, largest RSS in kB, its command name).
fn scan_procs() -> (u64, u64, String) {
    let page_kb = 4;
    let mut d = 0;
    let mut best = (0, String::from("none"));
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return (0, 0, best.1);
    };
    for entry in dir.flatten().take(100_000) {
        let name = entry.file_name();
        if !name.to_string_lossy().bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else {
            continue;
        };
        let comm = &stat[open + 1..close];
        let rest: Vec<&str> = stat[close + 1..].split_whitespace().collect();
        if rest.first() == Some(&"D") {
            d += 1;
        }
        let rss = rest
            .get(21)
            .and_then(|r| r.parse::<u64>().ok())
            .unwrap_or(0)
            * page_kb;
        if rss > best.0 {
            best = (rss, comm.to_string());
        }
    }
    (d, best.0, best.1)
}

fn free_mb(path: &Path) -> u64 {
    use std::os::unix::ffi::OsStrExt;
    let Ok(c) = std::ffi::CString::new(path.as_os_str().as_bytes()) else {
        return 0;
    };
    // SAFETY: statvfs into a zeroed local struct with a valid path.
    unsafe {
        let mut st: libc::statvfs = std::mem::zeroed();
        if libc::statvfs(c.as_ptr(), &mut st) != 0 {
            return 0;
        }
        (st.f_bavail as u64).saturating_mul(st.f_frsize as u64) / (1024 * 1024)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_has_stock_lines_in_order() {
        let mut s = Stats::new(3);
        s.tcp_accept = 3;
        s.sample(2);
        s.record(
            JobResult::CompileOk,
            Duration::from_millis(42),
            "hello.c",
            "gcc",
        );
        let page = s.page(Path::new("/tmp"));
        assert!(page.starts_with("HTTP/1.0 200 OK\nContent-Type: text/plain\nConnection: close\n\nargv /distccd\n<distccstats>\ndcc_tcp_accept 3\n"));
        let keys: Vec<&str> = page
            .lines()
            .skip(7)
            .filter_map(|l| l.split(' ').next())
            .collect();
        assert_eq!(
            keys,
            [
                "dcc_rej_bad_req",
                "dcc_rej_overload",
                "dcc_compile_ok",
                "dcc_compile_error",
                "dcc_compile_timeout",
                "dcc_cli_disconnect",
                "dcc_other",
                "dcc_longest_job",
                "dcc_longest_job_compiler",
                "dcc_longest_job_time_msecs",
                "dcc_max_kids",
                "dcc_avg_kids1",
                "dcc_avg_kids2",
                "dcc_avg_kids3",
                "dcc_current_load",
                "dcc_load1",
                "dcc_load2",
                "dcc_load3",
                "dcc_num_compiles1",
                "dcc_num_compiles2",
                "dcc_num_compiles3",
                "dcc_num_procstate_D",
                "dcc_max_RSS",
                "dcc_max_RSS_name",
                "dcc_io_rate",
                "dcc_free_space",
                "</distccstats>"
            ]
        );
        assert!(page.contains("dcc_compile_ok 1\n"));
        assert!(page.contains(
            "dcc_longest_job hello.c\ndcc_longest_job_compiler gcc\ndcc_longest_job_time_msecs 42\n"
        ));
        assert!(page.contains("dcc_num_compiles1 1\n"));
        // The job limit, as stock reports it, not the peak.
        assert!(page.contains("dcc_max_kids 3\n"));
    }
}
