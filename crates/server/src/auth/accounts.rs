//! Shops, users and refresh tokens, in their own tables of the server's SQLite file.
//!
//! They share `counterbook.sqlite3` with the documents (one file to back up) but not its
//! connections: this module opens its own, so the document store knows nothing of accounts.
//! Besides `store`, this is the only module that imports rusqlite. Sign-ins and the admin CLI
//! (another process, possibly while the server runs) both come through here; SQLite's locking
//! and the busy timeout keep them apart.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use rand::Rng;
use rusqlite::{params, Connection, ErrorCode, OptionalExtension};

use super::policy::Role;
use crate::store::DATABASE_FILE_NAME;

const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

const SCHEMA: &str = "
    CREATE TABLE IF NOT EXISTS auth_shops (
        shop_id TEXT PRIMARY KEY,
        name TEXT NOT NULL,
        created_at_seconds INTEGER NOT NULL
    ) WITHOUT ROWID;
    CREATE TABLE IF NOT EXISTS auth_users (
        user_id TEXT PRIMARY KEY,
        -- Stored lowercased: sign-in ignores the case of emails, as Firebase Auth does.
        email TEXT NOT NULL UNIQUE,
        shop_id TEXT NOT NULL REFERENCES auth_shops (shop_id),
        role TEXT NOT NULL CHECK (role IN ('owner', 'manager', 'cashier')),
        password_hash TEXT NOT NULL,
        disabled INTEGER NOT NULL DEFAULT 0,
        created_at_seconds INTEGER NOT NULL
    ) WITHOUT ROWID;
    CREATE TABLE IF NOT EXISTS auth_refresh_tokens (
        token_sha256 TEXT PRIMARY KEY,
        user_id TEXT NOT NULL REFERENCES auth_users (user_id),
        created_at_seconds INTEGER NOT NULL
    ) WITHOUT ROWID;
";

/// What can go wrong with accounts; the CLI prints these as they are.
#[derive(Debug, thiserror::Error)]
pub enum AccountsError {
    #[error("unknown shop {0:?}; create it first with `counterbook-server shop create`")]
    UnknownShop(String),
    #[error("shop {0:?} already exists")]
    DuplicateShop(String),
    #[error("a user with email {0:?} already exists")]
    DuplicateEmail(String),
    #[error("no user has the email {0:?}")]
    UnknownEmail(String),
    #[error(
        "invalid shop id {0:?}: use 1 to 100 letters, digits, '-' or '_' (it becomes a Firestore document id)"
    )]
    InvalidShopId(String),
    #[error("invalid email address {0:?}")]
    InvalidEmail(String),
    #[error("the password is too short: at least {minimum} characters")]
    WeakPassword { minimum: usize },
    #[error("cannot hash the password: {0}")]
    PasswordHashing(String),
    #[error("cannot create the data directory {path}: {source}")]
    DataDirectory {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("accounts database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
}

/// A user as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UserRecord {
    pub user_id: String,
    pub email: String,
    pub shop: String,
    pub role: Role,
    pub password_hash: String,
    pub disabled: bool,
    pub created_at_seconds: i64,
}

/// The accounts tables behind one data directory.
pub struct Accounts {
    /// A std Mutex, not a Tokio one: every use is synchronous, on a blocking thread.
    connection: Mutex<Connection>,
}

/// Emails are compared without case and surrounding spaces.
pub fn normalize_email(email: &str) -> String {
    email.trim().to_lowercase()
}

/// A plausible address: something@domain, no spaces. Deliverability is not our business.
pub fn is_valid_email(email: &str) -> bool {
    match email.split_once('@') {
        Some((local, domain)) => {
            !local.is_empty()
                && !domain.is_empty()
                && !domain.contains('@')
                && !email.chars().any(char::is_whitespace)
        }
        None => false,
    }
}

/// Shop ids become the `{shop}` segment of document paths and a custom claim, so they are kept
/// to characters that need no escaping anywhere.
pub fn is_valid_shop_id(shop_id: &str) -> bool {
    (1..=100).contains(&shop_id.len())
        && shop_id
            .chars()
            .all(|character| character.is_ascii_alphanumeric() || matches!(character, '-' | '_'))
}

/// A 28-character id like Firebase Auth's user ids.
fn new_user_id() -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut random = rand::rng();
    (0..28)
        .map(|_| char::from(ALPHABET[random.random_range(0..ALPHABET.len())]))
        .collect()
}

