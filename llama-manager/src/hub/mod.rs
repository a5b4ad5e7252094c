//! The model hub: the HTTP client (`client`) and file-name conventions (`files`), and
//! how a user's `REPO[:FILE|:QUANT]` picks files.

pub mod client;
pub mod files;

pub use client::{
    HubClient, HubError, RepoDetails, RepoInfo, RepoSummary, SearchPage, SearchQuery, SearchSort,
};
use files::{HubFile, RepoFiles, Variant, shard_of};

/// Split `REPO[:FILE|:QUANT]`.
pub fn parse_spec(spec: &str) -> (&str, Option<&str>) {
    match spec.split_once(':') {
        Some((repo, sel)) if !sel.is_empty() => (repo, Some(sel)),
        Some((repo, _)) => (repo, None),
        None => (spec, None),
    }
}

fn choices(files: &RepoFiles) -> String {
    files
        .variants
        .iter()
        .map(|v| match &v.quant {
            Some(q) => format!("{q} ({})", v.path),
            None => v.path.clone(),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// The variant a selector names: `None` → the only variant, else `Q4_K_M`; a file path
/// (any shard) → its variant; a quantization name → the variant with it.
pub fn pick_variant(files: &RepoFiles, sel: Option<&str>) -> Result<Variant, String> {
    if files.variants.is_empty() {
        return Err("the repository has no GGUF model files".into());
    }
    let Some(sel) = sel else {
        if files.variants.len() == 1 {
            return Ok(files.variants[0].clone());
        }
        let q4: Vec<&Variant> = files
            .variants
            .iter()
            .filter(|v| v.quant.as_deref() == Some("Q4_K_M"))
            .collect();
        if q4.len() == 1 {
            return Ok(q4[0].clone());
        }
        return Err(format!(
            "the repository has several models; choose one with REPO:QUANT or REPO:FILE: {}",
            choices(files)
        ));
    };
    if sel.to_ascii_lowercase().ends_with(".gguf") {
        let found = files.variants.iter().find(|v| {
            v.files
                .iter()
                .any(|f| f.path == sel || f.path.ends_with(&format!("/{sel}")))
        });
        return match found {
            Some(v) => Ok(v.clone()),
            None if files.mmproj.iter().any(|f| f.path == sel) => Err(format!(
                "{sel} is a multimodal projector; it comes with its model: download the model"
            )),
            None => Err(format!("no file {sel} here; available: {}", choices(files))),
        };
    }
    let want = sel.to_ascii_uppercase();
    let matching: Vec<&Variant> = files
        .variants
        .iter()
        .filter(|v| v.quant.as_deref() == Some(want.as_str()))
        .collect();
    match matching.len() {
        1 => Ok(matching[0].clone()),
        0 => Err(format!(
            "no {want} file here; available: {}",
            choices(files)
        )),
        _ => Err(format!(
            "several {want} files; choose one with REPO:FILE: {}",
            matching
                .iter()
                .map(|v| v.path.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        )),
    }
}

/// The projector to download with a model: the F16 one if there are several.
pub fn pick_mmproj(files: &RepoFiles) -> Option<HubFile> {
    files
        .mmproj
        .iter()
        .find(|f| f.path.to_ascii_uppercase().contains("F16"))
        .or_else(|| files.mmproj.first())
        .cloned()
}

/// True for a later shard's name (`-00002-of-00003`).
pub fn is_later_shard(path: &str) -> bool {
    matches!(shard_of(path), Some((i, _)) if i > 1)
}
