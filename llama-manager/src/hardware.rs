//! What this machine has for running models: RAM and CPU (`sysinfo`), GPUs and their
//! memory (NVIDIA through `nvidia-smi`, AMD through the amdgpu driver's sysfs files that
//! ROCm tools read too, Apple silicon's unified memory). Nothing found is said plainly.

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
    /// Apple silicon: the GPU shares the system RAM (unified memory).
    Apple,
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
        }
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
            }
            hw.gpus.extend(gpus);
        }
        Err(e) => hw.notes.push(format!("nvidia-smi: {e}")),
    }
    let amd = detect_amd(Path::new("/sys/class/drm"));
    hw.gpus.extend(amd);
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

fn run_with_timeout(cmd: &str, args: &[&str], timeout: Duration) -> Result<String, String> {
    let child = std::process::Command::new(cmd)
        .args(args)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                "not installed".to_string()
            } else {
                e.to_string()
            }
        })?;
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(timeout) {
        Ok(Ok(out)) if out.status.success() => Ok(String::from_utf8_lossy(&out.stdout).into()),
        Ok(Ok(out)) => Err(format!("exited with {}", out.status)),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err(format!("no answer within {}s", timeout.as_secs())),
    }
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

/// AMD GPUs from the amdgpu driver's sysfs files under `drm` (`/sys/class/drm`).
pub fn detect_amd(drm: &Path) -> Vec<Gpu> {
    let Ok(entries) = std::fs::read_dir(drm) else {
        return Vec::new();
    };
    let mut gpus = Vec::new();
    let mut names: Vec<_> = entries.filter_map(|e| e.ok()).map(|e| e.path()).collect();
    names.sort();
    for card in names {
        let fname = card
            .file_name()
            .map(|f| f.to_string_lossy().into_owned())
            .unwrap_or_default();
        if !fname.starts_with("card") || fname.contains('-') {
            continue;
        }
        let dev = card.join("device");
        let read = |f: &str| std::fs::read_to_string(dev.join(f)).ok();
        if read("vendor").map(|v| v.trim().to_string()).as_deref() != Some("0x1002") {
            continue;
        }
        let Some(total) = read("mem_info_vram_total").and_then(|v| v.trim().parse::<u64>().ok())
        else {
            continue;
        };
        let used = read("mem_info_vram_used").and_then(|v| v.trim().parse::<u64>().ok());
        gpus.push(Gpu {
            name: read("product_name")
                .map(|n| n.trim().to_string())
                .filter(|n| !n.is_empty())
                .unwrap_or_else(|| format!("AMD GPU ({fname})")),
            kind: GpuKind::Amd,
            vram_total: total,
            vram_free: used.map(|u| total.saturating_sub(u)),
        });
    }
    gpus
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
    }
}
