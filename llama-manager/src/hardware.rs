//! What this machine has for running models: RAM and CPU (`sysinfo`), GPUs and their
//! memory. The engine's own view comes first (`llama-server --list-devices`: the devices
//! its backend can use, with free memory); `nvidia-smi` (also the driver's CUDA version),
//! the amdgpu/i915/xe drivers' sysfs files and Apple silicon's unified memory are the
//! fallback, and tell when a GPU is present that the engine cannot use (a CPU build).
//! Nothing found is said plainly.

use std::path::Path;
use std::time::Duration;

use serde::{Deserialize, Serialize};

const MIB: u64 = 1 << 20;

/// GPU vendors we can size.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum GpuKind {
    Nvidia,
    Amd,
    Intel,
    /// Apple silicon: the GPU shares the system RAM (unified memory).
    Apple,
    /// A device the engine lists whose maker we do not recognise.
    Other,
}

/// One GPU.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Gpu {
    pub name: String,
    pub kind: GpuKind,
    /// Dedicated memory (for Apple: the system RAM it shares).
    pub vram_total: u64,
    /// Free memory when the driver says.
    pub vram_free: Option<u64>,
}

/// A machine's resources, detected or described (for tests and "what if").
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Hardware {
    pub ram_total: u64,
    pub ram_available: u64,
    pub cpu_cores: usize,
    pub cpu_name: String,
    pub gpus: Vec<Gpu>,
    /// How the GPUs were looked for (e.g. "nvidia-smi: not installed").
    pub notes: Vec<String>,
    /// The highest CUDA version the NVIDIA driver supports ("12.4"), from `nvidia-smi`.
    #[serde(default)]
    pub cuda_version: Option<String>,
    /// Problems worth a fix, e.g. a GPU the engine cannot use (see [`Hardware::gpu_unused`]).
    #[serde(default)]
    pub warnings: Vec<String>,
    /// The engine's devices were asked (`--list-devices`) and it listed none: a CPU build.
    #[serde(default)]
    pub engine_cpu_only: bool,
}

impl Hardware {
    /// A machine without a GPU.
    pub fn cpu_only(ram_total: u64, ram_available: u64, cpu_cores: usize) -> Self {
        Hardware {
            ram_total,
            ram_available,
            cpu_cores,
            cpu_name: "CPU".into(),
            gpus: Vec::new(),
            notes: Vec::new(),
            cuda_version: None,
            warnings: Vec::new(),
            engine_cpu_only: false,
        }
    }

    /// A GPU is present but the engine lists no device: it is a CPU build and the GPU
    /// sits idle.
    pub fn gpu_unused(&self) -> bool {
        self.engine_cpu_only && !self.gpus.is_empty()
    }

    /// True on Apple silicon (GPU memory is the system RAM).
    pub fn unified_memory(&self) -> bool {
        self.gpus.iter().any(|g| g.kind == GpuKind::Apple)
    }

    /// A readable description (several lines).
    pub fn describe(&self) -> String {
        let gib = |b: u64| b as f64 / (1u64 << 30) as f64;
        let mut s = format!(
            "CPU: {} ({} threads)\nRAM: {:.1} GiB total, {:.1} GiB available",
            self.cpu_name,
            self.cpu_cores,
            gib(self.ram_total),
            gib(self.ram_available)
        );
        if self.gpus.is_empty() {
            s.push_str("\nGPU: none found");
        }
        for g in &self.gpus {
            let free = g
                .vram_free
                .map(|f| format!(", {:.1} GiB free", gib(f)))
                .unwrap_or_default();
            let what = if g.kind == GpuKind::Apple {
                "unified memory"
            } else {
                "VRAM"
            };
            s.push_str(&format!(
                "\nGPU: {} ({:.1} GiB {what}{free})",
                g.name,
                gib(g.vram_total)
            ));
        }
        for n in &self.notes {
            s.push_str(&format!("\n  ({n})"));
        }
        for w in &self.warnings {
            s.push_str(&format!("\nwarning: {w}"));
        }
        s
    }
}

