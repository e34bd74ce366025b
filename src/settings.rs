//! Device settings: which backend, project and shop this tablet syncs with, how it signs in,
//! and how it behaves (real time, battery saver, when it locks, its language). They stay on the device;
//! the shop's own settings (`counterbook-shop`'s `ShopSettings`) sync.
//!
//! They live in `localStorage` (read synchronously at start-up, before IndexedDB opens) and can
//! be set from the page URL, e.g. `/?endpoint=http://127.0.0.1:8080&project=p&shop=s1`, which is
//! how an operator points a tablet at Cloud Firestore or the emulator without a settings screen.
//! The tablet's own name (`?deviceName=Counter 1`, or the counter's profile form), which its
//! receipts print, is kept the same way and read fresh on each sale ([`device_name`]).

use counterbook_i18n::Language;

/// What kind of backend the tablet syncs with.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Backend {
    /// counterbook-server (this one or another): it says whether it needs a sign-in and
    /// whether it holds a shop yet; sign-in at its own origin.
    Server,
    /// Cloud Firestore (or the emulator): sign-in with Firebase Auth, with the project's web
    /// API key; without a key, no sign-in (the emulator).
    Firestore,
}

impl Backend {
    pub fn as_setting(self) -> &'static str {
        match self {
            Backend::Server => "server",
            Backend::Firestore => "firestore",
        }
    }
}

/// Where and as what this device syncs. A copy is kept in IndexedDB (`Store::sync_settings`)
/// for the service worker, which has neither `localStorage` nor the page's URL.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Settings {
    /// `?backend=server` (the default) or `?backend=firestore`.
    pub backend: Backend,
    /// The project's web API key (`?apiKey=`), sent as `?key=` to Firebase Auth.
    pub api_key: String,
    /// Where Firebase Auth answers at the emulator's paths (`?authEndpoint=`): the Firebase
    /// Auth emulator's origin. `None`: the server's own origin, or Google's Firebase Auth.
    pub auth_endpoint: Option<String>,
    /// Seconds of no touch or key before the app locks and asks for a PIN (`?lockMinutes=`,
    /// in minutes, decimals allowed); 0: never.
    pub lock_seconds: u32,
    /// Base URL of the Firestore REST API, without `/v1`: our server's origin, the emulator's
    /// `http://127.0.0.1:8080`, or `https://firestore.googleapis.com`.
    pub endpoint: String,
    pub project: String,
    pub shop_id: String,
    pub currency: String,
    /// IndexedDB database name; tests use their own.
    pub database_name: String,
    /// Listen in real time while the page is visible (`?realtime=off` turns it off).
    pub realtime: bool,
    /// Battery saver (`?batterySaver=on`): no listeners, only a pull every
    /// `battery_saver_minutes` while visible (and on becoming visible).
    pub battery_saver: bool,
    /// Minutes between pulls in battery saver (`?batterySaverMinutes=5`); at least 1.
    pub battery_saver_minutes: u32,
    /// The language of the screens and receipts (`?language=ar`): en, hi, fr or ar.
    pub language: Language,
}

const KEYS: [&str; 13] = [
    "backend",
    "apiKey",
    "authEndpoint",
    "lockMinutes",
    "endpoint",
    "project",
    "shop",
    "currency",
    "realtime",
    "batterySaver",
    "batterySaverMinutes",
    "language",
    DEVICE_NAME,
];

/// The setting naming this tablet (`localStorage` key `counterbook.deviceName`).
const DEVICE_NAME: &str = "deviceName";
/// The longest device name kept: it has to fit one line of a 58 mm receipt with "Device ".
pub const MAX_DEVICE_NAME_CHARS: usize = 24;

fn local_storage() -> Option<web_sys::Storage> {
    web_sys::window()?.local_storage().ok().flatten()
}

/// The name the shop gave this tablet ("Counter 1"), if any.
pub fn device_name() -> Option<String> {
    local_storage()
        .and_then(|storage| storage.get_item(&format!("counterbook.{DEVICE_NAME}")).ok())
        .flatten()
        .map(|name| {
            name.trim()
                .chars()
                .take(MAX_DEVICE_NAME_CHARS)
                .collect::<String>()
        })
        .filter(|name| !name.is_empty())
}

/// Why a device name was not kept.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DeviceNameError {
    #[error("Use at most {MAX_DEVICE_NAME_CHARS} characters for the tablet's name.")]
    TooLong,
    #[error("This browser does not let the page keep settings (private mode?).")]
    NotKept,
}

