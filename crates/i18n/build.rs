//! Generates `Msg`, one variant per key of `locales/en.json`, with the English text of each,
//! so that code naming a message that English lacks does not compile.
//!
//! A key such as `counter.complete_sale` becomes `Msg::CounterCompleteSale`. Every English
//! value is one string (English has no plural forms of its own: its texts are what the app
//! has always shown, a contract for tests and shops).

use std::fmt::Write as _;
use std::path::Path;

fn variant_name(key: &str) -> String {
    key.split(['.', '_', '-'])
        .filter(|part| !part.is_empty())
        .map(|part| {
            let mut chars = part.chars();
            match chars.next() {
                Some(first) => first.to_ascii_uppercase().to_string() + chars.as_str(),
                None => String::new(),
            }
        })
        .collect()
}

fn main() {
    let manifest = std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
    let english_path = Path::new(&manifest).join("../../locales/en.json");
    println!("cargo:rerun-if-changed={}", english_path.display());
    let text = std::fs::read_to_string(&english_path)
        .unwrap_or_else(|error| panic!("cannot read {}: {error}", english_path.display()));
    let messages: serde_json::Map<String, serde_json::Value> = serde_json::from_str(&text)
        .unwrap_or_else(|error| panic!("{} is not a JSON object: {error}", english_path.display()));
    let mut variants = String::new();
    let mut keys = String::new();
    let mut english = String::new();
    let mut all = String::new();
    let mut counted = String::new();
    let mut seen = std::collections::BTreeMap::new();
    for (key, value) in &messages {
        let index = keys.lines().count();
        let value = match value {
            serde_json::Value::String(text) => text.as_str(),
            serde_json::Value::Object(forms) => {
                let mut listed = String::new();
                for (category, text) in forms {
                    let Some(text) = text.as_str() else {
                        panic!(
                            "{}: \"{key}\".{category} must be a string",
                            english_path.display()
                        );
                    };
                    let _ = write!(listed, "({category:?}, {text:?}), ");
                }
                let _ = writeln!(counted, "    ({index}, &[{listed}]),");
                forms
                    .get("other")
                    .and_then(|other| other.as_str())
                    .unwrap_or_else(|| {
                        panic!(
                            "{}: \"{key}\" has no \"other\" form",
                            english_path.display()
                        )
                    })
            }
            _ => panic!(
                "{}: \"{key}\" must be a string or plural forms",
                english_path.display()
            ),
        };
        let variant = variant_name(key);
        if variant.is_empty() || !variant.chars().all(|c| c.is_ascii_alphanumeric()) {
            panic!(
                "{}: \"{key}\" is not a key (letters, digits, . _ -)",
                english_path.display()
            );
        }
        if let Some(other) = seen.insert(variant.clone(), key.clone()) {
            panic!(
                "{}: \"{key}\" and \"{other}\" make the same name",
                english_path.display()
            );
        }
        let _ = writeln!(variants, "    /// {value:?}\n    {variant},");
        let _ = writeln!(keys, "    {key:?},");
        let _ = writeln!(english, "    {value:?},");
        let _ = writeln!(all, "    Msg::{variant},");
    }
    let count = messages.len();
    let generated = format!(
        "/// Every message of the catalogue: one per key of `locales/en.json`, in key order.\n\
         #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]\n\
         pub enum Msg {{\n{variants}}}\n\n\
         /// How many messages the catalogue has.\n\
         pub const MESSAGE_COUNT: usize = {count};\n\n\
         /// Every message, indexed by `Msg as usize`.\n\
         pub const ALL: [Msg; MESSAGE_COUNT] = [\n{all}];\n\n\
         /// The key of each message, indexed by `Msg as usize`.\n\
         pub const KEYS: [&str; MESSAGE_COUNT] = [\n{keys}];\n\n\
         /// The English text of each message, indexed by `Msg as usize`.\n\
         pub const ENGLISH: [&str; MESSAGE_COUNT] = [\n{english}];\n\n\
         /// The English plural forms of the messages that have them, by index.\n\
         pub const ENGLISH_COUNTED: &[(usize, &[(&str, &str)])] = &[\n{counted}];\n"
    );
    let out = Path::new(&std::env::var("OUT_DIR").expect("cargo sets OUT_DIR")).join("messages.rs");
    std::fs::write(&out, generated)
        .unwrap_or_else(|error| panic!("cannot write {}: {error}", out.display()));
}
