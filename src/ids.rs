//! Ids made on the device: UUID v7, so they sort by creation time and never collide offline.

use uuid::Uuid;

/// A new UUID v7 from the browser's clock and `crypto.getRandomValues`.
pub fn new_id() -> String {
    let millis = js_sys::Date::now() as u64;
    let mut random = [0u8; 10];
    fill_random(&mut random);
    uuid::Builder::from_unix_timestamp_millis(millis, &random)
        .into_uuid()
        .hyphenated()
        .to_string()
}

/// A random 64-bit seed for the sync engine's jitter.
pub fn random_seed() -> u64 {
    let mut bytes = [0u8; 8];
    fill_random(&mut bytes);
    u64::from_le_bytes(bytes)
}

pub(crate) fn fill_random(bytes: &mut [u8]) {
    let crypto = crate::global_scope::crypto();
    let filled = crypto
        .map(|c| c.get_random_values_with_u8_array(bytes).is_ok())
        .unwrap_or(false);
    if !filled {
        // No Web Crypto (a very old browser): fall back to Math.random, which is enough for
        // uniqueness together with the millisecond timestamp.
        for byte in bytes.iter_mut() {
            *byte = (js_sys::Math::random() * 256.0) as u8;
        }
    }
}

/// Parses an id back, for validation of ids read from elsewhere.
pub fn is_valid_id(id: &str) -> bool {
    Uuid::parse_str(id).is_ok()
}
