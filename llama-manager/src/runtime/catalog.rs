//! The llama.cpp release as a catalog of engines: every asset classified by its name
//! (`llama-bNNNN-bin-<os>[-<backend>[-<version>]]-<arch>.zip|.tar.gz`, plus the CUDA
//! runtime companions `cudart-llama-bin-<os>-cuda-<version>-<arch>.zip`) and its
//! `digest` (`sha256:…`), and the choice of the best one for a machine.
//!
//! Names are parsed, not matched against a fixed list, so assets upstream adds later
//! (a Linux CUDA build, a new ROCm version) are understood when they follow the scheme.

use serde::{Deserialize, Serialize};

use super::engine::EngineError;
use crate::hardware::{GpuKind, Hardware};

/// A compute backend of llama.cpp's builds.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, Default,
)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    #[default]
    Cpu,
    Cuda,
    Vulkan,
    /// HIP/ROCm (AMD).
    Hip,
    /// SYCL (Intel oneAPI).
    Sycl,
    /// Apple's Metal (the macOS arm64 build).
    Metal,
}

impl Backend {
    pub const ALL: [Backend; 6] = [
        Backend::Cpu,
        Backend::Cuda,
        Backend::Vulkan,
        Backend::Hip,
        Backend::Sycl,
        Backend::Metal,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Backend::Cpu => "cpu",
            Backend::Cuda => "cuda",
            Backend::Vulkan => "vulkan",
            Backend::Hip => "hip",
            Backend::Sycl => "sycl",
            Backend::Metal => "metal",
        }
    }

    /// `cpu`, `cuda`, `vulkan`, `hip` (or `rocm`), `sycl`, `metal`.
    pub fn parse(s: &str) -> Result<Backend, String> {
        match s.trim().to_ascii_lowercase().as_str() {
            "cpu" => Ok(Backend::Cpu),
            "cuda" => Ok(Backend::Cuda),
            "vulkan" => Ok(Backend::Vulkan),
            "hip" | "rocm" => Ok(Backend::Hip),
            "sycl" => Ok(Backend::Sycl),
            "metal" => Ok(Backend::Metal),
            other => Err(format!(
                "unknown engine backend {other:?}: use cpu, cuda, vulkan, hip, sycl or metal"
            )),
        }
    }

    pub fn is_gpu(self) -> bool {
        self != Backend::Cpu
    }
}

impl std::fmt::Display for Backend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Operating systems llama.cpp publishes builds for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Os {
    Linux,
    Windows,
    Macos,
}

/// Where an engine must run: OS and architecture in llama.cpp's spelling (`x64`, `arm64`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Platform {
    pub os: Os,
    pub arch: String,
}

impl Platform {
    /// This machine (None where llama.cpp publishes nothing).
    pub fn current() -> Option<Platform> {
        let os = match std::env::consts::OS {
            "linux" => Os::Linux,
            "windows" => Os::Windows,
            "macos" => Os::Macos,
            _ => return None,
        };
        let arch = match std::env::consts::ARCH {
            "x86_64" => "x64",
            "aarch64" => "arm64",
            _ => return None,
        };
        Some(Platform {
            os,
            arch: arch.into(),
        })
    }

    pub fn new(os: Os, arch: &str) -> Platform {
        Platform {
            os,
            arch: arch.into(),
        }
    }
}

/// One downloadable engine (or CUDA runtime) archive of a release.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Asset {
    pub name: String,
    pub url: String,
    pub size: Option<u64>,
    /// Lower-case hex SHA-256 from the release's `digest` (None: the release gives none).
    pub sha256: Option<String>,
    pub os: Os,
    pub arch: String,
    pub backend: Backend,
    /// The backend's version where the name has one (`12.4` for CUDA, `7.2` for ROCm) or
    /// its flavour (`radeon`).
    pub variant: Option<String>,
}

/// A release: its tag, the engines, the CUDA runtime companions, and what was not
/// understood (listed in errors).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Release {
    pub tag: String,
    pub engines: Vec<Asset>,
    pub cudart: Vec<Asset>,
    pub other: Vec<String>,
}

/// `(major, minor)` of "12.4".
fn version_key(v: &str) -> (u32, u32) {
    let mut it = v.split('.').map(|p| p.parse::<u32>().unwrap_or(0));
    (it.next().unwrap_or(0), it.next().unwrap_or(0))
}

