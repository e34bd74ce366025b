//! Conflicts (DESIGN.md section 6): the field-level three-way merge of a pending local edit with
//! the server's newer version, the shop's rules about bills, and the business-rule checks on
//! pulled documents. Everything here is a pure function of its arguments.
//!
//! The rules, in the order they apply to one write of a unit whose precondition failed:
//! - A bill that is `void` on the server takes no more changes: the local write is rejected,
//!   and with it the whole unit (a second void's compensating stock movements must not apply).
//!   A void racing an edit is therefore resolved by the void, whichever came first.
//! - A bill that is `final` on the server takes nothing but a void: any other change is rejected.
//! - A local void always wins the `status` field, whatever the server did to it.
//! - Every other field: changed only locally, the local value is written; changed only on the
//!   server, the server's value stays; changed on both sides to different values, the server's
//!   order wins: the value already there (the last write to reach the server) stays, and the
//!   local value goes to the conflict inbox, from which the user can re-apply it
//!   ([`ConflictEntry::reapply`]).
//! - Counter increments are kept untouched: increments commute, so counters never conflict.
//!
//! A unit is atomic, so if any of its writes is rejected the whole unit is rejected and nothing
//! of it is sent; the inbox says why.

use std::collections::{BTreeMap, BTreeSet};

use counterbook_firestore_wire::{map_by_insertion, Document, DocumentName, Value};
use serde::{Deserialize, Serialize};

use crate::unit::{BaseVersion, DocumentWrite, Unit, UnitId};

/// The field holding a bill's `draft | final | void` status.
pub const STATUS: &str = "status";
pub const STATUS_FINAL: &str = "final";
pub const STATUS_VOID: &str = "void";

/// What kind of conflict an inbox entry records. The names match the app's inbox records.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum ConflictKind {
    /// A field changed here and on the server to different values; the server's value stayed.
    Field,
    /// A change to a bill that was voided on another device meanwhile; not applied.
    BillVoided,
    /// A change to a bill that was finalized meanwhile; final bills are never edited.
    FinalBill,
    /// An edit of a document that no longer exists on the server.
    DocumentMissing,
    /// A counter that must not go below zero did after sync (stock sold twice over).
    Oversold,
    /// A customer's balance is above their credit limit after sync.
    CreditLimit,
}

/// One entry of the conflict inbox: a change that lost, or a business rule broken after sync.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ConflictEntry {
    /// Stable, so that recording the same conflict twice (after a restart, or on every pull of
    /// an oversold product) keeps one entry.
    pub id: String,
    pub kind: ConflictKind,
    /// The document, relative to the database root.
    pub path: String,
    /// The unit whose change lost, if a local change lost.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unit_id: Option<UnitId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// The value that lost (`None`: the local change deleted the field).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub local_value: Option<Value>,
    /// The value the server kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_value: Option<Value>,
    /// A sentence for the shopkeeper.
    pub explanation: String,
}

impl ConflictEntry {
    /// The edit that re-applies the losing value on top of the server's version `base` (the
    /// user's "use mine"). `None` for entries that carry no field value to re-apply.
    pub fn reapply(&self, base: Option<BaseVersion>) -> Option<DocumentWrite> {
        if self.kind != ConflictKind::Field {
            return None;
        }
        let field = self.field.clone()?;
        let fields = map_by_insertion(self.local_value.clone().map(|value| (field.clone(), value)));
        Some(DocumentWrite {
            mask: Some(vec![field]),
            ..DocumentWrite::patch(self.path.clone(), fields, base)
        })
    }
}

/// What became of one local write merged with the server's version.
#[derive(Clone, Debug, PartialEq)]
pub enum WriteMerge {
    /// Send this instead (rebased on the server's version), or nothing if no change is left.
    Rebased {
        write: Option<DocumentWrite>,
        conflicts: Vec<ConflictEntry>,
    },
    /// The write cannot apply, so neither can its unit.
    Rejected(ConflictEntry),
}

