//! Domain types the shop works with, and how they map to Firestore documents.
//!
//! Field names on the wire are part of the protocol every tablet and backend shares; they are
//! listed once here.

use std::collections::BTreeMap;

use counterbook_firestore_wire::{Document, DocumentName, Value};
use counterbook_sync::{DocumentWrite, Unit, UPDATED_AT};
use serde::{Deserialize, Serialize};

/// A product on the shelf.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Product {
    /// UUID v7 made on the device that created it.
    pub id: String,
    pub name: String,
    /// Price in minor units of `currency`.
    pub price_minor: i64,
    /// ISO 4217 code, e.g. "INR".
    pub currency: String,
    /// The server's `updatedAt` in Unix ms; `None` until the product came back from a pull.
    #[serde(default)]
    pub server_updated_at_millis: Option<i64>,
    /// Stock-keeping unit code printed on shelf labels.
    #[serde(default)]
    pub sku: Option<String>,
    /// Barcodes a scanner may type for this product (a product can have several).
    #[serde(default)]
    pub barcodes: Vec<String>,
    /// The unit the quantity counts: "piece", or "g"/"ml" for loose goods sold in milli-units.
    #[serde(default = "default_unit")]
    pub unit: String,
    #[serde(default)]
    pub category: Option<String>,
    /// Tax rate in basis points (1800 = 18%).
    #[serde(default)]
    pub tax_rate_basis_points: u32,
    /// Stock on hand in `unit`s, as last known on this device. Travels as increments, never as
    /// an absolute value (DESIGN.md section 4).
    #[serde(default)]
    pub stock_on_hand: i64,
    #[serde(default)]
    pub low_stock_threshold: Option<i64>,
    /// `name` folded for the name-prefix index: lower case, single spaces. Schema version 2
    /// added it; the migration backfills it for products saved before.
    #[serde(default)]
    pub name_key: String,
}

fn default_unit() -> String {
    "piece".to_owned()
}

/// The name-prefix index key: case-folded, inner white space collapsed.
pub fn name_key(name: &str) -> String {
    name.split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_lowercase()
}

/// Why a document from the server is not a valid product.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("document {name} is not a valid product: {reason}")]
pub struct InvalidDocument {
    pub name: String,
    pub reason: String,
}

/// The longest product name we accept, in characters.
pub const MAX_PRODUCT_NAME_CHARS: usize = 200;

impl Product {
    pub fn document_path(&self, shop_id: &str) -> String {
        format!("shops/{shop_id}/products/{}", self.id)
    }

    /// A new product with defaults for everything but its name and price.
    pub fn new(id: String, name: &str, price_minor: i64, currency: &str) -> Product {
        Product {
            id,
            name: name.to_owned(),
            price_minor,
            currency: currency.to_owned(),
            server_updated_at_millis: None,
            sku: None,
            barcodes: Vec::new(),
            unit: default_unit(),
            category: None,
            tax_rate_basis_points: 0,
            stock_on_hand: 0,
            low_stock_threshold: None,
            name_key: name_key(name),
        }
    }

    /// The entity fields of the product document (sync metadata is added by the engine).
    /// Stock is a counter and is never written as an absolute value.
    pub fn to_fields(&self) -> BTreeMap<String, Value> {
        let optional_text =
            |value: &Option<String>| value.clone().map(Value::String).unwrap_or(Value::Null);
        BTreeMap::from([
            ("name".to_string(), Value::String(self.name.clone())),
            ("price".to_string(), Value::Integer(self.price_minor)),
            ("currency".to_string(), Value::String(self.currency.clone())),
            ("sku".to_string(), optional_text(&self.sku)),
            (
                "barcodes".to_string(),
                Value::Array(self.barcodes.iter().cloned().map(Value::String).collect()),
            ),
            ("unit".to_string(), Value::String(self.unit.clone())),
            ("category".to_string(), optional_text(&self.category)),
            (
                "taxRateBp".to_string(),
                Value::Integer(i64::from(self.tax_rate_basis_points)),
            ),
            (
                "lowStockThreshold".to_string(),
                self.low_stock_threshold
                    .map(Value::Integer)
                    .unwrap_or(Value::Null),
            ),
            ("deleted".to_string(), Value::Boolean(false)),
        ])
    }