/// Names this tablet (an empty name forgets it).
pub fn save_device_name(name: &str) -> Result<(), DeviceNameError> {
    let name = name.trim();
    if name.chars().count() > MAX_DEVICE_NAME_CHARS {
        return Err(DeviceNameError::TooLong);
    }
    let storage = local_storage().ok_or(DeviceNameError::NotKept)?;
    let key = format!("counterbook.{DEVICE_NAME}");
    if name.is_empty() {
        storage.remove_item(&key)
    } else {
        storage.set_item(&key, name)
    }
    .map_err(|_| DeviceNameError::NotKept)
}

impl Settings {
    /// The defaults for a tablet served by counterbook-server: sync with the same origin.
    pub fn defaults(origin: &str) -> Settings {
        Settings {
            backend: Backend::Server,
            api_key: String::new(),
            auth_endpoint: None,
            lock_seconds: 5 * 60,
            endpoint: origin.trim_end_matches('/').to_owned(),
            project: "counterbook".into(),
            shop_id: "demo-shop".into(),
            currency: "INR".into(),
            database_name: "counterbook".into(),
            realtime: true,
            battery_saver: false,
            battery_saver_minutes: 2,
            language: Language::English,
        }
    }

    /// Whether the leader tab listens in real time; otherwise it polls while visible.
    pub fn listens(&self) -> bool {
        self.realtime && !self.battery_saver
    }

    /// Defaults, overridden by saved settings, overridden (and saved) by the page's URL.
    pub fn load() -> Settings {
        let window = web_sys::window();
        let origin = window
            .as_ref()
            .and_then(|w| w.location().origin().ok())
            .unwrap_or_default();
        let mut settings = Settings::defaults(&origin);
        let storage = window
            .as_ref()
            .and_then(|w| w.local_storage().ok().flatten());
        let query = window
            .as_ref()
            .and_then(|w| w.location().search().ok())
            .and_then(|search| web_sys::UrlSearchParams::new_with_str(&search).ok());
        for key in KEYS {
            let from_url = query
                .as_ref()
                .and_then(|q| q.get(key))
                .filter(|v| !v.trim().is_empty());
            if let (Some(value), Some(storage)) = (&from_url, &storage) {
                // Saving can fail in private mode; the URL value is still used for this visit.
                let _ = storage.set_item(&format!("counterbook.{key}"), value);
            }
            let saved = storage
                .as_ref()
                .and_then(|s| s.get_item(&format!("counterbook.{key}")).ok().flatten());
            if let Some(value) = from_url.or(saved) {
                settings.set(key, value.trim());
            }
        }
        settings
    }

    fn set(&mut self, key: &str, value: &str) {
        match key {
            "backend" => {
                self.backend = match value {
                    "firestore" => Backend::Firestore,
                    _ => Backend::Server,
                }
            }
            "apiKey" => self.api_key = value.to_owned(),
            "authEndpoint" => {
                let origin = value.trim_end_matches('/');
                self.auth_endpoint = (!origin.is_empty()).then(|| origin.to_owned());
            }
            "lockMinutes" => {
                if let Ok(minutes) = value.parse::<f64>() {
                    if minutes.is_finite() && minutes >= 0.0 {
                        self.lock_seconds = (minutes.min(24.0 * 60.0) * 60.0).round() as u32;
                    }
                }
            }
            "endpoint" => self.endpoint = value.trim_end_matches('/').to_owned(),
            "project" => self.project = value.to_owned(),
            "shop" => self.shop_id = value.to_owned(),
            "currency" => self.currency = value.to_uppercase(),
            "realtime" => self.realtime = !matches!(value, "off" | "false" | "0"),
            "batterySaver" => self.battery_saver = matches!(value, "on" | "true" | "1"),
            "batterySaverMinutes" => {
                if let Ok(minutes) = value.parse::<u32>() {
                    self.battery_saver_minutes = minutes.clamp(1, 24 * 60);
                }
            }
            "language" => {
                if let Some(language) = Language::from_code(value) {
                    self.language = language;
                }
            }
            _ => {}
        }
    }
}

/// Saves one device setting (a key of the URL parameters) on this device; the app reads it
/// at its next start. `None` forgets it (the default applies).
pub fn save_device_setting(key: &str, value: Option<&str>) {
    let Some(storage) = web_sys::window().and_then(|w| w.local_storage().ok().flatten()) else {
        return;
    };
    let key = format!("counterbook.{key}");
    // Saving can fail in private mode; the setting then lasts until the page is closed.
    let _ = match value {
        Some(value) => storage.set_item(&key, value),
        None => storage.remove_item(&key),
    };
}

/// Forgets every device setting ("Sign out and clear this tablet").
pub fn forget_device_settings() {
    for key in KEYS {
        save_device_setting(key, None);
    }
}
