//! Outbox state machine tests: each scenario feeds events and checks the commands, with a tiny
//! in-memory server that applies commits atomically and enforces the marker precondition.

use std::collections::{BTreeMap, BTreeSet};

use counterbook_firestore_wire::{Code, CommitRequest, Value, WriteOperation};
use counterbook_sync::{
    Command, DeadLetterReason, DocumentWrite, Event, Outbox, OutboxConfig, PushFailure, SplitMix64,
    Unit, UnitState,
};

const ROOT: &str = "projects/p/databases/(default)/documents/";

fn unit(n: u32) -> Unit {
    Unit {
        id: format!("0193a0b0-0000-7000-8000-{n:012}"),
        label: format!("Add product {n}").into(),
        writes: vec![DocumentWrite::create(
            format!("shops/s1/products/p{n}"),
            BTreeMap::from([("name".to_string(), Value::String(format!("Item {n}")))]),
        )],
        created_at_millis: 0,
        sender: None,
    }
}

/// Unit `n` setting the price of product `p{product}`.
fn price_edit(n: u32, product: u32, price: i64) -> Unit {
    Unit {
        id: format!("0193a0b0-0000-7000-8000-{n:012}"),
        label: format!("Price of {product}").into(),
        writes: vec![DocumentWrite::patch(
            format!("shops/s1/products/p{product}"),
            BTreeMap::from([("price".to_string(), Value::Integer(price))]),
            None,
        )],
        created_at_millis: 0,
        sender: None,
    }
}

/// The unit ids of every commit sent.
fn commands_sent(commands: &[Command]) -> Vec<&str> {
    commands
        .iter()
        .filter_map(|c| match c {
            Command::SendCommit { unit_id, .. } => Some(unit_id.as_str()),
            _ => None,
        })
        .collect()
}

/// The fields a commit writes to the document ending in `suffix`.
fn written_fields<'a>(request: &'a CommitRequest, suffix: &str) -> &'a BTreeMap<String, Value> {
    request
        .writes
        .iter()
        .find_map(|write| match &write.operation {
            WriteOperation::Update(document) if document.name.ends_with(suffix) => {
                Some(&document.fields)
            }
            _ => None,
        })
        .unwrap_or_else(|| panic!("no write to {suffix}"))
}

fn outbox() -> Outbox {
    Outbox::new(OutboxConfig::new("p", "s1", "device-A", 1))
}

fn server_error(code: Code, message: &str) -> PushFailure {
    PushFailure::Server {
        http_status: code.http_status(),
        code,
        message: message.into(),
        retry_after_millis: None,
    }
}

/// Applies commits like Firestore would: all writes or none; a marker that exists fails the
/// whole commit with ALREADY_EXISTS. Counts how many times each document was written.
#[derive(Default)]
struct FakeServer {
    documents: BTreeMap<String, BTreeMap<String, Value>>,
    writes_per_document: BTreeMap<String, u32>,
}

impl FakeServer {
    fn commit(&mut self, request: &CommitRequest) -> Result<(), PushFailure> {
        for write in &request.writes {
            if let (WriteOperation::Update(doc), Some(pre)) =
                (&write.operation, &write.current_document)
            {
                if pre.exists == Some(false) && self.documents.contains_key(&doc.name) {
                    return Err(server_error(Code::AlreadyExists, "entity already exists"));
                }
            }
        }
        for write in &request.writes {
            if let WriteOperation::Update(doc) = &write.operation {
                self.documents.insert(doc.name.clone(), doc.fields.clone());
                *self
                    .writes_per_document
                    .entry(doc.name.clone())
                    .or_default() += 1;
            }
        }
        Ok(())
    }

    fn has(&self, relative_path: &str) -> bool {
        self.documents
            .contains_key(&format!("{ROOT}{relative_path}"))
    }
}

fn sent_unit(commands: &[Command]) -> Option<(&str, &CommitRequest)> {
    commands.iter().find_map(|c| match c {
        Command::SendCommit { unit_id, request } => Some((unit_id.as_str(), request)),
        _ => None,
    })
}

#[test]
fn a_unit_is_sent_and_marked_done() {
    let mut outbox = outbox();
    let commands = outbox.handle(0, Event::LocalWrite(unit(1)));
    let (id, request) = sent_unit(&commands).expect("sent at once when online");
    assert_eq!(id, unit(1).id);
    assert_eq!(request.writes.len(), 2, "one entity write plus the marker");
    assert_eq!(outbox.status().in_flight, 1);

    let commands = outbox.handle(
        1,
        Event::CommitSucceeded {
            unit_id: unit(1).id,
        },
    );
    assert_eq!(
        commands,
        vec![Command::MarkDone {
            unit_id: unit(1).id
        }]
    );
    assert_eq!(outbox.status().pending, 0);
}

