//! `cargo xtask run|test|bench`: set-up and developer tasks, so that a fresh
//! Debian/Ubuntu machine with only Rust needs two commands.

mod bench;
mod dist;
mod pgo;
mod postgres;
mod setup;
mod windows;

use std::process::{Command, ExitCode};

use anyhow::{Context, Result, bail};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("run") => run(&args[1..]),
        Some("test") => test(),
        Some("bump-clients") => bump_clients(args.iter().any(|a| a == "--no-test")),
        Some("bench") => bench::bench(),
        Some("postgres") => with_postgres(&args[1..]),
        Some("windows") => windows::check_and_package().map(|_| ()),
        Some("llama-server") => setup::ensure_llama_server().map(|p| println!("{}", p.display())),
        Some("dist") => dist::dist().and_then(|deb| {
            if args.iter().any(|a| a == "--check") {
                dist::test_installed(&deb)
            } else {
                Ok(())
            }
        }),
        _ => {
            eprintln!(
                "usage: cargo xtask <run [-- ARGS]|test|bench|dist|windows|llama-server|bump-clients|postgres -- CMD>"
            );
            eprintln!(
                "  run    install what BurnCloud needs, build it, start it (desktop, or headless without a display)"
            );
            eprintln!(
                "  test   install what the tests need, then run every test (fmt, clippy, Rust, Python SDKs, window)"
            );
            eprintln!(
                "  bench  benchmark the gateway against a local mock and nginx (README table)"
            );
            eprintln!(
                "  windows  cross-build the workspace for Windows, burncloud.exe and its NSIS installer"
            );
            eprintln!(
                "  llama-server  build the pinned llama-server the tests use (cached) and print its path"
            );
            eprintln!(
                "  bump-clients  pin Claude Code and Codex CLI to their newest npm releases, then run the tests\n         (--no-test: only rewrite the pins in xtask/src/setup.rs)"
            );
            eprintln!(
                "  postgres -- CMD [ARGS]  run CMD with BURNCLOUD_TEST_POSTGRES set to a temporary PostgreSQL\n         server (installed through apt if missing), stopped and removed afterwards"
            );
            eprintln!(
                "  dist   build the release packages (.deb, tarball) with SHA256SUMS into <target>/dist;\n         --check: then install the .deb, run what it installed, remove it"
            );
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// The workspace root. Read at run time (`cargo run` sets `CARGO_MANIFEST_DIR`): a binary
/// built from another checkout sharing the cached target dir must not use that checkout.
pub fn root() -> std::path::PathBuf {
    let manifest_dir = std::env::var_os("CARGO_MANIFEST_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| env!("CARGO_MANIFEST_DIR").into());
    manifest_dir.parent().unwrap().to_path_buf()
}

/// Cargo's target directory (CARGO_TARGET_DIR or `<root>/target`).
pub fn target_dir() -> std::path::PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(Into::into)
        .unwrap_or_else(|| root().join("target"))
}

/// Where caches outside the checkout live (venv, benchmark tools).
pub fn cache_dir() -> std::path::PathBuf {
    let base = std::env::var_os("BURNCLOUD_CACHE")
        .map(std::path::PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME").map(|h| std::path::PathBuf::from(h).join(".cache/burncloud"))
        })
        .unwrap_or_else(|| std::env::temp_dir().join("burncloud-cache"));
    let _ = std::fs::create_dir_all(&base);
    base
}

/// Run a command, failing with its name when it fails.
pub fn sh(cmd: &mut Command) -> Result<()> {
    let shown = format!("{cmd:?}");
    eprintln!("xtask: $ {shown}");
    let status = cmd
        .current_dir(root())
        .status()
        .with_context(|| format!("cannot start {shown}"))?;
    if !status.success() {
        bail!("{shown} failed ({status})");
    }
    Ok(())
}

pub fn cargo() -> Command {
    let mut cmd = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    quick_release(&mut cmd);
    cmd
}

/// Inside the test command, a tool that runs cargo's release builds (cargo itself,
/// cargo-deb) builds them with thin LTO (see [`QUICK_RELEASE`]).
pub fn quick_release(cmd: &mut Command) -> &mut Command {
    if quick_release_on() {
        cmd.env("CARGO_PROFILE_RELEASE_LTO", "thin")
            .env("CARGO_PROFILE_RELEASE_CODEGEN_UNITS", "4");
    }
    cmd
}

