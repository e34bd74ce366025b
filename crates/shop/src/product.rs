//! Products on the shelf, their quantity units, and their Firestore document form.
//!
//! Field names are shared with every tablet and backend, and with the data already synced:
//! on the wire a product is `name`, `price`, `currency`, `sku`, `barcodes`, `unit`, `category`,
//! `taxRateBp`, `lowStockThreshold`, `deleted`, and the counter `stock`, which travels only as
//! increments (DESIGN.md section 4). In IndexedDB the serde form (camelCase of the Rust names)
//! is kept as the app stored it before this crate existed.

use std::collections::BTreeMap;

use counterbook_firestore_wire::{map_by_insertion, Document, DocumentName, Value};
use counterbook_sync::UPDATED_AT;
use serde::{Deserialize, Serialize};

/// The collection of products under `shops/{shop}/`.
pub const PRODUCTS_COLLECTION: &str = "products";
/// The stock counter's field: a counter, written only as increments.
pub const STOCK_FIELD: &str = "stock";
/// The longest product name accepted, in characters.
pub const MAX_PRODUCT_NAME_CHARS: usize = 200;

/// What a product's quantity counts. Pieces are whole numbers; loose goods (weighed or
/// measured) count milli-units, so 1.250 kg is the quantity 1250 and 0.5 l is 500. A price is
/// always for one whole unit (one piece, one kilogram, one litre).
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
pub enum QuantityUnit {
    #[default]
    #[serde(rename = "piece")]
    Piece,
    #[serde(rename = "kg")]
    Kilogram,
    #[serde(rename = "g")]
    Gram,
    #[serde(rename = "l")]
    Litre,
    #[serde(rename = "ml")]
    Millilitre,
}

/// Why text is not a quantity unit.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("\"{0}\" is not a unit: use piece, kg, g, l or ml")]
pub struct UnknownUnit(pub String);

/// Why text is not a quantity in a unit.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum QuantityError {
    /// A fraction of a piece ("1.5" pieces).
    #[error("\"{0}\": pieces are counted in whole numbers")]
    WholePieces(String),
    #[error(transparent)]
    Amount(#[from] crate::money::AmountError),
}

impl QuantityUnit {
    pub const ALL: [QuantityUnit; 5] = [
        QuantityUnit::Piece,
        QuantityUnit::Kilogram,
        QuantityUnit::Gram,
        QuantityUnit::Litre,
        QuantityUnit::Millilitre,
    ];

    /// The unit's name on the wire, in CSV files and on screen: "piece", "kg", "g", "l", "ml".
    pub fn as_str(self) -> &'static str {
        match self {
            QuantityUnit::Piece => "piece",
            QuantityUnit::Kilogram => "kg",
            QuantityUnit::Gram => "g",
            QuantityUnit::Litre => "l",
            QuantityUnit::Millilitre => "ml",
        }
    }

    /// Reads a unit name, case-insensitively; "pc", "pcs" and "" are pieces.
    pub fn parse(text: &str) -> Result<QuantityUnit, UnknownUnit> {
        match text.trim().to_lowercase().as_str() {
            "" | "piece" | "pieces" | "pc" | "pcs" => Ok(QuantityUnit::Piece),
            "kg" => Ok(QuantityUnit::Kilogram),
            "g" => Ok(QuantityUnit::Gram),
            "l" => Ok(QuantityUnit::Litre),
            "ml" => Ok(QuantityUnit::Millilitre),
            _ => Err(UnknownUnit(text.trim().to_owned())),
        }
    }

    /// Whether the unit is weighed or measured (quantities in milli-units).
    pub fn is_loose(self) -> bool {
        self != QuantityUnit::Piece
    }

    /// How many stored quantity steps make one whole unit: 1 for pieces, 1000 for loose goods.
    pub fn quantity_scale(self) -> i64 {
        if self.is_loose() {
            1000
        } else {
            1
        }
    }

    /// Decimal digits of a quantity typed in this unit: 0 for pieces, 3 for loose goods.
    pub fn quantity_decimals(self) -> u32 {
        if self.is_loose() {
            3
        } else {
            0
        }
    }

    /// Reads a quantity written in this unit ("2", "1.250") as stored steps (milli-units of
    /// loose goods); any sign is the caller's to check.
    pub fn read_quantity(self, text: &str) -> Result<i64, QuantityError> {
        crate::money::parse_decimal(text, self.quantity_decimals()).map_err(|error| match error {
            crate::money::AmountError::TooManyDecimals { text, .. } if !self.is_loose() => {
                QuantityError::WholePieces(text)
            }
            error => QuantityError::Amount(error),
        })
    }
}

