//! Who is signed in on this tablet, who is at the counter, and the token requests carry.
//!
//! [`Sessions`] keeps the people of [`crate::people`] (in IndexedDB through the store), picks
//! the *sender* (the person at the counter if their sign-in still holds, else anyone's that
//! does) whose ID token pulls and Listen sessions carry ([`BearerToken`]), refreshes that token
//! before it expires, and again when the backend answers `UNAUTHENTICATED`.
//!
//! A unit goes with the token of the person it names ([`counterbook_sync::Unit::sender`]: who
//! made it, or the manager who approved it), never with someone else's
//! ([`Sessions::token_for_sender`]). When a person's refresh token is no longer accepted, that
//! person must sign in again: until then their units wait (everything local goes on, and
//! everyone else's units are sent) and the app says, naming them, how many units wait.
//!
//! Before anything is shown it finds out what the backend wants ([`Access`]): a `--dev`
//! counterbook-server or an emulator needs nobody ([`Access::Open`]); a counterbook-server with
//! accounts and no shop yet offers "Set up your shop"; otherwise someone signs in.

use std::cell::{Cell, RefCell};
use std::collections::BTreeSet;
use std::rc::Rc;

use counterbook_shop::Role;
use counterbook_sync::sorted_map::SortedMap;
use leptos::prelude::*;
use leptos::task::spawn_local;
use serde::Deserialize;

use crate::people::{Person, PinError, PinHash};
use crate::settings::{Backend, Settings};
use crate::storage::{StorageError, Store};
use crate::sync::identity::{
    self, AuthEndpoints, BearerToken, IssuedTokens, SignInError, TokenClaims,
};

/// A token is refreshed this long before it expires (or a quarter of its life, if shorter).
const REFRESH_MARGIN_MILLIS: i64 = 5 * 60 * 1000;
/// After a refresh that failed for want of a network, the next try.
const REFRESH_RETRY_MILLIS: i64 = 20_000;

/// What the app shows before the shop.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Access {
    /// Asking the backend.
    Checking,
    /// The backend needs no sign-in (`--dev`, the emulator).
    Open,
    /// A counterbook-server with accounts that holds no shop yet.
    SetUpShop,
    /// Nobody is signed in on this tablet.
    SignIn,
    /// Someone is signed in: the shop.
    SignedIn,
}

/// The answer of counterbook-server's `GET /counterbook/v1/setup`.
#[derive(Deserialize)]
struct SetupStatus {
    mode: String,
    #[serde(default)]
    claimed: bool,
}

/// What "Set up your shop" sends (`POST /counterbook/v1/setup:claim`).
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ShopClaim {
    pub setup_code: String,
    pub shop_name: String,
    pub currency: String,
    pub country: String,
    pub locale: String,
    pub email: String,
    pub password: String,
    pub display_name: String,
}

