//! What a unit did, for people: [`UnitLabel`], a typed value the app words in the tablet's
//! language where it shows it (the refused changes on the sync page). The engine never reads a
//! label; the names and numbers in one are data (a product's name, a bill's number), never
//! translated.

use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::{Deserialize, Serialize};

/// What a unit did. Stored with the unit (in serde, an object tagged by `action`:
/// `{"action": "sale", "bill": "T2-000007"}`); a unit stored before labels were typed has a
/// plain string there, read back as [`UnitLabel::Text`]. Read by hand (see
/// [`UnitLabel::from_fields`]): serde's derived reading of a tagged enum buffers the object
/// first and was 29 KB of the app's wasm, the largest function in it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "action", rename_all = "camelCase")]
pub enum UnitLabel {
    /// A sale: the bill, by its number ("T2-000007").
    Sale {
        bill: String,
    },
    AddProduct {
        name: String,
    },
    EditProduct {
        name: String,
    },
    /// Stock received: `quantity` in the product's unit's integer (pieces, or milli-units of
    /// a loose product, as the stock field keeps it); `unit` is the unit's code ("kg").
    ReceiveStock {
        quantity: i64,
        unit: String,
        name: String,
    },
    /// Stock adjusted (counted, damaged, ...): as [`UnitLabel::ReceiveStock`], signed.
    AdjustStock {
        quantity: i64,
        unit: String,
        name: String,
    },
    /// One commit of a CSV import: products `first` to `last` (from 1) of `total`.
    ImportProducts {
        first: usize,
        last: usize,
        total: usize,
    },
    AddCustomer {
        name: String,
    },
    EditCustomer {
        name: String,
    },
    ConfirmUpiPayment,
    SaveShopSettings,
    VoidBill {
        bill: String,
    },
    RefundBill {
        bill: String,
    },
    /// "Use mine" of the conflict inbox: a change that lost applied again; `field` is the
    /// document's field (`price`), `None` for a whole document.
    ReapplyChange {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        field: Option<String>,
    },
    /// A label that is only text: from a unit stored before labels were typed (its English
    /// words, shown as they are), or a simulation's.
    Text {
        text: String,
    },
}

impl UnitLabel {
    /// A label that is only `text`.
    pub fn text(text: impl Into<String>) -> UnitLabel {
        UnitLabel::Text { text: text.into() }
    }
}

impl From<&str> for UnitLabel {
    fn from(text: &str) -> UnitLabel {
        UnitLabel::text(text)
    }
}

impl From<String> for UnitLabel {
    fn from(text: String) -> UnitLabel {
        UnitLabel::text(text)
    }
}

/// The label in English, for logs and test messages (screens word it from the catalogue).
impl std::fmt::Display for UnitLabel {
    fn fmt(&self, out: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            UnitLabel::Sale { bill } => write!(out, "Sale {bill}"),
            UnitLabel::AddProduct { name } => write!(out, "Add product {name}"),
            UnitLabel::EditProduct { name } => write!(out, "Edit product {name}"),
            UnitLabel::ReceiveStock {
                quantity,
                unit,
                name,
            } => write!(out, "Receive {quantity} {unit} × {name}"),
            UnitLabel::AdjustStock {
                quantity,
                unit,
                name,
            } => write!(out, "Adjust {quantity} {unit} × {name}"),
            UnitLabel::ImportProducts { first, last, total } => {
                write!(out, "Import products {first}–{last} of {total}")
            }
            UnitLabel::AddCustomer { name } => write!(out, "Add customer {name}"),
            UnitLabel::EditCustomer { name } => write!(out, "Edit customer {name}"),
            UnitLabel::ConfirmUpiPayment => write!(out, "Confirm UPI payment"),
            UnitLabel::SaveShopSettings => write!(out, "Save shop settings"),
            UnitLabel::VoidBill { bill } => write!(out, "Void bill {bill}"),
            UnitLabel::RefundBill { bill } => write!(out, "Refund on bill {bill}"),
            UnitLabel::ReapplyChange { field } => {
                write!(out, "Use my {} again", field.as_deref().unwrap_or("change"))
            }
            UnitLabel::Text { text } => out.write_str(text),
        }
    }
}

