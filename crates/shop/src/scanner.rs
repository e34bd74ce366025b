//! Recognising a keyboard-wedge barcode scanner among key presses, as pure logic.
//!
//! A scanner "types" its code a few milliseconds a key and ends it with Enter; a person types
//! at 100 ms a key or slower. [`ScanDetector`] is fed every `keydown` (its `KeyboardEvent.code`,
//! `key` and `timeStamp`) wherever the focus is, and says for each whether to suppress it
//! (`preventDefault`), which held keys turned out to be typing after all (to be inserted where
//! they would have gone), and when a scan is complete.
//!
//! Characters of a scan are read from `code` (`Digit0`–`Digit9`, `Numpad0`–`Numpad9`,
//! `KeyA`–`KeyZ`, …), the physical key, never from `key`: a scanner emulates a US keyboard, so
//! on an AZERTY or Arabic layout `key` would be `&` or `١` where the scanner meant `1`. Released
//! typing uses `key`, which is what the person's layout typed.
//!
//! The first key of a burst cannot be told from typing when it arrives. By default it passes
//! to the page and a scan reports it as leaked ([`Scan::leaked_chars`] = 1), so the caller
//! removes that one character from where it went; with [`ScannerConfig::hold_first_key`] every
//! scan character is held from the start and released if no burst follows, at the price of
//! typing appearing a moment later ([`ScanDetector::tick`] at [`ScanDetector::next_deadline`]).
//! The Enter that ends a scan is always suppressed, so it never adds a second line.
//!
//! The key stamps decide what is a burst; the page's clock only decides when to stop waiting.
//! A burst that [`ScanDetector::tick`] gave back as typing (no key had come for a while) is
//! taken back if the next key's own stamp shows it was part of it after all: a busy page or
//! browser can deliver a scanner's keys a quarter of a second late, and the code must not be
//! split into typing and a shorter scan. The scan then reports every key of the burst as
//! leaked, and the caller removes them from where they went.

/// Timing and length rules.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ScannerConfig {
    /// Keys of a scan follow each other within this many milliseconds.
    pub max_gap_ms: f64,
    /// The Enter ending a scan follows the last character within this many milliseconds
    /// (some scanners pause before the suffix).
    pub max_enter_gap_ms: f64,
    /// Fewer characters than this, even typed fast, are not a scan.
    pub min_length: usize,
    /// Hold the first character too (see the module documentation).
    pub hold_first_key: bool,
}

impl Default for ScannerConfig {
    fn default() -> Self {
        ScannerConfig {
            max_gap_ms: 40.0,
            max_enter_gap_ms: 100.0,
            min_length: 4,
            hold_first_key: false,
        }
    }
}

/// A complete scan.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Scan {
    /// The code, read by physical key.
    pub code: String,
    /// How many of the scan's first keys reached the page before the scan was recognised (the
    /// first, or all those given back as typing before late keys continued them); the caller
    /// removes their characters from where they went.
    pub leaked_chars: usize,
    /// What those leaked keys typed there (by `key`, in the page's layout).
    pub leaked_text: String,
}

/// What to do with one key press.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct KeyOutcome {
    /// Call `preventDefault()` on this key.
    pub suppress: bool,
    /// Keys held earlier that were typing after all: insert this text where the focus is,
    /// before this key takes effect.
    pub release: Option<String>,
    /// A scan this key completed.
    pub scan: Option<Scan>,
}

#[derive(Clone, Debug)]
struct BurstKey {
    character: char,
    key: String,
    held: bool,
}

/// A burst [`ScanDetector::tick`] gave back as typing, until the next key says whether it
/// continues it.
#[derive(Clone, Debug)]
struct GivenBack {
    /// Its keys, all on the page now (none held).
    keys: Vec<BurstKey>,
    last_key_at_ms: f64,
}

