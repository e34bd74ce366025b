//! Checkpointed pulls: the `:runQuery` that fetches what changed in one collection since the
//! last `(updatedAt, name)` pair this device applied, the checkpoint after a page, and
//! [`Pulls`], the engine's per-collection pull state machine.
//!
//! Documents written in one commit share one `updatedAt`, so the timestamp alone cannot say where
//! a page ended; the document name breaks the tie, exactly as the query's order does.
//!
//! A pull asks for one page at a time and waits until the driver has applied it (documents and
//! checkpoint in one store transaction) before asking for the next: a page applied out of order,
//! or after a failed one, could move the checkpoint past documents never stored.

use std::collections::BTreeMap;

use counterbook_firestore_wire::{
    CollectionSelector, Cursor, Direction, Document, DocumentName, FieldFilter, FieldOperator,
    FieldReference, Filter, Order, StructuredQuery, Timestamp, Value,
};
use serde::{Deserialize, Serialize};

use crate::conflict::{BusinessRules, ConflictEntry};

/// The server-set field every synced document carries.
pub const UPDATED_AT: &str = "updatedAt";
/// The soft-delete flag every synced document carries (DESIGN.md section 3).
pub const DELETED: &str = "deleted";

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

/// One page of a pull, ready for the store to apply in ONE transaction with its checkpoint.
#[derive(Clone, Debug, PartialEq)]
pub struct PulledPage {
    pub collection: String,
    /// Every document of the page as the server has it (the new base copies).
    pub upserts: Vec<Document>,
    /// Paths (relative to the database root) of the upserts marked `deleted`, to hide.
    pub deletes: Vec<String>,
    /// Business rules the page's documents break (oversold stock, credit over the limit).
    pub conflicts: Vec<ConflictEntry>,
    pub checkpoint: Checkpoint,
}

#[derive(Clone, Debug, PartialEq)]
enum PullPhase {
    /// A query for the page after `from` is on the wire.
    Querying,
    /// The driver is applying a page; `full` says whether more may follow.
    Applying { next: Checkpoint, full: bool },
}

#[derive(Clone, Debug, PartialEq)]
struct CollectionPull {
    checkpoint: Option<Checkpoint>,
    phase: PullPhase,
    /// Another pull was asked for while this one ran: go on to the end again afterwards.
    again: bool,
}

/// What the pull state machine asks for.
#[derive(Clone, Debug, PartialEq)]
pub enum PullStep {
    Query {
        collection: String,
        query: StructuredQuery,
    },
    Apply(PulledPage),
}

/// The pulls running now, one at most per collection.
#[derive(Clone, Debug, Default)]
pub struct Pulls {
    running: BTreeMap<String, CollectionPull>,
    page_size: i32,
}

impl Pulls {
    pub fn new(page_size: i32) -> Self {
        Pulls {
            running: BTreeMap::new(),
            page_size: page_size.max(1),
        }
    }

    pub fn is_pulling(&self, collection: &str) -> bool {
        self.running.contains_key(collection)
    }

    pub fn running(&self) -> usize {
        self.running.len()
    }

    /// Starts pulling `collection` from `checkpoint` (as stored), unless a pull of it runs: then
    /// that pull goes on to the end once more when it finishes.
    pub fn request(
        &mut self,
        collection: &str,
        checkpoint: Option<Checkpoint>,
    ) -> Option<PullStep> {
        if let Some(pull) = self.running.get_mut(collection) {
            pull.again = true;
            return None;
        }
        let query = pull_query(collection, checkpoint.as_ref(), self.page_size);
        self.running.insert(
            collection.to_owned(),
            CollectionPull {
                checkpoint,
                phase: PullPhase::Querying,
                again: false,
            },
        );
        Some(PullStep::Query {
            collection: collection.to_owned(),
            query,
        })
    }

