//! `burncloud model ...` on the real binary: the library commands, search/show/download
//! against the fake hub, and a download killed mid-way that a second run finishes
//! without fetching again what it had.

use std::path::Path;
use std::process::{Command, Output};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use llama_manager::testing::fake_hub::{FakeFile, FakeHub, FakeRepo};
use llama_manager::testing::gguf_writer::{TinyLlama, tiny_llama};

const BIN: &str = env!("CARGO_BIN_EXE_burncloud");

fn cmd(dir: &Path, hub: Option<&str>, args: &[&str]) -> Command {
    let mut c = Command::new(BIN);
    c.args(args)
        .env("BURNCLOUD_DATA_DIR", dir)
        .env("HOME", dir)
        .env("BURNCLOUD_NVIDIA_SMI", "/nonexistent/nvidia-smi")
        .env("BURNCLOUD_DOWNLOAD_BACKOFF_MS", "20")
        .env_remove("HF_TOKEN")
        .env_remove("BURNCLOUD_DOWNLOAD_JOBS")
        .env_remove("HF_HOME")
        .env_remove("DATABASE_URL")
        .env_remove("BURNCLOUD_DATABASE_URL");
    match hub {
        Some(h) => c.env("HF_ENDPOINT", h),
        None => c.env("HF_ENDPOINT", "http://127.0.0.1:9"),
    };
    c
}

fn run(dir: &Path, hub: Option<&str>, args: &[&str]) -> (i32, String, String) {
    let Output {
        status,
        stdout,
        stderr,
    } = cmd(dir, hub, args).output().expect("burncloud runs");
    (
        status.code().unwrap_or(-1),
        String::from_utf8_lossy(&stdout).into_owned(),
        String::from_utf8_lossy(&stderr).into_owned(),
    )
}

#[test]
fn import_list_info_rm() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (code, out, _) = run(d, None, &["model", "list"]);
    assert_eq!(code, 0);
    assert!(out.starts_with("No models yet"), "{out}");

    let model = d.join("tiny-chat.Q4_K_M.gguf");
    std::fs::write(&model, tiny_llama("tiny chat", 1)).unwrap();
    let (code, out, err) = run(d, None, &["model", "import", model.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.starts_with("Imported model 1 (tiny-chat.Q4_K_M): llama, 115.4K parameters, F32"),
        "{out}"
    );

    let (code, out, _) = run(d, None, &["model", "list"]);
    assert_eq!(code, 0);
    let lines: Vec<&str> = out.lines().collect();
    assert!(
        lines[0].contains("NAME") && lines[0].contains("QUANT"),
        "{out}"
    );
    assert!(
        lines[1].contains("tiny-chat.Q4_K_M")
            && lines[1].contains("115.4K")
            && lines[1].contains("512")
            && lines[1].contains("import"),
        "{out}"
    );

    let (code, out, _) = run(d, None, &["model", "info", "1"]);
    assert_eq!(code, 0);
    for want in [
        "architecture: llama",
        "parameters: 115.4K (115392)",
        "layers: 2",
        "context length: 512",
        "embedding size: 64",
        "attention heads: 4 (KV heads 4)",
        "chat template: yes",
        "GPU: none found",
        "Fit: CPU only (-ngl 0), context 512",
        "weights ",
    ] {
        assert!(out.contains(want), "missing {want:?} in\n{out}");
    }
    let (code, out2, _) = run(d, None, &["model", "info", "tiny-chat.Q4_K_M"]);
    assert_eq!(code, 0);
    assert_eq!(out.lines().next(), out2.lines().next());

    // Bad input: clear messages, nothing registered.
    let junk = d.join("junk.gguf");
    std::fs::write(&junk, "not a model at all, just some text padding it out").unwrap();
    let (code, _, err) = run(d, None, &["model", "import", junk.to_str().unwrap()]);
    assert_eq!(code, 1);
    assert!(err.contains("not a GGUF file"), "{err}");
    let (code, _, err) = run(d, None, &["model", "info", "42"]);
    assert_eq!(code, 1);
    assert!(err.contains("no model \"42\""), "{err}");

    let (code, out, _) = run(d, None, &["model", "rm", "1"]);
    assert_eq!(code, 0);
    assert!(out.contains("its file stays where it was"), "{out}");
    assert!(model.exists());
    let (_, out, _) = run(d, None, &["model", "list"]);
    assert!(out.starts_with("No models yet"), "{out}");
}

