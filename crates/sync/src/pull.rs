//! Checkpointed pulls: the `:runQuery` that fetches what changed in one collection since the
//! last `(updatedAt, name)` pair this device applied, the checkpoint after a page, and
//! [`Pulls`], the engine's per-collection pull state machine.
//!
//! Documents written in one commit share one `updatedAt`, so the timestamp alone cannot say where
//! a page ended; the document name breaks the tie, exactly as the query's order does.
//!
//! A pull has at most one query on the wire and one page being stored: the query for the next
//! page goes out as soon as a full page arrives, while the driver stores that one (documents
//! and checkpoint in one store transaction). Pages are stored strictly one after the other, in
//! query order, and nothing after a page that failed: a page applied out of order, or after a
//! failed one, could move the checkpoint past documents never stored.
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

use counterbook_firestore_wire::{
    CollectionSelector, Cursor, Direction, Document, DocumentName, FieldFilter, FieldOperator,
    FieldReference, Filter, Order, StructuredQuery, Timestamp, Value,
};
use serde::{Deserialize, Serialize};

use crate::conflict::{BusinessRules, ConflictEntry};
use crate::sorted_map::SortedMap;

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

/// 0001-01-01T00:00:00Z, the earliest time Firestore has.
const EARLIEST_SECONDS: i64 = -62_135_596_800;

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
        // Firestore's earliest time, so this keeps every stamped document; the filter
        // lets a server read the first page from its `updatedAt` index instead of ordering the
        // whole collection (counterbook-server: 400 ms for the first page of 50,000 products
        // without it, 10 ms with it).
        None => (
            Some(Filter::FieldFilter(FieldFilter {
                field: FieldReference::new(UPDATED_AT),
                op: FieldOperator::GreaterThanOrEqual,
                value: Value::Timestamp(Timestamp::new(EARLIEST_SECONDS, 0)),
            })),
            None,
        ),
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
    /// The query the page answered (named again when it is stored, or failed to be).
    pub query_id: PullQueryId,
    /// Every document of the page as the server has it (the new base copies).
    pub upserts: Vec<Document>,
    /// Paths (relative to the database root) of the upserts marked `deleted`, to hide.
    pub deletes: Vec<String>,
    /// Business rules the page's documents break (oversold stock, credit over the limit).
    pub conflicts: Vec<ConflictEntry>,
    pub checkpoint: Checkpoint,
}

/// Names one `:runQuery` of a pull, so that a reply or a failure that comes late (for a query
/// of a pull that has stopped since, or twice) is told apart from the one awaited.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PullQueryId(pub u64);

/// The page the driver is storing now.
#[derive(Clone, Debug, PartialEq)]
struct StoringPage {
    /// The query it answered.
    query_id: PullQueryId,
    /// The checkpoint once it is stored.
    next: Checkpoint,
}

/// A reply that came while a page was being stored: the next page, stored after that one.
#[derive(Clone, Debug, PartialEq)]
struct ArrivedPage {
    query_id: PullQueryId,
    documents: Vec<Document>,
    read_time: Option<Timestamp>,
}

#[derive(Clone, Debug, PartialEq)]
struct CollectionPull {
    /// The last checkpoint stored (as stored when the pull started, then after each page).
    checkpoint: Option<Checkpoint>,
    /// Where the pull started reading: what was settled before it.
    started_settled: Option<Timestamp>,
    /// The server's read time of the pull's first query (every later page was read no earlier).
    first_read_time: Option<Timestamp>,
    /// No page has arrived yet.
    first_page: bool,
    /// The query on the wire, if any.
    querying: Option<PullQueryId>,
    /// The page being stored, if any.
    storing: Option<StoringPage>,
    /// The next page, arrived while `storing` was being stored.
    arrived: Option<ArrivedPage>,
    /// The query for the next page failed while a page was being stored: the pull stops once
    /// that page is stored.
    query_failed: bool,
    /// Another pull was asked for after the last query went out: go on to the end again
    /// afterwards.
    again: bool,
}

/// What the pull state machine asks for.
#[derive(Clone, Debug, PartialEq)]
pub enum PullStep {
    Query {
        collection: String,
        query_id: PullQueryId,
        query: StructuredQuery,
    },
    Apply(PulledPage),
}

