//! The engine catalog and installs: llama.cpp's real asset names classified, the right
//! build chosen for each hardware profile (from fake `nvidia-smi`, sysfs and
//! `--list-devices` outputs), installs from a fake release server checked against the
//! `digest` (a wrong or missing one refused, nothing left behind), engines side by side,
//! and the real llama-server's own device list (a CPU build lists none).

use std::path::Path;

use llama_manager::hardware::{self, GpuKind, Hardware};
use llama_manager::runtime::catalog::{self, Backend, Os, Platform, Release};
use llama_manager::runtime::engine::{self, EngineError, InstallRequest};
use llama_manager::testing::fake_release::{
    Digest, FakeRelease, ReleaseAsset, engine_zip, llama_cpp_asset_names,
};
use llama_manager::testing::llama_server;

const TAG: &str = "b6500";

fn release() -> Release {
    let assets: Vec<serde_json::Value> = llama_cpp_asset_names(TAG)
        .into_iter()
        .map(|n| {
            serde_json::json!({
                "name": n,
                "size": 1000,
                "digest": format!("sha256:{}", "ab".repeat(32)),
                "browser_download_url": format!("https://example.invalid/{n}"),
            })
        })
        .collect();
    catalog::parse_release(&serde_json::json!({"tag_name": TAG, "assets": assets})).unwrap()
}

fn gib(n: u64) -> u64 {
    n << 30
}

/// Hardware profiles as the probes report them (fake tool outputs through the parsers).
fn no_gpu() -> Hardware {
    Hardware::cpu_only(gib(16), gib(12), 8)
}

fn nvidia(cuda: Option<&str>) -> Hardware {
    let mut hw = no_gpu();
    hw.gpus = hardware::parse_nvidia_smi("NVIDIA GeForce RTX 4070, 12282, 11800\n");
    hw.cuda_version = cuda.and_then(|v| {
        hardware::parse_cuda_version(&format!(
            "| NVIDIA-SMI 560.35.03   Driver Version: 560.35.03   CUDA Version: {v}     |"
        ))
    });
    hw
}

fn amd() -> Hardware {
    let dir = tempfile::tempdir().unwrap();
    let dev = dir.path().join("card0/device");
    std::fs::create_dir_all(&dev).unwrap();
    std::fs::write(dev.join("vendor"), "0x1002\n").unwrap();
    std::fs::write(dev.join("mem_info_vram_total"), "17163091968\n").unwrap();
    let mut hw = no_gpu();
    hw.gpus = hardware::detect_amd(dir.path());
    assert_eq!(hw.gpus[0].kind, GpuKind::Amd);
    hw
}

fn intel() -> Hardware {
    let mut hw = no_gpu();
    let devs = hardware::parse_list_devices(
        "Available devices:\n  Vulkan0: Intel(R) Arc(TM) A770 Graphics (16225 MiB, 15000 MiB free)\n",
    );
    hardware::apply_engine_view(&mut hw, devs.ok_or_else(String::new), "vulkan");
    assert_eq!(hw.gpus[0].kind, GpuKind::Intel);
    hw
}

fn apple() -> Hardware {
    let mut hw = no_gpu();
    let devs = hardware::parse_list_devices(
        "Available devices:\n  MTL0: Apple M2 Max (49152 MiB, 49151 MiB free)\n",
    );
    hardware::apply_engine_view(&mut hw, devs.ok_or_else(String::new), "metal");
    assert_eq!(hw.gpus[0].kind, GpuKind::Apple);
    hw
}

fn chosen(p: &Platform, hw: &Hardware, wanted: Option<Backend>) -> (String, Option<String>) {
    let c = release().choose(p, hw, wanted).unwrap();
    (c.engine.name, c.companion.map(|c| c.name))
}

fn name(s: &str) -> String {
    format!("llama-{TAG}-bin-{s}")
}