/// Why setting up the shop failed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SetupError {
    #[error("The setup code is wrong. It is in the server's log.")]
    WrongCode,
    #[error("This server already holds a shop. Sign in instead.")]
    AlreadyClaimed,
    #[error("Too many wrong codes. Wait a little and try again.")]
    TooManyAttempts,
    /// A field the server refused, with the last number of its words (the rule's limit:
    /// "1 to 200 characters", "at least 6 characters"), if they had one.
    #[error("the server refused the {field:?}: {detail}")]
    InvalidField {
        field: SetupField,
        limit: Option<usize>,
        detail: String,
    },
    /// Any other refusal, in the server's words.
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    SignIn(#[from] SignInError),
    /// The claim succeeded but its owner could not be signed in here.
    #[error(transparent)]
    Session(SessionError),
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// A field of "Set up your shop", as `setup:claim` names it in an `INVALID_ARGUMENT`
/// ("Invalid value at 'currency': an ISO 4217 code of three capital letters, like INR").
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SetupField {
    ShopName,
    Currency,
    Country,
    Locale,
    Email,
    Password,
    DisplayName,
}

impl SetupField {
    fn from_wire_name(name: &str) -> Option<SetupField> {
        Some(match name {
            "shopName" => SetupField::ShopName,
            "currency" => SetupField::Currency,
            "country" => SetupField::Country,
            "locale" => SetupField::Locale,
            "email" => SetupField::Email,
            "password" => SetupField::Password,
            "displayName" => SetupField::DisplayName,
            _ => return None,
        })
    }
}

/// What a refused claim's message says, as a [`SetupError`]: a field and its limit when the
/// server named one it knows ("Invalid value at 'password': at least 6 characters"), else the
/// server's words.
fn setup_refusal(message: String) -> SetupError {
    let named = message
        .strip_prefix("Invalid value at '")
        .and_then(|rest| rest.split_once("': "))
        .and_then(|(name, why)| Some((SetupField::from_wire_name(name)?, why)));
    let Some((field, why)) = named else {
        return SetupError::Invalid(message);
    };
    let limit = why
        .split(|c: char| !c.is_ascii_digit())
        .rfind(|digits| !digits.is_empty())
        .and_then(|digits| digits.parse().ok());
    SetupError::InvalidField {
        field,
        limit,
        detail: why.to_owned(),
    }
}

/// Why a person could not be signed in on this tablet.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SessionError {
    #[error(transparent)]
    SignIn(#[from] SignInError),
    #[error("This account belongs to no shop.")]
    NoShop,
    #[error("This account has no role in its shop.")]
    NoRole,
    #[error(
        "This account belongs to another shop ({0}) than the people signed in here. Sign them out first."
    )]
    AnotherShop(String),
    #[error("The PIN is wrong.")]
    WrongPin,
    #[error(transparent)]
    Pin(#[from] PinError),
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// A unit's sender must sign in again on this tablet before it can be sent (their user id).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0} must sign in again on this tablet")]
pub struct SenderMustSignIn(pub String);

/// What a sign-in leads to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SignedIn {
    /// The shop on this tablet is theirs: go on.
    Ready,
    /// Their shop is another than the one this tablet was opened for: the app must start
    /// again on it.
    RestartForShop(String),
}

/// Told whose requests may go again (their user id).
type ResumeCallback = Rc<dyn Fn(String)>;

struct SessionsInner {
    store: Rc<Store>,
    settings: Settings,
    bearer: BearerToken,
    people: RwSignal<Vec<Person>>,
    active: RwSignal<Option<String>>,
    locked: RwSignal<bool>,
    access: RwSignal<Access>,
    /// Whose token pulls and listening carry now.
    sender: RefCell<Option<String>>,
    /// The people whose token is being refreshed now.
    refreshing: RefCell<BTreeSet<String>>,
    refresh_timer: Cell<Option<i32>>,
    /// Refreshes, by person, since the backend last accepted a request of theirs: a backend
    /// refusing fresh tokens must not make the tablet refresh forever.
    refreshes_without_success: RefCell<SortedMap<String, u32>>,
    /// Called with whose requests may go again (a token was refreshed or someone signed in).
    on_resume: RefCell<Option<ResumeCallback>>,
}

/// The people of this tablet and their tokens; cheap to clone.
#[derive(Clone)]
pub struct Sessions {
    inner: Rc<SessionsInner>,
}

fn now_millis() -> i64 {
    js_sys::Date::now() as i64
}

/// The endpoints of the configured backend's sign-in.
pub fn auth_endpoints(settings: &Settings) -> AuthEndpoints {
    match (&settings.backend, &settings.auth_endpoint) {
        (_, Some(origin)) => AuthEndpoints::at_origin(origin, &settings.api_key),
        (Backend::Server, None) => AuthEndpoints::at_origin(&settings.endpoint, &settings.api_key),
        (Backend::Firestore, None) => AuthEndpoints::google(&settings.api_key),
    }
}

