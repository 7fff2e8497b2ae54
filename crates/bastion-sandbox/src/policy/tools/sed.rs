//! sed's argument reader and script scanner. Options are read the getopt way (`-e SCRIPT`,
//! `-i` only without a backup suffix, whose `*` and `/` could put the copy anywhere), the first
//! operand is the script unless an `-e` gave one, and every script is scanned command by
//! command: `w`, `W`, `r`, `R`, `e` and the `w`/`e` flags of `s` (files outside the path rules,
//! programs) are refused, and so is anything the scanner cannot read (fail closed). `-f FILE`
//! is not accepted: the script inside the file is out of the scanner's sight.

use crate::commands::{Role, Spec};
use crate::policy::{PolicyError, Word, refuse, truncate};

fn refused(spec: &Spec, reason: String) -> PolicyError {
    PolicyError::Refused {
        command: spec.name,
        reason,
    }
}

/// Reads sed's argv (without argv[0]) with the option table of its `Spec` (`-e`/`--expression`
/// the only valued option, `-i` a flag here) and scans every script in it.
pub(crate) fn classify<'a>(
    spec: &'static Spec,
    args: &'a [String],
) -> Result<Vec<Word<'a>>, PolicyError> {
    let mut words = Vec::new();
    let mut operands = Vec::new();
    let mut scripts = false;
    let mut end = false;
    let mut i = 0;
    while i < args.len() {
        let arg = args[i].as_str();
        let index = i + 1;
        i += 1;
        let word = |text, role| Word { index, text, role };
        if end || arg == "-" || !arg.starts_with('-') {
            operands.push(word(arg, Role::Path));
            continue;
        }
        words.push(word(arg, Role::Option));
        if arg == "--" {
            end = true;
            continue;
        }
        let value = if let Some(long) = arg.strip_prefix("--") {
            match long.split_once('=') {
                Some(("expression", v)) => Some(Some(v)),
                None if long == "expression" => Some(None),
                None if spec.long.contains(&long) => None,
                _ if name_of(long) == "in-place" => {
                    return Err(refused(spec, "-i with a backup suffix".to_owned()));
                }
                _ => return Err(refuse(spec, &format!("--{}", name_of(long)))),
            }
        } else {
            short_cluster(spec, &arg[1..])?
        };
        let Some(inline) = value else { continue };
        let text = match inline {
            Some(t) => t,
            None => {
                let next = args.get(i).ok_or_else(|| PolicyError::MissingValue {
                    command: spec.name,
                    option: truncate(arg),
                })?;
                i += 1;
                next.as_str()
            }
        };
        scan(spec, text)?;
        scripts = true;
        words.push(Word {
            index: if inline.is_some() { index } else { index + 1 },
            text,
            role: Role::Text,
        });
    }
    if !scripts {
        if operands.is_empty() {
            return Err(refused(spec, "no script given".to_owned()));
        }
        let script = operands.remove(0);
        scan(spec, script.text)?;
        words.push(Word {
            role: Role::Text,
            ..script
        });
    }
    words.extend(operands);
    words.sort_by_key(|w| w.index);
    Ok(words)
}

fn name_of(long: &str) -> &str {
    long.split_once('=').map_or(long, |(n, _)| n)
}

/// `-ne SCRIPT`, `-n`, `-i`: returns `Some(value)` when the cluster ends in `-e`.
fn short_cluster<'a>(
    spec: &Spec,
    letters: &'a str,
) -> Result<Option<Option<&'a str>>, PolicyError> {
    for (at, ch) in letters.char_indices() {
        let rest = &letters[at + ch.len_utf8()..];
        match ch {
            // clap drops the `=` of `-e=SCRIPT`; GNU keeps it: refuse rather than guess.
            'e' if rest.starts_with('=') => {
                return Err(refused(spec, "-e=SCRIPT is ambiguous".to_owned()));
            }
            'e' => return Ok(Some((!rest.is_empty()).then_some(rest))),
            'i' if !rest.is_empty() => {
                return Err(refused(spec, "-i with a backup suffix".to_owned()));
            }
            'i' => {}
            c if spec.flags.contains(c) => {}
            c => return Err(refuse(spec, &format!("-{c}"))),
        }
    }
    Ok(None)
}