/// Reads a unit's label: a typed [`UnitLabel`], or the plain string a unit stored before
/// labels were typed has (as [`UnitLabel::Text`]).
pub fn label_or_text<'de, D: Deserializer<'de>>(deserializer: D) -> Result<UnitLabel, D::Error> {
    UnitLabel::deserialize(deserializer)
}

/// Every field any label has, as stored: what [`UnitLabel::from_fields`] makes a label of.
#[derive(Deserialize)]
struct LabelFields {
    action: String,
    bill: Option<String>,
    name: Option<String>,
    quantity: Option<i64>,
    unit: Option<String>,
    first: Option<usize>,
    last: Option<usize>,
    total: Option<usize>,
    field: Option<String>,
    text: Option<String>,
}

/// A stored label's field that its action needs and the record lacks.
fn needed<T, E: de::Error>(value: Option<T>, field: &'static str) -> Result<T, E> {
    value.ok_or_else(|| E::missing_field(field))
}

impl UnitLabel {
    /// The label a stored object's `action` and fields say; an unknown action, or a field
    /// its action needs missing, is an error.
    fn from_fields<E: de::Error>(fields: LabelFields) -> Result<UnitLabel, E> {
        let LabelFields {
            action,
            bill,
            name,
            quantity,
            unit,
            first,
            last,
            total,
            field,
            text,
        } = fields;
        Ok(match action.as_str() {
            "sale" => UnitLabel::Sale {
                bill: needed(bill, "bill")?,
            },
            "addProduct" => UnitLabel::AddProduct {
                name: needed(name, "name")?,
            },
            "editProduct" => UnitLabel::EditProduct {
                name: needed(name, "name")?,
            },
            "receiveStock" | "adjustStock" => {
                let quantity = needed(quantity, "quantity")?;
                let unit = needed(unit, "unit")?;
                let name = needed(name, "name")?;
                if action == "receiveStock" {
                    UnitLabel::ReceiveStock {
                        quantity,
                        unit,
                        name,
                    }
                } else {
                    UnitLabel::AdjustStock {
                        quantity,
                        unit,
                        name,
                    }
                }
            }
            "importProducts" => UnitLabel::ImportProducts {
                first: needed(first, "first")?,
                last: needed(last, "last")?,
                total: needed(total, "total")?,
            },
            "addCustomer" => UnitLabel::AddCustomer {
                name: needed(name, "name")?,
            },
            "editCustomer" => UnitLabel::EditCustomer {
                name: needed(name, "name")?,
            },
            "confirmUpiPayment" => UnitLabel::ConfirmUpiPayment,
            "saveShopSettings" => UnitLabel::SaveShopSettings,
            "voidBill" => UnitLabel::VoidBill {
                bill: needed(bill, "bill")?,
            },
            "refundBill" => UnitLabel::RefundBill {
                bill: needed(bill, "bill")?,
            },
            "reapplyChange" => UnitLabel::ReapplyChange { field },
            "text" => UnitLabel::Text {
                text: needed(text, "text")?,
            },
            _ => return Err(E::unknown_variant(&action, ACTIONS)),
        })
    }
}

/// The stored `action` of each label, as serialized.
const ACTIONS: &[&str] = &[
    "sale",
    "addProduct",
    "editProduct",
    "receiveStock",
    "adjustStock",
    "importProducts",
    "addCustomer",
    "editCustomer",
    "confirmUpiPayment",
    "saveShopSettings",
    "voidBill",
    "refundBill",
    "reapplyChange",
    "text",
];