    /// A page arrived (documents in query order).
    pub fn on_page(
        &mut self,
        collection: &str,
        documents: Vec<Document>,
        rules: &BusinessRules,
    ) -> Option<PullStep> {
        let pull = self.running.get_mut(collection)?;
        if pull.phase != PullPhase::Querying {
            return None;
        }
        let full = documents.len() as i64 >= i64::from(self.page_size);
        let Some(next) = checkpoint_after(&documents) else {
            // Nothing newer: this pull is done, unless another was asked for meanwhile.
            let again = pull.again;
            let checkpoint = pull.checkpoint.clone();
            self.running.remove(collection);
            return if again {
                self.request(collection, checkpoint)
            } else {
                None
            };
        };
        pull.phase = PullPhase::Applying {
            next: next.clone(),
            full,
        };
        let relative = |document: &Document| {
            DocumentName::parse(&document.name)
                .map(|name| name.relative_path())
                .unwrap_or_else(|_| document.name.clone())
        };
        let deletes = documents
            .iter()
            .filter(|document| document.fields.get(DELETED).and_then(Value::as_bool) == Some(true))
            .map(relative)
            .collect();
        let conflicts = documents.iter().flat_map(|d| rules.check(d)).collect();
        Some(PullStep::Apply(PulledPage {
            collection: collection.to_owned(),
            upserts: documents,
            deletes,
            conflicts,
            checkpoint: next,
        }))
    }

    /// The driver stored the last page and its checkpoint.
    pub fn on_applied(&mut self, collection: &str) -> Option<PullStep> {
        let pull = self.running.get_mut(collection)?;
        let PullPhase::Applying { next, full } = pull.phase.clone() else {
            return None;
        };
        pull.checkpoint = Some(next);
        if full || pull.again {
            // The queries from here to the end also serve any request made until now.
            pull.again = false;
            pull.phase = PullPhase::Querying;
            let query = pull_query(collection, pull.checkpoint.as_ref(), self.page_size);
            return Some(PullStep::Query {
                collection: collection.to_owned(),
                query,
            });
        }
        self.running.remove(collection);
        None
    }

    /// The query or the store failed: the pull stops; the next request starts from the stored
    /// checkpoint.
    pub fn on_failed(&mut self, collection: &str) {
        self.running.remove(collection);
    }

    /// A restart of the engine's network side (the driver lost every request): forget pulls.
    pub fn clear(&mut self) {
        self.running.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn named(name: &str, millis: i64, deleted: bool) -> Document {
        Document {
            name: format!("projects/p/databases/(default)/documents/shops/s/products/{name}"),
            fields: BTreeMap::from([
                (
                    UPDATED_AT.to_string(),
                    Value::Timestamp(Timestamp::from_unix_millis(millis)),
                ),
                (DELETED.to_string(), Value::Boolean(deleted)),
            ]),
            ..Document::default()
        }
    }

    #[test]
    fn a_pull_asks_for_the_next_page_only_after_the_last_one_is_applied() {
        let rules = BusinessRules::default();
        let mut pulls = Pulls::new(2);
        let Some(PullStep::Query { query, .. }) = pulls.request("products", None) else {
            panic!()
        };
        assert_eq!(query.start_at, None);
        assert_eq!(
            pulls.request("products", None),
            None,
            "one pull per collection"
        );
        let page = vec![named("a", 5, false), named("b", 6, true)];
        let Some(PullStep::Apply(applied)) = pulls.on_page("products", page, &rules) else {
            panic!()
        };
        assert_eq!(applied.deletes, vec!["shops/s/products/b".to_string()]);
        assert_eq!(
            applied.checkpoint.updated_at,
            Timestamp::from_unix_millis(6)
        );
        // A second page only once the first is stored.
        let Some(PullStep::Query { query, .. }) = pulls.on_applied("products") else {
            panic!()
        };
        assert_eq!(
            query.start_at.unwrap().values[1],
            Value::Reference(applied.checkpoint.name.clone())
        );
        let Some(PullStep::Apply(_)) =
            pulls.on_page("products", vec![named("c", 7, false)], &rules)
        else {
            panic!()
        };
        // A short page ends the pull: the request made meanwhile was served by the queries
        // that followed it.
        assert_eq!(pulls.on_applied("products"), None);
        // A request made while a page is being applied runs once more to the end.
        pulls.request("products", None);
        pulls.on_page("products", vec![named("d", 8, false)], &rules);
        pulls.request("products", None);
        let Some(PullStep::Query { query, .. }) = pulls.on_applied("products") else {
            panic!("the request made during the pull goes on")
        };
        assert!(query.start_at.is_some(), "from the new checkpoint");
        assert_eq!(pulls.on_page("products", vec![], &rules), None);
        assert!(!pulls.is_pulling("products"));
    }

    #[test]
    fn a_failed_pull_stops_and_a_stale_page_is_ignored() {
        let rules = BusinessRules::default();
        let mut pulls = Pulls::new(10);
        pulls.request("products", None);
        pulls.on_failed("products");
        assert_eq!(
            pulls.on_page("products", vec![named("a", 1, false)], &rules),
            None
        );
        assert_eq!(pulls.on_applied("products"), None);
    }

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
