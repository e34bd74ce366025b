//! The scan field, "Scan or search": a scanner's code adds its product; typing searches by
//! name, SKU or barcode as you type (index lookups with a limit), and the arrow keys and Enter
//! pick a result. A camera button where the browser can read barcodes with the camera.

use crate::i18n::{t, Msg};
use leptos::prelude::*;
use leptos::task::spawn_local;
use web_sys::KeyboardEvent;

use super::{Counter, Notice, SEARCH_LIMIT};
use crate::ui::problems::Shown;

thread_local! {
    /// The latest search asked for; answers to older ones are dropped.
    static LATEST_SEARCH: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

/// Looks up what the scan field holds and shows the results (the latest search wins).
pub(super) fn search(counter: Counter) {
    let text = counter.query.get_untracked();
    let asked = LATEST_SEARCH.with(|latest| {
        latest.set(latest.get() + 1);
        latest.get()
    });
    if text.trim().is_empty() {
        counter.results.set(Vec::new());
        counter.highlighted.set(None);
        return;
    }
    spawn_local(async move {
        let driver = counter.driver.get_value();
        let found = driver.store().search_products(&text, SEARCH_LIMIT).await;
        if LATEST_SEARCH.with(|latest| latest.get()) != asked {
            return;
        }
        match found {
            Ok(products) => {
                counter.highlighted.set((!products.is_empty()).then_some(0));
                counter.results.set(products);
            }
            Err(error) => counter.notice.set(Some(Notice::Error(error.shown()))),
        }
    });
}

fn pick(counter: Counter, index: usize) {
    let Some(product) = counter
        .results
        .with_untracked(|results| results.get(index).cloned())
    else {
        return;
    };
    counter.add_picked(&product);
    counter.query.set(String::new());
    counter.results.set(Vec::new());
    counter.highlighted.set(None);
    counter.focus_scan_field();
}

#[component]
pub(super) fn SearchBox(counter: Counter, camera: bool) -> impl IntoView {
    let on_keydown = move |event: KeyboardEvent| {
        let count = counter.results.with_untracked(Vec::len);
        match event.key().as_str() {
            "ArrowDown" if count > 0 => {
                event.prevent_default();
                counter
                    .highlighted
                    .update(|h| *h = Some(h.map_or(0, |i| (i + 1).min(count - 1))));
            }
            "ArrowUp" if count > 0 => {
                event.prevent_default();
                counter
                    .highlighted
                    .update(|h| *h = Some(h.map_or(0, |i| i.saturating_sub(1))));
            }
            "Enter" => {
                event.prevent_default();
                if let Some(index) = counter.highlighted.get_untracked() {
                    pick(counter, index);
                } else {
                    // A code typed by hand: look it up as a scan.
                    let typed = counter.query.get_untracked().trim().to_owned();
                    if !typed.is_empty() {
                        counter.query.set(String::new());
                        counter.results.set(Vec::new());
                        counter.scanned(typed);
                    }
                }
            }
            _ => {}
        }
    };
    let video = NodeRef::<leptos::html::Video>::new();
    let scanning = RwSignal::new(false);
    let scan_with_camera = move |_| {
        scanning.set(true);
        spawn_local(async move {
            // Wait a frame so the video element is on the page.
            let Some(element) = video.get_untracked() else {
                scanning.set(false);
                return;
            };
            match crate::devices::camera::scan_with_camera(&element).await {
                Ok(code) => counter.scanned(code),
                Err(problem) => counter.notice.set(Some(Notice::Error(problem.shown()))),
            }
            scanning.set(false);
        });
    };
    view! {
        <div class="scan-box">
            <label class="scan-label" for="scan-field">{t(Msg::SearchLabel)}</label>
            <div class="scan-row">
                <input id="scan-field" type="text" node_ref=counter.scan_input
                    data-testid="scan-field" autocomplete="off" spellcheck="false"
                    placeholder=t(Msg::SearchPlaceholder)
                    role="combobox" aria-autocomplete="list" aria-controls="search-results"
                    aria-expanded=move || counter.results.with(|r| (!r.is_empty()).to_string())
                    prop:value=move || counter.query.get()
                    on:input=move |ev| {
                        counter.query.set(event_target_value(&ev));
                        search(counter);
                    }
                    on:keydown=on_keydown/>
                {camera.then(|| view! {
                    <button type="button" class="secondary" data-testid="camera-scan"
                        on:click=scan_with_camera>{t(Msg::SearchCamera)}</button>
                })}
            </div>
            {camera.then(|| view! {
                <video node_ref=video class="camera-view" class:hidden=move || !scanning.get()
                    playsinline=true muted=true></video>
            })}
            <Show when=move || counter.results.with(|r| !r.is_empty())>
                <ul class="search-results" id="search-results" role="listbox" data-testid="search-results">
                    <For each=move || counter.results.get().into_iter().enumerate()
                        key=|(index, product)| (*index, product.id.clone())
                        children=move |(index, product)| {
                            let price = crate::money::format_price(product.price_minor, &product.currency);
                            let detail = product.sku.clone().or_else(|| product.barcodes.first().cloned());
                            view! {
                                <li role="option" data-testid="search-result"
                                    aria-selected=move || (counter.highlighted.get() == Some(index)).to_string()
                                    class:highlighted=move || counter.highlighted.get() == Some(index)
                                    on:mousedown=move |ev| { ev.prevent_default(); pick(counter, index); }>
                                    <span class="name">{product.name.clone()}</span>
                                    <span class="detail">{detail}</span>
                                    <span class="amount">{price}</span>
                                </li>
                            }
                        }/>
                </ul>
            </Show>
        </div>
    }
}
