//! Running one job on a worker thread: job directory, source or pump tree,
//! the compiler in its own process group, and the encoded reply
//! (facts §5.2, §1.6).
//!
//! The event loop may end a job at any time (client gone, `--job-lifetime`)
//! through its [`JobControl`]: it signals the compiler's process group.
//! `process.rs` waits for the compiler with `waitid(WNOWAIT)` and clears the
//! group under the lock before reaping it, so the loop can never signal a
//! process group id that was already reused.

use super::compiler::{Checked, Config};
use super::jobdir::Slot;
use super::line_prefix;
use super::process;
use super::reply;
use super::rewrite;
use super::spliced::SplicedSource;
use distcc::protocol::{Body, Version};
use distcc::{Error, Kind, Result, compress};
use std::ffi::OsString;
use std::os::unix::ffi::OsStrExt;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::{Duration, Instant};

/// Why the loop ended a job.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stop {
    /// The client closed its connection (CLI_DISCONN).
    ClientGone = 1,
    /// `--job-lifetime` passed (COMPILE_TIMEOUT, STAT 118<<8).
    Lifetime = 2,
    /// The daemon is shutting down.
    Shutdown = 3,
}

/// Shared between the loop and the worker running a job.
#[derive(Debug, Default)]
pub struct JobControl {
    pub(super) group: Mutex<Option<i32>>,
    stop: AtomicU8,
}

impl JobControl {
    /// Records why the job is ended (the first reason wins) and sends `sig`
    /// to the compiler's process group if it is running.
    pub fn stop(&self, why: Stop, sig: i32) {
        let _ = self
            .stop
            .compare_exchange(0, why as u8, Ordering::SeqCst, Ordering::SeqCst);
        let group = self.group.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(pg) = *group {
            // SAFETY: the group leader is not reaped while we hold the lock
            // (see module docs), so `pg` is still our compiler's group.
            unsafe { libc::kill(-pg, sig) };
        }
    }

    /// Why the job was ended, if it was.
    pub fn stopped(&self) -> Option<Stop> {
        match self.stop.load(Ordering::SeqCst) {
            1 => Some(Stop::ClientGone),
            2 => Some(Stop::Lifetime),
            3 => Some(Stop::Shutdown),
            _ => None,
        }
    }
}

/// A job ready to run.
pub struct Task {
    pub id: usize,
    pub version: Version,
    pub cwd: Option<Vec<u8>>,
    pub checked: Checked,
    pub body: Body,
    /// A plain source received into pipes (`spliced`): the body then holds
    /// only the bytes that came before, already in the first pipe.
    pub spliced: Option<super::spliced::SplicedSource>,
    pub control: std::sync::Arc<JobControl>,
}

/// The job result categories of stock's summary line and stats page.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum JobResult {
    CompileOk,
    CompileError,
    CompileTimeout,
    CliDisconn,
    Other,
}

impl JobResult {
    /// Stock's name in the log.
    pub fn name(self) -> &'static str {
        match self {
            JobResult::CompileOk => "COMPILE_OK",
            JobResult::CompileError => "COMPILE_ERROR",
            JobResult::CompileTimeout => "COMPILE_TIMEOUT",
            JobResult::CliDisconn => "CLI_DISCONN",
            JobResult::Other => "OTHER",
        }
    }
}

/// What a worker hands back.
pub struct Outcome {
    pub id: usize,
    /// The encoded reply (None: nothing to send, close).
    pub reply: Option<reply::Reply>,
    pub result: JobResult,
    /// The wait status sent in STAT.
    pub status: i32,
    pub elapsed: Duration,
    pub compiler: String,
    pub input: String,
    /// Why it failed, for the log.
    pub error: Option<String>,
}

/// Runs a task to completion in a directory from `slot`. Never panics on
/// client input.
pub fn run(mut task: Task, cfg: &Config, slot: &mut Slot) -> Outcome {
    let start = Instant::now();
    let compiler = task.checked.argv[0].to_string_lossy().into_owned();
    let input = task.checked.argv[task.checked.shape.input]
        .to_string_lossy()
        .into_owned();
    let id = task.id;
    let body = std::mem::replace(&mut task.body, Body::Doti(Vec::new()));
    let spliced = task.spliced.take();
    let (reply, result, status, error) = match execute(&task, body, spliced, cfg, slot) {
        Ok((status, reply)) => {
            let result = match task.control.stopped() {
                Some(Stop::ClientGone) | Some(Stop::Shutdown) => JobResult::CliDisconn,
                Some(Stop::Lifetime) => JobResult::CompileTimeout,
                None if status == 0 => JobResult::CompileOk,
                None => JobResult::CompileError,
            };
            let reply = (result != JobResult::CliDisconn).then_some(reply);
            (reply, result, status, None)
        }
        Err(e) => (None, JobResult::Other, 0, Some(e.to_string())),
    };
    Outcome {
        id,
        reply,
        result,
        status,
        elapsed: start.elapsed(),
        compiler,
        input,
        error,
    }
}

