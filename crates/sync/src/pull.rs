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
//!
//! The overlap window. `updatedAt` is the server's `REQUEST_TIME`, and a backend may stamp it
//! from a clock read before the commit becomes visible: Google's Firestore emulator does (measured
//! up to a few hundred milliseconds under concurrent commits), so a commit stamped `t1` can become
//! visible after one stamped `t2 > t1` was already pulled, and a strict cursor after `t2` would
//! never see it. Pulls therefore re-read a bounded window: with every checkpoint goes the time it
//! is *settled through* ([`Checkpoint::settled_through`]), the latest `updatedAt` at or before
//! which every document was visible when the pull read, and so applied. It is the first query's
//! `readTime` minus [`OutboxConfig::pull_overlap_millis`](crate::OutboxConfig) (the longest a
//! backend may take from stamping to visibility), and never later than the checkpoint. A pull
//! starts after the settled time when it is earlier than the checkpoint (re-reading the
//! documents stamped in between) and strictly after the checkpoint otherwise, so a quiet
//! collection costs no extra reads, and a busy one re-reads only what changed in the window.
//! Re-reading is harmless: the store never lets a server document replace a newer copy
//! ([`server_version_is_older`]). On Cloud Firestore and counterbook-server `updatedAt` is the
//! commit time, so the window only costs those few re-reads.

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

/// The last document applied from a collection, in query order, and how far back the next pull
/// must look again.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Checkpoint {
    pub updated_at: Timestamp,
    /// The document's full resource name.
    pub name: String,
    /// Every document stamped at or before this `updatedAt` was visible when it was pulled and
    /// has been applied; those stamped after it, up to `updated_at`, may have been committed out
    /// of order and are read again (see the module documentation). `None` in checkpoints saved
    /// before the window existed: treated as `updated_at` minus the window.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub settled_through: Option<Timestamp>,
}

impl Checkpoint {
    /// Where the next pull must start reading again: the settled time, never after the
    /// checkpoint itself.
    pub fn settled(&self, overlap_micros: i64) -> Timestamp {
        let settled = self
            .settled_through
            .unwrap_or_else(|| shifted(self.updated_at, -overlap_micros));
        settled.min(self.updated_at)
    }
}

fn shifted(time: Timestamp, micros: i64) -> Timestamp {
    Timestamp::from_unix_micros(time.to_unix_micros().saturating_add(micros))
}

/// Whether a document read from the server is older than the copy a device holds, and so must
/// change nothing. Pulls re-read their overlap window, and listen snapshots, pulled pages and
/// re-reads after a unit lands arrive over different connections, so an older version can
/// arrive after a newer one; taking it would leave the device stale until the document changes
/// again (the listener has delivered the newer version already and will not send it again). The
/// same version again is harmless to take. Without both update times nothing says it is older.
pub fn server_version_is_older(stored: Option<Timestamp>, incoming: Option<Timestamp>) -> bool {
    matches!((stored, incoming), (Some(stored), Some(incoming)) if incoming < stored)
}

/// The first query of a pull from `checkpoint` as stored: strictly after the checkpoint when it
/// is settled, otherwise everything stamped after the settled time (the overlap window).
pub fn first_pull_query(
    collection_id: &str,
    checkpoint: Option<&Checkpoint>,
    page_size: i32,
    overlap_micros: i64,
) -> StructuredQuery {
    let Some(checkpoint) = checkpoint else {
        return pull_query(collection_id, None, page_size);
    };
    let settled = checkpoint.settled(overlap_micros);
    if settled >= checkpoint.updated_at {
        return pull_query(collection_id, Some(checkpoint), page_size);
    }
    StructuredQuery {
        filter: Some(Filter::FieldFilter(FieldFilter {
            field: FieldReference::new(UPDATED_AT),
            op: FieldOperator::GreaterThan,
            value: Value::Timestamp(settled),
        })),
        start_at: None,
        ..pull_query(collection_id, None, page_size)
    }
}

/// The query for the next page of `collection_id` strictly after `checkpoint` (from the start if
/// none): the pages after a pull's first.
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

/// The checkpoint after applying `page` (documents in query order), or `None` for an empty page,
/// with no settled time (a strict pull, as if every backend stamped at commit time). A document
/// without a timestamp `updatedAt` cannot be in the page (the query orders by it), so such
/// documents are skipped.
pub fn checkpoint_after(page: &[Document]) -> Option<Checkpoint> {
    page.iter().rev().find_map(|document| {
        let updated_at = document.fields.get(UPDATED_AT)?.as_timestamp()?;
        Some(Checkpoint {
            updated_at,
            name: document.name.clone(),
            settled_through: Some(updated_at),
        })
    })
}