/// The detector's state: the burst of fast keys in progress.
#[derive(Clone, Debug)]
pub struct ScanDetector {
    config: ScannerConfig,
    burst: Vec<BurstKey>,
    last_key_at_ms: Option<f64>,
    given_back: Option<GivenBack>,
}

/// The character a scanner means by a physical key, or `None` for keys that are not part of
/// codes.
pub fn character_of_code(code: &str) -> Option<char> {
    let single = |rest: &str| {
        let mut chars = rest.chars();
        match (chars.next(), chars.next()) {
            (Some(character), None) => Some(character),
            _ => None,
        }
    };
    if let Some(rest) = code
        .strip_prefix("Digit")
        .or_else(|| code.strip_prefix("Numpad"))
    {
        if let Some(digit) = single(rest).filter(char::is_ascii_digit) {
            return Some(digit);
        }
    }
    if let Some(letter) = code
        .strip_prefix("Key")
        .and_then(single)
        .filter(char::is_ascii_uppercase)
    {
        return Some(letter);
    }
    match code {
        "Minus" | "NumpadSubtract" => Some('-'),
        "Period" | "NumpadDecimal" => Some('.'),
        "Slash" | "NumpadDivide" => Some('/'),
        "NumpadAdd" => Some('+'),
        _ => None,
    }
}

fn is_enter(code: &str) -> bool {
    matches!(code, "Enter" | "NumpadEnter")
}

fn is_modifier(code: &str) -> bool {
    matches!(code, "ShiftLeft" | "ShiftRight" | "CapsLock")
}

impl Default for ScanDetector {
    fn default() -> Self {
        ScanDetector::new(ScannerConfig::default())
    }
}

impl ScanDetector {
    pub fn new(config: ScannerConfig) -> ScanDetector {
        ScanDetector {
            config,
            burst: Vec::new(),
            last_key_at_ms: None,
            given_back: None,
        }
    }

    pub fn config(&self) -> &ScannerConfig {
        &self.config
    }

    /// The text of the held keys, which are dropped from the burst.
    fn take_held_text(&mut self) -> Option<String> {
        let text: String = self
            .burst
            .iter()
            .filter(|key| key.held)
            .map(|key| key.key.as_str())
            .filter(|key| key.chars().count() == 1)
            .collect();
        let had_held = self.burst.iter().any(|key| key.held);
        self.burst.clear();
        had_held.then_some(text).filter(|text| !text.is_empty())
    }

    /// One `keydown`: its `code`, `key` and `timeStamp` in milliseconds. Key presses with
    /// Ctrl, Alt or Meta held should not be fed (they are shortcuts, never scans).
    pub fn key_down(&mut self, code: &str, key: &str, at_ms: f64) -> KeyOutcome {
        if is_modifier(code) {
            // A scanner presses Shift for capitals; it neither breaks nor extends a burst.
            return KeyOutcome::default();
        }
        self.take_back_if_continued(code, at_ms);
        let gap = self.last_key_at_ms.map(|last| at_ms - last);
        self.last_key_at_ms = Some(at_ms);
        let continues = |limit: f64| !matches!(gap, Some(gap) if gap > limit) && gap.is_some();
        if is_enter(code) {
            let complete = !self.burst.is_empty()
                && self.burst.len() >= self.config.min_length
                && continues(self.config.max_enter_gap_ms);
            if complete {
                let leaked: Vec<&BurstKey> = self.burst.iter().filter(|k| !k.held).collect();
                let scan = Scan {
                    code: self.burst.iter().map(|key| key.character).collect(),
                    leaked_chars: leaked.len(),
                    leaked_text: leaked.iter().map(|key| key.key.as_str()).collect(),
                };
                self.burst.clear();
                self.last_key_at_ms = None;
                return KeyOutcome {
                    suppress: true,
                    release: None,
                    scan: Some(scan),
                };
            }
            return KeyOutcome {
                suppress: false,
                release: self.take_held_text(),
                scan: None,
            };
        }
        let Some(character) = character_of_code(code) else {
            return KeyOutcome {
                suppress: false,
                release: self.take_held_text(),
                scan: None,
            };
        };
        if !self.burst.is_empty() && continues(self.config.max_gap_ms) {
            self.burst.push(BurstKey {
                character,
                key: key.to_owned(),
                held: true,
            });
            return KeyOutcome {
                suppress: true,
                release: None,
                scan: None,
            };
        }
        // A new burst starts with this key; what was held before was typing.
        let release = self.take_held_text();
        let held = self.config.hold_first_key;
        self.burst.push(BurstKey {
            character,
            key: key.to_owned(),
            held,
        });
        KeyOutcome {
            suppress: held,
            release,
            scan: None,
        }
    }

