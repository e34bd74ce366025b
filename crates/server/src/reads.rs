//! Every request that reads: `GET` of a document, `GET` of a collection (list), `:batchGet`,
//! `:runQuery` and `:runAggregationQuery`, each optionally inside a transaction
//! (`transaction`, or `newTransaction` to open one on the way, whose id comes back first).
//!
//! Reads in a read-write transaction register what they saw with the store's
//! `TransactionRegistry`, so that the transaction's commit can check nothing changed. Reading
//! at a past `readTime` needs document history, which this server does not keep: such a read
//! is refused with 400 `FAILED_PRECONDITION` "too old" past an hour (the emulator's answer
//! for old times) and 501 `UNIMPLEMENTED` within it.
//!
//! Response shapes are the emulator's: `:batchGet` answers one `found` or `missing` item per
//! distinct requested name (duplicates are answered once), each with `readTime`; `:runQuery`
//! answers one item per document, `skippedResults` on every one but the last, which says `done`
//! (a lone `{readTime, done}` when nothing matched); a list answers `{documents, nextPageToken}`
//! with a token whenever the page is full, and `{}` when there is nothing.

use counterbook_firestore_wire::{
    Direction, DocumentMask, DocumentName, FieldReference, Order, RunQueryResponseItem,
    StructuredQuery, Timestamp, Value,
};
use serde_json::json;

pub use counterbook_firestore_wire::{BatchGetRequest, RunQueryRequest};

use crate::aggregation::{prepare_aggregations, RunAggregationQueryRequest};
use crate::error::ServerError;
use crate::field_path::FieldPath;
use crate::opaque::{decode_base64, encode_base64};
use crate::query::{prepare_query, project_fields, PreparedQuery};
use crate::store::{DatabaseId, DocumentSource, NamedDocument, ReadSnapshot, Store};
use crate::transaction::{refuse_read_time, RecordedRead, TransactionOptions, TransactionOwner};

/// The documents a query returned, unprojected, with their positions in its order.
pub struct QueryRun {
    pub documents: Vec<NamedDocument>,
    pub positions: Vec<Vec<Value>>,
    pub skipped_results: usize,
    /// How many stored documents were read to answer (for tests of the index planner).
    pub documents_examined: usize,
}

/// Runs a prepared query against any source: the index when `index_plan` finds one, else a
/// scan of the collection (or collection group).
pub fn evaluate_query(
    source: &dyn DocumentSource,
    parent: &DocumentName,
    query: &PreparedQuery,
) -> Result<QueryRun, ServerError> {
    let plan = query.index_plan();
    let streaming = plan.as_ref().is_some_and(|plan| plan.in_query_order);
    let mut evaluation = query.evaluation(streaming);
    let documents_examined = if query.all_descendants {
        let candidates = source.documents_in_collection_group(parent, &query.collection_id)?;
        let count = candidates.len();
        candidates.into_iter().for_each(|document| {
            evaluation.offer(document);
        });
        count
    } else if let Some(plan) = &plan {
        source.visit_index_range(parent, &query.collection_id, plan, &mut |document| {
            evaluation.offer(document)
        })?
    } else {
        let candidates = source.documents_in_collection(parent, &query.collection_id)?;
        let count = candidates.len();
        candidates.into_iter().for_each(|document| {
            evaluation.offer(document);
        });
        count
    };
    let (rows, skipped_results) = evaluation.finish_with_positions();
    let (positions, documents) = rows.into_iter().unzip();
    Ok(QueryRun {
        documents,
        positions,
        skipped_results,
        documents_examined,
    })
}

/// What a transaction records of a query's result: each document's name and version.
pub fn result_versions(documents: &[NamedDocument]) -> Vec<(String, Timestamp)> {
    documents
        .iter()
        .map(|document| (document.name.clone(), document.stored.update_time))
        .collect()
}

/// The transaction a read runs in: an existing one, or one opened for it.
struct ReadTransaction {
    id: Option<String>,
    opened_here: bool,
    /// Who reads: only the user who opened a transaction reads in it.
    owner: Option<TransactionOwner>,
}

