//! What the virtualized lists (the products page's, the bills page's) share: every row the same
//! height, so the rows in view follow from the scroll offset alone; a scroller as tall as the
//! whole list; only the rows in view (and a few beyond each edge) in the DOM; and rows read a
//! page at a time, each page asked for once per reading of the list, answers for an older
//! reading dropped.
//!
//! The reading itself is each list's own ([`VirtualList::pages_to_read`] says which pages,
//! [`VirtualList::put_page`] takes what was read): the products by their query's index, the
//! bills by their keys, each after the row before the page when that one is loaded (a cursor)
//! or by offset for a jump.

use std::collections::BTreeMap;
use std::ops::Range;

use counterbook_sync::sorted_map::SortedSet;
use leptos::prelude::*;

/// Rows kept in the DOM beyond each edge of the view.
const OVERSCAN_ROWS: u32 = 4;

/// The positions of a list of `total` rows `row_height` high in view when scrolled to
/// `scroll_top` in a view `viewport_height` high, overscan included.
fn positions_in_view(
    total: u32,
    row_height: f64,
    scroll_top: f64,
    viewport_height: f64,
) -> Range<u32> {
    let first = (scroll_top / row_height).floor().max(0.0) as u32;
    let shown = (viewport_height / row_height).ceil() as u32 + 1;
    let start = first.saturating_sub(OVERSCAN_ROWS).min(total);
    let end = (first + shown + OVERSCAN_ROWS).min(total);
    start..end
}

/// A virtualized list's state: its count, the rows read so far by position, the pages asked
/// for, and the scroller's offset and height. Cheap to copy.
pub struct VirtualList<T: 'static> {
    row_height: f64,
    page_rows: u32,
    /// How many rows the list has.
    pub total: RwSignal<u32>,
    /// The rows read, by position.
    pub rows: RwSignal<BTreeMap<u32, T>>,
    /// Pages asked for since the list was last (re)read.
    requested: StoredValue<SortedSet<u32>>,
    /// Bumped when the list is read again; answers for an older generation are dropped.
    generation: StoredValue<u64>,
    scroll_top: RwSignal<f64>,
    viewport_height: RwSignal<f64>,
}

impl<T: 'static> Clone for VirtualList<T> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<T: 'static> Copy for VirtualList<T> {}

