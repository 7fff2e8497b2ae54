//! The commands exec may run and, for each, how the toolset's program (uutils coreutils 0.12.0 or
//! diffutils 0.6.0, see `toolset.rs`) parses its arguments: which
//! options it accepts, which take a value, whether that value is required (the next word or the
//! rest of the word) or optional (only `--name=VALUE` or an attached `-xVALUE`), and whether a
//! value or operand names a file.
//! grep (toolset/grep) and sed (uutils sed 0.3.0) bring readers of their own (`tools/`).
//!
//! The table must describe the programs exactly: a word the checker reads as an option's value
//! skips the path rules, so an option whose argument the program takes only after `=` must never
//! be listed as taking the next word (`diff --unified ../secret` opens `../secret`). The
//! differential test (`tests/differential.rs`) runs the toolset's programs with every form
//! listed here and fails on any disagreement.
//!
//! Options that run programs or reach outside (`sort --compress-program`, `diff --paginate`,
//! `cp -s`, `date --set`, `sha256sum --check`, `--files0-from`, `tail --follow`…) are simply not
//! listed.

/// What a word means to the program: an option, text it never opens, or a file name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Option,
    Text,
    Path,
}

/// How a command's operands are read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Operands {
    /// Every operand names a file (`-` is standard input).
    Paths,
    /// Operands are text (`tr` sets); no file is named.
    Text,
    /// Only `+FORMAT`: any other operand would set the clock.
    DateFormat,
    /// Every argument is text and nothing is parsed as an option (`echo`, `printf`, `seq`).
    AllText,
}

/// One command's policy.
#[derive(Debug)]
pub(crate) struct Spec {
    pub name: &'static str,
    pub operands: Operands,
    /// Short options without a value, as letters.
    pub flags: &'static str,
    /// Short options with a required value (attached, or else the next word).
    pub valued: &'static [(char, Role)],
    /// Short options with an optional value: only an attached one (`-Ihours`); `-I hours` is
    /// the bare option and an operand.
    pub optional: &'static [(char, Role)],
    /// Long options without a value (`--name`; `--name=v` is refused as the program would).
    pub long: &'static [&'static str],
    /// Long options with a required value (`--name=v`, or else the next word).
    pub long_valued: &'static [(&'static str, Role)],
    /// Long options with an optional value: only `--name=v`; a bare `--name` takes nothing.
    pub long_optional: &'static [(&'static str, Role)],
    /// A reader of its own for a program whose arguments are not getopt options (find's
    /// expression, sed's script, awk's program): it returns every word with its role, and the
    /// path rules still apply to each `Path` word. `None`: the getopt reading above.
    pub custom: Option<Reader>,
}

/// The commands with an argument reader of their own (see [`Spec::custom`]); the policy holds
/// the readers, so this table names them instead of pointing at them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Reader {
    Grep,
    Sed,
    Jq,
    Awk,
    Find,
    Xargs,
    Python,
}

const T: Role = Role::Text;
const P: Role = Role::Path;

const fn spec(name: &'static str, operands: Operands) -> Spec {
    Spec {
        name,
        operands,
        flags: "",
        valued: &[],
        optional: &[],
        long: &[],
        long_valued: &[],
        long_optional: &[],
        custom: None,
    }
}