enum Kind {
    Engine,
    Cudart,
}

/// Classify an asset name: what it is, OS, arch, backend, variant.
fn classify(name: &str) -> Option<(Kind, Os, String, Backend, Option<String>)> {
    let stem = name
        .strip_suffix(".zip")
        .or_else(|| name.strip_suffix(".tar.gz"))?;
    let (kind, rest) = if let Some(r) = stem.strip_prefix("cudart-llama-bin-") {
        (Kind::Cudart, r)
    } else if stem.starts_with("llama-") {
        (Kind::Engine, stem.split_once("-bin-")?.1)
    } else {
        return None;
    };
    let parts: Vec<&str> = rest.split('-').collect();
    if parts.len() < 2 {
        return None;
    }
    let os = match parts[0] {
        "ubuntu" | "linux" => Os::Linux,
        "win" | "windows" => Os::Windows,
        "macos" => Os::Macos,
        _ => return None,
    };
    let arch = parts[parts.len() - 1];
    if !matches!(arch, "x64" | "arm64") {
        return None;
    }
    let mid = &parts[1..parts.len() - 1];
    // Older releases spell CUDA builds `cu12.4` (one token).
    if let Some(v) = mid
        .first()
        .and_then(|t| t.strip_prefix("cu"))
        .filter(|v| v.starts_with(|c: char| c.is_ascii_digit()))
        && mid.len() == 1
    {
        return Some((
            kind,
            os,
            arch.to_string(),
            Backend::Cuda,
            Some(v.to_string()),
        ));
    }
    let version = mid.get(1).map(|v| v.to_string());
    let (backend, variant) = match mid.first().copied() {
        None if os == Os::Macos && arch == "arm64" => (Backend::Metal, None),
        None | Some("cpu") if mid.len() <= 1 => (Backend::Cpu, None),
        Some("cuda") => (Backend::Cuda, version),
        Some("vulkan") if mid.len() == 1 => (Backend::Vulkan, None),
        Some("hip") | Some("rocm") => (Backend::Hip, version),
        Some("sycl") if mid.len() == 1 => (Backend::Sycl, None),
        Some("metal") => (Backend::Metal, None),
        _ => return None,
    };
    Some((kind, os, arch.to_string(), backend, variant))
}

/// Read a GitHub release JSON (`tag_name`, `assets[].name`, `browser_download_url`,
/// `size`, `digest`).
pub fn parse_release(v: &serde_json::Value) -> Result<Release, EngineError> {
    let tag = v["tag_name"]
        .as_str()
        .ok_or_else(|| EngineError::Release("the release has no tag_name".into()))?
        .to_string();
    let assets = v["assets"]
        .as_array()
        .ok_or_else(|| EngineError::Release("the release lists no assets".into()))?;
    let mut rel = Release {
        tag,
        engines: Vec::new(),
        cudart: Vec::new(),
        other: Vec::new(),
    };
    for a in assets {
        let Some(name) = a["name"].as_str() else {
            continue;
        };
        let (Some((kind, os, arch, backend, variant)), Some(url)) =
            (classify(name), a["browser_download_url"].as_str())
        else {
            rel.other.push(name.to_string());
            continue;
        };
        let sha256 = a["digest"]
            .as_str()
            .and_then(|d| d.strip_prefix("sha256:"))
            .map(|h| h.trim().to_ascii_lowercase())
            .filter(|h| h.len() == 64 && h.chars().all(|c| c.is_ascii_hexdigit()));
        let asset = Asset {
            name: name.to_string(),
            url: url.to_string(),
            size: a["size"].as_u64(),
            sha256,
            os,
            arch,
            backend,
            variant,
        };
        match kind {
            Kind::Engine => rel.engines.push(asset),
            Kind::Cudart => rel.cudart.push(asset),
        }
    }
    Ok(rel)
}

/// What to install: the engine, its companion (the CUDA runtime), and why.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Choice {
    pub engine: Asset,
    pub companion: Option<Asset>,
    pub reason: String,
}

