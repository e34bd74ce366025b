//! What a unit did, for people: [`UnitLabel`], a typed value the app words in the tablet's
//! language where it shows it (the refused changes on the sync page). The engine never reads a
//! label; the names and numbers in one are data (a product's name, a bill's number), never
//! translated.

use serde::{Deserialize, Deserializer, Serialize};

/// What a unit did. Stored with the unit (in serde, an object tagged by `action`:
/// `{"action": "sale", "bill": "T2-000007"}`); a unit stored before labels were typed has a
/// plain string there, read back as [`UnitLabel::Text`] (see [`label_or_text`]).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
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
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Stored {
        Text(String),
        Label(UnitLabel),
    }
    Ok(match Stored::deserialize(deserializer)? {
        Stored::Text(text) => UnitLabel::Text { text },
        Stored::Label(label) => label,
    })
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
    fn a_label_of_an_unknown_action_is_refused() {
        let read =
            serde_json::from_value::<Holder>(serde_json::json!({"label": {"action": "fly"}}));
        assert!(read.is_err());
    }
}
