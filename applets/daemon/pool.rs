//! The worker threads that run compilers: `--jobs` of them, started once
//! and fed by a channel, so no thread is spawned per job. Each finished job
//! goes back to the event loop on a second channel, followed by a wake-up
//! of the loop's `Waker`.

use super::compiler::Config;
use super::jobdir::Slot;
use super::runner::{self, Outcome, Task};
use crossbeam_channel::{Receiver, Sender};
use std::sync::Arc;

/// The pool's sending side; dropping it lets the workers finish.
pub struct Pool {
    tasks: Sender<Task>,
    workers: Vec<std::thread::JoinHandle<()>>,
}

impl Pool {
    /// Starts `n` workers. Results go to `results`, then `wake` is called.
    pub fn start(
        n: usize,
        cfg: Arc<Config>,
        results: Sender<Outcome>,
        wake: Arc<dyn Fn() + Send + Sync>,
    ) -> std::io::Result<Pool> {
        let (tasks, rx): (Sender<Task>, Receiver<Task>) = crossbeam_channel::unbounded();
        let mut workers = Vec::with_capacity(n);
        // What a daemon killed without cleaning up left (jobdir.rs).
        super::jobdir::remove_orphans(&cfg.tmpdir);
        // Shared by the workers' pump trees; removed when the last one ends.
        let store = super::pump_store::Store::create(&cfg.tmpdir).map(Arc::new);
        for i in 0..n {
            let store = store.clone();
            let rx = rx.clone();
            let cfg = Arc::clone(&cfg);
            let results = results.clone();
            let wake = Arc::clone(&wake);
            workers.push(std::thread::Builder::new().name(format!("job-{i}")).spawn(
                move || {
                    let mut slot = Slot::with_store(store);
                    for task in rx.iter() {
                        let outcome = runner::run(task, &cfg, &mut slot);
                        if results.send(outcome).is_err() {
                            break;
                        }
                        wake();
                    }
                },
            )?);
        }
        Ok(Pool { tasks, workers })
    }

    /// Hands a task to the next free worker.
    pub fn submit(&self, task: Task) {
        if let Err(e) = self.tasks.send(task) {
            log::error!("worker pool is gone: job {} dropped", e.0.id);
        }
    }

    /// Stops accepting tasks and waits for the workers to finish theirs.
    pub fn join(self) {
        drop(self.tasks);
        for w in self.workers {
            let _ = w.join();
        }
    }
}