impl Sessions {
    /// Loads the people of this tablet from the store.
    pub async fn load(store: Rc<Store>, settings: Settings) -> Result<Sessions, StorageError> {
        let people = store.people().await?;
        let active = store.active_person_id().await?;
        let sessions = Sessions {
            inner: Rc::new(SessionsInner {
                store,
                settings,
                bearer: BearerToken::default(),
                people: RwSignal::new(people),
                active: RwSignal::new(active),
                locked: RwSignal::new(false),
                access: RwSignal::new(Access::Checking),
                sender: RefCell::new(None),
                refreshing: RefCell::new(BTreeSet::new()),
                refresh_timer: Cell::new(None),
                refreshes_without_success: RefCell::new(SortedMap::new()),
                on_resume: RefCell::new(None),
            }),
        };
        let someone_has_a_pin = sessions
            .inner
            .people
            .with_untracked(|people| people.iter().any(|p| p.pin.is_some()));
        // A tablet with people on it starts locked when someone has a PIN (and the tablet
        // locks at all): a reload must not open the counter to whoever picks the tablet up.
        sessions
            .inner
            .locked
            .set(someone_has_a_pin && sessions.inner.settings.lock_seconds > 0);
        sessions.choose_sender();
        Ok(sessions)
    }

    /// Reads the people again (another tab signed someone in or out).
    pub async fn reload(&self) {
        let (Ok(people), Ok(active)) = (
            self.inner.store.people().await,
            self.inner.store.active_person_id().await,
        ) else {
            return;
        };
        let someone = !people.is_empty();
        self.inner.people.set(people);
        self.inner.active.set(active);
        self.choose_sender();
        if someone && self.inner.access.get_untracked() != Access::SignedIn {
            self.inner.access.set(Access::SignedIn);
        }
    }

    /// The token requests carry (shared with `remote` and `listen_channel`).
    pub fn bearer(&self) -> BearerToken {
        self.inner.bearer.clone()
    }

    /// Runs `resume` with whose requests may go again, whenever they may.
    pub fn on_resume(&self, resume: impl Fn(String) + 'static) {
        *self.inner.on_resume.borrow_mut() = Some(Rc::new(resume));
    }

    pub fn access(&self) -> RwSignal<Access> {
        self.inner.access
    }

    /// Everyone signed in on this tablet.
    pub fn people(&self) -> RwSignal<Vec<Person>> {
        self.inner.people
    }

    /// The user id of who is at the counter.
    pub fn active(&self) -> RwSignal<Option<String>> {
        self.inner.active
    }

    /// Whether the app asks for a PIN before anything else.
    pub fn locked(&self) -> RwSignal<bool> {
        self.inner.locked
    }

    /// Who is at the counter (untracked).
    pub fn active_person(&self) -> Option<Person> {
        let active = self.inner.active.get_untracked()?;
        self.person(&active)
    }

    pub fn person(&self, user_id: &str) -> Option<Person> {
        self.inner.people.with_untracked(|people| {
            people
                .iter()
                .find(|person| person.user_id == user_id)
                .cloned()
        })
    }

    /// The people signed in here whose sign-in the backend no longer accepts (tracked): their
    /// units wait until they sign in again.
    pub fn people_to_sign_in_again(&self) -> Vec<Person> {
        self.inner.people.with(|people| {
            people
                .iter()
                .filter(|person| person.needs_sign_in)
                .cloned()
                .collect()
        })
    }

    /// Whether nobody signed in here holds a sign-in the backend still accepts (tracked).
    pub fn nobody_can_send(&self) -> bool {
        self.inner
            .people
            .with(|people| !people.is_empty() && people.iter().all(|person| person.needs_sign_in))
    }

    /// The token to send a unit of `sender` with ([`counterbook_sync::Unit::sender`]): their
    /// own, refreshed first if it expires within a minute; for a unit naming nobody, the
    /// tablet's token (none where nobody signs in). `Err` when `sender` must sign in again
    /// first (their sign-in has ended, or they are not signed in on this tablet): the unit
    /// waits, it never goes with anyone else's token.
    pub async fn token_for_sender(
        &self,
        sender: Option<&str>,
    ) -> Result<Option<String>, SenderMustSignIn> {
        let Some(user_id) = sender else {
            return Ok(self.inner.bearer.get());
        };
        match self.person(user_id) {
            Some(person) if !person.needs_sign_in => Ok(self.fresh_token_of(user_id).await),
            _ => Err(SenderMustSignIn(user_id.to_owned())),
        }
    }

    /// Finds out what the backend wants and sets [`Access`].
    pub async fn check_access(&self) {
        let has_people = self
            .inner
            .people
            .with_untracked(|people| !people.is_empty());
        if has_people {
            self.inner.access.set(Access::SignedIn);
            self.schedule_refresh();
            return;
        }
        let settings = &self.inner.settings;
        let access = match settings.backend {
            Backend::Firestore if settings.api_key.is_empty() => Access::Open,
            Backend::Firestore => Access::SignIn,
            Backend::Server => self.ask_the_server().await,
        };
        self.inner.access.set(access);
    }

