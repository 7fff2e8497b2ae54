//! Fuzzes the exec command splitter: never panics, and words quoted back into a line split
//! into exactly the same words (no expansion, nothing lost or merged).
#![no_main]

use bastion_sandbox::split;
use libfuzzer_sys::fuzz_target;

/// POSIX single quoting: `'` becomes `'\''`.
fn quote(word: &str) -> String {
    format!("'{}'", word.replace('\'', r"'\''"))
}

fuzz_target!(|data: &[u8]| {
    let Ok(line) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(words) = split(line) else {
        return;
    };
    let rejoined: Vec<String> = words.iter().map(|w| quote(w)).collect();
    assert_eq!(split(&rejoined.join(" ")).as_ref(), Ok(&words), "line {line:?}");
    assert!(words.len() <= line.len(), "more words than bytes in {line:?}");
});
