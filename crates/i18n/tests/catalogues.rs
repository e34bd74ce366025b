//! A missing translation fails here: every message of `locales/en.json` must be in Hindi,
//! French and Arabic, naming the same placeholders in every form, with no key English lacks.

use counterbook_i18n::{Catalogue, Language, Problem};

fn check(language: Language, json: &str) {
    let (catalogue, problems) = Catalogue::parse(language, json)
        .unwrap_or_else(|error| panic!("locales/{}.json: {error}", language.code()));
    let listed: Vec<String> = problems.iter().map(Problem::to_string).collect();
    assert!(
        listed.is_empty(),
        "locales/{}.json has {} problems:\n{}",
        language.code(),
        listed.len(),
        listed.join("\n")
    );
    assert_eq!(catalogue.language(), language);
}

#[test]
fn hindi_has_every_message() {
    check(Language::Hindi, include_str!("../../../locales/hi.json"));
}

#[test]
fn french_has_every_message() {
    check(Language::French, include_str!("../../../locales/fr.json"));
}

#[test]
fn arabic_has_every_message() {
    check(Language::Arabic, include_str!("../../../locales/ar.json"));
}