#[test]
fn offline_units_wait_and_changes_to_one_document_go_in_creation_order() {
    let mut outbox = outbox();
    assert!(outbox.handle(0, Event::Online(false)).is_empty());
    // Inserted out of order: ids decide the order, not arrival.
    let (first, second) = (price_edit(1, 1, 100), price_edit(2, 1, 200));
    assert!(outbox
        .handle(1, Event::LocalWrite(second.clone()))
        .is_empty());
    assert!(outbox
        .handle(2, Event::LocalWrite(first.clone()))
        .is_empty());
    assert_eq!(outbox.status().pending, 2);

    let commands = outbox.handle(3, Event::Online(true));
    let sent: Vec<&str> = commands_sent(&commands);
    assert_eq!(sent, vec![first.id.as_str()], "one commit, both units");
    let (_, request) = sent_unit(&commands).unwrap();
    assert_eq!(
        request.writes.len(),
        3,
        "one folded product write, two markers"
    );
    assert_eq!(
        written_fields(request, "products/p1")["price"],
        Value::Integer(200),
        "the later edit wins"
    );
    let commands = outbox.handle(
        5,
        Event::CommitSucceeded {
            unit_id: first.id.clone(),
        },
    );
    assert_eq!(
        commands,
        vec![
            Command::MarkDone { unit_id: first.id },
            Command::MarkDone { unit_id: second.id }
        ]
    );
}

#[test]
fn a_unit_waits_for_an_earlier_one_in_flight_on_the_same_document() {
    let mut outbox = outbox();
    let commands = outbox.handle(0, Event::LocalWrite(price_edit(1, 1, 100)));
    assert_eq!(commands_sent(&commands).len(), 1);
    // In flight: a later edit of p1 cannot join it and must not overtake it.
    assert!(commands_sent(&outbox.handle(1, Event::LocalWrite(price_edit(2, 1, 200)))).is_empty());
    // p2 is free: pipelined at once.
    let commands = outbox.handle(2, Event::LocalWrite(price_edit(3, 2, 300)));
    assert_eq!(
        commands_sent(&commands),
        vec![price_edit(3, 2, 0).id.as_str()]
    );
    // A unit touching p1 and p2 waits for both, and one touching only p2 after it waits too.
    let both = Unit {
        writes: vec![
            price_edit(4, 1, 1).writes[0].clone(),
            price_edit(4, 2, 1).writes[0].clone(),
        ],
        ..price_edit(4, 1, 1)
    };
    assert!(commands_sent(&outbox.handle(3, Event::LocalWrite(both.clone()))).is_empty());
    assert!(commands_sent(&outbox.handle(4, Event::LocalWrite(price_edit(5, 2, 5)))).is_empty());
    let commands = outbox.handle(
        5,
        Event::CommitSucceeded {
            unit_id: price_edit(1, 1, 0).id,
        },
    );
    assert_eq!(
        commands_sent(&commands),
        vec![price_edit(2, 1, 0).id.as_str()]
    );
    assert_eq!(outbox.status().in_flight, 2);
}

#[test]
fn a_lost_acknowledgement_is_resolved_by_reading_the_marker() {
    let mut outbox = outbox();
    let mut server = FakeServer::default();
    let commands = outbox.handle(0, Event::LocalWrite(unit(1)));
    server.commit(sent_unit(&commands).unwrap().1).unwrap();
    // The reply never arrives.
    let commands = outbox.handle(
        1,
        Event::CommitFailed {
            unit_id: unit(1).id,
            failure: PushFailure::Network("connection reset".into()),
        },
    );
    assert_eq!(
        commands,
        vec![Command::ReadMarker {
            unit_id: unit(1).id,
            path: format!("shops/s1/ops/{}", unit(1).id),
        }]
    );
    let exists = server.has(&format!("shops/s1/ops/{}", unit(1).id));
    let commands = outbox.handle(
        2,
        Event::MarkerRead {
            unit_id: unit(1).id,
            exists,
        },
    );
    assert_eq!(
        commands,
        vec![Command::MarkDone {
            unit_id: unit(1).id
        }]
    );
    assert_eq!(
        server.writes_per_document[&format!("{ROOT}shops/s1/products/p1")],
        1
    );
}