fn open_read_transaction(
    store: &Store,
    database: &DatabaseId,
    owner: Option<&TransactionOwner>,
    existing: Option<String>,
    new_transaction: Option<TransactionOptions>,
    read_time: Option<Timestamp>,
) -> Result<ReadTransaction, ServerError> {
    let chosen = [
        existing.is_some(),
        new_transaction.is_some(),
        read_time.is_some(),
    ]
    .into_iter()
    .filter(|set| *set)
    .count();
    if chosen > 1 {
        return Err(ServerError::InvalidArgument(
            "Payload isn't valid for request: transaction, newTransaction and readTime exclude each other"
                .into(),
        ));
    }
    if let Some(read_time) = read_time {
        return Err(refuse_read_time(read_time));
    }
    if let Some(id) = existing {
        store.transactions().check_open(&id, database, owner)?;
        return Ok(ReadTransaction {
            id: Some(id),
            opened_here: false,
            owner: owner.cloned(),
        });
    }
    if let Some(mut options) = new_transaction {
        // A read that opens a transaction without saying which kind opens a read-only one, as
        // on the emulator (whose commit of writes in it then fails).
        if options.read_only.is_none() && options.read_write.is_none() {
            options.read_only = Some(Default::default());
        }
        let id = store.transactions().begin(database, &options, owner)?;
        return Ok(ReadTransaction {
            id: Some(id),
            opened_here: true,
            owner: owner.cloned(),
        });
    }
    Ok(ReadTransaction {
        id: None,
        opened_here: false,
        owner: None,
    })
}

impl ReadTransaction {
    fn record(
        &self,
        store: &Store,
        database: &DatabaseId,
        reads: impl FnOnce() -> Vec<RecordedRead>,
    ) -> Result<(), ServerError> {
        match &self.id {
            Some(id) => store
                .transactions()
                .record(id, database, self.owner.as_ref(), reads()),
            None => Ok(()),
        }
    }

    /// The `{"transaction": id}` item that leads a reply when the read opened it.
    fn leading_item(&self) -> Option<serde_json::Value> {
        self.transaction_opened_here()
            .map(|id| json!({ "transaction": id }))
    }

    /// The transaction's id when it was opened for this read (`newTransaction`), which the
    /// reply names first.
    fn transaction_opened_here(&self) -> Option<&str> {
        match (&self.id, self.opened_here) {
            (Some(id), true) => Some(id),
            _ => None,
        }
    }
}

fn parse_mask(mask: Option<&DocumentMask>) -> Result<Option<Vec<FieldPath>>, ServerError> {
    mask.map(|mask| {
        mask.field_paths
            .iter()
            .map(|path| FieldPath::parse(path))
            .collect::<Result<Vec<_>, _>>()
    })
    .transpose()
}

/// `GET` of one document.
pub fn get_document(
    store: &Store,
    name: &DocumentName,
    mask: Option<Vec<FieldPath>>,
    transaction: Option<String>,
    read_time: Option<Timestamp>,
    owner: Option<&TransactionOwner>,
) -> Result<serde_json::Value, ServerError> {
    let database = DatabaseId {
        project: name.project.clone(),
        database: name.database.clone(),
    };
    let read = open_read_transaction(store, &database, owner, transaction, None, read_time)?;
    let document = store.read_snapshot(|snapshot| Ok(snapshot.get_document(name)?))?;
    read.record(store, &database, || {
        vec![RecordedRead::Document {
            name: name.clone(),
            update_time: document.as_ref().map(|document| document.update_time),
        }]
    })?;
    let Some(mut stored) = document else {
        return Err(ServerError::NotFound(format!(
            "Document \"{name}\" not found."
        )));
    };
    if let Some(paths) = &mask {
        stored.fields = project_fields(&stored.fields, paths);
    }
    Ok(serde_json::to_value(stored.into_wire(name.to_string())).unwrap_or_default())
}

