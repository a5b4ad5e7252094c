//! Why a llama-server child failed, from its exit and its last log lines.

use serde::Serialize;

/// A failure class. Deterministic classes are not retried: starting again would fail the
/// same way.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FailureKind {
    PortInUse,
    OutOfMemory,
    UnknownArchitecture,
    MissingLibrary,
    BadArguments,
    BadModel,
    /// Loading made no progress for the stall timeout.
    Stalled,
    /// The engine could not be started at all (missing, not executable).
    Spawn,
    /// Anything else: a crash, a signal.
    Crashed,
}

impl FailureKind {
    pub fn label(self) -> &'static str {
        match self {
            FailureKind::PortInUse => "port in use",
            FailureKind::OutOfMemory => "out of memory",
            FailureKind::UnknownArchitecture => "unknown model architecture",
            FailureKind::MissingLibrary => "missing library",
            FailureKind::BadArguments => "bad arguments",
            FailureKind::BadModel => "unreadable model file",
            FailureKind::Stalled => "loading stalled",
            FailureKind::Spawn => "engine could not be started",
            FailureKind::Crashed => "crashed",
        }
    }

    /// Whether restarting may help.
    pub fn retryable(self) -> bool {
        matches!(self, FailureKind::Crashed | FailureKind::Stalled)
    }

    /// What the user can do about it.
    pub fn advice(self) -> &'static str {
        match self {
            FailureKind::PortInUse => "choose another port (--port) or stop the program using it",
            FailureKind::OutOfMemory => {
                "lower the context size (--ctx) or the GPU layers (--gpu-layers), or pick a smaller quantization"
            }
            FailureKind::UnknownArchitecture => {
                "this llama-server is too old for the model: install a newer engine (`burncloud engine install`)"
            }
            FailureKind::MissingLibrary => {
                "the engine misses a shared library: install it, or use a self-contained llama-server build"
            }
            FailureKind::BadArguments => "check the extra arguments of the deployment",
            FailureKind::BadModel => "the GGUF file is damaged or incomplete: download it again",
            FailureKind::Stalled => {
                "the model made no loading progress: check the disk and the log"
            }
            FailureKind::Spawn => {
                "set LLAMA_SERVER to a working llama-server, or `burncloud engine install`"
            }
            FailureKind::Crashed => "see the log lines",
        }
    }
}

/// Classify from the log's last lines (most specific marker first).
pub fn classify(lines: &[String]) -> FailureKind {
    let has = |needles: &[&str]| {
        lines.iter().any(|l| {
            let l = l.to_ascii_lowercase();
            needles.iter().any(|n| l.contains(n))
        })
    };
    if has(&["couldn't bind", "address already in use", "failed to bind"]) {
        FailureKind::PortInUse
    } else if has(&[
        "error while loading shared libraries",
        "library not loaded",
        "cannot open shared object",
    ]) {
        FailureKind::MissingLibrary
    } else if has(&["unknown model architecture"]) {
        FailureKind::UnknownArchitecture
    } else if has(&[
        "failed to allocate",
        "out of memory",
        "cudamalloc failed",
        "unable to allocate",
        "std::bad_alloc",
    ]) {
        FailureKind::OutOfMemory
    } else if has(&[
        "invalid argument",
        "unknown argument",
        "error: unrecognized",
        "invalid value",
    ]) {
        FailureKind::BadArguments
    } else if has(&[
        "failed to load model",
        "invalid magic",
        "gguf_init_from_file",
        "failed to read",
    ]) {
        FailureKind::BadModel
    } else {
        FailureKind::Crashed
    }
}

/// The lines worth showing with a failure: those with a marker, else the last few.
pub fn relevant(lines: &[String], n: usize) -> Vec<String> {
    let marked: Vec<String> = lines
        .iter()
        .filter(|l| {
            let l = l.to_ascii_lowercase();
            l.contains("error") || l.contains("failed") || l.contains("couldn't")
        })
        .cloned()
        .collect();
    let pick = if marked.is_empty() { lines } else { &marked };
    pick[pick.len().saturating_sub(n)..].to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn l(s: &[&str]) -> Vec<String> {
        s.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn markers_from_real_llama_server_logs() {
        assert_eq!(
            classify(&l(&[
                "main: couldn't bind HTTP server socket, hostname: 127.0.0.1, port: 8080"
            ])),
            FailureKind::PortInUse
        );
        assert_eq!(
            classify(&l(&[
                "llama_model_load: error loading model: error loading model architecture: unknown model architecture: 'foo'"
            ])),
            FailureKind::UnknownArchitecture
        );
        assert_eq!(
            classify(&l(&[
                "ggml_backend_cpu_buffer_type_alloc_buffer: failed to allocate buffer of size 99999"
            ])),
            FailureKind::OutOfMemory
        );
        assert_eq!(
            classify(&l(&[
                "./llama-server: error while loading shared libraries: libggml.so: cannot open shared object file"
            ])),
            FailureKind::MissingLibrary
        );
        assert_eq!(
            classify(&l(&["error: invalid argument: --bogus"])),
            FailureKind::BadArguments
        );
        assert_eq!(
            classify(&l(&[
                "gguf_init_from_file_impl: invalid magic characters: 'abcd'"
            ])),
            FailureKind::BadModel
        );
        assert_eq!(classify(&l(&["segfault?"])), FailureKind::Crashed);
        assert!(FailureKind::Crashed.retryable());
        assert!(!FailureKind::PortInUse.retryable());
    }

    #[test]
    fn relevant_lines_prefer_errors() {
        let lines = l(&["a", "b", "error: x", "c"]);
        assert_eq!(relevant(&lines, 3), l(&["error: x"]));
        assert_eq!(relevant(&l(&["a", "b", "c"]), 2), l(&["b", "c"]));
    }
}
