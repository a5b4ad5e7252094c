//! Saving a listen address while the environment sets it: the gateway's own variables
//! (`BURNCLOUD_PORT` wins over `PORT`) are named in the save message and on the page.
//! The environment is set for a child run of this test binary, never in this process.

use super::*;

const CHILD: &str = "BURNCLOUD_TEST_LISTEN_ENV_CHILD";

#[test]
fn saving_a_listen_address_says_the_environment_keeps_the_port() {
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "views::tests::listen_env::child_saves_with_burncloud_port_set",
            "--exact",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD, "1")
        .env("BURNCLOUD_PORT", "3005")
        .env_remove("PORT")
        .env_remove("HOST")
        .env_remove("BURNCLOUD_HOST")
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{text}");
    assert!(text.contains("1 passed"), "the child test ran: {text}");
    assert!(text.contains("child checked"), "{text}");
}

/// Run by the test above with `BURNCLOUD_PORT=3005` (does nothing otherwise).
#[tokio::test]
async fn child_saves_with_burncloud_port_set() {
    if std::env::var(CHILD).is_err() {
        return;
    }
    assert_eq!(crate::console::listen_env(), ["BURNCLOUD_PORT=3005"]);
    let t = console().await;
    first_run::ensure(&t.console.state).unwrap();
    let c = &t.console;
    let n = c
        .apply(Action::SaveListen {
            host: "127.0.0.1".into(),
            port: "3001".into(),
        })
        .await
        .unwrap();
    assert!(n.ok, "{n:?}");
    assert!(
        n.text.contains("127.0.0.1:3001 saved")
            && n.text
                .contains("BURNCLOUD_PORT=3005 in the environment keeps the gateway on")
            && n.text.contains("started without it"),
        "{n:?}"
    );
    let html = page(c, Page::Settings);
    assert!(
        html.contains("BURNCLOUD_PORT=3005 in the environment decides the address"),
        "{html}"
    );
    eprintln!("child checked");
}
