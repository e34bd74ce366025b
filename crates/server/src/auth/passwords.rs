//! Password hashing with Argon2id (the `argon2` crate's default parameters), in PHC string form.
//!
//! Hashing takes tens of milliseconds on purpose; callers on the async runtime run these
//! functions on the blocking pool.

use std::sync::OnceLock;

use argon2::password_hash::SaltString;
use argon2::{Argon2, PasswordHash, PasswordHasher, PasswordVerifier};
use rand::RngCore;

/// Firebase Auth's minimum (`WEAK_PASSWORD` below it).
pub const MINIMUM_PASSWORD_LENGTH: usize = 6;

/// The PHC string (`$argon2id$v=19$m=19456,t=2,p=1$salt$hash`) for `password`.
pub fn hash_password(password: &str) -> Result<String, argon2::password_hash::Error> {
    // 16 random bytes from the operating system's generator (through `rand`), the salt size
    // the PHC format recommends.
    let mut salt_bytes = [0u8; 16];
    rand::rng().fill_bytes(&mut salt_bytes);
    let salt = SaltString::encode_b64(&salt_bytes)?;
    Ok(Argon2::default()
        .hash_password(password.as_bytes(), &salt)?
        .to_string())
}

/// Whether `password` matches a stored PHC string; a malformed stored hash matches nothing.
pub fn verify_password(password: &str, stored_hash: &str) -> bool {
    PasswordHash::new(stored_hash).is_ok_and(|parsed| {
        Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok()
    })
}

/// Spends the same time as checking a real password, for an email nobody has, so that the
/// answer's timing does not tell which emails have accounts.
pub fn verify_against_nobody(password: &str) {
    static NOBODYS_HASH: OnceLock<String> = OnceLock::new();
    let hash = NOBODYS_HASH
        .get_or_init(|| hash_password("no account has this password").unwrap_or_default());
    let _ = verify_password(password, hash);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_verify_only_their_password() {
        let hash = hash_password("open sesame").unwrap();
        assert!(hash.starts_with("$argon2id$"), "{hash}");
        assert!(verify_password("open sesame", &hash));
        assert!(!verify_password("open sesame!", &hash));
        assert!(!verify_password("open sesame", "not a hash"));
        assert_ne!(hash, hash_password("open sesame").unwrap(), "salted");
    }
}
