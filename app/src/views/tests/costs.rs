//! Money shown exactly everywhere: a sub-cent request cost ($0.0000036) reads the same on
//! the dashboard's recent requests, on Logs, and on a web-console user's own pages
//! (balance and spend), never rounded to $0.00.

use super::*;
use crate::console::user::UserConsole;
use crate::views::user::{UserPage, UserShell};

/// $0.0000036 in nano-dollars.
const SUB_CENT: i64 = 3_600;

#[tokio::test]
async fn a_sub_cent_cost_shows_exactly_on_the_dashboard_and_logs() {
    let t = console().await;
    first_run::ensure(&t.console.state).unwrap();
    let mut r = record(1, "gpt-4o-mini", 200, None);
    r.cost_nano = SUB_CENT;
    commit(&t, &[r]);
    for p in [Page::Dashboard, Page::Logs] {
        let html = page(&t.console, p);
        assert!(html.contains("$0.0000036"), "{}: {html}", p.title());
    }
}

#[tokio::test]
async fn a_users_balance_and_spend_show_exactly_in_the_web_console() {
    let t = console().await;
    first_run::ensure(&t.console.state).unwrap();
    let c = &t.console;
    let n = c
        .apply(Action::CreateUser(NewUserForm {
            username: "carol".into(),
            password: "Carol-pass-1".into(),
            role: "user".into(),
            group: "default".into(),
            balance_usd: "5".into(),
            ..Default::default()
        }))
        .await
        .unwrap();
    assert!(n.ok, "{n:?}");
    let carol = c
        .state
        .store
        .with(|s| gateway_core::store::users::list(s))
        .unwrap()
        .into_iter()
        .find(|u| u.username == "carol")
        .unwrap();
    let mut r = record(1, "gpt-4o-mini", 200, None);
    r.cost_nano = SUB_CENT;
    r.user_id = Some(carol.id.clone());
    commit(&t, &[r]);
    let data = UserConsole::new(c.state.clone(), carol.id.clone(), "127.0.0.1:3000")
        .load(&LogFilter::default())
        .unwrap();
    assert_eq!(data.used, "$0.0000036");
    assert_eq!(data.balance, "$4.9999964");
    let mut dom = VirtualDom::new_with_props(
        move |data: UserData| {
            rsx! { UserShell { data, page: UserPage::Overview, notice: None, base_url: "http://127.0.0.1:3000".to_string(), on_navigate: |_| {}, on_action: |_| {} } }
        },
        data,
    );
    dom.rebuild_in_place();
    let html = dioxus_ssr::render(&dom);
    assert!(
        html.contains("$4.9999964") && html.contains("Spent so far: $0.0000036"),
        "{html}"
    );
}
