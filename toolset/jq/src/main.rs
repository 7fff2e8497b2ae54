//! `jq` for the exec sandbox: jaq's filter language (jaq-all 0.4, the library of jaq 3.1.2) behind
//! a small jq command line, with nothing that reaches past the operands.
//!
//! Left out on purpose: the `env` builtin and `$ENV` (the environment), modules (`import`,
//! `include`, `-L`: files named by the filter), the REPL, `--rawfile`/`--slurpfile`, in-place
//! editing and jaq's choice of input format by file extension. `input`/`inputs` read the same
//! stream as the filter's input: standard input, or the operands in order.

mod cli;

use std::io::{self, Read, Write};
use std::process::ExitCode;

use jaq_all::data::{Filter, Runner};
use jaq_all::fmts::read;
use jaq_all::fmts::write::{write, Writer};
use jaq_all::fmts::Format;
use jaq_all::jaq_core::{Exn, ValT, Vars};
use jaq_all::json::write::Pp;
use jaq_all::json::Val;
use jaq_all::load::FileReportsDisp;

/// Builtins that read outside the filter's input and arguments.
const REMOVED: &[&str] = &["env"];

/// How a run ended, with jq's exit codes.
enum Failure {
    Usage(String),
    Compile(String),
    Input(String),
    Runtime(String),
    Halt(i32),
    FalseOrNull,
    NoOutput,
    /// An input file could not be read (already reported).
    Unread,
}

impl Failure {
    fn code(&self) -> u8 {
        match self {
            Self::Usage(_) | Self::Input(_) | Self::Unread => 2,
            Self::Compile(_) => 3,
            Self::Runtime(_) => 5,
            Self::FalseOrNull => 1,
            Self::NoOutput => 4,
            Self::Halt(c) => u8::try_from(*c & 0xff).unwrap_or(5),
        }
    }

    fn message(&self) -> Option<&str> {
        match self {
            Self::Usage(m) | Self::Compile(m) | Self::Input(m) | Self::Runtime(m) => Some(m),
            Self::Halt(_) | Self::FalseOrNull | Self::NoOutput | Self::Unread => None,
        }
    }
}

impl From<io::Error> for Failure {
    fn from(e: io::Error) -> Self {
        Self::Input(e.to_string())
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) => {
            if let Some(m) = f.message() {
                let _ = writeln!(io::stderr(), "jq: error: {}", m.trim_end());
            }
            ExitCode::from(f.code())
        }
    }
}

fn run(args: &[String]) -> Result<(), Failure> {
    let cli = cli::Cli::parse(args).map_err(Failure::Usage)?;
    let (names, vals) = bindings(&cli)?;
    let filter = compile(&cli.filter, &names)?;

    let (bytes, unread) = read_input(&cli.files)?;
    let bytes = bytes::Bytes::from(bytes);
    let inputs = read::parse(Format::Json, &bytes, "", cli.slurp);
    let runner = Runner {
        null_input: cli.null_input,
        color_err: false,
        writer: Writer {
            format: if cli.raw { Format::Raw } else { Format::Json },
            pp: Pp {
                indent: (!cli.compact).then(|| "  ".to_owned()),
                sort_keys: false,
                styles: Default::default(),
                sep_space: !cli.compact,
            },
            join: false,
        },
    };
    let filename = match cli.files.as_slice() {
        [one] => Val::utf8_str(one.clone()),
        _ => Val::Null,
    };
    let out = io::stdout();
    let mut out = io::BufWriter::new(out.lock());
    let mut last = None;
    let result = jaq_all::data::run(
        &runner,
        &filter,
        Vars::new(vals),
        (&filename, inputs),
        Failure::Input,
        |v| {
            let v = v.map_err(|e: Exn<_>| match e.get_err() {
                Ok(e) => Failure::Runtime(e.to_string()),
                Err(e) => Failure::Halt(e.get_halt().unwrap_or(5)),
            })?;
            last = Some(v.as_bool());
            write(&mut out, &runner.writer, &v).map_err(Failure::from)
        },
    );
    out.flush()?;
    result?;
    if unread {
        return Err(Failure::Unread);
    }
    match (cli.exit_status, last) {
        (false, _) | (true, Some(true)) => Ok(()),
        (true, Some(false)) => Err(Failure::FalseOrNull),
        (true, None) => Err(Failure::NoOutput),
    }
}

/// The filter's variables: `--arg`, `--argjson` and `$ARGS` (and nothing of the environment).
fn bindings(cli: &cli::Cli) -> Result<(Vec<String>, Vec<Val>), Failure> {
    let mut binds: Vec<(String, Val)> = cli
        .arg
        .iter()
        .map(|(k, v)| (k.clone(), Val::utf8_str(v.clone())))
        .collect();
    for (k, v) in &cli.argjson {
        let val = read::json::parse_single(v.as_bytes())
            .map_err(|e| Failure::Usage(format!("--argjson {k}: invalid JSON text ({e})")))?;
        binds.push((k.clone(), val));
    }
    let named = Val::obj(
        binds
            .iter()
            .map(|(k, v)| (Val::utf8_str(k.clone()), v.clone()))
            .collect(),
    );
    let args_obj = [
        (
            Val::utf8_str("positional".to_owned()),
            Val::Arr(Vec::new().into()),
        ),
        (Val::utf8_str("named".to_owned()), named),
    ];
    binds.push(("ARGS".to_owned(), Val::obj(args_obj.into_iter().collect())));
    Ok(binds.into_iter().unzip())
}

/// Compiles without a module loader (an `import` fails) and without the removed builtins, so a
/// filter naming `env` or `$ENV` fails to compile like any undefined name.
fn compile(code: &str, vars: &[String]) -> Result<Filter, Failure> {
    let funs = jaq_all::data::funs().filter(|f| !REMOVED.contains(&f.0));
    jaq_all::compile_with(code, jaq_all::defs(), funs, vars).map_err(|reports| {
        let text: String = reports
            .iter()
            .map(|r| FileReportsDisp::new(r).to_string())
            .collect();
        Failure::Compile(text)
    })
}

/// Standard input, or the operands (`-` is standard input) one after another as one stream, as
/// jq reads them. As jq does, a file that cannot be read is reported and skipped, and the run
/// still fails at the end.
fn read_input(files: &[String]) -> Result<(Vec<u8>, bool), Failure> {
    let mut bytes = Vec::new();
    if files.is_empty() {
        io::stdin().lock().read_to_end(&mut bytes)?;
        return Ok((bytes, false));
    }
    let mut unread = false;
    for f in files {
        let read = if f == "-" {
            io::stdin().lock().read_to_end(&mut bytes)
        } else {
            std::fs::File::open(f).and_then(|mut file| file.read_to_end(&mut bytes))
        };
        match read {
            Ok(_) => bytes.push(b'\n'),
            Err(e) => {
                let _ = writeln!(io::stderr(), "jq: error: could not open {f}: {e}");
                unread = true;
            }
        }
    }
    Ok((bytes, unread))
}