#[test]
fn asset_names_are_classified() {
    let r = release();
    let find = |n: &str| r.engines.iter().find(|a| a.name == name(n)).unwrap();
    let a = find("win-cuda-12.4-x64.zip");
    assert_eq!(
        (a.os, a.arch.as_str(), a.backend, a.variant.as_deref()),
        (Os::Windows, "x64", Backend::Cuda, Some("12.4"))
    );
    assert_eq!(a.sha256.as_deref(), Some("ab".repeat(32).as_str()));
    assert_eq!(find("ubuntu-x64.zip").backend, Backend::Cpu);
    assert_eq!(find("ubuntu-vulkan-x64.zip").backend, Backend::Vulkan);
    assert_eq!(find("ubuntu-rocm-7.2-x64.tar.gz").backend, Backend::Hip);
    assert_eq!(find("win-hip-radeon-x64.zip").backend, Backend::Hip);
    assert_eq!(find("win-sycl-x64.zip").backend, Backend::Sycl);
    assert_eq!(find("macos-arm64.zip").backend, Backend::Metal);
    assert_eq!(find("macos-x64.zip").backend, Backend::Cpu);
    assert_eq!(find("win-cpu-arm64.zip").arch, "arm64");
    assert_eq!(r.cudart.len(), 2);
    // Not engines we know how to run: kept aside, never chosen.
    assert!(r.other.contains(&format!("llama-{TAG}-xcframework.zip")));
    assert!(r.other.contains(&name("win-opencl-adreno-arm64.zip")));
    // A digest in another algorithm, or none: no SHA-256.
    let r = catalog::parse_release(&serde_json::json!({"tag_name": "b1", "assets": [
        {"name": "llama-b1-bin-ubuntu-x64.zip", "browser_download_url": "http://x/a", "digest": "md5:00"},
        {"name": "llama-b1-bin-ubuntu-vulkan-x64.zip", "browser_download_url": "http://x/b"},
    ]}))
    .unwrap();
    assert!(r.engines.iter().all(|a| a.sha256.is_none()));
}

#[test]
fn the_right_engine_for_each_hardware_profile() {
    let linux = Platform::new(Os::Linux, "x64");
    let win = Platform::new(Os::Windows, "x64");
    let mac = Platform::new(Os::Macos, "arm64");
    let mac_intel = Platform::new(Os::Macos, "x64");

    // No GPU: the CPU build everywhere.
    assert_eq!(chosen(&linux, &no_gpu(), None).0, name("ubuntu-x64.zip"));
    assert_eq!(chosen(&win, &no_gpu(), None).0, name("win-cpu-x64.zip"));
    assert_eq!(chosen(&mac_intel, &no_gpu(), None).0, name("macos-x64.zip"));
    // NVIDIA on Windows: the highest CUDA build the driver supports, with its runtime.
    assert_eq!(
        chosen(&win, &nvidia(Some("12.6")), None),
        (
            name("win-cuda-12.4-x64.zip"),
            Some("cudart-llama-bin-win-cuda-12.4-x64.zip".into())
        )
    );
    assert_eq!(
        chosen(&win, &nvidia(Some("13.2")), None).0,
        name("win-cuda-13.1-x64.zip")
    );
    // A driver too old for every CUDA build, or of unknown version: Vulkan.
    assert_eq!(
        chosen(&win, &nvidia(Some("11.8")), None).0,
        name("win-vulkan-x64.zip")
    );
    assert_eq!(
        chosen(&win, &nvidia(None), None).0,
        name("win-vulkan-x64.zip")
    );
    // NVIDIA on Linux: no CUDA build is published, Vulkan.
    assert_eq!(
        chosen(&linux, &nvidia(Some("12.6")), None).0,
        name("ubuntu-vulkan-x64.zip")
    );
    // AMD: HIP on Windows, Vulkan on Linux.
    assert_eq!(chosen(&win, &amd(), None).0, name("win-hip-radeon-x64.zip"));
    assert_eq!(
        chosen(&linux, &amd(), None).0,
        name("ubuntu-vulkan-x64.zip")
    );
    // Intel: Vulkan.
    assert_eq!(chosen(&win, &intel(), None).0, name("win-vulkan-x64.zip"));
    assert_eq!(
        chosen(&linux, &intel(), None).0,
        name("ubuntu-vulkan-x64.zip")
    );
    // Apple silicon: Metal.
    assert_eq!(chosen(&mac, &apple(), None).0, name("macos-arm64.zip"));
    assert_eq!(chosen(&mac, &no_gpu(), None).0, name("macos-arm64.zip"));
    // The user's choice wins; an impossible one names what exists.
    assert_eq!(
        chosen(&win, &nvidia(Some("12.6")), Some(Backend::Cpu)).0,
        name("win-cpu-x64.zip")
    );
    assert_eq!(
        chosen(&linux, &no_gpu(), Some(Backend::Vulkan)).0,
        name("ubuntu-vulkan-x64.zip")
    );
    let err = release()
        .choose(&linux, &nvidia(Some("12.6")), Some(Backend::Cuda))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("no cuda engine for linux x64") && err.contains("vulkan"),
        "{err}"
    );
    // A Linux CUDA build, once published, is understood and chosen.
    let mut r = release();
    let mut cuda = r
        .engines
        .iter()
        .find(|a| a.name == name("win-cuda-12.4-x64.zip"))
        .unwrap()
        .clone();
    cuda.os = Os::Linux;
    cuda.name = name("ubuntu-cuda-12.4-x64.zip");
    r.engines.push(cuda);
    let c = r.choose(&linux, &nvidia(Some("12.6")), None).unwrap();
    assert_eq!(c.engine.backend, Backend::Cuda);
}