impl<'de> Deserialize<'de> for UnitLabel {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<UnitLabel, D::Error> {
        struct LabelVisitor;
        impl<'de> Visitor<'de> for LabelVisitor {
            type Value = UnitLabel;
            fn expecting(&self, out: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                out.write_str("a unit's label: an object tagged by `action`, or a text")
            }
            fn visit_str<E: de::Error>(self, text: &str) -> Result<UnitLabel, E> {
                Ok(UnitLabel::text(text))
            }
            fn visit_string<E: de::Error>(self, text: String) -> Result<UnitLabel, E> {
                Ok(UnitLabel::text(text))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<UnitLabel, A::Error> {
                let fields = LabelFields::deserialize(de::value::MapAccessDeserializer::new(map))?;
                UnitLabel::from_fields(fields)
            }
        }
        deserializer.deserialize_any(LabelVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq, Deserialize)]
    struct Holder {
        #[serde(deserialize_with = "label_or_text")]
        label: UnitLabel,
    }

    #[test]
    fn a_label_is_stored_tagged_and_read_back() {
        let label = UnitLabel::ReceiveStock {
            quantity: 1_500,
            unit: "kg".into(),
            name: "Rice".into(),
        };
        let json = serde_json::to_value(&label).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"action": "receiveStock", "quantity": 1500, "unit": "kg", "name": "Rice"})
        );
        let read: Holder = serde_json::from_value(serde_json::json!({ "label": json })).unwrap();
        assert_eq!(read.label, label);
    }

    #[test]
    fn a_label_stored_as_text_before_labels_were_typed_reads_as_text() {
        let read: Holder =
            serde_json::from_value(serde_json::json!({"label": "Sale T2-000007"})).unwrap();
        assert_eq!(read.label, UnitLabel::text("Sale T2-000007"));
        let field = serde_json::json!({"label": {"action": "reapplyChange"}});
        let read: Holder = serde_json::from_value(field).unwrap();
        assert_eq!(read.label, UnitLabel::ReapplyChange { field: None });
    }

    #[test]
    fn every_label_reads_back_as_it_was_stored() {
        let labels = [
            UnitLabel::Sale {
                bill: "T2-000007".into(),
            },
            UnitLabel::AddProduct {
                name: "Rice".into(),
            },
            UnitLabel::EditProduct { name: "Tea".into() },
            UnitLabel::ReceiveStock {
                quantity: 1_500,
                unit: "kg".into(),
                name: "Rice".into(),
            },
            UnitLabel::AdjustStock {
                quantity: -3,
                unit: "piece".into(),
                name: "Soap".into(),
            },
            UnitLabel::ImportProducts {
                first: 1,
                last: 498,
                total: 10_000,
            },
            UnitLabel::AddCustomer {
                name: "Meena".into(),
            },
            UnitLabel::EditCustomer {
                name: "Ravi".into(),
            },
            UnitLabel::ConfirmUpiPayment,
            UnitLabel::SaveShopSettings,
            UnitLabel::VoidBill {
                bill: "T1-000001".into(),
            },
            UnitLabel::RefundBill {
                bill: "T1-000002".into(),
            },
            UnitLabel::ReapplyChange {
                field: Some("price".into()),
            },
            UnitLabel::ReapplyChange { field: None },
            UnitLabel::text("Sale T2-000007"),
        ];
        for label in labels {
            let json = serde_json::to_value(&label).unwrap();
            assert!(
                ACTIONS.contains(&json["action"].as_str().unwrap()),
                "{json}"
            );
            let read: Holder =
                serde_json::from_value(serde_json::json!({ "label": json })).unwrap();
            assert_eq!(read.label, label, "{json}");
            let text = serde_json::to_string(&label).unwrap();
            assert_eq!(
                serde_json::from_str::<UnitLabel>(&text).unwrap(),
                label,
                "{text}"
            );
        }
    }

    #[test]
    fn a_label_missing_a_field_its_action_needs_is_refused() {
        let read = serde_json::from_value::<Holder>(
            serde_json::json!({"label": {"action": "receiveStock", "quantity": 2, "name": "Rice"}}),
        );
        let error = read.unwrap_err().to_string();
        assert!(error.contains("missing field `unit`"), "{error}");
        let read = serde_json::from_value::<Holder>(serde_json::json!({"label": 7}));
        assert!(read.is_err());
    }

    #[test]
    fn a_label_of_an_unknown_action_is_refused() {
        let read =
            serde_json::from_value::<Holder>(serde_json::json!({"label": {"action": "fly"}}));
        assert!(read.is_err());
    }
}