impl Release {
    /// Engines that run on `p`.
    pub fn for_platform(&self, p: &Platform) -> impl Iterator<Item = &Asset> + '_ {
        let (os, arch) = (p.os, p.arch.clone());
        self.engines
            .iter()
            .filter(move |a| a.os == os && a.arch == arch)
    }

    fn find(&self, p: &Platform, b: Backend) -> Option<&Asset> {
        self.for_platform(p).find(|a| a.backend == b)
    }

    /// The CUDA build with the highest version the driver supports (`driver`: "12.4").
    fn best_cuda(&self, p: &Platform, driver: Option<&str>) -> Option<&Asset> {
        let limit = version_key(driver?);
        self.for_platform(p)
            .filter(|a| a.backend == Backend::Cuda)
            .filter(|a| version_key(a.variant.as_deref().unwrap_or("0")) <= limit)
            .max_by_key(|a| version_key(a.variant.as_deref().unwrap_or("0")))
    }

    fn cudart_for(&self, a: &Asset) -> Option<&Asset> {
        self.cudart
            .iter()
            .find(|c| c.os == a.os && c.arch == a.arch && c.variant == a.variant)
    }

    fn choice(&self, engine: &Asset, reason: String) -> Choice {
        let companion = if engine.backend == Backend::Cuda {
            self.cudart_for(engine).cloned()
        } else {
            None
        };
        Choice {
            engine: engine.clone(),
            companion,
            reason,
        }
    }

    /// Pick the engine for a machine: `wanted` when the user names a backend; else NVIDIA
    /// → CUDA (where this OS has a build the driver supports), AMD on Windows → HIP,
    /// Apple silicon → Metal, any other GPU (or NVIDIA without a usable CUDA build) →
    /// Vulkan, else CPU.
    pub fn choose(
        &self,
        p: &Platform,
        hw: &Hardware,
        wanted: Option<Backend>,
    ) -> Result<Choice, EngineError> {
        let available = || {
            let mut b: Vec<String> = self
                .for_platform(p)
                .map(|a| match &a.variant {
                    Some(v) => format!("{} {v}", a.backend),
                    None => a.backend.to_string(),
                })
                .collect();
            b.dedup();
            if b.is_empty() {
                "none".into()
            } else {
                b.join(", ")
            }
        };
        let os = format!("{:?} {}", p.os, p.arch).to_lowercase();
        if let Some(b) = wanted {
            let hit = if b == Backend::Cuda {
                self.best_cuda(p, hw.cuda_version.as_deref())
                    .or_else(|| self.find(p, b))
            } else {
                self.find(p, b)
            };
            return hit
                .map(|a| self.choice(a, format!("{b} engine, as asked")))
                .ok_or_else(|| {
                    EngineError::Release(format!(
                        "release {} has no {b} engine for {os} (it has: {})",
                        self.tag,
                        available()
                    ))
                });
        }
        let has = |k: GpuKind| hw.gpus.iter().any(|g| g.kind == k);
        if has(GpuKind::Nvidia)
            && let Some(a) = self.best_cuda(p, hw.cuda_version.as_deref())
        {
            return Ok(self.choice(
                a,
                format!(
                    "NVIDIA GPU, driver supports CUDA {}",
                    hw.cuda_version.as_deref().unwrap_or("?")
                ),
            ));
        }
        if has(GpuKind::Apple)
            && let Some(a) = self.find(p, Backend::Metal)
        {
            return Ok(self.choice(a, "Apple silicon: Metal".into()));
        }
        if has(GpuKind::Amd)
            && p.os == Os::Windows
            && let Some(a) = self.find(p, Backend::Hip)
        {
            return Ok(self.choice(a, "AMD GPU on Windows: HIP".into()));
        }
        let gpu = hw.gpus.iter().find(|g| g.kind != GpuKind::Apple);
        if let Some(g) = gpu
            && let Some(a) = self.find(p, Backend::Vulkan)
        {
            return Ok(self.choice(a, format!("{}: Vulkan", g.name)));
        }
        if let Some(a) = self.find(p, Backend::Cpu) {
            let why = match gpu {
                Some(g) => format!("{}: no GPU build of this release fits, CPU", g.name),
                None => "no GPU found: CPU".into(),
            };
            return Ok(self.choice(a, why));
        }
        // macOS arm64 has only the Metal build, which also runs on the CPU.
        if let Some(a) = self.find(p, Backend::Metal) {
            return Ok(self.choice(a, "the only build for this platform".into()));
        }
        Err(EngineError::Release(format!(
            "release {} has no engine for {os} (it has: {})",
            self.tag,
            available()
        )))
    }
}