fn hub() -> FakeHub {
    let mut r = FakeRepo::new(
        "acme/tiny-GGUF",
        vec![
            FakeFile::new("tiny.Q4_K_M.gguf", tiny_llama("tiny q4", 1)),
            FakeFile::new("tiny.Q8_0.gguf", tiny_llama("tiny q8", 2)),
        ],
    );
    r.downloads = 42;
    // A bigger model for the kill test (a few MB).
    let big = TinyLlama {
        name: "bigger".into(),
        embd: 256,
        ff: 512,
        heads: 8,
        layers: 4,
        seed: 9,
        ..TinyLlama::default()
    }
    .build();
    let b = FakeRepo::new(
        "acme/bigger-GGUF",
        vec![FakeFile::new("bigger.Q8_0.gguf", big)],
    );
    FakeHub::start(vec![r, b])
}

#[test]
fn search_show_download_against_the_fake_hub() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let hub = hub();
    let (code, out, err) = run(d, Some(&hub.url), &["model", "search", "tiny"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.lines().nth(1).unwrap().starts_with("acme/tiny-GGUF"),
        "{out}"
    );
    assert!(out.contains("42"));

    let (code, out, err) = run(d, Some(&hub.url), &["model", "show", "acme/tiny-GGUF"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("Q4_K_M") && out.contains("Q8_0"), "{out}");
    assert!(out.contains("tiny.Q4_K_M.gguf (llama, 115.4K parameters, 2 layers, context 512) on this machine:\nCPU only"), "{out}");

    let (code, out, err) = run(
        d,
        Some(&hub.url),
        &["model", "download", "acme/tiny-GGUF:Q8_0"],
    );
    assert_eq!(code, 0, "{err}");
    assert!(
        out.starts_with("Downloaded and verified model 1 (tiny.Q8_0)"),
        "{out}"
    );
    assert!(err.contains("SHA-256 verified"), "{err}");
    let (_, out, _) = run(d, None, &["model", "list"]);
    assert!(out.contains("tiny.Q8_0") && out.contains("hub"), "{out}");

    let (code, _, err) = run(d, Some(&hub.url), &["model", "download", "acme/missing"]);
    assert_eq!(code, 1);
    assert!(err.contains("acme/missing was not found"), "{err}");
    let (code, _, err) = run(d, None, &["model", "search", "x"]);
    assert_eq!(code, 1);
    assert!(err.contains("cannot reach the model hub"), "{err}");

    let (code, out, _) = run(d, None, &["model", "rm", "tiny.Q8_0"]);
    assert_eq!(code, 0);
    assert!(out.contains("deleted"), "{out}");
}

#[test]
fn killed_download_resumes_without_refetching() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let hub = hub();
    let total = hub.repos_mut(|r| r[1].files[0].data.len() as u64);
    hub.throttle(Some(400_000));
    let mut child = cmd(
        d,
        Some(&hub.url),
        &["model", "download", "acme/bigger-GGUF"],
    )
    .stdout(std::process::Stdio::null())
    .stderr(std::process::Stdio::null())
    .spawn()
    .unwrap();
    let part = d.join("models/acme--bigger-GGUF/bigger.Q8_0.gguf.part");
    let t0 = Instant::now();
    while std::fs::metadata(&part).map(|m| m.len()).unwrap_or(0) < 500_000 {
        assert!(
            t0.elapsed() < Duration::from_secs(30),
            "download did not start"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().unwrap(); // SIGKILL: no cleanup at all
    child.wait().unwrap();
    let have = std::fs::metadata(&part).unwrap().len();
    assert!(have >= 500_000 && have < total, "{have} of {total}");
    let (_, out, _) = run(d, None, &["model", "list"]);
    assert!(out.contains("Unfinished downloads"), "{out}");
    assert!(out.contains("acme/bigger-GGUF:bigger.Q8_0.gguf"), "{out}");

    hub.throttle(None);
    hub.clear_log();
    let (code, out, err) = run(
        d,
        Some(&hub.url),
        &["model", "download", "acme/bigger-GGUF"],
    );
    assert_eq!(code, 0, "{err}");
    assert!(out.starts_with("Downloaded and verified model 1"), "{out}");
    let dl = hub.downloads();
    assert_eq!(dl.len(), 1);
    assert_eq!(
        dl[0].range.as_deref(),
        Some(format!("bytes={have}-").as_str())
    );
    assert_eq!(dl[0].status, 206);
    assert_eq!(dl[0].bytes.load(Ordering::Relaxed), total - have);
    assert!(!part.exists());
    let got = std::fs::read(d.join("models/acme--bigger-GGUF/bigger.Q8_0.gguf")).unwrap();
    assert_eq!(got, hub.repos_mut(|r| r[1].files[0].data.to_vec()));
    let (_, out, _) = run(d, None, &["model", "list"]);
    assert!(!out.contains("Unfinished"), "{out}");
}

#[test]
fn several_downloads_share_the_queue() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let hub = hub();
    // Slow enough that two downloads overlap.
    hub.throttle(Some(1_000_000));
    let (code, out, err) = run(
        d,
        Some(&hub.url),
        &[
            "model",
            "download",
            "acme/tiny-GGUF:Q4_K_M",
            "acme/tiny-GGUF:Q8_0",
            "--jobs",
            "2",
        ],
    );
    assert_eq!(code, 0, "{err}");
    assert_eq!(hub.max_concurrent_downloads(), 2, "both at once");
    let done: Vec<&str> = out
        .lines()
        .filter(|l| l.starts_with("Downloaded and verified model"))
        .collect();
    assert_eq!(done.len(), 2, "{out}");
    assert!(
        done[0].contains("(tiny.Q4_K_M)") && done[1].contains("(tiny.Q8_0)"),
        "{out}"
    );
    // Lines name the download they are about.
    assert!(
        err.contains("[acme/tiny-GGUF:Q8_0] tiny.Q8_0.gguf: SHA-256 verified"),
        "{err}"
    );
    let (_, list, _) = run(d, None, &["model", "list"]);
    assert!(
        list.contains("tiny.Q4_K_M") && list.contains("tiny.Q8_0"),
        "{list}"
    );

    // One at a time through BURNCLOUD_DOWNLOAD_JOBS; a failure does not stop the other,
    // the exit code says so and each failure says why.
    hub.throttle(Some(4_000_000));
    hub.clear_log();
    let (code, out, err) = run_env(
        d,
        &hub.url,
        &[("BURNCLOUD_DOWNLOAD_JOBS", "1")],
        &["model", "download", "acme/missing", "acme/bigger-GGUF"],
    );
    assert_eq!(code, 1, "{out}\n{err}");
    assert!(
        out.starts_with("Downloaded and verified model 3 (bigger.Q8_0)"),
        "{out}"
    );
    assert!(
        err.contains(
            "error: 1 of 2 downloads failed:\n  acme/missing: repository acme/missing was not found"
        ),
        "{err}"
    );
    assert_eq!(hub.max_concurrent_downloads(), 1);

    // Bad input: clear errors, nothing downloaded.
    hub.clear_log();
    let (code, _, err) = run_env(
        d,
        &hub.url,
        &[("BURNCLOUD_DOWNLOAD_JOBS", "0")],
        &["model", "download", "acme/tiny-GGUF"],
    );
    assert_eq!(code, 1);
    assert!(
        err.contains("BURNCLOUD_DOWNLOAD_JOBS=\"0\": the number of concurrent downloads must be between 1 and 16"),
        "{err}"
    );
    let (code, _, err) = run(
        d,
        Some(&hub.url),
        &["model", "download", "acme/tiny-GGUF", "--jobs", "0"],
    );
    assert_eq!(code, 2);
    assert!(err.contains("--jobs"), "{err}");
    let (code, _, err) = run(
        d,
        Some(&hub.url),
        &["model", "download", "acme/x-GGUF", "acme/x-GGUF"],
    );
    assert_eq!(code, 1);
    assert!(err.contains("acme/x-GGUF is given twice"), "{err}");
    assert!(hub.log().is_empty(), "{:?}", hub.log());
}

fn run_env(dir: &Path, hub: &str, env: &[(&str, &str)], args: &[&str]) -> (i32, String, String) {
    let mut c = cmd(dir, Some(hub), args);
    for (k, v) in env {
        c.env(k, v);
    }
    let Output {
        status,
        stdout,
        stderr,
    } = c.output().expect("burncloud runs");
    (
        status.code().unwrap_or(-1),
        String::from_utf8_lossy(&stdout).into_owned(),
        String::from_utf8_lossy(&stderr).into_owned(),
    )
}

#[test]
fn engine_install_picks_the_build_for_the_gpu_and_checks_its_digest() {
    use llama_manager::testing::fake_release::{Digest, FakeRelease, ReleaseAsset, engine_zip};
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // nvidia-smi as on a machine with an RTX 4070: the CSV query and the plain report.
    let smi = d.join("nvidia-smi");
    std::fs::write(
        &smi,
        "#!/bin/sh\nif [ -z \"$1\" ]; then echo '| NVIDIA-SMI 560.35.03   Driver Version: 560.35.03   CUDA Version: 12.6 |'; else echo 'NVIDIA GeForce RTX 4070, 12282, 11800'; fi\n",
    )
    .unwrap();
    std::fs::set_permissions(&smi, std::fs::Permissions::from_mode(0o755)).unwrap();
    let engine = |b: &str| {
        engine_zip(
            "llama-server",
            format!("#!/bin/sh\necho 'version: 6500 ({b})' >&2\n").as_bytes(),
        )
    };
    let good = FakeRelease::start(
        "b6500",
        vec![
            ReleaseAsset::new(
                "llama-b6500-bin-ubuntu-x64.zip",
                engine("cpu"),
                Digest::Right,
            ),
            ReleaseAsset::new(
                "llama-b6500-bin-ubuntu-vulkan-x64.zip",
                engine("vulkan"),
                Digest::Right,
            ),
            ReleaseAsset::new(
                "llama-b6500-bin-win-cuda-12.4-x64.zip",
                b"windows only".to_vec(),
                Digest::Right,
            ),
        ],
    );
    let engine_cmd = |url: &str, args: &[&str]| {
        let mut all = vec!["engine"];
        all.extend_from_slice(args);
        let o = cmd(d, None, &all)
            .env("BURNCLOUD_ENGINE_RELEASE_URL", url)
            .env("BURNCLOUD_NVIDIA_SMI", &smi)
            .env("BURNCLOUD_SYSFS_DRM", d.join("no-drm"))
            .env_remove("LLAMA_SERVER")
            .output()
            .unwrap();
        (
            o.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&o.stdout).into_owned(),
            String::from_utf8_lossy(&o.stderr).into_owned(),
        )
    };
    let (code, out, err) = engine_cmd(&good.url, &["install"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains("Installed the vulkan engine of llama.cpp b6500")
            && out.contains("NVIDIA GeForce RTX 4070")
            && out.contains("SHA-256 checked"),
        "{out}"
    );
    let (code, out, _) = engine_cmd(&good.url, &["install", "--backend", "cpu"]);
    assert_eq!(code, 0, "{out}");
    let (code, out, _) = engine_cmd(&good.url, &["list"]);
    assert_eq!(code, 0);
    assert!(
        out.lines()
            .any(|l| l.starts_with("vulkan") && l.contains("sha256"))
            && out.lines().any(|l| l.starts_with("cpu")),
        "{out}"
    );
    let (code, _, err) = engine_cmd(&good.url, &["install", "--backend", "cuda"]);
    assert_eq!(code, 1);
    assert!(err.contains("no cuda engine for linux x64"), "{err}");
    // A wrong digest: refused, nothing added.
    let bad = FakeRelease::start(
        "b6501",
        vec![ReleaseAsset::new(
            "llama-b6501-bin-ubuntu-vulkan-x64.zip",
            engine("vulkan"),
            Digest::Wrong,
        )],
    );
    let count = || std::fs::read_dir(d.join("runtimes")).unwrap().count();
    let before = count();
    let (code, _, err) = engine_cmd(&bad.url, &["install", "--allow-unverified"]);
    assert_eq!(code, 1);
    assert!(
        err.contains("SHA-256") && err.contains("nothing was installed"),
        "{err}"
    );
    assert_eq!(before, count(), "nothing added, no staging folder left");
    // engine show: the installed engine (the Vulkan one is preferred) and the machine.
    let (code, out, err) = engine_cmd(&good.url, &["show"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("vulkan build") && out.contains("RTX 4070"),
        "{out}"
    );
}
