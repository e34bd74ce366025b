//! Looking a scan up before its Enter. A scanner types a code a few milliseconds a key and
//! Enter last; a lookup is an IndexedDB round trip, which on a busy tablet can end after the
//! next frame. So once the scanner has typed a whole barcode (an EAN-13, EAN-8 or UPC-A with
//! its check digit right), the counter looks up the code typed so far, and the Enter that
//! completes exactly that code takes the answer at once instead of starting its own lookup.
//! The check digit keeps the prefixes of a longer code from costing lookups of their own (one
//! in ten passes by chance).
//!
//! [`ScanLookahead`] is the bookkeeping, with no IO: which codes are being looked up (each
//! lookup a value the page can wait on or read the answer of) and whether a lookup may still be
//! used. A lookup is used only by the Enter of the same code (more keys make another code,
//! whose lookup is another one), and only if nothing was stored since it started (the change
//! log's number, see [`crate::sync::change_log`]): the product may have changed in between.
//! An Enter that comes before its lookup's answer waits for that lookup rather than starting
//! another. Nothing is added to the bill before the Enter.

use counterbook_shop::barcode::{symbology, Symbology};

/// One lookup started before an Enter.
#[derive(Clone, Debug)]
struct Lookup<Pending> {
    code: String,
    /// The change log's number when it started.
    changes_seen: u64,
    /// The lookup itself (its answer once it has one).
    pending: Pending,
}

/// The lookups of the burst a scanner is typing.
#[derive(Clone, Debug)]
pub struct ScanLookahead<Pending> {
    lookups: Vec<Lookup<Pending>>,
}

impl<Pending> Default for ScanLookahead<Pending> {
    fn default() -> Self {
        ScanLookahead {
            lookups: Vec::new(),
        }
    }
}

impl<Pending: Clone> ScanLookahead<Pending> {
    /// The scanner has typed `code` so far, with the change log at `changes_seen`: when it is a
    /// whole GS1 barcode and is not being looked up yet, the lookup `begin` makes is kept and
    /// returned (to be run). Lookups of codes the burst has left behind (not a start of
    /// `code`) are forgotten.
    pub fn start(
        &mut self,
        code: &str,
        changes_seen: u64,
        begin: impl FnOnce() -> Pending,
    ) -> Option<Pending> {
        self.lookups
            .retain(|lookup| code.starts_with(lookup.code.as_str()));
        let whole_barcode = symbology(code) != Symbology::Other;
        if !whole_barcode || self.lookups.iter().any(|lookup| lookup.code == code) {
            return None;
        }
        let pending = begin();
        self.lookups.push(Lookup {
            code: code.to_owned(),
            changes_seen,
            pending: pending.clone(),
        });
        Some(pending)
    }

    /// The Enter of a scan of `code` came, with the change log at `changes_now`: the lookup of
    /// exactly that code, if one started and nothing was stored since. Every lookup is
    /// forgotten either way (the burst is over).
    pub fn take(&mut self, code: &str, changes_now: u64) -> Option<Pending> {
        std::mem::take(&mut self.lookups)
            .into_iter()
            .find(|lookup| lookup.code == code && lookup.changes_seen == changes_now)
            .map(|lookup| lookup.pending)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wasm_bindgen_test::wasm_bindgen_test;

    /// Types `code` key by key, as the scanner does, with the change log at `changes`, each
    /// lookup named by its code; returns the codes whose lookups started.
    fn type_code(lookahead: &mut ScanLookahead<String>, code: &str, changes: u64) -> Vec<String> {
        (1..=code.len())
            .filter_map(|end| lookahead.start(&code[..end], changes, || code[..end].to_owned()))
            .collect()
    }

    #[wasm_bindgen_test]
    fn the_enter_of_the_code_looked_up_takes_its_lookup() {
        let mut lookahead = ScanLookahead::default();
        // Its 8- and 12-digit starts are no EAN-8 or UPC-A (their check digits are wrong).
        assert_eq!(
            type_code(&mut lookahead, "8901063010017", 4),
            ["8901063010017"]
        );
        assert_eq!(
            lookahead.take("8901063010017", 4).as_deref(),
            Some("8901063010017")
        );
        assert_eq!(lookahead.take("8901063010017", 4), None, "used once");
    }

    /// Regression test for the lookahead: a code whose first twelve characters are another
    /// product's UPC-A must never take that product's lookup when the scanner goes on.
    #[wasm_bindgen_test]
    fn more_keys_make_another_code_and_a_code_that_is_no_barcode_is_not_looked_up() {
        let mut lookahead = ScanLookahead::default();
        // 036000291452 is a UPC-A, and the first twelve digits of the EAN-13 0360002914522.
        assert_eq!(
            type_code(&mut lookahead, "0360002914522", 4),
            ["036000291452", "0360002914522"]
        );
        assert_eq!(
            lookahead.take("0360002914522", 4).as_deref(),
            Some("0360002914522")
        );
        type_code(&mut lookahead, "0360002914522", 4);
        assert_eq!(
            lookahead.take("036000291452", 4).as_deref(),
            Some("036000291452")
        );
        assert_eq!(type_code(&mut lookahead, "SKU-42", 4), Vec::<String>::new());
        assert_eq!(lookahead.take("SKU-42", 4), None);
    }

    #[wasm_bindgen_test]
    fn a_lookup_from_before_a_change_is_not_used() {
        let mut lookahead = ScanLookahead::default();
        type_code(&mut lookahead, "96385074", 7);
        assert_eq!(lookahead.take("96385074", 8), None);
    }

    #[wasm_bindgen_test]
    fn a_new_burst_forgets_the_lookups_of_the_last() {
        let mut lookahead = ScanLookahead::default();
        type_code(&mut lookahead, "96385074", 1);
        type_code(&mut lookahead, "40170725", 1);
        assert_eq!(lookahead.take("96385074", 1), None);
    }
}