/// The pulls running now, one at most per collection.
///
/// A pull keeps the network and the store busy at once: as soon as a full page arrives, the
/// query for the next one goes out (from that page's last document) while the driver stores
/// it, so an empty tablet's first sync costs the longer of the two per page instead of their
/// sum. Pages are still stored one at a time and in query order, each with its checkpoint in
/// one transaction: a page that arrives while the one before it is being stored waits for it,
/// and nothing is stored after a page that failed. Replies are matched by [`PullQueryId`], so
/// one for a query of a pull that has stopped since never enters another pull.
#[derive(Clone, Debug, Default)]
pub struct Pulls {
    running: SortedMap<String, CollectionPull>,
    page_size: i32,
    /// The overlap window, in microseconds (see the module documentation).
    overlap_micros: i64,
    /// The id of the last query asked for.
    last_query_id: u64,
}

impl Pulls {
    /// Pulls of `page_size` documents a page that re-read `overlap_millis` before what they
    /// last read (0: strictly after the checkpoint, right only for backends that stamp
    /// `updatedAt` at commit time).
    pub fn new(page_size: i32, overlap_millis: i64) -> Self {
        Pulls {
            running: SortedMap::new(),
            page_size: page_size.max(1),
            overlap_micros: overlap_millis.max(0).saturating_mul(1_000),
            last_query_id: 0,
        }
    }

    pub fn is_pulling(&self, collection: &str) -> bool {
        self.running.contains_key(collection)
    }

    pub fn running(&self) -> usize {
        self.running.len()
    }

    fn next_query_id(&mut self) -> PullQueryId {
        self.last_query_id += 1;
        PullQueryId(self.last_query_id)
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
        let query_id = self.next_query_id();
        self.running.insert(
            collection.to_owned(),
            CollectionPull {
                started_settled: checkpoint
                    .as_ref()
                    .map(|checkpoint| checkpoint.settled(self.overlap_micros)),
                checkpoint,
                first_read_time: None,
                first_page: true,
                querying: Some(query_id),
                storing: None,
                arrived: None,
                query_failed: false,
                again: false,
            },
        );
        Some(PullStep::Query {
            collection: collection.to_owned(),
            query_id,
            query,
        })
    }

    /// The reply to query `query_id` arrived (documents in query order), read at `read_time`
    /// (the `readTime` of the `:runQuery` reply, if it had one). A reply to any other query
    /// than the one awaited changes nothing.
    pub fn on_page(
        &mut self,
        collection: &str,
        query_id: PullQueryId,
        documents: Vec<Document>,
        read_time: Option<Timestamp>,
        rules: &BusinessRules,
    ) -> Vec<PullStep> {
        let Some(pull) = self.running.get_mut(collection) else {
            return Vec::new();
        };
        if pull.querying != Some(query_id) {
            return Vec::new();
        }
        pull.querying = None;
        let arrived = ArrivedPage {
            query_id,
            documents,
            read_time,
        };
        if pull.storing.is_some() {
            // Stored once the page before it is.
            pull.arrived = Some(arrived);
            return Vec::new();
        }
        self.take_page(collection, arrived, rules)
    }

    /// Turns the next page of `collection`'s pull (nothing being stored) into the steps that
    /// store it and, when more may follow, ask for the one after it.
    fn take_page(
        &mut self,
        collection: &str,
        arrived: ArrivedPage,
        rules: &BusinessRules,
    ) -> Vec<PullStep> {
        let page_size = self.page_size;
        let overlap_micros = self.overlap_micros;
        let Some(pull) = self.running.get_mut(collection) else {
            return Vec::new();
        };
        let ArrivedPage {
            query_id,
            documents,
            read_time,
        } = arrived;
        if pull.first_page {
            pull.first_page = false;
            pull.first_read_time = read_time;
        }
        let full = documents.len() as i64 >= i64::from(page_size);
        let Some(next) = settled_checkpoint_after(
            &documents,
            pull.started_settled,
            pull.first_read_time,
            overlap_micros,
        ) else {
            // Nothing newer: this pull is done, unless another was asked for meanwhile.
            return self.finish(collection);
        };
        let mut steps = Vec::with_capacity(2);
        if full {
            // The next page is read while this one is stored. It also serves any request made
            // until now.
            let next_query_id = self.next_query_id();
            let pull = self
                .running
                .get_mut(collection)
                .expect("the pull runs: it was found above");
            pull.again = false;
            pull.querying = Some(next_query_id);
            steps.push(PullStep::Query {
                collection: collection.to_owned(),
                query_id: next_query_id,
                query: pull_query(collection, Some(&next), page_size),
            });
        }
        let pull = self
            .running
            .get_mut(collection)
            .expect("the pull runs: it was found above");
        pull.storing = Some(StoringPage {
            query_id,
            next: next.clone(),
        });
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
        steps.push(PullStep::Apply(PulledPage {
            collection: collection.to_owned(),
            query_id,
            upserts: documents,
            deletes,
            conflicts,
            checkpoint: next,
        }));
        steps
    }

