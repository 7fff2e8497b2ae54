//! SQLite adapter: the embedded local default, one connection behind a mutex.
//!
//! Every call runs on tokio's blocking pool so a slow disk never stalls the async workers.
//! Writes that must be atomic run in `BEGIN IMMEDIATE` transactions, which also serialise them
//! against other processes sharing the file.

mod accounts;
mod api_keys;
mod audit;
pub(crate) mod billing;
mod chat;
mod counters;
mod deliveries;
mod leases;
mod mfa;
mod recovery;
mod sessions;
mod users;

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rusqlite::Connection;

use crate::StoreError;

/// How long a writer waits for another process's lock before the call fails (fail closed).
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// `STRICT` tables reject values of the wrong type instead of silently storing them.
const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS users (
    id            TEXT PRIMARY KEY NOT NULL,
    email         TEXT NOT NULL UNIQUE,
    display_name  TEXT,
    password_hash TEXT NOT NULL,
    roles         TEXT NOT NULL,
    created_at    INTEGER NOT NULL,
    disabled      INTEGER NOT NULL,
    session_epoch INTEGER NOT NULL DEFAULT 0,
    email_verified INTEGER NOT NULL DEFAULT 0
) STRICT;

CREATE TABLE IF NOT EXISTS password_resets (
    user_id    TEXT PRIMARY KEY NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    hash       TEXT NOT NULL,
    expires_at INTEGER NOT NULL
) STRICT;

CREATE TABLE IF NOT EXISTS totp (
    user_id    TEXT PRIMARY KEY NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    id         TEXT NOT NULL,
    secret     TEXT NOT NULL,
    confirmed  INTEGER NOT NULL,
    last_step  INTEGER NOT NULL,
    created_at INTEGER NOT NULL
) STRICT;

CREATE TABLE IF NOT EXISTS recovery_codes (
    user_id TEXT NOT NULL REFERENCES totp(user_id) ON DELETE CASCADE,
    hash    TEXT NOT NULL,
    PRIMARY KEY (user_id, hash)
) STRICT;

CREATE TABLE IF NOT EXISTS sessions (
    user_id      TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    id           TEXT NOT NULL,
    refresh_hash TEXT NOT NULL,
    created_at   INTEGER NOT NULL,
    last_used_at INTEGER NOT NULL,
    expires_at   INTEGER NOT NULL,
    ip           TEXT NOT NULL,
    user_agent   TEXT NOT NULL,
    PRIMARY KEY (user_id, id)
) STRICT;

CREATE TABLE IF NOT EXISTS refresh_lookups (
    hash       TEXT PRIMARY KEY NOT NULL,
    user_id    TEXT NOT NULL,
    session_id TEXT NOT NULL,
    expires_at INTEGER NOT NULL
) STRICT;

CREATE TABLE IF NOT EXISTS counters (
    counter_key TEXT NOT NULL,
    win         INTEGER NOT NULL,
    n           INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL,
    PRIMARY KEY (counter_key, win)
) STRICT, WITHOUT ROWID;

CREATE TABLE IF NOT EXISTS audit (
    subject    TEXT NOT NULL,
    at         INTEGER NOT NULL,
    id         TEXT NOT NULL,
    kind       TEXT NOT NULL,
    outcome    TEXT NOT NULL,
    user_id    TEXT,
    ip         TEXT NOT NULL,
    user_agent TEXT NOT NULL,
    request_id TEXT NOT NULL,
    detail     TEXT,
    expires_at INTEGER NOT NULL,
    PRIMARY KEY (subject, at, id)
) STRICT;

CREATE INDEX IF NOT EXISTS audit_by_time ON audit (at, id);

CREATE TABLE IF NOT EXISTS one_time (
    purpose    TEXT NOT NULL,
    hash       TEXT NOT NULL,
    payload    TEXT NOT NULL,
    expires_at INTEGER NOT NULL,
    PRIMARY KEY (purpose, hash)
) STRICT;

