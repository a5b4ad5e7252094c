//! The desktop's words for messages that llama-manager and gateway-core word for the CLI
//! and the HTTP API (`burncloud engine install`, `--ctx`, `PUT /console/api/...`): the
//! CLI keeps its wording where it prints it, and the window names the button, field or
//! page that fixes the problem instead. Each rule rewrites one known fragment; the
//! fragments are built from the libraries' own values (every failure kind's advice, every
//! backend), and the tests build the real messages, so a reworded source message shows up
//! as a failing test rather than as a command in the window.

use llama_manager::runtime::classify::FailureKind;
use llama_manager::runtime::engine::Backend;

/// Every failure kind (the match in [`advice`] is exhaustive, this list is checked by it).
pub const FAILURE_KINDS: [FailureKind; 9] = [
    FailureKind::PortInUse,
    FailureKind::OutOfMemory,
    FailureKind::UnknownArchitecture,
    FailureKind::MissingLibrary,
    FailureKind::BadArguments,
    FailureKind::BadModel,
    FailureKind::Stalled,
    FailureKind::Spawn,
    FailureKind::Crashed,
];

/// What the user can do about a failed local model, in the window's words.
pub fn advice(kind: FailureKind) -> &'static str {
    match kind {
        FailureKind::PortInUse => {
            "choose another port in Deploy… (Port), or stop the program using it"
        }
        FailureKind::OutOfMemory => {
            "lower Context size or GPU layers in Deploy…, or pick a smaller quantization"
        }
        FailureKind::UnknownArchitecture => {
            "this llama-server is too old for the model: install a newer one with Install engine on the Models page"
        }
        FailureKind::BadArguments => "check the deployment's extra arguments",
        FailureKind::Spawn => {
            "install one with Install engine on the Models page, or set LLAMA_SERVER to a working llama-server"
        }
        k @ (FailureKind::MissingLibrary
        | FailureKind::BadModel
        | FailureKind::Stalled
        | FailureKind::Crashed) => k.advice(),
    }
}

/// `text` with every CLI or API instruction replaced by the window's.
pub fn desktop(text: &str) -> String {
    let mut t = text.to_string();
    for k in FAILURE_KINDS {
        t = t.replace(k.advice(), advice(k));
    }
    for b in Backend::ALL {
        t = t.replace(
            &format!(
                "install it with `burncloud engine install --backend {b}` (see `burncloud engine list`)"
            ),
            "choose another engine in Deploy…, or install it: pick it in Deploy… and press Install this engine",
        );
    }
    t = t
        .replace(
            "install one with `burncloud engine install`, or set LLAMA_SERVER to its path",
            "install one with Install engine on the Models page, or set LLAMA_SERVER to its path",
        )
        .replace(
            "Install a GPU engine: `burncloud engine install` picks the right one (e.g. --backend vulkan)",
            "Install the GPU engine (the button below) picks the right build for it",
        )
        .replace(" (see `burncloud model list`)", " (the Models page lists it)")
        .replace(
            "install one with `burncloud engine install`",
            "install one with Install engine on the Models page",
        );
    // Messages with a name inside the instruction.
    t = between(
        &t,
        "set one first (burncloud price set ",
        ")",
        "price it first on the Pricing page",
    );
    t = between(
        &t,
        "create it first (PUT /console/api/groups/",
        ")",
        "create it first under Groups on the Users page",
    );
    between(&t, "(use --port ", ")", "(type it in Deploy…'s Port field)")
}

/// `text` with each span from `start` to the next `end` (both included) replaced by `with`.
fn between(text: &str, start: &str, end: &str, with: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(i) = rest.find(start) {
        let after = &rest[i + start.len()..];
        let Some(j) = after.find(end) else { break };
        out.push_str(&rest[..i]);
        out.push_str(with);
        rest = &after[j + end.len()..];
    }
    out.push_str(rest);
    out
}

/// Whether `text` still sends a desktop user to a command line: a `burncloud` command,
/// a `--flag`, `huggingface-cli`, or the HTTP API.
#[cfg(test)]
pub fn sends_to_cli(text: &str) -> Option<&'static str> {
    let flag = text.match_indices("--").any(|(i, _)| {
        let before_ok = i == 0 || !text[..i].ends_with(|c: char| c.is_alphanumeric());
        let after = text[i + 2..].chars().next();
        before_ok && after.is_some_and(|c| c.is_ascii_lowercase())
    });
    if text.contains("burncloud ") {
        Some("a burncloud command")
    } else if flag {
        Some("a --flag")
    } else if text.contains("huggingface-cli") {
        Some("huggingface-cli")
    } else if text.contains("/console/api/") {
        Some("the HTTP API")
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use llama_manager::runtime::engine::EngineError;

    /// The messages the libraries make, worded for the CLI.
    fn cli_messages() -> Vec<String> {
        let mut v: Vec<String> = FAILURE_KINDS
            .iter()
            .map(|k| format!("{}: exit 1 — {}", k.label(), k.advice()))
            .collect();
        v.push(
            EngineError::NotFound {
                runtimes: "/data/runtimes".into(),
            }
            .to_string(),
        );
        for b in Backend::ALL {
            v.push(EngineError::BackendMissing(b).to_string());
        }
        v.push(llama_manager::runtime::ports::explain_busy(8080, &[]));
        v.push(
            "no price for gpt-x: set one first (burncloud price set gpt-x --input X --output Y)"
                .into(),
        );
        v.push(
            "no group 'gold': create it first (PUT /console/api/groups/gold or burncloud group set gold --ratio 1)".into(),
        );
        v.push("model 7 is not in the library (see `burncloud model list`)".into());
        v
    }

    #[test]
    fn every_cli_instruction_is_worded_for_the_window() {
        let msgs = cli_messages();
        // The CLI's words are what the rules rewrite (else this test proves nothing).
        assert!(msgs.iter().filter(|m| sends_to_cli(m).is_some()).count() >= 8);
        for m in msgs {
            let d = desktop(&m);
            assert_eq!(sends_to_cli(&d), None, "{m:?} became {d:?}");
        }
        assert_eq!(
            desktop(
                "no price for gpt-x: set one first (burncloud price set gpt-x --input X --output Y)"
            ),
            "no price for gpt-x: price it first on the Pricing page"
        );
        assert_eq!(
            desktop(
                "no group 'gold': create it first (PUT /console/api/groups/gold or burncloud group set gold --ratio 1)"
            ),
            "no group 'gold': create it first under Groups on the Users page"
        );
        assert_eq!(desktop("plain words stay"), "plain words stay");
    }

    #[test]
    fn the_check_finds_commands_and_flags_but_not_words() {
        assert!(sends_to_cli("run `burncloud engine install`").is_some());
        assert!(sends_to_cli("lower it (--ctx)").is_some());
        assert!(sends_to_cli("run huggingface-cli login").is_some());
        assert_eq!(sends_to_cli("BurnCloud runs next to burncloud."), None);
        assert_eq!(sends_to_cli("Start with the system -- or not"), None);
        assert_eq!(sends_to_cli("a 2024-01--02 date"), None);
    }
}
