//! Counterbook's message catalogue: every word the app shows, in English, Hindi, French and
//! Arabic, looked up by [`Msg`].
//!
//! `locales/en.json` is the source: its keys become [`Msg`] (build.rs), so code naming a
//! message English lacks does not compile, and its texts are built into the app. The other
//! languages are JSON files of the same keys (`locales/hi.json`, `fr.json`, `ar.json`), which
//! the app downloads when a tablet is set to that language and parses with
//! [`Catalogue::parse`]; a key a file lacks shows in English, and [`Catalogue::parse`] says
//! which (the catalogue tests fail on any such problem, so a missing translation never ships).
//!
//! A text names its placeholders in braces: `"Sign in again to send {count} sales"`. A
//! message with a `{count}` may be given in plural forms in a translation, an object keyed
//! by the categories of `Intl.PluralRules` (`zero`, `one`, `two`, `few`, `many`, `other`;
//! `other` always there); the caller picks the category (the browser's `Intl.PluralRules`)
//! and [`Catalogue::format_count`] the form. Every form of every language names exactly the
//! placeholders English names (`zero`, `one` and `two` may say their count in words).

use std::borrow::Cow;

include!(concat!(env!("OUT_DIR"), "/messages.rs"));

/// A language the app speaks (in serde, its code: "en", "hi", "fr", "ar").
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize,
)]
pub enum Language {
    #[default]
    #[serde(rename = "en")]
    English,
    #[serde(rename = "hi")]
    Hindi,
    #[serde(rename = "fr")]
    French,
    #[serde(rename = "ar")]
    Arabic,
}

impl Language {
    /// Every language, in the order the settings page offers them.
    pub const ALL: [Language; 4] = [
        Language::English,
        Language::Hindi,
        Language::French,
        Language::Arabic,
    ];

    /// The BCP 47 language code: `en`, `hi`, `fr`, `ar` (also the catalogue file's name).
    pub fn code(self) -> &'static str {
        match self {
            Language::English => "en",
            Language::Hindi => "hi",
            Language::French => "fr",
            Language::Arabic => "ar",
        }
    }

    /// The language of a code such as `hi` or `ar-DZ`; `None` for a language the app lacks.
    pub fn from_code(code: &str) -> Option<Language> {
        let primary = code.trim().split(['-', '_']).next()?.to_ascii_lowercase();
        Language::ALL
            .into_iter()
            .find(|language| language.code() == primary)
    }

    /// The writing direction, for `<html dir>`: `rtl` for Arabic, else `ltr`.
    pub fn direction(self) -> &'static str {
        match self {
            Language::Arabic => "rtl",
            _ => "ltr",
        }
    }

    /// The language's name in itself, as a language picker shows it.
    pub fn own_name(self) -> &'static str {
        match self {
            Language::English => "English",
            Language::Hindi => "हिन्दी",
            Language::French => "Français",
            Language::Arabic => "العربية",
        }
    }
}

/// The plural categories of `Intl.PluralRules` (Unicode CLDR).
pub const PLURAL_CATEGORIES: [&str; 6] = ["zero", "one", "two", "few", "many", "other"];

/// One message's text in one language.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Text {
    Plain(Cow<'static, str>),
    /// Forms by plural category, `other` among them.
    Counted(Vec<(String, String)>),
}

impl Text {
    fn form(&self, category: &str) -> &str {
        match self {
            Text::Plain(text) => text,
            Text::Counted(forms) => forms
                .iter()
                .find(|(name, _)| name == category)
                .or_else(|| forms.iter().find(|(name, _)| name == "other"))
                .map(|(_, text)| text.as_str())
                .unwrap_or_default(),
        }
    }
}

/// Why a catalogue file could not be read at all.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CatalogueError {
    #[error("the catalogue is not JSON: {0}")]
    NotJson(String),
    #[error("the catalogue is not a JSON object of messages")]
    NotAnObject,
}

/// Something wrong with one message of a catalogue file; that message shows in English.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Problem {
    #[error("\"{0}\" is missing")]
    Missing(String),
    #[error("\"{0}\" is not a message of the English catalogue")]
    Unknown(String),
    #[error("\"{key}\" ({form}) names {found:?}, English names {expected:?}")]
    Placeholders {
        key: String,
        form: String,
        expected: Vec<String>,
        found: Vec<String>,
    },
    #[error("\"{0}\" is neither a text nor plural forms of texts")]
    NotText(String),
    #[error("\"{0}\" has plural forms but no {{count}} in English")]
    NotCounted(String),
    #[error("\"{0}\" has plural forms without \"other\"")]
    NoOtherForm(String),
    #[error("\"{key}\" has a form \"{category}\", which is no plural category")]
    UnknownCategory { key: String, category: String },
    #[error("\"{0}\" is empty")]
    Empty(String),
}