#[test]
fn a_send_that_never_arrived_is_sent_again_after_the_marker_read() {
    let mut outbox = outbox();
    outbox.handle(0, Event::LocalWrite(unit(1)));
    let failure = PushFailure::Network("offline".into());
    outbox.handle(
        1,
        Event::CommitFailed {
            unit_id: unit(1).id,
            failure,
        },
    );
    let commands = outbox.handle(
        2,
        Event::MarkerRead {
            unit_id: unit(1).id,
            exists: false,
        },
    );
    assert_eq!(sent_unit(&commands).unwrap().0, unit(1).id);
}

#[test]
fn a_unit_applied_before_a_restart_is_not_applied_twice() {
    let mut server = FakeServer::default();
    let mut before_crash = outbox();
    let commands = before_crash.handle(0, Event::LocalWrite(unit(1)));
    server.commit(sent_unit(&commands).unwrap().1).unwrap();

    // The tab was closed before the reply; the store still holds the unit as pending.
    let mut after_restart = outbox();
    let commands = after_restart.handle(
        10,
        Event::Loaded {
            pending: vec![unit(1)],
            dead_letters: vec![],
        },
    );
    let failure = server.commit(sent_unit(&commands).unwrap().1).unwrap_err();
    let commands = after_restart.handle(
        11,
        Event::CommitFailed {
            unit_id: unit(1).id,
            failure,
        },
    );
    assert!(matches!(commands[0], Command::ReadMarker { .. }));
    let commands = after_restart.handle(
        12,
        Event::MarkerRead {
            unit_id: unit(1).id,
            exists: true,
        },
    );
    assert_eq!(
        commands,
        vec![Command::MarkDone {
            unit_id: unit(1).id
        }]
    );
    assert_eq!(
        server.writes_per_document[&format!("{ROOT}shops/s1/products/p1")],
        1
    );
}

#[test]
fn unavailable_backs_off_honouring_retry_after() {
    let mut outbox = outbox();
    outbox.handle(0, Event::LocalWrite(unit(1)));
    let failure = PushFailure::Server {
        http_status: 503,
        code: Code::Unavailable,
        message: "overloaded".into(),
        retry_after_millis: Some(30_000),
    };
    let commands = outbox.handle(
        1_000,
        Event::CommitFailed {
            unit_id: unit(1).id,
            failure,
        },
    );
    let Some(Command::WakeAt(at)) = commands.first() else {
        panic!("expected a wake-up, got {commands:?}");
    };
    assert!(*at >= 31_000, "Retry-After ignored: wake at {at}");
    assert!(sent_unit(&outbox.handle(*at - 1, Event::Tick)).is_none());
    assert_eq!(
        sent_unit(&outbox.handle(*at, Event::Tick)).unwrap().0,
        unit(1).id
    );
    assert!(outbox
        .status()
        .last_error
        .unwrap()
        .to_string()
        .contains("overloaded"));
}

#[test]
fn repeated_server_errors_end_in_a_dead_letter_and_the_queue_moves_on() {
    let mut outbox = outbox();
    outbox.handle(0, Event::LocalWrite(unit(1)));
    let mut now = 0;
    let mut dead = None;
    for _ in 0..8 {
        let failure = server_error(Code::Internal, "disk on fire");
        let commands = outbox.handle(
            now,
            Event::CommitFailed {
                unit_id: unit(1).id,
                failure,
            },
        );
        if let Some(Command::MarkDeadLetter { reason, .. }) = commands.first() {
            dead = Some(reason.clone());
            break;
        }
        now += 10 * 60 * 1000; // past any backoff
        assert_eq!(
            sent_unit(&outbox.handle(now, Event::Tick)).unwrap().0,
            unit(1).id
        );
    }
    let reason = dead.expect("dead-lettered after the limit");
    assert_eq!(
        reason,
        DeadLetterReason::GaveUp {
            failures: 8,
            checking: false,
            message: "disk on fire".into(),
        }
    );
    assert!(reason.to_string().contains("8 server errors"), "{reason}");
    assert_eq!(outbox.status().dead_letters, 1);
    // Independent units go on; a later change to the dead letter's document waits behind it.
    let commands = outbox.handle(now, Event::LocalWrite(unit(2)));
    assert_eq!(sent_unit(&commands).unwrap().0, unit(2).id);
    let same_document = Unit {
        id: "0193a0b0-0000-7000-8000-000000000099".into(),
        ..unit(1)
    };
    assert!(sent_unit(&outbox.handle(now, Event::LocalWrite(same_document))).is_none());
}