    /// The burst given back as typing becomes the burst in progress again if this key (a code
    /// character, or the Enter) was pressed soon enough after its last key to belong to it.
    fn take_back_if_continued(&mut self, code: &str, at_ms: f64) {
        let Some(given_back) = self.given_back.take() else {
            return;
        };
        let limit = if is_enter(code) {
            self.config.max_enter_gap_ms
        } else if character_of_code(code).is_some() {
            self.config.max_gap_ms
        } else {
            return;
        };
        let gap = at_ms - given_back.last_key_at_ms;
        if self.burst.is_empty() && (0.0..=limit).contains(&gap) {
            self.burst = given_back.keys;
            self.last_key_at_ms = Some(given_back.last_key_at_ms);
        }
    }

    /// The code of the burst in progress, once it is long enough that an Enter now would
    /// complete it as a scan: the page may start looking it up before the Enter comes, to have
    /// the product ready when it does. Only a scan ([`KeyOutcome::scan`]) may act on a code;
    /// more keys may still follow and make it another one.
    pub fn code_so_far(&self) -> Option<String> {
        (self.burst.len() >= self.config.min_length)
            .then(|| self.burst.iter().map(|key| key.character).collect())
    }

    /// When to call [`ScanDetector::tick`]: the moment held keys, if any, stop being able to
    /// become a scan.
    pub fn next_deadline(&self) -> Option<f64> {
        if !self.burst.iter().any(|key| key.held) {
            return None;
        }
        self.last_key_at_ms
            .map(|last| last + self.config.max_enter_gap_ms)
    }

