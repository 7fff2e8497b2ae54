//! `grep` for the exec sandbox: GNU grep's output and exit status for the options exec allows
//! (`-n -r -l -c -i -v -E -F -o -w -h -H -e -q -s`, `--`, `-` for standard input), searching
//! with ripgrep's grep-regex and grep-searcher. `-r` never follows a symbolic link (GNU `-r`
//! skips the links it meets inside a directory); there is no `-R`.

mod pattern;

use std::fs;
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use grep_matcher::Matcher;
use grep_regex::{RegexMatcher, RegexMatcherBuilder};
use grep_searcher::{BinaryDetection, Searcher, SearcherBuilder, Sink, SinkMatch};

/// What the command line asked for.
#[derive(Default)]
struct Opts {
    patterns: Vec<String>,
    extended: bool,
    fixed: bool,
    ignore_case: bool,
    invert: bool,
    word: bool,
    line_number: bool,
    count: bool,
    files_with_matches: bool,
    only_matching: bool,
    quiet: bool,
    no_messages: bool,
    recursive: bool,
    with_filename: Option<bool>,
}

/// Why the command line cannot run.
struct Usage(String);

fn parse(args: &[String]) -> Result<(Opts, Vec<String>), Usage> {
    let mut o = Opts::default();
    let mut have_e = false;
    let mut operands = Vec::new();
    let mut i = 0;
    let mut end = false;
    while i < args.len() {
        let arg = &args[i];
        i += 1;
        if end || arg == "-" || !arg.starts_with('-') {
            operands.push(arg.clone());
            continue;
        }
        if arg == "--" {
            end = true;
            continue;
        }
        let letters: Vec<char> = arg[1..].chars().collect();
        for (at, c) in letters.iter().enumerate() {
            match c {
                'E' => (o.extended, o.fixed) = (true, false),
                'F' => (o.fixed, o.extended) = (true, false),
                'G' => (o.fixed, o.extended) = (false, false),
                'i' | 'y' => o.ignore_case = true,
                'v' => o.invert = true,
                'w' => o.word = true,
                'n' => o.line_number = true,
                'c' => o.count = true,
                'l' => o.files_with_matches = true,
                'o' => o.only_matching = true,
                'q' => o.quiet = true,
                's' => o.no_messages = true,
                'r' => o.recursive = true,
                'h' => o.with_filename = Some(false),
                'H' => o.with_filename = Some(true),
                'e' => {
                    let rest: String = letters[at + 1..].iter().collect();
                    let value = if !rest.is_empty() {
                        rest
                    } else if let Some(next) = args.get(i) {
                        i += 1;
                        next.clone()
                    } else {
                        return Err(Usage("option requires an argument -- 'e'".into()));
                    };
                    o.patterns.push(value);
                    have_e = true;
                    break;
                }
                other => return Err(Usage(format!("invalid option -- '{other}'"))),
            }
        }
    }
    if !have_e {
        if operands.is_empty() {
            return Err(Usage("no pattern given".into()));
        }
        o.patterns.push(operands.remove(0));
    }
    Ok((o, operands))
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let code = match parse(&args) {
        Ok((opts, files)) => run(&opts, files),
        Err(Usage(msg)) => {
            eprintln!("grep: {msg}");
            eprintln!("Usage: grep [OPTION]... PATTERNS [FILE]...");
            2
        }
    };
    std::process::exit(code);
}

/// The state of one run: the matcher, the output, whether anything matched or failed.
struct Run<'a> {
    opts: &'a Opts,
    matcher: RegexMatcher,
    searcher: Searcher,
    out: io::BufWriter<io::StdoutLock<'static>>,
    show_name: bool,
    selected: bool,
    error: bool,
}

