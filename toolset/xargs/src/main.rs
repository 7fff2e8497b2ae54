//! The exec toolset's xargs: reads items from standard input and runs a toolset program with
//! them appended, like GNU xargs, but every item must first pass the sandbox path rules.
//!
//! Exec's policy checks the command line it is given (`xargs cat` passes), yet the items arrive
//! at run time on standard input, past that check: `echo /etc/passwd | xargs cat` would read a
//! host file on a kernel without Landlock. So each item here must be relative, free of `..` and
//! empty components, within the length limits (the rules of `bastion-sandbox`'s
//! `SandboxPath::parse_bytes`), and must not start with `-` (an item would otherwise become an
//! option of the program: `--compress-program=sh` for sort). A refused item stops xargs before
//! anything runs for it. The program is executed by absolute path from the directory this
//! binary lives in (the toolset), never looked up in PATH.
//!
//! Options: `-0`, `-d DELIM`, `-n N`, `-L N`, `-r`, `--`. Exit status as GNU's: 123 when a run
//! exited 1-125, 124 when one exited 255, 125 when killed or on an xargs error, 126/127 when
//! the program cannot run or does not exist, 1 for a refused item or bad usage.

use std::ffi::{OsStr, OsString};
use std::io::{self, Read, Write};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::PathBuf;
use std::process::{Command, ExitCode};

mod items;

use items::{Split, split};

/// The mirror of `bastion-sandbox`'s path limits.
const MAX_PATH_BYTES: usize = 1024;
const MAX_COMPONENT_BYTES: usize = 255;
/// Without -n/-L, items go to one run until their bytes reach this (GNU's default is 128 KiB).
const MAX_RUN_BYTES: usize = 128 * 1024;
/// Standard input is read whole; more than this is refused rather than buffered.
const MAX_INPUT_BYTES: u64 = 64 * 1024 * 1024;

struct Options {
    split: Split,
    max_args: Option<usize>,
    max_lines: Option<usize>,
    no_run_if_empty: bool,
    command: Vec<OsString>,
}

fn usage(message: &str) -> Result<Options, String> {
    Err(message.to_owned())
}

fn count(option: &str, value: Option<&OsString>) -> Result<usize, String> {
    let value = value.ok_or_else(|| format!("option {option} needs a value"))?;
    match value.to_str().and_then(|v| v.parse::<usize>().ok()) {
        Some(n) if n > 0 => Ok(n),
        _ => Err(format!("invalid number for {option}")),
    }
}

/// `-d` takes one character or a C escape (`\n`, `\t`, `\0`, `\\`).
fn delimiter(value: Option<&OsString>) -> Result<u8, String> {
    let value = value.ok_or_else(|| "option -d needs a value".to_owned())?;
    match value.as_bytes() {
        [b] => Ok(*b),
        b"\\n" => Ok(b'\n'),
        b"\\t" => Ok(b'\t'),
        b"\\0" => Ok(0),
        b"\\\\" => Ok(b'\\'),
        _ => Err("the delimiter must be one character".to_owned()),
    }
}

fn parse(args: Vec<OsString>) -> Result<Options, String> {
    let mut options = Options {
        split: Split::Blanks,
        max_args: None,
        max_lines: None,
        no_run_if_empty: false,
        command: Vec::new(),
    };
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        let value_of = |arg: &OsStr, args: &mut std::vec::IntoIter<OsString>| match arg
            .as_bytes()
            .get(2..)
        {
            Some(rest) if !rest.is_empty() => Some(OsString::from_vec(rest.to_vec())),
            _ => args.next(),
        };
        match arg.as_bytes() {
            b"--" => {
                options.command = args.collect();
                break;
            }
            b"-0" => options.split = Split::Delimiter(0),
            b"-r" => options.no_run_if_empty = true,
            [b'-', b'd', ..] => {
                let v = value_of(&arg, &mut args);
                options.split = Split::Delimiter(delimiter(v.as_ref())?);
            }
            [b'-', b'n', ..] => {
                let v = value_of(&arg, &mut args);
                options.max_args = Some(count("-n", v.as_ref())?);
                options.max_lines = None;
            }
            [b'-', b'L', ..] => {
                let v = value_of(&arg, &mut args);
                options.max_lines = Some(count("-L", v.as_ref())?);
                options.max_args = None;
            }
            [b'-', ..] => return usage(&format!("unsupported option {}", arg.to_string_lossy())),
            _ => {
                options.command.push(arg);
                options.command.extend(args);
                break;
            }
        }
    }
    if options.command.is_empty() {
        options.command.push(OsString::from("echo"));
    }
    Ok(options)
}