fn is_unique_violation(error: &rusqlite::Error) -> bool {
    error.sqlite_error_code() == Some(ErrorCode::ConstraintViolation)
}

impl Accounts {
    /// Opens (creating if needed) the accounts tables in `data_directory/counterbook.sqlite3`.
    pub fn open(data_directory: &Path) -> Result<Accounts, AccountsError> {
        crate::store::prepare_private_data_directory(data_directory).map_err(|source| {
            AccountsError::DataDirectory {
                path: data_directory.to_owned(),
                source,
            }
        })?;
        let connection = Connection::open(data_directory.join(DATABASE_FILE_NAME))?;
        connection.busy_timeout(BUSY_TIMEOUT)?;
        // FULL, as for documents: a disabled user or a revoked refresh token must stay so
        // after a power cut, not only after a crash of the process.
        connection.execute_batch(
            "PRAGMA journal_mode = WAL;
             PRAGMA synchronous = FULL;
             PRAGMA foreign_keys = ON;",
        )?;
        connection.execute_batch(SCHEMA)?;
        Ok(Accounts {
            connection: Mutex::new(connection),
        })
    }

    fn connection(&self) -> std::sync::MutexGuard<'_, Connection> {
        // Every statement here is a single autocommit statement or a transaction that rolls
        // back when dropped, so a panic never leaves the connection mid-transaction.
        self.connection
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub fn create_shop(&self, shop_id: &str, name: &str, now: i64) -> Result<(), AccountsError> {
        if !is_valid_shop_id(shop_id) {
            return Err(AccountsError::InvalidShopId(shop_id.to_owned()));
        }
        self.connection()
            .execute(
                "INSERT INTO auth_shops (shop_id, name, created_at_seconds) VALUES (?1, ?2, ?3)",
                params![shop_id, name, now],
            )
            .map_err(|error| match is_unique_violation(&error) {
                true => AccountsError::DuplicateShop(shop_id.to_owned()),
                false => error.into(),
            })?;
        Ok(())
    }

