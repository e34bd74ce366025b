//! Which documents a write changed: the store announces them after every committed
//! transaction that changed entity records (a local unit, a pulled page, a listen snapshot, a
//! re-read document, a rejected unit, a bulk seed), so that screens re-read exactly those
//! records instead of everything they show.

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::rc::Rc;

use serde::{Deserialize, Serialize};

/// Document ids by collection (`products`, `customers`, `bills`, ...).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChangedDocuments {
    collections: BTreeMap<String, BTreeSet<String>>,
}

impl ChangedDocuments {
    pub fn new() -> ChangedDocuments {
        ChangedDocuments::default()
    }

    pub fn insert(&mut self, collection: &str, id: &str) {
        self.collections
            .entry(collection.to_owned())
            .or_default()
            .insert(id.to_owned());
    }

    /// Adds everything `other` names.
    pub fn extend(&mut self, other: &ChangedDocuments) {
        for (collection, ids) in &other.collections {
            self.collections
                .entry(collection.clone())
                .or_default()
                .extend(ids.iter().cloned());
        }
    }

    /// The changed ids of `collection`.
    pub fn ids(&self, collection: &str) -> impl Iterator<Item = &str> {
        self.collections
            .get(collection)
            .into_iter()
            .flatten()
            .map(String::as_str)
    }

    pub fn contains(&self, collection: &str, id: &str) -> bool {
        self.collections
            .get(collection)
            .is_some_and(|ids| ids.contains(id))
    }

    /// Whether anything in `collection` changed.
    pub fn touches(&self, collection: &str) -> bool {
        self.collections
            .get(collection)
            .is_some_and(|ids| !ids.is_empty())
    }

    pub fn is_empty(&self) -> bool {
        self.collections.values().all(BTreeSet::is_empty)
    }
}

type Subscriber = Rc<dyn Fn(&ChangedDocuments)>;

/// The store's announcements. Subscribers live as long as the store (the driver subscribes
/// once, at start).
#[derive(Default)]
pub(super) struct ChangeFeed {
    subscribers: RefCell<Vec<Subscriber>>,
}

impl ChangeFeed {
    pub(super) fn subscribe(&self, subscriber: impl Fn(&ChangedDocuments) + 'static) {
        self.subscribers.borrow_mut().push(Rc::new(subscriber));
    }

    pub(super) fn publish(&self, changed: &ChangedDocuments) {
        if changed.is_empty() {
            return;
        }
        // Cloned out first: a subscriber may subscribe or write (and so publish) again.
        let subscribers: Vec<Subscriber> = self.subscribers.borrow().clone();
        for subscriber in subscribers {
            subscriber(changed);
        }
    }
}