fn run(opts: &Opts, mut files: Vec<String>) -> i32 {
    let regex = match pattern::combine(&opts.patterns, opts.fixed, opts.extended) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("grep: {e}");
            return 2;
        }
    };
    let matcher = match RegexMatcherBuilder::new()
        .case_insensitive(opts.ignore_case)
        .word(opts.word)
        .line_terminator(Some(b'\n'))
        .build(&regex)
    {
        Ok(m) => m,
        Err(e) => {
            eprintln!("grep: {e}");
            return 2;
        }
    };
    let implicit_dot = files.is_empty() && opts.recursive;
    if files.is_empty() {
        files.push(if opts.recursive {
            ".".into()
        } else {
            "-".into()
        });
    }
    let searcher = SearcherBuilder::new()
        .line_number(true)
        .invert_match(opts.invert)
        .binary_detection(BinaryDetection::convert(b'\0'))
        .build();
    let mut r = Run {
        opts,
        matcher,
        searcher,
        out: io::BufWriter::new(io::stdout().lock()),
        show_name: opts
            .with_filename
            .unwrap_or(files.len() > 1 || opts.recursive),
        selected: false,
        error: false,
    };
    for f in &files {
        if r.opts.quiet && r.selected {
            break;
        }
        if implicit_dot {
            r.walk_dir(Path::new("."), true);
        } else {
            r.operand(f);
        }
    }
    if r.out.flush().is_err() {
        return 2;
    }
    if r.selected && (opts.quiet || !r.error) {
        0
    } else if r.error {
        2
    } else {
        1
    }
}

impl Run<'_> {
    fn complain(&mut self, name: &str, what: &str) {
        self.error = true;
        if !self.opts.no_messages {
            let _ = self.out.flush();
            eprintln!("grep: {name}: {what}");
        }
    }

    /// A command-line operand: followed if it is a link (as GNU does for named files).
    fn operand(&mut self, name: &str) {
        if name == "-" {
            let stdin = io::stdin();
            let lock = stdin.lock();
            self.search(Source::Stdin(lock), "(standard input)");
            return;
        }
        match fs::metadata(name) {
            Ok(m) if m.is_dir() => {
                // GNU -r follows a named link to a directory; here -r never leaves the tree.
                let link = fs::symlink_metadata(name).is_ok_and(|l| l.file_type().is_symlink());
                if self.opts.recursive && link {
                    self.complain(name, "symbolic link to a directory not followed");
                } else if self.opts.recursive {
                    self.walk_dir(Path::new(name), false);
                } else {
                    self.complain(name, "Is a directory");
                }
            }
            Ok(_) => self.file(Path::new(name), name, false),
            Err(e) => self.complain(name, &describe(&e)),
        }
    }

    /// Searches a directory's entries, in name order, never following a link.
    fn walk_dir(&mut self, dir: &Path, strip_dot: bool) {
        let label = dir.display().to_string();
        let mut entries: Vec<_> = match fs::read_dir(dir) {
            Ok(rd) => rd.filter_map(Result::ok).map(|e| e.path()).collect(),
            Err(e) => return self.complain(&label, &describe(&e)),
        };
        entries.sort();
        for path in entries {
            if self.opts.quiet && self.selected {
                return;
            }
            let shown = if strip_dot {
                path.strip_prefix(".").unwrap_or(&path).to_path_buf()
            } else {
                path.clone()
            };
            match fs::symlink_metadata(&path) {
                Ok(m) if m.file_type().is_symlink() => {}
                Ok(m) if m.is_dir() => self.walk_dir(&path, strip_dot),
                Ok(m) if m.is_file() => self.file(&path, &shown.display().to_string(), true),
                Ok(_) => {}
                Err(e) => self.complain(&shown.display().to_string(), &describe(&e)),
            }
        }
    }

    /// Opens a file to search; `no_follow` (inside -r) refuses a link swapped in after the walk
    /// looked at the entry.
    fn file(&mut self, path: &Path, name: &str, no_follow: bool) {
        let flags = if no_follow { libc::O_NOFOLLOW } else { 0 };
        match fs::OpenOptions::new()
            .read(true)
            .custom_flags(flags)
            .open(path)
        {
            Ok(f) => self.search(Source::File(f), name),
            Err(e) => self.complain(name, &describe(&e)),
        }
    }

    fn search(&mut self, source: Source, name: &str) {
        let mut sink = Lines {
            opts: self.opts,
            matcher: &self.matcher,
            out: &mut self.out,
            name,
            show_name: self.show_name,
            count: 0,
            binary: false,
        };
        let result = match source {
            Source::Stdin(r) => self.searcher.search_reader(&self.matcher, r, &mut sink),
            Source::File(f) => self.searcher.search_file(&self.matcher, &f, &mut sink),
        };
        let (count, binary) = (sink.count, sink.binary);
        if let Err(e) = result {
            return self.complain(name, &describe(&e));
        }
        if count > 0 {
            self.selected = true;
        }
        if self.opts.quiet {
            return;
        }
        let prefix = if self.show_name {
            format!("{name}:")
        } else {
            String::new()
        };
        let written = if self.opts.files_with_matches {
            if count > 0 {
                writeln!(self.out, "{name}")
            } else {
                Ok(())
            }
        } else if self.opts.count {
            writeln!(self.out, "{prefix}{count}")
        } else {
            Ok(())
        };
        if written.is_err() {
            self.error = true;
        }
        if binary && count > 0 && !self.opts.files_with_matches && !self.opts.count {
            let _ = self.out.flush();
            eprintln!("grep: {name}: binary file matches");
        }
    }
}

