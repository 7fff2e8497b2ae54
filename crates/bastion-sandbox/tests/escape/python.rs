//! python3 (RustPython in toolset/python) against the sandbox: its standard library works, and a
//! script cannot reach the network, host files, the server's environment, other programs, FFI or
//! anything outside its run directory, while runaway scripts end within the limits.
//!
//! Seccomp cannot see paths, so without Landlock nothing below the interpreter would keep a
//! script's `open("/etc/passwd")` in: there the launcher refuses to run at all, and every case
//! here checks that refusal instead (the suite's re-run without Landlock).

use bastion_sandbox::RunOutput;

use crate::harness::{landlock, run, run_with, sandbox, text};

const REFUSED: &str = "python3: refusing to run: files outside the run directory are readable \
                       here (no Landlock sandbox is in force)\n";

fn py(sb: &bastion_sandbox::SandboxDir, code: &str) -> RunOutput {
    run(sb, &["python3", "-c", code])
}

/// The run printed `stdout` and exited `code` with Landlock; without it, the launcher refused.
fn expect(out: &RunOutput, stdout: &str, code: i32) {
    if landlock() {
        assert_eq!(
            (text(&out.stdout), out.exit_code),
            (stdout, Some(code)),
            "stderr: {}",
            text(&out.stderr)
        );
    } else {
        assert_eq!(
            (text(&out.stdout), text(&out.stderr), out.exit_code),
            ("", REFUSED, Some(126))
        );
    }
}

const STDLIB: &str = r#"
import json, re, math, collections, itertools, functools, datetime, csv, statistics, string
import textwrap, random, hashlib, base64, io
print(json.dumps({"b": [1, 2.5, None], "a": True}, sort_keys=True))
print(re.findall(r"\d+", "a1b22c333"), math.isqrt(99), round(math.pi, 5))
print(collections.Counter("abracadabra").most_common(2))
print(list(itertools.accumulate([1, 2, 3, 4])), functools.reduce(lambda x, y: x * y, range(1, 6)))
print(datetime.date(2024, 2, 28) + datetime.timedelta(days=2))
rows = list(csv.reader(io.StringIO('x,"y, z"\n1,2\n')))
print(rows, statistics.mean([1, 2, 3, 4]), statistics.median([3, 1, 2]))
print(string.Template("$who ok").substitute(who="py"), textwrap.wrap("aaa bbb ccc", 7))
r = random.Random(7)
print(len([r.random() for _ in range(3)]), hashlib.sha256(b"abc").hexdigest()[:16])
print(base64.b64encode(b"bastion").decode())
"#;

#[test]
fn the_standard_library_modules_scripts_need_work() {
    let sb = sandbox("py-stdlib");
    expect(
        &py(&sb, STDLIB),
        "{\"a\": true, \"b\": [1, 2.5, null]}\n\
         ['1', '22', '333'] 9 3.14159\n\
         [('a', 5), ('b', 2)]\n\
         [1, 3, 6, 10] 120\n\
         2024-03-01\n\
         [['x', 'y, z'], ['1', '2']] 2.5 2\n\
         py ok ['aaa bbb', 'ccc']\n\
         3 ba7816bf8f01cfea\n\
         YmFzdGlvbg==\n",
        0,
    );
}

#[test]
fn a_program_runs_from_c_a_file_or_standard_input_with_its_arguments() {
    let sb = sandbox("py-modes");
    std::fs::write(sb.path().join("job.py"), "import sys\nprint(sys.argv)\n").unwrap();
    std::fs::write(sb.path().join("data.txt"), "in the run directory\n").unwrap();
    expect(
        &py(
            &sb,
            "import sys; print(sys.argv, open('data.txt').read().strip())",
        ),
        "['-c'] in the run directory\n",
        0,
    );
    expect(
        &run(&sb, &["python3", "job.py", "-i", "x"]),
        "['job.py', '-i', 'x']\n",
        0,
    );
    let out = run_with(
        &sb,
        &["python3", "-", "a"],
        10_000,
        1 << 20,
        b"import sys\nprint(sys.argv)\n",
    );
    expect(&out, "['-', 'a']\n", 0);
    expect(
        &py(
            &sb,
            "open('out.txt', 'w').write('kept'); raise SystemExit(3)",
        ),
        "",
        3,
    );
    if landlock() {
        assert_eq!(
            std::fs::read_to_string(sb.path().join("out.txt")).unwrap(),
            "kept"
        );
    }
}

#[test]
fn a_script_cannot_open_a_socket_or_use_ffi() {
    let sb = sandbox("py-net");
    let code = r#"
for name in ("socket", "ctypes", "_socket", "select", "mmap", "_posixsubprocess"):
    try:
        __import__(name)
        print(name, "imported")
    except ImportError as e:
        print(type(e).__name__, e)
"#;
    expect(
        &py(&sb, code),
        "ModuleNotFoundError No module named '_socket'\n\
         ModuleNotFoundError No module named '_ctypes'\n\
         ModuleNotFoundError No module named '_socket'\n\
         ModuleNotFoundError No module named 'select'\n\
         ModuleNotFoundError No module named 'mmap'\n\
         ModuleNotFoundError No module named '_posixsubprocess'\n",
        0,
    );
}