/// The checkpoint after applying `page`, settled as far as the pull's reads allow:
/// `previously_settled` (where the pull started) at least, and at most the page's last document
/// and the first query's read time minus the window (without a read time, the page's last
/// `updatedAt` stands in for it).
fn settled_checkpoint_after(
    page: &[Document],
    previously_settled: Option<Timestamp>,
    first_read_time: Option<Timestamp>,
    overlap_micros: i64,
) -> Option<Checkpoint> {
    let mut checkpoint = checkpoint_after(page)?;
    let seen_by = first_read_time.unwrap_or(checkpoint.updated_at);
    let settled = shifted(seen_by, -overlap_micros).min(checkpoint.updated_at);
    checkpoint.settled_through = Some(match previously_settled {
        Some(previous) => settled.max(previous.min(checkpoint.updated_at)),
        None => settled,
    });
    Some(checkpoint)
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
    /// Where the pull started reading: what was settled before it.
    started_settled: Option<Timestamp>,
    /// The server's read time of the pull's first query (every later page was read no earlier).
    first_read_time: Option<Timestamp>,
    /// No page has arrived yet.
    first_page: bool,
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
    /// The overlap window, in microseconds (see the module documentation).
    overlap_micros: i64,
}

impl Pulls {
    /// Pulls of `page_size` documents a page that re-read `overlap_millis` before what they
    /// last read (0: strictly after the checkpoint, right only for backends that stamp
    /// `updatedAt` at commit time).
    pub fn new(page_size: i32, overlap_millis: i64) -> Self {
        Pulls {
            running: BTreeMap::new(),
            page_size: page_size.max(1),
            overlap_micros: overlap_millis.max(0).saturating_mul(1_000),
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
        let query = first_pull_query(
            collection,
            checkpoint.as_ref(),
            self.page_size,
            self.overlap_micros,
        );
        self.running.insert(
            collection.to_owned(),
            CollectionPull {
                started_settled: checkpoint
                    .as_ref()
                    .map(|checkpoint| checkpoint.settled(self.overlap_micros)),
                checkpoint,
                first_read_time: None,
                first_page: true,
                phase: PullPhase::Querying,
                again: false,
            },
        );
        Some(PullStep::Query {
            collection: collection.to_owned(),
            query,
        })
    }

    /// A page arrived (documents in query order), read at `read_time` (the `readTime` of the
    /// `:runQuery` reply, if it had one).
    pub fn on_page(
        &mut self,
        collection: &str,
        documents: Vec<Document>,
        read_time: Option<Timestamp>,
        rules: &BusinessRules,
    ) -> Option<PullStep> {
        let pull = self.running.get_mut(collection)?;
        if pull.phase != PullPhase::Querying {
            return None;
        }
        if pull.first_page {
            pull.first_page = false;
            pull.first_read_time = read_time;
        }
        let full = documents.len() as i64 >= i64::from(self.page_size);
        let Some(next) = settled_checkpoint_after(
            &documents,
            pull.started_settled,
            pull.first_read_time,
            self.overlap_micros,
        ) else {
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
        let mut pulls = Pulls::new(2, 0);
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
        let Some(PullStep::Apply(applied)) = pulls.on_page("products", page, None, &rules) else {
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
            pulls.on_page("products", vec![named("c", 7, false)], None, &rules)
        else {
            panic!()
        };
        // A short page ends the pull: the request made meanwhile was served by the queries
        // that followed it.
        assert_eq!(pulls.on_applied("products"), None);
        // A request made while a page is being applied runs once more to the end.
        pulls.request("products", None);
        pulls.on_page("products", vec![named("d", 8, false)], None, &rules);
        pulls.request("products", None);
        let Some(PullStep::Query { query, .. }) = pulls.on_applied("products") else {
            panic!("the request made during the pull goes on")
        };
        assert!(query.start_at.is_some(), "from the new checkpoint");
        assert_eq!(pulls.on_page("products", vec![], None, &rules), None);
        assert!(!pulls.is_pulling("products"));
    }

    #[test]
    fn a_failed_pull_stops_and_a_stale_page_is_ignored() {
        let rules = BusinessRules::default();
        let mut pulls = Pulls::new(10, 0);
        pulls.request("products", None);
        pulls.on_failed("products");
        assert_eq!(
            pulls.on_page("products", vec![named("a", 1, false)], None, &rules),
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
            settled_through: None,
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
                name: "b".into(),
                settled_through: Some(Timestamp::from_unix_millis(7)),
            })
        );
    }

    /// Regression test for the stale tablet on Google's emulator (issue 8): a commit stamped
    /// before one already pulled, but visible only after it, is read by the next pull's overlap
    /// window; once the window is settled, pulls go back to reading strictly after the
    /// checkpoint.
    #[test]
    fn a_pull_re_reads_the_unsettled_window_once_then_reads_strictly_after_the_checkpoint() {
        let rules = BusinessRules::default();
        let mut pulls = Pulls::new(10, 3_000);
        pulls.request("products", None);
        // Read at 10 s: `a` stamped 9 s and `b` 9.5 s are visible; `c`, stamped 8 s, is not yet.
        let page = vec![named("a", 9_000, false), named("b", 9_500, false)];
        let Some(PullStep::Apply(applied)) = pulls.on_page(
            "products",
            page,
            Some(Timestamp::from_unix_millis(10_000)),
            &rules,
        ) else {
            panic!()
        };
        assert_eq!(
            applied.checkpoint.settled_through,
            Some(Timestamp::from_unix_millis(7_000)),
            "the first read time minus the window"
        );
        assert_eq!(pulls.on_applied("products"), None);
        let Some(PullStep::Query { query, .. }) =
            pulls.request("products", Some(applied.checkpoint.clone()))
        else {
            panic!()
        };
        assert_eq!(query.start_at, None, "no cursor: the window is read again");
        assert_eq!(
            serde_json::to_value(&query.filter).unwrap(),
            json!({"fieldFilter": {
                "field": {"fieldPath": "updatedAt"},
                "op": "GREATER_THAN",
                "value": {"timestampValue": "1970-01-01T00:00:07Z"}
            }})
        );
        // Read at 20 s: `c` is visible now and comes first.
        let page = vec![
            named("c", 8_000, false),
            named("a", 9_000, false),
            named("b", 9_500, false),
        ];
        let Some(PullStep::Apply(applied)) = pulls.on_page(
            "products",
            page,
            Some(Timestamp::from_unix_millis(20_000)),
            &rules,
        ) else {
            panic!()
        };
        assert!(applied.upserts.iter().any(|d| d.name.ends_with("/c")));
        assert_eq!(
            applied.checkpoint.settled_through,
            Some(applied.checkpoint.updated_at),
            "settled up to the checkpoint"
        );
        assert_eq!(pulls.on_applied("products"), None);
        let Some(PullStep::Query { query, .. }) =
            pulls.request("products", Some(applied.checkpoint.clone()))
        else {
            panic!()
        };
        assert_eq!(
            query,
            pull_query("products", Some(&applied.checkpoint), 10),
            "a settled checkpoint costs no re-read"
        );
    }

    #[test]
    fn a_checkpoint_saved_before_the_window_existed_is_read_again_from_the_window() {
        let checkpoint = Checkpoint {
            updated_at: Timestamp::from_unix_millis(10_000),
            name: "projects/p/databases/(default)/documents/shops/s/products/a".into(),
            settled_through: None,
        };
        let stored = serde_json::to_value(&checkpoint).unwrap();
        assert_eq!(stored.get("settledThrough"), None);
        let query = first_pull_query("products", Some(&checkpoint), 5, 2_000_000);
        assert_eq!(
            query.filter,
            Some(Filter::FieldFilter(FieldFilter {
                field: FieldReference::new(UPDATED_AT),
                op: FieldOperator::GreaterThan,
                value: Value::Timestamp(Timestamp::from_unix_millis(8_000)),
            }))
        );
        // Without a read time, the page's own last `updatedAt` stands in for it.
        let settled = settled_checkpoint_after(
            &[named("b", 12_000, false)],
            Some(checkpoint.settled(2_000_000)),
            None,
            2_000_000,
        )
        .unwrap();
        assert_eq!(
            settled.settled_through,
            Some(Timestamp::from_unix_millis(10_000))
        );
        // A zero window is the strict pull.
        assert_eq!(
            first_pull_query("products", Some(&checkpoint), 5, 0).start_at,
            pull_query("products", Some(&checkpoint), 5).start_at
        );
    }

    #[test]
    fn only_an_older_server_version_is_refused() {
        let at = Timestamp::from_unix_micros;
        assert!(!server_version_is_older(None, Some(at(5))));
        assert!(!server_version_is_older(Some(at(5)), Some(at(6))));
        assert!(!server_version_is_older(Some(at(5)), Some(at(5))));
        assert!(server_version_is_older(Some(at(6)), Some(at(5))));
        assert!(!server_version_is_older(Some(at(6)), None));
    }
}