    /// Time passes with no key: a burst that can no longer complete releases its held keys.
    pub fn tick(&mut self, now_ms: f64) -> Option<String> {
        let deadline = self.next_deadline()?;
        if now_ms <= deadline {
            return None;
        }
        let last_key_at_ms = self.last_key_at_ms?;
        let given_back = GivenBack {
            keys: self
                .burst
                .iter()
                .map(|key| BurstKey {
                    held: false,
                    // What the key put on the page: a key that types nothing is given back as
                    // nothing (see `take_held_text`).
                    key: if key.key.chars().count() == 1 {
                        key.key.clone()
                    } else {
                        String::new()
                    },
                    ..key.clone()
                })
                .collect(),
            last_key_at_ms,
        };
        self.last_key_at_ms = None;
        let released = self.take_held_text();
        self.given_back = Some(given_back);
        released
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds `(code, key, at)` presses; returns every outcome.
    fn feed(detector: &mut ScanDetector, keys: &[(&str, &str, f64)]) -> Vec<KeyOutcome> {
        keys.iter()
            .map(|(code, key, at)| detector.key_down(code, key, *at))
            .collect()
    }

    /// A scanner typing `digits` and Enter from `start`, `gap` ms a key, on a layout whose
    /// digit keys type `layout_key(digit)`.
    fn scanner_keys(
        digits: &str,
        start: f64,
        gap: f64,
        layout_key: fn(char) -> String,
    ) -> Vec<(String, String, f64)> {
        let mut keys: Vec<(String, String, f64)> = digits
            .chars()
            .enumerate()
            .map(|(index, digit)| {
                (
                    format!("Digit{digit}"),
                    layout_key(digit),
                    start + gap * index as f64,
                )
            })
            .collect();
        keys.push((
            "Enter".into(),
            "Enter".into(),
            start + gap * digits.len() as f64,
        ));
        keys
    }

    fn run(detector: &mut ScanDetector, keys: &[(String, String, f64)]) -> Vec<KeyOutcome> {
        keys.iter()
            .map(|(code, key, at)| detector.key_down(code, key, *at))
            .collect()
    }

    /// What an AZERTY layout types on the digit row without Shift.
    fn azerty(digit: char) -> String {
        let row = ['à', '&', 'é', '"', '\'', '(', '-', 'è', '_', 'ç'];
        row[digit.to_digit(10).unwrap() as usize].to_string()
    }

    #[test]
    fn a_fast_burst_ending_in_enter_is_a_scan_read_by_physical_key() {
        let mut detector = ScanDetector::default();
        let outcomes = run(
            &mut detector,
            &scanner_keys("8901063010017", 1000.0, 6.0, azerty),
        );
        // The first key passes (it could be typing), the rest and the Enter are suppressed.
        assert!(!outcomes[0].suppress);
        assert!(outcomes[1..].iter().all(|outcome| outcome.suppress));
        assert!(outcomes.iter().all(|outcome| outcome.release.is_none()));
        assert_eq!(
            outcomes.last().unwrap().scan,
            Some(Scan {
                code: "8901063010017".into(),
                leaked_chars: 1,
                leaked_text: "_".into(),
            })
        );
        // Arabic-Indic digits on the keys do not matter either.
        let arabic = |digit: char| {
            char::from_u32(0x0660 + digit.to_digit(10).unwrap())
                .unwrap()
                .to_string()
        };
        let outcomes = run(
            &mut detector,
            &scanner_keys("96385074", 5000.0, 9.0, arabic),
        );
        assert_eq!(
            outcomes.last().unwrap().scan.as_ref().unwrap().code,
            "96385074"
        );
    }

    #[test]
    fn typing_is_never_a_scan_and_nothing_typed_is_lost() {
        let mut detector = ScanDetector::default();
        // "500" typed at human speed, then Enter.
        let outcomes = feed(
            &mut detector,
            &[
                ("Digit5", "5", 0.0),
                ("Digit0", "0", 150.0),
                ("Digit0", "0", 260.0),
                ("Enter", "Enter", 400.0),
            ],
        );
        assert!(outcomes
            .iter()
            .all(|outcome| *outcome == KeyOutcome::default()));
        // Two keys rolled fast (30 ms), then a pause: the held one is released, in order,
        // before the next key.
        let outcomes = feed(
            &mut detector,
            &[
                ("Digit1", "1", 1000.0),
                ("Digit2", "2", 1030.0),
                ("Digit3", "3", 1200.0),
            ],
        );
        assert!(!outcomes[0].suppress);
        assert!(outcomes[1].suppress);
        assert_eq!(outcomes[2].release.as_deref(), Some("2"));
        assert!(!outcomes[2].suppress);
        // A fast burst too short to be a code: released at Enter, which passes.
        let outcomes = feed(
            &mut detector,
            &[
                ("Digit4", "4", 2000.0),
                ("Digit5", "5", 2010.0),
                ("Enter", "Enter", 2020.0),
            ],
        );
        assert_eq!(outcomes[2].release.as_deref(), Some("5"));
        assert!(!outcomes[2].suppress);
        assert_eq!(outcomes[2].scan, None);
    }

    #[test]
    fn held_keys_are_released_when_no_scan_can_follow() {
        let mut detector = ScanDetector::default();
        feed(
            &mut detector,
            &[("Digit1", "&", 0.0), ("Digit2", "é", 20.0)],
        );
        assert_eq!(detector.next_deadline(), Some(120.0));
        assert_eq!(detector.tick(100.0), None);
        assert_eq!(detector.tick(121.0).as_deref(), Some("é"));
        assert_eq!(detector.next_deadline(), None);
        // A slow Enter after a fast burst is typing too.
        let outcomes = feed(
            &mut detector,
            &[
                ("Digit1", "1", 1000.0),
                ("Digit2", "2", 1005.0),
                ("Digit3", "3", 1010.0),
                ("Digit4", "4", 1015.0),
                ("Enter", "Enter", 1300.0),
            ],
        );
        assert_eq!(outcomes[4].release.as_deref(), Some("234"));
        assert_eq!(outcomes[4].scan, None);
        // Other keys (Backspace, Tab, arrows) end a burst and release it.
        let outcomes = feed(
            &mut detector,
            &[
                ("Digit1", "1", 2000.0),
                ("Digit2", "2", 2005.0),
                ("Backspace", "Backspace", 2010.0),
            ],
        );
        assert_eq!(outcomes[2].release.as_deref(), Some("2"));
        assert!(!outcomes[2].suppress);
    }

    #[test]
    fn the_code_so_far_is_known_once_a_burst_is_long_enough_and_only_until_it_ends() {
        let mut detector = ScanDetector::default();
        let keys = scanner_keys("8901063010017", 1000.0, 6.0, azerty);
        let mut so_far = Vec::new();
        for (code, key, at) in &keys[..keys.len() - 1] {
            detector.key_down(code, key, *at);
            so_far.push(detector.code_so_far());
        }
        assert_eq!(so_far[..3], [None, None, None], "shorter than a scan");
        assert_eq!(so_far[3].as_deref(), Some("8901"));
        assert_eq!(so_far[12].as_deref(), Some("8901063010017"));
        let (code, key, at) = &keys[keys.len() - 1];
        assert!(detector.key_down(code, key, *at).scan.is_some());
        assert_eq!(detector.code_so_far(), None, "the scan took it");
        // Typing at a person's pace is never a code so far.
        for (index, digit) in ["Digit5", "Digit0", "Digit0", "Digit1", "Digit2"]
            .iter()
            .enumerate()
        {
            detector.key_down(digit, "5", 10_000.0 + 200.0 * index as f64);
            assert_eq!(detector.code_so_far(), None);
        }
    }

    #[test]
    fn a_slow_gap_inside_a_burst_restarts_it() {
        let mut detector = ScanDetector::default();
        let outcomes = feed(
            &mut detector,
            &[
                ("Digit1", "1", 0.0),
                ("Digit2", "2", 5.0),
                ("Digit3", "3", 100.0), // too slow: a new burst starts here
                ("Digit4", "4", 105.0),
                ("Digit5", "5", 110.0),
                ("Digit6", "6", 115.0),
                ("Enter", "Enter", 120.0),
            ],
        );
        assert_eq!(outcomes[2].release.as_deref(), Some("2"));
        assert_eq!(
            outcomes[6].scan,
            Some(Scan {
                code: "3456".into(),
                leaked_chars: 1,
                leaked_text: "3".into()
            })
        );
    }

    #[test]
    fn letters_shift_and_the_numpad_are_read_as_a_scanner_means_them() {
        let mut detector = ScanDetector::default();
        let outcomes = feed(
            &mut detector,
            &[
                ("ShiftLeft", "Shift", 0.0),
                ("KeyP", "P", 2.0),
                ("ShiftLeft", "Shift", 4.0),
                ("KeyG", "G", 6.0),
                ("Minus", ")", 12.0),
                ("Numpad2", "2", 18.0),
                ("Numpad5", "5", 24.0),
                ("Digit0", "à", 30.0),
                ("NumpadEnter", "Enter", 36.0),
            ],
        );
        assert_eq!(outcomes[0], KeyOutcome::default());
        assert_eq!(outcomes[8].scan.as_ref().unwrap().code, "PG-250");
        assert_eq!(character_of_code("KeyQ"), Some('Q'));
        assert_eq!(character_of_code("Digit10"), None);
        assert_eq!(character_of_code("Numpad"), None);
        assert_eq!(character_of_code("Keyq"), None);
        assert_eq!(character_of_code("ArrowUp"), None);
    }

    /// Regression (the e2e "a second tablet ... prints its shop profile" at load 13: "Unknown
    /// code 63010017", "89010" in the scan field): the page's timer gave a scan's first keys
    /// back as typing because its next keys came more than 250 ms later, though their own
    /// stamps were 6 ms apart.
    #[test]
    fn keys_delivered_late_take_back_what_the_page_gave_back_as_typing() {
        let mut detector = ScanDetector::default();
        let keys = scanner_keys("8901063010017", 1000.0, 6.0, azerty);
        let early = run(&mut detector, &keys[..5]);
        assert!(early.iter().all(|outcome| outcome.release.is_none()));
        // The page's timer: no key for a while, whatever the stamps will say.
        assert_eq!(detector.tick(f64::INFINITY).as_deref(), Some("çà&à"));
        let late = run(&mut detector, &keys[5..]);
        assert!(late
            .iter()
            .all(|outcome| outcome.suppress && outcome.release.is_none()));
        assert_eq!(
            late.last().unwrap().scan,
            Some(Scan {
                code: "8901063010017".into(),
                leaked_chars: 5,
                leaked_text: "_çà&à".into(),
            })
        );
        // The Enter alone delivered late completes the scan too.
        let keys = scanner_keys("12345670", 5000.0, 6.0, azerty);
        run(&mut detector, &keys[..8]);
        assert_eq!(detector.tick(f64::INFINITY).as_deref(), Some("é\"'(-èà"));
        let enter = run(&mut detector, &keys[8..]);
        assert_eq!(enter[0].scan.as_ref().unwrap().code, "12345670");
        assert_eq!(enter[0].scan.as_ref().unwrap().leaked_chars, 8);
        // Keys given back stay typing when the next key was pressed later than a burst allows,
        // or is not part of a code.
        run(
            &mut detector,
            &scanner_keys("1234", 9000.0, 6.0, azerty)[..4],
        );
        assert!(detector.tick(f64::INFINITY).is_some());
        let outcome = detector.key_down("Digit5", "(", 9018.0 + 61.0);
        assert!(!outcome.suppress && outcome.release.is_none() && outcome.scan.is_none());
        run(
            &mut detector,
            &scanner_keys("1234", 20_000.0, 6.0, azerty)[..4],
        );
        assert!(detector.tick(f64::INFINITY).is_some());
        assert!(
            !detector
                .key_down("Backspace", "Backspace", 20_020.0)
                .suppress
        );
        assert!(detector.key_down("Digit5", "(", 20_024.0).scan.is_none());
        let outcome = detector.key_down("Enter", "Enter", 20_030.0);
        assert_eq!(outcome.scan, None);
    }

    #[test]
    fn holding_the_first_key_leaks_nothing() {
        let mut detector = ScanDetector::new(ScannerConfig {
            hold_first_key: true,
            ..ScannerConfig::default()
        });
        let outcomes = run(&mut detector, &scanner_keys("12345670", 0.0, 5.0, azerty));
        assert!(outcomes.iter().all(|outcome| outcome.suppress));
        assert_eq!(
            outcomes.last().unwrap().scan,
            Some(Scan {
                code: "12345670".into(),
                leaked_chars: 0,
                leaked_text: String::new()
            })
        );
        // A single typed key is held, then given back.
        let outcome = detector.key_down("Digit7", "7", 1000.0);
        assert!(outcome.suppress);
        assert_eq!(detector.tick(1101.0).as_deref(), Some("7"));
    }
}