    async fn ask_the_server(&self) -> Access {
        let endpoint = self.inner.settings.endpoint.clone();
        let known_open = self
            .inner
            .store
            .open_backend()
            .await
            .ok()
            .flatten()
            .as_ref()
            == Some(&endpoint);
        if known_open {
            // Asked before: no round trip before the shop opens (offline starts included). If
            // the server has accounts by now, its first refusal asks for a sign-in.
            return Access::Open;
        }
        let url = format!("{endpoint}/counterbook/v1/setup");
        match identity::send(&url, "GET", None, None).await {
            Ok((200, text)) => match serde_json::from_str::<SetupStatus>(&text) {
                Ok(status) if status.mode == "dev" => self.remember_open(&endpoint).await,
                Ok(status) if !status.claimed => Access::SetUpShop,
                Ok(_) => Access::SignIn,
                // Something else answers there (a proxy's page): no accounts we know of.
                Err(_) => self.remember_open(&endpoint).await,
            },
            // The emulator, Cloud Firestore or an older counterbook-server: no such endpoint.
            Ok((404, _)) => self.remember_open(&endpoint).await,
            // Unreachable and never asked: the tablet works on its own; if the backend turns
            // out to need a sign-in, its first refusal asks for one.
            Ok(_) | Err(_) => Access::Open,
        }
    }

    async fn remember_open(&self, endpoint: &str) -> Access {
        // Only a faster offline start is lost if this cannot be saved.
        let _ = self.inner.store.set_open_backend(Some(endpoint)).await;
        Access::Open
    }

    /// Signs a person in with email and password, makes them the person at the counter and
    /// sends with their token.
    pub async fn sign_in(&self, email: &str, password: &str) -> Result<SignedIn, SessionError> {
        let endpoints = auth_endpoints(&self.inner.settings);
        let tokens = identity::sign_in_with_password(&endpoints, email, password).await?;
        self.adopt(tokens).await
    }

    /// Claims the server with its one-time setup code; the owner is then signed in.
    pub async fn claim_shop(&self, claim: &ShopClaim) -> Result<SignedIn, SetupError> {
        let url = format!(
            "{}/counterbook/v1/setup:claim",
            self.inner.settings.endpoint
        );
        let mut claim = claim.clone();
        claim.setup_code = normalize_setup_code(&claim.setup_code);
        let body = serde_json::to_string(&claim).unwrap_or_default();
        let (status, text) = identity::send(&url, "POST", Some(("application/json", body)), None)
            .await
            .map_err(SetupError::SignIn)?;
        if !(200..300).contains(&status) {
            let error: Option<counterbook_firestore_wire::ErrorResponse> =
                serde_json::from_str(&text).ok();
            let message = error
                .map(|reply| reply.error.message)
                .unwrap_or_else(|| format!("HTTP {status}"));
            return Err(match status {
                403 => SetupError::WrongCode,
                409 => SetupError::AlreadyClaimed,
                429 => SetupError::TooManyAttempts,
                _ => setup_refusal(message),
            });
        }
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct ClaimReply {
            id_token: String,
            refresh_token: String,
            #[serde(default)]
            expires_in: Option<String>,
        }
        let reply: ClaimReply = serde_json::from_str(&text)
            .map_err(|e| SetupError::SignIn(SignInError::MalformedReply(e.to_string())))?;
        let tokens = IssuedTokens {
            expires_in_seconds: reply
                .expires_in
                .and_then(|s| s.parse().ok())
                .unwrap_or(3600),
            id_token: reply.id_token,
            refresh_token: reply.refresh_token,
        };
        self.adopt(tokens).await.map_err(|error| match error {
            SessionError::Storage(e) => SetupError::Storage(e),
            other => SetupError::Session(other),
        })
    }