/// A product on the shelf.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Product {
    /// UUID v7 made on the device that created it.
    pub id: String,
    pub name: String,
    /// Price of one whole unit, in minor units of `currency`.
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
    #[serde(default)]
    pub unit: QuantityUnit,
    #[serde(default)]
    pub category: Option<String>,
    /// Tax rate in basis points (1800 = 18%).
    #[serde(default)]
    pub tax_rate_basis_points: u32,
    /// Stock on hand in quantity steps of `unit` (pieces, or milli-units for loose goods), as
    /// last known on this device. A counter: it travels as increments, never as a value.
    #[serde(default)]
    pub stock_on_hand: i64,
    /// At or below this stock the product is "low on stock"; `None`: never.
    #[serde(default)]
    pub low_stock_threshold: Option<i64>,
    /// `name` folded for the name-prefix index (see [`name_key`]).
    #[serde(default)]
    pub name_key: String,
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

/// Why a product's fields cannot be saved, one variant per rule.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ProductError {
    #[error("the name is empty")]
    EmptyName,
    #[error("the name is longer than {MAX_PRODUCT_NAME_CHARS} characters")]
    NameTooLong,
    #[error("the price cannot be negative")]
    NegativePrice,
    #[error("the tax rate {0} basis points is above 100%")]
    TaxRateTooHigh(u32),
    #[error("the barcode \"{0}\" contains a space or is empty")]
    BadBarcode(String),
    #[error("the barcode \"{0}\" has a wrong check digit")]
    BarcodeCheckDigit(String),
    #[error("the low-stock threshold cannot be negative")]
    NegativeLowStockThreshold,
}

impl Product {
    /// A new product with defaults for everything but its name and price.
    pub fn new(id: String, name: &str, price_minor: i64, currency: &str) -> Product {
        let name = name.trim();
        Product {
            id,
            name: name.to_owned(),
            price_minor,
            currency: currency.to_owned(),
            server_updated_at_millis: None,
            sku: None,
            barcodes: Vec::new(),
            unit: QuantityUnit::Piece,
            category: None,
            tax_rate_basis_points: 0,
            stock_on_hand: 0,
            low_stock_threshold: None,
            name_key: name_key(name),
        }
    }

    pub fn document_path(&self, shop_id: &str) -> String {
        product_path(shop_id, &self.id)
    }

    /// Whether the stock is at or below the low-stock threshold.
    pub fn is_low_on_stock(&self) -> bool {
        self.low_stock_threshold
            .is_some_and(|threshold| self.stock_on_hand <= threshold)
    }

    /// Checks the rules every saved product keeps (the add and edit forms and the CSV import).
    /// Barcodes that look like EAN-13 (13 digits) must have a right check digit: a wrong one is
    /// almost always a typing mistake. Shorter codes may be a shop's own and are taken as they are.
    pub fn validate(&self) -> Result<(), ProductError> {
        if self.name.trim().is_empty() {
            return Err(ProductError::EmptyName);
        }
        if self.name.chars().count() > MAX_PRODUCT_NAME_CHARS {
            return Err(ProductError::NameTooLong);
        }
        if self.price_minor < 0 {
            return Err(ProductError::NegativePrice);
        }
        if self.tax_rate_basis_points > 10_000 {
            return Err(ProductError::TaxRateTooHigh(self.tax_rate_basis_points));
        }
        for barcode in &self.barcodes {
            if barcode.is_empty() || barcode.chars().any(char::is_whitespace) {
                return Err(ProductError::BadBarcode(barcode.clone()));
            }
            if barcode.len() == 13
                && barcode.chars().all(|c| c.is_ascii_digit())
                && !crate::barcode::has_valid_check_digit(barcode)
            {
                return Err(ProductError::BarcodeCheckDigit(barcode.clone()));
            }
        }
        if self
            .low_stock_threshold
            .is_some_and(|threshold| threshold < 0)
        {
            return Err(ProductError::NegativeLowStockThreshold);
        }
        Ok(())
    }