/// Detect this machine's hardware. Never fails: what cannot be found is noted.
pub fn detect() -> Hardware {
    use sysinfo::{CpuRefreshKind, MemoryRefreshKind, RefreshKind, System};
    let mut hw = Hardware::cpu_only(0, 0, 1);
    hw.cpu_name = std::env::consts::ARCH.to_string();
    match System::new_with_specifics(
        RefreshKind::nothing()
            .with_memory(MemoryRefreshKind::nothing().with_ram())
            .with_cpu(CpuRefreshKind::nothing()),
    ) {
        Ok(sys) => {
            if let Some(b) = sys
                .cpus()
                .first()
                .map(|c| c.brand().trim().to_string())
                .filter(|b| !b.is_empty())
            {
                hw.cpu_name = b;
            }
            hw.ram_total = sys.total_memory();
            hw.ram_available = sys.available_memory();
            hw.cpu_cores = sys.cpus().len().max(1);
        }
        Err(e) => hw.notes.push(format!("RAM and CPU unknown: {e}")),
    }
    let smi = std::env::var("BURNCLOUD_NVIDIA_SMI").unwrap_or_else(|_| "nvidia-smi".into());
    match run_with_timeout(
        &smi,
        &[
            "--query-gpu=name,memory.total,memory.free",
            "--format=csv,noheader,nounits",
        ],
        Duration::from_secs(5),
    ) {
        Ok(out) => {
            let gpus = parse_nvidia_smi(&out);
            if gpus.is_empty() {
                hw.notes.push("nvidia-smi: no GPU listed".into());
            } else {
                // The plain report's header names the highest CUDA version the driver runs.
                match run_with_timeout(&smi, &[], Duration::from_secs(5)) {
                    Ok(out) => hw.cuda_version = parse_cuda_version(&out),
                    Err(e) => hw.notes.push(format!("nvidia-smi (CUDA version): {e}")),
                }
            }
            hw.gpus.extend(gpus);
        }
        Err(e) => hw.notes.push(format!("nvidia-smi: {e}")),
    }
    let drm = std::env::var_os("BURNCLOUD_SYSFS_DRM")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| "/sys/class/drm".into());
    hw.gpus.extend(detect_amd(&drm));
    hw.gpus.extend(detect_intel(&drm));
    if cfg!(windows) {
        // AMD and Intel GPUs (and NVIDIA without nvidia-smi) from WMI.
        match run_with_timeout(
            "powershell",
            &[
                "-NoProfile",
                "-NonInteractive",
                "-Command",
                "Get-CimInstance Win32_VideoController | ForEach-Object { $_.Name + '|' + $_.AdapterRAM }",
            ],
            Duration::from_secs(10),
        ) {
            Ok(out) => {
                let have_nvidia = hw.gpus.iter().any(|g| g.kind == GpuKind::Nvidia);
                hw.gpus.extend(
                    parse_video_controllers(&out)
                        .into_iter()
                        .filter(|g| !(have_nvidia && g.kind == GpuKind::Nvidia)),
                );
            }
            Err(e) => hw.notes.push(format!("display adapters (WMI): {e}")),
        }
    }
    if cfg!(all(target_os = "macos", target_arch = "aarch64")) {
        hw.gpus.push(Gpu {
            name: "Apple silicon GPU".into(),
            kind: GpuKind::Apple,
            vram_total: hw.ram_total,
            vram_free: None,
        });
    }
    hw
}

/// Run a probe (`nvidia-smi`, `llama-server --list-devices`) and return its standard
/// output (and error, with `stderr`); a probe that does not answer within `timeout` is
/// killed and reaped, never left running.
pub fn run_with_timeout(cmd: &str, args: &[&str], timeout: Duration) -> Result<String, String> {
    probe(cmd, args, timeout, false)
}

