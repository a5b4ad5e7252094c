//! No CLI in the window: every page rendered in the states whose messages the libraries
//! word for the CLI or the HTTP API (engine missing, a model failed for each reason, a GPU
//! the engine leaves idle, an alias refused for a model without a price, a group that
//! does not exist, a deploy without an engine), and no visible text names a `burncloud`
//! command, a `--flag`, `huggingface-cli` or the console API.

use kuchikiki::iter::NodeIterator;
use kuchikiki::traits::TendrilSink;
use llama_manager::runtime::{State, classify::FailureKind, deploy};

use super::*;
use crate::console::words::{self, FAILURE_KINDS};

/// The page's visible text (what a reader sees; attributes left out), one line per node.
fn visible_text(html: &str) -> Vec<String> {
    let doc = kuchikiki::parse_html().one(html).document_node;
    doc.descendants()
        .text_nodes()
        .map(|t| t.borrow().trim().to_string())
        .filter(|t| !t.is_empty())
        .collect()
}

fn cli_in(what: &str, html: &str) -> Vec<String> {
    visible_text(html)
        .into_iter()
        .filter_map(|t| words::sends_to_cli(&t).map(|why| format!("{what}: {why} in {t:?}")))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_page_sends_a_desktop_user_to_the_command_line() {
    // No engine in the test's data folder (one on PATH or in LLAMA_SERVER would show
    // "found": the engine-missing states are then left out, with a note).
    let t = console().await;
    let engine_missing = crate::console::load::engine_text(t.dir.path()).is_err();
    if !engine_missing {
        eprintln!(
            "an engine is installed on this machine: the engine-missing states are not shown"
        );
    }
    first_run::ensure(&t.console.state).unwrap();
    let c = &t.console;
    let file = t.dir.path().join("tiny.Q8_0.gguf");
    std::fs::write(
        &file,
        llama_manager::testing::gguf_writer::tiny_llama("tiny", 1),
    )
    .unwrap();
    let m = c.library.import(&file).unwrap();
    let mut notices = Vec::new();
    let n = c
        .apply(Action::CreateUser(NewUserForm {
            username: "dave".into(),
            password: "Dave-pass-12".into(),
            role: "user".into(),
            group: "default".into(),
            ..Default::default()
        }))
        .await
        .unwrap();
    assert!(n.ok, "{n:?}");
    let dave = load(c)
        .users
        .users
        .into_iter()
        .find(|u| u.name == "dave")
        .unwrap()
        .id;
    // A deploy without an engine, an alias for an unpriced model, an unknown group.
    let mut actions = vec![
        Action::SavePrice(PriceForm {
            model: "my-alias".into(),
            alias_of: "unpriced-model".into(),
            ..Default::default()
        }),
        Action::SetUserGroup {
            id: dave,
            group: "gold".into(),
        },
    ];
    if engine_missing {
        actions.push(Action::Deploy(DeployForm {
            model_id: m.id,
            start: true,
            ..Default::default()
        }));
    }
    for a in actions {
        let n = c.apply(a).await.unwrap();
        assert!(!n.ok, "{n:?}");
        notices.push(n);
    }
    assert!(
        notices[0].text.contains("Pricing page"),
        "the alias refusal names the page: {:?}",
        notices[0]
    );
    assert!(
        notices[1].text.contains("Users page"),
        "the group refusal names the page: {:?}",
        notices[1]
    );
    let mut report = Vec::new();
    let mut shown = 0;
    // Each reason a model fails, as the supervisor records it.
    for kind in FAILURE_KINDS {
        let detail = match kind {
            FailureKind::PortInUse => llama_manager::runtime::ports::explain_busy(8080, &[]),
            FailureKind::Spawn => "/nonexistent/llama-server: not found".into(),
            _ => "exit status 1".into(),
        };
        let msg = format!("{}: {detail} — {}", kind.label(), kind.advice());
        c.state
            .store
            .with(|conn| {
                deploy::save(conn, m.id, Default::default(), None)?;
                deploy::report(
                    conn,
                    m.id,
                    &deploy::Status {
                        state: State::Failed,
                        last_error: Some(msg.clone()),
                        ..Default::default()
                    },
                )
            })
            .unwrap();
        let mut data = load(c);
        // Without a runtime in this process the page shows the table's state as stopped.
        let d = data.models.models[0].deployment.as_mut().unwrap();
        d.state = "failed".into();
        assert!(
            d.last_error.as_deref().unwrap().contains(kind.label()),
            "{d:?}"
        );
        // A GPU the CPU engine leaves idle, as the engine's view reports it.
        let mut hw = llama_manager::hardware::Hardware::cpu_only(1 << 34, 1 << 33, 8);
        hw.gpus =
            llama_manager::hardware::parse_nvidia_smi("NVIDIA GeForce RTX 4070, 12288, 12000\n");
        llama_manager::hardware::apply_engine_view(&mut hw, Ok(vec![]), "cpu");
        data.models.gpu_warning = crate::console::load::gpu_warning(&hw);
        assert!(data.models.gpu_warning.is_some());
        assert_eq!(data.models.engine.as_result().is_err(), engine_missing);
        let html = render_page(info(GatewayState::Running), data, Page::Models, None);
        assert!(
            html.contains(kind.label()) && html.contains("gpu-warning"),
            "{html}"
        );
        shown += 1;
        report.extend(cli_in(&format!("Models ({})", kind.label()), &html));
    }
    let data = load(c);
    for p in Page::ALL {
        for n in std::iter::once(None).chain(notices.iter().cloned().map(Some)) {
            let html = render_page(info(GatewayState::Running), data.clone(), p, n);
            shown += 1;
            report.extend(cli_in(p.title(), &html));
        }
    }
    assert!(shown > Page::ALL.len());
    assert!(
        report.is_empty(),
        "text that sends a desktop user to the CLI:\n{}",
        report.join("\n")
    );
}