/// `:batchGet`. Names of another database are answered `missing`, as on the emulator: nothing
/// of another project is ever read.
pub fn batch_get(
    store: &Store,
    database: &DatabaseId,
    request: BatchGetRequest,
    owner: Option<&TransactionOwner>,
) -> Result<Vec<serde_json::Value>, ServerError> {
    let mask = parse_mask(request.mask.as_ref())?;
    let mut names: Vec<DocumentName> = Vec::new();
    for text in &request.documents {
        let name = DocumentName::parse(text)
            .map_err(|error| ServerError::invalid_name("document name", error))?;
        if !name.is_document() {
            return Err(ServerError::InvalidArgument(format!(
                "Document name \"{text}\" lacks \"/\" at index {}.",
                text.len()
            )));
        }
        if !names.contains(&name) {
            names.push(name);
        }
    }
    let read = open_read_transaction(
        store,
        database,
        owner,
        request.transaction,
        request.new_transaction,
        request.read_time,
    )?;
    let (found, read_time) = store.read_snapshot(|snapshot| {
        let mut found = Vec::with_capacity(names.len());
        for name in &names {
            let document = if database.contains(name) {
                snapshot.get_document(name)?
            } else {
                None
            };
            found.push(document);
        }
        Ok((found, snapshot.read_time()))
    })?;
    read.record(store, database, || {
        names
            .iter()
            .zip(&found)
            .filter(|(name, _)| database.contains(name))
            .map(|(name, document)| RecordedRead::Document {
                name: name.clone(),
                update_time: document.as_ref().map(|document| document.update_time),
            })
            .collect()
    })?;
    let mut items: Vec<serde_json::Value> = read.leading_item().into_iter().collect();
    for (name, document) in names.iter().zip(found) {
        items.push(match document {
            Some(mut stored) => {
                if let Some(paths) = &mask {
                    stored.fields = project_fields(&stored.fields, paths);
                }
                json!({"found": stored.into_wire(name.to_string()), "readTime": read_time})
            }
            None => json!({"missing": name.to_string(), "readTime": read_time}),
        });
    }
    Ok(items)
}

/// Runs a query in a snapshot and registers it with the transaction, if any.
fn query_in_snapshot(
    store: &Store,
    database: &DatabaseId,
    parent: &DocumentName,
    prepared: &PreparedQuery,
    read: &ReadTransaction,
) -> Result<(QueryRun, Timestamp), ServerError> {
    let (run, read_time) = store.read_snapshot(|snapshot: &ReadSnapshot<'_>| {
        Ok((
            evaluate_query(snapshot, parent, prepared)?,
            snapshot.read_time(),
        ))
    })?;
    read.record(store, database, || {
        vec![RecordedRead::Query {
            parent: parent.clone(),
            query: Box::new(prepared.clone()),
            results: result_versions(&run.documents),
        }]
    })?;
    Ok((run, read_time))
}

/// `:runQuery`, answered as the JSON text of its array of items. The items are written
/// straight to text, not through `serde_json::Value` trees: a first sync's pages of 500
/// products spent most of their time building and dropping those trees (allocation, B-tree
/// inserts and frees; perf on counterbook-server, 2 December 2026).
pub fn run_query(
    store: &Store,
    database: &DatabaseId,
    parent: &DocumentName,
    request: RunQueryRequest,
    owner: Option<&TransactionOwner>,
) -> Result<String, ServerError> {
    let Some(structured_query) = request.structured_query else {
        return Err(ServerError::InvalidArgument(
            "Only structured queries are supported.".into(),
        ));
    };
    let prepared = prepare_query(structured_query)?;
    let read = open_read_transaction(
        store,
        database,
        owner,
        request.transaction,
        request.new_transaction,
        request.read_time,
    )?;
    let (run, read_time) = query_in_snapshot(store, database, parent, &prepared, &read)?;
    let mut items: Vec<RunQueryResponseItem> = run
        .documents
        .into_iter()
        .map(|document| RunQueryResponseItem {
            document: Some(prepared.project(document)),
            read_time: Some(read_time),
            ..RunQueryResponseItem::default()
        })
        .collect();
    // Like the emulator: every item but the last reports the skipped results, and the last
    // (which says `done`) never does, nor does the lone item of an empty result.
    let skipped_results = i32::try_from(run.skipped_results).unwrap_or(i32::MAX);
    for item in &mut items {
        item.skipped_results = skipped_results;
    }
    match items.last_mut() {
        Some(last) => {
            last.skipped_results = 0;
            last.done = true;
        }
        None => items.push(RunQueryResponseItem {
            read_time: Some(read_time),
            done: true,
            ..RunQueryResponseItem::default()
        }),
    }
    // A transaction opened for the query comes first, as an item of its own.
    let leading = read
        .transaction_opened_here()
        .map(|id| RunQueryResponseItem {
            transaction: Some(id.to_owned()),
            ..RunQueryResponseItem::default()
        });
    let reply: Vec<&RunQueryResponseItem> = leading.iter().chain(&items).collect();
    serde_json::to_string(&reply).map_err(ServerError::EncodeReply)
}