/// A fake engine: answers `--version` with its backend's name in the version.
fn fake_engine(backend: &str) -> Vec<u8> {
    engine_zip(
        engine::EXE,
        format!("#!/bin/sh\necho 'version: 6500 ({backend})' >&2\n").as_bytes(),
    )
}

fn request(url: &str, runtimes: &Path, hw: Hardware, backend: Option<Backend>) -> InstallRequest {
    InstallRequest {
        release_url: url.into(),
        runtimes: runtimes.to_path_buf(),
        platform: Platform::new(Os::Linux, "x64"),
        hardware: hw,
        backend,
        allow_unverified: false,
    }
}

fn entries(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

#[tokio::test]
async fn installs_are_verified_side_by_side_and_leave_nothing_on_failure() {
    let tmp = tempfile::tempdir().unwrap();
    let runtimes = tmp.path().join("runtimes");
    let client = reqwest::Client::new();
    let good = FakeRelease::start(
        TAG,
        vec![
            ReleaseAsset::new(name("ubuntu-x64.zip"), fake_engine("cpu"), Digest::Right),
            ReleaseAsset::new(
                name("ubuntu-vulkan-x64.zip"),
                fake_engine("vulkan"),
                Digest::Right,
            ),
            ReleaseAsset::new(
                name("win-cpu-x64.zip"),
                b"not for us".to_vec(),
                Digest::Right,
            ),
        ],
    );

    // NVIDIA on Linux: the Vulkan build, checked against its digest.
    let mut progress = 0;
    let v = engine::install(
        &client,
        &request(&good.url, &runtimes, nvidia(Some("12.6")), None),
        |got, _| progress = got,
    )
    .await
    .unwrap();
    assert!(progress > 0);
    assert_eq!((v.backend, v.verified), (Backend::Vulkan, true));
    assert!(v.path.starts_with(runtimes.join(format!("vulkan-{TAG}"))));
    assert_eq!(engine::version(&v.path).as_deref(), Some("6500 (vulkan)"));
    // The CPU build beside it.
    let c = engine::install(
        &client,
        &request(&good.url, &runtimes, no_gpu(), Some(Backend::Cpu)),
        |_, _| {},
    )
    .await
    .unwrap();
    assert_eq!(c.backend, Backend::Cpu);
    let listed = engine::installed(&runtimes);
    assert_eq!(listed.len(), 2, "{listed:?}");
    assert!(
        listed
            .iter()
            .any(|i| i.backend == Backend::Vulkan && i.tag == TAG)
    );
    let installed_now = entries(&runtimes);
    assert_eq!(
        installed_now,
        vec![format!("cpu-{TAG}"), format!("vulkan-{TAG}")]
    );
    // Discovery: a GPU build first; a deployment can name either; a missing one is clear.
    let found = engine::locate(tmp.path(), None).unwrap();
    assert_eq!(found.backend, Some(Backend::Vulkan));
    assert_eq!(found.path, v.path);
    let cpu = engine::locate_backend(tmp.path(), None, Some(Backend::Cpu)).unwrap();
    assert_eq!(cpu.path, c.path);
    let err = engine::locate_backend(tmp.path(), Some(&llama_server()), Some(Backend::Cuda))
        .unwrap_err()
        .to_string();
    assert!(err.contains("engine install --backend cuda"), "{err}");
    // LLAMA_SERVER (configured) wins when the deployment names no backend, and must work.
    let configured = engine::discover(tmp.path(), Some(&llama_server())).unwrap();
    assert_eq!(configured.source, engine::Source::Configured);
    assert!(
        configured.version.is_some(),
        "the pinned build reports its version"
    );
    let missing = engine::discover(tmp.path(), Some(Path::new("/nope/llama-server"))).unwrap_err();
    assert!(missing.to_string().contains("/nope/llama-server"));

    // A wrong digest: refused, nothing new in the runtimes folder.
    let wrong = FakeRelease::start(
        "b6501",
        vec![ReleaseAsset::new(
            "llama-b6501-bin-ubuntu-vulkan-x64.zip",
            fake_engine("vulkan"),
            Digest::Wrong,
        )],
    );
    let err = engine::install(
        &client,
        &request(&wrong.url, &runtimes, nvidia(None), None),
        |_, _| {},
    )
    .await
    .unwrap_err();
    assert!(matches!(err, EngineError::Unverified(_)), "{err}");
    assert!(err.to_string().contains("SHA-256"), "{err}");
    assert_eq!(entries(&runtimes), installed_now);
    // Even with --allow-unverified: a digest that does not match is never installed.
    let mut req = request(&wrong.url, &runtimes, nvidia(None), None);
    req.allow_unverified = true;
    assert!(engine::install(&client, &req, |_, _| {}).await.is_err());
    assert_eq!(entries(&runtimes), installed_now);

    // No digest: refused unless allowed.
    let missing = FakeRelease::start(
        "b6502",
        vec![ReleaseAsset::new(
            "llama-b6502-bin-ubuntu-x64.zip",
            fake_engine("cpu"),
            Digest::Missing,
        )],
    );
    let err = engine::install(
        &client,
        &request(&missing.url, &runtimes, no_gpu(), None),
        |_, _| {},
    )
    .await
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("no SHA-256 digest") && err.contains("--allow-unverified"),
        "{err}"
    );
    assert_eq!(entries(&runtimes), installed_now);
    let mut req = request(&missing.url, &runtimes, no_gpu(), None);
    req.allow_unverified = true;
    let u = engine::install(&client, &req, |_, _| {}).await.unwrap();
    assert!(!u.verified);
    assert_eq!(u.tag, "b6502");

    // A damaged archive with a matching digest: refused at unpacking, nothing left.
    let broken = FakeRelease::start(
        "b6503",
        vec![ReleaseAsset::new(
            "llama-b6503-bin-ubuntu-x64.zip",
            b"PK\x03\x04 not a zip".to_vec(),
            Digest::Right,
        )],
    );
    let before = entries(&runtimes);
    let err = engine::install(
        &client,
        &request(&broken.url, &runtimes, no_gpu(), None),
        |_, _| {},
    )
    .await
    .unwrap_err()
    .to_string();
    assert!(err.contains("engine archive"), "{err}");
    assert_eq!(entries(&runtimes), before);
    // An archive whose engine does not run here: removed again.
    let dead = FakeRelease::start(
        "b6504",
        vec![ReleaseAsset::new(
            "llama-b6504-bin-ubuntu-x64.zip",
            engine_zip(engine::EXE, b"#!/bin/sh\nexit 1\n"),
            Digest::Right,
        )],
    );
    let err = engine::install(
        &client,
        &request(&dead.url, &runtimes, no_gpu(), None),
        |_, _| {},
    )
    .await
    .unwrap_err()
    .to_string();
    assert!(err.contains("does not run on this machine"), "{err}");
    assert_eq!(entries(&runtimes), before);
}

#[test]
fn the_real_cpu_engine_lists_no_device_and_a_gpu_beside_it_is_warned_about() {
    let devices = hardware::engine_devices(&llama_server(), std::time::Duration::from_secs(30));
    assert_eq!(devices, Ok(vec![]), "the pinned build is CPU only");
    // The same answer on a machine where nvidia-smi reports a GPU.
    let mut hw = nvidia(Some("12.6"));
    hardware::apply_engine_view(&mut hw, devices, "the pinned llama-server");
    assert!(hw.gpu_unused());
    assert!(
        hw.warnings[0].contains("NVIDIA GeForce RTX 4070 is present")
            && hw.warnings[0].contains("CPU build"),
        "{:?}",
        hw.warnings
    );
    // And the fit no longer promises the GPU.
    assert!(hw.engine_cpu_only);
}