/// Scans one script; refuses the commands and flags that reach files or programs.
pub(crate) fn scan(spec: &Spec, script: &str) -> Result<(), PolicyError> {
    Scanner {
        s: script.as_bytes(),
        at: 0,
    }
    .script()
    .map_err(|reason| refused(spec, reason))
}

struct Scanner<'s> {
    s: &'s [u8],
    at: usize,
}

impl Scanner<'_> {
    fn peek(&self) -> Option<u8> {
        self.s.get(self.at).copied()
    }

    fn skip(&mut self, set: &[u8]) {
        while self.peek().is_some_and(|c| set.contains(&c)) {
            self.at += 1;
        }
    }

    fn err(&self, what: &str) -> String {
        format!("{what} at byte {} of the script", self.at)
    }

    fn script(&mut self) -> Result<(), String> {
        loop {
            self.skip(b" \t\n;");
            let Some(_) = self.peek() else { return Ok(()) };
            self.address()?;
            self.skip(b" \t");
            if self.peek() == Some(b',') {
                self.at += 1;
                self.skip(b" \t");
                self.address()?;
            }
            self.skip(b" \t");
            while self.peek() == Some(b'!') {
                self.at += 1;
                self.skip(b" \t");
            }
            self.command()?;
        }
    }

    /// A line number, `$`, `first~step`, `+N`, `~N`, `/re/` or `\cREc` (possibly with `I`/`M`).
    fn address(&mut self) -> Result<(), String> {
        match self.peek() {
            Some(b'0'..=b'9' | b'+' | b'~') => {
                self.at += 1;
                self.skip(b"0123456789~");
            }
            Some(b'$') => self.at += 1,
            Some(b'/') => {
                self.at += 1;
                self.part(b'/', true)?;
                self.skip(b"IM");
            }
            Some(b'\\') => {
                let delim = self
                    .s
                    .get(self.at + 1)
                    .copied()
                    .ok_or_else(|| self.err("unterminated address"))?;
                if delim == b'\n' || delim == b'\\' {
                    return Err(self.err("bad address delimiter"));
                }
                self.at += 2;
                self.part(delim, true)?;
                self.skip(b"IM");
            }
            _ => {}
        }
        Ok(())
    }

    /// Reads up to the unescaped `delim`. In a regex, a delimiter inside a bracket expression is
    /// refused: sed implementations disagree on whether it ends the regex, and the flags after
    /// it are what matters.
    fn part(&mut self, delim: u8, regex: bool) -> Result<(), String> {
        let mut bracket = false;
        while let Some(c) = self.peek() {
            self.at += 1;
            if c == b'\\' {
                self.at += 1;
                continue;
            }
            if c == delim {
                if bracket {
                    return Err(self.err("the delimiter inside a bracket expression"));
                }
                return Ok(());
            }
            if regex && c == b'[' && !bracket {
                bracket = true;
                self.skip(b"^");
                if self.peek() == Some(b']') {
                    self.at += 1;
                }
            } else if regex && c == b'[' && matches!(self.peek(), Some(b':' | b'.' | b'=')) {
                let close = self.peek().unwrap_or(b':');
                while self
                    .peek()
                    .is_some_and(|d| d != close || self.s.get(self.at + 1) != Some(&b']'))
                {
                    self.at += 1;
                }
                self.at += 2;
            } else if bracket && c == b']' {
                bracket = false;
            }
        }
        Err(self.err("unterminated regex or replacement"))
    }

    fn command(&mut self) -> Result<(), String> {
        let c = self.peek().ok_or_else(|| self.err("missing command"))?;
        self.at += 1;
        match c {
            b'{' | b'}' => return Ok(()),
            b'#' => {
                self.skip_line();
                return Ok(());
            }
            b':' | b'b' | b't' | b'T' => {
                // uutils ends a label at a blank and refuses what follows: so does this.
                while self.peek().is_some_and(|d| !b"\n; \t".contains(&d)) {
                    self.at += 1;
                }
            }
            b'a' | b'i' | b'c' => self.text(),
            b's' => self.substitute()?,
            b'y' => {
                let delim = self.delimiter()?;
                self.part(delim, false)?;
                self.part(delim, false)?;
            }
            b'q' | b'Q' | b'l' | b'L' => {
                self.skip(b" \t");
                self.skip(b"0123456789");
            }
            b'=' | b'd' | b'D' | b'g' | b'G' | b'h' | b'H' | b'n' | b'N' | b'p' | b'P' | b'x'
            | b'z' | b'F' => {}
            b'w' | b'W' | b'r' | b'R' => {
                return Err(format!(
                    "the {} command (reads or writes a file) is not allowed",
                    c as char
                ));
            }
            b'e' => return Err("the e command (runs a program) is not allowed".to_owned()),
            _ => return Err(self.err(&format!("unknown command {:?}", c as char))),
        }
        self.skip(b" \t");
        match self.peek() {
            None | Some(b';' | b'\n' | b'}' | b'#') => Ok(()),
            Some(_) => Err(self.err("extra characters after a command")),
        }
    }

    fn delimiter(&mut self) -> Result<u8, String> {
        let d = self.peek().ok_or_else(|| self.err("missing delimiter"))?;
        if d == b'\n' || d == b'\\' {
            return Err(self.err("bad delimiter"));
        }
        self.at += 1;
        Ok(d)
    }

    fn substitute(&mut self) -> Result<(), String> {
        let delim = self.delimiter()?;
        self.part(delim, true)?;
        self.part(delim, false)?;
        while let Some(f) = self.peek() {
            match f {
                b'g' | b'p' | b'i' | b'I' | b'm' | b'M' | b'0'..=b'9' => self.at += 1,
                b'w' => return Err("the w flag of s (writes a file) is not allowed".to_owned()),
                b'e' => return Err("the e flag of s (runs a program) is not allowed".to_owned()),
                _ => break,
            }
        }
        Ok(())
    }

    /// The text of `a`, `i`, `c`: to the end of the line, continued by a trailing backslash.
    fn text(&mut self) {
        while let Some(c) = self.peek() {
            if c == b'\n' {
                return;
            }
            self.at += if c == b'\\' { 2 } else { 1 };
        }
    }

    fn skip_line(&mut self) {
        while self.peek().is_some_and(|c| c != b'\n') {
            self.at += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::commands::SPECS;
    use crate::policy::PolicyError;
    use crate::{PathError, Role};

    fn read(line: &str) -> Result<Vec<(String, Role)>, PolicyError> {
        let argv = crate::words::split(line).unwrap_or_default();
        let spec = SPECS
            .iter()
            .find(|s| s.name == "sed")
            .ok_or(PolicyError::DateOperand)?;
        Ok(super::classify(spec, &argv[1..])?
            .into_iter()
            .map(|w| (w.text.to_owned(), w.role))
            .collect())
    }

    fn check(line: &str) -> Result<(), PolicyError> {
        let all: Vec<&str> = crate::known_commands().collect();
        let toolset = crate::Toolset::open(&crate::built_tools_dir()).unwrap();
        let policy = crate::CommandPolicy::resolve(&all, &toolset).unwrap();
        policy
            .check(&crate::words::split(line).unwrap())
            .map(|_| ())
    }

    fn refused(line: &str, reason: &str) {
        assert_eq!(
            read(line),
            Err(PolicyError::Refused {
                command: "sed",
                reason: reason.to_owned()
            }),
            "{line}"
        );
    }

    #[test]
    fn commands_and_flags_that_reach_files_or_programs_are_refused() {
        refused(
            "sed w\\ out a",
            "the w command (reads or writes a file) is not allowed",
        );
        refused(
            "sed -n 1W/etc/x a",
            "the W command (reads or writes a file) is not allowed",
        );
        refused(
            "sed 1r/etc/passwd a",
            "the r command (reads or writes a file) is not allowed",
        );
        refused(
            "sed -e p -e R\\ x a",
            "the R command (reads or writes a file) is not allowed",
        );
        refused(
            "sed 1e\\ id a",
            "the e command (runs a program) is not allowed",
        );
        refused(
            "sed 's/a/b/w /tmp/x' a",
            "the w flag of s (writes a file) is not allowed",
        );
        refused(
            "sed s/a/id/e a",
            "the e flag of s (runs a program) is not allowed",
        );
        refused(
            "sed s/a/b/gpw\\ x a",
            "the w flag of s (writes a file) is not allowed",
        );
        refused(
            "sed '/x/,$!{p;s/a/b/;w f' a",
            "the w command (reads or writes a file) is not allowed",
        );
        refused(
            "sed 'p\nw f' a",
            "the w command (reads or writes a file) is not allowed",
        );
        refused(
            "sed '\\,x,w f' a",
            "the w command (reads or writes a file) is not allowed",
        );
        // A `w` hidden after the delimiter inside brackets, which some seds end the regex at.
        refused(
            "sed 's/[/]x/g#/w f' a",
            "the delimiter inside a bracket expression at byte 4 of the script",
        );
        refused("sed k a", "unknown command 'k' at byte 1 of the script");
        refused(
            "sed pw a",
            "extra characters after a command at byte 1 of the script",
        );
        refused(
            "sed ':a w f' a",
            "extra characters after a command at byte 3 of the script",
        );
        refused(
            "sed s/a/b a",
            "unterminated regex or replacement at byte 5 of the script",
        );
        refused("sed -ibak p a", "-i with a backup suffix");
        refused("sed -in p a", "-i with a backup suffix");
        refused("sed --in-place=../* p a", "-i with a backup suffix");
        refused("sed -e=p a", "-e=SCRIPT is ambiguous");
        refused("sed -n", "no script given");
    }

    #[test]
    fn unlisted_options_are_refused() {
        let option = |line: &str, option: &str| {
            assert_eq!(
                read(line),
                Err(PolicyError::OptionNotAllowed {
                    command: "sed",
                    option: option.to_owned()
                }),
                "{line}"
            );
        };
        option("sed -f script a", "-f");
        option("sed --file=script a", "--file");
        option("sed --follow-symlinks -i p a", "--follow-symlinks");
        option("sed --expr=p a", "--expr");
        option("sed -u p a", "-u");
    }

    #[test]
    fn the_script_is_text_and_every_file_a_path() {
        use Role::{Option as O, Path as P, Text as T};
        let w = |v: &[(&str, Role)]| -> Vec<(String, Role)> {
            v.iter().map(|(s, r)| ((*s).to_owned(), *r)).collect()
        };
        assert_eq!(
            read("sed -n 2p a b"),
            Ok(w(&[("-n", O), ("2p", T), ("a", P), ("b", P)]))
        );
        assert_eq!(
            read("sed a -ne p"),
            Ok(w(&[("a", P), ("-ne", O), ("p", T)]))
        );
        assert_eq!(read("sed -ep a"), Ok(w(&[("-ep", O), ("p", T), ("a", P)])));
        assert_eq!(
            read("sed --expression=1d -- -x"),
            Ok(w(&[
                ("--expression=1d", O),
                ("1d", T),
                ("--", O),
                ("-x", P)
            ]))
        );
        for script in [
            "s/a/b/g",
            "s/a/b/2p",
            "s/A/b/Ig",
            "1,/x/{s|a|b|;p}",
            "$!N;P;D",
            ":a;N;$!ba;s/\\n/ /g",
            "/^#/d;y/abc/xyz/",
            "2q;3Q 4",
            "1~2p;0,/x/d;/a/,+2d",
            "s/[[:alpha:]]//",
            "a hello w world",
            "1i\\\nw text\n=",
            "# w comment\np",
        ] {
            assert!(read(&format!("sed -e '{script}'")).is_ok(), "{script}");
        }
    }

    #[test]
    fn in_place_editing_obeys_the_path_rules() {
        assert_eq!(check("sed -i s/a/b/ a/b.txt"), Ok(()));
        assert_eq!(
            check("sed -i s/a/b/ ../outside"),
            Err(PolicyError::Path {
                index: 3,
                error: PathError::ParentComponent
            })
        );
        assert_eq!(
            check("sed -n -e p /etc/shadow"),
            Err(PolicyError::Path {
                index: 4,
                error: PathError::Absolute
            })
        );
    }
}