fn execute(
    task: &Task,
    body: Body,
    spliced: Option<SplicedSource>,
    cfg: &Config,
    slot: &mut Slot,
) -> Result<(i32, reply::Reply)> {
    let dir = slot.take(&cfg.tmpdir, cfg.save_temps)?;
    let mut tree = None;
    let result = execute_in(task, body, spliced, cfg, &dir, slot, &mut tree);
    slot.give_back(dir, tree);
    result
}

/// The traits of the task's compiler (traits.rs); an error when the job
/// was stopped while the compiler was being probed.
fn compiler_traits(cfg: &Config, task: &Task) -> Result<super::traits::Traits> {
    let stopped = || task.control.stopped().is_some();
    cfg.compilers
        .of(
            &task.checked.argv[0],
            cfg.path.as_deref(),
            &cfg.safeguard,
            &stopped,
        )
        .ok_or_else(|| Error::new(Kind::Io, "job ended before the compiler started"))
}

/// Writes a file DISTCC_SAVE_TEMPS keeps; a failure is only logged.
fn save_temp(path: &std::path::Path, bytes: &[u8]) {
    if let Err(e) = std::fs::write(path, bytes) {
        log::warn!("DISTCC_SAVE_TEMPS: cannot write {}: {e}", path.display());
    }
}

/// Whether the job's source goes to the compiler on stdin (so that it may
/// be received into pipes, see `spliced`).
pub fn source_goes_to_stdin(checked: &Checked) -> bool {
    super::language::stdin_language(&checked.argv, checked.shape.input).is_some()
}

