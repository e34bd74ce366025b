//! The people signed in on this tablet: each one signs in once with email and password, then
//! switches in with a 4 to 6 digit PIN checked here, on the device, so switching works offline.
//!
//! A [`Person`] keeps the ID and refresh tokens of their own sign-in (so what they do is sent
//! with their own session) and a [`PinHash`]: PBKDF2-HMAC-SHA-256 through WebCrypto
//! (`crypto.subtle`, nothing added to the wasm), 600,000 iterations (OWASP's figure for
//! PBKDF2-SHA-256) over a random 16-byte salt. A PIN has at most a million values, so the slow
//! hash is a speed bump for someone who copies the tablet's database, not a wall: what the PIN
//! guards is the tablet in the shop, and the tokens beside it are worth more than the PIN anyway.

use counterbook_shop::Role;
use serde::{Deserialize, Serialize};
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;

/// PBKDF2 iterations for a new PIN.
pub const PIN_ITERATIONS: u32 = 600_000;

/// One person signed in on this tablet.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Person {
    pub user_id: String,
    pub email: String,
    pub shop: String,
    pub role: Role,
    pub id_token: String,
    pub refresh_token: String,
    /// When the ID token expires, Unix ms.
    pub id_token_expires_at_millis: i64,
    #[serde(default)]
    pub pin: Option<PinHash>,
    /// They chose "Not now" when asked for a PIN: not asked again at every start.
    #[serde(default)]
    pub pin_declined: bool,
    /// The backend refused this person's refresh token: they must sign in again with their
    /// password before their work can be sent.
    #[serde(default)]
    pub needs_sign_in: bool,
}

impl Person {
    /// The name shown and recorded in audit entries: the email.
    pub fn display_name(&self) -> &str {
        &self.email
    }
}

/// A PIN as the tablet keeps it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PinHash {
    /// Hex.
    pub salt: String,
    pub iterations: u32,
    /// Hex of the 32 derived bytes.
    pub hash: String,
}

/// Why a PIN could not be set or checked.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PinError {
    #[error("A PIN is 4 to 6 digits.")]
    NotFourToSixDigits,
    #[error("This browser cannot hash a PIN (no WebCrypto): {0}")]
    NoWebCrypto(String),
}

/// Whether `pin` is 4 to 6 ASCII digits.
pub fn is_valid_pin(pin: &str) -> bool {
    (4..=6).contains(&pin.len()) && pin.bytes().all(|b| b.is_ascii_digit())
}

impl PinHash {
    /// Hashes a new PIN with a fresh salt.
    pub async fn new(pin: &str) -> Result<PinHash, PinError> {
        if !is_valid_pin(pin) {
            return Err(PinError::NotFourToSixDigits);
        }
        let mut salt = [0u8; 16];
        crate::ids::fill_random(&mut salt);
        let hash = pbkdf2_sha256(pin, &salt, PIN_ITERATIONS).await?;
        Ok(PinHash {
            salt: hex(&salt),
            iterations: PIN_ITERATIONS,
            hash: hex(&hash),
        })
    }

    /// Whether `pin` is this PIN (compared in constant time).
    pub async fn matches(&self, pin: &str) -> Result<bool, PinError> {
        if !is_valid_pin(pin) {
            return Ok(false);
        }
        let Some(salt) = unhex(&self.salt) else {
            return Ok(false);
        };
        let derived = hex(&pbkdf2_sha256(pin, &salt, self.iterations).await?);
        let same_length = derived.len() == self.hash.len();
        let difference = derived
            .bytes()
            .zip(self.hash.bytes())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b));
        Ok(same_length && difference == 0)
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

