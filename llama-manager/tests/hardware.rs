//! Hardware detection on this machine (sysinfo) and GPU discovery through `nvidia-smi`
//! (a stand-in script where the real one is absent).

use llama_manager::hardware::{GpuKind, detect};

#[test]
fn detects_ram_cpu_and_nvidia_smi_or_none() {
    // SAFETY: this test binary has one test; nothing else reads the environment meanwhile.
    unsafe { std::env::set_var("BURNCLOUD_NVIDIA_SMI", "/nonexistent/nvidia-smi") };
    let hw = detect();
    assert!(hw.ram_total > 64 << 20, "{hw:?}");
    assert!(hw.ram_available > 0 && hw.ram_available <= hw.ram_total);
    assert!(hw.cpu_cores >= 1);
    assert!(
        hw.notes.iter().any(|n| n == "nvidia-smi: not installed"),
        "{hw:?}"
    );
    if hw.gpus.is_empty() {
        assert!(
            hw.describe().contains("GPU: none found"),
            "{}",
            hw.describe()
        );
    }

    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("nvidia-smi");
    std::fs::write(
        &script,
        "#!/bin/sh\necho 'NVIDIA GeForce RTX 4090, 24564, 23000'\n",
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    unsafe { std::env::set_var("BURNCLOUD_NVIDIA_SMI", &script) };
    let hw = detect();
    let g = hw
        .gpus
        .iter()
        .find(|g| g.kind == GpuKind::Nvidia)
        .expect("the GPU nvidia-smi listed");
    assert_eq!(g.name, "NVIDIA GeForce RTX 4090");
    assert_eq!(g.vram_total, 24564 << 20);
    assert!(
        hw.describe()
            .contains("RTX 4090 (24.0 GiB VRAM, 22.5 GiB free)"),
        "{}",
        hw.describe()
    );

    std::fs::write(&script, "#!/bin/sh\nexit 9\n").unwrap();
    let hw = detect();
    assert!(hw.notes.iter().any(|n| n.contains("exited")), "{hw:?}");
}
