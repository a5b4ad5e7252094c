//! Pricing: the price table (USD per 1M tokens), edited in place, aliases included.

use dioxus::prelude::*;

use super::data::{Action, PriceForm, PriceRow};

#[component]
pub fn PricingPage(prices: Vec<PriceRow>, on_action: EventHandler<Action>) -> Element {
    let mut f = use_signal(PriceForm::default);
    let mut confirm = use_signal(|| None::<String>);
    let cur = f();
    rsx! {
        section { class: "bc-card bc-form", id: "price-form",
            h2 { "Set a price (USD per 1M tokens)" }
            div { class: "bc-fields",
                label { "Model" input { value: "{cur.model}", placeholder: "gpt-4o-mini", oninput: move |e| f.with_mut(|f| f.model = e.value()) } }
                label { "Input" input { value: "{cur.input}", inputmode: "decimal", oninput: move |e| f.with_mut(|f| f.input = e.value()) } }
                label { "Output" input { value: "{cur.output}", inputmode: "decimal", oninput: move |e| f.with_mut(|f| f.output = e.value()) } }
                label { "Cache read" input { value: "{cur.cache_read}", inputmode: "decimal", oninput: move |e| f.with_mut(|f| f.cache_read = e.value()) } }
                label { "Cache write" input { value: "{cur.cache_write}", inputmode: "decimal", oninput: move |e| f.with_mut(|f| f.cache_write = e.value()) } }
                label { "Or alias of (shares that model's price)" input { value: "{cur.alias_of}", oninput: move |e| f.with_mut(|f| f.alias_of = e.value()) } }
            }
            div { class: "bc-toolbar",
                button { class: "bc-button bc-button-primary", id: "save-price", onclick: move |_| { on_action.call(Action::SavePrice(f())); f.set(PriceForm::default()); }, "Save price" }
            }
        }
        if prices.is_empty() {
            section { class: "bc-card bc-empty",
                p { "No prices yet: requests are served and billed $0, flagged unpriced in the logs." }
            }
        } else {
            div { class: "bc-table-wrap",
                table { class: "bc-table", id: "prices-table",
                    thead { tr { th { "Model" } th { "Input" } th { "Output" } th { "Cache read" } th { "Cache write" } th { "Alias of" } th { "Actions" } } }
                    tbody {
                        for p in prices {
                            tr { key: "{p.model}",
                                td { "{p.model}" }
                                td { "{p.input}" }
                                td { "{p.output}" }
                                td { "{p.cache_read}" }
                                td { "{p.cache_write}" }
                                td { {p.alias_of.clone().unwrap_or_default()} }
                                td { class: "bc-actions",
                                    button { class: "bc-button bc-button-small",
                                        onclick: { let p = p.clone(); move |_| f.set(PriceForm {
                                            model: p.model.clone(),
                                            input: if p.alias_of.is_some() { String::new() } else { p.input.trim_start_matches('$').to_string() },
                                            output: if p.alias_of.is_some() { String::new() } else { p.output.trim_start_matches('$').to_string() },
                                            cache_read: p.cache_read.trim_start_matches('$').to_string(),
                                            cache_write: p.cache_write.trim_start_matches('$').to_string(),
                                            alias_of: p.alias_of.clone().unwrap_or_default(),
                                        }) },
                                        "Edit"
                                    }
                                    if confirm() == Some(p.model.clone()) {
                                        button { class: "bc-button bc-button-small bc-button-danger", onclick: { let m = p.model.clone(); move |_| { on_action.call(Action::DeletePrice(m.clone())); confirm.set(None); } }, "Delete {p.model}?" }
                                        button { class: "bc-button bc-button-small", onclick: move |_| confirm.set(None), "Cancel" }
                                    } else {
                                        button { class: "bc-button bc-button-small", onclick: { let m = p.model.clone(); move |_| confirm.set(Some(m.clone())) }, "Delete" }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}