    /// The entity fields of the product document (sync metadata is added by the sync core).
    /// Stock is a counter and is never written as a value.
    pub fn to_fields(&self) -> BTreeMap<String, Value> {
        let optional_text =
            |value: &Option<String>| value.clone().map(Value::String).unwrap_or(Value::Null);
        map_by_insertion([
            ("name".to_string(), Value::String(self.name.clone())),
            ("price".to_string(), Value::Integer(self.price_minor)),
            ("currency".to_string(), Value::String(self.currency.clone())),
            ("sku".to_string(), optional_text(&self.sku)),
            (
                "barcodes".to_string(),
                Value::Array(self.barcodes.iter().cloned().map(Value::String).collect()),
            ),
            (
                "unit".to_string(),
                Value::String(self.unit.as_str().to_owned()),
            ),
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
        let unit = match optional_text("unit") {
            Some(unit) => QuantityUnit::parse(&unit).map_err(|e| invalid(&e.to_string()))?,
            None => QuantityUnit::Piece,
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
            unit,
            category: optional_text("category"),
            tax_rate_basis_points: optional_integer("taxRateBp")
                .and_then(|bp| u32::try_from(bp).ok())
                .unwrap_or(0),
            stock_on_hand: optional_integer(STOCK_FIELD).unwrap_or(0),
            low_stock_threshold: optional_integer("lowStockThreshold"),
        })
    }

    /// Whether a pulled document marks the product deleted (soft delete).
    pub fn is_deleted(document: &Document) -> bool {
        document.fields.get("deleted").and_then(Value::as_bool) == Some(true)
    }
}

/// `shops/{shop}/products/{id}`.
pub fn product_path(shop_id: &str, product_id: &str) -> String {
    format!("shops/{shop_id}/{PRODUCTS_COLLECTION}/{product_id}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use counterbook_firestore_wire::Timestamp;

    fn chai() -> Product {
        let mut product = Product::new(
            "0193a0b0-0000-7000-8000-000000000001".into(),
            "Parle-G  250g",
            2500,
            "INR",
        );
        product.barcodes = vec!["8901063010017".into()];
        product.sku = Some("PG-250".into());
        product.low_stock_threshold = Some(24);
        product
    }

    #[test]
    fn a_product_survives_the_trip_through_a_document() {
        let mut product = chai();
        product.unit = QuantityUnit::Kilogram;
        product.tax_rate_basis_points = 500;
        assert_eq!(product.name_key, "parle-g 250g");
        let mut fields = product.to_fields();
        assert!(!fields.contains_key(STOCK_FIELD), "stock is a counter");
        fields.insert(
            UPDATED_AT.into(),
            Value::Timestamp(Timestamp::from_unix_millis(42)),
        );
        fields.insert(STOCK_FIELD.into(), Value::Integer(7250));
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
                stock_on_hand: 7250,
                ..product
            }
        );
        assert!(!Product::is_deleted(&document));
    }

