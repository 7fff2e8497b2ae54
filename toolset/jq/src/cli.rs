//! The command line this jq reads: `-r -c -s -n -e` (alone or clustered, or their long names),
//! `--arg NAME VALUE`, `--argjson NAME JSON`, `--`, then the filter and the input files. The
//! sandbox policy (bastion-sandbox `tools/jq.rs`) reads words the same way.

#[derive(Debug, Default)]
pub struct Cli {
    pub raw: bool,
    pub compact: bool,
    pub slurp: bool,
    pub null_input: bool,
    pub exit_status: bool,
    pub arg: Vec<(String, String)>,
    pub argjson: Vec<(String, String)>,
    pub filter: String,
    pub files: Vec<String>,
}

impl Cli {
    pub fn parse(args: &[String]) -> Result<Self, String> {
        let mut cli = Self::default();
        let mut filter = None;
        let mut only_operands = false;
        let mut it = args.iter();
        while let Some(arg) = it.next() {
            if only_operands || arg == "-" || !arg.starts_with('-') {
                match filter {
                    None => filter = Some(arg.clone()),
                    Some(_) => cli.files.push(arg.clone()),
                }
                continue;
            }
            match arg.as_str() {
                "--" => only_operands = true,
                "--arg" | "--argjson" => {
                    let (Some(name), Some(value)) = (it.next(), it.next()) else {
                        return Err(format!(
                            "{arg} takes two parameters (e.g. {arg} varname value)"
                        ));
                    };
                    let list = if arg == "--arg" {
                        &mut cli.arg
                    } else {
                        &mut cli.argjson
                    };
                    list.push((name.clone(), value.clone()));
                }
                long if long.starts_with("--") => cli.long(&long[2..])?,
                short => {
                    for c in short.chars().skip(1) {
                        cli.short(c)?;
                    }
                }
            }
        }
        cli.filter = filter.ok_or("no filter given")?;
        Ok(cli)
    }

    fn long(&mut self, name: &str) -> Result<(), String> {
        let c = match name {
            "raw-output" => 'r',
            "compact-output" => 'c',
            "slurp" => 's',
            "null-input" => 'n',
            "exit-status" => 'e',
            _ => return Err(format!("unknown option --{name}")),
        };
        self.short(c)
    }

    fn short(&mut self, c: char) -> Result<(), String> {
        match c {
            'r' => self.raw = true,
            'c' => self.compact = true,
            's' => self.slurp = true,
            'n' => self.null_input = true,
            'e' => self.exit_status = true,
            _ => return Err(format!("unknown option -{c}")),
        }
        Ok(())
    }
}