    /// Keeps fresh tokens from a sign-in: the person is saved, put at the counter, and sends.
    async fn adopt(&self, tokens: IssuedTokens) -> Result<SignedIn, SessionError> {
        let claims = TokenClaims::of(&tokens.id_token)
            .ok_or_else(|| SignInError::MalformedReply("the ID token is not a JWT".into()))?;
        let shop = claims.shop.clone().ok_or(SessionError::NoShop)?;
        let role = claims
            .role
            .as_deref()
            .and_then(Role::from_claim)
            .ok_or(SessionError::NoRole)?;
        let other_shop = self.inner.people.with_untracked(|people| {
            people
                .iter()
                .find(|p| p.shop != shop && p.user_id != claims.user_id)
                .map(|p| p.shop.clone())
        });
        if let Some(other) = other_shop {
            return Err(SessionError::AnotherShop(other));
        }
        let kept_pin = self.person(&claims.user_id).and_then(|p| p.pin);
        let person = Person {
            user_id: claims.user_id.clone(),
            email: claims.email.clone(),
            shop: shop.clone(),
            role,
            id_token: tokens.id_token,
            refresh_token: tokens.refresh_token,
            id_token_expires_at_millis: now_millis() + tokens.expires_in_seconds * 1000,
            pin_declined: self.person(&claims.user_id).is_some_and(|p| p.pin_declined),
            pin: kept_pin,
            needs_sign_in: false,
        };
        self.inner.store.save_person(&person).await?;
        self.inner
            .store
            .set_active_person(Some(&person.user_id))
            .await?;
        self.put_person(person);
        self.inner.active.set(Some(claims.user_id.clone()));
        if shop != self.inner.settings.shop_id {
            // The app starts again on their shop (the caller reloads the page), where the
            // saved sign-in opens it. This page's engine is for the old shop's paths: it does
            // not send with the new token, and its screens stay as they are until the reload
            // (showing "Choose your PIN" here would be taken away by the reload mid-typing).
            return Ok(SignedIn::RestartForShop(shop));
        }
        self.inner.locked.set(false);
        self.inner
            .refreshes_without_success
            .borrow_mut()
            .remove(&claims.user_id);
        self.choose_sender();
        self.schedule_refresh();
        self.inner.access.set(Access::SignedIn);
        self.resume(claims.user_id);
        Ok(SignedIn::Ready)
    }

    fn put_person(&self, person: Person) {
        self.inner.people.update(|people| {
            match people.iter_mut().find(|p| p.user_id == person.user_id) {
                Some(existing) => *existing = person,
                None => people.push(person),
            }
        });
    }

    /// Whose token requests carry: the person at the counter if their sign-in holds, else
    /// the first person whose sign-in does.
    fn choose_sender(&self) {
        let active = self.inner.active.get_untracked();
        let sender = self.inner.people.with_untracked(|people| {
            people
                .iter()
                .filter(|p| !p.needs_sign_in)
                .find(|p| Some(&p.user_id) == active.as_ref())
                .or_else(|| people.iter().find(|p| !p.needs_sign_in))
                .cloned()
        });
        self.inner
            .bearer
            .set(sender.as_ref().map(|p| p.id_token.clone()));
        *self.inner.sender.borrow_mut() = sender.map(|p| p.user_id);
    }

    fn resume(&self, user_id: String) {
        let resume = self.inner.on_resume.borrow().clone();
        if let Some(resume) = resume {
            resume(user_id);
        }
    }

    /// The person a request went as: `user_id`, or for `None` the tablet's sender.
    fn sent_as(&self, user_id: Option<&str>) -> Option<String> {
        user_id
            .map(str::to_owned)
            .or_else(|| self.inner.sender.borrow().clone())
    }

    /// The backend accepted a request sent as `user_id` (`None`: the tablet's token): their
    /// token works.
    pub fn request_accepted(&self, user_id: Option<&str>) {
        if let Some(user_id) = self.sent_as(user_id) {
            self.inner
                .refreshes_without_success
                .borrow_mut()
                .remove(&user_id);
        }
    }

