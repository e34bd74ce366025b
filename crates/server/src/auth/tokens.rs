//! ID tokens and refresh tokens.
//!
//! ID tokens are JWTs signed with HS256 under a secret that the server generates on first start
//! and keeps in the data directory (`auth-signing-key`, mode 0600). Their claims have the shape
//! of Firebase Auth's ID tokens (`iss` `https://securetoken.google.com/{project}`, `aud` the
//! project, `sub` = `user_id`, `auth_time`, `firebase.sign_in_provider` "password"), plus two
//! custom claims, `shop` and `role`, the same custom claims `firestore.rules` reads on Cloud
//! Firestore. They live one hour unless the server is told otherwise. Expiry is checked against the injected `Clock`, not by the JWT
//! library, so tests can move time.
//!
//! Refresh tokens are 256 random bits, base64url; only their SHA-256 is stored.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::Path;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::policy::{Principal, Role};

/// The file in the data directory that holds the signing secret.
pub const SIGNING_KEY_FILE_NAME: &str = "auth-signing-key";
/// How long an ID token is valid by default, as on Firebase Auth (`--token-lifetime-seconds`
/// shortens it, so tests can see tokens expire).
pub const ID_TOKEN_LIFETIME_SECONDS: i64 = 3600;
const SIGNING_KEY_BYTES: usize = 32;

/// The claims of an ID token.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct IdTokenClaims {
    pub iss: String,
    pub aud: String,
    pub auth_time: i64,
    pub user_id: String,
    pub sub: String,
    pub iat: i64,
    pub exp: i64,
    pub email: String,
    pub email_verified: bool,
    pub firebase: FirebaseClaim,
    /// Custom claim: the one shop this user works in.
    pub shop: String,
    /// Custom claim: `owner`, `manager` or `cashier`.
    pub role: String,
}

/// Firebase's `firebase` claim: how the user signed in.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FirebaseClaim {
    pub identities: BTreeMap<String, Vec<String>>,
    pub sign_in_provider: String,
}

/// Why a bearer token was not accepted; all become 401 `UNAUTHENTICATED`.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("the ID token is not a valid token signed by this server: {0}")]
    Invalid(#[source] jsonwebtoken::errors::Error),
    #[error("the ID token has expired; refresh it")]
    Expired,
    #[error("the ID token names an unknown role {0:?}")]
    UnknownRole(String),
}

/// The issuer and audience Firebase uses for a project.
pub fn issuer_for_project(project: &str) -> String {
    format!("https://securetoken.google.com/{project}")
}

/// Signs and verifies ID tokens for one project.
pub struct TokenSigner {
    project: String,
    lifetime_seconds: i64,
    encoding_key: EncodingKey,
    decoding_key: DecodingKey,
}

impl TokenSigner {
    pub fn new(project: &str, secret: &[u8]) -> TokenSigner {
        TokenSigner::with_lifetime(project, secret, ID_TOKEN_LIFETIME_SECONDS)
    }

    /// A signer whose ID tokens live `lifetime_seconds` (at least one second).
    pub fn with_lifetime(project: &str, secret: &[u8], lifetime_seconds: i64) -> TokenSigner {
        TokenSigner {
            project: project.to_owned(),
            lifetime_seconds: lifetime_seconds.max(1),
            encoding_key: EncodingKey::from_secret(secret),
            decoding_key: DecodingKey::from_secret(secret),
        }
    }

    /// A fresh ID token for `principal`, issued at `now` (seconds since the epoch).
    pub fn issue_id_token(&self, principal: &Principal, now: i64) -> String {
        let claims = IdTokenClaims {
            iss: issuer_for_project(&self.project),
            aud: self.project.clone(),
            auth_time: now,
            user_id: principal.user_id.clone(),
            sub: principal.user_id.clone(),
            iat: now,
            exp: now + self.lifetime_seconds,
            email: principal.email.clone(),
            email_verified: false,
            firebase: FirebaseClaim {
                identities: BTreeMap::from([("email".to_owned(), vec![principal.email.clone()])]),
                sign_in_provider: "password".to_owned(),
            },
            shop: principal.shop.clone(),
            role: principal.role.as_str().to_owned(),
        };
        // Encoding a plain struct with an HMAC key cannot fail.
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding_key)
            .expect("HS256 signing of serializable claims")
    }

    /// How long the ID tokens this signer issues live, in seconds.
    pub fn lifetime_seconds(&self) -> i64 {
        self.lifetime_seconds
    }

    /// Checks signature, algorithm, issuer, audience and expiry at `now`.
    pub fn verify_id_token(&self, token: &str, now: i64) -> Result<Principal, TokenError> {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_issuer(&[issuer_for_project(&self.project)]);
        validation.set_audience(&[&self.project]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        // Expiry is checked below against the injected clock.
        validation.validate_exp = false;
        let claims = jsonwebtoken::decode::<IdTokenClaims>(token, &self.decoding_key, &validation)
            .map_err(TokenError::Invalid)?
            .claims;
        if now >= claims.exp {
            return Err(TokenError::Expired);
        }
        let role = Role::parse(&claims.role).ok_or(TokenError::UnknownRole(claims.role))?;
        Ok(Principal {
            user_id: claims.sub,
            email: claims.email,
            shop: claims.shop,
            role,
        })
    }
}