/// `:runAggregationQuery`.
pub fn run_aggregation_query(
    store: &Store,
    database: &DatabaseId,
    parent: &DocumentName,
    request: RunAggregationQueryRequest,
    owner: Option<&TransactionOwner>,
) -> Result<Vec<serde_json::Value>, ServerError> {
    let Some(aggregation_query) = request.structured_aggregation_query else {
        return Err(ServerError::InvalidArgument(
            "Only structured aggregation queries are supported.".into(),
        ));
    };
    let aggregations = prepare_aggregations(&aggregation_query.aggregations)?;
    let structured_query = aggregation_query.structured_query.unwrap_or_default();
    // The emulator answers a projection beside summed fields before anything else.
    if let Some(projection) = &structured_query.select {
        let paths: Result<Vec<FieldPath>, _> = projection
            .fields
            .iter()
            .map(|field| FieldPath::parse_for_query(&field.field_path))
            .collect();
        if let Ok(paths) = paths {
            PreparedQuery::check_projection_for_aggregations(
                Some(&paths),
                &aggregations.required_fields(),
            )?;
        }
    }
    let mut prepared = prepare_query(structured_query)?;
    prepared.check_aggregated_fields(&aggregations.required_fields())?;
    prepared.require_fields(aggregations.required_fields());
    let read = open_read_transaction(
        store,
        database,
        owner,
        request.transaction,
        request.new_transaction,
        request.read_time,
    )?;
    let (run, read_time) = query_in_snapshot(store, database, parent, &prepared, &read)?;
    let fields: Vec<_> = run
        .documents
        .iter()
        .map(|document| &document.stored.fields)
        .collect();
    let result = aggregations.compute(&fields);
    let mut reply: Vec<serde_json::Value> = read.leading_item().into_iter().collect();
    reply.push(json!({
        "result": {"aggregateFields": result},
        "readTime": read_time,
        "done": true
    }));
    Ok(reply)
}

/// The query-string parameters of a list.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ListParameters {
    pub page_size: Option<i64>,
    pub page_token: Option<String>,
    pub order_by: Option<String>,
    pub mask: Option<Vec<FieldPath>>,
    pub show_missing: bool,
    pub transaction: Option<String>,
    pub read_time: Option<Timestamp>,
}

/// `orderBy=a desc, b` → orders; Firestore's list syntax.
fn parse_list_order(text: &str) -> Result<Vec<Order>, ServerError> {
    let invalid = || ServerError::InvalidArgument(format!("Invalid order by clause \"{text}\"."));
    text.split(',')
        .map(|clause| {
            let words: Vec<&str> = clause.split_whitespace().collect();
            let (path, direction) = match words.as_slice() {
                [path] => (*path, Direction::Ascending),
                [path, direction] if direction.eq_ignore_ascii_case("asc") => {
                    (*path, Direction::Ascending)
                }
                [path, direction] if direction.eq_ignore_ascii_case("desc") => {
                    (*path, Direction::Descending)
                }
                _ => return Err(invalid()),
            };
            FieldPath::parse(path).map_err(|_| invalid())?;
            Ok(Order {
                field: FieldReference::new(path),
                direction: Some(direction),
            })
        })
        .collect()
}

