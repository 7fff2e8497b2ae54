//! Running one command in a sandbox: spawn with every available layer, feed stdin, read stdout
//! and stderr concurrently under caps, kill the whole process group at the deadline or on a
//! flood, and reap everything before returning. The supervision here serves pipelines too
//! (see the child module `pipeline`, which spawns the stages).

use std::io::{self, Read, Write};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use rustix::event::{PollFd, PollFlags};
use rustix::process::Resource;
use std::path::{Path, PathBuf};

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::layers::{self, Layers};
use crate::sys::{self, ChildPrep};
use crate::syscalls;
use pipeline::{PipelineSpec, Stage, StageStatus};

pub mod pipeline;

/// Resource limits applied to every child.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChildLimits {
    pub cpu_secs: u64,
    pub address_space_bytes: u64,
    pub file_size_bytes: u64,
    pub open_files: u64,
    /// Per real user id. Ignored by the kernel for root (see SECURITY.md).
    pub processes: u64,
}

impl Default for ChildLimits {
    fn default() -> Self {
        Self {
            cpu_secs: 10,
            address_space_bytes: 512 * 1024 * 1024,
            file_size_bytes: 10 * 1024 * 1024,
            open_files: 64,
            processes: 16,
        }
    }
}

/// One run, already checked against the command policy.
#[derive(Debug, Clone)]
pub struct RunSpec<'a> {
    /// Absolute path of the program.
    pub program: &'a Path,
    /// argv; argv[0] is the bare command name.
    pub argv: &'a [String],
    pub stdin: &'a [u8],
    /// The caller's sandbox directory: working directory, HOME and TMPDIR.
    pub sandbox: &'a Path,
    pub timeout: Duration,
    /// Bytes kept per stream.
    pub output_cap: usize,
    /// Bytes read across both streams after which the run is killed.
    pub output_hard_cap: u64,
}

