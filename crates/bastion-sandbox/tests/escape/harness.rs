//! The escape suite's harness: one runner for the whole binary (Landlock hidden first in the
//! re-run without it), a fresh sandbox per test, and the checks every theme shares.

use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use bastion_sandbox::{
    ChildLimits, CommandPolicy, Layers, RunOutput, RunSpec, Runner, SandboxDir, Toolset,
    built_tools_dir, known_commands, remove_tree,
};
use bastion_sandbox::{PipelineSpec, Stage};

/// Set in the re-run of this suite that simulates a kernel without Landlock.
pub(crate) const WITHOUT_LANDLOCK_VAR: &str = "BASTION_ESCAPE_WITHOUT_LANDLOCK";

pub(crate) fn without_landlock() -> bool {
    std::env::var_os(WITHOUT_LANDLOCK_VAR).is_some()
}

/// Makes this process see a kernel without Landlock: the three Landlock system calls answer
/// `ENOSYS` on every thread (TSYNC), and every thread or child started later inherits that.
fn hide_landlock() {
    use seccompiler::{BpfProgram, SeccompAction, SeccompFilter, TargetArch};
    let rules = [
        libc::SYS_landlock_create_ruleset,
        libc::SYS_landlock_add_rule,
        libc::SYS_landlock_restrict_self,
    ]
    .into_iter()
    .map(|nr| (nr, Vec::new()))
    .collect();
    let arch = TargetArch::try_from(std::env::consts::ARCH).unwrap();
    let enosys = u32::try_from(libc::ENOSYS).unwrap();
    let filter = SeccompFilter::new(
        rules,
        SeccompAction::Allow,
        SeccompAction::Errno(enosys),
        arch,
    )
    .unwrap();
    let program: BpfProgram = filter.try_into().unwrap();
    seccompiler::apply_filter_all_threads(&program).unwrap();
}

pub(crate) struct World {
    pub(crate) root: PathBuf,
    pub(crate) runner: Runner,
    /// How many tests hold a sandbox; the root is created and removed under this lock, so one
    /// test's clean-up never removes the root another is about to create its sandbox in.
    live: Mutex<usize>,
}

pub(crate) fn world() -> &'static World {
    static W: OnceLock<World> = OnceLock::new();
    W.get_or_init(|| {
        if without_landlock() {
            hide_landlock();
        }
        let root = std::env::temp_dir().join(format!("bastion-escape-{}", std::process::id()));
        std::fs::create_dir_all(&root).unwrap();
        let layers = Layers::probe(&root);
        World {
            runner: Runner::new(layers, ChildLimits::default())
                .with_program_dir(&built_tools_dir()),
            root,
            live: Mutex::new(0),
        }
    })
}

/// One test's sandbox, removed when the test ends (pass or fail); the last one out removes the
/// suite's root too, so no `bastion-escape-<pid>` directory is left behind.
pub(crate) struct Sandbox {
    dir: SandboxDir,
    name: &'static str,
}

impl std::ops::Deref for Sandbox {
    type Target = SandboxDir;
    fn deref(&self) -> &SandboxDir {
        &self.dir
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        let w = world();
        let mut live = w.live.lock().unwrap_or_else(|e| e.into_inner());
        let _ = remove_tree(&w.root, self.name);
        *live -= 1;
        if *live == 0 {
            let _ = std::fs::remove_dir(&w.root);
        }
    }
}

/// A fresh sandbox for one test.
pub(crate) fn sandbox(name: &'static str) -> Sandbox {
    let w = world();
    let mut live = w.live.lock().unwrap_or_else(|e| e.into_inner());
    std::fs::create_dir_all(&w.root).unwrap();
    let _ = remove_tree(&w.root, name);
    let dir = SandboxDir::open_or_create(&w.root, name, w.runner.layers().openat2).unwrap();
    *live += 1;
    Sandbox { dir, name }
}

pub(crate) fn run_with(
    sb: &SandboxDir,
    argv: &[&str],
    timeout_ms: u64,
    hard_cap: u64,
    stdin: &[u8],
) -> RunOutput {
    let program = which(argv[0]);
    let argv: Vec<String> = argv.iter().map(|s| (*s).to_owned()).collect();
    let out = world()
        .runner
        .run(&RunSpec {
            program: &program,
            argv: &argv,
            stdin,
            sandbox: sb.path(),
            timeout: Duration::from_millis(timeout_ms),
            output_cap: 64 * 1024,
            output_hard_cap: hard_cap,
        })
        .unwrap();
    assert_group_gone(out.pgid);
    out
}