/// Runs the job in `dir`; a pump job's tree is handed back in `tree_out`
/// once it is sound (synced), so that the next job can reuse it.
fn execute_in(
    task: &Task,
    body: Body,
    spliced: Option<SplicedSource>,
    cfg: &Config,
    dir: &super::jobdir::JobDir,
    slot: &mut Slot,
    tree_out: &mut Option<super::pump_root::Tree>,
) -> Result<(i32, reply::Reply)> {
    let output = dir.join("out.o");
    let deps = dir.join("deps.d");
    let shape = &task.checked.shape;
    let mut stdin = None;
    let mut spliced = spliced;
    let mut strip_line = false;
    let (command, cwd, root) = match body {
        Body::Doti(wire) => {
            let data = if task.version.compresses() {
                let mut buffer = slot.take_source_buffer();
                compress::decompress_into(&wire, cfg.max_decompressed, &mut buffer)?;
                buffer
            } else {
                wire
            };
            let source = &task.checked.argv[shape.input];
            let ext = distcc::args::extensions::preprocessed_extension(source);
            // The source goes to the compiler on stdin when its language is
            // known: no file to create and delete (ext4 inode churn was most
            // of the daemon's own CPU). Otherwise it is written as in.<ext>.
            let input_path = dir.join(&format!("in.{ext}"));
            if cfg.save_temps {
                // Kept for the admin, as stock keeps its distccd_*.i.
                save_temp(&input_path, &data);
            }
            let source_arg = match super::language::stdin_language(&task.checked.argv, shape.input)
            {
                Some(lang) => {
                    stdin = Some(data);
                    rewrite::Source::Stdin(lang)
                }
                // Only sources for stdin are spliced (connection.rs).
                None if spliced.is_some() => {
                    return Err(Error::new(
                        Kind::Io,
                        "spliced source without a stdin language",
                    ));
                }
                None => {
                    std::fs::write(&input_path, &data)
                        .map_err(|e| Error::io("writing the source", e))?;
                    rewrite::Source::Path(&input_path)
                }
            };
            let from_stdin = matches!(source_arg, rewrite::Source::Stdin(_));
            let mut cmd =
                rewrite::build(&task.checked.argv, shape, source_arg, &output, &deps, None);
            // Clang takes the name of a source read from stdin to be `-`
            // (GCC takes the line marker's) in debug information and in PGO
            // counter names of static functions: it is given the name a
            // file would have. (Not in an Objective-C module name, which it
            // takes from the file it reads: that stays `<stdin>`. Clang also
            // expands its predefined macros in preprocessed input, so a
            // source that #undefs `linux` and uses the name fails here as
            // with stock and is retried locally: `-undef` would fix that but
            // break the `#pragma pack`/`unroll` arguments `clang -E` leaves
            // unexpanded.)
            let clang = from_stdin
                && match super::traits::clang_by_name(&task.checked.argv[0], cfg.path.as_deref()) {
                    Some(known) => known,
                    None => compiler_traits(cfg, task)?.clang,
                };
            if clang {
                let name = super::traits::main_file_name(stdin.as_deref(), source);
                cmd.argv.extend([
                    "-Xclang".into(),
                    "-main-file-name".into(),
                    "-Xclang".into(),
                    name,
                ]);
            }
            (cmd, dir.path().to_path_buf(), None)
        }
        Body::Files(entries) => {
            let source = task.checked.argv[shape.input].as_bytes();
            if source.starts_with(b"@") {
                // Kept as it is, the word would name a response file here.
                return Err(Error::new(
                    Kind::BadArguments,
                    format!(
                        "argument {:?} refused: a source named with a leading @ is read as a response file in pump mode",
                        String::from_utf8_lossy(source)
                    ),
                ));
            }
            let mut tree = slot.take_tree(dir)?;
            let cdir = task.cwd.as_deref().unwrap_or(b"/");
            // Files without the include server's #line keep the compiler's
            // multiple-include optimisation (line_prefix.rs).
            let maps_macros = compiler_traits(cfg, task)?.macro_prefix_map;
            strip_line = maps_macros
                && !line_prefix::has_own_map(&task.checked.argv)
                && !line_prefix::records_source_locations(&task.checked.argv);
            // A tree that failed to sync is dropped: the next job starts empty.
            let budget = cfg.max_decompressed;
            let cwd = tree.sync(cdir, &entries, budget, slot.store(), strip_line)?;
            drop(entries);
            let root = tree.path().to_path_buf();
            *tree_out = Some(tree);
            let mut cmd = rewrite::build(
                &task.checked.argv,
                shape,
                rewrite::Source::Client,
                &output,
                &deps,
                Some(&root),
            );
            if maps_macros {
                // The root mapped away from `__FILE__` and from the debug
                // information, as a local compile names them: the object
                // is the local one byte for byte (the in-place rewrite
                // below pads the root with slashes instead, which gdb reads
                // alike but a comparison of objects does not), and
                // assembler text, which nothing rewrites, names the
                // client's paths. Neither compiler records these options
                // in the object.
                for option in ["-fmacro-prefix-map=", "-fdebug-prefix-map="] {
                    let mut map = OsString::from(option);
                    map.push(root.as_os_str());
                    map.push("=");
                    cmd.argv.push(map);
                }
            }
            // Clang's coverage mapping names the client's directory.
            cmd.argv
                .extend(line_prefix::coverage_maps(&task.checked.argv, cdir, &root));
            // The client's own maps, made to match under the root.
            cmd.argv
                .extend(line_prefix::rerooted_maps(&task.checked.argv, &root));
            (cmd, cwd, Some(root))
        }
    };
    if task.control.stopped().is_some() {
        return Err(Error::new(
            Kind::Io,
            "job ended before the compiler started",
        ));
    }
    let ran = process::run(
        &command.argv,
        &cwd,
        dir.path(),
        match (spliced.take(), stdin.as_deref()) {
            // The bytes in the body are already in the first pipe.
            (Some(source), _) => process::Input::Spliced(source),
            (None, Some(data)) => process::Input::Bytes(data),
            (None, None) => process::Input::Null,
        },
        cfg,
        &task.control,
    )?;
    // The compiler's group is gone: the source's pages are no longer lent.
    if let Some(data) = stdin.take() {
        slot.give_back_source_buffer(data);
    }
    if cfg.save_temps {
        save_temp(&dir.join("stderr.txt"), &ran.stderr);
        save_temp(&dir.join("stdout.txt"), &ran.stdout);
    }
    let mut status = ran.status;
    let mut stderr = ran.stderr;
    if strip_line && let Some(root) = &root {
        stderr = line_prefix::unroot_messages(&stderr, root.as_os_str().as_bytes());
    }
    let stdout = ran.stdout;
    if task.control.stopped() == Some(Stop::Lifetime) {
        status = i32::from(Kind::Timeout.exit_code()) << 8;
        stderr.extend_from_slice(
            format!(
                "distccd[{}] ERROR: compilation exceeded --job-lifetime, killed\n",
                std::process::id()
            )
            .as_bytes(),
        );
    }
    let mut object = reply::Object::None;
    let mut dotd = None;
    if status == 0 {
        object = reply::Object::File(&output);
        if let Some(root) = &root {
            let root_bytes = root.as_os_str().as_bytes();
            let mut bytes = std::fs::read(&output).unwrap_or_default();
            // Where the compiler took no prefix map (GCC before 8, Clang
            // before 10), and for anything a map does not reach.
            distcc::debuginfo::rewrite_root(&mut bytes, root_bytes);
            object = reply::Object::Bytes(bytes);
            let raw = std::fs::read(&deps).unwrap_or_default();
            let target = command.dotd_target.as_deref().unwrap_or(b"");
            dotd = Some(distcc::dotd_rewrite::rewrite(
                &raw,
                output.as_os_str().as_bytes(),
                target,
                root_bytes,
            ));
        }
    }
    let built = reply::build(
        task.version.0,
        status,
        task.version.compresses(),
        &stderr,
        &stdout,
        object,
        dotd.as_deref(),
    )?;
    // An object to be sent from its file is gone from the job directory
    // now: the next job there (perhaps before the loop has sent it all)
    // writes a new file, never into this one.
    // (A DISTCC_SAVE_TEMPS directory serves one job only: it keeps it.)
    if built.file.is_some() && !cfg.save_temps {
        let _ = std::fs::remove_file(&output);
    }
    Ok((status, built))
}