/// The sandbox path rules plus "not an option"; the message names the rule and the item.
fn check_item(item: &[u8]) -> Result<(), String> {
    let rule = if item.is_empty() {
        Some("path is empty")
    } else if item.contains(&0) {
        Some("path must not contain NUL")
    } else if item.len() > MAX_PATH_BYTES {
        Some("path is longer than 1024 bytes")
    } else if item[0] == b'/' {
        Some("path must be relative to the sandbox")
    } else if item[0] == b'-' {
        Some("item must not start with '-'")
    } else {
        item.split(|b| *b == b'/').find_map(|c| match c {
            b"" => Some("path must not contain empty components"),
            b".." => Some("path must not contain '..'"),
            c if c.len() > MAX_COMPONENT_BYTES => Some("path component is longer than 255 bytes"),
            _ => None,
        })
    };
    match rule {
        None => Ok(()),
        Some(rule) => {
            let shown: String = String::from_utf8_lossy(item).chars().take(64).collect();
            Err(format!("item {shown:?} refused: {rule}"))
        }
    }
}

/// The toolset program: a bare name in the directory this binary was executed from.
fn program(name: &OsStr) -> Result<PathBuf, String> {
    if name.is_empty() || name.as_bytes().contains(&b'/') {
        return Err(format!("{}: not a toolset command", name.to_string_lossy()));
    }
    let me = std::env::current_exe().map_err(|e| format!("cannot find the toolset: {e}"))?;
    let dir = me
        .parent()
        .ok_or_else(|| "cannot find the toolset".to_owned())?;
    Ok(dir.join(name))
}

/// Runs one command line; returns the GNU xargs status this run contributes (0 when fine).
fn run(program: &PathBuf, argv0: &OsStr, args: &[OsString], items: &[Vec<u8>]) -> Result<u8, u8> {
    let mut cmd = Command::new(program);
    cmd.arg0(argv0).args(args);
    cmd.args(items.iter().map(|i| OsStr::from_bytes(i)));
    let status = match cmd.status() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("xargs: {}: {e}", argv0.to_string_lossy());
            return Err(if e.kind() == io::ErrorKind::NotFound { 127 } else { 126 });
        }
    };
    match (status.code(), status.signal()) {
        (Some(0), _) => Ok(0),
        (Some(255), _) => {
            eprintln!("xargs: {}: exited with status 255; aborting", argv0.to_string_lossy());
            Err(124)
        }
        (Some(c), _) if c <= 125 => Ok(123),
        (Some(c), _) => Ok(u8::try_from(c).unwrap_or(125)),
        (None, s) => {
            eprintln!("xargs: {}: terminated by signal {}", argv0.to_string_lossy(), s.unwrap_or(0));
            Err(125)
        }
    }
}

fn main() -> ExitCode {
    let options = match parse(std::env::args_os().skip(1).collect()) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("xargs: {e}");
            return ExitCode::from(1);
        }
    };
    let mut input = Vec::new();
    let read = io::stdin().lock().take(MAX_INPUT_BYTES + 1).read_to_end(&mut input);
    if let Err(e) = read {
        eprintln!("xargs: reading standard input: {e}");
        return ExitCode::from(125);
    }
    if input.len() as u64 > MAX_INPUT_BYTES {
        eprintln!("xargs: standard input is larger than {MAX_INPUT_BYTES} bytes");
        return ExitCode::from(125);
    }
    let lines = match split(&input, options.split) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("xargs: {e}");
            return ExitCode::from(1);
        }
    };
    // Every item is checked before the first run: a refused one runs nothing.
    for item in lines.iter().flatten() {
        if let Err(e) = check_item(item) {
            eprintln!("xargs: {e}");
            return ExitCode::from(1);
        }
    }
    let Some((name, fixed)) = options.command.split_first() else {
        return ExitCode::from(1);
    };
    let program = match program(name) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("xargs: {e}");
            return ExitCode::from(127);
        }
    };
    let runs = items::group(lines, options.max_args, options.max_lines, MAX_RUN_BYTES);
    let mut status = 0u8;
    if runs.is_empty() && !options.no_run_if_empty {
        return match run(&program, name, fixed, &[]) {
            Ok(s) | Err(s) => ExitCode::from(s),
        };
    }
    for items in &runs {
        match run(&program, name, fixed, items) {
            Ok(s) => status = status.max(s),
            Err(s) => {
                let _ = io::stdout().flush();
                return ExitCode::from(s);
            }
        }
    }
    ExitCode::from(status)
}