    /// The backend answered `UNAUTHENTICATED` to a request sent as `user_id` (`None`: the
    /// tablet's token): refresh that person's token (once at a time); if it cannot be
    /// refreshed, they must sign in again, and the tablet's own requests go with the next
    /// person's, until nobody is left.
    pub fn token_refused(&self, user_id: Option<&str>) {
        let Some(sender) = self.sent_as(user_id) else {
            // Nobody is signed in, yet the backend wants a token: it needs a sign-in after all
            // (a `--dev` server restarted with accounts).
            if self.inner.access.get_untracked() == Access::Open {
                let store = Rc::clone(&self.inner.store);
                spawn_local(async move {
                    let _ = store.set_open_backend(None).await;
                });
                self.inner.access.set(Access::SignIn);
            }
            return;
        };
        let signed_in_here = self
            .person(&sender)
            .is_some_and(|person| !person.needs_sign_in);
        if !signed_in_here || self.inner.refreshing.borrow().contains(&sender) {
            return;
        }
        let tries = {
            let mut counts = self.inner.refreshes_without_success.borrow_mut();
            let tries = counts.get_or_insert_with(sender.clone(), u32::default);
            *tries += 1;
            *tries
        };
        if tries > 3 {
            // Fresh tokens refused three times: this sign-in is no good here.
            let this = self.clone();
            spawn_local(async move { this.mark_needs_sign_in(&sender).await });
            return;
        }
        self.refresh(sender);
    }

    fn refresh(&self, user_id: String) {
        let Some(person) = self.person(&user_id) else {
            return;
        };
        if !self.inner.refreshing.borrow_mut().insert(user_id.clone()) {
            return;
        }
        let this = self.clone();
        spawn_local(async move {
            let endpoints = auth_endpoints(&this.inner.settings);
            let outcome = identity::refresh_id_token(&endpoints, &person.refresh_token).await;
            this.inner.refreshing.borrow_mut().remove(&user_id);
            match outcome {
                Ok(tokens) => {
                    let mut person = person;
                    person.id_token_expires_at_millis =
                        now_millis() + tokens.expires_in_seconds * 1000;
                    if let Some(claims) = TokenClaims::of(&tokens.id_token) {
                        if let Some(role) = claims.role.as_deref().and_then(Role::from_claim) {
                            person.role = role;
                        }
                    }
                    person.id_token = tokens.id_token;
                    person.refresh_token = tokens.refresh_token;
                    // The token is used even if saving it fails; a reload refreshes again.
                    let _ = this.inner.store.save_person(&person).await;
                    this.put_person(person);
                    this.choose_sender();
                    this.schedule_refresh();
                    this.resume(user_id);
                }
                Err(error) if error.is_temporary() => {
                    if this.inner.sender.borrow().as_deref() == Some(user_id.as_str()) {
                        this.schedule_refresh_at(now_millis() + REFRESH_RETRY_MILLIS);
                    } else {
                        // Someone else's unit waits on this refresh: try again later.
                        let again = this.clone();
                        schedule_after(REFRESH_RETRY_MILLIS, move || {
                            again.token_refused(Some(&user_id))
                        });
                    }
                }
                Err(_) => this.mark_needs_sign_in(&user_id).await,
            }
        });
    }

    async fn mark_needs_sign_in(&self, user_id: &str) {
        let Some(mut person) = self.person(user_id) else {
            return;
        };
        person.needs_sign_in = true;
        let _ = self.inner.store.save_person(&person).await;
        self.put_person(person);
        let had_sender = self.inner.sender.borrow().clone();
        self.choose_sender();
        let sender = self.inner.sender.borrow().clone();
        if let Some(sender) = sender.filter(|sender| Some(sender) != had_sender.as_ref()) {
            self.inner
                .refreshes_without_success
                .borrow_mut()
                .remove(&sender);
            self.schedule_refresh();
            self.resume(sender);
        }
    }

    /// Sets a timer to refresh the sender's token a little before it expires.
    fn schedule_refresh(&self) {
        let Some(sender) = self.inner.sender.borrow().clone() else {
            return;
        };
        let Some(person) = self.person(&sender) else {
            return;
        };
        let expires = person.id_token_expires_at_millis;
        let lifetime = TokenClaims::of(&person.id_token)
            .map(|claims| (claims.expires_at_seconds - claims.issued_at_seconds) * 1000)
            .filter(|lifetime| *lifetime > 0)
            .unwrap_or(REFRESH_MARGIN_MILLIS * 12);
        let margin = REFRESH_MARGIN_MILLIS.min(lifetime / 4).max(500);
        self.schedule_refresh_at(expires - margin);
    }