CREATE TABLE IF NOT EXISTS google_links (
    sub     TEXT PRIMARY KEY NOT NULL,
    user_id TEXT NOT NULL UNIQUE REFERENCES users(id) ON DELETE CASCADE
) STRICT;

CREATE TABLE IF NOT EXISTS api_keys (
    id           TEXT PRIMARY KEY NOT NULL,
    user_id      TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    hash         TEXT NOT NULL UNIQUE,
    name         TEXT NOT NULL,
    prefix       TEXT NOT NULL,
    scopes       TEXT NOT NULL,
    created_at   INTEGER NOT NULL,
    expires_at   INTEGER NOT NULL,
    last_used_at INTEGER
) STRICT;

CREATE TABLE IF NOT EXISTS conversations (
    owner         TEXT NOT NULL,
    id            TEXT NOT NULL,
    title         TEXT NOT NULL,
    created_at    INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL,
    message_count INTEGER NOT NULL,
    PRIMARY KEY (owner, id)
) STRICT, WITHOUT ROWID;

CREATE TABLE IF NOT EXISTS messages (
    owner             TEXT NOT NULL,
    conversation_id   TEXT NOT NULL,
    seq               INTEGER NOT NULL,
    id                TEXT NOT NULL,
    role              TEXT NOT NULL,
    content           TEXT NOT NULL,
    created_at        INTEGER NOT NULL,
    prompt_tokens     INTEGER NOT NULL,
    completion_tokens INTEGER NOT NULL,
    model             TEXT NOT NULL,
    steps             TEXT NOT NULL DEFAULT '',
    stop_reason       TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (owner, conversation_id, seq),
    FOREIGN KEY (owner, conversation_id) REFERENCES conversations(owner, id) ON DELETE CASCADE
) STRICT;

CREATE TABLE IF NOT EXISTS credits (
    owner      TEXT NOT NULL,
    day        INTEGER NOT NULL,
    used       INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    PRIMARY KEY (owner, day)
) STRICT, WITHOUT ROWID;

-- An account's conversations and credits leave with it, in the deleting statement, as its
-- DynamoDB items (same partition) do.
CREATE TRIGGER IF NOT EXISTS users_delete_chat AFTER DELETE ON users BEGIN
    DELETE FROM conversations WHERE owner = 'user#' || OLD.id;
    DELETE FROM credits WHERE owner = 'user#' || OLD.id;
END;

CREATE TABLE IF NOT EXISTS deliveries (
    delivery_key TEXT PRIMARY KEY NOT NULL,
    state        TEXT NOT NULL,
    holder       TEXT NOT NULL,
    lease_until  INTEGER NOT NULL,
    expires_at   INTEGER NOT NULL
) STRICT;

CREATE TABLE IF NOT EXISTS leases (
    lease_key  TEXT PRIMARY KEY NOT NULL,
    holder     TEXT NOT NULL,
    expires_at INTEGER NOT NULL
) STRICT;

CREATE TABLE IF NOT EXISTS billing (
    user_id       TEXT PRIMARY KEY NOT NULL,
    customer      TEXT,
    status        TEXT,
    paid_through  INTEGER,
    event_created INTEGER
) STRICT;

CREATE TABLE IF NOT EXISTS stripe_customers (
    customer TEXT PRIMARY KEY NOT NULL,
    user_id  TEXT NOT NULL
) STRICT;

-- Billing state goes with the account too; the customer lookup would otherwise point at a
-- user id that no longer exists.
CREATE TRIGGER IF NOT EXISTS users_delete_billing AFTER DELETE ON users BEGIN
    DELETE FROM billing WHERE user_id = OLD.id;
    DELETE FROM stripe_customers WHERE user_id = OLD.id;
END;
";

/// Implements every storage port on one SQLite database.
#[derive(Clone)]
pub struct SqliteStore {
    conn: Arc<Mutex<Connection>>,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore").finish_non_exhaustive()
    }
}

