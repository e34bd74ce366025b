//! Opaque strings the server hands out and takes back: transaction ids and list page tokens.
//!
//! Firestore's transaction ids and page tokens are base64 strings of bytes whose meaning only
//! the server knows; clients store and return them verbatim. Standard base64 with padding is
//! written by hand here (a dozen lines) rather than adding a dependency for it.

const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Standard base64 with `=` padding.
pub fn encode_base64(bytes: &[u8]) -> String {
    let mut text = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let group = match chunk {
            [a] => u32::from(*a) << 16,
            [a, b] => u32::from(*a) << 16 | u32::from(*b) << 8,
            [a, b, c, ..] => u32::from(*a) << 16 | u32::from(*b) << 8 | u32::from(*c),
            [] => unreachable!("chunks are never empty"),
        };
        for index in 0..4 {
            if index <= chunk.len() {
                let sextet = (group >> (18 - 6 * index)) & 0x3f;
                text.push(char::from(ALPHABET[sextet as usize]));
            } else {
                text.push('=');
            }
        }
    }
    text
}

/// Decodes standard or URL-safe base64, padded or not; `None` if it is not base64.
pub fn decode_base64(text: &str) -> Option<Vec<u8>> {
    let trimmed = text.trim_end_matches('=');
    let mut bytes = Vec::with_capacity(trimmed.len() * 3 / 4);
    let mut buffer = 0u32;
    let mut bits = 0;
    for character in trimmed.bytes() {
        let sextet = match character {
            b'A'..=b'Z' => character - b'A',
            b'a'..=b'z' => character - b'a' + 26,
            b'0'..=b'9' => character - b'0' + 52,
            b'+' | b'-' => 62,
            b'/' | b'_' => 63,
            _ => return None,
        };
        buffer = buffer << 6 | u32::from(sextet);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            bytes.push((buffer >> bits) as u8);
            buffer &= (1 << bits) - 1;
        }
    }
    if bits >= 6 {
        return None;
    }
    Some(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(bytes: &[u8], text: &str) {
        assert_eq!(encode_base64(bytes), text);
        assert_eq!(decode_base64(text).as_deref(), Some(bytes));
    }

    #[test]
    fn round_trips_every_padding_length() {
        check(b"", "");
        check(b"f", "Zg==");
        check(b"fo", "Zm8=");
        check(b"foo", "Zm9v");
        check(&[0xfb, 0xff, 0x00, 0x11], "+/8AEQ==");
        assert_eq!(decode_base64("-_8"), Some(vec![0xfb, 0xff]));
        assert_eq!(decode_base64("!!!"), None);
        assert_eq!(decode_base64("A"), None);
    }
}