pub(crate) static SPECS: &[Spec] = &[
    spec("echo", Operands::AllText),
    spec("printf", Operands::AllText),
    spec("seq", Operands::AllText),
    spec("sleep", Operands::AllText),
    Spec {
        flags: "AbeEnstTuv",
        long: &["number", "number-nonblank", "show-all", "squeeze-blank"],
        ..spec("cat", Operands::Paths)
    },
    Spec {
        flags: "qvz",
        valued: &[('n', T), ('c', T)],
        long: &["quiet", "silent", "verbose", "zero-terminated"],
        long_valued: &[("lines", T), ("bytes", T)],
        ..spec("head", Operands::Paths)
    },
    // No -f/-F/--follow: following a file only burns the timeout.
    Spec {
        flags: "qvz",
        valued: &[('n', T), ('c', T)],
        long: &["quiet", "silent", "verbose", "zero-terminated"],
        long_valued: &[("lines", T), ("bytes", T)],
        ..spec("tail", Operands::Paths)
    },
    Spec {
        flags: "clmwL",
        long: &["bytes", "chars", "lines", "words", "max-line-length"],
        ..spec("wc", Operands::Paths)
    },
    Spec {
        flags: "bdfgiMhnRrVcCsuz",
        valued: &[('k', T), ('t', T), ('o', P)],
        long: &[
            "reverse",
            "numeric-sort",
            "unique",
            "ignore-case",
            "stable",
            "human-numeric-sort",
            "version-sort",
            "general-numeric-sort",
            "month-sort",
            "zero-terminated",
        ],
        long_valued: &[("key", T), ("field-separator", T), ("output", P)],
        // --check[=diagnose-first|quiet|silent]
        long_optional: &[("check", T)],
        ..spec("sort", Operands::Paths)
    },
    // Two operands at most: INPUT and OUTPUT, both files.
    Spec {
        flags: "cdDiuz",
        valued: &[('f', T), ('s', T), ('w', T)],
        long: &["count", "repeated", "unique", "ignore-case"],
        long_optional: &[("all-repeated", T), ("group", T)],
        ..spec("uniq", Operands::Paths)
    },
    Spec {
        flags: "snz",
        valued: &[('d', T), ('f', T), ('c', T), ('b', T)],
        long: &["complement", "only-delimited"],
        long_valued: &[
            ("delimiter", T),
            ("fields", T),
            ("characters", T),
            ("bytes", T),
            ("output-delimiter", T),
        ],
        ..spec("cut", Operands::Paths)
    },
    Spec {
        flags: "cCdst",
        ..spec("tr", Operands::Text)
    },
    Spec {
        flags: "aAlhRrtSd1FpnisU",
        long: &[
            "all",
            "almost-all",
            "human-readable",
            "recursive",
            "reverse",
            "directory",
        ],
        // --classify[=WHEN] (coreutils 9), --color[=WHEN]
        long_optional: &[("classify", T), ("color", T)],
        ..spec("ls", Operands::Paths)
    },
    Spec {
        flags: "pv",
        long: &["parents", "verbose"],
        ..spec("mkdir", Operands::Paths)
    },
    Spec {
        flags: "fiIrRdv",
        long: &["force", "recursive", "dir", "verbose"],
        // --interactive[=never|once|always]
        long_optional: &[("interactive", T)],
        ..spec("rm", Operands::Paths)
    },
    // Never -s/-l (symbolic or hard links) or --parents/--reflink/--preserve/--backup.
    Spec {
        flags: "afinprRuvT",
        valued: &[('t', P)],
        long: &[
            "archive",
            "force",
            "interactive",
            "no-clobber",
            "recursive",
            "update",
            "verbose",
            "no-target-directory",
        ],
        long_valued: &[("target-directory", P)],
        ..spec("cp", Operands::Paths)
    },
    Spec {
        flags: "finuvT",
        valued: &[('t', P)],
        long: &[
            "force",
            "interactive",
            "no-clobber",
            "update",
            "verbose",
            "no-target-directory",
        ],
        long_valued: &[("target-directory", P)],
        ..spec("mv", Operands::Paths)
    },
    // uutils diffutils compares two files and parses by hand: no directories (-r/-N), no
    // ignore options, no clusters (`-su` is refused by the program), `-C`/`-U` take the next
    // word only when it is a number (anything else is refused), `--unified`/`--context` take a
    // number only after `=`. Left off: `--tabsize=N`/`--width=N` (the program refuses the bare
    // form, which the table cannot express; they only change layout).
    Spec {
        flags: "cesqtuy",
        valued: &[('U', T), ('C', T)],
        long: &[
            "brief",
            "report-identical-files",
            "expand-tabs",
            "normal",
            "ed",
            "side-by-side",
        ],
        long_optional: &[("unified", T), ("context", T)],
        ..spec("diff", Operands::Paths)
    },
    // Never -s/--set, -f/--file or -r/--reference; operands must be +FORMAT.
    Spec {
        flags: "uR",
        valued: &[('d', T)],
        optional: &[('I', T)],
        long: &["utc", "universal", "rfc-email"],
        long_valued: &[("date", T)],
        long_optional: &[("iso-8601", T)],
        ..spec("date", Operands::DateFormat)
    },
    Spec {
        flags: "di",
        valued: &[('w', T)],
        long: &["decode", "ignore-garbage"],
        long_valued: &[("wrap", T)],
        ..spec("base64", Operands::Paths)
    },
    // Never -c/--check: the checked file names other files, which no rule here could see.
    Spec {
        flags: "btz",
        long: &["binary", "text", "tag", "zero"],
        ..spec("sha256sum", Operands::Paths)
    },
    // Bastion's grep front end (toolset/grep): no -R (follows links), -f (a pattern file the
    // policy cannot see into), --include/--exclude or -P; the first operand is the pattern
    // unless -e gave one (tools/grep.rs).
    Spec {
        flags: "nrlcivEFowhHqs",
        valued: &[('e', T)],
        custom: Some(Reader::Grep),
        ..spec("grep", Operands::Paths)
    },
    // uutils sed: options and every script are read by tools/sed.rs (no w/W/r/R/e, no -f, no
    // -i backup suffix, no --follow-symlinks; no -z, which uutils sed 0.3.0 ignores).
    Spec {
        flags: "nEsri",
        valued: &[('e', T)],
        long: &["quiet", "silent", "regexp-extended", "separate", "in-place"],
        long_valued: &[("expression", T)],
        custom: Some(Reader::Sed),
        ..spec("sed", Operands::Paths)
    },
    // Our jq front end over jaq (toolset/jq): no environment, modules or file options.
    Spec {
        custom: Some(Reader::Jq),
        ..spec("jq", Operands::Paths)
    },
    // busybox awk, reached only as `awk`; the reader scans the program (tools/awk.rs).
    Spec {
        custom: Some(Reader::Awk),
        ..spec("awk", Operands::Paths)
    },
    // Start paths, then an expression of allowed tests only: see `tools/find.rs`.
    Spec {
        custom: Some(Reader::Find),
        ..spec("find", Operands::Paths)
    },
    // Our own xargs (toolset/xargs) and a command the policy allows: see `tools/xargs.rs`.
    Spec {
        custom: Some(Reader::Xargs),
        ..spec("xargs", Operands::Paths)
    },
    // RustPython (toolset/python): -c CODE, FILE or standard input; no interpreter options.
    Spec {
        custom: Some(Reader::Python),
        ..spec("python3", Operands::Paths)
    },
];