    /// Reads a product document as pulled from the server.
    pub fn from_document(document: &Document) -> Result<Product, InvalidDocument> {
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
        let text = |field: &str| -> Result<String, InvalidDocument> {
            fields
                .get(field)
                .and_then(Value::as_str)
                .map(str::to_owned)
                .ok_or_else(|| invalid(&format!("`{field}` is missing or not a string")))
        };
        let price_minor = fields
            .get("price")
            .and_then(Value::as_integer)
            .ok_or_else(|| invalid("`price` is missing or not an integer"))?;
        let optional_text =
            |field: &str| fields.get(field).and_then(Value::as_str).map(str::to_owned);
        let optional_integer = |field: &str| fields.get(field).and_then(Value::as_integer);
        let barcodes = match fields.get("barcodes") {
            Some(Value::Array(values)) => values
                .iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect(),
            _ => Vec::new(),
        };
        let name = text("name")?;
        Ok(Product {
            id,
            name_key: name_key(&name),
            name,
            price_minor,
            currency: text("currency")?,
            server_updated_at_millis: fields
                .get(UPDATED_AT)
                .and_then(Value::as_timestamp)
                .map(|t| t.to_unix_millis()),
            sku: optional_text("sku"),
            barcodes,
            unit: optional_text("unit").unwrap_or_else(default_unit),
            category: optional_text("category"),
            tax_rate_basis_points: optional_integer("taxRateBp")
                .and_then(|bp| u32::try_from(bp).ok())
                .unwrap_or(0),
            stock_on_hand: optional_integer("stock").unwrap_or(0),
            low_stock_threshold: optional_integer("lowStockThreshold"),
        })
    }

    /// Whether a pulled document marks the product deleted (soft delete).
    pub fn is_deleted(document: &Document) -> bool {
        document.fields.get("deleted").and_then(Value::as_bool) == Some(true)
    }
}

/// The unit of work for adding `product`: one document write, labelled for people.
pub fn add_product_unit(
    unit_id: String,
    product: &Product,
    shop_id: &str,
    now_millis: i64,
) -> Unit {
    Unit {
        id: unit_id,
        label: format!("Add product {}", product.name),
        writes: vec![DocumentWrite {
            path: product.document_path(shop_id),
            fields: product.to_fields(),
            mask: None,
            ..DocumentWrite::default()
        }],
        created_at_millis: now_millis,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use counterbook_firestore_wire::Timestamp;
    use wasm_bindgen_test::wasm_bindgen_test;

    #[wasm_bindgen_test]
    fn a_product_survives_the_trip_through_a_document() {
        let mut product = Product::new(
            "0193a0b0-0000-7000-8000-000000000001".into(),
            "Parle-G  250g",
            2500,
            "INR",
        );
        product.barcodes = vec!["8901063010017".into()];
        product.sku = Some("PG-250".into());
        product.low_stock_threshold = Some(24);
        assert_eq!(product.name_key, "parle-g 250g");
        let mut fields = product.to_fields();
        fields.insert(
            UPDATED_AT.into(),
            Value::Timestamp(Timestamp::from_unix_millis(42)),
        );
        let document = Document {
            name: format!(
                "projects/p/databases/(default)/documents/{}",
                product.document_path("s1")
            ),
            fields,
            ..Document::default()
        };
        let back = Product::from_document(&document).unwrap();
        assert_eq!(
            back,
            Product {
                server_updated_at_millis: Some(42),
                ..product
            }
        );
        assert!(!Product::is_deleted(&document));
    }

    #[wasm_bindgen_test]
    fn a_malformed_document_is_refused_with_the_reason() {
        let document = Document {
            name: "projects/p/databases/(default)/documents/shops/s1/products/x".into(),
            fields: BTreeMap::from([
                ("name".to_string(), Value::String("Tea".into())),
                ("price".to_string(), Value::Double(12.5)),
            ]),
            ..Document::default()
        };
        let error = Product::from_document(&document).unwrap_err();
        assert!(
            error
                .to_string()
                .contains("`price` is missing or not an integer"),
            "{error}"
        );
    }
}