    /// Adds a user; `password_hash` comes from `passwords::hash_password`. Returns the user id.
    pub fn add_user(
        &self,
        shop_id: &str,
        email: &str,
        role: Role,
        password_hash: &str,
        now: i64,
    ) -> Result<String, AccountsError> {
        let email = normalize_email(email);
        if !is_valid_email(&email) {
            return Err(AccountsError::InvalidEmail(email));
        }
        let mut connection = self.connection();
        let transaction = connection.transaction()?;
        let shop_exists = transaction
            .query_row(
                "SELECT 1 FROM auth_shops WHERE shop_id = ?1",
                [shop_id],
                |_| Ok(()),
            )
            .optional()?
            .is_some();
        if !shop_exists {
            return Err(AccountsError::UnknownShop(shop_id.to_owned()));
        }
        let user_id = new_user_id();
        transaction
            .execute(
                "INSERT INTO auth_users (user_id, email, shop_id, role, password_hash, disabled,
                                         created_at_seconds)
                 VALUES (?1, ?2, ?3, ?4, ?5, 0, ?6)",
                params![user_id, email, shop_id, role.as_str(), password_hash, now],
            )
            .map_err(|error| match is_unique_violation(&error) {
                true => AccountsError::DuplicateEmail(email.clone()),
                false => error.into(),
            })?;
        transaction.commit()?;
        Ok(user_id)
    }

    /// Disables a user and revokes every refresh token they hold, in one transaction. Their ID
    /// tokens stay valid until they expire (at most an hour), as on Firebase Auth.
    pub fn disable_user(&self, email: &str) -> Result<(), AccountsError> {
        let email = normalize_email(email);
        let mut connection = self.connection();
        let transaction = connection.transaction()?;
        let user_id: Option<String> = transaction
            .query_row(
                "SELECT user_id FROM auth_users WHERE email = ?1",
                [&email],
                |row| row.get(0),
            )
            .optional()?;
        let Some(user_id) = user_id else {
            return Err(AccountsError::UnknownEmail(email));
        };
        transaction.execute(
            "UPDATE auth_users SET disabled = 1 WHERE user_id = ?1",
            [&user_id],
        )?;
        transaction.execute(
            "DELETE FROM auth_refresh_tokens WHERE user_id = ?1",
            [&user_id],
        )?;
        transaction.commit()?;
        Ok(())
    }

    pub fn find_user_by_email(&self, email: &str) -> Result<Option<UserRecord>, AccountsError> {
        self.find_user("email = ?1", &normalize_email(email))
    }

    pub fn find_user_by_id(&self, user_id: &str) -> Result<Option<UserRecord>, AccountsError> {
        self.find_user("user_id = ?1", user_id)
    }

    /// The user a refresh token belongs to, if the token is known (`token_sha256` from
    /// `tokens::hash_refresh_token`).
    pub fn find_user_by_refresh_token(
        &self,
        token_sha256: &str,
    ) -> Result<Option<UserRecord>, AccountsError> {
        self.find_user(
            "user_id = (SELECT user_id FROM auth_refresh_tokens WHERE token_sha256 = ?1)",
            token_sha256,
        )
    }

    fn find_user(&self, condition: &str, key: &str) -> Result<Option<UserRecord>, AccountsError> {
        let connection = self.connection();
        let row = connection
            .query_row(
                &format!(
                    "SELECT user_id, email, shop_id, role, password_hash, disabled,
                            created_at_seconds
                     FROM auth_users WHERE {condition}"
                ),
                [key],
                |row| {
                    Ok((
                        row.get::<_, String>(0)?,
                        row.get::<_, String>(1)?,
                        row.get::<_, String>(2)?,
                        row.get::<_, String>(3)?,
                        row.get::<_, String>(4)?,
                        row.get::<_, bool>(5)?,
                        row.get::<_, i64>(6)?,
                    ))
                },
            )
            .optional()?;
        Ok(row.and_then(
            |(user_id, email, shop, role, password_hash, disabled, created)| {
                // The CHECK constraint keeps roles valid; a row edited by hand into something
                // else is treated as no user rather than guessed at.
                Some(UserRecord {
                    role: Role::parse(&role)?,
                    user_id,
                    email,
                    shop,
                    password_hash,
                    disabled,
                    created_at_seconds: created,
                })
            },
        ))
    }

    pub fn store_refresh_token(
        &self,
        token_sha256: &str,
        user_id: &str,
        now: i64,
    ) -> Result<(), AccountsError> {
        self.connection().execute(
            "INSERT INTO auth_refresh_tokens (token_sha256, user_id, created_at_seconds)
             VALUES (?1, ?2, ?3)",
            params![token_sha256, user_id, now],
        )?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shops_users_and_refresh_tokens() {
        let directory = tempfile::tempdir().unwrap();
        let accounts = Accounts::open(directory.path()).unwrap();
        assert!(matches!(
            accounts.add_user("kirana-1", "a@example.com", Role::Owner, "hash", 1),
            Err(AccountsError::UnknownShop(_))
        ));
        accounts.create_shop("kirana-1", "Kirana", 1).unwrap();
        assert!(matches!(
            accounts.create_shop("kirana-1", "Again", 1),
            Err(AccountsError::DuplicateShop(_))
        ));
        assert!(matches!(
            accounts.create_shop("../x", "Bad", 1),
            Err(AccountsError::InvalidShopId(_))
        ));
        let user_id = accounts
            .add_user("kirana-1", " Asha@Example.com ", Role::Cashier, "hash", 1)
            .unwrap();
        assert_eq!(user_id.len(), 28);
        assert!(matches!(
            accounts.add_user("kirana-1", "asha@example.COM", Role::Owner, "hash", 1),
            Err(AccountsError::DuplicateEmail(_))
        ));
        assert!(matches!(
            accounts.add_user("kirana-1", "not an email", Role::Owner, "hash", 1),
            Err(AccountsError::InvalidEmail(_))
        ));
        let user = accounts
            .find_user_by_email("ASHA@example.com")
            .unwrap()
            .unwrap();
        assert_eq!(user.email, "asha@example.com");
        assert_eq!((user.shop.as_str(), user.role), ("kirana-1", Role::Cashier));
        assert!(!user.disabled);
        assert_eq!(
            accounts.find_user_by_id(&user_id).unwrap(),
            Some(user.clone())
        );

        accounts.store_refresh_token("digest", &user_id, 2).unwrap();
        assert_eq!(
            accounts.find_user_by_refresh_token("digest").unwrap(),
            Some(user.clone())
        );
        accounts.disable_user("asha@example.com").unwrap();
        assert_eq!(accounts.find_user_by_refresh_token("digest").unwrap(), None);
        assert!(
            accounts
                .find_user_by_email("asha@example.com")
                .unwrap()
                .unwrap()
                .disabled
        );
        assert!(matches!(
            accounts.disable_user("nobody@example.com"),
            Err(AccountsError::UnknownEmail(_))
        ));
    }
}
