//! counterbook-server's people endpoints for a shop's owner (`/counterbook/v1/shops/{shop}/people`):
//! list, add a cashier or manager, disable or enable. Each call carries the owner's own ID
//! token; the server refuses anyone else's. (On Cloud Firestore the equivalent is the Admin
//! SDK's custom claims, outside the app.)

use counterbook_firestore_wire::ErrorResponse;
use serde::{Deserialize, Serialize};

use crate::sync::identity::{self, SignInError};

/// A person of the shop, as the server lists them.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ShopPerson {
    pub user_id: String,
    pub email: String,
    #[serde(default)]
    pub display_name: String,
    pub role: String,
    #[serde(default)]
    pub disabled: bool,
}

/// A new cashier or manager.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NewShopPerson {
    pub email: String,
    pub password: String,
    pub display_name: String,
    pub role: String,
}

/// Why a people call failed: the server's message, or no answer.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ShopPeopleError {
    #[error("{0}")]
    Refused(String),
    #[error(transparent)]
    Network(#[from] SignInError),
}

fn url(endpoint: &str, shop: &str, user_id: Option<&str>) -> String {
    let shop = String::from(js_sys::encode_uri_component(shop));
    match user_id {
        Some(user) => format!(
            "{endpoint}/counterbook/v1/shops/{shop}/people/{}",
            String::from(js_sys::encode_uri_component(user))
        ),
        None => format!("{endpoint}/counterbook/v1/shops/{shop}/people"),
    }
}

async fn call(
    url: &str,
    method: &str,
    body: Option<String>,
    token: &str,
) -> Result<String, ShopPeopleError> {
    let body = body.map(|body| ("application/json", body));
    let (status, text) = identity::send(url, method, body, Some(token)).await?;
    if (200..300).contains(&status) {
        return Ok(text);
    }
    Err(ShopPeopleError::Refused(
        serde_json::from_str::<ErrorResponse>(&text)
            .map(|reply| reply.error.message)
            .unwrap_or_else(|_| format!("HTTP {status}")),
    ))
}

fn malformed(error: serde_json::Error) -> ShopPeopleError {
    ShopPeopleError::Network(SignInError::MalformedReply(error.to_string()))
}

/// Everyone in the shop, the owner included, by email.
pub async fn list(
    endpoint: &str,
    shop: &str,
    token: &str,
) -> Result<Vec<ShopPerson>, ShopPeopleError> {
    #[derive(Deserialize)]
    struct Listed {
        people: Vec<ShopPerson>,
    }
    let text = call(&url(endpoint, shop, None), "GET", None, token).await?;
    let listed: Listed = serde_json::from_str(&text).map_err(malformed)?;
    Ok(listed.people)
}

/// Adds a cashier or a manager.
pub async fn add(
    endpoint: &str,
    shop: &str,
    token: &str,
    person: &NewShopPerson,
) -> Result<ShopPerson, ShopPeopleError> {
    let body = serde_json::to_string(person).map_err(malformed)?;
    let text = call(&url(endpoint, shop, None), "POST", Some(body), token).await?;
    serde_json::from_str(&text).map_err(malformed)
}

/// Disables (or enables again) a person: a disabled person's sign-ins end at once.
pub async fn set_disabled(
    endpoint: &str,
    shop: &str,
    token: &str,
    user_id: &str,
    disabled: bool,
) -> Result<ShopPerson, ShopPeopleError> {
    let body = serde_json::json!({ "disabled": disabled }).to_string();
    let text = call(
        &url(endpoint, shop, Some(user_id)),
        "PATCH",
        Some(body),
        token,
    )
    .await?;
    serde_json::from_str(&text).map_err(malformed)
}