#[test]
fn network_errors_never_dead_letter() {
    let mut outbox = outbox();
    outbox.handle(0, Event::LocalWrite(unit(1)));
    let mut now = 0;
    for _ in 0..50 {
        let failure = PushFailure::Network("offline".into());
        let commands = outbox.handle(
            now,
            Event::CommitFailed {
                unit_id: unit(1).id,
                failure,
            },
        );
        assert!(matches!(commands[0], Command::ReadMarker { .. }));
        let failure = PushFailure::Network("offline".into());
        let commands = outbox.handle(
            now,
            Event::MarkerReadFailed {
                unit_id: unit(1).id,
                failure,
            },
        );
        let Some(Command::WakeAt(at)) = commands.first() else {
            panic!("expected a backoff, got {commands:?}");
        };
        assert!(*at - now <= 5 * 60 * 1000, "backoff is capped");
        now = *at;
        let commands = outbox.handle(now, Event::Tick);
        assert!(
            matches!(commands[0], Command::ReadMarker { .. }),
            "{commands:?}"
        );
        let commands = outbox.handle(
            now,
            Event::MarkerRead {
                unit_id: unit(1).id,
                exists: false,
            },
        );
        assert!(sent_unit(&commands).is_some());
    }
    assert_eq!(outbox.status().dead_letters, 0);
}

#[test]
fn invalid_argument_dead_letters_at_once_and_can_be_retried_or_discarded() {
    let mut outbox = outbox();
    outbox.handle(0, Event::LocalWrite(unit(1)));
    let failure = server_error(Code::InvalidArgument, "price must be an integer");
    let commands = outbox.handle(
        1,
        Event::CommitFailed {
            unit_id: unit(1).id,
            failure,
        },
    );
    assert_eq!(
        commands,
        vec![Command::MarkDeadLetter {
            unit_id: unit(1).id,
            reason: DeadLetterReason::Refused {
                code: Code::InvalidArgument,
                message: "price must be an integer".into(),
            },
        }]
    );
    assert_eq!(outbox.dead_letters().len(), 1);

    let commands = outbox.handle(
        2,
        Event::RetryDeadLetter {
            unit_id: unit(1).id,
        },
    );
    assert_eq!(
        commands[0],
        Command::MarkPending {
            unit_id: unit(1).id
        }
    );
    assert_eq!(sent_unit(&commands).unwrap().0, unit(1).id);

    let failure = server_error(Code::PermissionDenied, "not your shop");
    outbox.handle(
        3,
        Event::CommitFailed {
            unit_id: unit(1).id,
            failure,
        },
    );
    let commands = outbox.handle(
        4,
        Event::DiscardDeadLetter {
            unit_id: unit(1).id,
        },
    );
    assert_eq!(
        commands,
        vec![Command::Discard {
            unit_id: unit(1).id
        }]
    );
    let status = outbox.status();
    assert_eq!((status.pending, status.dead_letters), (0, 0));
}

#[test]
fn unauthenticated_pauses_the_queue_without_dropping_anything() {
    let mut outbox = outbox();
    outbox.handle(0, Event::LocalWrite(unit(1)));
    let failure = server_error(Code::Unauthenticated, "token expired");
    let commands = outbox.handle(
        1,
        Event::CommitFailed {
            unit_id: unit(1).id,
            failure,
        },
    );
    assert!(commands.is_empty());
    assert!(outbox.status().paused_for_sign_in);
    assert!(outbox.handle(2, Event::LocalWrite(unit(2))).is_empty());
    assert_eq!(outbox.status().pending, 2);
    let commands = outbox.handle(3, Event::SignedIn { sender: None });
    assert_eq!(sent_unit(&commands).unwrap().0, unit(1).id);
}

fn by(sender: &str, unit: Unit) -> Unit {
    Unit {
        sender: Some(sender.to_owned()),
        ..unit
    }
}

#[test]
fn a_sender_whose_token_is_refused_waits_while_everyone_elses_units_go_on() {
    let mut outbox = outbox();
    outbox.handle(0, Event::LocalWrite(by("ravi", unit(1))));
    outbox.handle(
        1,
        Event::CommitFailed {
            unit_id: unit(1).id,
            failure: server_error(Code::Unauthenticated, "sign-in ended"),
        },
    );
    // Ravi's next sale waits; Asha's goes at once, and so do units naming nobody.
    assert!(commands_sent(&outbox.handle(2, Event::LocalWrite(by("ravi", unit(2))))).is_empty());
    assert_eq!(
        commands_sent(&outbox.handle(3, Event::LocalWrite(by("asha", unit(3))))),
        vec![unit(3).id]
    );
    assert_eq!(
        commands_sent(&outbox.handle(4, Event::LocalWrite(unit(4)))),
        vec![unit(4).id]
    );
    let status = outbox.status();
    assert!(status.paused_for_sign_in);
    assert_eq!(
        status.waiting_for_sign_in.iter().collect::<Vec<_>>(),
        vec![(&Some("ravi".to_owned()), &2)]
    );
    // Someone else signing in does not release Ravi's units; Ravi signing in again does.
    assert!(commands_sent(&outbox.handle(
        5,
        Event::SignedIn {
            sender: Some("asha".into())
        }
    ))
    .is_empty());
    let sent = outbox.handle(
        6,
        Event::SignedIn {
            sender: Some("ravi".into()),
        },
    );
    assert_eq!(commands_sent(&sent), vec![unit(1).id, unit(2).id]);
    assert!(!outbox.status().paused_for_sign_in);
}