    #[test]
    fn the_stored_form_is_the_one_the_app_already_keeps() {
        // Guards compatibility with products saved in IndexedDB before this crate existed.
        let stored = serde_json::json!({
            "id": "p1", "name": "Tea", "priceMinor": 1200, "currency": "INR",
            "serverUpdatedAtMillis": null, "sku": null, "barcodes": ["123"], "unit": "piece",
            "category": null, "taxRateBasisPoints": 0, "stockOnHand": 3,
            "lowStockThreshold": null, "nameKey": "tea"
        });
        let product: Product = serde_json::from_value(stored.clone()).unwrap();
        assert_eq!(product.unit, QuantityUnit::Piece);
        assert_eq!(serde_json::to_value(&product).unwrap(), stored);
        let older: Product = serde_json::from_value(serde_json::json!({
            "id": "p1", "name": "Tea", "priceMinor": 1200, "currency": "INR"
        }))
        .unwrap();
        assert_eq!(older.unit, QuantityUnit::Piece);
    }

    #[test]
    fn a_malformed_document_is_refused_with_the_reason() {
        let document = |fields: BTreeMap<String, Value>| Document {
            name: "projects/p/databases/(default)/documents/shops/s1/products/x".into(),
            fields,
            ..Document::default()
        };
        let error = Product::from_document(&document(BTreeMap::from([
            ("name".to_string(), Value::String("Tea".into())),
            ("price".to_string(), Value::Double(12.5)),
        ])))
        .unwrap_err();
        assert!(error
            .reason
            .contains("`price` is missing or not an integer"));
        let error = Product::from_document(&document(BTreeMap::from([
            ("name".to_string(), Value::String("Tea".into())),
            ("price".to_string(), Value::Integer(12)),
            ("currency".to_string(), Value::String("INR".into())),
            ("unit".to_string(), Value::String("dozen".into())),
        ])))
        .unwrap_err();
        assert!(error.reason.contains("\"dozen\" is not a unit"), "{error}");
    }

    #[test]
    fn units_read_and_scale() {
        for unit in QuantityUnit::ALL {
            assert_eq!(QuantityUnit::parse(unit.as_str()), Ok(unit));
        }
        assert_eq!(QuantityUnit::parse(" KG "), Ok(QuantityUnit::Kilogram));
        assert_eq!(QuantityUnit::parse("pcs"), Ok(QuantityUnit::Piece));
        assert_eq!(
            QuantityUnit::parse("dozen"),
            Err(UnknownUnit("dozen".into()))
        );
        assert_eq!(QuantityUnit::Piece.quantity_scale(), 1);
        assert_eq!(QuantityUnit::Gram.quantity_scale(), 1000);
    }

    #[test]
    fn validation_names_the_broken_rule() {
        let check = |edit: fn(&mut Product), expected: Result<(), ProductError>| {
            let mut product = chai();
            edit(&mut product);
            assert_eq!(product.validate(), expected);
        };
        check(|_| {}, Ok(()));
        check(|p| p.name = "  ".into(), Err(ProductError::EmptyName));
        check(|p| p.name = "x".repeat(201), Err(ProductError::NameTooLong));
        check(|p| p.price_minor = -1, Err(ProductError::NegativePrice));
        check(
            |p| p.tax_rate_basis_points = 10_001,
            Err(ProductError::TaxRateTooHigh(10_001)),
        );
        check(
            |p| p.barcodes = vec!["8901063010018".into()],
            Err(ProductError::BarcodeCheckDigit("8901063010018".into())),
        );
        check(
            |p| p.barcodes = vec!["12 34".into()],
            Err(ProductError::BadBarcode("12 34".into())),
        );
        check(|p| p.barcodes = vec!["1234".into()], Ok(()));
        check(
            |p| p.low_stock_threshold = Some(-1),
            Err(ProductError::NegativeLowStockThreshold),
        );
    }

    #[test]
    fn low_stock_is_at_or_below_the_threshold() {
        let mut product = chai();
        product.stock_on_hand = 24;
        assert!(product.is_low_on_stock());
        product.stock_on_hand = 25;
        assert!(!product.is_low_on_stock());
        product.low_stock_threshold = None;
        product.stock_on_hand = -3;
        assert!(!product.is_low_on_stock());
    }
}
