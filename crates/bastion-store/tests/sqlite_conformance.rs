//! The conformance suite against `SqliteStore`, on a fresh database file per test.
// Fixtures outside `#[test]` fns are test code too; a failed setup should fail loudly.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use bastion_core::envelope::{ContentSealer, LocalContentKeys};
use bastion_core::{Email, ManualClock, Timestamp, UserId};
use bastion_store::conformance::RawDump;
use bastion_store::{SqliteStore, Stores, UserStore};

/// A database file under the temp dir, removed (with its WAL files) when the test ends, pass
/// or fail.
struct TempDb(PathBuf);

impl TempDb {
    fn new() -> Self {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let nanos = bastion_core::Clock::now_nanos(&bastion_core::SystemClock);
        let name = format!(
            "bastion-store-test-{}-{nanos}-{}.sqlite3",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        Self(std::env::temp_dir().join(name))
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDb {
    fn drop(&mut self) {
        for suffix in ["", "-wal", "-shm"] {
            let mut path = self.0.clone().into_os_string();
            path.push(suffix);
            let _ = std::fs::remove_file(path);
        }
    }
}

async fn sqlite() -> (Stores, TempDb) {
    let db = TempDb::new();
    let store = SqliteStore::open(db.path()).unwrap();
    (Stores::from_adapter(Arc::new(store)), db)
}

bastion_store::conformance_tests!(sqlite);

/// Reads every row of every table straight from the database file, around the store.
struct RawSqlite(TempDb);

#[async_trait::async_trait]
impl RawDump for RawSqlite {
    async fn dump(&self) -> String {
        use rusqlite::types::ValueRef;
        let conn = rusqlite::Connection::open(self.0.path()).unwrap();
        let tables: Vec<String> = conn
            .prepare("SELECT name FROM sqlite_master WHERE type = 'table'")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        let mut out = String::new();
        for table in tables {
            let mut stmt = conn.prepare(&format!("SELECT * FROM \"{table}\"")).unwrap();
            let columns = stmt.column_count();
            let mut rows = stmt.query([]).unwrap();
            while let Some(row) = rows.next().unwrap() {
                for i in 0..columns {
                    match row.get_ref(i).unwrap() {
                        ValueRef::Text(b) | ValueRef::Blob(b) => {
                            out.push_str(&String::from_utf8_lossy(b));
                        }
                        other => out.push_str(&format!("{other:?}")),
                    }
                    out.push('\t');
                }
                out.push('\n');
            }
        }
        out
    }
}

/// The local key-encryption key format, as `bastion-local` uses it.
fn local_sealer() -> Arc<ContentSealer> {
    let keys = LocalContentKeys::parse("test:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8").unwrap();
    Arc::new(ContentSealer::new(
        Arc::new(keys),
        Arc::new(ManualClock::new(Timestamp(1_800_000_000))),
    ))
}

async fn sqlite_sealed() -> (Stores, Arc<ContentSealer>, RawSqlite) {
    let (stores, db) = sqlite().await;
    (stores, local_sealer(), RawSqlite(db))
}

bastion_store::sealed_conformance_tests!(sqlite_sealed);

#[tokio::test]
async fn reopening_a_database_file_keeps_its_data_and_schema() {
    let db = TempDb::new();
    let user = bastion_store::conformance::user("olaf@example.com");
    {
        let store = SqliteStore::open(db.path()).unwrap();
        store.create_user(&user).await.unwrap();
    }
    let store = SqliteStore::open(db.path()).unwrap();
    assert_eq!(store.get_user(&user.id).await.unwrap(), Some(user.clone()));
    let email = Email::parse("olaf@example.com").unwrap();
    assert_eq!(store.find_user_by_email(&email).await.unwrap(), Some(user));
    assert_eq!(store.get_user(&UserId::generate()).await.unwrap(), None);
}

#[tokio::test]
async fn an_in_memory_store_passes_a_round_trip() {
    let store = SqliteStore::open_in_memory().unwrap();
    let user = bastion_store::conformance::user("ursula@example.com");
    store.create_user(&user).await.unwrap();
    assert_eq!(store.get_user(&user.id).await.unwrap(), Some(user));
}

#[tokio::test]
async fn opening_a_path_in_a_missing_directory_fails_as_unavailable() {
    let missing = std::env::temp_dir()
        .join("bastion-store-no-such-dir-7f3a")
        .join("db.sqlite3");
    let err = SqliteStore::open(&missing).unwrap_err();
    assert!(
        matches!(err, bastion_store::StoreError::Unavailable(_)),
        "{err:?}"
    );
}