#[test]
fn a_waiting_senders_versioned_edit_keeps_later_changes_to_its_document_behind_it() {
    let mut outbox = outbox();
    let ravis = by("ravi", edit_of_version(1, 100, 90, 5));
    outbox.handle(0, Event::LocalWrite(ravis.clone()));
    outbox.handle(
        1,
        Event::CommitFailed {
            unit_id: ravis.id,
            failure: server_error(Code::Unauthenticated, "sign-in ended"),
        },
    );
    // Asha's later change of the same product must not overtake Ravi's edit of its version;
    // of another product, it goes.
    let ashas = by("asha", edit_of_version(2, 200, 90, 5));
    assert!(commands_sent(&outbox.handle(2, Event::LocalWrite(ashas))).is_empty());
    assert_eq!(
        commands_sent(&outbox.handle(3, Event::LocalWrite(by("asha", price_edit(3, 2, 300))))),
        vec![price_edit(3, 2, 300).id]
    );
}

#[test]
fn another_senders_sale_of_the_same_product_passes_a_unit_waiting_for_a_sign_in() {
    // A sale's stock write: a blind patch of `lastBill` and an increment of `stock`.
    let sale = |n: u32| {
        let mut write = DocumentWrite::patch(
            "shops/s1/products/p1",
            BTreeMap::from([("lastBill".to_string(), Value::String(format!("b{n}")))]),
            None,
        );
        write.increments.insert("stock".into(), -1);
        Unit {
            writes: vec![
                DocumentWrite::create(format!("shops/s1/bills/b{n}"), BTreeMap::new()),
                write,
            ],
            ..unit(n)
        }
    };
    let mut outbox = outbox();
    outbox.handle(0, Event::LocalWrite(by("ravi", sale(1))));
    outbox.handle(
        1,
        Event::CommitFailed {
            unit_id: unit(1).id,
            failure: server_error(Code::Unauthenticated, "sign-in ended"),
        },
    );
    assert_eq!(
        commands_sent(&outbox.handle(2, Event::LocalWrite(by("asha", sale(2))))),
        vec![unit(2).id]
    );
    // Ravi's own later sale still waits behind his first.
    assert!(commands_sent(&outbox.handle(3, Event::LocalWrite(by("ravi", sale(3))))).is_empty());
}

#[test]
fn units_of_different_senders_never_share_a_commit() {
    let mut outbox = outbox();
    outbox.handle(0, Event::Online(false));
    outbox.handle(1, Event::LocalWrite(by("ravi", price_edit(1, 1, 100))));
    outbox.handle(2, Event::LocalWrite(by("ravi", price_edit(2, 1, 110))));
    outbox.handle(3, Event::LocalWrite(by("asha", price_edit(3, 1, 120))));
    let commands = outbox.handle(4, Event::Online(true));
    // Ravi's two edits of the product travel together; Asha's waits for them.
    assert_eq!(commands_sent(&commands), vec![price_edit(1, 1, 100).id]);
    assert_eq!(outbox.status().in_flight, 2);
    let commands = outbox.handle(
        5,
        Event::CommitSucceeded {
            unit_id: price_edit(1, 1, 100).id,
        },
    );
    assert_eq!(commands_sent(&commands), vec![price_edit(3, 1, 120).id]);
    assert_eq!(outbox.status().in_flight, 1);
}

#[test]
fn stale_replies_are_ignored() {
    let mut outbox = outbox();
    outbox.handle(0, Event::LocalWrite(unit(1)));
    outbox.handle(
        1,
        Event::CommitSucceeded {
            unit_id: unit(1).id,
        },
    );
    // A duplicated reply for a unit that is already done changes nothing.
    assert!(outbox
        .handle(
            2,
            Event::CommitSucceeded {
                unit_id: unit(1).id
            }
        )
        .is_empty());
    let failure = PushFailure::Network("late".into());
    assert!(outbox
        .handle(
            3,
            Event::CommitFailed {
                unit_id: unit(1).id,
                failure
            }
        )
        .is_empty());
    assert!(outbox.state_of(&unit(1).id).is_none());
}