impl<T: Clone + Send + Sync + 'static> VirtualList<T> {
    /// A list of rows `row_height` pixels high, read `page_rows` at a time, counting `total`
    /// rows, in a view thought `viewport_height` high until its scroller is in the DOM.
    pub fn new(
        row_height: f64,
        page_rows: u32,
        total: RwSignal<u32>,
        viewport_height: f64,
    ) -> Self {
        VirtualList {
            row_height,
            page_rows,
            total,
            rows: RwSignal::new(BTreeMap::new()),
            requested: StoredValue::new(SortedSet::new()),
            generation: StoredValue::new(0),
            scroll_top: RwSignal::new(0.0),
            viewport_height: RwSignal::new(viewport_height),
        }
    }

    /// The positions in view, overscan included (tracked: a view or effect reading it runs
    /// again when the list scrolls or its count changes).
    pub fn visible(&self) -> Range<u32> {
        positions_in_view(
            self.total.get(),
            self.row_height,
            self.scroll_top.get(),
            self.viewport_height.get(),
        )
    }

    /// The pages in view not asked for yet since the list was last (re)read, now marked asked
    /// for: the position of each one's first row.
    pub fn pages_to_read(&self) -> Vec<u32> {
        let range = positions_in_view(
            self.total.get_untracked(),
            self.row_height,
            self.scroll_top.get_untracked(),
            self.viewport_height.get_untracked(),
        );
        if range.is_empty() {
            return Vec::new();
        }
        let mut fresh = Vec::new();
        self.requested.update_value(|requested| {
            for page in range.start / self.page_rows..=(range.end - 1) / self.page_rows {
                if requested.insert(page) {
                    fresh.push(page * self.page_rows);
                }
            }
        });
        fresh
    }

    /// What `pick` makes of the row at `position`, if it is loaded (a page's cursor: the row
    /// before it).
    pub fn row_at<R>(&self, position: u32, pick: impl FnOnce(&T) -> R) -> Option<R> {
        self.rows
            .with_untracked(|rows| rows.get(&position).map(pick))
    }

    /// Starts reading the list again: pages are asked for again, and what is still on its way
    /// is dropped. Returns the new reading's generation.
    pub fn start_reading_again(&self) -> u64 {
        self.generation.update_value(|generation| *generation += 1);
        self.requested.update_value(SortedSet::clear);
        self.generation.get_value()
    }

    /// The current reading's generation.
    pub fn generation(&self) -> u64 {
        self.generation.get_value()
    }

    /// Whether an answer asked for in `generation` is still wanted.
    pub fn is_current(&self, generation: u64) -> bool {
        self.generation.get_value() == generation
    }

    /// The list now counts `count` rows: rows past it go, the others stay shown until their
    /// page arrives (no flicker when a change shifts them).
    pub fn set_count(&self, count: u32) {
        self.rows
            .update(|rows| rows.retain(|position, _| *position < count));
        self.total.set(count);
    }

    /// Puts the rows of a page read from position `first` on.
    pub fn put_page(&self, first: u32, page: impl IntoIterator<Item = T>) {
        self.put_page_keeping(first, page, |_, _| false);
    }

    /// Puts the rows of a page read from position `first` on, except where `keep(shown, read)`
    /// says the row shown there is newer than the page's.
    pub fn put_page_keeping(
        &self,
        first: u32,
        page: impl IntoIterator<Item = T>,
        keep: impl Fn(&T, &T) -> bool,
    ) {
        self.rows.update(|rows| {
            for (offset, row) in page.into_iter().enumerate() {
                let position = first + offset as u32;
                if !rows.get(&position).is_some_and(|shown| keep(shown, &row)) {
                    rows.insert(position, row);
                }
            }
        });
    }

    /// The rows in view by position, `None` for one not read yet (tracked).
    pub fn shown_rows(&self) -> Vec<(u32, Option<T>)> {
        let range = self.visible();
        self.rows.with(|rows| {
            range
                .map(|position| (position, rows.get(&position).cloned()))
                .collect()
        })
    }

    /// Where the row at `position` is placed, as a CSS `top`.
    pub fn top_of(&self, position: u32) -> String {
        format!("{}px", f64::from(position) * self.row_height)
    }

    /// The height of the whole list, as a CSS `height` (tracked).
    pub fn height(&self) -> String {
        format!("{}px", f64::from(self.total.get()) * self.row_height)
    }

    /// The list is shown from its top again (a new query).
    pub fn scroll_to_top(&self, scroller: NodeRef<leptos::html::Div>) {
        if let Some(element) = scroller.get_untracked() {
            element.set_scroll_top(0);
        }
        self.scroll_top.set(0.0);
    }

    /// Follows the scroller's height from when it is in the DOM; the returned handler, for
    /// its `scroll` event, follows its offset too.
    pub fn follow_scroller(
        &self,
        scroller: NodeRef<leptos::html::Div>,
    ) -> impl Fn(leptos::ev::Event) + Copy + 'static {
        let list = *self;
        let height_of = move |element: &web_sys::HtmlDivElement| {
            f64::from(element.client_height()).max(list.row_height)
        };
        scroller.on_load(move |element| list.viewport_height.set(height_of(&element)));
        move |_| {
            if let Some(element) = scroller.get_untracked() {
                list.scroll_top.set(f64::from(element.scroll_top()));
                list.viewport_height.set(height_of(&element));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::positions_in_view;
    use wasm_bindgen_test::wasm_bindgen_test;

    #[wasm_bindgen_test]
    fn the_rows_in_view_follow_the_scroll_offset_with_overscan() {
        // 10 rows of 50 px in view at the top: 4 more below, none above.
        assert_eq!(positions_in_view(1_000, 50.0, 0.0, 500.0), 0..15);
        // Scrolled 100 rows down, a third into one.
        assert_eq!(positions_in_view(1_000, 50.0, 5_016.0, 500.0), 96..115);
        // Near the end, and with fewer rows than fit.
        assert_eq!(positions_in_view(1_000, 50.0, 49_800.0, 500.0), 992..1_000);
        assert_eq!(positions_in_view(3, 50.0, 0.0, 500.0), 0..3);
        assert_eq!(positions_in_view(0, 50.0, 0.0, 500.0), 0..0);
    }
}
