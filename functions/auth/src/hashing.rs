//! Password hashing on a fixed set of threads, one per core, shared by the whole process.
//!
//! Argon2id needs 19 MiB of working memory per hash. On tokio's blocking pool a burst of logins
//! starts threads of its own, each allocating that memory afresh, and runs more hashes at once
//! than there are cores. Measured on `bastion-local` under the login load bench: about 2,400
//! page faults and 3 ms of kernel time per login, 1.5 GB resident afterwards, and logins at
//! 79–81 % of raw Argon2id throughput. Here the threads stay, so the allocator hands each the
//! memory it freed after its last hash, hashes beyond the core count wait their turn, and
//! resident memory stays at one working set per core.

use std::sync::mpsc::{Receiver, Sender, channel};
use std::sync::{Arc, Mutex, OnceLock};

use bastion_http::{ApiError, ErrorKind};

type Job = Box<dyn FnOnce() + Send>;

/// Runs `work` on the hashing threads and waits for its result without blocking the runtime.
pub async fn run<R: Send + 'static>(
    work: impl FnOnce() -> R + Send + 'static,
) -> Result<R, ApiError> {
    let (done, result) = tokio::sync::oneshot::channel();
    let job: Job = Box::new(move || {
        // The request may have gone away meanwhile; its result is then dropped.
        let _ = done.send(work());
    });
    jobs()?
        .send(job)
        .map_err(|_| gone("the hashing threads have stopped"))?;
    result
        .await
        .map_err(|_| gone("a hashing thread stopped before answering"))
}

fn jobs() -> Result<&'static Sender<Job>, ApiError> {
    static JOBS: OnceLock<Result<Sender<Job>, String>> = OnceLock::new();
    JOBS.get_or_init(start)
        .as_ref()
        .map_err(|e| gone(&format!("cannot start the hashing threads: {e}")))
}

fn start() -> Result<Sender<Job>, String> {
    let threads = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
    let (sender, receiver) = channel::<Job>();
    let receiver = Arc::new(Mutex::new(receiver));
    for i in 0..threads {
        let receiver = receiver.clone();
        std::thread::Builder::new()
            .name(format!("argon2-{i}"))
            .spawn(move || work_loop(&receiver))
            .map_err(|e| e.to_string())?;
    }
    Ok(sender)
}

fn work_loop(receiver: &Mutex<Receiver<Job>>) {
    loop {
        // The lock is held only while waiting for the next job, never while running one.
        let next = match receiver.lock() {
            Ok(r) => r.recv(),
            Err(_) => return,
        };
        match next {
            Ok(job) => job(),
            Err(_) => return,
        }
    }
}

fn gone(why: &str) -> ApiError {
    ApiError::new(ErrorKind::Internal, "internal error").with_log(why.to_owned())
}

#[cfg(test)]
mod tests {
    use super::run;

    #[tokio::test]
    async fn work_runs_on_the_named_hashing_threads_and_its_result_comes_back() {
        let name = run(|| std::thread::current().name().map(str::to_owned))
            .await
            .unwrap();
        assert!(name.unwrap().starts_with("argon2-"));
    }

    #[tokio::test]
    async fn no_more_hashes_run_at_once_than_there_are_cores() {
        use std::sync::Arc;
        use std::sync::atomic::{AtomicUsize, Ordering};
        let cores = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
        let running = Arc::new(AtomicUsize::new(0));
        let most = Arc::new(AtomicUsize::new(0));
        let jobs: Vec<_> = (0..4 * cores + 4)
            .map(|_| {
                let (running, most) = (running.clone(), most.clone());
                tokio::spawn(run(move || {
                    let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                    most.fetch_max(now, Ordering::SeqCst);
                    std::thread::sleep(std::time::Duration::from_millis(20));
                    running.fetch_sub(1, Ordering::SeqCst);
                }))
            })
            .collect();
        for job in jobs {
            job.await.unwrap().unwrap();
        }
        // Unbounded (tokio's blocking pool), all of them would overlap.
        let most = most.load(Ordering::SeqCst);
        assert!(
            (1..=cores).contains(&most),
            "{most} at once on {cores} cores"
        );
    }

    #[tokio::test]
    async fn more_jobs_than_threads_all_complete() {
        let jobs: Vec<_> = (0..32_u32)
            .map(|i| tokio::spawn(run(move || i * 2)))
            .collect();
        for (i, job) in (0_u32..).zip(jobs) {
            assert_eq!(job.await.unwrap().unwrap(), i * 2);
        }
    }
}