fn probe(cmd: &str, args: &[&str], timeout: Duration, stderr: bool) -> Result<String, String> {
    use std::io::Read;
    let mut child = std::process::Command::new(cmd)
        .args(args)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(if stderr {
            std::process::Stdio::piped()
        } else {
            std::process::Stdio::null()
        })
        .spawn()
        .map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                "not installed".to_string()
            } else {
                e.to_string()
            }
        })?;
    let read = |r: Option<Box<dyn Read + Send>>| {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            if let Some(mut r) = r {
                let _ = r.read_to_end(&mut buf);
            }
            buf
        })
    };
    let out = read(
        child
            .stdout
            .take()
            .map(|r| Box::new(r) as Box<dyn Read + Send>),
    );
    let err = read(
        child
            .stderr
            .take()
            .map(|r| Box::new(r) as Box<dyn Read + Send>),
    );
    let deadline = std::time::Instant::now() + timeout;
    let status = loop {
        match child.try_wait() {
            Ok(Some(s)) => break s,
            Ok(None) if std::time::Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(20))
            }
            Ok(None) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!(
                    "no answer within {} s (stopped it)",
                    timeout.as_secs_f32()
                ));
            }
            Err(e) => return Err(e.to_string()),
        }
    };
    let mut text = String::from_utf8_lossy(&out.join().unwrap_or_default()).into_owned();
    text.push_str(&String::from_utf8_lossy(&err.join().unwrap_or_default()));
    if status.success() {
        Ok(text)
    } else {
        Err(format!("exited with {status}"))
    }
}

/// "CUDA Version: 12.4" in `nvidia-smi`'s plain report → "12.4".
pub fn parse_cuda_version(out: &str) -> Option<String> {
    let rest = out.split("CUDA Version:").nth(1)?;
    let v: String = rest
        .trim_start()
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == '.')
        .collect();
    (!v.is_empty()).then_some(v)
}

/// The maker of a GPU from its marketing name.
pub fn kind_from_name(name: &str) -> GpuKind {
    let n = name.to_ascii_lowercase();
    if ["nvidia", "geforce", "quadro", "tesla"]
        .iter()
        .any(|v| n.contains(v))
    {
        GpuKind::Nvidia
    } else if ["amd", "radeon", "instinct"].iter().any(|v| n.contains(v)) {
        GpuKind::Amd
    } else if n.contains("intel") {
        GpuKind::Intel
    } else if n.contains("apple") {
        GpuKind::Apple
    } else {
        GpuKind::Other
    }
}

/// Windows' display adapters (`Win32_VideoController` through PowerShell, lines
/// `NAME|ADAPTER_RAM`): enough to tell NVIDIA, AMD and Intel apart for the engine choice
/// before any GPU engine is installed (WMI caps the memory at 4 GiB; the engine's own
/// device list replaces these once a GPU engine runs). Unknown makers are left out.
pub fn parse_video_controllers(out: &str) -> Vec<Gpu> {
    out.lines()
        .filter_map(|l| {
            let (name, ram) = l.trim().rsplit_once('|')?;
            let kind = kind_from_name(name);
            (kind != GpuKind::Other).then(|| Gpu {
                name: name.trim().to_string(),
                kind,
                vram_total: ram.trim().parse().unwrap_or(0),
                vram_free: None,
            })
        })
        .collect()
}

/// One device as the engine lists it (`llama-server --list-devices`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Device {
    /// The backend's name for it: `Vulkan0`, `CUDA0`, `ROCm0`, `SYCL0`, `Metal`...
    pub id: String,
    pub name: String,
    pub total: u64,
    pub free: u64,
}

impl Device {
    /// Who made it, from its name (Metal devices are Apple's).
    pub fn kind(&self) -> GpuKind {
        match kind_from_name(&self.name) {
            GpuKind::Other if self.id.starts_with("Metal") || self.id.starts_with("MTL") => {
                GpuKind::Apple
            }
            k => k,
        }
    }
}