/// Whether this is the test command, whose release builds are quick ones.
pub fn quick_release_on() -> bool {
    QUICK_RELEASE.load(std::sync::atomic::Ordering::Relaxed)
}

/// Release builds made by the test command (the Windows cross-build and the packages it
/// installs and runs) use thin LTO and four codegen units: the same code, built faster
/// than with the shipped profile (fat LTO, one unit; a from-scratch headless build took
/// 14.6 min against 10.9 here). `cargo xtask dist`, `windows`, `bench` and `run` use the
/// shipped profile.
static QUICK_RELEASE: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

fn has_display() -> bool {
    cfg!(any(target_os = "windows", target_os = "macos"))
        || ["DISPLAY", "WAYLAND_DISPLAY"]
            .iter()
            .any(|v| std::env::var_os(v).is_some_and(|s| !s.is_empty()))
}

fn run(extra: &[String]) -> Result<()> {
    let extra: Vec<String> = extra.iter().skip_while(|a| *a == "--").cloned().collect();
    if has_display() {
        setup::ensure_packages(setup::BUILD_PACKAGES)?;
        sh(cargo()
            .args(["run", "--release", "-p", "burncloud", "--"])
            .args(&extra))
    } else {
        eprintln!("xtask: no display: building the headless gateway (no GUI libraries needed)");
        let args: Vec<String> = if extra.is_empty() {
            vec!["router".into()]
        } else {
            extra
        };
        sh(cargo()
            .args([
                "run",
                "--release",
                "-p",
                "burncloud",
                "--no-default-features",
                "--",
            ])
            .args(&args))
    }
}

/// Pin the published clients to their newest releases, then rerun the suite (the
/// conformance tests run them), so a protocol change is caught the week it ships.
fn bump_clients(no_test: bool) -> Result<()> {
    let changed = setup::bump_npm_clients()?;
    if changed.is_empty() {
        eprintln!("xtask: every client is already pinned to its newest release");
    }
    for (package, old, new) in &changed {
        eprintln!("xtask: {package} {old} -> {new} (xtask/src/setup.rs)");
    }
    if no_test || changed.is_empty() {
        return Ok(());
    }
    // The new pins are compiled into xtask: run the suite through a fresh build of it.
    sh(cargo().args(["run", "-p", "xtask", "--", "test"]))
}

/// The packages whose tests run a second time on the PostgreSQL backend
/// (`BURNCLOUD_TEST_BACKEND=postgres`).
const POSTGRES_BACKEND_PACKAGES: &[&str] = &["gateway-core", "llama-manager"];

/// `cargo xtask postgres -- CMD [ARGS]`: CMD with `BURNCLOUD_TEST_POSTGRES` pointing at a
/// temporary PostgreSQL server, e.g. `cargo xtask postgres -- cargo test -p gateway-core`.
/// The server is stopped and its folder removed when CMD ends (or fails).
fn with_postgres(args: &[String]) -> Result<()> {
    let args: Vec<&String> = args.iter().skip_while(|a| *a == "--").collect();
    let Some((program, rest)) = args.split_first() else {
        bail!("usage: cargo xtask postgres -- CMD [ARGS]");
    };
    let pg = postgres::PgServer::start()?;
    eprintln!("xtask: {}={}", postgres::URL_ENV, pg.url);
    let mut cmd = Command::new(program);
    cmd.args(rest).env(postgres::URL_ENV, &pg.url);
    // `sh` runs it from the workspace root; keep the caller's folder instead.
    let status = cmd
        .status()
        .with_context(|| format!("cannot start {program}"))?;
    drop(pg);
    if !status.success() {
        bail!("{program} failed ({status})");
    }
    Ok(())
}