enum Source {
    Stdin(io::StdinLock<'static>),
    File(fs::File),
}

/// GNU's wording of the common errors (strerror without the "(os error N)").
fn describe(e: &io::Error) -> String {
    let text = e.to_string();
    match text.find(" (os error") {
        Some(at) => text[..at].to_owned(),
        None => text,
    }
}

/// Writes the selected lines of one file as GNU grep does.
struct Lines<'a, 'o> {
    opts: &'a Opts,
    matcher: &'a RegexMatcher,
    out: &'a mut io::BufWriter<io::StdoutLock<'o>>,
    name: &'a str,
    show_name: bool,
    count: u64,
    binary: bool,
}

impl Sink for Lines<'_, '_> {
    type Error = io::Error;

    fn matched(&mut self, _: &Searcher, m: &SinkMatch<'_>) -> Result<bool, io::Error> {
        self.count += 1;
        let o = self.opts;
        if o.quiet || o.files_with_matches {
            return Ok(false);
        }
        if o.count {
            return Ok(true);
        }
        if self.binary {
            return Ok(false);
        }
        let line = m.bytes();
        let mut head = Vec::new();
        if self.show_name {
            head.extend_from_slice(self.name.as_bytes());
            head.push(b':');
        }
        if o.line_number {
            head.extend_from_slice(format!("{}:", m.line_number().unwrap_or(0)).as_bytes());
        }
        if !o.only_matching {
            self.out.write_all(&head)?;
            self.out.write_all(line)?;
            if !line.ends_with(b"\n") {
                self.out.write_all(b"\n")?;
            }
            return Ok(true);
        }
        if o.invert {
            return Ok(true);
        }
        let body = line.strip_suffix(b"\n").unwrap_or(line);
        let mut failed = None;
        let walked = self.matcher.find_iter(body, |found| {
            if found.is_empty() {
                return true;
            }
            let written = self
                .out
                .write_all(&head)
                .and_then(|()| self.out.write_all(&body[found]))
                .and_then(|()| self.out.write_all(b"\n"));
            match written {
                Ok(()) => true,
                Err(e) => {
                    failed = Some(e);
                    false
                }
            }
        });
        if let Some(e) = failed {
            return Err(e);
        }
        walked.map_err(|e| io::Error::other(e.to_string()))?;
        Ok(true)
    }

    fn binary_data(&mut self, _: &Searcher, _: u64) -> Result<bool, io::Error> {
        self.binary = true;
        Ok(true)
    }
}