/// Parse `llama-server --list-devices`: after "Available devices:", lines
/// `  ID: NAME (TOTAL MiB, FREE MiB free)`. A CPU build lists none.
pub fn parse_list_devices(out: &str) -> Option<Vec<Device>> {
    let mut lines = out
        .lines()
        .skip_while(|l| !l.trim_start().starts_with("Available devices"));
    lines.next()?;
    let mut devs = Vec::new();
    for l in lines {
        let l = l.trim();
        let Some((id, rest)) = l.split_once(": ") else {
            continue;
        };
        if id.contains(' ') {
            continue;
        }
        let Some(open) = rest.rfind(" (") else {
            continue;
        };
        let name = rest[..open].trim().to_string();
        let nums: Vec<u64> = rest[open + 2..]
            .trim_end_matches(')')
            .split(',')
            .filter_map(|p| p.split_whitespace().next()?.parse().ok())
            .collect();
        if let [total, free] = nums[..] {
            devs.push(Device {
                id: id.to_string(),
                name,
                total: total * MIB,
                free: free * MIB,
            });
        }
    }
    Some(devs)
}

/// The engine's devices (`ENGINE --list-devices`, killed after `timeout`).
pub fn engine_devices(engine: &Path, timeout: Duration) -> Result<Vec<Device>, String> {
    let out = probe(
        &engine.to_string_lossy(),
        &["--list-devices"],
        timeout,
        true,
    )?;
    parse_list_devices(&out).ok_or_else(|| "--list-devices printed no device list".to_string())
}

/// Combine the fallback probes in `hw` with the engine's own view of its devices: the
/// engine's list (with free memory) replaces the GPUs it covers; a GPU the probes found
/// while the engine lists none means a CPU build, and a warning naming the fix.
pub fn apply_engine_view(hw: &mut Hardware, devices: Result<Vec<Device>, String>, engine: &str) {
    match devices {
        Ok(devs) if devs.is_empty() => {
            hw.engine_cpu_only = true;
            hw.notes.push(format!(
                "the engine ({engine}) lists no GPU device: a CPU build"
            ));
            if let Some(g) = hw.gpus.iter().find(|g| g.kind != GpuKind::Apple) {
                hw.warnings.push(format!(
                    "{} is present but the engine ({engine}) lists no GPU: it is a CPU build and the GPU stays idle. Install a GPU engine: `burncloud engine install` picks the right one (e.g. --backend vulkan)",
                    g.name
                ));
            }
        }
        Ok(devs) => {
            hw.gpus = devs
                .iter()
                .map(|d| Gpu {
                    name: format!("{} ({})", d.name, d.id),
                    kind: d.kind(),
                    vram_total: d.total,
                    vram_free: Some(d.free),
                })
                .collect();
            hw.notes
                .push(format!("devices as the engine sees them ({engine})"));
        }
        Err(e) => hw.notes.push(format!("engine devices: {e}")),
    }
}

/// [`detect`], then the engine's view of its devices (see [`apply_engine_view`]), asked
/// with a 5 s limit.
pub fn detect_with_engine(engine: Option<&Path>) -> Hardware {
    let mut hw = detect();
    if let Some(e) = engine {
        let devs = engine_devices(e, Duration::from_secs(5));
        apply_engine_view(&mut hw, devs, &e.display().to_string());
    }
    hw
}

/// Parse `nvidia-smi --query-gpu=name,memory.total,memory.free --format=csv,noheader,nounits`
/// (MiB).
pub fn parse_nvidia_smi(out: &str) -> Vec<Gpu> {
    out.lines()
        .filter_map(|line| {
            let mut parts = line.rsplitn(3, ',').map(str::trim);
            let free: u64 = parts.next()?.parse().ok()?;
            let total: u64 = parts.next()?.parse().ok()?;
            let name = parts.next()?.to_string();
            Some(Gpu {
                name,
                kind: GpuKind::Nvidia,
                vram_total: total * MIB,
                vram_free: Some(free * MIB),
            })
        })
        .collect()
}

/// The DRM cards under `drm` (`/sys/class/drm/cardN`, connectors left out) whose PCI
/// vendor is `vendor`, in name order: (card name, a reader of its `device/` files).
fn drm_cards(drm: &Path, vendor: &str) -> Vec<(String, impl Fn(&str) -> Option<String>)> {
    let Ok(entries) = std::fs::read_dir(drm) else {
        return Vec::new();
    };
    let mut cards: Vec<_> = entries.filter_map(|e| e.ok()).map(|e| e.path()).collect();
    cards.sort();
    cards
        .into_iter()
        .filter_map(|card| {
            let name = card.file_name()?.to_string_lossy().into_owned();
            if !name.starts_with("card") || name.contains('-') {
                return None;
            }
            let dev = card.join("device");
            let read = move |f: &str| {
                std::fs::read_to_string(dev.join(f))
                    .ok()
                    .map(|v| v.trim().to_string())
            };
            (read("vendor").as_deref() == Some(vendor)).then_some((name, read))
        })
        .collect()
}