fn test() -> Result<()> {
    QUICK_RELEASE.store(true, std::sync::atomic::Ordering::Relaxed);
    setup::ensure_packages(setup::BUILD_PACKAGES)?;
    setup::ensure_packages(setup::TEST_PACKAGES)?;
    setup::ensure_packages(setup::POSTGRES_PACKAGES)?;
    sh(cargo().args(["fmt", "--all", "--", "--check"]))?;
    sh(cargo().args([
        "clippy",
        "--workspace",
        "--all-targets",
        "--",
        "-D",
        "warnings",
    ]))?;
    sh(cargo().args(["build", "--workspace", "--all-targets"]))?;
    sh(cargo().args(["build", "-p", "gateway-core", "--examples"]))?;
    sh(cargo().args([
        "build",
        "-p",
        "llama-manager",
        "--features",
        "test-support",
        "--examples",
    ]))?;
    // The headless build must link no GUI library.
    sh(cargo()
        .args([
            "build",
            "-p",
            "burncloud",
            "--no-default-features",
            "--target-dir",
        ])
        .arg(target_dir().join("headless")))?;
    setup::check_headless_links(&target_dir().join("headless/debug/burncloud"))?;
    // The profile-guided build's training mix (`pgo`) against this tree: every request
    // answered as the mix expects, and the router stops cleanly on SIGTERM.
    let trained = pgo::train(
        &target_dir().join("debug/burncloud"),
        &target_dir().join("debug/examples"),
        std::time::Duration::from_secs(3),
    )?;
    eprintln!("xtask: the training mix against the debug build: {trained}");
    // Windows: the workspace (desktop included) cross-built, burncloud.exe, its installer.
    windows::check_and_package()?;
    let llama_server = setup::ensure_llama_server()?;
    // One temporary PostgreSQL server for the Rust and Python tests; each test makes its
    // own database on it. Stopped and removed when `pg` is dropped (before the packages).
    let pg = postgres::PgServer::start()?;
    let cargo_test = || {
        let mut cmd = cargo();
        cmd.arg("test")
            .env("BURNCLOUD_TEST_LLAMA_SERVER", &llama_server)
            .env(postgres::URL_ENV, &pg.url)
            .env_remove("DISPLAY")
            .env_remove("WAYLAND_DISPLAY");
        cmd
    };
    sh(cargo_test().arg("--workspace"))?;
    // The same tests again with the store on PostgreSQL instead of SQLite.
    for package in POSTGRES_BACKEND_PACKAGES {
        sh(cargo_test()
            .args(["-p", package])
            .env(postgres::BACKEND_ENV, "postgres"))?;
    }
    let python = setup::ensure_venv()?;
    // The published clients (Claude Code, Codex CLI) for the conformance tests.
    let clients = setup::ensure_npm_clients()?;
    let pytest = || {
        let mut cmd = Command::new(&python);
        for (bin, path) in &clients {
            cmd.env(format!("{}_BIN", bin.to_ascii_uppercase()), path);
        }
        cmd.args(["-m", "pytest", "-v", "app/tests/sdk"])
            .env("BURNCLOUD_BIN", target_dir().join("debug/burncloud"))
            .env(
                "FAKE_OPENAI_BIN",
                target_dir().join("debug/examples/fake_openai"),
            )
            .env(
                "FAKE_ANTHROPIC_BIN",
                target_dir().join("debug/examples/fake_anthropic"),
            )
            .env(
                "FAKE_GEMINI_BIN",
                target_dir().join("debug/examples/fake_gemini"),
            )
            .env("BURNCLOUD_TEST_LLAMA_SERVER", &llama_server)
            .env(postgres::URL_ENV, &pg.url)
            .env(
                "TINY_GGUF_BIN",
                target_dir().join("debug/examples/tiny_gguf"),
            );
        cmd
    };
    sh(&mut pytest())?;
    // The SDK suite again with every router on a PostgreSQL database of its own (the
    // compose and scale-out tests already run on PostgreSQL in the pass above).
    sh(pytest()
        .args([
            "--ignore=app/tests/sdk/test_compose.py",
            "--ignore=app/tests/sdk/test_scale_out.py",
        ])
        .env(postgres::BACKEND_ENV, "postgres"))?;
    drop(pg);
    // The packages: build the .deb, install it, run what it installed, remove it.
    let deb = dist::dist()?;
    dist::test_installed(&deb)?;
    eprintln!("xtask: all tests passed");
    Ok(())
}