/// Merges `local` (a write whose base is older than the server's version) with `server` (the
/// document as read now, `None` if it does not exist) against `local.base`.
pub fn merge_write(unit_id: &str, local: &DocumentWrite, server: Option<&Document>) -> WriteMerge {
    let entry = |kind: ConflictKind, field: Option<&str>, explanation: String| ConflictEntry {
        id: match field {
            Some(field) => format!("{unit_id}/{}/{field}", local.path),
            None => format!("{unit_id}/{}", local.path),
        },
        kind,
        path: local.path.clone(),
        unit_id: Some(unit_id.to_owned()),
        field: field.map(str::to_owned),
        local_value: None,
        server_value: None,
        explanation,
    };
    let Some(server) = server else {
        if local.mask.is_none() && local.base.is_none() {
            // A creation: nothing to merge with.
            return WriteMerge::Rebased {
                write: Some(local.clone()),
                conflicts: Vec::new(),
            };
        }
        return WriteMerge::Rejected(entry(
            ConflictKind::DocumentMissing,
            None,
            "this was deleted on another device, so your change was not applied".into(),
        ));
    };
    let empty = BTreeMap::new();
    let base_fields = local.base.as_ref().map_or(&empty, |base| &base.fields);
    let local_value = |path: &str| local.fields.get(path);
    let server_status = server.fields.get(STATUS).and_then(Value::as_str);
    let changed = local.changed_field_paths();
    let mut really_changed = BTreeSet::new();
    really_changed.extend(
        changed
            .iter()
            .filter(|path| local_value(path) != base_fields.get(*path)),
    );
    let local_voids = changed.contains(STATUS)
        && local_value(STATUS).and_then(Value::as_str) == Some(STATUS_VOID);

    if server_status == Some(STATUS_VOID)
        && (!really_changed.is_empty() || !local.increments.is_empty())
    {
        let explanation = if local_voids {
            "this bill was already voided on another device; it was not voided twice".into()
        } else {
            "this bill was voided on another device, so your change was not applied".into()
        };
        return WriteMerge::Rejected(entry(ConflictKind::BillVoided, None, explanation));
    }
    if server_status == Some(STATUS_FINAL) {
        let only_voids = really_changed
            .iter()
            .all(|path| path.as_str() == STATUS && local_voids);
        if !only_voids || !local.increments.is_empty() {
            return WriteMerge::Rejected(entry(
                ConflictKind::FinalBill,
                None,
                "this bill was finalized on another device; a final bill is never edited".into(),
            ));
        }
    }

    let mut kept_fields = BTreeMap::new();
    let mut kept_paths = Vec::new();
    let mut conflicts = Vec::new();
    for path in changed {
        let mine = local_value(&path);
        let base = base_fields.get(&path);
        let theirs = server.fields.get(&path);
        let keep_mine = if path == STATUS && local_voids {
            // Void wins over any edit of the bill.
            theirs != mine
        } else if mine == base || mine == theirs {
            false
        } else if theirs == base {
            true
        } else {
            conflicts.push(ConflictEntry {
                local_value: mine.cloned(),
                server_value: theirs.cloned(),
                ..entry(
                    ConflictKind::Field,
                    Some(&path),
                    format!(
                        "`{path}` was also changed on another device; its value was kept and \
                         yours can be applied again from here"
                    ),
                )
            });
            false
        };
        if keep_mine {
            if let Some(value) = mine {
                kept_fields.insert(path.clone(), value.clone());
            }
            kept_paths.push(path);
        }
    }
    let write = (!kept_paths.is_empty() || !local.increments.is_empty()).then(|| DocumentWrite {
        path: local.path.clone(),
        fields: kept_fields,
        mask: Some(kept_paths),
        increments: local.increments.clone(),
        base: BaseVersion::of_document(server),
    });
    WriteMerge::Rebased { write, conflicts }
}

/// What became of a unit whose commit failed a precondition, after merging each of its writes.
#[derive(Clone, Debug, PartialEq)]
pub enum UnitMerge {
    /// Nothing of it was stale: send it again as it is.
    Unchanged,
    /// Send this version instead; record the conflicts.
    Rebased {
        unit: Unit,
        conflicts: Vec<ConflictEntry>,
    },
    /// Nothing of the unit is sent; the inbox says why.
    Rejected { conflicts: Vec<ConflictEntry> },
}

