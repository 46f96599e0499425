//! Stock's one-line job summary, written for every connection a worker
//! took, whatever became of it, in daemon and inetd mode alike (facts
//! §5.2): `client: <ip>:<port> <RESULT> exit:<n> sig:<n> core:<n> ret:<n>
//! time:<n>ms <compiler> <input>`, under stock's tag `(dcc_job_summary)`.
//! Log readers count jobs by these lines.

use super::runner::{JobResult, Outcome};
use std::net::SocketAddr;

/// The peer as the summary names it: `ip:port` (no brackets for IPv6, as
/// stock), or `stdin` for a job on pipes.
pub fn peer_name(peer: Option<&SocketAddr>) -> String {
    match peer {
        Some(p) => format!("{}:{}", p.ip(), p.port()),
        None => "stdin".to_string(),
    }
}

/// The summary of a job that ran.
pub fn log(peer: &str, result: JobResult, o: &Outcome) {
    let st = o.status;
    let (exit, sig, core) = if libc::WIFEXITED(st) {
        (libc::WEXITSTATUS(st), 0, 0)
    } else {
        (0, libc::WTERMSIG(st), i32::from(libc::WCOREDUMP(st)))
    };
    let ret = match result {
        JobResult::CompileOk => 0,
        JobResult::CompileError => exit,
        JobResult::CompileTimeout => 118,
        JobResult::CliDisconn => 107,
        JobResult::Other => 100,
    };
    if let Some(err) = &o.error {
        log::warn!("client: {peer} job failed: {err}");
    }
    log::info!(
        target: "dcc_job_summary",
        "client: {peer} {} exit:{exit} sig:{sig} core:{core} ret:{ret} time:{}ms {} {}",
        result.name(),
        o.elapsed.as_millis(),
        o.compiler,
        o.input
    );
}

/// Why a connection's request was not run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// Bytes that are not a request (`REJ_BAD_REQ`).
    BadRequest,
    /// A request that may not run here, e.g. a refused compiler (`OTHER`).
    NotServed,
    /// The client left before its request was complete (`CLI_DISCONN`,
    /// as stock counts it).
    ClientLeft,
}

impl Refusal {
    /// A client that left (or whose stream failed) before its request was
    /// whole: in the middle of a body (the source or a file) it is a
    /// disconnected client, 107, as stock counts it; between or inside
    /// tokens a request that failed, with `kind`'s own code. Returns the
    /// refusal and the kind whose exit code it carries.
    pub fn of_early_end(in_body: bool, kind: distcc::Kind) -> (Refusal, distcc::Kind) {
        if in_body {
            (Refusal::ClientLeft, distcc::Kind::Io)
        } else {
            (Refusal::NotServed, kind)
        }
    }

    /// The summary's and the statistics' name.
    pub fn name(self) -> &'static str {
        match self {
            Refusal::BadRequest => "REJ_BAD_REQ",
            Refusal::NotServed => "OTHER",
            Refusal::ClientLeft => "CLI_DISCONN",
        }
    }
}

/// The summary of a connection whose request was refused or never
/// completed; `ret` is the distcc exit code of the reason.
pub fn log_refused(peer: &str, refusal: Refusal, ret: u8, elapsed: std::time::Duration) {
    log::info!(
        target: "dcc_job_summary",
        "client: {peer} {} exit:0 sig:0 core:0 ret:{ret} time:{}ms",
        refusal.name(),
        elapsed.as_millis()
    );
}