/// The commands on by default.
pub const DEFAULT_COMMANDS: &[&str] = &[
    "echo",
    "printf",
    "cat",
    "head",
    "tail",
    "wc",
    "sort",
    "uniq",
    "cut",
    "tr",
    "ls",
    "mkdir",
    "rm",
    "cp",
    "mv",
    "diff",
    "seq",
    "date",
    "base64",
    "sha256sum",
    "grep",
    "sed",
    "jq",
    "awk",
    "find",
    "xargs",
    "python3",
];

/// Commands that refuse to run without Landlock, each with the reason: python3's launcher
/// (toolset/python) cannot otherwise keep a script's file access inside the run directory.
pub const NEEDS_LANDLOCK: &[(&str, &str)] = &[(
    "python3",
    "needs Landlock, which this host does not offer: without it the launcher refuses to run",
)];

/// Every command a deployment may enable.
pub fn known_commands() -> impl Iterator<Item = &'static str> {
    SPECS.iter().map(|s| s.name)
}

/// Whether an option's value is required or optional, and what it names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OptionValue {
    None,
    Required(Role),
    Optional(Role),
}

/// One option a command accepts, as the policy models it: `-x` or `--name`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OptionForm {
    pub spelling: String,
    pub value: OptionValue,
}

/// Every option the policy accepts for `command` (empty for an unknown command or one whose
/// arguments are all text).
pub fn option_forms(command: &str) -> Vec<OptionForm> {
    let Some(spec) = SPECS.iter().find(|s| s.name == command) else {
        return Vec::new();
    };
    let short = |c: char, value| OptionForm {
        spelling: format!("-{c}"),
        value,
    };
    let long = |n: &str, value| OptionForm {
        spelling: format!("--{n}"),
        value,
    };
    let mut forms: Vec<OptionForm> = spec
        .flags
        .chars()
        .map(|c| short(c, OptionValue::None))
        .collect();
    forms.extend(
        spec.valued
            .iter()
            .map(|(c, r)| short(*c, OptionValue::Required(*r))),
    );
    forms.extend(
        spec.optional
            .iter()
            .map(|(c, r)| short(*c, OptionValue::Optional(*r))),
    );
    forms.extend(spec.long.iter().map(|n| long(n, OptionValue::None)));
    forms.extend(
        spec.long_valued
            .iter()
            .map(|(n, r)| long(n, OptionValue::Required(*r))),
    );
    forms.extend(
        spec.long_optional
            .iter()
            .map(|(n, r)| long(n, OptionValue::Optional(*r))),
    );
    forms
}