    fn schedule_refresh_at(&self, at: i64) {
        if let Some(previous) = self.inner.refresh_timer.take() {
            crate::global_scope::clear_timeout(previous);
        }
        let this = self.clone();
        let callback = wasm_bindgen::closure::Closure::once_into_js(move || {
            this.inner.refresh_timer.set(None);
            let sender = this.inner.sender.borrow().clone();
            if let Some(sender) = sender {
                this.refresh(sender);
            }
        });
        let delay = (at - now_millis()).clamp(0, i64::from(i32::MAX)) as i32;
        let handle = wasm_bindgen::JsCast::unchecked_ref(&callback);
        self.inner
            .refresh_timer
            .set(crate::global_scope::set_timeout(handle, delay));
    }

    /// The browser came online: a token that expired meanwhile is refreshed at once.
    pub fn browser_online(&self) {
        let Some(sender) = self.inner.sender.borrow().clone() else {
            return;
        };
        let expired = self
            .person(&sender)
            .map(|p| p.id_token_expires_at_millis <= now_millis())
            .unwrap_or(false);
        if expired {
            self.refresh(sender);
        }
    }

    /// Sets the PIN of the person at the counter.
    pub async fn set_pin(&self, pin: &str) -> Result<(), SessionError> {
        let Some(mut person) = self.active_person() else {
            return Err(SessionError::WrongPin);
        };
        person.pin = Some(PinHash::new(pin).await?);
        self.inner.store.save_person(&person).await?;
        self.put_person(person);
        Ok(())
    }

    /// The person at the counter chose not to set a PIN now.
    pub async fn decline_pin(&self) -> Result<(), StorageError> {
        let Some(mut person) = self.active_person() else {
            return Ok(());
        };
        person.pin_declined = true;
        self.inner.store.save_person(&person).await?;
        self.put_person(person);
        Ok(())
    }

    /// Whether the person at the counter is to be asked for a PIN (tracked).
    pub fn asks_for_pin(&self) -> bool {
        let active = self.inner.active.get();
        self.inner.people.with(|people| {
            people
                .iter()
                .any(|p| Some(&p.user_id) == active.as_ref() && p.pin.is_none() && !p.pin_declined)
        })
    }

    /// Checks `pin` against `user_id`'s PIN (on the device).
    pub async fn check_pin(&self, user_id: &str, pin: &str) -> Result<Person, SessionError> {
        let person = self.person(user_id).ok_or(SessionError::WrongPin)?;
        let Some(hash) = &person.pin else {
            return Err(SessionError::WrongPin);
        };
        if hash.matches(pin).await? {
            Ok(person)
        } else {
            Err(SessionError::WrongPin)
        }
    }

    /// Puts `user_id` at the counter after their PIN was checked, and unlocks.
    pub async fn switch_to(&self, user_id: &str, pin: &str) -> Result<(), SessionError> {
        self.check_pin(user_id, pin).await?;
        self.inner.store.set_active_person(Some(user_id)).await?;
        self.inner.active.set(Some(user_id.to_owned()));
        self.inner.locked.set(false);
        self.choose_sender();
        self.schedule_refresh();
        self.resume(user_id.to_owned());
        Ok(())
    }

    /// Locks the app until someone enters their PIN (only when someone has one).
    pub fn lock(&self) {
        let someone_has_a_pin = self
            .inner
            .people
            .with_untracked(|people| people.iter().any(|p| p.pin.is_some()));
        if someone_has_a_pin {
            self.inner.locked.set(true);
        }
    }

    /// Signs a person out of this tablet (their tokens forgotten).
    pub async fn sign_out(&self, user_id: &str) -> Result<(), StorageError> {
        self.inner.store.remove_person(user_id).await?;
        self.inner
            .people
            .update(|people| people.retain(|p| p.user_id != user_id));
        if self.inner.active.get_untracked().as_deref() == Some(user_id) {
            self.inner.active.set(None);
        }
        self.choose_sender();
        if self.inner.people.with_untracked(Vec::is_empty) {
            self.inner.access.set(Access::SignIn);
        }
        Ok(())
    }

