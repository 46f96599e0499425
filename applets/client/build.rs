//! One compile, start to finish: where it runs, retries and fallback.
//!
//! The flow of distcc 3.4 `dcc_build_somewhere` (facts §4.8), with its
//! infinite retry loop bounded: classify; local-only commands run here under
//! a local slot; otherwise pick a host, preprocess locally (protocols 1, 2)
//! or ask the include server (protocol 3, with the downgrades of §1.3),
//! send, receive, write the outputs. A failure to distribute marks the host
//! (backoff), excludes it for this run and tries another, at most
//! [`MAX_ATTEMPTS`] times; then the job is compiled locally with one log line
//! giving the reason, unless `DISTCC_FALLBACK=0`. A remote compile error is
//! retried locally unless `DISTCC_SKIP_LOCAL_RETRY` is set.

use super::job_log;
use super::local::{self, Cpp};
use super::pick::{self, Picked};
use super::pump;
use super::remote::{self, Reply};
use super::transport::Connection;
use super::working_dir;
use distcc::args::extensions::is_source;
use distcc::args::{self, Job, Verdict};
use distcc::env::ClientEnv;
use distcc::hosts::{HostList, HostSpec};
use distcc::lock;
use distcc::protocol::Version;
use distcc::state::{Phase, StateFile};
use distcc::{Error, Kind, Result};
use std::ffi::OsString;
use std::io::Write;
use std::path::{Path, PathBuf};

/// Most hosts tried for one job before compiling locally.
pub const MAX_ATTEMPTS: usize = 8;

/// The state of one client run.
pub struct Build<'a> {
    env: &'a ClientEnv,
    state: StateFile,
    /// (--localslots, --localslots_cpp) of the host list, or the defaults.
    pools: (u32, u32),
}

/// The parts of a protocol-3 request.
struct PumpRequest {
    /// CDIR.
    cwd: PathBuf,
    /// The full command, plus `-MT target` when a .d is wanted without one.
    argv: Vec<OsString>,
    /// NFIL and the files, encoded.
    body: remote::PumpBody,
    /// Where the DOTD reply goes, when a .d is wanted.
    dotd: Option<PathBuf>,
    /// The DOTD reply is appended to that file (`DEPENDENCIES_OUTPUT`).
    dotd_append: bool,
    /// Absolute `#include` names the include server rewrote in the copies,
    /// restored in the .d file.
    absolute_names: Vec<Vec<u8>>,
}

/// What a remote attempt came to, other than a distribution failure.
enum Outcome {
    /// The job is finished with this exit code (success, or a local
    /// preprocessor error that a local compile would report the same way).
    Done(u8),
    /// The server compiled it and its outputs are written; the compiler's
    /// stdout and stderr are still to be passed on, once the host's slot is
    /// given back (a terminal or pipe that blocks must not hold up other
    /// jobs waiting for the slot, as stock's order has it).
    Compiled { stdout: Vec<u8>, stderr: Vec<u8> },
    /// The compiler failed on the server.
    RemoteFailed { reply: Reply, pump: bool },
    /// A failure that must not be turned into a fallback.
    Fatal(Error),
    /// Plain mode would give another result than a local compile (the
    /// reason): compiled here, without blaming the server.
    PlainDiffers(String),
    /// The server compiled, but the output could not be written here (a
    /// full or read-only disk): not the server's fault, so it is not backed
    /// off; the local compile reports the problem in its own words.
    WriteFailed(Error),
}

/// The option that keeps a server's diagnostics coloured, when ours are.
fn colour_flag(argv: &[OsString]) -> Option<&'static str> {
    use std::io::IsTerminal;
    let term = std::env::var("TERM").ok();
    let gcc_colors = std::env::var("GCC_COLORS").ok();
    args::colour::flag(
        argv,
        &args::colour::Terminal {
            is_tty: std::io::stderr().is_terminal(),
            term: term.as_deref(),
            gcc_colors: gcc_colors.as_deref(),
        },
    )
}

fn basename(p: &std::ffi::OsStr) -> Vec<u8> {
    Path::new(p)
        .file_name()
        .map(|n| n.as_encoded_bytes().to_vec())
        .unwrap_or_default()
}

