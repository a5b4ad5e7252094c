//! Pricing: the price table (USD per 1M tokens), edited in place, aliases included. A
//! refused Save keeps the form as typed, every refused field marked.

use dioxus::prelude::*;

use super::data::{Action, Notice, PriceForm, PriceRow};
use super::form::{FieldMessage, TextInput, field_mark, invalid, use_on_success};

/// The id of the price form in notices (see `Notice::completing`).
pub const PRICE_FORM: &str = "price";

#[component]
pub fn PricingPage(
    prices: Vec<PriceRow>,
    notice: Option<Notice>,
    on_action: EventHandler<Action>,
) -> Element {
    let mut f = use_signal(PriceForm::default);
    // What the last Save sent (its refused fields are marked while they hold it).
    let mut sent = use_signal(|| None::<PriceForm>);
    use_on_success(&notice, PRICE_FORM, move || {
        f.set(PriceForm::default());
        sent.set(None);
    });
    let mut confirm = use_signal(|| None::<String>);
    let cur = f();
    let last = sent();
    let mark = |field: &str, get: fn(&PriceForm) -> String| {
        field_mark(
            &notice,
            PRICE_FORM,
            field,
            last.as_ref().map(get).as_deref(),
            &get(&cur),
        )
    };
    let m_model = mark("model", |f| f.model.clone());
    let m_input = mark("input", |f| f.input.clone());
    let m_output = mark("output", |f| f.output.clone());
    let m_read = mark("cache_read", |f| f.cache_read.clone());
    let m_write = mark("cache_write", |f| f.cache_write.clone());
    let m_alias = mark("alias_of", |f| f.alias_of.clone());
    rsx! {
        section { class: "bc-card bc-form", id: "price-form",
            h2 { "Set a price (USD per 1M tokens)" }
            div { class: "bc-fields",
                label { "Model"
                    TextInput { id: "price-model", value: cur.model.clone(), placeholder: "gpt-4o-mini", aria_invalid: invalid(&m_model), oninput: move |v| f.with_mut(|f| f.model = v) }
                    FieldMessage { message: m_model.clone() }
                }
                label { "Input"
                    TextInput { id: "price-input", value: cur.input.clone(), inputmode: "decimal", aria_invalid: invalid(&m_input), oninput: move |v| f.with_mut(|f| f.input = v) }
                    FieldMessage { message: m_input.clone() }
                }
                label { "Output"
                    TextInput { id: "price-output", value: cur.output.clone(), inputmode: "decimal", aria_invalid: invalid(&m_output), oninput: move |v| f.with_mut(|f| f.output = v) }
                    FieldMessage { message: m_output.clone() }
                }
                label { "Cache read"
                    TextInput { id: "price-cache-read", value: cur.cache_read.clone(), inputmode: "decimal", aria_invalid: invalid(&m_read), oninput: move |v| f.with_mut(|f| f.cache_read = v) }
                    FieldMessage { message: m_read.clone() }
                }
                label { "Cache write"
                    TextInput { id: "price-cache-write", value: cur.cache_write.clone(), inputmode: "decimal", aria_invalid: invalid(&m_write), oninput: move |v| f.with_mut(|f| f.cache_write = v) }
                    FieldMessage { message: m_write.clone() }
                }
                label { "Or alias of (shares that model's price)"
                    TextInput { id: "price-alias-of", value: cur.alias_of.clone(), aria_invalid: invalid(&m_alias), oninput: move |v| f.with_mut(|f| f.alias_of = v) }
                    FieldMessage { message: m_alias.clone() }
                }
            }
            div { class: "bc-toolbar",
                button { class: "bc-button bc-button-primary", id: "save-price", onclick: move |_| { sent.set(Some(f())); on_action.call(Action::SavePrice(f())); }, "Save price" }
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
