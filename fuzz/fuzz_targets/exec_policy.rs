//! Fuzzes the exec option policy: an argv (split from the input, first word one of the known
//! commands) never panics the checker, and an accepted argv has no path word that escapes the
//! sandbox or that the checker did not classify.
#![no_main]

use std::sync::OnceLock;

use bastion_sandbox::{CommandPolicy, DEFAULT_COMMANDS, Role, SandboxPath, known_commands, split};
use libfuzzer_sys::fuzz_target;

fn policy() -> &'static CommandPolicy {
    static POLICY: OnceLock<CommandPolicy> = OnceLock::new();
    POLICY.get_or_init(|| {
        let names: Vec<&str> = known_commands().chain(DEFAULT_COMMANDS.iter().copied()).collect();
        CommandPolicy::resolve(&names, false).unwrap_or_else(|e| panic!("allowlist: {e}"))
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((&pick, rest)) = data.split_first() else {
        return;
    };
    let Ok(line) = std::str::from_utf8(rest) else {
        return;
    };
    let Ok(mut words) = split(line) else {
        return;
    };
    let names = policy().names();
    let Some(command) = names.get(usize::from(pick) % names.len()) else {
        return;
    };
    words.insert(0, (*command).to_owned());
    let checked = policy().check(&words);
    let classified = policy().classify(&words);
    if checked.is_err() {
        return;
    }
    let Ok(classified) = classified else {
        panic!("check accepted {words:?} but classify refused it: {classified:?}");
    };
    for word in &classified {
        assert!(word.index >= 1 && word.index < words.len());
        if word.role == Role::Path {
            assert!(
                SandboxPath::parse_bytes(word.text.as_bytes()).is_ok(),
                "accepted path word {:?} in {words:?}",
                word.text
            );
        }
    }
    // Every operand word that is not an option is read as something: none silently skipped.
    for (index, w) in words.iter().enumerate().skip(1) {
        assert!(
            classified.iter().any(|c| c.index == index),
            "word {index} ({w:?}) of accepted {words:?} was not classified"
        );
    }
});