/// Merges every stale write of `unit` with the server's current documents (`server`, by path;
/// `None` for a document that does not exist; paths not in the map are taken as unchanged).
pub fn merge_unit(unit: &Unit, server: &BTreeMap<String, Option<Document>>) -> UnitMerge {
    let mut writes = Vec::new();
    let mut conflicts = Vec::new();
    let mut stale = false;
    for write in &unit.writes {
        let Some(required) = write.required_update_time() else {
            writes.push(write.clone());
            continue;
        };
        let Some(current) = server.get(&write.path) else {
            writes.push(write.clone());
            continue;
        };
        let current_time = current.as_ref().and_then(BaseVersion::of_document);
        if current_time.as_ref().map(|base| base.update_time) == Some(required) {
            writes.push(write.clone());
            continue;
        }
        stale = true;
        match merge_write(&unit.id, write, current.as_ref()) {
            WriteMerge::Rebased {
                write,
                conflicts: found,
            } => {
                writes.extend(write);
                conflicts.extend(found);
            }
            WriteMerge::Rejected(entry) => {
                return UnitMerge::Rejected {
                    conflicts: vec![entry],
                }
            }
        }
    }
    if !stale {
        return UnitMerge::Unchanged;
    }
    UnitMerge::Rebased {
        unit: Unit {
            writes,
            ..unit.clone()
        },
        conflicts,
    }
}

/// Checks a new unit against the server versions its own edits started from: a void of a bill
/// that version already shows void, or an edit of a final bill, is rejected before it is ever
/// sent. Without this, a tablet whose screen still showed a bill as final (a pending unit laid
/// over a newer pulled version) could void it a second time with an up-to-date base version,
/// and its compensating stock movements would apply twice.
pub fn check_unit_against_bases(unit: &Unit) -> Option<ConflictEntry> {
    for write in &unit.writes {
        let Some(base) = &write.base else { continue };
        let base_status = base.fields.get(STATUS).and_then(Value::as_str);
        let names_status = write.changed_field_paths().contains(STATUS);
        let voids =
            names_status && write.fields.get(STATUS).and_then(Value::as_str) == Some(STATUS_VOID);
        let changes_other_fields = write
            .changed_field_paths()
            .iter()
            .any(|path| path != STATUS)
            || !write.increments.is_empty();
        let (kind, explanation) = match base_status {
            Some(STATUS_VOID) if write.sets_fields() || !write.increments.is_empty() => (
                ConflictKind::BillVoided,
                if voids {
                    "this bill was already voided; it was not voided twice"
                } else {
                    "this bill was voided, so your change was not applied"
                },
            ),
            Some(STATUS_FINAL) if changes_other_fields || (names_status && !voids) => (
                ConflictKind::FinalBill,
                "a final bill is never edited; only a void can change it",
            ),
            _ => continue,
        };
        return Some(ConflictEntry {
            id: format!("{}/{}", unit.id, write.path),
            kind,
            path: write.path.clone(),
            unit_id: Some(unit.id.clone()),
            field: None,
            local_value: None,
            server_value: None,
            explanation: explanation.into(),
        });
    }
    None
}

/// Which counters must stay at or above zero, and which balances must stay within a limit.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BusinessRules {
    /// `(collection id, counter field)`: "oversold" when below zero.
    pub non_negative_counters: Vec<(String, String)>,
    /// `(collection id, balance field, limit field)`: "over credit limit" when balance > limit.
    pub credit_limits: Vec<(String, String, String)>,
}

impl Default for BusinessRules {
    fn default() -> Self {
        BusinessRules {
            non_negative_counters: vec![("products".into(), "stock".into())],
            credit_limits: vec![(
                "customers".into(),
                "creditBalance".into(),
                "creditLimit".into(),
            )],
        }
    }
}

