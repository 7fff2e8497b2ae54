//! GNU pattern syntax (basic, extended, fixed strings) rewritten as the Rust regex syntax that
//! grep-regex compiles. Back-references have no Rust equivalent and are refused.

/// One regex that matches a line when any of `patterns` does (each pattern may hold several,
/// one per line, as GNU reads them).
pub fn combine(patterns: &[String], fixed: bool, extended: bool) -> Result<String, String> {
    let mut parts = Vec::new();
    for p in patterns {
        for one in p.split('\n') {
            let rust = if fixed {
                escape(one)
            } else {
                translate(one, extended)?
            };
            parts.push(format!("(?:{rust})"));
        }
    }
    Ok(parts.join("|"))
}

fn escape(text: &str) -> String {
    let mut out = String::new();
    for c in text.chars() {
        if "\\.+*?()|[]{}^$#&-~".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Rewrites a basic (`extended == false`) or extended pattern.
fn translate(p: &str, extended: bool) -> Result<String, String> {
    let chars: Vec<char> = p.chars().collect();
    let mut out = String::new();
    let mut i = 0;
    // Whether the next token starts an expression (where BRE reads `*` and `^` literally).
    let mut at_start = true;
    while i < chars.len() {
        let c = chars[i];
        let start = at_start;
        at_start = false;
        match c {
            '[' => i = bracket(&chars, i, &mut out),
            '\\' => {
                let Some(&n) = chars.get(i + 1) else {
                    return Err("trailing backslash (\\)".into());
                };
                i += 2;
                if n.is_ascii_digit() && n != '0' {
                    return Err("back-references (\\1-\\9) are not supported".into());
                }
                if !extended && "(){}|+?".contains(n) {
                    out.push(n);
                    at_start = n == '(' || n == '|';
                } else if "<>bBwWsS".contains(n) || !n.is_ascii_alphanumeric() {
                    out.push('\\');
                    out.push(n);
                } else {
                    // GNU reads a stray `\x` as `x`.
                    out.push_str(&escape(&n.to_string()));
                }
                continue;
            }
            '(' | ')' | '{' | '}' | '|' | '+' | '?' if !extended => {
                out.push('\\');
                out.push(c);
            }
            '*' if start => out.push_str("\\*"),
            '^' if !extended && !start => out.push_str("\\^"),
            '$' if !extended && !at_end(&chars, i + 1) => out.push_str("\\$"),
            '(' | '|' | '^' => {
                out.push(c);
                at_start = true;
            }
            '#' | '&' | '~' | '-' => {
                out.push('\\');
                out.push(c);
            }
            _ => out.push(c),
        }
        if c != '[' {
            i += 1;
        }
    }
    Ok(out)
}

/// Whether a BRE `$` at `next - 1` ends the expression (end, `\)` or `\|` follows).
fn at_end(chars: &[char], next: usize) -> bool {
    next == chars.len()
        || (chars.get(next) == Some(&'\\') && matches!(chars.get(next + 1), Some(')' | '|')))
}

/// Copies a bracket expression starting at `open`; returns the index after it. POSIX reads a
/// backslash inside brackets literally, Rust as an escape.
fn bracket(chars: &[char], open: usize, out: &mut String) -> usize {
    let mut i = open + 1;
    out.push('[');
    if chars.get(i) == Some(&'^') {
        out.push('^');
        i += 1;
    }
    if chars.get(i) == Some(&']') {
        out.push_str("\\]");
        i += 1;
    }
    while i < chars.len() {
        let c = chars[i];
        if c == ']' {
            out.push(']');
            return i + 1;
        }
        if c == '[' && matches!(chars.get(i + 1), Some(':' | '.' | '=')) {
            let close = chars.get(i + 1).copied().unwrap_or(':');
            let mut j = i + 2;
            while j + 1 < chars.len() && !(chars[j] == close && chars[j + 1] == ']') {
                j += 1;
            }
            let class: String = chars[i..(j + 2).min(chars.len())].iter().collect();
            out.push_str(&class);
            i = j + 2;
            continue;
        }
        if "\\[&~".contains(c) {
            out.push('\\');
        }
        out.push(c);
        i += 1;
    }
    // Unclosed: let the regex compiler report it.
    i
}

#[cfg(test)]
mod tests {
    use super::combine;

    fn one(p: &str, extended: bool) -> Result<String, String> {
        combine(&[p.to_owned()], false, extended)
    }

    #[test]
    fn basic_and_extended_patterns_become_rust_syntax() {
        assert_eq!(
            one("a\\(b\\)\\{2\\}c+", false),
            Ok("(?:a(b){2}c\\+)".to_owned())
        );
        assert_eq!(one("*a^b$", false), Ok("(?:\\*a\\^b$)".to_owned()));
        assert_eq!(one("a|b(c)", true), Ok("(?:a|b(c))".to_owned()));
        assert_eq!(one("[\\]a-]", true), Ok("(?:[\\\\]a\\-])".to_owned()));
        assert_eq!(
            one("[[:digit:]&]", true),
            Ok("(?:[[:digit:]\\&])".to_owned())
        );
        assert_eq!(
            combine(&["a.b\nc".to_owned()], true, false),
            Ok("(?:a\\.b)|(?:c)".to_owned())
        );
        assert_eq!(
            one("\\(a\\)\\1", false),
            Err("back-references (\\1-\\9) are not supported".to_owned())
        );
    }
}
