//! Checkpointed pulls: the `:runQuery` that fetches what changed in one collection since the
//! last `(updatedAt, name)` pair this device applied, and the checkpoint after a page.
//!
//! Documents written in one commit share one `updatedAt`, so the timestamp alone cannot say where
//! a page ended; the document name breaks the tie, exactly as the query's order does.

use counterbook_firestore_wire::{
    CollectionSelector, Cursor, Direction, Document, FieldFilter, FieldOperator, FieldReference,
    Filter, Order, StructuredQuery, Timestamp, Value,
};
use serde::{Deserialize, Serialize};

/// The server-set field every synced document carries.
pub const UPDATED_AT: &str = "updatedAt";

/// The last document applied from a collection, in query order.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Checkpoint {
    pub updated_at: Timestamp,
    /// The document's full resource name.
    pub name: String,
}

/// The query for the next page of `collection_id` after `checkpoint` (from the start if none).
pub fn pull_query(
    collection_id: &str,
    checkpoint: Option<&Checkpoint>,
    page_size: i32,
) -> StructuredQuery {
    let ascending = |field: &str| Order {
        field: FieldReference::new(field),
        direction: Some(Direction::Ascending),
    };
    let (filter, start_at) = match checkpoint {
        None => (None, None),
        Some(checkpoint) => (
            // The filter lets the server use its index; the cursor skips what was applied.
            Some(Filter::FieldFilter(FieldFilter {
                field: FieldReference::new(UPDATED_AT),
                op: FieldOperator::GreaterThanOrEqual,
                value: Value::Timestamp(checkpoint.updated_at),
            })),
            Some(Cursor {
                values: vec![
                    Value::Timestamp(checkpoint.updated_at),
                    Value::Reference(checkpoint.name.clone()),
                ],
                before: false,
            }),
        ),
    };
    StructuredQuery {
        from: vec![CollectionSelector {
            collection_id: collection_id.to_owned(),
            all_descendants: false,
        }],
        filter,
        order_by: vec![ascending(UPDATED_AT), ascending("__name__")],
        start_at,
        limit: Some(page_size),
        ..StructuredQuery::default()
    }
}

/// The checkpoint after applying `page` (documents in query order), or `None` for an empty page.
/// A document without a timestamp `updatedAt` cannot be in the page (the query orders by it),
/// so such documents are skipped.
pub fn checkpoint_after(page: &[Document]) -> Option<Checkpoint> {
    page.iter().rev().find_map(|document| {
        let updated_at = document.fields.get(UPDATED_AT)?.as_timestamp()?;
        Some(Checkpoint {
            updated_at,
            name: document.name.clone(),
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn first_pull_has_no_filter_and_no_cursor() {
        let query = pull_query("products", None, 100);
        assert_eq!(
            serde_json::to_value(&query).unwrap(),
            json!({
                "from": [{"collectionId": "products"}],
                "orderBy": [
                    {"field": {"fieldPath": "updatedAt"}, "direction": "ASCENDING"},
                    {"field": {"fieldPath": "__name__"}, "direction": "ASCENDING"}
                ],
                "limit": 100
            })
        );
    }

    #[test]
    fn later_pulls_start_after_the_checkpoint_pair() {
        let checkpoint = Checkpoint {
            updated_at: Timestamp::parse("2026-11-22T00:07:26.601Z").unwrap(),
            name: "projects/p/databases/(default)/documents/shops/s/products/a".into(),
        };
        let query = serde_json::to_value(pull_query("products", Some(&checkpoint), 2)).unwrap();
        assert_eq!(
            query["where"],
            json!({"fieldFilter": {
                "field": {"fieldPath": "updatedAt"},
                "op": "GREATER_THAN_OR_EQUAL",
                "value": {"timestampValue": "2026-11-22T00:07:26.601Z"}
            }})
        );
        assert_eq!(
            query["startAt"],
            json!({"values": [
                {"timestampValue": "2026-11-22T00:07:26.601Z"},
                {"referenceValue": "projects/p/databases/(default)/documents/shops/s/products/a"}
            ]})
        );
    }

    #[test]
    fn the_checkpoint_is_the_last_document_with_a_timestamp() {
        let document = |name: &str, millis: Option<i64>| Document {
            name: name.into(),
            fields: millis
                .map(|m| {
                    (
                        UPDATED_AT.to_string(),
                        Value::Timestamp(Timestamp::from_unix_millis(m)),
                    )
                })
                .into_iter()
                .collect(),
            ..Document::default()
        };
        assert_eq!(checkpoint_after(&[]), None);
        let page = [
            document("a", Some(5)),
            document("b", Some(7)),
            document("c", None),
        ];
        assert_eq!(
            checkpoint_after(&page),
            Some(Checkpoint {
                updated_at: Timestamp::from_unix_millis(7),
                name: "b".into()
            })
        );
    }
}
