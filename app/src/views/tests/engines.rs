//! Engines per backend in the Deploy dialog: the installed backends (read from the
//! runtimes folder) are offered as they are, the others marked "not installed", and
//! choosing one of those offers to install it.

use super::*;
use crate::views::models::DeployDialog;

fn render_dialog(engine: &str, installed: Vec<String>) -> String {
    let form = DeployForm {
        model_id: 1,
        engine: engine.into(),
        ..Default::default()
    };
    let mut dom = VirtualDom::new_with_props(
        move |(form, installed): (DeployForm, Vec<String>)| {
            rsx! { DeployDialog { form, installed, on_install: |_| {}, on_submit: |_| {}, on_cancel: |_| {} } }
        },
        (form, installed),
    );
    dom.rebuild_in_place();
    dioxus_ssr::render(&dom)
}

/// A fake installed engine: `runtimes/<dir>/llama-server` (executable) and its manifest.
fn fake_engine(data_dir: &std::path::Path, dir: &str, backend: &str) {
    let d = data_dir.join("runtimes").join(dir);
    std::fs::create_dir_all(&d).unwrap();
    let exe = d.join(llama_manager::runtime::engine::EXE);
    std::fs::write(&exe, "#!/bin/sh\nexit 1\n").unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&exe, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    std::fs::write(
        d.join("engine.json"),
        format!(
            r#"{{"backend":"{backend}","variant":null,"tag":"b1","assets":[],"verified":true,"reason":"test"}}"#
        ),
    )
    .unwrap();
}

#[test]
fn the_deploy_dialog_lists_installed_backends_and_offers_to_install_the_others() {
    let dir = tempfile::tempdir().unwrap();
    let installed = crate::console::load::installed_backends(dir.path());
    assert!(installed.is_empty(), "{installed:?}");
    fake_engine(dir.path(), "llama-b1-cuda", "cuda");
    fake_engine(dir.path(), "llama-b1-cpu", "cpu");
    let installed = crate::console::load::installed_backends(dir.path());
    assert_eq!(installed, ["cpu", "cuda"]);

    let html = render_dialog("cuda", installed.clone());
    assert!(html.contains(">cuda</option>"), "{html}");
    assert!(html.contains(">cpu</option>"), "{html}");
    assert!(html.contains(">vulkan (not installed)</option>"), "{html}");
    assert!(html.contains("auto (the installed engine"), "{html}");
    assert!(!html.contains("Install this engine"), "{html}");
    // A backend without an engine: said, with its install button.
    let html = render_dialog("vulkan", installed.clone());
    assert!(
        html.contains("No vulkan engine is installed") && html.contains("Install this engine"),
        "{html}"
    );
    assert!(!render_dialog("auto", installed).contains("Install this engine"));
}