impl<'a> Build<'a> {
    /// A new run for `env`.
    pub fn new(env: &'a ClientEnv) -> Build<'a> {
        Build {
            env,
            state: StateFile::in_dir(env.dir_usable().then(|| env.state_dir()).as_deref()),
            pools: (
                distcc::hosts::DEFAULT_LOCAL_SLOTS,
                distcc::hosts::DEFAULT_LOCAL_SLOTS_CPP,
            ),
        }
    }

    /// Compiles `argv` (argv[0] = compiler) somewhere; returns the exit code.
    /// With `scan_includes`, prints the include server's file list instead.
    pub fn run(&mut self, argv: Vec<OsString>, scan_includes: bool) -> Result<u8> {
        if self.env.safeguard > 0 {
            // A masquerade link found again after PATH trimming: the real
            // compiler, here, without locks or rewriting (facts §4.6).
            return local::run(&argv, self.env.safeguard);
        }
        let verdict = args::classify(&argv)?;
        // The host list is read once: it also sets the local slot pools.
        let loaded = pick::load(self.env);
        if let Ok(Some(l)) = &loaded {
            self.pools = (l.local_slots, l.local_slots_cpp);
        }
        match verdict {
            Verdict::Local(reason) => {
                log::info!("{}; running locally", reason.why);
                let pool = if reason.preprocess_only {
                    self.pools.1
                } else {
                    self.pools.0
                };
                let lock = pick::lock_local(self.env, pool, &mut self.state)?;
                let source = argv[1..]
                    .iter()
                    .find(|a| !a.as_encoded_bytes().starts_with(b"-") && is_source(a));
                let name = source.map(|a| basename(a)).unwrap_or_default();
                self.note_local(&name, lock.as_ref().map_or(0, |l| l.slot));
                let input = source.map_or("(null)".into(), |s| s.to_string_lossy());
                self.run_here(&argv, &input)
            }
            Verdict::Distribute(mut job) => {
                if !self.env.no_rewrite_cross {
                    args::cross::rewrite_cross(&mut job.argv, self.env.path.as_deref());
                }
                if let Some(flag) = colour_flag(&job.argv) {
                    job.argv.push(flag.into());
                }
                // The compile belongs here when its options read or write the
                // client's own files (our servers refuse them; a stock one
                // would use its own), or write files beside the object (a
                // server would throw them away).
                let here = match args::policy::check(&args::strip::server_argv(&job.argv)) {
                    Err(e) => Some(e.to_string()),
                    Ok(_) => args::side_files::reason(&job.argv),
                }
                .or_else(|| output_is_input(&job))
                .or_else(|| output_dir_missing(&job))
                .or_else(|| implicit_pch(&job));
                if !scan_includes && let Some(why) = here {
                    log::info!("{why}; running locally");
                    let lock = pick::lock_local(self.env, self.pools.0, &mut self.state)?;
                    self.note_local(&basename(&job.input), lock.as_ref().map_or(0, |l| l.slot));
                    return self.run_here(&argv, &job.input.to_string_lossy());
                }
                self.distribute(&job, loaded, scan_includes)
            }
        }
    }

    fn distribute(
        &mut self,
        job: &Job,
        loaded: Result<Option<HostList>>,
        scan_includes: bool,
    ) -> Result<u8> {
        let input = job.input.to_string_lossy().into_owned();
        let list = match loaded {
            Ok(Some(list)) => list,
            Ok(None) => {
                log::warn!("no hostlist is set; can't distribute work");
                let e = Error::new(Kind::NoHosts, "no hostlist is set");
                return self.fallback(job, None, e);
            }
            Err(e) => {
                if e.kind() == Kind::NoHosts {
                    log::warn!("{e}");
                } else {
                    log::error!("{e}");
                }
                return self.fallback(job, None, e);
            }
        };
        // The include server's answer needs no server and no slot: a
        // `,cpp` host in the list says pump mode would be used, whether it
        // is free, busy or backed off. (Stock picks a host first, and with
        // all backed off it compiled the unit, writing an object: sweep Q.)
        if scan_includes
            && let Some(host) = list
                .hosts
                .iter()
                .find(|h| !h.down && h.protocol() == Version::PUMP)
        {
            return self.scan_includes(job, host);
        }
        self.state.job(&basename(&job.input), "", 0);
        let _ = self.state.phase(Phase::Startup);
        let mut excluded: Vec<String> = Vec::new();
        let mut last: Option<(String, String, Error)> = None;
        for _ in 0..MAX_ATTEMPTS {
            let Some(picked) = pick::pick(self.env, &list, &excluded, &mut self.state)? else {
                break;
            };
            match &picked.lock {
                Some(l) => log::debug!(
                    "picked {} slot {} (lock {})",
                    picked.host.text,
                    picked.slot,
                    l.path().display()
                ),
                None => log::debug!("picked {} slot {}", picked.host.text, picked.slot),
            }
            if let Some((failed, _, e)) = &last {
                // Said here, when another host is tried; the last failure is
                // reported once, by the fallback line.
                log::warn!(
                    "{failed} could not take {input}: {e}; trying {}",
                    picked.host.display()
                );
            }
            if picked.host.is_local() {
                log::info!("building {input} on localhost");
                self.note_local(&basename(&job.input), picked.slot);
                let code = self.run_here(&job.argv, &input)?;
                drop(picked);
                return Ok(code);
            }
            if scan_includes {
                return self.scan_includes(job, &picked.host);
            }
            let key = picked.host.lock_key();
            let name = picked.host.display();
            // The token as written, as stock names a host in its fallback line.
            let token = picked.host.text.clone();
            match self.attempt(job, &list, &picked) {
                Ok(Outcome::Done(code)) => return Ok(code),
                Ok(Outcome::Compiled { stdout, stderr }) => {
                    drop(picked);
                    let _ = std::io::stdout().write_all(&stdout);
                    let _ = std::io::stderr().write_all(&stderr);
                    return Ok(0);
                }
                Ok(Outcome::Fatal(e)) => return Err(e),
                Ok(Outcome::PlainDiffers(why)) => {
                    drop(picked);
                    // As for the other compiles kept here by their options:
                    // said when asked (stderr may be a tool's JSON).
                    log::info!("compiling {input} here: {why}");
                    return self.compile_here(job);
                }
                Ok(Outcome::WriteFailed(e)) => return self.write_failed(job, &name, e),
                Ok(Outcome::RemoteFailed { reply, pump }) => {
                    return self.remote_failed(job, picked, reply, pump);
                }
                Err(e) if e.kind() == Kind::Busy => return Err(e),
                Err(e) => {
                    log::debug!("{name} could not take {input}: {e}");
                    let _ = lock::mark_backoff(&self.env.lock_dir(), &key, self.env.backoff_period);
                    excluded.push(key);
                    last = Some((name, token, e));
                }
            }
        }
        match last {
            Some((_, token, e)) => {
                // As stock: the failed host is backed off and no other can
                // be picked, which is "no hosts" (116) when fallbacks are
                // off. Without backoff stock retries the same host for ever;
                // the attempts here are bounded and the last failure says
                // what happened.
                let e = if self.env.fallback || self.env.backoff_period.is_zero() {
                    e
                } else {
                    Error::new(
                        Kind::NoHosts,
                        format!("{}; no other host could take it", e.context()),
                    )
                };
                self.fallback(job, Some(&token), e)
            }
            None => {
                let e = Error::new(Kind::NoHosts, "no usable host (all down or backed off)");
                self.fallback(job, None, e)
            }
        }
    }

    /// Compiles locally after a failure to distribute, or fails when fallback is off.
    fn fallback(&mut self, job: &Job, host: Option<&str>, why: Error) -> Result<u8> {
        let input = job.input.to_string_lossy();
        if !self.env.fallback {
            log::error!("failed to distribute and fallbacks are disabled");
            // A host list that does not parse leaves no host to pick: stock
            // says "no hosts" (116) then, not "bad host specification".
            let why = if why.kind() == Kind::BadHostSpec {
                Error::new(Kind::NoHosts, why.context().to_string())
            } else {
                why
            };
            return Err(why.within(format!("failed to distribute {input}")));
        }
        // Stock's line, so what matches it still matches, then the reason.
        match host {
            Some(h) => {
                log::warn!("failed to distribute {input} to {h}, running locally instead ({why})")
            }
            None => log::warn!("failed to distribute, running locally instead ({input}: {why})"),
        }
        self.compile_here(job)
    }

    /// The server's output could not be written here: compiles locally (the
    /// compiler then says what is wrong with the disk in its own words), or
    /// fails when fallback is off. The server is not to blame.
    fn write_failed(&mut self, job: &Job, host: &str, why: Error) -> Result<u8> {
        let input = job.input.to_string_lossy();
        if !self.env.fallback {
            return Err(why.within(format!("{input} compiled on {host}, but not written")));
        }
        log::warn!(
            "{input} compiled on {host}, but writing its output failed: {why}; running locally instead"
        );
        self.compile_here(job)
    }

    /// Compiles `job` on this machine in a local slot, shown to monitors.
    fn compile_here(&mut self, job: &Job) -> Result<u8> {
        let pool = self.pools.0;
        let lock = pick::lock_local(self.env, pool, &mut self.state)?;
        self.note_local(&basename(&job.input), lock.as_ref().map_or(0, |l| l.slot));
        self.run_here(&job.argv, &job.input.to_string_lossy())
    }

    /// Runs the compiler here with the caller's stdio, with stock's log
    /// lines before and after ([`job_log`]); returns its exit code.
    fn run_here(&self, argv: &[OsString], input: &str) -> Result<u8> {
        job_log::execution("localhost", argv);
        let code = local::run(argv, self.env.safeguard)?;
        job_log::status("compile", input, "localhost", code, self.env.log.is_some());
        Ok(code)
    }

    /// Shows monitors a compile on this machine as stock does: phase
    /// Compile on host `localhost`, in local slot `slot`.
    fn note_local(&mut self, source: &[u8], slot: u32) {
        self.state.job(source, "localhost", slot);
        let _ = self.state.phase(Phase::Compile);
    }

    fn remote_failed(&mut self, job: &Job, picked: Picked, reply: Reply, pump: bool) -> Result<u8> {
        let code = reply.exit_code();
        let input = job.input.to_string_lossy().into_owned();
        let host = picked.host.display();
        let key = picked.host.lock_key();
        job_log::status(
            "compile",
            &input,
            &picked.host.text,
            code,
            self.env.log.is_some(),
        );
        drop(picked);
        if self.env.skip_local_retry && code < 128 {
            let _ = std::io::stdout().write_all(&reply.stdout);
            let _ = std::io::stderr().write_all(&reply.stderr);
            return Ok(code);
        }
        if !self.env.fallback {
            let _ = std::io::stdout().write_all(&reply.stdout);
            let _ = std::io::stderr().write_all(&reply.stderr);
            match reply.killed_by() {
                // Nothing of the compiler's says so: we must.
                Some(sig) => log::error!(
                    "compile {input} on {host}: the compiler was killed by signal {sig}; fallbacks are disabled"
                ),
                // The compiler's own messages say what went wrong; stderr
                // stays exactly the compiler's.
                None => log::info!(
                    "remote compilation of '{input}' on {host} failed (exit {code}); fallbacks are disabled"
                ),
            }
            return Ok(code);
        }
        // A status of distcc's own (the compiler missing there, the job's
        // time limit) is the server's doing: its message says which.
        let server_said = (code >= 100)
            .then(|| {
                String::from_utf8_lossy(&reply.stderr)
                    .lines()
                    .map(str::trim)
                    .find(|l| !l.is_empty())
                    .map(|l| format!(": {}", l.chars().take(300).collect::<String>()))
            })
            .flatten()
            .unwrap_or_default();
        log::warn!(
            "remote compilation of '{input}' on {host} failed with exit code {code}{server_said}, retrying locally"
        );
        let local_code = self.compile_here(job)?;
        if local_code != code {
            // In pump mode the likely culprit is the include analysis, not
            // the host: the discrepancy counter deals with that.
            if !pump {
                let _ = lock::mark_backoff(&self.env.lock_dir(), &key, self.env.backoff_period);
            } else {
                log::warn!(
                    "pump-mode compilation of '{input}' failed on {host} but gave exit {local_code} locally: counting a discrepancy"
                );
                pump::record_discrepancy(self.env);
            }
        }
        Ok(local_code)
    }

    fn scan_includes(&mut self, job: &Job, host: &HostSpec) -> Result<u8> {
        if host.protocol() != Version::PUMP {
            return Err(Error::new(
                Kind::Failed,
                "'--scan-includes' specified, but distcc wouldn't have used include server (make sure hosts list includes ',cpp' option?)",
            ));
        }
        let cwd = current_dir()?;
        // Stock exits 1 when the include server cannot answer (not set, not
        // reachable, gave up on the unit) (sweep W, D4).
        let paths = match pump::query(self.env, &job.argv, &cwd) {
            Ok(paths) => paths,
            Err(why) => {
                log::error!("failed to get includes from include server: {why}");
                return Ok(1);
            }
        };
        let mut out = std::io::stdout().lock();
        for p in &paths {
            let mut line = pump::scan_line(p);
            line.push(b'\n');
            let _ = out.write_all(&line);
        }
        Ok(0)
    }

    /// One try on one host. Err = failure to distribute (try elsewhere).
    fn attempt(&mut self, job: &Job, list: &HostList, picked: &Picked) -> Result<Outcome> {
        let host = &picked.host;
        let env = self.env;
        self.state
            .job(&basename(&job.input), host.name(), picked.slot);
        let mut version = host.protocol();
        let mut files = None;
        if version == Version::PUMP
            && let Err(e) = env.max_discrepancy()
        {
            // Stock exits here, and only here: plain compiles never ask.
            return Ok(Outcome::Fatal(e));
        }
        if version == Version::PUMP
            && let Some(why) = pump::downgrade_reason(env, job.preprocessed)
                .or_else(|| {
                    // Preprocessor options go to the server in pump mode only.
                    args::policy::check(&job.argv)
                        .err()
                        .map(|e| format!("{e} (on the server)"))
                })
                .or_else(|| symlinked_cwd_reason(&job.argv))
                .or_else(|| sanitizer_module_reason(job))
        {
            // Already-preprocessed input is routine, and so are sanitized
            // units with absolute paths (CMake's); the others deserve a
            // warning.
            let level = if job.preprocessed || sanitizer_module_reason(job).is_some() {
                log::Level::Info
            } else {
                log::Level::Warn
            };
            let then = if job.preprocessed {
                "sending it as it is"
            } else {
                "preprocessing locally"
            };
            log::log!(
                level,
                "not using pump mode for {}: {why}; {then}",
                job.input.to_string_lossy()
            );
            version = Version::LZO;
        }
        if version == Version::PUMP {
            let _cpp_lock = pick::lock_local(env, list.local_slots_cpp, &mut self.state)?;
            let _ = self.state.phase(Phase::Preprocess);
            match self.pump_request(job) {
                Ok(f) => files = Some(f),
                Err(why) => {
                    if env.testing_include_server {
                        return Ok(Outcome::Fatal(Error::new(
                            Kind::Failed,
                            format!(
                                "include server failed and DISTCC_TESTING_INCLUDE_SERVER is set: {why}"
                            ),
                        )));
                    }
                    log::warn!(
                        "failed to get includes from include server, preprocessing locally: {why} ({})",
                        job.input.to_string_lossy()
                    );
                    version = Version::LZO;
                }
            }
        }
        let _ = self.state.phase(Phase::Connect);
        if let Some(mut req) = files {
            let mut conn = Connection::open(host, env.io_timeout, &env.ssh, env.tcp_cork)?;
            let _ = self.state.phase(Phase::Send);
            log::debug!(
                "sending {} to {} (protocol {}): {}",
                job.input.to_string_lossy(),
                host.name(),
                version.0,
                distcc::logging::command_line(&req.argv)
            );
            job_log::execution(&host.text, &req.argv);
            remote::send_pump(&mut conn, &req.cwd, &req.argv, &mut req.body)?;
            let dotd = req.dotd.as_deref().map(|p| DotdReply {
                path: p,
                absolute_names: &req.absolute_names,
                append: req.dotd_append,
            });
            let outcome = self.finish(job, host, conn, version, dotd, true);
            if outcome.is_ok() {
                // The daemon answered: it has read the whole request.
                req.body.delivered();
            }
            return outcome;
        }
        if let Some(why) = args::side_files::plain_mode_differs(&job.argv) {
            return Ok(Outcome::PlainDiffers(why));
        }
        // Plain mode: start cpp, connect while it runs, then send the
        // whole request at once.
        if job.preprocessed && std::fs::metadata(&job.input).is_err() {
            // Nothing to send: the compiler here reports it as it would.
            return Ok(Outcome::Done(
                self.run_here(&job.argv, &job.input.to_string_lossy())?,
            ));
        }
        let mut cpp_lock = None;
        let cpp = if job.preprocessed {
            None
        } else {
            cpp_lock = pick::lock_local(env, list.local_slots_cpp, &mut self.state)?;
            let _ = self.state.phase(Phase::Preprocess);
            let ext = args::extensions::preprocessed_extension(&job.input);
            match Cpp::start(
                &args::strip::cpp_argv(job),
                env.safeguard,
                &env.tmpdir,
                ext,
                env.save_temps,
            ) {
                Ok(cpp) => Some(cpp),
                // The compiler is missing here: no server is to blame (no
                // backoff), and a local compile would fail the same way.
                // Exit 110, as stock (sweep S, D3).
                Err(e) if e.kind() == Kind::CompilerMissing => return Ok(Outcome::Fatal(e)),
                Err(e) => return Err(e),
            }
        };
        let mut conn = match Connection::open(host, env.io_timeout, &env.ssh, env.tcp_cork) {
            Ok(c) => c,
            Err(e) => {
                drop(cpp);
                return Err(e);
            }
        };
        let private = cpp.is_some() && !env.save_temps;
        let source = match cpp {
            Some(cpp) => {
                let (code, out) =
                    cpp.wait_then(|out| remote::Source::prepare(version, out, private))?;
                drop(cpp_lock);
                job_log::status(
                    "cpp",
                    &job.input.to_string_lossy(),
                    "localhost",
                    code,
                    false,
                );
                if code != 0 {
                    log::info!(
                        "preprocessing {} failed with exit {code}",
                        job.input.to_string_lossy()
                    );
                    return Ok(Outcome::Done(code));
                }
                out
            }
            None => {
                let path = Path::new(&job.input);
                let cwd = args::compilation_dir::recorded_cwd();
                let file = match cwd.map(|cwd| working_dir::added(&job.argv, path, &cwd)) {
                    Some(Ok(Some(with_cwd))) => with_cwd,
                    _ => std::fs::File::open(path)
                        .map_err(|e| Error::io(format!("reading {}", path.display()), e))?,
                };
                remote::Source::File(file)
            }
        };
        let _ = self.state.phase(Phase::Send);
        let mut server_argv = args::strip::server_argv(&job.argv);
        if let Some(dir) = args::compilation_dir::recorded_cwd()
            && let Some(option) = args::compilation_dir::clang_option(&server_argv, &dir)
        {
            server_argv.push(option);
        }
        log::debug!(
            "sending {} to {} (protocol {}): {}",
            job.input.to_string_lossy(),
            host.name(),
            version.0,
            distcc::logging::command_line(&server_argv)
        );
        job_log::execution(&host.text, &server_argv);
        remote::send_plain(&mut conn, version, &server_argv, source)?;
        self.finish(job, host, conn, version, None, false)
    }

    /// Asks the include server and builds the protocol-3 request; Err says
    /// why that failed.
    fn pump_request(&self, job: &Job) -> std::result::Result<PumpRequest, String> {
        let cwd = current_dir().map_err(|e| e.to_string())?;
        let (paths, list) = pump::query_with_list(self.env, &job.argv, &cwd, true)?;
        if list.as_ref().is_some_and(|l| l.date_or_time) && source_date_epoch_set() {
            // The include server checks its own environment, which may
            // lack what the build set after pump started (dpkg-buildpackage).
            return Err(
                "a file of it uses __DATE__ or __TIME__, and SOURCE_DATE_EPOCH is set (a server would use its own clock)"
                    .into(),
            );
        }
        let mut absolute_names = Vec::new();
        let body = match list {
            Some(mut list) => {
                absolute_names = std::mem::take(&mut list.absolute_names);
                remote::PumpBody::Ready(list)
            }
            None => {
                // Room for a typical unit's headers at once (pages untouched
                // stay free).
                let mut body = Vec::with_capacity(1 << 20);
                pump::encode_files(&paths, &mut body)?;
                remote::PumpBody::Encoded(body)
            }
        };
        let dotd = args::dotd::dotd_info(job, self.env.dependencies_output.as_deref());
        let mut argv = args::dotd::keep_every_target(&job.argv);
        if dotd.needed && !dotd.target_given {
            argv.push(dotd.target_option.into());
            argv.push(dotd.target.clone());
        }
        let dotd_append = dotd.append;
        let dotd = if dotd.needed {
            dotd.path.map(PathBuf::from)
        } else {
            None
        };
        Ok(PumpRequest {
            cwd,
            argv,
            body,
            dotd,
            dotd_append,
            absolute_names,
        })
    }

    fn finish(
        &mut self,
        job: &Job,
        host: &HostSpec,
        mut conn: Connection,
        version: Version,
        dotd: Option<DotdReply>,
        pump: bool,
    ) -> Result<Outcome> {
        let _ = self.state.phase(Phase::Compile);
        let reply = remote::receive(&mut conn, version)?;
        drop(conn);
        let _ = self.state.phase(Phase::Receive);
        if reply.status != 0 {
            return Ok(Outcome::RemoteFailed { reply, pump });
        }
        // `-fsyntax-only` writes no object, and neither does a local compile
        // (stock writes an empty file that make would take for an object).
        // Other empty objects are written, as stock does (`true -c x.i`).
        let no_object = reply.object.is_empty() && job.argv.iter().any(|a| a == "-fsyntax-only");
        if !no_object && let Err(e) = remote::write_output(Path::new(&job.output), &reply.object) {
            return Ok(Outcome::WriteFailed(e));
        }
        if let (
            Some(DotdReply {
                path,
                absolute_names,
                append,
            }),
            Some(d),
        ) = (dotd, &reply.dotd)
        {
            let mut d = std::borrow::Cow::Borrowed(&d[..]);
            if !absolute_names.is_empty() {
                d = distcc::dotd_absolute::restore_absolute_names(
                    &d,
                    absolute_names,
                    distcc::dotd_absolute::real_depth,
                )
                .into();
            }
            // Written with the server's longer paths: wrap its lines where
            // the local compiler would.
            d = if job
                .argv
                .first()
                .is_some_and(|c| args::cross::named_clang(c))
            {
                distcc::dotd_wrap::rewrap_clang(&d).into()
            } else {
                distcc::dotd_wrap::rewrap_gcc(&d).into()
            };
            if append {
                // GCC appends its rule to what the file holds; the whole goes
                // through a new file, as any output here.
                match std::fs::read(path) {
                    Ok(mut old) => {
                        old.extend_from_slice(&d);
                        d = old.into();
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => {
                        return Ok(Outcome::WriteFailed(Error::io(
                            format!("reading {}", path.display()),
                            e,
                        )));
                    }
                }
            }
            if let Err(e) = remote::write_output(path, &d) {
                return Ok(Outcome::WriteFailed(e));
            }
        }
        lock::clear_backoff(
            &self.env.lock_dir(),
            &host.lock_key(),
            self.env.backoff_period,
        );
        let _ = self.state.phase(Phase::Done);
        job_log::status(
            "compile",
            &job.input.to_string_lossy(),
            &host.text,
            0,
            false,
        );
        log::info!(
            "compiled {} on {} (protocol {})",
            job.input.to_string_lossy(),
            host.name(),
            version.0
        );
        Ok(Outcome::Compiled {
            stdout: reply.stdout,
            stderr: reply.stderr,
        })
    }
}

/// Where a pump job's DOTD reply goes.
struct DotdReply<'r> {
    path: &'r Path,
    /// Absolute `#include` names to restore in it.
    absolute_names: &'r [Vec<u8>],
    /// Appended to the file (`DEPENDENCIES_OUTPUT`), not replacing it.
    append: bool,
}

/// A reason to compile here when the output names the source file itself
/// (`-o a.c`, a typo): the compiler refuses that with its own message,
/// where a remote compile would replace the source with the object.
fn output_is_input(job: &Job) -> Option<String> {
    use std::os::unix::fs::MetadataExt;
    let input = std::fs::metadata(&job.input).ok()?;
    let output = std::fs::metadata(&job.output).ok()?;
    ((input.dev(), input.ino()) == (output.dev(), output.ino())).then(|| {
        format!(
            "the output {} is the source file itself",
            Path::new(&job.output).display()
        )
    })
}

/// A reason to compile here when the output's directory does not exist
/// (`-o nodir/x.o`, a typo or a missing mkdir rule): the compiler fails
/// for it here, where a server's object could not be written.
fn output_dir_missing(job: &Job) -> Option<String> {
    let dir = Path::new(&job.output).parent()?;
    if dir.as_os_str().is_empty() || dir.is_dir() {
        return None;
    }
    Some(format!(
        "the output's directory {} does not exist",
        dir.display()
    ))
}

/// A reason to compile here when the compiler would use a precompiled
/// header of its own accord, where a server (or the local preprocessor of
/// plain mode) reads X's text: for `-include X` Clang reads `X.pch` (or
/// `X.gch`) when one lies beside X, even one built with other macros. GCC
/// checks a `.gch` against the command but not against X's text: a `.gch`
/// older than X (X edited, the `.gch` not rebuilt) gives the old header's
/// object here (sweep O, D7). A current one gives the text's object, so
/// those commands are still distributed.
fn implicit_pch(job: &Job) -> Option<String> {
    let clang = args::cross::named_clang(&job.argv[0]);
    for header in args::strip::included_headers(&job.argv) {
        let text = Path::new(header);
        for ext in [".pch", ".gch"] {
            let mut pch = header.to_os_string();
            pch.push(ext);
            let pch = Path::new(&pch);
            if clang && pch.exists() {
                return Some(format!(
                    "the precompiled header {} that Clang uses for -include is read on this machine",
                    pch.display()
                ));
            }
            if !clang && ext == ".gch" && older_than(pch, text) {
                return Some(format!(
                    "the precompiled header {} is older than {}, and GCC here would use it",
                    pch.display(),
                    text.display()
                ));
            }
        }
    }
    None
}

/// Whether `pch` (a file, or a directory of them) is older than `text`.
fn older_than(pch: &Path, text: &Path) -> bool {
    let mtime = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    let Some(edited) = mtime(text) else {
        return false;
    };
    match std::fs::metadata(pch) {
        Ok(m) if m.is_dir() => std::fs::read_dir(pch)
            .into_iter()
            .flatten()
            .flatten()
            .take(1000)
            .any(|e| mtime(&e.path()).is_some_and(|t| t < edited)),
        Ok(m) => m.modified().is_ok_and(|t| t < edited),
        Err(_) => false,
    }
}

/// Why a unit with debug information is not compiled in pump mode when the
/// working directory was entered through a symlink: the server would record
/// the physical directory where a compiler here records `$PWD`.
fn symlinked_cwd_reason(argv: &[OsString]) -> Option<String> {
    if !args::compilation_dir::records_debug_info(argv) {
        return None;
    }
    let logical = args::compilation_dir::logical_differs()?;
    Some(format!(
        "the working directory {} is reached through a symlink, and debug information records it",
        logical.display()
    ))
}

/// Why an AddressSanitizer unit named by an absolute path is preprocessed
/// here: the compiler records the source path as given on its command line
/// in the object (the module name of its global descriptors), and a pump
/// server's path has its job directory in front; from preprocessed text it
/// takes the name the line markers give, the local one (sweep U, D13).
fn sanitizer_module_reason(job: &Job) -> Option<String> {
    if !Path::new(&job.input).is_absolute() || !address_sanitized(&job.argv) {
        return None;
    }
    Some("AddressSanitizer records the source's path as given, which a server has under its job directory".into())
}

/// Whether the command turns on an address sanitizer (the last
/// `-fsanitize=`/`-fno-sanitize=` naming one decides).
fn address_sanitized(argv: &[OsString]) -> bool {
    const ADDRESS: [&str; 4] = ["address", "kernel-address", "hwaddress", "kernel-hwaddress"];
    let mut on = false;
    for a in argv.iter().skip(1) {
        let a = a.to_string_lossy();
        if let Some(list) = a.strip_prefix("-fsanitize=") {
            on |= list.split(',').any(|s| ADDRESS.contains(&s));
        } else if let Some(list) = a.strip_prefix("-fno-sanitize=")
            && list.split(',').any(|s| s == "all" || ADDRESS.contains(&s))
        {
            on = false;
        }
    }
    on
}

/// Whether SOURCE_DATE_EPOCH is set in this compile's environment.
fn source_date_epoch_set() -> bool {
    std::env::var_os("SOURCE_DATE_EPOCH").is_some_and(|v| !v.is_empty())
}

/// The physical working directory (what stock sends as CDIR).
fn current_dir() -> Result<PathBuf> {
    std::env::current_dir().map_err(|e| Error::io("getcwd", e))
}
