//! Stock's one-line job summary, written for every connection a worker
//! took, whatever became of it, in daemon and inetd mode alike (facts
//! §5.2): `client: <ip>:<port> <RESULT> exit:<n> sig:<n> core:<n> ret:<n>
//! time:<n>ms <compiler> <input>`. Log readers count jobs by these lines.

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
        "client: {peer} {} exit:{exit} sig:{sig} core:{core} ret:{ret} time:{}ms {} {}",
        result.name(),
        o.elapsed.as_millis(),
        o.compiler,
        o.input
    );
}

/// The summary of a connection whose request was refused or never
/// completed: `REJ_BAD_REQ` for bytes that are not a request, `OTHER`
/// otherwise (a command that may not run here, a client that left early);
/// `ret` is the distcc exit code of the reason.
pub fn log_refused(peer: &str, bad_request: bool, ret: u8, elapsed: std::time::Duration) {
    let result = if bad_request { "REJ_BAD_REQ" } else { "OTHER" };
    log::info!(
        "client: {peer} {result} exit:0 sig:0 core:0 ret:{ret} time:{}ms",
        elapsed.as_millis()
    );
}
