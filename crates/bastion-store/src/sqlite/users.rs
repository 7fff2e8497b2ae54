//! SQLite `UserStore`: the unique `email` column is the uniqueness guard.

use async_trait::async_trait;
use bastion_core::{DisplayName, Email, Role, Timestamp, UserId};
use rusqlite::{OptionalExtension, Row, params};

use super::{SqliteStore, corrupt, db_error};
use crate::{CreateUserError, StoreError, UserRecord, UserStore};

pub(super) const USER_COLUMNS: &str = "id, email, display_name, password_hash, roles, created_at, disabled, session_epoch, email_verified";

#[async_trait]
impl UserStore for SqliteStore {
    async fn create_user(&self, user: &UserRecord) -> Result<(), CreateUserError> {
        let user = user.clone();
        let roles = encode_roles(&user.roles)?;
        self.run(move |conn| {
            let inserted = insert_user(conn, &user, &roles);
            match inserted {
                Ok(_) => Ok(()),
                Err(e) if is_unique_violation_of(&e, "users.email") => {
                    Err(CreateUserError::EmailTaken)
                }
                Err(e) => Err(db_error(e).into()),
            }
        })
        .await
    }

    async fn get_user(&self, id: &UserId) -> Result<Option<UserRecord>, StoreError> {
        let id = id.as_str().to_owned();
        self.run(move |conn| {
            conn.query_row(
                &format!("SELECT {USER_COLUMNS} FROM users WHERE id = ?1"),
                [id],
                raw_user,
            )
            .optional()
            .map_err(db_error)?
            .map(RawUser::into_record)
            .transpose()
        })
        .await
    }

    async fn find_user_by_email(&self, email: &Email) -> Result<Option<UserRecord>, StoreError> {
        let email = email.as_str().to_owned();
        self.run(move |conn| {
            conn.query_row(
                &format!("SELECT {USER_COLUMNS} FROM users WHERE email = ?1"),
                [email],
                raw_user,
            )
            .optional()
            .map_err(db_error)?
            .map(RawUser::into_record)
            .transpose()
        })
        .await
    }

    async fn set_password_hash(
        &self,
        id: &UserId,
        expected: &str,
        hash: &str,
    ) -> Result<bool, StoreError> {
        let id = id.as_str().to_owned();
        let (expected, hash) = (expected.to_owned(), hash.to_owned());
        self.run(move |conn| {
            let changed = conn
                .execute(
                    "UPDATE users SET password_hash = ?2 WHERE id = ?1 AND password_hash = ?3",
                    params![id, hash, expected],
                )
                .map_err(db_error)?;
            Ok(changed == 1)
        })
        .await
    }

    async fn set_email_verified(&self, id: &UserId, email: &Email) -> Result<bool, StoreError> {
        let (id, email) = (id.as_str().to_owned(), email.as_str().to_owned());
        self.run(move |conn| {
            let changed = conn
                .execute(
                    "UPDATE users SET email_verified = 1 WHERE id = ?1 AND email = ?2",
                    params![id, email],
                )
                .map_err(db_error)?;
            Ok(changed == 1)
        })
        .await
    }

    async fn delete_user(&self, id: &UserId) -> Result<(), StoreError> {
        let id = id.as_str().to_owned();
        // Sessions, the second factor and a reset token go with the row through
        // `ON DELETE CASCADE`, in the same statement.
        self.run(move |conn| {
            conn.execute("DELETE FROM users WHERE id = ?1", [id])
                .map_err(db_error)?;
            Ok(())
        })
        .await
    }
}

pub(super) fn is_unique_violation_of(e: &rusqlite::Error, column: &str) -> bool {
    match e {
        rusqlite::Error::SqliteFailure(err, Some(msg)) => {
            err.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE && msg.contains(column)
        }
        _ => false,
    }
}

pub(super) fn encode_roles(roles: &[Role]) -> Result<String, StoreError> {
    serde_json::to_string(roles).map_err(|e| StoreError::Corrupt(format!("roles: {e}")))
}

/// A row as stored, parsed into domain types outside the rusqlite callback so that a bad value
/// surfaces as `Corrupt` rather than as a database error.
pub(super) struct RawUser {
    id: String,
    email: String,
    display_name: Option<String>,
    password_hash: String,
    roles: String,
    created_at: i64,
    disabled: bool,
    session_epoch: i64,
    email_verified: bool,
}

pub(super) fn raw_user(row: &Row<'_>) -> rusqlite::Result<RawUser> {
    Ok(RawUser {
        id: row.get(0)?,
        email: row.get(1)?,
        display_name: row.get(2)?,
        password_hash: row.get(3)?,
        roles: row.get(4)?,
        created_at: row.get(5)?,
        disabled: row.get(6)?,
        session_epoch: row.get(7)?,
        email_verified: row.get(8)?,
    })
}

impl RawUser {
    pub(super) fn into_record(self) -> Result<UserRecord, StoreError> {
        let roles: Vec<Role> =
            serde_json::from_str(&self.roles).map_err(|e| corrupt("user roles", e))?;
        Ok(UserRecord {
            id: UserId::parse(&self.id).map_err(|e| corrupt("user id", e.message))?,
            email: Email::parse(&self.email).map_err(|e| corrupt("user email", e.message))?,
            display_name: self
                .display_name
                .as_deref()
                .map(DisplayName::parse)
                .transpose()
                .map_err(|e| corrupt("display name", e.message))?,
            password_hash: self.password_hash,
            roles,
            created_at: Timestamp(self.created_at),
            disabled: self.disabled,
            session_epoch: u64::try_from(self.session_epoch)
                .map_err(|e| corrupt("session epoch", e))?,
            email_verified: self.email_verified,
        })
    }
}

/// The profile row, shared by password and Google sign-ups; the email's UNIQUE constraint is
/// the uniqueness guard.
pub(super) fn insert_user(
    conn: &rusqlite::Connection,
    user: &UserRecord,
    roles: &str,
) -> rusqlite::Result<usize> {
    conn.execute(
        "INSERT INTO users (id, email, display_name, password_hash, roles, created_at, disabled,
                            session_epoch, email_verified)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
        params![
            user.id.as_str(),
            user.email.as_str(),
            user.display_name.as_ref().map(DisplayName::as_str),
            user.password_hash,
            roles,
            user.created_at.secs(),
            user.disabled,
            i64::try_from(user.session_epoch).unwrap_or(i64::MAX),
            user.email_verified,
        ],
    )
}
