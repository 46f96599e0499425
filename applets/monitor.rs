//! The `distccmon-text [DELAY]` applet: shows which file each distcc client
//! is compiling, on which host and slot, and in which phase.
//!
//! It reads the state files of running clients (`distcc::state`; ours and
//! stock's share the format, facts §4.7) from `$DISTCC_DIR/state` and prints
//! one line per job in stock's layout, `%6d  %-10.10s  %-30.30s
//! %24.24s[%d]`, then an empty line. Files of dead clients, stale or
//! malformed files are skipped (and dead or stale ones removed, as stock
//! does). With DELAY it repeats every DELAY (fractional) seconds until
//! stdout goes away or it is killed.

use distcc::applet::Invocation;
use distcc::state::read_state_dir;
use distcc::{Error, Result};
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

const USAGE: &str = "\
usage: distccmon-text [DELAY]

Shows the compile jobs of the distcc clients running now, one line each:
client pid, phase, input file, host[slot].

With DELAY, shows them again every DELAY seconds (fractions allowed);
without it, shows them once.
";

/// Runs the applet.
pub fn main(inv: Invocation) -> Result<ExitCode> {
    let delay = match inv.args.as_slice() {
        [] => None,
        [one] => match one.to_str().and_then(|s| s.parse::<f64>().ok()) {
            Some(d) if d.is_finite() && d > 0.0 => Some(Duration::from_secs_f64(d)),
            // As stock: a delay of 0 shows the jobs once.
            Some(0.0) => None,
            _ => return usage(),
        },
        _ => return usage(),
    };
    let state = state_dir()?;
    // A client may create it at the same moment: that is not an error.
    match std::fs::create_dir(&state) {
        Err(e) if e.kind() != std::io::ErrorKind::AlreadyExists => {
            // Stock's EXIT_IO_ERROR (107), whatever the cause (sweep W, D5).
            return Err(Error::new(
                distcc::Kind::Io,
                format!("mkdir '{}' failed: {e}", state.display()),
            ));
        }
        _ => {}
    }
    loop {
        let mut jobs = read_state_dir(&state)?;
        jobs.sort_by(|a, b| (&a.host, a.slot, a.pid).cmp(&(&b.host, b.slot, b.pid)));
        let mut text = String::new();
        for job in &jobs {
            text.push_str(&format!(
                "{:6}  {:<10.10}  {:<30.30} {:>24.24}[{}]\n",
                job.pid,
                job.phase.name(),
                String::from_utf8_lossy(&job.file),
                String::from_utf8_lossy(&job.host),
                job.slot
            ));
        }
        text.push('\n');
        let mut out = std::io::stdout().lock();
        if out
            .write_all(text.as_bytes())
            .and_then(|_| out.flush())
            .is_err()
        {
            // Nobody is reading any more.
            return Ok(ExitCode::SUCCESS);
        }
        drop(out);
        match delay {
            Some(d) => std::thread::sleep(d),
            None => return Ok(ExitCode::SUCCESS),
        }
    }
}

fn usage() -> Result<ExitCode> {
    eprint!("{USAGE}");
    Ok(ExitCode::from(1))
}

/// `$DISTCC_DIR/state`, with DISTCC_DIR defaulting to `$HOME/.distcc`.
fn state_dir() -> Result<PathBuf> {
    let base = match std::env::var_os("DISTCC_DIR") {
        Some(d) if !d.is_empty() => PathBuf::from(d),
        _ => {
            let home = std::env::var_os("HOME").ok_or_else(|| {
                Error::new(distcc::Kind::Failed, "neither DISTCC_DIR nor HOME is set")
            })?;
            PathBuf::from(home).join(".distcc")
        }
    };
    Ok(base.join("state"))
}