    /// The pull of `collection` read to the end: it stops, or starts again from its last
    /// checkpoint when another pull was asked for after its last query went out.
    fn finish(&mut self, collection: &str) -> Vec<PullStep> {
        let Some(pull) = self.running.remove(collection) else {
            return Vec::new();
        };
        if pull.again {
            self.request(collection, pull.checkpoint)
                .into_iter()
                .collect()
        } else {
            Vec::new()
        }
    }

    /// The driver stored the page of query `query_id` and its checkpoint.
    pub fn on_applied(
        &mut self,
        collection: &str,
        query_id: PullQueryId,
        rules: &BusinessRules,
    ) -> Vec<PullStep> {
        let Some(pull) = self.running.get_mut(collection) else {
            return Vec::new();
        };
        let Some(stored) = pull.storing.take_if(|storing| storing.query_id == query_id) else {
            return Vec::new();
        };
        pull.checkpoint = Some(stored.next);
        if let Some(arrived) = pull.arrived.take() {
            return self.take_page(collection, arrived, rules);
        }
        if pull.querying.is_some() {
            // The next page is on its way.
            return Vec::new();
        }
        if pull.query_failed {
            self.running.remove(collection);
            return Vec::new();
        }
        // The page was the last one (short): done, or read on for a request made meanwhile.
        self.finish(collection)
    }

    /// Query `query_id` or the storing of its page failed: the pull stops (once the page being
    /// stored is stored, if the query for the next one failed); the next request starts from
    /// the stored checkpoint. Returns whether it concerned the running pull (not a late
    /// failure of one that stopped already).
    pub fn on_failed(&mut self, collection: &str, query_id: PullQueryId) -> bool {
        let Some(pull) = self.running.get_mut(collection) else {
            return false;
        };
        if pull.querying == Some(query_id) {
            pull.querying = None;
            if pull.storing.is_some() {
                pull.query_failed = true;
            } else {
                self.running.remove(collection);
            }
            return true;
        }
        let storing_failed = pull
            .storing
            .as_ref()
            .is_some_and(|storing| storing.query_id == query_id);
        if storing_failed {
            // Nothing after it may be stored; a query still on the wire is answered to a pull
            // that no longer runs.
            self.running.remove(collection);
        }
        storing_failed
    }