/// Reads the signing secret from `data_directory`, creating it (mode 0600) on first start.
pub fn load_or_create_signing_secret(data_directory: &Path) -> std::io::Result<Vec<u8>> {
    let path = data_directory.join(SIGNING_KEY_FILE_NAME);
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        // Created unreadable by others from the first byte, not chmod-ed afterwards.
        options.mode(0o600);
    }
    match options.open(&path) {
        Ok(mut file) => {
            let mut secret = vec![0u8; SIGNING_KEY_BYTES];
            rand::rng().fill_bytes(&mut secret);
            file.write_all(&secret)?;
            file.sync_all()?;
            Ok(secret)
        }
        Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => {
            let mut secret = Vec::new();
            std::fs::File::open(&path)?.read_to_end(&mut secret)?;
            if secret.len() < SIGNING_KEY_BYTES {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    format!(
                        "{} holds {} bytes, fewer than the {SIGNING_KEY_BYTES} of a signing key",
                        path.display(),
                        secret.len()
                    ),
                ));
            }
            Ok(secret)
        }
        Err(error) => Err(error),
    }
}

/// A new refresh token: what the client keeps.
pub fn new_refresh_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// What the server keeps of a refresh token: its SHA-256, hex. A stolen database file then
/// gives no usable refresh token.
pub fn hash_refresh_token(token: &str) -> String {
    Sha256::digest(token.as_bytes())
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn principal() -> Principal {
        Principal {
            user_id: "user-1".into(),
            email: "asha@example.com".into(),
            shop: "kirana-1".into(),
            role: Role::Cashier,
        }
    }

    #[test]
    fn tokens_round_trip_until_they_expire() {
        let signer = TokenSigner::new("demo-shop", &[7; 32]);
        let token = signer.issue_id_token(&principal(), 1_000);
        assert_eq!(signer.verify_id_token(&token, 1_000).unwrap(), principal());
        assert_eq!(signer.verify_id_token(&token, 4_599).unwrap(), principal());
        assert!(matches!(
            signer.verify_id_token(&token, 4_600),
            Err(TokenError::Expired)
        ));
    }

    #[test]
    fn tokens_of_another_key_or_project_are_refused() {
        let signer = TokenSigner::new("demo-shop", &[7; 32]);
        let token = signer.issue_id_token(&principal(), 1_000);
        let other_key = TokenSigner::new("demo-shop", &[8; 32]);
        assert!(matches!(
            other_key.verify_id_token(&token, 1_000),
            Err(TokenError::Invalid(_))
        ));
        let other_project = TokenSigner::new("other-shop", &[7; 32]);
        assert!(matches!(
            other_project.verify_id_token(&token, 1_000),
            Err(TokenError::Invalid(_))
        ));
        // An unsigned token, as the Firebase emulators accept, must never pass here.
        let payload = token.split('.').nth(1).unwrap();
        let unsigned = format!("{}.{payload}.", URL_SAFE_NO_PAD.encode(r#"{"alg":"none"}"#));
        assert!(signer.verify_id_token(&unsigned, 1_000).is_err());
    }

    #[test]
    fn the_signing_secret_is_created_once_with_owner_only_permissions() {
        let directory = tempfile::tempdir().unwrap();
        let first = load_or_create_signing_secret(directory.path()).unwrap();
        let second = load_or_create_signing_secret(directory.path()).unwrap();
        assert_eq!(first, second);
        assert_eq!(first.len(), SIGNING_KEY_BYTES);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(directory.path().join(SIGNING_KEY_FILE_NAME))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }

    #[test]
    fn refresh_tokens_are_random_and_stored_hashed() {
        let token = new_refresh_token();
        assert_ne!(token, new_refresh_token());
        assert_eq!(hash_refresh_token(&token).len(), 64);
        assert_ne!(hash_refresh_token(&token), token);
    }
}