pub(crate) fn run(sb: &SandboxDir, argv: &[&str]) -> RunOutput {
    run_with(sb, argv, 10_000, 1 << 20, b"")
}

/// The toolset's program for a command exec allows (what production runs); the host's for the
/// programs no policy allows (sh, ln, env…), run here only to test the kernel layers.
pub(crate) fn which(name: &str) -> PathBuf {
    if let Some(p) = toolset().program(name) {
        return p;
    }
    ["/usr/bin", "/bin"]
        .iter()
        .map(|d| Path::new(d).join(name))
        .find(|p| p.is_file())
        .unwrap_or_else(|| panic!("{name} not installed"))
}

fn toolset() -> &'static Toolset {
    static T: OnceLock<Toolset> = OnceLock::new();
    T.get_or_init(|| Toolset::open(&built_tools_dir()).unwrap())
}

pub(crate) fn text(b: &[u8]) -> &str {
    std::str::from_utf8(b).unwrap()
}

/// No live process (zombies included) is left in the run's process group.
fn assert_group_gone(pgid: u32) {
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        let Some((_, rest)) = stat.rsplit_once(") ") else {
            continue;
        };
        let fields: Vec<&str> = rest.split(' ').collect();
        let (state, pgrp) = (fields[0], fields[2]);
        assert_ne!(
            pgrp,
            pgid.to_string(),
            "process {:?} (state {state}) of group {pgid} outlived the run",
            entry.file_name()
        );
    }
}

pub(crate) fn layers_on() -> &'static Layers {
    world().runner.layers()
}

pub(crate) fn landlock() -> bool {
    layers_on().landlock_abi.is_some()
}

/// The policy exec enforces, with every command it knows.
pub(crate) fn policy() -> &'static CommandPolicy {
    static P: OnceLock<CommandPolicy> = OnceLock::new();
    P.get_or_init(|| {
        let all: Vec<&str> = known_commands().collect();
        CommandPolicy::resolve(&all, toolset()).unwrap()
    })
}

/// The command policy refuses `argv`: without Landlock, it is what keeps it from the host.
pub(crate) fn assert_policy_refuses(argv: &[&str]) {
    let argv: Vec<String> = argv.iter().map(|s| (*s).to_owned()).collect();
    assert!(
        policy().check(&argv).is_err(),
        "{argv:?} passes the command policy"
    );
}

/// An argv that reaches outside the sandbox: the command policy refuses it on every kernel, and
/// where the kernel has Landlock, running it anyway is denied with `landlock_stderr`.
pub(crate) fn contained(sb: &SandboxDir, argv: &[&str], landlock_stderr: &str) {
    assert_policy_refuses(argv);
    if landlock() {
        let out = run(sb, argv);
        assert_eq!(text(&out.stderr), landlock_stderr, "{argv:?}");
        assert_ne!(out.exit_code, Some(0), "{argv:?}");
    }
}

/// Runs the pipeline `stages` (each an argv, programs found as [`which`] finds them) and checks
/// that no process of any stage's group outlived it.
pub(crate) fn run_pipeline_with(
    sb: &SandboxDir,
    stages: &[&[&str]],
    timeout_ms: u64,
    hard_cap: u64,
    stdin: &[u8],
) -> RunOutput {
    let programs: Vec<PathBuf> = stages.iter().map(|s| which(s[0])).collect();
    let argvs: Vec<Vec<String>> = stages
        .iter()
        .map(|s| s.iter().map(|w| (*w).to_owned()).collect())
        .collect();
    let stages: Vec<Stage<'_>> = programs
        .iter()
        .zip(&argvs)
        .map(|(program, argv)| Stage { program, argv })
        .collect();
    let out = world()
        .runner
        .run_pipeline(&PipelineSpec {
            stages: &stages,
            stdin,
            sandbox: sb.path(),
            timeout: Duration::from_millis(timeout_ms),
            output_cap: 64 * 1024,
            output_hard_cap: hard_cap,
        })
        .unwrap();
    assert_eq!(out.stages.len(), stages.len());
    for stage in &out.stages {
        assert_group_gone(stage.pgid);
    }
    out
}
