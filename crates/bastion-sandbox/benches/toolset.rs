//! Bench binary for the agent's toolset under the sandbox runner with every layer this host
//! offers: `grep -r` over 1,000 files and one line each of sed, awk, jq and (when the toolset
//! has it) python3, each cold (the program's and the data's pages dropped from the page cache
//! first) and warm. Run with `cargo bench -p bastion-sandbox --bench toolset` after
//! `scripts/toolset`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::fs::File;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use bastion_sandbox::{ChildLimits, Layers, RunSpec, Runner, SandboxDir, built_tools_dir};

/// Files for `grep -r`: 1,000 of them, 100 per directory, about 1 KiB each.
const FILES: usize = 1_000;
const WARM_RUNS: usize = 21;

/// Asks the kernel to forget the cached pages of `path` (every file under it, for a
/// directory), so the next run reads them from disk as a first run after deployment would.
fn drop_pages(path: &Path) {
    if path.is_dir() {
        for entry in std::fs::read_dir(path).unwrap() {
            drop_pages(&entry.unwrap().path());
        }
        return;
    }
    let file = File::open(path).unwrap();
    file.sync_all().unwrap();
    rustix::fs::fadvise(&file, 0, None, rustix::fs::Advice::DontNeed).unwrap();
}

fn fill(dir: &Path) {
    for d in 0..FILES / 100 {
        let sub = dir.join(format!("src/d{d:02}"));
        std::fs::create_dir_all(&sub).unwrap();
        for f in 0..100 {
            let mut text = String::new();
            for line in 0..16 {
                let word = if (d * 100 + f + line) % 97 == 0 {
                    "needle"
                } else {
                    "hay"
                };
                text.push_str(&format!(
                    "line {line} of file {f} in d{d}: {word} and more text\n"
                ));
            }
            std::fs::write(sub.join(format!("f{f:03}.txt")), text).unwrap();
        }
    }
    std::fs::write(dir.join("data.json"), r#"{"items":[1,2,3],"name":"bench"}"#).unwrap();
}

struct Case {
    name: &'static str,
    argv: &'static [&'static str],
    /// The first bytes the run must print, so a bench never times a failing program.
    expect: &'static str,
}

const CASES: &[Case] = &[
    Case {
        name: "grep -r over 1,000 files",
        argv: &["grep", "-r", "-c", "needle", "src"],
        expect: "src/",
    },
    Case {
        name: "sed -n 1p",
        argv: &["sed", "-n", "1p", "src/d00/f000.txt"],
        expect: "line 0 of file 0",
    },
    Case {
        name: "awk '{n++} END {print n}'",
        argv: &["awk", "{n++} END {print n}", "src/d00/f000.txt"],
        expect: "16\n",
    },
    Case {
        name: "jq -c .items",
        argv: &["jq", "-c", ".items", "data.json"],
        expect: "[1,2,3]\n",
    },
    Case {
        name: "python3 -c 'print(1)'",
        argv: &["python3", "-c", "print(1)"],
        expect: "1\n",
    },
];

fn run_once(runner: &Runner, program: &Path, argv: &[String], dir: &Path) -> (Duration, Vec<u8>) {
    let t = Instant::now();
    let out = runner
        .run(&RunSpec {
            program,
            argv,
            stdin: b"",
            sandbox: dir,
            timeout: Duration::from_secs(30),
            output_cap: 1 << 20,
            output_hard_cap: 4 << 20,
        })
        .unwrap();
    (t.elapsed(), out.stdout)
}

fn bench(runner: &Runner, tools: &Path, dir: &Path, case: &Case) {
    let program: PathBuf = tools.join(case.argv[0]);
    if !program.exists() {
        println!("{:<34} not in this toolset", case.name);
        return;
    }
    let argv: Vec<String> = case.argv.iter().map(|s| (*s).to_owned()).collect();
    drop_pages(&std::fs::canonicalize(&program).unwrap());
    drop_pages(dir);
    let (cold, out) = run_once(runner, &program, &argv, dir);
    let text = String::from_utf8_lossy(&out);
    assert!(text.starts_with(case.expect), "{}: {text}", case.name);
    let mut warm: Vec<Duration> = (0..WARM_RUNS)
        .map(|_| run_once(runner, &program, &argv, dir).0)
        .collect();
    warm.sort();
    println!(
        "{:<34} cold={:>9.1?} warm p50={:>9.1?} p95={:>9.1?} (n={WARM_RUNS})",
        case.name,
        cold,
        warm[WARM_RUNS / 2],
        warm[WARM_RUNS * 95 / 100]
    );
}

fn main() {
    let tools = built_tools_dir();
    let root = std::env::temp_dir().join(format!("bastion-toolset-bench-{}", std::process::id()));
    std::fs::create_dir_all(&root).unwrap();
    let layers = Layers::probe(&root);
    println!("layers: {:?}", layers.named());
    let runner = Runner::new(layers.clone(), ChildLimits::default()).with_program_dir(&tools);
    let dir = SandboxDir::open_or_create(&root, "bench", layers.openat2).unwrap();
    fill(dir.path());
    for case in CASES {
        bench(&runner, &tools, dir.path(), case);
    }
    std::fs::remove_dir_all(&root).unwrap();
}