/// PBKDF2-HMAC-SHA-256 of `secret`, 32 bytes, by `crypto.subtle` (called through `Reflect` so
/// that no web-sys binding is added for it).
async fn pbkdf2_sha256(secret: &str, salt: &[u8], iterations: u32) -> Result<Vec<u8>, PinError> {
    let failed = |what: &str, error: JsValue| {
        PinError::NoWebCrypto(format!(
            "{what}: {}",
            error
                .dyn_ref::<js_sys::Error>()
                .map(|e| String::from(e.message()))
                .unwrap_or_else(|| format!("{error:?}"))
        ))
    };
    let global = js_sys::global();
    let crypto =
        js_sys::Reflect::get(&global, &"crypto".into()).map_err(|e| failed("crypto", e))?;
    let subtle =
        js_sys::Reflect::get(&crypto, &"subtle".into()).map_err(|e| failed("subtle", e))?;
    if subtle.is_undefined() {
        return Err(PinError::NoWebCrypto(
            "crypto.subtle needs a secure context (HTTPS or localhost)".into(),
        ));
    }
    let call = |name: &str, arguments: &js_sys::Array| -> Result<js_sys::Promise, PinError> {
        let function: js_sys::Function = js_sys::Reflect::get(&subtle, &name.into())
            .map_err(|e| failed(name, e))?
            .dyn_into()
            .map_err(|e| failed(name, e))?;
        function
            .apply(&subtle, arguments)
            .map_err(|e| failed(name, e))?
            .dyn_into::<js_sys::Promise>()
            .map_err(|e| failed(name, e))
    };
    let secret_bytes = js_sys::Uint8Array::from(secret.as_bytes());
    let usages = js_sys::Array::of1(&"deriveBits".into());
    let key = JsFuture::from(call(
        "importKey",
        &js_sys::Array::of5(
            &"raw".into(),
            &secret_bytes,
            &"PBKDF2".into(),
            &JsValue::FALSE,
            &usages,
        ),
    )?)
    .await
    .map_err(|e| failed("importKey", e))?;
    let parameters = js_sys::Object::new();
    for (name, value) in [
        ("name", JsValue::from_str("PBKDF2")),
        ("hash", JsValue::from_str("SHA-256")),
        ("salt", js_sys::Uint8Array::from(salt).into()),
        ("iterations", JsValue::from_f64(f64::from(iterations))),
    ] {
        js_sys::Reflect::set(&parameters, &name.into(), &value).map_err(|e| failed(name, e))?;
    }
    let bits = JsFuture::from(call(
        "deriveBits",
        &js_sys::Array::of3(&parameters, &key, &JsValue::from_f64(256.0)),
    )?)
    .await
    .map_err(|e| failed("deriveBits", e))?;
    Ok(js_sys::Uint8Array::new(&bits).to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;
    use wasm_bindgen_test::wasm_bindgen_test;

    #[wasm_bindgen_test]
    fn pins_are_four_to_six_digits() {
        for good in ["1234", "00000", "987654"] {
            assert!(is_valid_pin(good), "{good}");
        }
        for bad in ["123", "1234567", "12a4", "١٢٣٤", ""] {
            assert!(!is_valid_pin(bad), "{bad}");
        }
    }

    #[wasm_bindgen_test]
    async fn pbkdf2_matches_the_rfc_7914_test_vector() {
        // RFC 7914 section 11: PBKDF2-HMAC-SHA256 (P="passwd", S="salt", c=1, dkLen=64); the
        // first 32 bytes.
        let derived = pbkdf2_sha256("passwd", b"salt", 1).await.unwrap();
        assert_eq!(
            hex(&derived),
            "55ac046e56e3089fec1691c22544b605f94185216dde0465e68b9d57c20dacbc"
        );
    }

    #[wasm_bindgen_test]
    async fn a_pin_matches_itself_only() {
        let mut pin = PinHash::new("4821").await.unwrap();
        assert_eq!(pin.iterations, PIN_ITERATIONS);
        // Fewer iterations keep the test quick; the rule is the same.
        pin.iterations = 1_000;
        let salt = unhex(&pin.salt).unwrap();
        pin.hash = hex(&pbkdf2_sha256("4821", &salt, 1_000).await.unwrap());
        assert!(pin.matches("4821").await.unwrap());
        assert!(!pin.matches("4822").await.unwrap());
        assert!(!pin.matches("482").await.unwrap());
        assert_eq!(PinHash::new("12").await, Err(PinError::NotFourToSixDigits));
    }
}