/// Runs the outbox against the fake server with requests and replies dropped at random, and
/// restarts in between; every unit must end on the server exactly once.
#[test]
fn seeded_runs_with_lost_requests_and_replies_apply_every_unit_exactly_once() {
    for seed in 0..300u64 {
        let mut rng = SplitMix64::new(seed);
        let mut server = FakeServer::default();
        let mut store: BTreeSet<u32> = (1..=5).collect(); // units not yet marked done
        let mut outbox = outbox();
        let mut now = 0i64;
        let mut commands = outbox.handle(
            now,
            Event::Loaded {
                pending: store.iter().map(|n| unit(*n)).collect(),
                dead_letters: vec![],
            },
        );
        for _step in 0..2_000 {
            if store.is_empty() {
                break;
            }
            if rng.up_to(30) == 0 {
                // The tab restarts: in-memory state is lost, the store survives.
                outbox = Outbox::new(OutboxConfig::new("p", "s1", "device-A", seed));
                let pending = store.iter().map(|n| unit(*n)).collect();
                commands = outbox.handle(
                    now,
                    Event::Loaded {
                        pending,
                        dead_letters: vec![],
                    },
                );
                continue;
            }
            let mut next = Vec::new();
            for command in commands.drain(..) {
                let reply = match command {
                    Command::SendCommit { unit_id, request } => {
                        let lost_request = rng.up_to(3) == 0;
                        let outcome = if lost_request {
                            None
                        } else {
                            Some(server.commit(&request))
                        };
                        let lost_reply = rng.up_to(3) == 0;
                        match (outcome, lost_reply) {
                            (Some(Ok(())), false) => Event::CommitSucceeded { unit_id },
                            (Some(Err(failure)), false) => Event::CommitFailed { unit_id, failure },
                            _ => Event::CommitFailed {
                                unit_id,
                                failure: PushFailure::Network("lost".into()),
                            },
                        }
                    }
                    Command::ReadMarker { unit_id, path } => {
                        if rng.up_to(4) == 0 {
                            Event::MarkerReadFailed {
                                unit_id,
                                failure: PushFailure::Network("lost".into()),
                            }
                        } else {
                            Event::MarkerRead {
                                unit_id,
                                exists: server.has(&path),
                            }
                        }
                    }
                    Command::MarkDone { unit_id } => {
                        let n: u32 = unit_id.rsplit('-').next().unwrap().parse().unwrap();
                        store.remove(&n);
                        continue;
                    }
                    Command::WakeAt(at) => {
                        now = now.max(at);
                        Event::Tick
                    }
                    other => panic!("seed {seed}: unexpected {other:?}"),
                };
                now += 1;
                next.extend(outbox.handle(now, reply));
            }
            commands = next;
            if commands.is_empty() {
                commands = outbox.handle(now, Event::Tick);
            }
        }
        assert!(
            store.is_empty(),
            "seed {seed}: units never finished: {store:?}"
        );
        for n in 1..=5 {
            let name = format!("{ROOT}shops/s1/products/p{n}");
            assert_eq!(
                server.writes_per_document.get(&name),
                Some(&1),
                "seed {seed}: {name}"
            );
        }
        assert_eq!(outbox.status().dead_letters, 0, "seed {seed}");
    }
}

#[test]
fn the_server_coming_back_cuts_a_network_backoff_short_but_not_a_server_one() {
    let mut outbox = outbox();
    outbox.handle(0, Event::LocalWrite(unit(1)));
    let mut now = 0;
    // A long outage: the backoff ceiling grows.
    for _ in 0..10 {
        let failure = PushFailure::Network("unreachable".into());
        outbox.handle(
            now,
            Event::CommitFailed {
                unit_id: unit(1).id,
                failure,
            },
        );
        let failure = PushFailure::Network("unreachable".into());
        let commands = outbox.handle(
            now,
            Event::MarkerReadFailed {
                unit_id: unit(1).id,
                failure,
            },
        );
        let Some(Command::WakeAt(at)) = commands.first() else {
            panic!("{commands:?}")
        };
        if *at > now + 1_000 {
            break;
        }
        now = *at;
        outbox.handle(now, Event::Tick);
        outbox.handle(
            now,
            Event::MarkerRead {
                unit_id: unit(1).id,
                exists: false,
            },
        );
    }
    assert!(matches!(
        outbox.state_of(&unit(1).id),
        Some(UnitState::Retry { .. })
    ));
    let commands = outbox.handle(now, Event::ServerReachable);
    assert!(
        matches!(commands[0], Command::ReadMarker { .. }),
        "{commands:?}"
    );

    // A server that answered 503 asked us to back off: reachability does not override that.
    let mut outbox = self::outbox();
    outbox.handle(0, Event::LocalWrite(unit(2)));
    let failure = PushFailure::Server {
        http_status: 503,
        code: Code::Unavailable,
        message: "busy".into(),
        retry_after_millis: Some(60_000),
    };
    outbox.handle(
        0,
        Event::CommitFailed {
            unit_id: unit(2).id,
            failure,
        },
    );
    let commands = outbox.handle(1, Event::ServerReachable);
    assert!(
        matches!(commands[..], [Command::WakeAt(at)] if at >= 60_000),
        "{commands:?}"
    );
}

