//! Logs: filter by model, status and channel, page through, open one request's detail
//! (failover trail, burst decision, flags, error).

use dioxus::prelude::*;

use super::form::TextInput;

use super::data::{Action, LogFilter, LogItem, LogsData};

#[component]
pub fn LogsPage(data: LogsData, on_action: EventHandler<Action>) -> Element {
    let mut f = use_signal(|| data.filter.clone());
    let mut open = use_signal(|| None::<i64>);
    let cur = f();
    let pages = ((data.total + data.page_size - 1) / data.page_size.max(1)).max(1);
    let page = data.filter.page.max(1);
    let base = data.filter.clone();
    let (prev, next) = (
        LogFilter {
            page: page - 1,
            ..base.clone()
        },
        LogFilter {
            page: page + 1,
            ..base.clone()
        },
    );
    rsx! {
        section { class: "bc-card bc-form", id: "log-filter",
            div { class: "bc-fields bc-fields-inline",
                label { "Model" TextInput { value: cur.model.clone(), oninput: move |v: String| f.with_mut(|f| f.model = v) } }
                label { "Status"
                    select { onchange: move |e| f.with_mut(|f| f.status = e.value()),
                        option { value: "", selected: cur.status.is_empty(), "all" }
                        option { value: "ok", selected: cur.status == "ok", "successful" }
                        option { value: "error", selected: cur.status == "error", "failed" }
                    }
                }
                label { "Channel" TextInput { value: cur.channel.clone(), placeholder: "name or id", oninput: move |v: String| f.with_mut(|f| f.channel = v) } }
                button { class: "bc-button bc-button-primary", onclick: move |_| on_action.call(Action::FilterLogs(LogFilter { page: 1, ..f() })), "Apply" }
            }
        }
        p { class: "bc-caption", id: "log-count", "{data.total} requests · page {page} of {pages}" }
        if data.rows.is_empty() {
            section { class: "bc-card bc-empty", p { "No requests match." } }
        } else {
            LogTable { rows: data.rows.clone(), open: open(), on_toggle: move |id| open.set(if open() == Some(id) { None } else { Some(id) }) }
        }
        div { class: "bc-toolbar",
            button { class: "bc-button", disabled: page <= 1, onclick: move |_| on_action.call(Action::FilterLogs(prev.clone())), "Previous" }
            button { class: "bc-button", disabled: page >= pages, onclick: move |_| on_action.call(Action::FilterLogs(next.clone())), "Next" }
        }
    }
}

/// The requests of one page; a request's detail opens in the row under it, where the user
/// clicked (below 25 rows it was out of sight).
#[component]
pub fn LogTable(rows: Vec<LogItem>, open: Option<i64>, on_toggle: EventHandler<i64>) -> Element {
    rsx! {
        div { class: "bc-table-wrap",
            table { class: "bc-table", id: "logs-table",
                thead { tr { th { "Time" } th { "Model" } th { "Channel" } th { "Status" } th { "Latency" } th { "Tokens in / out" } th { "Cost" } th { "" } } }
                tbody {
                    for r in rows {
                        tr { key: "{r.id}", class: if open == Some(r.id) { "bc-row-selected" } else { "" },
                            td { "{r.time}" }
                            td { "{r.model}" }
                            td { "{r.channel}" }
                            td { span { class: if r.status >= 400 { "bc-status-bad" } else { "bc-status-ok" }, "{r.status}" } if r.failover.is_some() { span { class: "bc-caption", " failover" } } }
                            td { "{r.latency}" }
                            td { "{r.prompt_tokens} / {r.completion_tokens}" }
                            td { "{r.cost}" }
                            td { button { class: "bc-button bc-button-small", "aria-expanded": if open == Some(r.id) { "true" } else { "false" },
                                onclick: move |_| on_toggle.call(r.id), "Details" } }
                        }
                        if open == Some(r.id) {
                            tr { class: "bc-detail-row", td { colspan: "8", LogDetail { item: r.clone() } } }
                        }
                    }
                }
            }
        }
    }
}

#[component]
pub fn LogDetail(item: LogItem) -> Element {
    let row = |k: &'static str, v: String| rsx! { tr { th { "{k}" } td { "{v}" } } };
    rsx! {
        section { class: "bc-card", id: "log-detail",
            h2 { "Request {item.request_id}" }
            table { class: "bc-table bc-kv",
                tbody {
                    {row("Endpoint", format!("{}{}", item.endpoint, if item.stream { " (stream)" } else { "" }))}
                    {row("Model", item.model.clone())}
                    {row("Served by", format!("{} ({})", item.channel, item.locality.clone().unwrap_or_else(|| "-".into())))}
                    {row("Status", item.status.to_string())}
                    {row("Failover trail", item.failover.clone().unwrap_or_else(|| "none: the first channel answered".into()))}
                    {row("Burst decision", item.burst.clone().unwrap_or_else(|| "not a burst-routed request".into()))}
                    {row("Flags", item.flags.clone().unwrap_or_default())}
                    {row("Error", item.error.clone().unwrap_or_default())}
                }
            }
        }
    }
}