/// The placeholders a text names, sorted, each once: `{count}` and `{name}` in "{name} owes
/// {count}". A vector, not a `BTreeSet`: a text names one or two, and the app's wasm then needs
/// no B-tree code for `&str` sets (README.md, Size).
pub fn placeholders(text: &str) -> Vec<&str> {
    let mut names: Vec<&str> = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find('{') {
        let after = &rest[start + 1..];
        match after.find('}') {
            Some(end) => {
                let name = &after[..end];
                if !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                    if let Err(at) = names.binary_search(&name) {
                        names.insert(at, name);
                    }
                }
                rest = &after[end + 1..];
            }
            None => break,
        }
    }
    names
}

/// `text` with each `{name}` of `arguments` replaced by its value; other braces stay.
pub fn fill(text: &str, arguments: &[(&str, &str)]) -> String {
    let mut out = String::with_capacity(text.len() + 16);
    let mut rest = text;
    while let Some(start) = rest.find('{') {
        out.push_str(&rest[..start]);
        let after = &rest[start + 1..];
        let replaced = after.find('}').and_then(|end| {
            let name = &after[..end];
            arguments
                .iter()
                .find(|(argument, _)| *argument == name)
                .map(|(_, value)| (end, *value))
        });
        match replaced {
            Some((end, value)) => {
                out.push_str(value);
                rest = &after[end + 1..];
            }
            None => {
                out.push('{');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// The messages of one language.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Catalogue {
    language: Language,
    texts: Vec<Text>,
}

impl Catalogue {
    /// English, built into the app.
    pub fn english() -> Catalogue {
        let mut texts: Vec<Text> = ENGLISH
            .iter()
            .map(|text| Text::Plain(Cow::Borrowed(*text)))
            .collect();
        for (index, _) in ENGLISH_COUNTED {
            texts[*index] = english_text(*index);
        }
        Catalogue {
            language: Language::English,
            texts,
        }
    }

    /// The catalogue of `language` from its JSON file, and what is wrong in it (each message
    /// with a problem shows in English).
    pub fn parse(
        language: Language,
        json: &str,
    ) -> Result<(Catalogue, Vec<Problem>), CatalogueError> {
        let value: serde_json::Value = serde_json::from_str(json)
            .map_err(|error| CatalogueError::NotJson(error.to_string()))?;
        let serde_json::Value::Object(mut messages) = value else {
            return Err(CatalogueError::NotAnObject);
        };
        let mut problems = Vec::new();
        let mut texts = Vec::with_capacity(MESSAGE_COUNT);
        for (index, key) in KEYS.iter().enumerate() {
            let english = ENGLISH[index];
            let text = match messages.remove(*key) {
                None => {
                    problems.push(Problem::Missing((*key).to_owned()));
                    None
                }
                Some(value) => checked_text(key, english, value, &mut problems),
            };
            texts.push(text.unwrap_or_else(|| english_text(index)));
        }
        problems.extend(messages.keys().map(|key| Problem::Unknown(key.clone())));
        Ok((Catalogue { language, texts }, problems))
    }

    pub fn language(&self) -> Language {
        self.language
    }

    /// The text of `msg` (its `other` form when it has plural forms), placeholders as written.
    #[inline(never)]
    pub fn text(&self, msg: Msg) -> &str {
        self.texts[msg as usize].form("other")
    }

    /// The text of `msg` with its placeholders filled.
    #[inline(never)]
    pub fn format(&self, msg: Msg, arguments: &[(&str, &str)]) -> String {
        fill(self.text(msg), arguments)
    }

    /// The form of `msg` for a count of plural `category` (from `Intl.PluralRules`), with
    /// `{count}` as `count` and the other placeholders filled.
    pub fn format_count(
        &self,
        msg: Msg,
        category: &str,
        count: &str,
        arguments: &[(&str, &str)],
    ) -> String {
        let mut all = Vec::with_capacity(arguments.len() + 1);
        all.push(("count", count));
        all.extend_from_slice(arguments);
        fill(self.texts[msg as usize].form(category), &all)
    }
}

/// The English text of message `index`, with its plural forms if it has them.
fn english_text(index: usize) -> Text {
    match ENGLISH_COUNTED
        .iter()
        .find(|(counted, _)| *counted == index)
    {
        Some((_, forms)) => Text::Counted(
            forms
                .iter()
                .map(|(category, text)| ((*category).to_owned(), (*text).to_owned()))
                .collect(),
        ),
        None => Text::Plain(Cow::Borrowed(ENGLISH[index])),
    }
}

/// The checked text of one message, or `None` (and the problem said) to show English.
fn checked_text(
    key: &str,
    english: &str,
    value: serde_json::Value,
    problems: &mut Vec<Problem>,
) -> Option<Text> {
    let expected: Vec<String> = placeholders(english)
        .into_iter()
        .map(str::to_owned)
        .collect();
    let placeholders_match = |form: &str, text: &str, problems: &mut Vec<Problem>| {
        let mut found: Vec<String> = placeholders(text).into_iter().map(str::to_owned).collect();
        // "one", "two" and "zero" name their count in words ("سطر واحد"), so these forms may
        // leave `{count}` out.
        if matches!(form, "zero" | "one" | "two") && !found.iter().any(|name| name == "count") {
            // `placeholders` lists names sorted, so "count" goes where a sort would put it.
            let at = found.partition_point(|name| name.as_str() < "count");
            found.insert(at, "count".to_owned());
        }
        if found == expected {
            true
        } else {
            problems.push(Problem::Placeholders {
                key: key.to_owned(),
                form: form.to_owned(),
                expected: expected.clone(),
                found,
            });
            false
        }
    };
    match value {
        serde_json::Value::String(text) => {
            if text.trim().is_empty() && !english.trim().is_empty() {
                problems.push(Problem::Empty(key.to_owned()));
                return None;
            }
            placeholders_match("text", &text, problems).then_some(Text::Plain(Cow::Owned(text)))
        }
        serde_json::Value::Object(forms) => {
            if !expected.iter().any(|name| name == "count") {
                problems.push(Problem::NotCounted(key.to_owned()));
                return None;
            }
            let mut checked = Vec::with_capacity(forms.len());
            let mut good = true;
            for (category, text) in forms {
                if !PLURAL_CATEGORIES.contains(&category.as_str()) {
                    problems.push(Problem::UnknownCategory {
                        key: key.to_owned(),
                        category,
                    });
                    good = false;
                    continue;
                }
                let Some(text) = text.as_str() else {
                    problems.push(Problem::NotText(key.to_owned()));
                    good = false;
                    continue;
                };
                good &= placeholders_match(&category, text, problems);
                checked.push((category, text.to_owned()));
            }
            if !checked.iter().any(|(category, _)| category == "other") {
                problems.push(Problem::NoOtherForm(key.to_owned()));
                good = false;
            }
            good.then_some(Text::Counted(checked))
        }
        _ => {
            problems.push(Problem::NotText(key.to_owned()));
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_the_names_in_braces() {
        // Sorted, each once, whatever the text's order.
        let names = placeholders("{name} owes {count} ({x y} {}) to {name}");
        assert_eq!(names, ["count", "name"]);
    }

    #[test]
    fn fill_replaces_the_named_placeholders_only() {
        assert_eq!(
            fill(
                "{name} owes {amount} {other} {",
                &[("name", "Asha"), ("amount", "₹5")]
            ),
            "Asha owes ₹5 {other} {"
        );
    }

    #[test]
    fn languages_come_from_their_codes() {
        assert_eq!(Language::from_code("ar-DZ"), Some(Language::Arabic));
        assert_eq!(Language::from_code("HI"), Some(Language::Hindi));
        assert_eq!(Language::from_code("de"), None);
        assert_eq!(Language::Arabic.direction(), "rtl");
        assert_eq!(Language::French.direction(), "ltr");
    }

    #[test]
    fn english_is_built_in() {
        let english = Catalogue::english();
        for (index, text) in ENGLISH.iter().enumerate() {
            assert_eq!(english.texts[index].form("other"), *text);
        }
    }

    /// Regression guard for the catalogue check itself: a file missing keys, with a wrong
    /// placeholder, an unknown key and plural forms without `other` is reported, and the broken
    /// messages fall back to English.
    #[test]
    fn a_broken_catalogue_is_reported_and_falls_back_to_english() {
        let key = KEYS[0];
        let broken = format!(r#"{{"{key}": "{{nonsense}} x", "no.such.key": "y"}}"#);
        let (catalogue, problems) = Catalogue::parse(Language::French, &broken).expect("json");
        assert!(problems.contains(&Problem::Unknown("no.such.key".into())));
        assert!(problems
            .iter()
            .any(|p| matches!(p, Problem::Placeholders { .. })));
        assert!(problems.contains(&Problem::Missing(KEYS[1].into())));
        assert_eq!(problems.len(), MESSAGE_COUNT + 1, "{problems:?}");
        assert_eq!(catalogue.text(ALL[0]), ENGLISH[0]);
        let counted = ENGLISH
            .iter()
            .position(|text| placeholders(text).contains(&"count"))
            .expect("a message with {count}");
        let no_other = format!(r#"{{"{}": {{"one": "{{count}} a"}}}}"#, KEYS[counted]);
        let (_, problems) = Catalogue::parse(Language::French, &no_other).expect("json");
        assert!(problems.contains(&Problem::NoOtherForm(KEYS[counted].into())));
        assert_eq!(
            Catalogue::parse(Language::French, "[1]"),
            Err(CatalogueError::NotAnObject)
        );
    }

    #[test]
    fn plural_forms_are_picked_by_category() {
        let catalogue = Catalogue {
            language: Language::French,
            texts: vec![Text::Counted(vec![
                ("one".into(), "{count} vente".into()),
                ("other".into(), "{count} ventes".into()),
            ])],
        };
        assert_eq!(catalogue.format_count(ALL[0], "one", "1", &[]), "1 vente");
        assert_eq!(catalogue.format_count(ALL[0], "few", "3", &[]), "3 ventes");
    }
}
