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
use rusqlite::{params, Connection, ErrorCode, OptionalExtension, TransactionBehavior};

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

/// Columns added after the first release, with their definitions: added when missing, so a data
/// directory made by an older server opens.
const ADDED_COLUMNS: &[(&str, &str, &str)] =
    &[("auth_users", "display_name", "TEXT NOT NULL DEFAULT ''")];

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
    #[error("this server already holds a shop")]
    AlreadyClaimed,
    #[error("no user has the id {0:?}")]
    UnknownUser(String),
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
    /// The name shown for the user ("Asha"); empty when none was given.
    pub display_name: String,
}

/// The first shop of a server and its owner, as a claim with the setup code makes them.
#[derive(Clone, Debug)]
pub struct FirstShop<'a> {
    pub shop_id: &'a str,
    pub shop_name: &'a str,
    pub owner_email: &'a str,
    pub owner_display_name: &'a str,
    pub owner_password_hash: &'a str,
}

/// Changes to one user; `None` leaves a field as it is.
#[derive(Clone, Debug, Default)]
pub struct UserChanges {
    pub role: Option<Role>,
    pub disabled: Option<bool>,
    pub display_name: Option<String>,
    pub password_hash: Option<String>,
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

/// The columns `user_from_row` reads, in its order.
const USER_COLUMNS: &str =
    "user_id, email, shop_id, role, password_hash, disabled, created_at_seconds, display_name";

fn user_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<Option<UserRecord>> {
    let role: String = row.get(3)?;
    // The CHECK constraint keeps roles valid; a row edited by hand into something else is
    // treated as no user rather than guessed at.
    let Some(role) = Role::parse(&role) else {
        return Ok(None);
    };
    Ok(Some(UserRecord {
        user_id: row.get(0)?,
        email: row.get(1)?,
        shop: row.get(2)?,
        role,
        password_hash: row.get(4)?,
        disabled: row.get(5)?,
        created_at_seconds: row.get(6)?,
        display_name: row.get(7)?,
    }))
}

/// Whether `query` (one `?1` parameter) finds a row.
fn row_exists(
    transaction: &rusqlite::Transaction<'_>,
    query: &str,
    key: &str,
) -> rusqlite::Result<bool> {
    Ok(transaction
        .query_row(query, [key], |_| Ok(()))
        .optional()?
        .is_some())
}

fn insert_user(
    transaction: &rusqlite::Transaction<'_>,
    shop_id: &str,
    email: &str,
    display_name: &str,
    role: Role,
    password_hash: &str,
    now: i64,
) -> Result<String, AccountsError> {
    let user_id = new_user_id();
    transaction
        .execute(
            "INSERT INTO auth_users (user_id, email, shop_id, role, password_hash, disabled,
                                     created_at_seconds, display_name)
             VALUES (?1, ?2, ?3, ?4, ?5, 0, ?6, ?7)",
            params![
                user_id,
                email,
                shop_id,
                role.as_str(),
                password_hash,
                now,
                display_name
            ],
        )
        .map_err(|error| match is_unique_violation(&error) {
            true => AccountsError::DuplicateEmail(email.to_owned()),
            false => error.into(),
        })?;
    Ok(user_id)
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
        for (table, column, definition) in ADDED_COLUMNS {
            let present: bool = connection.query_row(
                &format!(
                    "SELECT EXISTS (SELECT 1 FROM pragma_table_info('{table}') WHERE name = ?1)"
                ),
                [column],
                |row| row.get(0),
            )?;
            if !present {
                connection.execute_batch(&format!(
                    "ALTER TABLE {table} ADD COLUMN {column} {definition}"
                ))?;
            }
        }
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
        self.add_named_user(shop_id, email, "", role, password_hash, now)
    }

    /// Adds a user with a display name. Returns the user id.
    pub fn add_named_user(
        &self,
        shop_id: &str,
        email: &str,
        display_name: &str,
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
        if !row_exists(
            &transaction,
            "SELECT 1 FROM auth_shops WHERE shop_id = ?1",
            shop_id,
        )? {
            return Err(AccountsError::UnknownShop(shop_id.to_owned()));
        }
        let user_id = insert_user(
            &transaction,
            shop_id,
            &email,
            display_name,
            role,
            password_hash,
            now,
        )?;
        transaction.commit()?;
        Ok(user_id)
    }

    /// Whether any shop exists: a server holding none may be claimed with its setup code.
    pub fn holds_a_shop(&self) -> Result<bool, AccountsError> {
        Ok(self
            .connection()
            .query_row("SELECT EXISTS (SELECT 1 FROM auth_shops)", [], |row| {
                row.get(0)
            })?)
    }

    /// Creates the server's first shop and its owner in one transaction that takes the write
    /// lock before it looks, so of two claims racing (in this process or another) exactly one
    /// finds no shop: the other gets `AlreadyClaimed`. Returns the owner's user id.
    pub fn claim_first_shop(
        &self,
        shop: &FirstShop<'_>,
        now: i64,
    ) -> Result<String, AccountsError> {
        if !is_valid_shop_id(shop.shop_id) {
            return Err(AccountsError::InvalidShopId(shop.shop_id.to_owned()));
        }
        let email = normalize_email(shop.owner_email);
        if !is_valid_email(&email) {
            return Err(AccountsError::InvalidEmail(email));
        }
        let mut connection = self.connection();
        let transaction = connection.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let holds_a_shop: bool =
            transaction.query_row("SELECT EXISTS (SELECT 1 FROM auth_shops)", [], |row| {
                row.get(0)
            })?;
        if holds_a_shop {
            return Err(AccountsError::AlreadyClaimed);
        }
        transaction.execute(
            "INSERT INTO auth_shops (shop_id, name, created_at_seconds) VALUES (?1, ?2, ?3)",
            params![shop.shop_id, shop.shop_name, now],
        )?;
        let user_id = insert_user(
            &transaction,
            shop.shop_id,
            &email,
            shop.owner_display_name,
            Role::Owner,
            shop.owner_password_hash,
            now,
        )?;
        transaction.commit()?;
        Ok(user_id)
    }

    /// Every user of one shop, by email.
    pub fn users_of_shop(&self, shop_id: &str) -> Result<Vec<UserRecord>, AccountsError> {
        let connection = self.connection();
        let mut statement = connection.prepare(&format!(
            "SELECT {USER_COLUMNS} FROM auth_users WHERE shop_id = ?1 ORDER BY email"
        ))?;
        let rows = statement.query_map([shop_id], user_from_row)?;
        let mut users = Vec::new();
        for row in rows {
            users.extend(row?);
        }
        Ok(users)
    }

    /// Changes a user in one transaction; disabling also revokes every refresh token they
    /// hold, and so does a new password. Returns the user as changed.
    pub fn change_user(
        &self,
        user_id: &str,
        changes: &UserChanges,
    ) -> Result<UserRecord, AccountsError> {
        {
            let mut connection = self.connection();
            let transaction = connection.transaction()?;
            if !row_exists(
                &transaction,
                "SELECT 1 FROM auth_users WHERE user_id = ?1",
                user_id,
            )? {
                return Err(AccountsError::UnknownUser(user_id.to_owned()));
            }
            if let Some(role) = changes.role {
                transaction.execute(
                    "UPDATE auth_users SET role = ?2 WHERE user_id = ?1",
                    params![user_id, role.as_str()],
                )?;
            }
            if let Some(disabled) = changes.disabled {
                transaction.execute(
                    "UPDATE auth_users SET disabled = ?2 WHERE user_id = ?1",
                    params![user_id, disabled],
                )?;
            }
            if let Some(display_name) = &changes.display_name {
                transaction.execute(
                    "UPDATE auth_users SET display_name = ?2 WHERE user_id = ?1",
                    params![user_id, display_name],
                )?;
            }
            if let Some(password_hash) = &changes.password_hash {
                transaction.execute(
                    "UPDATE auth_users SET password_hash = ?2 WHERE user_id = ?1",
                    params![user_id, password_hash],
                )?;
            }
            if changes.disabled == Some(true) || changes.password_hash.is_some() {
                transaction.execute(
                    "DELETE FROM auth_refresh_tokens WHERE user_id = ?1",
                    [user_id],
                )?;
            }
            transaction.commit()?;
        }
        self.find_user_by_id(user_id)?
            .ok_or_else(|| AccountsError::UnknownUser(user_id.to_owned()))
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
                &format!("SELECT {USER_COLUMNS} FROM auth_users WHERE {condition}"),
                [key],
                user_from_row,
            )
            .optional()?;
        Ok(row.flatten())
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
    fn the_first_shop_is_claimed_once_and_users_are_changed_in_one_transaction() {
        let directory = tempfile::tempdir().unwrap();
        let accounts = Accounts::open(directory.path()).unwrap();
        assert!(!accounts.holds_a_shop().unwrap());
        let first = FirstShop {
            shop_id: "kirana-1",
            shop_name: "Kirana",
            owner_email: "Owner@Example.com",
            owner_display_name: "Asha",
            owner_password_hash: "hash",
        };
        let owner_id = accounts.claim_first_shop(&first, 1).unwrap();
        assert!(accounts.holds_a_shop().unwrap());
        assert!(matches!(
            accounts.claim_first_shop(
                &FirstShop {
                    shop_id: "kirana-2",
                    owner_email: "other@example.com",
                    ..first
                },
                2
            ),
            Err(AccountsError::AlreadyClaimed)
        ));
        let owner = accounts.find_user_by_id(&owner_id).unwrap().unwrap();
        assert_eq!(
            (
                owner.email.as_str(),
                owner.display_name.as_str(),
                owner.role
            ),
            ("owner@example.com", "Asha", Role::Owner)
        );
        let cashier_id = accounts
            .add_named_user(
                "kirana-1",
                "ravi@example.com",
                "Ravi",
                Role::Cashier,
                "h",
                3,
            )
            .unwrap();
        accounts
            .store_refresh_token("digest", &cashier_id, 3)
            .unwrap();
        let emails: Vec<String> = accounts
            .users_of_shop("kirana-1")
            .unwrap()
            .into_iter()
            .map(|user| user.email)
            .collect();
        assert_eq!(emails, ["owner@example.com", "ravi@example.com"]);
        assert!(accounts.users_of_shop("elsewhere").unwrap().is_empty());

        let promoted = accounts
            .change_user(
                &cashier_id,
                &UserChanges {
                    role: Some(Role::Manager),
                    display_name: Some("Ravi K".into()),
                    ..UserChanges::default()
                },
            )
            .unwrap();
        assert_eq!(
            (promoted.role, promoted.display_name.as_str()),
            (Role::Manager, "Ravi K")
        );
        // A role change keeps the refresh token (the next refresh carries the new role)...
        assert!(accounts
            .find_user_by_refresh_token("digest")
            .unwrap()
            .is_some());
        let disabled = accounts
            .change_user(
                &cashier_id,
                &UserChanges {
                    disabled: Some(true),
                    ..UserChanges::default()
                },
            )
            .unwrap();
        assert!(disabled.disabled);
        // ...disabling revokes it.
        assert_eq!(accounts.find_user_by_refresh_token("digest").unwrap(), None);
        assert!(matches!(
            accounts.change_user("nobody", &UserChanges::default()),
            Err(AccountsError::UnknownUser(_))
        ));
    }

    #[test]
    fn an_older_accounts_table_gains_the_display_name_column() {
        let directory = tempfile::tempdir().unwrap();
        {
            let connection = Connection::open(directory.path().join(DATABASE_FILE_NAME)).unwrap();
            connection
                .execute_batch(
                    "CREATE TABLE auth_shops (shop_id TEXT PRIMARY KEY, name TEXT NOT NULL,
                        created_at_seconds INTEGER NOT NULL) WITHOUT ROWID;
                     CREATE TABLE auth_users (user_id TEXT PRIMARY KEY, email TEXT NOT NULL UNIQUE,
                        shop_id TEXT NOT NULL, role TEXT NOT NULL, password_hash TEXT NOT NULL,
                        disabled INTEGER NOT NULL DEFAULT 0, created_at_seconds INTEGER NOT NULL)
                        WITHOUT ROWID;
                     INSERT INTO auth_shops VALUES ('s1', 's1', 1);
                     INSERT INTO auth_users VALUES ('u1', 'a@x.com', 's1', 'owner', 'h', 0, 1);",
                )
                .unwrap();
        }
        let accounts = Accounts::open(directory.path()).unwrap();
        let user = accounts.find_user_by_id("u1").unwrap().unwrap();
        assert_eq!(user.display_name, "");
        assert!(accounts.holds_a_shop().unwrap());
    }

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