fn decode_page_token(token: &str) -> Result<Vec<Value>, ServerError> {
    decode_base64(token)
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .ok_or_else(|| ServerError::InvalidArgument("invalid page token".into()))
}

/// `GET` of a collection: its documents in `orderBy` order (by name by default), a page at a
/// time. A page token is the last document's position, so pages stay correct while documents
/// are added or removed between them.
pub fn list_documents(
    store: &Store,
    database: &DatabaseId,
    collection: &DocumentName,
    parameters: ListParameters,
    owner: Option<&TransactionOwner>,
) -> Result<serde_json::Value, ServerError> {
    if parameters.show_missing {
        return Err(ServerError::Unimplemented(
            "showMissing is not supported: this server keeps no record of missing documents \
             with subcollections"
                .into(),
        ));
    }
    if parameters.page_size.is_some_and(|size| size < 0) {
        return Err(ServerError::InvalidArgument(
            "Page size must be nonnegative.".into(),
        ));
    }
    let order_by = match &parameters.order_by {
        Some(text) if !text.trim().is_empty() => parse_list_order(text)?,
        _ => Vec::new(),
    };
    let collection_id = collection.id().unwrap_or_default().to_owned();
    let parent = DocumentName {
        project: collection.project.clone(),
        database: collection.database.clone(),
        segments: collection.segments[..collection.segments.len() - 1].to_vec(),
    };
    let mut prepared = prepare_query(StructuredQuery {
        from: vec![counterbook_firestore_wire::CollectionSelector {
            collection_id,
            all_descendants: false,
        }],
        order_by,
        ..StructuredQuery::default()
    })?;
    let page_size = parameters
        .page_size
        .filter(|size| *size > 0)
        .map(|size| size as usize);
    prepared.set_page(0, page_size);
    prepared.set_projection(parameters.mask);
    if let Some(token) = &parameters.page_token {
        if !token.is_empty() {
            prepared.start_after(decode_page_token(token)?);
        }
    }
    let read = open_read_transaction(
        store,
        database,
        owner,
        parameters.transaction,
        None,
        parameters.read_time,
    )?;
    let (run, _) = query_in_snapshot(store, database, &parent, &prepared, &read)?;
    let next_page_token = match (page_size, run.positions.last()) {
        (Some(size), Some(last)) if run.documents.len() == size => Some(encode_base64(
            serde_json::to_string(last).unwrap_or_default().as_bytes(),
        )),
        _ => None,
    };
    let documents: Vec<_> = run
        .documents
        .into_iter()
        .map(|document| prepared.project(document))
        .collect();
    let mut reply = serde_json::Map::new();
    if !documents.is_empty() {
        reply.insert(
            "documents".into(),
            serde_json::to_value(documents).unwrap_or_default(),
        );
    }
    if let Some(token) = next_page_token {
        reply.insert("nextPageToken".into(), token.into());
    }
    Ok(serde_json::Value::Object(reply))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::StoredDocument;
    use counterbook_firestore_wire::{DocumentName, StructuredQuery};
    use serde_json::json;
    use std::collections::BTreeMap;

    /// A small seeded generator (SplitMix64), so failures replay.
    struct SplitMix64(u64);

    impl SplitMix64 {
        fn next(&mut self) -> u64 {
            self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = self.0;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            z ^ (z >> 31)
        }

        fn below(&mut self, bound: u64) -> u64 {
            self.next() % bound
        }
    }

    fn random_value(random: &mut SplitMix64) -> Value {
        match random.below(9) {
            0 => Value::Integer(random.below(20) as i64 - 10),
            1 => Value::Double((random.below(40) as f64 - 20.0) / 4.0),
            2 => Value::Integer(i64::MAX - random.below(3) as i64),
            3 => Value::String(["", "a", "ab", "b", "é"][random.below(5) as usize].into()),
            4 => Value::Timestamp(Timestamp::from_unix_micros(
                random.below(10) as i64 * 1_000_000,
            )),
            5 => Value::Boolean(random.below(2) == 1),
            6 => Value::Null,
            7 => Value::Double(if random.below(2) == 0 {
                f64::NAN
            } else {
                f64::INFINITY
            }),
            _ => Value::Array(vec![Value::Integer(1)]),
        }
    }

    fn parent() -> DocumentName {
        DocumentName::new("p", "(default)", "shops/s").unwrap()
    }

    fn store_with(documents: &[(String, BTreeMap<String, Value>)]) -> (tempfile::TempDir, Store) {
        let directory = tempfile::tempdir().unwrap();
        let store = Store::open(directory.path()).unwrap();
        store
            .write_transaction(|transaction| {
                for (id, fields) in documents {
                    let name = DocumentName::new("p", "(default)", &format!("shops/s/items/{id}"))
                        .unwrap();
                    transaction.put_document(
                        &name,
                        &StoredDocument {
                            fields: fields.clone(),
                            ..StoredDocument::default()
                        },
                    )?;
                }
                Ok(())
            })
            .unwrap();
        (directory, store)
    }

    fn names(documents: &[NamedDocument]) -> Vec<String> {
        documents
            .iter()
            .map(|document| document.name.clone())
            .collect()
    }

    /// Runs `query` through the planner (index when it applies) and by scanning everything,
    /// and checks both give the same documents; returns (plan used?, documents examined).
    fn check_same_as_scan(store: &Store, query: serde_json::Value) -> (bool, usize) {
        let structured: StructuredQuery = serde_json::from_value(query.clone()).unwrap();
        let prepared = prepare_query(structured).unwrap();
        let (planned, scanned) = store
            .read_snapshot(|snapshot| {
                let planned = evaluate_query(snapshot, &parent(), &prepared)?;
                let everything = snapshot.documents_in_collection(&parent(), "items")?;
                Ok((planned, prepared.execute(everything)))
            })
            .unwrap();
        let scanned_names: Vec<String> = scanned
            .documents
            .iter()
            .map(|document| document.name.clone())
            .collect();
        assert_eq!(names(&planned.documents), scanned_names, "{query}");
        assert_eq!(planned.skipped_results, scanned.skipped_results, "{query}");
        (prepared.index_plan().is_some(), planned.documents_examined)
    }

    #[test]
    fn index_plans_answer_exactly_like_a_scan_on_random_documents() {
        let mut random = SplitMix64(20_261_122);
        let operators = [
            "LESS_THAN",
            "LESS_THAN_OR_EQUAL",
            "GREATER_THAN",
            "GREATER_THAN_OR_EQUAL",
            "EQUAL",
        ];
        let mut planned_queries = 0;
        for _round in 0..12 {
            let documents: Vec<(String, BTreeMap<String, Value>)> = (0..60)
                .map(|index| {
                    let mut fields = BTreeMap::new();
                    if random.below(6) != 0 {
                        fields.insert("v".to_owned(), random_value(&mut random));
                    }
                    fields.insert("w".to_owned(), Value::Integer(random.below(3) as i64));
                    (format!("d{:02}", random.below(100) * 100 + index), fields)
                })
                .collect();
            let (_directory, store) = store_with(&documents);
            for _query in 0..40 {
                let operand = random_value(&mut random);
                let operator = operators[random.below(5) as usize];
                let direction = if random.below(2) == 0 {
                    "ASCENDING"
                } else {
                    "DESCENDING"
                };
                let mut query = json!({
                    "from": [{"collectionId": "items"}],
                    "where": {"fieldFilter": {"field": {"fieldPath": "v"}, "op": operator, "value": operand}},
                    "orderBy": [{"field": {"fieldPath": "v"}, "direction": direction}],
                });
                if random.below(2) == 0 {
                    query["limit"] = json!(random.below(8));
                }
                if random.below(3) == 0 {
                    query["offset"] = json!(random.below(3));
                }
                if random.below(3) == 0 {
                    query["startAt"] = json!({"values": [random_value(&mut random)], "before": random.below(2) == 0});
                }
                if random.below(4) == 0 {
                    query["where"] = json!({"compositeFilter": {"op": "AND", "filters": [
                        query["where"].clone(),
                        {"fieldFilter": {"field": {"fieldPath": "w"}, "op": "EQUAL", "value": {"integerValue": "1"}}}
                    ]}});
                }
                if random.below(5) == 0 {
                    query["orderBy"] = json!([{"field": {"fieldPath": "w"}}]);
                }
                let (used_plan, _) = check_same_as_scan(&store, query);
                planned_queries += usize::from(used_plan);
            }
        }
        assert!(
            planned_queries > 200,
            "only {planned_queries} queries used the index"
        );
    }

    #[test]
    fn the_checkpoint_query_reads_a_page_not_the_collection() {
        let at = |second: i64| Value::Timestamp(Timestamp::from_unix_micros(second * 1_000_000));
        let documents: Vec<(String, BTreeMap<String, Value>)> = (0..1000)
            .map(|index| {
                let fields = BTreeMap::from([("updatedAt".to_owned(), at(index / 4))]);
                (format!("p{index:04}"), fields)
            })
            .collect();
        let (_directory, store) = store_with(&documents);
        let checkpoint = serde_json::to_value(at(100)).unwrap();
        let cursor_name = format!("{}/items/p0401", parent());
        let (used_plan, examined) = check_same_as_scan(
            &store,
            json!({
                "from": [{"collectionId": "items"}],
                "where": {"fieldFilter": {"field": {"fieldPath": "updatedAt"}, "op": "GREATER_THAN_OR_EQUAL", "value": checkpoint}},
                "orderBy": [{"field": {"fieldPath": "updatedAt"}}, {"field": {"fieldPath": "__name__"}}],
                "startAt": {"values": [checkpoint, {"referenceValue": cursor_name}]},
                "limit": 100
            }),
        );
        assert!(used_plan);
        // p0400..p0403 share the cursor's time: at most those are read and skipped.
        assert!(
            examined <= 104,
            "{examined} documents read for a page of 100"
        );
        let (_, scanned) = check_same_as_scan(
            &store,
            json!({"from": [{"collectionId": "items"}], "where": {"fieldFilter": {"field": {"fieldPath": "updatedAt"}, "op": "EQUAL", "value": {"integerValue": "1"}}}, "limit": 5}),
        );
        assert_eq!(
            scanned, 0,
            "no document has an integer updatedAt: nothing is read"
        );
    }

    #[test]
    fn the_index_follows_updates_and_deletes() {
        let (_directory, store) = store_with(&[(
            "a".to_owned(),
            BTreeMap::from([("v".to_owned(), Value::Integer(1))]),
        )]);
        let name = DocumentName::new("p", "(default)", "shops/s/items/a").unwrap();
        let query = json!({"from": [{"collectionId": "items"}],
            "where": {"fieldFilter": {"field": {"fieldPath": "v"}, "op": "EQUAL", "value": {"integerValue": "1"}}}});
        let count = |store: &Store| {
            let prepared = prepare_query(serde_json::from_value(query.clone()).unwrap()).unwrap();
            store
                .read_snapshot(|snapshot| evaluate_query(snapshot, &parent(), &prepared))
                .unwrap()
                .documents
                .len()
        };
        assert_eq!(count(&store), 1);
        store
            .write_transaction(|transaction| {
                let fields = BTreeMap::from([("v".to_owned(), Value::Integer(2))]);
                transaction.put_document(
                    &name,
                    &StoredDocument {
                        fields,
                        ..StoredDocument::default()
                    },
                )?;
                Ok(())
            })
            .unwrap();
        assert_eq!(count(&store), 0, "the old value's index row is gone");
        store
            .write_transaction(|transaction| {
                let fields = BTreeMap::from([("v".to_owned(), Value::Double(1.0))]);
                transaction.put_document(
                    &name,
                    &StoredDocument {
                        fields,
                        ..StoredDocument::default()
                    },
                )?;
                Ok(())
            })
            .unwrap();
        assert_eq!(count(&store), 1, "1.0 == 1 through the index");
        store
            .write_transaction(|transaction| Ok(transaction.delete_document(&name)?))
            .unwrap();
        assert_eq!(count(&store), 0);
    }
}