/// What a run produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunOutput {
    pub exit_code: Option<i32>,
    pub signal: Option<i32>,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
    pub stdout_truncated: bool,
    pub stderr_truncated: bool,
    pub timed_out: bool,
    /// The child wrote more than the hard cap and was killed.
    pub output_limit_exceeded: bool,
    pub duration: Duration,
    /// The process group the run lived in (the first stage's pid); empty once `run` returns.
    pub pgid: u32,
    /// How each stage ended, in order (one for a single command); the last one's status is
    /// `exit_code`/`signal`.
    pub stages: Vec<StageStatus>,
}

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("building the Landlock ruleset")]
    Landlock(#[source] layers::LandlockError),
    #[error("Landlock was available at start-up but no ruleset could be created")]
    LandlockGone,
    #[error("the seccomp allow-list is unavailable")]
    Seccomp,
    #[error("starting the isolated child")]
    Spawn(#[source] io::Error),
    #[error("supervising the child")]
    Supervise(#[source] io::Error),
}

/// Spawns isolated children. Built once; cheap to share.
#[derive(Debug, Clone)]
pub struct Runner {
    layers: Layers,
    limits: ChildLimits,
    /// The compiled allow-list, when the kernel has seccomp (`None` there otherwise).
    seccomp: Option<Arc<seccompiler::BpfProgram>>,
    /// Directories besides the system ones whose programs children may execute.
    program_dirs: Vec<PathBuf>,
}

impl Runner {
    /// Uses whichever layers `layers` says the kernel offers.
    pub fn new(layers: Layers, limits: ChildLimits) -> Self {
        let seccomp = if layers.seccomp {
            match syscalls::program() {
                Ok(p) => Some(Arc::new(p)),
                Err(e) => {
                    // Unreachable unless syscalls.rs is broken (its unit test compiles it);
                    // every run then fails rather than running unfiltered.
                    tracing::error!(error = %e, "seccomp allow-list does not compile");
                    None
                }
            }
        } else {
            None
        };
        Self {
            layers,
            limits,
            seccomp,
            program_dirs: Vec::new(),
        }
    }

    /// Lets children execute (and read) programs under `dir` as under the system directories:
    /// exec's toolset. Nothing else outside those is executable under Landlock.
    pub fn with_program_dir(mut self, dir: &Path) -> Self {
        self.program_dirs.push(dir.to_path_buf());
        self
    }

    pub fn layers(&self) -> &Layers {
        &self.layers
    }

    /// What a child applies to itself, for one of `stages` stages: the address-space limit is
    /// per process, so each stage gets its share and the pipeline stays within the one limit.
    pub(crate) fn prep(&self, sandbox: &Path, stages: usize) -> Result<ChildPrep, RunError> {
        let l = &self.limits;
        let address_space = l.address_space_bytes / u64::try_from(stages.max(1)).unwrap_or(1);
        if self.layers.seccomp && self.seccomp.is_none() {
            return Err(RunError::Seccomp);
        }
        let landlock = match self.layers.landlock_abi {
            Some(_) => {
                // Fail closed: the probe found Landlock, so a run without it is refused.
                let fd = layers::landlock_ruleset(sandbox, &self.program_dirs)
                    .map_err(RunError::Landlock)?;
                Some(fd.ok_or(RunError::LandlockGone)?)
            }
            None => None,
        };
        Ok(ChildPrep {
            rlimits: vec![
                (Resource::Cpu, l.cpu_secs),
                (Resource::As, address_space),
                (Resource::Fsize, l.file_size_bytes),
                (Resource::Nofile, l.open_files),
                (Resource::Nproc, l.processes),
                (Resource::Core, 0),
            ],
            drop_capabilities: self.layers.running_as_root,
            landlock,
            seccomp: self.seccomp.clone(),
        })
    }

    /// Runs `spec` to completion (or the deadline) and reaps every process it started. Blocks:
    /// call it from a blocking thread. Spawning, supervising and reaping all happen on the
    /// calling thread, which the child's parent-death signal is tied to, so that signal fires
    /// only when the server dies, never while the run is live.
    pub fn run(&self, spec: &RunSpec<'_>) -> Result<RunOutput, RunError> {
        let stage = [Stage {
            program: spec.program,
            argv: spec.argv,
        }];
        self.run_pipeline(&PipelineSpec::one(spec, &stage))
    }
}

pub(crate) struct Streams {
    pub(crate) stdin: Option<OwnedFd>,
    pub(crate) stdout: Option<OwnedFd>,
    pub(crate) stderr: Option<OwnedFd>,
}

/// One output stream: the first `cap` bytes are kept, the rest only counted.
pub(crate) struct Capture {
    fd: Option<std::fs::File>,
    pub(crate) buf: Vec<u8>,
    cap: usize,
    pub(crate) truncated: bool,
}

impl Capture {
    fn new(fd: Option<OwnedFd>, cap: usize) -> io::Result<Self> {
        if let Some(fd) = &fd {
            sys::set_nonblocking(fd.as_fd())?;
        }
        Ok(Self {
            fd: fd.map(std::fs::File::from),
            buf: Vec::with_capacity(cap.min(8192)),
            cap,
            truncated: false,
        })
    }

    /// Reads what is available; returns the bytes read (kept or not).
    fn read_available(&mut self, chunk: &mut [u8], budget: u64) -> io::Result<u64> {
        let mut total = 0u64;
        while let Some(f) = &mut self.fd {
            match f.read(chunk) {
                Ok(0) => self.fd = None,
                Ok(n) => {
                    let keep = n.min(self.cap - self.buf.len());
                    self.buf.extend_from_slice(&chunk[..keep]);
                    self.truncated |= keep < n;
                    total += n as u64;
                    if total > budget {
                        break;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(total)
    }
}

pub(crate) struct Supervised {
    pub(crate) stdout: Capture,
    pub(crate) stderr: Capture,
    /// Bytes read from both streams, kept or not.
    read_total: u64,
    pub(crate) timed_out: bool,
    pub(crate) flood: bool,
}

impl Supervised {
    fn outputs_closed(&self) -> bool {
        self.stdout.fd.is_none() && self.stderr.fd.is_none()
    }

    /// Reads what the ready streams hold (`[stdout, stderr]`), stdout first, each within what
    /// is left of `hard_cap`; true once more than `hard_cap` was read in all (a flood).
    fn read_ready(
        &mut self,
        [stdout, stderr]: [bool; 2],
        chunk: &mut [u8],
        hard_cap: u64,
    ) -> io::Result<bool> {
        if stdout {
            let budget = hard_cap.saturating_sub(self.read_total);
            self.read_total += self.stdout.read_available(chunk, budget)?;
        }
        if stderr {
            let budget = hard_cap.saturating_sub(self.read_total);
            self.read_total += self.stderr.read_available(chunk, budget)?;
        }
        Ok(self.read_total > hard_cap)
    }
}

/// The child's standard input: what is left of the bytes to send, written as the pipe takes
/// them.
struct Feed<'a> {
    pipe: Option<std::fs::File>,
    input: &'a [u8],
    written: usize,
}

impl<'a> Feed<'a> {
    /// With nothing to send, the write end is closed here, before the first poll: a reader of
    /// standard input (`sort`, `cat`) sees EOF at once instead of waiting for its deadline.
    fn open(fd: Option<OwnedFd>, input: &'a [u8]) -> io::Result<Self> {
        let pipe = match fd {
            Some(fd) if !input.is_empty() => {
                sys::set_nonblocking(fd.as_fd())?;
                Some(std::fs::File::from(fd))
            }
            Some(fd) => {
                drop(fd);
                None
            }
            None => None,
        };
        Ok(Self {
            pipe,
            input,
            written: 0,
        })
    }

    fn fd(&self) -> Option<BorrowedFd<'_>> {
        self.pipe.as_ref().map(AsFd::as_fd)
    }

    /// Writes what the pipe takes now; closes it once everything is sent.
    fn write_some(&mut self) {
        let Some(f) = &mut self.pipe else {
            return;
        };
        match f.write(&self.input[self.written..]) {
            Ok(n) => self.written += n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            // The child closed its end (EPIPE): it does not want the rest.
            Err(_) => self.written = self.input.len(),
        }
        if self.written >= self.input.len() {
            self.pipe = None;
        }
    }
}

/// Relays the children's streams until every stage (`leaders`) has exited and both outputs are
/// closed, the deadline passes, or the output floods past the hard cap.
pub(crate) fn supervise(
    leaders: &[u32],
    s: Streams,
    spec: &PipelineSpec<'_>,
    start: Instant,
) -> io::Result<Supervised> {
    let deadline = start + spec.timeout;
    let mut stdin = Feed::open(s.stdin, spec.stdin)?;
    let pidfds = leaders
        .iter()
        .map(|pid| sys::pidfd_open(*pid))
        .collect::<io::Result<Vec<_>>>()?;
    let mut exited = vec![false; leaders.len()];
    let mut chunk = vec![0u8; 16 * 1024];
    let mut result = Supervised {
        stdout: Capture::new(s.stdout, spec.output_cap)?,
        stderr: Capture::new(s.stderr, spec.output_cap)?,
        read_total: 0,
        timed_out: false,
        flood: false,
    };
    loop {
        let all_exited = exited.iter().all(|e| *e);
        if all_exited && result.outputs_closed() {
            break;
        }
        let now = Instant::now();
        if now >= deadline {
            result.timed_out = !all_exited;
            break;
        }
        let mut watched = vec![
            (result.stdout.fd.as_ref().map(AsFd::as_fd), PollFlags::IN),
            (result.stderr.fd.as_ref().map(AsFd::as_fd), PollFlags::IN),
            (stdin.fd(), PollFlags::OUT),
        ];
        for (fd, gone) in pidfds.iter().zip(&exited) {
            watched.push(((!gone).then(|| fd.as_fd()), PollFlags::IN));
        }
        let ready = poll_ready(&watched, poll_timeout(deadline - now))?;
        drop(watched);
        if result.read_ready([ready[0], ready[1]], &mut chunk, spec.output_hard_cap)? {
            result.flood = true;
            break;
        }
        if ready[2] {
            stdin.write_some();
        }
        for (stage, pid) in leaders.iter().enumerate() {
            if ready[3 + stage] {
                exited[stage] = true;
                // A descendant still holding the pipes must not keep the run open.
                sys::kill_group(*pid);
            }
        }
    }
    Ok(result)
}

/// The poll timeout for `remaining` until the deadline: whole milliseconds, at least one.
fn poll_timeout(remaining: Duration) -> i32 {
    i32::try_from(remaining.as_millis())
        .unwrap_or(i32::MAX)
        .max(1)
}

/// Which of the `watched` descriptors (an absent one never) had an event within `wait_ms`.
fn poll_ready(
    watched: &[(Option<BorrowedFd<'_>>, PollFlags)],
    wait_ms: i32,
) -> io::Result<Vec<bool>> {
    let mut slots = vec![usize::MAX; watched.len()];
    let mut fds: Vec<PollFd<'_>> = Vec::with_capacity(watched.len());
    for (slot, (fd, events)) in watched.iter().enumerate() {
        if let Some(fd) = fd {
            slots[slot] = fds.len();
            fds.push(PollFd::from_borrowed_fd(*fd, *events));
        }
    }
    sys::poll(&mut fds, wait_ms)?;
    let mut ready = vec![false; watched.len()];
    for (slot, at) in slots.iter().enumerate() {
        ready[slot] = *at != usize::MAX && !fds[*at].revents().is_empty();
    }
    Ok(ready)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_poll_timeout_is_whole_milliseconds_and_never_zero() {
        assert_eq!(poll_timeout(Duration::from_micros(300)), 1);
        assert_eq!(poll_timeout(Duration::from_micros(2_900)), 2);
        assert_eq!(poll_timeout(Duration::from_secs(10)), 10_000);
        assert_eq!(poll_timeout(Duration::from_secs(u64::MAX)), i32::MAX);
    }
}