impl SqliteStore {
    /// Opens (creating if needed) a file-backed database in WAL mode and ensures the schema.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let conn = Connection::open(path).map_err(db_error)?;
        conn.busy_timeout(BUSY_TIMEOUT).map_err(db_error)?;
        let mode: String = conn
            .pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0))
            .map_err(db_error)?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(StoreError::Unavailable(format!(
                "sqlite: could not enable WAL journal (got {mode})"
            )));
        }
        // With WAL, NORMAL only risks the last commits on power loss, never corruption.
        conn.pragma_update(None, "synchronous", "NORMAL")
            .map_err(db_error)?;
        Self::init(conn)
    }

    /// A private database that lives as long as this value (and its clones).
    pub fn open_in_memory() -> Result<Self, StoreError> {
        let conn = Connection::open_in_memory().map_err(db_error)?;
        Self::init(conn)
    }

    fn init(conn: Connection) -> Result<Self, StoreError> {
        conn.pragma_update(None, "foreign_keys", true)
            .map_err(db_error)?;
        conn.execute_batch(SCHEMA).map_err(db_error)?;
        add_missing_columns(&conn)?;
        Ok(Self {
            conn: Arc::new(Mutex::new(conn)),
        })
    }

    /// Runs `f` with the connection on the blocking pool.
    async fn run<T, E, F>(&self, f: F) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<StoreError> + Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T, E> + Send + 'static,
    {
        let conn = Arc::clone(&self.conn);
        let joined = tokio::task::spawn_blocking(move || {
            // A poisoned lock means a panic mid-call; the connection itself is still
            // consistent because every multi-statement write is a transaction.
            let mut guard = match conn.lock() {
                Ok(guard) => guard,
                Err(poisoned) => poisoned.into_inner(),
            };
            f(&mut guard)
        })
        .await;
        match joined {
            Ok(result) => result,
            Err(e) => Err(StoreError::Unavailable(format!("sqlite task failed: {e}")).into()),
        }
    }
}

/// Columns added after a table was first released: a database created before gains them.
fn add_missing_columns(conn: &Connection) -> Result<(), StoreError> {
    let has_verified = conn
        .prepare("SELECT 1 FROM pragma_table_info('users') WHERE name = 'email_verified'")
        .and_then(|mut stmt| stmt.exists([]))
        .map_err(db_error)?;
    if !has_verified {
        conn.execute_batch(
            "ALTER TABLE users ADD COLUMN email_verified INTEGER NOT NULL DEFAULT 0",
        )
        .map_err(db_error)?;
    }
    let has_epoch = conn
        .prepare("SELECT 1 FROM pragma_table_info('users') WHERE name = 'session_epoch'")
        .and_then(|mut stmt| stmt.exists([]))
        .map_err(db_error)?;
    if !has_epoch {
        conn.execute_batch("ALTER TABLE users ADD COLUMN session_epoch INTEGER NOT NULL DEFAULT 0")
            .map_err(db_error)?;
    }
    let has_steps = conn
        .prepare("SELECT 1 FROM pragma_table_info('messages') WHERE name = 'steps'")
        .and_then(|mut stmt| stmt.exists([]))
        .map_err(db_error)?;
    if !has_steps {
        conn.execute_batch("ALTER TABLE messages ADD COLUMN steps TEXT NOT NULL DEFAULT ''")
            .map_err(db_error)?;
    }
    let has_stop_reason = conn
        .prepare("SELECT 1 FROM pragma_table_info('messages') WHERE name = 'stop_reason'")
        .and_then(|mut stmt| stmt.exists([]))
        .map_err(db_error)?;
    if !has_stop_reason {
        conn.execute_batch("ALTER TABLE messages ADD COLUMN stop_reason TEXT NOT NULL DEFAULT ''")
            .map_err(db_error)?;
    }
    Ok(())
}

pub(crate) fn db_error(e: rusqlite::Error) -> StoreError {
    StoreError::Unavailable(format!("sqlite: {e}"))
}

pub(crate) fn corrupt(what: &str, detail: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(format!("sqlite {what}: {detail}"))
}
