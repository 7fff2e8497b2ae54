//! Running a pipeline (`a | b | c`) without a shell: every stage spawned under the same layers
//! in the same run directory, each stage's standard output piped to the next one's input, the
//! caller's stdin to the first, the last one's stdout and every stage's stderr captured, and the
//! whole pipeline supervised, killed and reaped as one run. A single command is a one-stage
//! pipeline.
//!
//! Why one process group per stage and not one for all: every stage starts its own session
//! (`setsid`, so none keeps the server's), and the kernel lets a process join only a group of its
//! own session, so a later stage cannot join the first one's group. Each stage therefore leads
//! its own group, and "the group" of the run is that set of groups: every kill below sends
//! SIGKILL to each of them while every leader is still unreaped (no pid can be reused), and
//! seccomp keeps any process from leaving its group, as for one command.

use std::io;
use std::os::fd::OwnedFd;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::run::{RunError, RunOutput, RunSpec, Runner, Streams, supervise};
use crate::sys::{self, Ended};

/// One stage, already checked against the command policy.
#[derive(Debug, Clone, Copy)]
pub struct Stage<'a> {
    /// Absolute path of the program.
    pub program: &'a Path,
    /// argv; argv[0] is the bare command name.
    pub argv: &'a [String],
}

/// A pipeline run: [`RunSpec`] with one or more stages in place of the one program.
#[derive(Debug, Clone)]
pub struct PipelineSpec<'a> {
    pub stages: &'a [Stage<'a>],
    /// Sent to the first stage.
    pub stdin: &'a [u8],
    pub sandbox: &'a Path,
    /// For the whole pipeline.
    pub timeout: Duration,
    /// Bytes kept per stream (the last stage's stdout; every stage's stderr together).
    pub output_cap: usize,
    /// Bytes read across both streams after which the whole pipeline is killed.
    pub output_hard_cap: u64,
}

/// How one stage ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StageStatus {
    /// The stage's pid, which is its process group's id.
    pub pgid: u32,
    pub exit_code: Option<i32>,
    pub signal: Option<i32>,
}

/// The leaders of the stages started so far. Dropping it before [`Leaders::end`] (a later stage
/// failed to start) still kills and reaps them.
struct Leaders {
    pids: Vec<u32>,
}

impl Leaders {
    fn kill(&self) {
        for pid in &self.pids {
            sys::kill_group(*pid);
        }
    }

    /// Kills every group (while each leader is unreaped), then reaps the leaders and whatever
    /// else of the groups was adopted.
    fn end(mut self) -> Vec<io::Result<Ended>> {
        self.kill();
        let pids = std::mem::take(&mut self.pids);
        let ended = pids.iter().map(|pid| sys::reap(*pid)).collect();
        for pid in &pids {
            sys::reap_group(*pid);
        }
        ended
    }
}

impl Drop for Leaders {
    fn drop(&mut self) {
        if !self.pids.is_empty() {
            let _ = Leaders {
                pids: std::mem::take(&mut self.pids),
            }
            .end();
        }
    }
}

impl Runner {
    /// Runs every stage of `spec` to completion (or the deadline) and reaps every process they
    /// started; the exit status is the last stage's, as a POSIX shell's without `pipefail`.
    /// Blocks, and must be called as [`Runner::run`] is.
    pub fn run_pipeline(&self, spec: &PipelineSpec<'_>) -> Result<RunOutput, RunError> {
        let stages = spec.stages.len();
        if stages == 0 {
            return Err(RunError::Spawn(io::Error::from(
                io::ErrorKind::InvalidInput,
            )));
        }
        let start = Instant::now();
        let (leaders, streams) = self.spawn_stages(spec)?;
        let supervised = supervise(&leaders.pids, streams, spec, start);
        let pids = leaders.pids.clone();
        let ended = leaders.end();
        let s = supervised.map_err(RunError::Supervise)?;
        let mut statuses = Vec::with_capacity(stages);
        for (pgid, ended) in pids.into_iter().zip(ended) {
            let (exit_code, signal) = match ended.map_err(RunError::Supervise)? {
                Ended::Exited(c) => (Some(c), None),
                Ended::Signaled(s) => (None, Some(s)),
            };
            statuses.push(StageStatus {
                pgid,
                exit_code,
                signal,
            });
        }
        let last = statuses.last().copied();
        Ok(RunOutput {
            exit_code: last.and_then(|l| l.exit_code),
            signal: last.and_then(|l| l.signal),
            stdout_truncated: s.stdout.truncated,
            stderr_truncated: s.stderr.truncated,
            stdout: s.stdout.buf,
            stderr: s.stderr.buf,
            timed_out: s.timed_out,
            output_limit_exceeded: s.flood,
            duration: start.elapsed(),
            pgid: statuses.first().map_or(0, |f| f.pgid),
            stages: statuses,
        })
    }

    /// Starts the stages in order, each reading the previous one's output; answers the leaders
    /// and the ends of the pipes the server keeps: the first stage's stdin, the last one's
    /// stdout, and the read end of the stderr pipe every stage shares.
    fn spawn_stages(&self, spec: &PipelineSpec<'_>) -> Result<(Leaders, Streams), RunError> {
        let count = spec.stages.len();
        let (err_read, err_write) = io::pipe().map_err(RunError::Spawn)?;
        let mut leaders = Leaders { pids: Vec::new() };
        let mut stdin = None;
        let mut previous: Option<std::process::ChildStdout> = None;
        for (i, stage) in spec.stages.iter().enumerate() {
            let prep = Arc::new(self.prep(spec.sandbox, count)?);
            let mut cmd = Command::new(stage.program);
            if let Some(name) = stage.argv.first() {
                cmd.arg0(name);
            }
            cmd.args(stage.argv.iter().skip(1))
                .env_clear()
                .env("PATH", "/usr/bin:/bin")
                .env("HOME", spec.sandbox)
                .env("TMPDIR", spec.sandbox)
                .env("LANG", "C.UTF-8")
                .current_dir(spec.sandbox)
                .stdin(previous.take().map_or_else(Stdio::piped, Stdio::from))
                .stdout(Stdio::piped())
                .stderr(err_write.try_clone().map_err(RunError::Spawn)?);
            let mut child = sys::spawn_isolated(&mut cmd, prep).map_err(RunError::Spawn)?;
            // The pipe ends handed to the child are closed here with `cmd`: only the children
            // hold them, so each reader sees EOF once its writers are gone.
            drop(cmd);
            leaders.pids.push(child.id());
            if i == 0 {
                stdin = child.stdin.take().map(OwnedFd::from);
            }
            previous = child.stdout.take();
        }
        drop(err_write);
        let streams = Streams {
            stdin,
            stdout: previous.map(OwnedFd::from),
            stderr: Some(OwnedFd::from(err_read)),
        };
        Ok((leaders, streams))
    }
}

impl<'a> PipelineSpec<'a> {
    /// The one-stage pipeline that is `spec`.
    pub(crate) fn one(spec: &RunSpec<'a>, stage: &'a [Stage<'a>; 1]) -> Self {
        Self {
            stages: stage,
            stdin: spec.stdin,
            sandbox: spec.sandbox,
            timeout: spec.timeout,
            output_cap: spec.output_cap,
            output_hard_cap: spec.output_hard_cap,
        }
    }
}
