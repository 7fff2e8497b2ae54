//! python3 for the exec sandbox: RustPython 0.6.0 with its standard library frozen into the
//! binary, started only inside the runner's Landlock sandbox, with process creation and sockets
//! cut off and the native modules that reach the host (FFI, sockets, subprocesses, shared
//! memory, raw descriptors) left out.

mod args;
mod confine;

use std::io::Read;
use std::process::ExitCode;

use args::Program;
use rustpython::InterpreterBuilderExt;
use rustpython::vm::{PyResult, VirtualMachine, common::rc::PyRc};

/// Native modules removed before the interpreter starts: importing one fails as if it had never
/// been built. FFI would bypass every check below the interpreter; the rest open sockets, start
/// processes, map or share memory, or act on raw descriptors and terminals.
const DENIED_MODULES: &[&str] = &[
    "_ctypes",
    "_socket",
    "_posixsubprocess",
    "_multiprocessing",
    "_posixshmem",
    "_remote_debugging",
    "_testconsole",
    "_testinternalcapi",
    "fcntl",
    "grp",
    "mmap",
    "pwd",
    "resource",
    "select",
    "termios",
];

fn main() -> ExitCode {
    let program = match args::parse(std::env::args().skip(1).collect()) {
        Ok(p) => p,
        Err(e) => return fail(&e, 2),
    };
    // The program is read before the checks below (a FILE the policy has already held to the
    // run directory): nothing of it runs or is printed unless they pass, and the differential
    // test sees the launcher open the file the policy reads as one.
    let (source, argv) = match load(program) {
        Ok(x) => x,
        Err(e) => return fail(&e, 2),
    };
    if let Err(e) = confine::require_landlock().and_then(|()| confine::deny_processes_and_sockets())
    {
        return fail(&e, 126);
    }
    let mut settings = rustpython::vm::Settings::default();
    settings.argv = argv;
    settings.ignore_environment = true;
    settings.user_site_directory = false;
    settings.write_bytecode = false;
    let interp = rustpython::InterpreterBuilder::new()
        .settings(settings)
        .init_stdlib()
        .init_hook(deny_modules)
        .interpreter();
    let code = interp.run(move |vm| run(vm, &source));
    ExitCode::from(u8::try_from(code).unwrap_or(1))
}

fn fail(e: &dyn std::fmt::Display, code: u8) -> ExitCode {
    eprintln!("python3: {e}");
    ExitCode::from(code)
}

/// The program's text and name, and `sys.argv`.
struct Source {
    text: String,
    name: String,
    /// `sys.path[0]`: the script's directory, or the working directory (the run directory).
    path0: String,
}

#[derive(Debug, thiserror::Error)]
enum LoadError {
    #[error("can't open file {0:?}: {1}")]
    File(String, std::io::Error),
    #[error("reading the program from standard input: {0}")]
    Stdin(std::io::Error),
}

fn load(program: Program) -> Result<(Source, Vec<String>), LoadError> {
    Ok(match program {
        Program::Command { code, argv } => (
            Source {
                text: code,
                name: "<string>".to_owned(),
                path0: String::new(),
            },
            argv,
        ),
        Program::File { path, argv } => {
            let text =
                std::fs::read_to_string(&path).map_err(|e| LoadError::File(path.clone(), e))?;
            let dir = std::path::Path::new(&path)
                .parent()
                .map(|d| d.to_string_lossy().into_owned())
                .unwrap_or_default();
            (
                Source {
                    text,
                    name: path,
                    path0: dir,
                },
                argv,
            )
        }
        Program::Stdin { argv } => {
            let mut text = String::new();
            std::io::stdin()
                .read_to_string(&mut text)
                .map_err(LoadError::Stdin)?;
            (
                Source {
                    text,
                    name: "<stdin>".to_owned(),
                    path0: String::new(),
                },
                argv,
            )
        }
    })
}

/// Runs before the interpreter initialises, while its state is still exclusively ours; if it
/// ever is not, nothing runs rather than a Python with the denied modules.
fn deny_modules(vm: &mut VirtualMachine) {
    match PyRc::get_mut(&mut vm.state) {
        Some(state) => state
            .module_defs
            .retain(|name, _| !DENIED_MODULES.contains(name)),
        None => {
            eprintln!("python3: refusing to run: the module table cannot be restricted");
            std::process::exit(126);
        }
    }
}

fn run(vm: &VirtualMachine, source: &Source) -> PyResult<()> {
    let scope = vm.new_scope_with_main()?;
    vm.import("site", 0)?;
    vm.insert_sys_path(vm.new_pyobj(source.path0.clone()))?;
    if !source.name.starts_with('<') {
        scope
            .globals
            .set_item("__file__", vm.new_pyobj(source.name.clone()), vm)?;
    }
    vm.run_string(scope, &source.text, &source.name).map(drop)
}
