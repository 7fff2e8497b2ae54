//! Development secrets: generated on first run into a 0600 file under the data directory, so a
//! newcomer needs no configuration. Values in the process environment always win.

use std::collections::HashMap;
use std::io::Write;
use std::path::Path;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use bastion_http::Env;
use bastion_http::config::ProcessEnv;
use rand_core::{OsRng, RngCore};

const FILE_NAME: &str = "dev-secrets.env";

/// The process environment over the development-secrets file.
pub struct LayeredEnv {
    file: HashMap<String, String>,
}

fn random_b64() -> String {
    let mut key = [0u8; 32];
    OsRng.fill_bytes(&mut key);
    STANDARD.encode(key)
}

impl LayeredEnv {
    pub fn load(data_dir: &Path) -> Result<Self, Box<dyn std::error::Error>> {
        let path = data_dir.join(FILE_NAME);
        if !path.exists() {
            let contents = format!(
                "# Development secrets for bastion-local ONLY. Never use these in a deployment.\nJWT_KEYS=dev1:{}\nPASSWORD_PEPPER=1:{}\nEXEC_SANDBOX_KEY={}\n",
                random_b64(),
                random_b64(),
                random_b64()
            );
            write_private(&path, &contents)?;
            eprintln!(
                "WARNING: generated development secrets in {} (mode 0600). They are for this machine only.",
                path.display()
            );
        }
        let mut text = std::fs::read_to_string(&path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        // Files generated before the exec function existed lack its key: add one.
        if !text
            .lines()
            .any(|l| l.trim_start().starts_with("EXEC_SANDBOX_KEY="))
        {
            let line = format!("EXEC_SANDBOX_KEY={}\n", random_b64());
            std::fs::OpenOptions::new()
                .append(true)
                .open(&path)
                .and_then(|mut f| f.write_all(line.as_bytes()))
                .map_err(|e| format!("cannot update {}: {e}", path.display()))?;
            text.push_str(&line);
        }
        let file = text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
            .collect();
        Ok(Self { file })
    }
}

#[cfg(unix)]
fn write_private(path: &Path, contents: &str) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(contents.as_bytes())
}

#[cfg(not(unix))]
fn write_private(path: &Path, contents: &str) -> std::io::Result<()> {
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)?;
    f.write_all(contents.as_bytes())
}

impl Env for LayeredEnv {
    fn get(&self, key: &str) -> Option<String> {
        ProcessEnv.get(key).or_else(|| self.file.get(key).cloned())
    }

    fn keys(&self) -> Vec<String> {
        let mut keys = ProcessEnv.keys();
        keys.extend(self.file.keys().cloned());
        keys
    }
}