#[test]
fn a_script_cannot_read_host_files_or_leave_its_run_directory() {
    let sb = sandbox("py-files");
    let parent = sb.path().parent().unwrap().display().to_string();
    std::fs::write(sb.path().parent().unwrap().join("parent-secret"), "no").ok();
    let code = format!(
        r#"
import os
for path in ("/etc/passwd", "/proc/1/environ", "/proc/self/environ", "../parent-secret",
             "{parent}/parent-secret", "/root/.bashrc"):
    try:
        open(path).read()
        print("read", path)
    except OSError as e:
        print(type(e).__name__, e.errno)
for d in ("/", "..", "/etc", "/proc"):
    try:
        os.listdir(d)
        print("listed", d)
    except OSError as e:
        print(type(e).__name__, e.errno)
try:
    os.chdir("..")
    open("escaped", "w")
    print("wrote outside")
except OSError as e:
    print(type(e).__name__, e.errno)
"#
    );
    expect(
        &py(&sb, &code),
        "PermissionError 13\n\
         PermissionError 13\n\
         PermissionError 13\n\
         PermissionError 13\n\
         PermissionError 13\n\
         PermissionError 13\n\
         PermissionError 13\n\
         PermissionError 13\n\
         PermissionError 13\n\
         PermissionError 13\n\
         PermissionError 13\n",
        0,
    );
    let _ = std::fs::remove_file(sb.path().parent().unwrap().join("parent-secret"));
}

#[test]
fn os_environ_holds_only_the_clean_environment() {
    let sb = sandbox("py-env");
    let home = sb.path().display().to_string();
    expect(
        &py(&sb, "import os; print(sorted(os.environ.items()))"),
        &format!(
            "[('HOME', '{home}'), ('LANG', 'C.UTF-8'), ('PATH', '/usr/bin:/bin'), ('TMPDIR', '{home}')]\n"
        ),
        0,
    );
}

#[test]
fn a_script_cannot_start_a_process() {
    let sb = sandbox("py-proc");
    let code = r#"
import os
def attempt(name, f):
    try:
        print(name, f())
    except Exception as e:
        print(name, type(e).__name__, getattr(e, "errno", e))
attempt("system", lambda: os.system("echo escaped"))
attempt("fork", os.fork)
attempt("execv", lambda: os.execv("/bin/sh", ["sh", "-c", "echo escaped"]))
attempt("spawn", lambda: os.posix_spawn("/bin/sh", ["sh", "-c", "echo escaped"], {}))
attempt("subprocess", lambda: __import__("subprocess").run(["/bin/echo", "escaped"]))
attempt("popen", lambda: os.popen("echo escaped").read())
attempt("kill the server", lambda: os.kill(os.getppid(), 9))
attempt("setsid", os.setsid)
"#;
    // system and popen run /bin/sh through a spawn that fails (127: the shell never ran); the
    // rest fail at the call (ENOSYS, 38) or have no module to call.
    expect(
        &py(&sb, code),
        "system 32512\n\
         fork OSError 38\n\
         execv OSError 38\n\
         spawn OSError 38\n\
         subprocess ModuleNotFoundError No module named '_posixsubprocess'\n\
         popen ModuleNotFoundError No module named '_posixsubprocess'\n\
         kill the server OSError 38\n\
         setsid OSError 38\n",
        0,
    );
}

#[test]
fn runaway_scripts_end_within_the_limits_and_the_next_run_works() {
    let sb = sandbox("py-runaway");
    let bomb = py(&sb, "x = []\nwhile True:\n    x.append(bytearray(1 << 24))");
    let looped = run_with(
        &sb,
        &["python3", "-c", "while True: pass"],
        1_500,
        1 << 20,
        b"",
    );
    let forks = py(&sb, "import os\nwhile True:\n    os.fork()");
    if landlock() {
        // The allocator's failure under the 512 MiB address-space limit ends the process (abort
        // cannot raise SIGABRT: signals to itself are off the allow-list, so it faults).
        let stderr = text(&bomb.stderr);
        assert_eq!((bomb.exit_code, bomb.signal), (None, Some(11)), "{stderr}");
        assert!(
            stderr.starts_with("memory allocation of ") && stderr.contains(" bytes failed\n"),
            "{stderr}"
        );
        assert!(looped.timed_out);
        assert_eq!((looped.exit_code, looped.signal), (None, Some(9)));
        let stderr = text(&forks.stderr);
        assert_eq!((forks.exit_code, forks.signal), (Some(1), None), "{stderr}");
        assert!(
            stderr.ends_with("\nOSError: [Errno 38] Function not implemented\n"),
            "{stderr}"
        );
    }
    expect(&py(&sb, "print('still serving')"), "still serving\n", 0);
}