/// A price edit of `p1` made on the server version at `base_micros` with `base_price`.
fn edit_of_version(n: u32, price: i64, base_price: i64, base_micros: i64) -> Unit {
    let base = counterbook_sync::BaseVersion {
        update_time: counterbook_firestore_wire::Timestamp::from_unix_micros(base_micros),
        fields: BTreeMap::from([
            ("price".to_string(), Value::Integer(base_price)),
            ("name".to_string(), Value::String("Tea".into())),
        ]),
    };
    Unit {
        writes: vec![DocumentWrite::patch(
            "shops/s1/products/p1",
            BTreeMap::from([("price".to_string(), Value::Integer(price))]),
            Some(base),
        )],
        ..price_edit(n, 1, price)
    }
}

fn server_version(fields: &[(&str, Value)], micros: i64) -> counterbook_firestore_wire::Document {
    counterbook_firestore_wire::Document {
        name: format!("{ROOT}shops/s1/products/p1"),
        fields: fields
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect(),
        update_time: Some(counterbook_firestore_wire::Timestamp::from_unix_micros(
            micros,
        )),
        ..Default::default()
    }
}

#[test]
fn a_stale_edit_is_merged_with_the_server_version_and_sent_again() {
    let mut outbox = outbox();
    let unit = edit_of_version(1, 12, 10, 5);
    let commands = outbox.handle(0, Event::LocalWrite(unit.clone()));
    let (_, request) = sent_unit(&commands).unwrap();
    assert!(
        request.writes[0].current_document.is_some(),
        "checks its base"
    );
    let failure = server_error(Code::FailedPrecondition, "version changed");
    let commands = outbox.handle(
        1,
        Event::CommitFailed {
            unit_id: unit.id.clone(),
            failure,
        },
    );
    assert!(matches!(commands[0], Command::ReadMarker { .. }));
    let commands = outbox.handle(
        2,
        Event::MarkerRead {
            unit_id: unit.id.clone(),
            exists: false,
        },
    );
    assert_eq!(
        commands,
        vec![Command::ReadDocuments {
            unit_id: unit.id.clone(),
            paths: vec!["shops/s1/products/p1".into()]
        }]
    );
    // Another tablet renamed it and changed the price too: the name merges silently, the
    // price keeps the server's value and mine goes to the inbox.
    let theirs = server_version(
        &[
            ("price", Value::Integer(15)),
            ("name", Value::String("Chai".into())),
        ],
        9,
    );
    let commands = outbox.handle(
        3,
        Event::DocumentsRead {
            unit_id: unit.id.clone(),
            documents: vec![("shops/s1/products/p1".into(), Some(theirs))],
        },
    );
    let [Command::RewriteUnit { unit: rewritten }, Command::RecordConflicts { entries }, Command::SendCommit { request, .. }] =
        commands.as_slice()
    else {
        panic!("{commands:?}")
    };
    assert_eq!(entries[0].local_value, Some(Value::Integer(12)));
    assert!(
        rewritten.writes.is_empty(),
        "nothing of mine is left to set"
    );
    assert_eq!(
        request.writes.len(),
        1,
        "only the marker: the unit still counts as applied exactly once"
    );
}

