//! Customers and their credit (khata) balance, and their Firestore document form.
//!
//! On the wire a customer is `name`, `phone`, `phoneDigits`, `creditLimit`, `deleted`, and the
//! counter `creditBalance` (what they owe, in minor units), which travels only as increments;
//! the sync core's business rules check `creditBalance` against `creditLimit` after sync.

use std::collections::BTreeMap;

use counterbook_firestore_wire::{map_by_insertion, Document, DocumentName, Value};
use serde::{Deserialize, Serialize};

use crate::product::InvalidDocument;

/// The collection of customers under `shops/{shop}/`.
pub const CUSTOMERS_COLLECTION: &str = "customers";
/// The balance counter's field: written only as increments.
pub const CREDIT_BALANCE_FIELD: &str = "creditBalance";
/// The credit limit's field (`null`: no limit).
pub const CREDIT_LIMIT_FIELD: &str = "creditLimit";

/// A customer, with the credit (khata) balance they owe.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Customer {
    pub id: String,
    pub name: String,
    /// As typed.
    #[serde(default)]
    pub phone: Option<String>,
    /// The phone's digits only, for the phone index ("+91 98765-43210" is "919876543210").
    #[serde(default)]
    pub phone_digits: Option<String>,
    /// What the customer owes, in minor units. A counter: travels as increments.
    #[serde(default)]
    pub credit_balance_minor: i64,
    /// The most the customer may owe; `None`: no limit.
    #[serde(default)]
    pub credit_limit_minor: Option<i64>,
    #[serde(default)]
    pub deleted: bool,
}

/// Why a customer's fields cannot be saved.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CustomerError {
    #[error("the customer's name is empty")]
    EmptyName,
    #[error("the phone number \"{0}\" has no digits")]
    PhoneWithoutDigits(String),
    #[error("the credit limit cannot be negative")]
    NegativeCreditLimit,
}

/// The digits of a phone number, for the index and for `wa.me` links.
pub fn phone_digits(phone: &str) -> String {
    phone.chars().filter(char::is_ascii_digit).collect()
}

impl Customer {
    /// A new customer with no balance and no limit; the phone is optional.
    pub fn new(id: String, name: &str, phone: Option<&str>) -> Customer {
        let phone = phone.map(str::trim).filter(|phone| !phone.is_empty());
        Customer {
            id,
            name: name.trim().to_owned(),
            phone: phone.map(str::to_owned),
            phone_digits: phone.map(phone_digits),
            ..Customer::default()
        }
    }

    pub fn document_path(&self, shop_id: &str) -> String {
        format!("shops/{shop_id}/{CUSTOMERS_COLLECTION}/{}", self.id)
    }

    pub fn validate(&self) -> Result<(), CustomerError> {
        if self.name.trim().is_empty() {
            return Err(CustomerError::EmptyName);
        }
        if let Some(phone) = &self.phone {
            if phone_digits(phone).is_empty() {
                return Err(CustomerError::PhoneWithoutDigits(phone.clone()));
            }
        }
        if self.credit_limit_minor.is_some_and(|limit| limit < 0) {
            return Err(CustomerError::NegativeCreditLimit);
        }
        Ok(())
    }

    /// How much more the customer may owe (`None`: no limit).
    pub fn available_credit_minor(&self) -> Option<i64> {
        self.credit_limit_minor
            .map(|limit| (limit - self.credit_balance_minor).max(0))
    }

    /// The entity fields of the customer document; the balance is a counter, never a value.
    pub fn to_fields(&self) -> BTreeMap<String, Value> {
        let optional_text =
            |value: &Option<String>| value.clone().map(Value::String).unwrap_or(Value::Null);
        map_by_insertion([
            ("name".to_string(), Value::String(self.name.clone())),
            ("phone".to_string(), optional_text(&self.phone)),
            ("phoneDigits".to_string(), optional_text(&self.phone_digits)),
            (
                CREDIT_LIMIT_FIELD.to_string(),
                self.credit_limit_minor
                    .map(Value::Integer)
                    .unwrap_or(Value::Null),
            ),
            ("deleted".to_string(), Value::Boolean(self.deleted)),
        ])
    }

    /// Reads a customer document as pulled from the server.
    pub fn from_document(document: &Document) -> Result<Customer, InvalidDocument> {
        let invalid = |reason: &str| InvalidDocument {
            name: document.name.clone(),
            reason: reason.to_owned(),
        };
        let name = DocumentName::parse(&document.name).map_err(|e| invalid(&e.to_string()))?;
        let id = name
            .id()
            .ok_or_else(|| invalid("no document id"))?
            .to_owned();
        let fields = &document.fields;
        let optional_text =
            |field: &str| fields.get(field).and_then(Value::as_str).map(str::to_owned);
        let phone = optional_text("phone");
        Ok(Customer {
            id,
            name: optional_text("name")
                .ok_or_else(|| invalid("`name` is missing or not a string"))?,
            phone_digits: optional_text("phoneDigits")
                .or_else(|| phone.as_deref().map(phone_digits)),
            phone,
            credit_balance_minor: fields
                .get(CREDIT_BALANCE_FIELD)
                .and_then(Value::as_integer)
                .unwrap_or(0),
            credit_limit_minor: fields.get(CREDIT_LIMIT_FIELD).and_then(Value::as_integer),
            deleted: fields.get("deleted").and_then(Value::as_bool) == Some(true),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_customer_survives_the_trip_through_a_document() {
        let mut customer = Customer::new("c1".into(), " Asha ", Some("+91 98765-43210"));
        customer.credit_limit_minor = Some(500_00);
        assert_eq!(customer.phone_digits.as_deref(), Some("919876543210"));
        let mut fields = customer.to_fields();
        assert!(!fields.contains_key(CREDIT_BALANCE_FIELD), "a counter");
        fields.insert(CREDIT_BALANCE_FIELD.into(), Value::Integer(120_00));
        let document = Document {
            name: format!(
                "projects/p/databases/(default)/documents/{}",
                customer.document_path("s1")
            ),
            fields,
            ..Document::default()
        };
        let back = Customer::from_document(&document).unwrap();
        assert_eq!(
            back,
            Customer {
                credit_balance_minor: 120_00,
                ..customer.clone()
            }
        );
        assert_eq!(back.available_credit_minor(), Some(380_00));
    }

    #[test]
    fn the_stored_form_is_the_one_the_app_already_keeps() {
        let stored = serde_json::json!({
            "id": "c1", "name": "Asha", "phone": "98765", "phoneDigits": "98765",
            "creditBalanceMinor": 10, "creditLimitMinor": null, "deleted": false
        });
        let customer: Customer = serde_json::from_value(stored.clone()).unwrap();
        assert_eq!(serde_json::to_value(&customer).unwrap(), stored);
    }

    #[test]
    fn validation_names_the_broken_rule() {
        assert_eq!(Customer::new("c".into(), "Asha", None).validate(), Ok(()));
        assert_eq!(
            Customer::new("c".into(), " ", None).validate(),
            Err(CustomerError::EmptyName)
        );
        assert_eq!(
            Customer::new("c".into(), "Asha", Some("n/a")).validate(),
            Err(CustomerError::PhoneWithoutDigits("n/a".into()))
        );
        let mut customer = Customer::new("c".into(), "Asha", None);
        customer.credit_limit_minor = Some(-1);
        assert_eq!(customer.validate(), Err(CustomerError::NegativeCreditLimit));
    }
}
