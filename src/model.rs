//! The product as the app stores and shows it: `counterbook-shop`'s [`Product`] (its fields,
//! document form and rules live there, tested natively), and the plain unit that adds one.

use counterbook_sync::{DocumentWrite, Unit, UnitLabel};

pub use counterbook_shop::product::{name_key, MAX_PRODUCT_NAME_CHARS};
pub use counterbook_shop::Product;

/// The unit of work for adding `product`: one document write, labelled for people.
pub fn add_product_unit(
    unit_id: String,
    product: &Product,
    shop_id: &str,
    now_millis: i64,
) -> Unit {
    Unit {
        id: unit_id,
        label: UnitLabel::AddProduct {
            name: product.name.clone(),
        },
        writes: vec![DocumentWrite {
            path: product.document_path(shop_id),
            fields: product.to_fields(),
            mask: None,
            ..DocumentWrite::default()
        }],
        created_at_millis: now_millis,
        sender: None,
    }
}