    /// The ID token of a signed-in person, for a request made as them (a manager's
    /// approval), refreshed first if it expires within a minute. `None` if they are not
    /// signed in here; their last token if it cannot be refreshed now (the backend then
    /// answers `UNAUTHENTICATED` and the unit waits).
    pub async fn fresh_token_of(&self, user_id: &str) -> Option<String> {
        let mut person = self.person(user_id)?;
        if person.id_token_expires_at_millis - now_millis() > 60_000 || person.needs_sign_in {
            return Some(person.id_token);
        }
        let endpoints = auth_endpoints(&self.inner.settings);
        match identity::refresh_id_token(&endpoints, &person.refresh_token).await {
            Ok(tokens) => {
                person.id_token_expires_at_millis = now_millis() + tokens.expires_in_seconds * 1000;
                person.id_token = tokens.id_token;
                person.refresh_token = tokens.refresh_token;
                let _ = self.inner.store.save_person(&person).await;
                let token = person.id_token.clone();
                self.put_person(person);
                if self.inner.sender.borrow().as_deref() == Some(user_id) {
                    self.choose_sender();
                }
                Some(token)
            }
            Err(error) if error.is_temporary() => Some(person.id_token),
            Err(_) => {
                self.mark_needs_sign_in(user_id).await;
                Some(person.id_token)
            }
        }
    }
}

/// Runs `callback` once, `delay_millis` from now.
fn schedule_after(delay_millis: i64, callback: impl FnOnce() + 'static) {
    let Some(window) = web_sys::window() else {
        return;
    };
    let callback = wasm_bindgen::closure::Closure::once_into_js(callback);
    let delay = delay_millis.clamp(0, i64::from(i32::MAX)) as i32;
    // A timer the browser refuses to set only delays a retry until the next request.
    let _ = window.set_timeout_with_callback_and_timeout_and_arguments_0(
        wasm_bindgen::JsCast::unchecked_ref(&callback),
        delay,
    );
}

/// The setup code as the server prints it: upper case, groups of four joined by dashes.
pub fn normalize_setup_code(code: &str) -> String {
    let characters: Vec<char> = code
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .map(|c| c.to_ascii_uppercase())
        .collect();
    characters
        .chunks(4)
        .map(|chunk| chunk.iter().collect::<String>())
        .collect::<Vec<_>>()
        .join("-")
}

#[cfg(test)]
mod tests {
    use super::*;
    use wasm_bindgen_test::wasm_bindgen_test;

    #[wasm_bindgen_test]
    fn setup_codes_are_read_with_or_without_dashes() {
        for typed in [
            "k7qx-m2rd-9htw",
            "K7QX M2RD 9HTW",
            "k7qxm2rd9htw",
            " K7QX-M2RD-9HTW ",
        ] {
            assert_eq!(normalize_setup_code(typed), "K7QX-M2RD-9HTW", "{typed}");
        }
    }

    #[wasm_bindgen_test]
    fn a_refused_claim_names_the_field_and_its_limit() {
        let check = |message: &str, expected: SetupError| {
            assert_eq!(setup_refusal(message.to_owned()), expected, "{message}");
        };
        check(
            "Invalid value at 'password': at least 6 characters",
            SetupError::InvalidField {
                field: SetupField::Password,
                limit: Some(6),
                detail: "at least 6 characters".into(),
            },
        );
        check(
            "Invalid value at 'shopName': give the shop a name of 1 to 200 characters",
            SetupError::InvalidField {
                field: SetupField::ShopName,
                limit: Some(200),
                detail: "give the shop a name of 1 to 200 characters".into(),
            },
        );
        check(
            "Invalid value at 'currency': an ISO 4217 code of three capital letters, like INR",
            SetupError::InvalidField {
                field: SetupField::Currency,
                limit: Some(4217),
                detail: "an ISO 4217 code of three capital letters, like INR".into(),
            },
        );
        check(
            "Invalid value at 'shopId': 1 to 100 letters",
            SetupError::Invalid("Invalid value at 'shopId': 1 to 100 letters".into()),
        );
        check("HTTP 500", SetupError::Invalid("HTTP 500".into()));
    }
}