    /// A restart of the engine's network side (the driver lost every request): forget pulls.
    pub fn clear(&mut self) {
        self.running.clear();
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

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

    /// The query a step asks for, or a panic naming the steps.
    fn query_of(steps: &[PullStep]) -> (PullQueryId, StructuredQuery) {
        match steps {
            [PullStep::Query {
                query_id, query, ..
            }, ..] => (*query_id, query.clone()),
            other => panic!("no query first in {other:?}"),
        }
    }

    /// The page a step stores, or a panic naming the steps.
    fn page_of(steps: &[PullStep]) -> PulledPage {
        match steps.last() {
            Some(PullStep::Apply(page)) => page.clone(),
            other => panic!("no page last in {other:?}"),
        }
    }

    /// The pulls of the `products` collection under test, with default business rules: each
    /// call is one event the driver reports, and returns the steps the engine asks for.
    struct ProductPulls {
        pulls: Pulls,
        rules: BusinessRules,
    }

    impl ProductPulls {
        fn new(page_size: i32, overlap_millis: i64) -> Self {
            ProductPulls {
                pulls: Pulls::new(page_size, overlap_millis),
                rules: BusinessRules::default(),
            }
        }

        /// A pull asked for from `checkpoint`: the query that starts it (a panic if none does).
        fn request(&mut self, checkpoint: Option<Checkpoint>) -> (PullQueryId, StructuredQuery) {
            query_of(
                &self
                    .pulls
                    .request("products", checkpoint)
                    .into_iter()
                    .collect::<Vec<_>>(),
            )
        }

        fn page(
            &mut self,
            query_id: PullQueryId,
            documents: Vec<Document>,
            read_time_millis: Option<i64>,
        ) -> Vec<PullStep> {
            self.pulls.on_page(
                "products",
                query_id,
                documents,
                read_time_millis.map(Timestamp::from_unix_millis),
                &self.rules,
            )
        }

        fn applied(&mut self, query_id: PullQueryId) -> Vec<PullStep> {
            self.pulls.on_applied("products", query_id, &self.rules)
        }

        fn failed(&mut self, query_id: PullQueryId) -> bool {
            self.pulls.on_failed("products", query_id)
        }

        fn is_pulling(&self) -> bool {
            self.pulls.is_pulling("products")
        }
    }

    #[test]
    fn a_pull_asks_for_the_next_page_while_the_last_one_is_stored() {
        let mut pulls = ProductPulls::new(2, 0);
        let (first_id, query) = pulls.request(None);
        assert_eq!(query.start_at, None);
        assert_eq!(
            pulls.pulls.request("products", None),
            None,
            "one pull per collection"
        );
        // A full page: stored, and the next page asked for at once, after its last document.
        let page = vec![named("a", 5, false), named("b", 6, true)];
        let steps = pulls.page(first_id, page, None);
        assert_eq!(steps.len(), 2, "{steps:?}");
        let (second_id, query) = query_of(&steps);
        let stored = page_of(&steps);
        assert_eq!(stored.query_id, first_id);
        assert_eq!(stored.deletes, vec!["shops/s/products/b".to_string()]);
        assert_eq!(stored.checkpoint.updated_at, Timestamp::from_unix_millis(6));
        assert_eq!(
            query.start_at.unwrap().values[1],
            Value::Reference(stored.checkpoint.name.clone())
        );
        // The next page arrives while the first is still being stored: it waits for it.
        let steps = pulls.page(
            second_id,
            vec![named("c", 7, false), named("d", 8, false)],
            None,
        );
        assert_eq!(steps, vec![], "nothing stored beside the page being stored");
        // Once the first is stored, the second is, and the third asked for.
        let steps = pulls.applied(first_id);
        let (third_id, query) = query_of(&steps);
        let stored = page_of(&steps);
        assert_eq!(stored.query_id, second_id);
        assert_eq!(stored.checkpoint.updated_at, Timestamp::from_unix_millis(8));
        assert_eq!(
            query.start_at.unwrap().values[1],
            Value::Reference(stored.checkpoint.name.clone())
        );
        // Stored before its reply: the third page is awaited, then stored; a short page ends
        // the pull, and the request made meanwhile was served by the queries that followed it.
        assert_eq!(pulls.applied(second_id), vec![]);
        let steps = pulls.page(third_id, vec![named("e", 9, false)], None);
        assert_eq!(
            steps.len(),
            1,
            "a short page asks for nothing more: {steps:?}"
        );
        assert_eq!(page_of(&steps).query_id, third_id);
        assert!(pulls.is_pulling(), "until the last page is stored");
        assert_eq!(pulls.applied(third_id), vec![]);
        assert!(!pulls.is_pulling());
    }

    #[test]
    fn a_request_made_after_the_last_query_went_out_reads_on_to_the_end_again() {
        let mut pulls = ProductPulls::new(2, 0);
        let (first_id, _) = pulls.request(None);
        let steps = pulls.page(first_id, vec![named("d", 8, false)], None);
        assert_eq!(steps.len(), 1);
        pulls.pulls.request("products", None);
        let steps = pulls.applied(first_id);
        let (again_id, query) = query_of(&steps);
        assert!(query.start_at.is_some(), "from the new checkpoint");
        assert_eq!(pulls.page(again_id, vec![], None), vec![]);
        assert!(!pulls.is_pulling());
    }

    /// Regression test for the pipelined pull: a reply to a query of a pull that stopped since
    /// (or the same reply twice) must never enter another pull, or its page would move the
    /// checkpoint past documents never stored.
    #[test]
    fn late_duplicate_and_stale_replies_change_nothing() {
        let mut pulls = ProductPulls::new(2, 0);
        let (first_id, _) = pulls.request(None);
        let full = || vec![named("a", 5, false), named("b", 6, false)];
        let steps = pulls.page(first_id, full(), None);
        let (second_id, _) = query_of(&steps);
        assert_eq!(
            pulls.page(first_id, full(), None),
            vec![],
            "the same reply twice"
        );
        assert_eq!(
            pulls.page(PullQueryId(99), full(), None),
            vec![],
            "a reply to no query of this pull"
        );
        // Storing the first page fails: the pull stops although the second query is out.
        assert!(pulls.failed(first_id));
        assert!(!pulls.is_pulling());
        // A new pull from the stored checkpoint; the old query's reply comes late.
        let (restart_id, _) = pulls.request(None);
        assert_ne!(restart_id, second_id);
        let late = vec![named("x", 50, false), named("y", 60, false)];
        assert_eq!(
            pulls.page(second_id, late, None),
            vec![],
            "the stopped pull's reply"
        );
        assert!(!pulls.failed(second_id), "nor its failure");
        assert_eq!(pulls.applied(first_id), vec![]);
        let steps = pulls.page(restart_id, full(), None);
        assert_eq!(
            page_of(&steps).checkpoint.updated_at,
            Timestamp::from_unix_millis(6)
        );
    }

    #[test]
    fn a_query_failing_while_a_page_is_stored_ends_the_pull_once_it_is_stored() {
        let mut pulls = ProductPulls::new(2, 0);
        let (first_id, _) = pulls.request(None);
        let page = vec![named("a", 5, false), named("b", 6, false)];
        let (second_id, _) = query_of(&pulls.page(first_id, page, None));
        assert!(pulls.failed(second_id));
        assert!(pulls.is_pulling(), "the page being stored is stored");
        pulls.pulls.request("products", None);
        assert_eq!(pulls.applied(first_id), vec![]);
        assert!(!pulls.is_pulling());
        // The next request starts from the stored checkpoint.
        assert!(pulls.pulls.request("products", None).is_some());
    }

    #[test]
    fn a_failed_query_stops_the_pull() {
        let mut pulls = ProductPulls::new(10, 0);
        let (first_id, _) = pulls.request(None);
        assert!(pulls.failed(first_id));
        assert_eq!(
            pulls.page(first_id, vec![named("a", 1, false)], None),
            vec![]
        );
        assert_eq!(pulls.applied(first_id), vec![]);
    }

    #[test]
    fn first_pull_has_no_cursor_and_reads_from_the_updated_at_index() {
        let query = pull_query("products", None, 100);
        assert_eq!(
            serde_json::to_value(&query).unwrap(),
            json!({
                "from": [{"collectionId": "products"}],
                "where": {"fieldFilter": {
                    "field": {"fieldPath": "updatedAt"},
                    "op": "GREATER_THAN_OR_EQUAL",
                    "value": {"timestampValue": "0001-01-01T00:00:00Z"}
                }},
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
        let mut pulls = ProductPulls::new(10, 3_000);
        let (first_id, _) = pulls.request(None);
        // Read at 10 s: `a` stamped 9 s and `b` 9.5 s are visible; `c`, stamped 8 s, is not yet.
        let page = vec![named("a", 9_000, false), named("b", 9_500, false)];
        let applied = page_of(&pulls.page(first_id, page, Some(10_000)));
        assert_eq!(
            applied.checkpoint.settled_through,
            Some(Timestamp::from_unix_millis(7_000)),
            "the first read time minus the window"
        );
        assert_eq!(pulls.applied(first_id), vec![]);
        let (second_id, query) = pulls.request(Some(applied.checkpoint.clone()));
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
        let applied = page_of(&pulls.page(second_id, page, Some(20_000)));
        assert!(applied.upserts.iter().any(|d| d.name.ends_with("/c")));
        assert_eq!(
            applied.checkpoint.settled_through,
            Some(applied.checkpoint.updated_at),
            "settled up to the checkpoint"
        );
        assert_eq!(pulls.applied(second_id), vec![]);
        let (_, query) = pulls.request(Some(applied.checkpoint.clone()));
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