#[test]
fn my_own_earlier_change_is_not_a_conflict_for_my_later_edit() {
    // Regression guard: an edit made while an earlier edit of the same field was in flight
    // started from the same server version; the server's new value is our own, so the later
    // edit must win without an inbox entry.
    let mut outbox = outbox();
    let first = edit_of_version(1, 20, 10, 5);
    let second = edit_of_version(2, 30, 10, 5);
    outbox.handle(0, Event::LocalWrite(first.clone()));
    outbox.handle(1, Event::LocalWrite(second.clone()));
    // Applied, but the reply is lost; the marker says so.
    outbox.handle(
        2,
        Event::CommitFailed {
            unit_id: first.id.clone(),
            failure: PushFailure::Network("reset".into()),
        },
    );
    let commands = outbox.handle(
        3,
        Event::MarkerRead {
            unit_id: first.id.clone(),
            exists: true,
        },
    );
    assert!(commands
        .iter()
        .any(|c| matches!(c, Command::RewriteUnit { unit } if unit.id == second.id)));
    let failure = server_error(Code::FailedPrecondition, "version changed");
    outbox.handle(
        4,
        Event::CommitFailed {
            unit_id: second.id.clone(),
            failure,
        },
    );
    outbox.handle(
        5,
        Event::MarkerRead {
            unit_id: second.id.clone(),
            exists: false,
        },
    );
    let mine_applied = server_version(
        &[
            ("price", Value::Integer(20)),
            ("name", Value::String("Tea".into())),
        ],
        8,
    );
    let commands = outbox.handle(
        6,
        Event::DocumentsRead {
            unit_id: second.id.clone(),
            documents: vec![("shops/s1/products/p1".into(), Some(mine_applied))],
        },
    );
    assert!(
        !commands
            .iter()
            .any(|c| matches!(c, Command::RecordConflicts { .. })),
        "{commands:?}"
    );
    let (_, request) = sent_unit(&commands).unwrap();
    assert_eq!(
        written_fields(request, "products/p1")["price"],
        Value::Integer(30)
    );
    assert_eq!(
        request.writes[0]
            .current_document
            .as_ref()
            .unwrap()
            .update_time,
        Some(counterbook_firestore_wire::Timestamp::from_unix_micros(8)),
        "now checks the version it merged with"
    );
}

#[test]
fn a_refused_shared_commit_is_split_and_only_the_culprit_is_dead_lettered() {
    let mut outbox = outbox();
    outbox.handle(0, Event::Online(false));
    let good = price_edit(1, 1, 100);
    let bad = price_edit(2, 1, 200);
    outbox.handle(0, Event::LocalWrite(good.clone()));
    outbox.handle(0, Event::LocalWrite(bad.clone()));
    let commands = outbox.handle(1, Event::Online(true));
    assert_eq!(
        commands_sent(&commands),
        vec![good.id.as_str()],
        "one shared commit"
    );
    let commands = outbox.handle(
        2,
        Event::CommitFailed {
            unit_id: good.id.clone(),
            failure: server_error(Code::InvalidArgument, "bad price"),
        },
    );
    assert_eq!(
        commands_sent(&commands),
        vec![good.id.as_str()],
        "alone now"
    );
    let (_, request) = sent_unit(&commands).unwrap();
    assert_eq!(request.writes.len(), 2, "one write, one marker");
    let commands = outbox.handle(
        3,
        Event::CommitSucceeded {
            unit_id: good.id.clone(),
        },
    );
    assert_eq!(commands_sent(&commands), vec![bad.id.as_str()]);
    let commands = outbox.handle(
        4,
        Event::CommitFailed {
            unit_id: bad.id.clone(),
            failure: server_error(Code::InvalidArgument, "bad price"),
        },
    );
    assert!(matches!(&commands[0], Command::MarkDeadLetter { unit_id, .. } if *unit_id == bad.id));
    assert_eq!(outbox.status().dead_letters, 1);
}

#[test]
fn the_engine_pulls_page_by_page_and_raises_oversold_stock() {
    let mut outbox = outbox();
    let commands = outbox.handle(
        0,
        Event::PullRequested {
            collection: "products".into(),
            checkpoint: None,
        },
    );
    let [Command::RunPullQuery {
        collection,
        query_id,
        ..
    }] = &commands[..]
    else {
        panic!("{commands:?}")
    };
    assert_eq!(collection, "products");
    let query_id = *query_id;
    let mut oversold = server_version(&[("stock", Value::Integer(-2))], 4);
    oversold.fields.insert(
        "updatedAt".into(),
        Value::Timestamp(counterbook_firestore_wire::Timestamp::from_unix_micros(4)),
    );
    let commands = outbox.handle(
        1,
        Event::PullPage {
            collection: "products".into(),
            query_id,
            documents: vec![oversold],
            read_time: None,
        },
    );
    let [Command::ApplyPulledPage(page)] = &commands[..] else {
        panic!("{commands:?}")
    };
    assert_eq!(
        page.conflicts[0].kind,
        counterbook_sync::ConflictKind::Oversold
    );
    assert!(outbox
        .handle(
            2,
            Event::PulledPageApplied {
                collection: "products".into(),
                query_id,
            }
        )
        .is_empty());
    assert!(outbox.is_idle());
}
