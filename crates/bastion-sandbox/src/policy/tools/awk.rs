//! awk's argument reader (the toolset's awk is busybox's, reached only through a link named
//! `awk`): `-F SEP`, `-v NAME=VALUE`, `--`, the program, then operands, which are files except
//! `NAME=VALUE` assignments. The program is tokenized (strings, regex literals, comments) and
//! refused when it could run a command or write a file the path rules did not see: `system`,
//! any `|` but `||` (pipes to and from commands, `|&`), output redirection except to a string
//! literal that passes the path rules, `getline <` from anything but such a literal, and any
//! use of `ARGV` (awk reads the files it names, so a program could add one).
//! `-f FILE` is refused: the program in a file is not in argv, so this check could not read it
//! (and the file could change between the check and the run). `ENVIRON` stays: the runner gives
//! the program a clean environment (PATH, HOME, TMPDIR), so it reveals nothing.

use crate::commands::{Role, Spec};
use crate::path::SandboxPath;
use crate::policy::{PolicyError, Word, refuse, truncate};

#[derive(Debug, Clone, PartialEq, Eq)]
enum Tok {
    Ident(String),
    /// A string literal's raw text between the quotes (escapes not decoded).
    Str(String),
    Number,
    Regex,
    Newline,
    Punct(&'static str),
}

/// Operators, longest first so `||` is never read as two `|`.
const PUNCTS: &[&str] = &[
    ">>", "||", "|&", "&&", "==", "!=", "<=", ">=", "++", "--", "+=", "-=", "*=", "/=", "%=", "^=",
    "**", "!~", "{", "}", "(", ")", "[", "]", ";", ",", "+", "-", "*", "%", "^", "!", ">", "<",
    "|", "?", ":", "~", "$", "=", "/",
];

/// Words after which busybox expects an operand, so a `/` there opens a regex. Not `case` or
/// `switch` (busybox has no switch: they are variables, and `/` after them divides).
const KEYWORDS: &[&str] = &[
    "print", "printf", "return", "do", "else", "in", "exit", "if", "while", "for",
];

fn refused(reason: impl Into<String>) -> PolicyError {
    PolicyError::Refused {
        command: "awk",
        reason: reason.into(),
    }
}

/// Whether the token before a `/` ends an operand (then `/` divides).
fn ends_operand(prev: Option<&Tok>) -> bool {
    match prev {
        Some(Tok::Ident(w)) => !KEYWORDS.contains(&w.as_str()),
        Some(Tok::Str(_) | Tok::Number | Tok::Regex) => true,
        Some(Tok::Punct(p)) => matches!(*p, ")" | "]" | "++" | "--"),
        Some(Tok::Newline) | None => false,
    }
}

/// Reads a quoted string or regex body from after its opening `close` to the closing one.
fn quoted(chars: &[char], at: &mut usize, close: char) -> Result<String, PolicyError> {
    let mut text = String::new();
    while let Some(&c) = chars.get(*at) {
        *at += 1;
        if c == close {
            return Ok(text);
        }
        if c == '\n' {
            break;
        }
        text.push(c);
        if c == '\\'
            && let Some(&n) = chars.get(*at)
        {
            text.push(n);
            *at += 1;
        }
    }
    Err(refused(format!("unterminated {close} in the program")))
}

fn tokenize(program: &str) -> Result<Vec<Tok>, PolicyError> {
    let chars: Vec<char> = program.chars().collect();
    let mut toks: Vec<Tok> = Vec::new();
    let mut at = 0;
    // For each open `(`: whether it opens an `if`/`while`/`for` condition. A statement follows
    // the `)` closing one, so a `/` there opens a regex (`if (x) /re/`), as busybox reads it.
    let mut opens: Vec<bool> = Vec::new();
    let mut closed_condition = false;
    while let Some(&c) = chars.get(at) {
        at += 1;
        match c {
            ' ' | '\t' | '\r' => {}
            '\\' if chars.get(at) == Some(&'\n') => at += 1,
            '\n' => toks.push(Tok::Newline),
            '#' => {
                while chars.get(at).is_some_and(|c| *c != '\n') {
                    at += 1;
                }
            }
            '"' => toks.push(Tok::Str(quoted(&chars, &mut at, '"')?)),
            '/' if !ends_operand(toks.last())
                || (closed_condition && toks.last() == Some(&Tok::Punct(")"))) =>
            {
                quoted(&chars, &mut at, '/')?;
                toks.push(Tok::Regex);
            }
            c if c.is_ascii_alphabetic() || c == '_' => {
                let start = at - 1;
                while chars
                    .get(at)
                    .is_some_and(|c| c.is_ascii_alphanumeric() || *c == '_')
                {
                    at += 1;
                }
                toks.push(Tok::Ident(chars[start..at].iter().collect()));
            }
            c if c.is_ascii_digit() || c == '.' => {
                while chars
                    .get(at)
                    .is_some_and(|c| c.is_ascii_alphanumeric() || *c == '.')
                {
                    at += 1;
                }
                toks.push(Tok::Number);
            }
            _ => {
                let rest: String = chars[at - 1..chars.len().min(at + 1)].iter().collect();
                let p = PUNCTS
                    .iter()
                    .find(|p| rest.starts_with(**p))
                    .ok_or_else(|| refused(format!("unexpected {c:?} in the program")))?;
                at += p.chars().count() - 1;
                if *p == "(" {
                    let control = ["if", "while", "for"];
                    opens.push(
                        matches!(toks.last(), Some(Tok::Ident(w)) if control.contains(&w.as_str())),
                    );
                } else if *p == ")" {
                    closed_condition = opens.pop().unwrap_or(false);
                }
                toks.push(Tok::Punct(p));
            }
        }
    }
    Ok(toks)
}

/// A file named in the program: a plain string literal (no escapes, which could spell `..`)
/// that passes the path rules.
fn literal_path(tok: Option<&Tok>, what: &str, index: usize) -> Result<(), PolicyError> {
    match tok {
        Some(Tok::Str(s)) if !s.contains('\\') => SandboxPath::parse_bytes(s.as_bytes())
            .map(|_| ())
            .map_err(|error| PolicyError::Path { index, error }),
        _ => Err(refused(format!(
            "{what} must name a file as a string literal"
        ))),
    }
}

fn ends_statement(tok: Option<&Tok>) -> bool {
    matches!(
        tok,
        None | Some(Tok::Newline | Tok::Punct(";") | Tok::Punct("}"))
    )
}

/// Refuses what the program may not do; `index` is the program's position in argv.
fn check_program(program: &str, index: usize) -> Result<(), PolicyError> {
    check_tokens(&tokenize(program)?, index)?;
    // Should the tokenizer and busybox ever split a program differently, the command runner
    // must still not hide in what looked like a string or regex.
    if program.contains("system") {
        return Err(refused(
            "the program mentions system (even in a string or regex)",
        ));
    }
    Ok(())
}

fn check_tokens(toks: &[Tok], index: usize) -> Result<(), PolicyError> {
    let mut depth = 0usize;
    // The nesting depth of the `print`/`printf` statement being read: a `>` at that depth
    // redirects its output, a deeper one compares.
    let mut printing: Option<usize> = None;
    let mut i = 0;
    while let Some(tok) = toks.get(i) {
        i += 1;
        match tok {
            Tok::Ident(w) if w == "system" => return Err(refused("system() runs a command")),
            // awk opens whatever ARGV holds once BEGIN ends: an element set by the program is
            // a file name the path rules never saw (`ARGV[1] = "/etc/passwd"`).
            Tok::Ident(w) if w == "ARGV" => {
                return Err(refused("ARGV could name input files the check never saw"));
            }
            Tok::Ident(w) if w == "print" || w == "printf" => printing = Some(depth),
            Tok::Ident(w) if w == "getline" => {
                if let Some(Tok::Ident(_)) = toks.get(i) {
                    i += 1;
                }
                if matches!(toks.get(i), Some(Tok::Punct("[" | "$"))) {
                    return Err(refused("getline reads only into a plain variable"));
                }
                if toks.get(i) == Some(&Tok::Punct("<")) {
                    literal_path(toks.get(i + 1), "getline <", index)?;
                    // busybox joins what follows to the name (`"." "./x"` reads `../x`).
                    let next = toks.get(i + 2);
                    if !ends_statement(next)
                        && !matches!(next, Some(Tok::Punct(")" | "&&" | "||" | ",")))
                    {
                        return Err(refused("getline < must end at its file name"));
                    }
                    i += 2;
                }
            }
            Tok::Punct("|" | "|&") => {
                return Err(refused("| runs a command (a pipe to or from a command)"));
            }
            Tok::Punct("(" | "[" | "{") => depth += 1,
            Tok::Punct(p @ (")" | "]" | "}")) => {
                depth = depth.saturating_sub(1);
                if *p == "}" && printing.is_some_and(|d| depth < d) {
                    printing = None;
                }
            }
            Tok::Punct(p @ (">" | ">>")) if printing == Some(depth) => {
                literal_path(toks.get(i), &format!("output redirection {p}"), index)?;
                if !ends_statement(toks.get(i + 1)) {
                    return Err(refused(format!(
                        "output redirection {p} must end its statement"
                    )));
                }
                i += 1;
            }
            Tok::Newline | Tok::Punct(";") if printing.is_some_and(|d| depth <= d) => {
                printing = None;
            }
            _ => {}
        }
    }
    Ok(())
}

/// `NAME=VALUE`: an operand awk reads as an assignment, not a file.
fn is_assignment(word: &str) -> bool {
    word.split_once('=').is_some_and(|(name, _)| {
        name.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
    })
}

/// The reader `SPECS` names for awk (see [`crate::commands::Spec::custom`]).
pub(crate) fn classify<'a>(
    spec: &'static Spec,
    args: &'a [String],
) -> Result<Vec<Word<'a>>, PolicyError> {
    let mut words = Vec::new();
    let mut i = 0;
    let word = |index: usize, text: &'a str, role| Word { index, text, role };
    // Options, until the program (busybox stops reading options there, as POSIX says).
    while let Some(arg) = args.get(i) {
        if arg == "--" {
            words.push(word(i + 1, arg, Role::Option));
            i += 1;
            break;
        }
        if arg == "-" || !arg.starts_with('-') {
            break;
        }
        let letter = arg[1..].chars().next().unwrap_or_default();
        if letter != 'F' && letter != 'v' {
            return Err(refuse(spec, &format!("-{letter}")));
        }
        words.push(word(i + 1, arg, Role::Option));
        let attached = &arg[1 + letter.len_utf8()..];
        if attached.is_empty() {
            let value = args.get(i + 1).ok_or_else(|| PolicyError::MissingValue {
                command: spec.name,
                option: truncate(arg),
            })?;
            words.push(word(i + 2, value, Role::Text));
            i += 2;
        } else {
            words.push(word(i + 1, attached, Role::Text));
            i += 1;
        }
    }
    let program = args.get(i).ok_or_else(|| refused("no program given"))?;
    check_program(program, i + 1)?;
    words.push(word(i + 1, program, Role::Text));
    for (n, arg) in args.iter().enumerate().skip(i + 1) {
        let role = if is_assignment(arg) {
            Role::Text
        } else {
            Role::Path
        };
        words.push(word(n + 1, arg, role));
    }
    Ok(words)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::path::PathError;

    fn read(argv: &[&str]) -> Result<Vec<(String, Role)>, PolicyError> {
        let spec = crate::commands::SPECS
            .iter()
            .find(|s| s.name == "awk")
            .unwrap();
        let args: Vec<String> = argv.iter().map(|s| (*s).to_owned()).collect();
        classify(spec, &args).map(|w| w.iter().map(|w| (w.text.to_owned(), w.role)).collect())
    }

    fn refused_because(program: &str, reason: &str) {
        assert_eq!(
            read(&[program]),
            Err(PolicyError::Refused {
                command: "awk",
                reason: reason.to_owned()
            }),
            "{program}"
        );
    }

    #[test]
    fn commands_pipes_and_unchecked_files_are_refused() {
        let system = "system() runs a command";
        refused_because("BEGIN { system(\"id\") }", system);
        refused_because("BEGIN{x=system;}", system);
        refused_because(
            "/a/ { n++ } END { print n; system(\"cat /etc/passwd\") }",
            system,
        );
        let pipe = "| runs a command (a pipe to or from a command)";
        refused_because("{ print | \"sh\" }", pipe);
        refused_because("BEGIN { \"id\" | getline x; print x }", pipe);
        refused_because("BEGIN { \"sh\" |& getline }", pipe);
        refused_because("{ print $1 |\"sort\" }", pipe);
        refused_because("{ if (1) /\"/; print | \"sh\"; x = /\"/ }", pipe);
        // A `/` after a keyword opens a regex, so a quote inside it cannot hide what follows.
        refused_because("{ print /\"/; system(\"id\"); x = /\"/ }", system);
        refused_because("{ if (1) /\"/; system(\"id\"); x = /\"/ }", system);
        refused_because("{ case / system(\"id\") / 1 }", system);
        refused_because("{ while (0) /\"/\nsystem(\"id\"); x = /\"/ }", system);
        let out =
            |op: &str| format!("output redirection {op} must name a file as a string literal");
        refused_because("{ print > FILENAME }", &out(">"));
        refused_because("{ print $0 >> $2 }", &out(">>"));
        refused_because("{ printf \"%s\", $0 > \"a\\x2e\" }", &out(">"));
        refused_because("{ print (1)(2) > f }", &out(">"));
        refused_because(
            "{ print > \"out\" \".txt\" }",
            "output redirection > must end its statement",
        );
        let getline = "getline < must name a file as a string literal";
        let joined = "getline < must end at its file name";
        refused_because("BEGIN { getline x < \".\" \"./secret\"; print x }", joined);
        refused_because("BEGIN { while ((getline x < \"a\" f) > 0) n++ }", joined);
        refused_because("BEGIN { getline x < ARGV[1] }", getline);
        refused_because("BEGIN { while ((getline line < f) > 0) n++ }", getline);
        refused_because(
            "BEGIN { getline a[1] < \"x\" }",
            "getline reads only into a plain variable",
        );
        refused_because("BEGIN { print \"x }", "unterminated \" in the program");
        refused_because("BEGIN { x = `id` }", "unexpected '`' in the program");
        let argv = "ARGV could name input files the check never saw";
        refused_because(
            "BEGIN { ARGV[1] = \"/etc/passwd\"; ARGC = 2 } { print }",
            argv,
        );
        refused_because("BEGIN { split(\"/etc/shadow\", ARGV) }", argv);
        refused_because(
            "BEGIN { print \"system\" }",
            "the program mentions system (even in a string or regex)",
        );
    }

    #[test]
    fn a_literal_file_name_must_pass_the_path_rules() {
        let path = |program: &str, error: PathError| {
            assert_eq!(
                read(&["-F", ":", program]),
                Err(PolicyError::Path { index: 3, error }),
                "{program}"
            );
        };
        path("{ print > \"/etc/cron.d/x\" }", PathError::Absolute);
        path("{ print >> \"../up\" }", PathError::ParentComponent);
        path("{ print \"x\" > \"/dev/stderr\" }", PathError::Absolute);
        path("BEGIN { getline < \"/etc/passwd\" }", PathError::Absolute);
        path(
            "BEGIN { getline x < \"../secret\"; print x }",
            PathError::ParentComponent,
        );
    }

    #[test]
    fn options_other_than_f_and_v_are_refused() {
        let refused = |argv: &[&str], option: &str| {
            assert_eq!(
                read(argv),
                Err(PolicyError::OptionNotAllowed {
                    command: "awk",
                    option: option.to_owned()
                }),
                "{argv:?}"
            );
        };
        refused(&["-f", "prog.awk", "data"], "-f");
        refused(&["-fprog.awk"], "-f");
        refused(&["-e", "BEGIN{}"], "-e");
        refused(&["-W", "exec"], "-W");
        assert_eq!(
            read(&["-v"]),
            Err(PolicyError::MissingValue {
                command: "awk",
                option: "-v".to_owned()
            })
        );
        refused_because_no_program();
    }

    fn refused_because_no_program() {
        assert_eq!(
            read(&["-F,"]),
            Err(PolicyError::Refused {
                command: "awk",
                reason: "no program given".to_owned()
            })
        );
    }

    #[test]
    fn ordinary_programs_are_read_with_their_operands() {
        let (o, t, p) = (Role::Option, Role::Text, Role::Path);
        let own = |v: &[(&str, Role)]| -> Vec<(String, Role)> {
            v.iter().map(|(s, r)| ((*s).to_owned(), *r)).collect()
        };
        assert_eq!(
            read(&["-F:", "-v", "n=1", "{ print $1 }", "a", "x=2", "-"]).unwrap(),
            own(&[
                ("-F:", o),
                (":", t),
                ("-v", o),
                ("n=1", t),
                ("{ print $1 }", t),
                ("a", p),
                ("x=2", t),
                ("-", p)
            ])
        );
        for program in [
            "{ s += $2 } END { print s / NR }",
            "$1 > 2 { print $1 > \"out/big.txt\" }",
            "{ print ($1 > 2) }",
            "{ if (a || b) print \"a|b\" }",
            "/a|b/ { n++ } # a | comment\nEND { print n }",
            "BEGIN { while ((getline line < \"in.txt\") > 0) n++; close(\"in.txt\"); print n }",
            "{ print > \"o\"; fflush() }\n{ x = $1 / 2 }",
            "BEGIN { print ENVIRON[\"HOME\"] }",
            "{ if ($1) print ($1 + $2) / 2 }",
            "{ x = (NR % 2) / 2; y = $1 / $2 }",
            "{ a[$1]++ } END { for (k in a) print k, a[k] > \"counts\" }",
        ] {
            assert!(
                read(&[program]).is_ok(),
                "{program}: {:?}",
                read(&[program])
            );
        }
    }
}
