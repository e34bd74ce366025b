//! Password hashing with Argon2id (the `argon2` crate's default parameters), in PHC string form.
//!
//! Hashing takes tens of milliseconds on purpose; the server runs checks on the threads of
//! `password_checks`, each reusing its own Argon2 memory (`verify_password`).

use std::cell::RefCell;
use std::sync::OnceLock;

use argon2::password_hash::{Output, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, PasswordHash, PasswordHasher, Version};
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

/// The most Argon2 memory a stored hash may ask a check for: 64 MiB (blocks are 1 KiB).
const MAX_CHECK_MEMORY_BLOCKS: usize = 64 * 1024;

thread_local! {
    /// The Argon2 memory of this thread's checks, kept from one check to the next. Allocating
    /// it per check (19 MiB) made the allocator grow the heap by about that much with every
    /// check; kept per thread, and checks run on the few threads of `password_checks`, the
    /// memory stays bounded.
    static CHECK_MEMORY: RefCell<Vec<Block>> = const { RefCell::new(Vec::new()) };
}

/// Whether `password` matches a stored PHC string; a malformed stored hash matches nothing.
/// The comparison of the outputs takes constant time (`password_hash::Output`).
pub fn verify_password(password: &str, stored_hash: &str) -> bool {
    let Ok(parsed) = PasswordHash::new(stored_hash) else {
        return false;
    };
    let (Some(salt), Some(expected)) = (parsed.salt, parsed.hash) else {
        return false;
    };
    let Ok(algorithm) = Algorithm::try_from(parsed.algorithm) else {
        return false;
    };
    let Ok(version) = parsed.version.map(Version::try_from).transpose() else {
        return false;
    };
    let Ok(params) = Params::try_from(&parsed) else {
        return false;
    };
    let blocks = params.block_count();
    if blocks > MAX_CHECK_MEMORY_BLOCKS {
        return false;
    }
    let mut salt_buffer = [0u8; 64];
    let Ok(salt) = salt.decode_b64(&mut salt_buffer) else {
        return false;
    };
    let argon2 = Argon2::new(algorithm, version.unwrap_or_default(), params);
    let mut computed = vec![0u8; expected.len()];
    let hashed = CHECK_MEMORY.with(|memory| {
        let mut memory = memory.borrow_mut();
        if memory.len() < blocks {
            memory.resize(blocks, Block::default());
        }
        argon2
            .hash_password_into_with_memory(
                password.as_bytes(),
                salt,
                &mut computed,
                &mut memory[..blocks],
            )
            .is_ok()
    });
    hashed && Output::new(&computed).is_ok_and(|computed| computed == expected)
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

    #[test]
    fn hashes_of_other_parameters_and_variants_verify_with_the_reused_memory() {
        let salt = SaltString::encode_b64(b"sixteen byte salt").unwrap();
        for (algorithm, memory_kib, passes) in [
            (Algorithm::Argon2id, 8192, 1),
            (Algorithm::Argon2i, 4096, 3),
            (Algorithm::Argon2d, 30_000, 2),
        ] {
            let params = Params::new(memory_kib, passes, 1, None).unwrap();
            let hash = Argon2::new(algorithm, Version::V0x13, params)
                .hash_password(b"open sesame", &salt)
                .unwrap()
                .to_string();
            assert!(verify_password("open sesame", &hash), "{hash}");
            assert!(!verify_password("open sesame?", &hash), "{hash}");
        }
        // A stored hash asking for more memory than a check may use matches nothing.
        let greedy = "$argon2id$v=19$m=131072,t=1,p=1$c2l4dGVlbiBieXRlIHNhbHQ$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
        assert!(!verify_password("open sesame", greedy));
    }
}
