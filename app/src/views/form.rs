//! What every form shares: inputs that keep every keystroke, a refused field's mark, and
//! emptying a form once its action succeeded.
//!
//! Inputs are not bound to their value while the user types. A bound input (`value:`)
//! is rewritten on every render with the value of the last input event the app has seen;
//! a key typed while that event made its round trip (webview → app → webview) is then
//! overwritten, so fast typing (a password manager's auto-type) lost characters.
//! [`TextInput`] sets the value when the input is made and when the page sets another one
//! (emptied after a success, filled by Edit), never in answer to the user's own typing.

use std::cell::RefCell;
use std::rc::Rc;

use dioxus::prelude::*;

use super::data::Notice;

/// A text input (any `type` but checkbox and radio) showing `value` without writing it
/// back while the user types; `oninput` gets every change. Other attributes (`type`,
/// `id`, `placeholder`, `aria-label`, …) pass through to the `input`.
#[component]
pub fn TextInput(
    value: String,
    oninput: EventHandler<String>,
    /// Takes the keyboard focus when shown.
    #[props(default)]
    focused: bool,
    #[props(extends = GlobalAttributes, extends = input)] attributes: Vec<Attribute>,
) -> Element {
    let (generation, initial, held) = use_held(&value);
    let input = rsx! {
        input {
            key: "{generation}",
            initial_value: "{initial}",
            oninput: move |e: FormEvent| typed(&held, &oninput, e),
            onmounted: move |e: MountedEvent| focus_if(focused, e),
            ..attributes,
        }
    };
    rsx! { {std::iter::once(input)} }
}

/// What a field holds as far as the app knows, its generation, and the value it was made
/// with. A `value` the field did not send itself is the page setting another one: the
/// field is made again (a new key, the returned generation) with it.
type Held = Rc<RefCell<(String, u64, String)>>;

fn use_held(value: &str) -> (u64, String, Held) {
    let held: Held = use_hook(|| Rc::new(RefCell::new((value.to_string(), 0, value.to_string()))));
    let mut h = held.borrow_mut();
    if h.0 != value {
        *h = (value.to_string(), h.1 + 1, value.to_string());
    }
    let out = (h.1, h.2.clone());
    drop(h);
    (out.0, out.1, held)
}

/// The user typed: remember it (so it is not written back) and pass it on.
fn typed(held: &Held, oninput: &EventHandler<String>, e: FormEvent) {
    let v = e.value();
    held.borrow_mut().0 = v.clone();
    oninput.call(v);
}

async fn focus_if(focused: bool, e: MountedEvent) {
    if focused {
        let _ = e.set_focus(true).await;
    }
}

/// A refused field's message, under the field.
#[component]
pub fn FieldMessage(message: Option<String>) -> Element {
    rsx! {
        if let Some(m) = message {
            span { class: "bc-field-error", "{m}" }
        }
    }
}

/// The mark of `field` in `form`: the notice's message for it, while the field still holds
/// what the refused Save sent (`sent`: the field's value then; changing it clears the mark).
pub fn field_mark(
    notice: &Option<Notice>,
    form: &str,
    field: &str,
    sent: Option<&str>,
    now: &str,
) -> Option<String> {
    if sent? != now {
        return None;
    }
    notice
        .as_ref()?
        .field_error(form, field)
        .map(str::to_string)
}

/// `aria-invalid` for a field with `mark`.
pub fn invalid(mark: &Option<String>) -> &'static str {
    if mark.is_some() { "true" } else { "false" }
}

/// Run `empty` once for each success notice of `form` (two equal successes in a row are
/// two notices: their serials differ).
pub fn use_on_success(notice: &Option<Notice>, form: &str, mut empty: impl FnMut() + 'static) {
    let done = notice
        .as_ref()
        .filter(|n| n.completes(form))
        .and_then(|n| n.completed.clone());
    use_effect(use_reactive((&done,), move |(done,)| {
        if done.is_some() {
            empty();
        }
    }));
}

/// A multi-line [`TextInput`]: shows `value` without writing it back while the user types.
/// `focused`: takes the keyboard focus when shown.
#[component]
pub fn TextArea(
    value: String,
    oninput: EventHandler<String>,
    #[props(default)] onkeydown: Option<EventHandler<KeyboardEvent>>,
    #[props(default)] focused: bool,
    #[props(extends = GlobalAttributes, extends = textarea)] attributes: Vec<Attribute>,
) -> Element {
    let (generation, initial, held) = use_held(&value);
    let area = rsx! {
        textarea {
            key: "{generation}",
            initial_value: "{initial}",
            oninput: move |e: FormEvent| typed(&held, &oninput, e),
            onkeydown: move |e: KeyboardEvent| {
                if let Some(h) = onkeydown {
                    h.call(e);
                }
            },
            onmounted: move |e: MountedEvent| focus_if(focused, e),
            ..attributes,
        }
    };
    rsx! { {std::iter::once(area)} }
}
