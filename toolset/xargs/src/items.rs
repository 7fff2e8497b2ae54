//! Splitting standard input into items and items into command lines, GNU xargs style.

/// How the input is cut into items.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Split {
    /// Blanks and newlines separate items; quotes and backslashes escape as in GNU xargs.
    Blanks,
    /// Exactly one byte separates items; nothing is special (`-0`, `-d`).
    Delimiter(u8),
}

/// Items grouped by input line (for `-L`); with a delimiter every item is its own line.
pub fn split(input: &[u8], how: Split) -> Result<Vec<Vec<Vec<u8>>>, String> {
    match how {
        Split::Delimiter(d) => {
            let mut items: Vec<Vec<u8>> = input.split(|b| *b == d).map(<[u8]>::to_vec).collect();
            // A final delimiter ends the last item rather than starting an empty one.
            if items.last().is_some_and(Vec::is_empty) {
                items.pop();
            }
            Ok(items.into_iter().map(|i| vec![i]).collect())
        }
        Split::Blanks => blanks(input),
    }
}

const UNMATCHED: &str = "unmatched quote; by default quotes are special to xargs unless you use the -0 option";

fn blanks(input: &[u8]) -> Result<Vec<Vec<Vec<u8>>>, String> {
    let mut lines: Vec<Vec<Vec<u8>>> = Vec::new();
    let mut line: Vec<Vec<u8>> = Vec::new();
    let mut item: Option<Vec<u8>> = None;
    let mut quote: Option<u8> = None;
    let mut bytes = input.iter().copied();
    while let Some(b) = bytes.next() {
        if let Some(q) = quote {
            match b {
                b'\n' => return Err(UNMATCHED.to_owned()),
                _ if b == q => quote = None,
                _ => item.get_or_insert_with(Vec::new).push(b),
            }
            continue;
        }
        match b {
            b'\'' | b'"' => {
                quote = Some(b);
                item.get_or_insert_with(Vec::new);
            }
            b'\\' => {
                if let Some(next) = bytes.next() {
                    item.get_or_insert_with(Vec::new).push(next);
                }
            }
            b' ' | b'\t' | b'\n' => {
                if let Some(i) = item.take() {
                    line.push(i);
                }
                // GNU's -L also joins a line that ends in a blank to the next; not modelled.
                if b == b'\n' && !line.is_empty() {
                    lines.push(std::mem::take(&mut line));
                }
            }
            _ => item.get_or_insert_with(Vec::new).push(b),
        }
    }
    if quote.is_some() {
        return Err(UNMATCHED.to_owned());
    }
    if let Some(i) = item.take() {
        line.push(i);
    }
    if !line.is_empty() {
        lines.push(line);
    }
    Ok(lines)
}

/// Command lines: `max_lines` input lines each, or `max_args` items each, or as many items as
/// fit in `max_bytes`.
pub fn group(
    lines: Vec<Vec<Vec<u8>>>,
    max_args: Option<usize>,
    max_lines: Option<usize>,
    max_bytes: usize,
) -> Vec<Vec<Vec<u8>>> {
    if let Some(n) = max_lines {
        return lines.chunks(n).map(|c| c.concat()).collect();
    }
    let items: Vec<Vec<u8>> = lines.into_iter().flatten().collect();
    if let Some(n) = max_args {
        return items.chunks(n).map(<[Vec<u8>]>::to_vec).collect();
    }
    let mut runs: Vec<Vec<Vec<u8>>> = Vec::new();
    let mut current: Vec<Vec<u8>> = Vec::new();
    let mut bytes = 0;
    for item in items {
        if !current.is_empty() && bytes + item.len() + 1 > max_bytes {
            runs.push(std::mem::take(&mut current));
            bytes = 0;
        }
        bytes += item.len() + 1;
        current.push(item);
    }
    if !current.is_empty() {
        runs.push(current);
    }
    runs
}