impl BusinessRules {
    /// The inbox entries a pulled document raises. Their ids name the document version, so the
    /// same version pulled again raises nothing new, and a later sale raises a fresh entry.
    pub fn check(&self, document: &Document) -> Vec<ConflictEntry> {
        let Ok(name) = DocumentName::parse(&document.name) else {
            return Vec::new();
        };
        let Some(collection) = name.collection_id() else {
            return Vec::new();
        };
        let path = name.relative_path();
        let version = BaseVersion::of_document(document)
            .map(|base| base.update_time.to_unix_micros())
            .unwrap_or_default();
        let integer = |field: &str| document.fields.get(field).and_then(Value::as_integer);
        let mut entries = Vec::new();
        for (rule_collection, counter) in &self.non_negative_counters {
            if rule_collection != collection {
                continue;
            }
            if let Some(value) = integer(counter).filter(|value| *value < 0) {
                entries.push(ConflictEntry {
                    id: format!("oversold/{path}/{counter}/{version}"),
                    kind: ConflictKind::Oversold,
                    path: path.clone(),
                    unit_id: None,
                    field: Some(counter.clone()),
                    local_value: None,
                    server_value: Some(Value::Integer(value)),
                    explanation: format!(
                        "oversold: `{counter}` is {value} after every tablet's sales were counted"
                    ),
                });
            }
        }
        for (rule_collection, balance, limit) in &self.credit_limits {
            if rule_collection != collection {
                continue;
            }
            if let (Some(owed), Some(allowed)) = (integer(balance), integer(limit)) {
                if owed > allowed {
                    entries.push(ConflictEntry {
                        id: format!("creditLimit/{path}/{version}"),
                        kind: ConflictKind::CreditLimit,
                        path: path.clone(),
                        unit_id: None,
                        field: Some(balance.clone()),
                        local_value: None,
                        server_value: Some(Value::Integer(owed)),
                        explanation: format!("over the credit limit: owes {owed}, limit {allowed}"),
                    });
                }
            }
        }
        entries
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use counterbook_firestore_wire::Timestamp;

    const PATH: &str = "shops/s1/products/p1";

    fn value(text: &str) -> Value {
        match text.parse::<i64>() {
            Ok(number) => Value::Integer(number),
            Err(_) => Value::String(text.to_owned()),
        }
    }

    /// `"price=10 name=Tea"` as fields.
    fn fields(spec: &str) -> BTreeMap<String, Value> {
        spec.split_whitespace()
            .map(|pair| {
                let (key, text) = pair.split_once('=').expect("key=value");
                (key.to_owned(), value(text))
            })
            .collect()
    }

    fn server(spec: &str, micros: i64) -> Document {
        Document {
            name: format!("projects/p/databases/(default)/documents/{PATH}"),
            fields: fields(spec),
            update_time: Some(Timestamp::from_unix_micros(micros)),
            ..Document::default()
        }
    }

    /// An edit of the version `base` (at time 1) setting the fields of `local`.
    fn edit(base: &str, local: &str) -> DocumentWrite {
        DocumentWrite::patch(
            PATH,
            fields(local),
            Some(BaseVersion {
                update_time: Timestamp::from_unix_micros(1),
                fields: fields(base),
            }),
        )
    }

    /// Merges an edit of `base` setting `local` with the server's `theirs` (at time 2) and
    /// checks the fields that are still sent and the fields that went to the inbox.
    fn check(base: &str, local: &str, theirs: &str, expected_sent: &str, expected_inbox: &[&str]) {
        let merged = merge_write("u1", &edit(base, local), Some(&server(theirs, 2)));
        let WriteMerge::Rebased { write, conflicts } = merged else {
            panic!("rejected: {merged:?}");
        };
        let sent = write.map(|w| w.fields).unwrap_or_default();
        assert_eq!(sent, fields(expected_sent), "sent");
        let inbox: Vec<String> = conflicts
            .iter()
            .map(|entry| {
                format!(
                    "{}: mine {:?} kept {:?}",
                    entry.field.as_deref().unwrap_or(""),
                    entry.local_value,
                    entry.server_value
                )
            })
            .collect();
        let expected: Vec<String> = expected_inbox.iter().map(|s| s.to_string()).collect();
        assert_eq!(inbox, expected, "inbox");
    }

    fn check_rejected(base: &str, local: &str, theirs: &str, expected_kind: ConflictKind) {
        match merge_write("u1", &edit(base, local), Some(&server(theirs, 2))) {
            WriteMerge::Rejected(entry) => assert_eq!(entry.kind, expected_kind),
            other => panic!("expected a rejection, got {other:?}"),
        }
    }

    #[test]
    fn fields_changed_on_one_side_only_merge() {
        check(
            "price=10 name=Tea",
            "price=12",
            "price=10 name=Chai",
            "price=12",
            &[],
        );
        check(
            "price=10 name=Tea",
            "name=Tea",
            "price=15 name=Tea",
            "",
            &[],
        );
    }

    #[test]
    fn the_same_change_on_both_sides_is_no_conflict() {
        check("price=10", "price=12", "price=12", "", &[]);
    }

    #[test]
    fn a_field_changed_on_both_sides_keeps_the_servers_value_and_inboxes_mine() {
        check(
            "price=10 name=Tea",
            "price=12 name=Green",
            "price=15 name=Tea",
            "name=Green",
            &["price: mine Some(Integer(12)) kept Some(Integer(15))"],
        );
    }

    #[test]
    fn a_field_i_did_not_change_is_never_a_conflict_even_if_my_mask_names_it() {
        check(
            "price=10 name=Tea",
            "price=10 name=Green",
            "price=99 name=Tea",
            "name=Green",
            &[],
        );
    }

    #[test]
    fn counters_never_conflict_and_travel_on_with_the_new_base() {
        let mut local = edit("price=10 stock=5", "price=12");
        local.increments = BTreeMap::from([("stock".to_string(), -2)]);
        let merged = merge_write("u1", &local, Some(&server("price=15 stock=1", 2)));
        let WriteMerge::Rebased {
            write: Some(write),
            conflicts,
        } = merged
        else {
            panic!("{merged:?}")
        };
        assert_eq!(
            write.increments,
            BTreeMap::from([("stock".to_string(), -2)])
        );
        assert_eq!(write.mask, Some(vec![]));
        assert_eq!(conflicts.len(), 1, "the price clash");
        assert_eq!(
            write.base.unwrap().update_time,
            Timestamp::from_unix_micros(2),
            "rebased on the server's version"
        );
    }

    #[test]
    fn a_void_wins_over_an_edit_from_either_side() {
        // Mine is the void: it applies whatever the server changed.
        check(
            "status=draft note=a",
            "status=void",
            "status=draft note=b",
            "status=void",
            &[],
        );
        check(
            "status=final",
            "status=void",
            "status=final",
            "status=void",
            &[],
        );
        // Theirs is the void: my edit is dropped.
        check_rejected(
            "status=draft note=a",
            "note=c",
            "status=void note=a",
            ConflictKind::BillVoided,
        );
    }

    #[test]
    fn a_bill_is_never_voided_twice() {
        // Regression guard: two tablets voiding one bill must not both return its stock.
        check_rejected(
            "status=final",
            "status=void",
            "status=void",
            ConflictKind::BillVoided,
        );
    }

    #[test]
    fn a_final_bill_takes_no_edit_but_a_void() {
        check_rejected(
            "status=draft total=5",
            "total=6",
            "status=final total=5",
            ConflictKind::FinalBill,
        );
        check_rejected(
            "status=draft",
            "status=final",
            "status=final",
            ConflictKind::FinalBill,
        );
    }

    #[test]
    fn an_edit_of_a_vanished_document_is_rejected_but_a_creation_is_not() {
        match merge_write("u1", &edit("price=1", "price=2"), None) {
            WriteMerge::Rejected(entry) => assert_eq!(entry.kind, ConflictKind::DocumentMissing),
            other => panic!("{other:?}"),
        }
        let creation = DocumentWrite::create(PATH, fields("price=2"));
        assert!(matches!(
            merge_write("u1", &creation, None),
            WriteMerge::Rebased { write: Some(_), .. }
        ));
    }

    #[test]
    fn a_unit_with_one_rejected_write_is_rejected_whole() {
        let void = Unit {
            id: "u1".into(),
            label: "Void bill".into(),
            writes: vec![
                DocumentWrite {
                    path: "shops/s1/bills/b1".into(),
                    ..edit("status=final", "status=void")
                },
                DocumentWrite::increment(PATH, BTreeMap::from([("stock".to_string(), 2)])),
            ],
            created_at_millis: 0,
            sender: None,
        };
        let voided = Document {
            name: "projects/p/databases/(default)/documents/shops/s1/bills/b1".into(),
            ..server("status=void", 2)
        };
        let server_documents = BTreeMap::from([("shops/s1/bills/b1".to_string(), Some(voided))]);
        let UnitMerge::Rejected { conflicts } = merge_unit(&void, &server_documents) else {
            panic!("the compensating stock movement must not apply alone")
        };
        assert_eq!(conflicts[0].kind, ConflictKind::BillVoided);

        let unchanged = BTreeMap::from([(
            "shops/s1/bills/b1".to_string(),
            Some(server("status=final", 1)),
        )]);
        assert_eq!(merge_unit(&void, &unchanged), UnitMerge::Unchanged);
    }

    #[test]
    fn a_void_of_a_bill_whose_base_is_already_void_is_rejected_before_it_is_sent() {
        // Regression guard (simulation seed 299): a tablet showed a voided bill as final because
        // its own pending sale was laid over the newer pulled version; voiding it again with
        // that up-to-date base passed the precondition and returned the stock twice.
        let unit_with = |base: &str, local: &str| Unit {
            id: "u1".into(),
            label: "Void bill".into(),
            writes: vec![
                edit(base, local),
                DocumentWrite::increment(
                    "shops/s1/products/p2",
                    BTreeMap::from([("stock".to_string(), 1)]),
                ),
            ],
            created_at_millis: 0,
            sender: None,
        };
        let kind = |base: &str, local: &str| {
            check_unit_against_bases(&unit_with(base, local)).map(|entry| entry.kind)
        };
        assert_eq!(
            kind("status=void", "status=void"),
            Some(ConflictKind::BillVoided)
        );
        assert_eq!(kind("status=final", "status=void"), None);
        assert_eq!(
            kind("status=final", "total=3"),
            Some(ConflictKind::FinalBill)
        );
        assert_eq!(kind("status=draft", "total=3"), None);
    }

    #[test]
    fn the_losing_value_can_be_applied_again() {
        let merged = merge_write(
            "u1",
            &edit("price=10", "price=12"),
            Some(&server("price=15", 2)),
        );
        let WriteMerge::Rebased { conflicts, .. } = merged else {
            panic!()
        };
        let base = BaseVersion::of_document(&server("price=15", 2));
        let again = conflicts[0].reapply(base.clone()).unwrap();
        assert_eq!(again, DocumentWrite::patch(PATH, fields("price=12"), base));
    }

    #[test]
    fn oversold_stock_and_credit_over_the_limit_raise_inbox_entries() {
        let rules = BusinessRules::default();
        let check_rule = |name: &str, spec: &str, expected: &[ConflictKind]| {
            let document = Document {
                name: format!("projects/p/databases/(default)/documents/{name}"),
                ..server(spec, 2)
            };
            let kinds: Vec<ConflictKind> = rules.check(&document).iter().map(|e| e.kind).collect();
            assert_eq!(kinds, expected, "{name} {spec}");
        };
        check_rule("shops/s/products/p", "stock=-1", &[ConflictKind::Oversold]);
        check_rule("shops/s/products/p", "stock=0", &[]);
        check_rule("shops/s/bills/b", "stock=-1", &[]);
        check_rule(
            "shops/s/customers/c",
            "creditBalance=501 creditLimit=500",
            &[ConflictKind::CreditLimit],
        );
        check_rule(
            "shops/s/customers/c",
            "creditBalance=500 creditLimit=500",
            &[],
        );
    }
}