/// AMD GPUs from the amdgpu driver's sysfs files under `drm` (`/sys/class/drm`).
pub fn detect_amd(drm: &Path) -> Vec<Gpu> {
    drm_cards(drm, "0x1002")
        .into_iter()
        .filter_map(|(name, read)| {
            let total = read("mem_info_vram_total")?.parse::<u64>().ok()?;
            let used = read("mem_info_vram_used").and_then(|v| v.parse::<u64>().ok());
            Some(Gpu {
                name: read("product_name")
                    .filter(|n| !n.is_empty())
                    .unwrap_or_else(|| format!("AMD GPU ({name})")),
                kind: GpuKind::Amd,
                vram_total: total,
                vram_free: used.map(|u| total.saturating_sub(u)),
            })
        })
        .collect()
}

/// Intel GPUs (i915/xe drivers) under `drm`: vendor 0x8086. Discrete cards report their
/// memory (`mem_info_vram_total`, xe), integrated ones share the RAM (size unknown here: 0).
pub fn detect_intel(drm: &Path) -> Vec<Gpu> {
    drm_cards(drm, "0x8086")
        .into_iter()
        .map(|(name, read)| Gpu {
            name: format!("Intel GPU ({name})"),
            kind: GpuKind::Intel,
            vram_total: read("mem_info_vram_total")
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or(0),
            vram_free: None,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nvidia_smi_output() {
        let gpus = parse_nvidia_smi(
            "NVIDIA GeForce RTX 3070, 8192, 7800\nNVIDIA A100-SXM4-80GB, 81920, 81000\ngarbage\n",
        );
        assert_eq!(gpus.len(), 2);
        assert_eq!(gpus[0].name, "NVIDIA GeForce RTX 3070");
        assert_eq!(gpus[0].vram_total, 8192 * MIB);
        assert_eq!(gpus[0].vram_free, Some(7800 * MIB));
        assert_eq!(gpus[1].kind, GpuKind::Nvidia);
    }

    #[test]
    fn amd_sysfs() {
        let dir = tempfile::tempdir().unwrap();
        let dev = dir.path().join("card0/device");
        std::fs::create_dir_all(&dev).unwrap();
        std::fs::write(dev.join("vendor"), "0x1002\n").unwrap();
        std::fs::write(dev.join("mem_info_vram_total"), "17163091968\n").unwrap();
        std::fs::write(dev.join("mem_info_vram_used"), "163091968\n").unwrap();
        let intel = dir.path().join("card1/device");
        std::fs::create_dir_all(&intel).unwrap();
        std::fs::write(intel.join("vendor"), "0x8086\n").unwrap();
        std::fs::create_dir_all(dir.path().join("card0-DP-1")).unwrap();
        let gpus = detect_amd(dir.path());
        assert_eq!(gpus.len(), 1);
        assert_eq!(gpus[0].kind, GpuKind::Amd);
        assert_eq!(gpus[0].vram_total, 17_163_091_968);
        assert_eq!(gpus[0].vram_free, Some(17_000_000_000));
        assert!(detect_amd(&dir.path().join("nope")).is_empty());
        // The same folder seen for Intel: the integrated card1, its memory unknown.
        let gpus = detect_intel(dir.path());
        assert_eq!(gpus.len(), 1, "{gpus:?}");
        assert_eq!((gpus[0].kind, gpus[0].vram_total), (GpuKind::Intel, 0));
        assert_eq!(gpus[0].name, "Intel GPU (card1)");
    }

    #[test]
    fn engine_devices_and_the_cpu_build_warning() {
        let vulkan = "ggml_vulkan: Found 1 Vulkan devices:\nAvailable devices:\n  Vulkan0: NVIDIA GeForce RTX 3080 Ti (12300 MiB, 11511 MiB free)\n  Vulkan1: Intel(R) Arc(TM) A770 Graphics (16225 MiB, 15000 MiB free)\n";
        let devs = parse_list_devices(vulkan).unwrap();
        assert_eq!(devs.len(), 2);
        assert_eq!(devs[0].id, "Vulkan0");
        assert_eq!(devs[0].kind(), GpuKind::Nvidia);
        assert_eq!(devs[0].free, 11511 * MIB);
        assert_eq!(devs[1].kind(), GpuKind::Intel);
        let metal = parse_list_devices(
            "Available devices:\n  MTL0: Apple M2 Max (49152 MiB, 49151 MiB free)\n",
        )
        .unwrap();
        assert_eq!(metal[0].kind(), GpuKind::Apple);
        let rocm = parse_list_devices(
            "Available devices:\n  ROCm0: AMD Radeon RX 7900 XTX (24560 MiB, 24000 MiB free)\n",
        )
        .unwrap();
        assert_eq!(rocm[0].kind(), GpuKind::Amd);
        assert_eq!(parse_list_devices("Available devices:\n").unwrap(), vec![]);
        assert!(parse_list_devices("error: unknown argument").is_none());

        // The engine's view replaces the probes' GPUs.
        let mut hw = Hardware::cpu_only(1 << 34, 1 << 33, 8);
        hw.gpus = parse_nvidia_smi("NVIDIA GeForce RTX 3080 Ti, 12288, 12000\n");
        apply_engine_view(&mut hw, Ok(devs), "vulkan");
        assert_eq!(hw.gpus.len(), 2);
        assert_eq!(hw.gpus[0].vram_free, Some(11511 * MIB));
        assert!(hw.warnings.is_empty() && !hw.gpu_unused());
        // A CPU build with a GPU present: warned, with the fix.
        let mut hw = Hardware::cpu_only(1 << 34, 1 << 33, 8);
        hw.gpus = parse_nvidia_smi("NVIDIA GeForce RTX 3080 Ti, 12288, 12000\n");
        apply_engine_view(&mut hw, Ok(vec![]), "cpu");
        assert!(hw.gpu_unused());
        assert!(
            hw.warnings[0].contains("CPU build") && hw.warnings[0].contains("engine install"),
            "{:?}",
            hw.warnings
        );
        assert!(
            hw.describe()
                .contains("warning: NVIDIA GeForce RTX 3080 Ti is present")
        );
        // No GPU, CPU build: nothing to warn about.
        let mut hw = Hardware::cpu_only(1 << 34, 1 << 33, 8);
        apply_engine_view(&mut hw, Ok(vec![]), "cpu");
        assert!(hw.warnings.is_empty());
    }

    #[test]
    fn cuda_version_from_the_plain_report() {
        let report =
            "| NVIDIA-SMI 550.54.14   Driver Version: 550.54.14   CUDA Version: 12.4     |";
        assert_eq!(parse_cuda_version(report).as_deref(), Some("12.4"));
        assert_eq!(parse_cuda_version("no header"), None);
    }

    #[test]
    fn a_probe_that_hangs_is_killed() {
        let t0 = std::time::Instant::now();
        let err = run_with_timeout("sleep", &["30"], Duration::from_millis(300)).unwrap_err();
        assert!(err.contains("stopped it"), "{err}");
        assert!(t0.elapsed() < Duration::from_secs(5));
    }

    #[test]
    fn windows_display_adapters() {
        let gpus = parse_video_controllers(
            "AMD Radeon RX 7800 XT|4293918720\r\nIntel(R) UHD Graphics 770|2147479552\r\nMicrosoft Basic Display Adapter|0\r\n",
        );
        assert_eq!(gpus.len(), 2);
        assert_eq!(gpus[0].kind, GpuKind::Amd);
        assert_eq!(gpus[0].vram_total, 4_293_918_720);
        assert_eq!(gpus[1].kind, GpuKind::Intel);
    }
}
