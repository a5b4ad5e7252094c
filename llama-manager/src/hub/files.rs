//! File names in GGUF repositories: quantization (`Q4_K_M`), shards
//! (`-00001-of-00003.gguf`), multimodal projectors (`mmproj`), and the grouping of a
//! repository's files into the variants a user picks from.

use serde::Serialize;

/// Quantization names, longest first so `Q4_K_M` wins over `Q4_K`.
const QUANTS: &[&str] = &[
    "MXFP4_MOE",
    "IQ2_XXS",
    "IQ3_XXS",
    "Q2_K_XL",
    "Q3_K_XL",
    "Q4_K_XL",
    "Q5_K_XL",
    "Q6_K_XL",
    "Q8_K_XL",
    "IQ1_S",
    "IQ1_M",
    "IQ2_XS",
    "IQ2_S",
    "IQ2_M",
    "IQ3_XS",
    "IQ3_S",
    "IQ3_M",
    "IQ4_XS",
    "IQ4_NL",
    "Q2_K_S",
    "Q2_K_L",
    "Q3_K_S",
    "Q3_K_M",
    "Q3_K_L",
    "Q4_K_S",
    "Q4_K_M",
    "Q4_K_L",
    "Q5_K_S",
    "Q5_K_M",
    "Q5_K_L",
    "Q6_K_L",
    "TQ1_0",
    "TQ2_0",
    "Q2_K",
    "Q3_K",
    "Q4_K",
    "Q5_K",
    "Q6_K",
    "Q8_K",
    "Q4_0",
    "Q4_1",
    "Q5_0",
    "Q5_1",
    "Q8_0",
    "BF16",
    "F16",
    "F32",
];

/// The quantization named in a file name (`model.Q4_K_M.gguf` → `Q4_K_M`).
pub fn quant_from_name(name: &str) -> Option<String> {
    let file = name.rsplit('/').next().unwrap_or(name);
    let up = file.to_ascii_uppercase();
    let b = up.as_bytes();
    for q in QUANTS {
        let mut from = 0;
        while let Some(i) = up[from..].find(q) {
            let start = from + i;
            let end = start + q.len();
            let before_ok = start == 0 || !b[start - 1].is_ascii_alphanumeric();
            let after_ok = end == b.len() || !(b[end].is_ascii_alphanumeric() || b[end] == b'_');
            if before_ok && after_ok {
                return Some((*q).to_string());
            }
            from = start + 1;
        }
    }
    None
}

/// `name-00002-of-00005.gguf` → `(2, 5)`.
pub fn shard_of(name: &str) -> Option<(u32, u32)> {
    let stem = name.strip_suffix(".gguf")?;
    let (rest, total) = stem.rsplit_once("-of-")?;
    let (_, idx) = rest.rsplit_once('-')?;
    if idx.len() != 5 || total.len() != 5 {
        return None;
    }
    let (i, n): (u32, u32) = (idx.parse().ok()?, total.parse().ok()?);
    (i >= 1 && i <= n).then_some((i, n))
}

/// The path of shard `i` of the split model whose first shard is `first`.
pub fn shard_path(first: &str, i: u32, n: u32) -> Option<String> {
    let stem = first.strip_suffix(".gguf")?;
    let (rest, _) = stem.rsplit_once("-of-")?;
    let (base, _) = rest.rsplit_once('-')?;
    Some(format!("{base}-{i:05}-of-{n:05}.gguf"))
}

/// A multimodal projector file.
pub fn is_mmproj(name: &str) -> bool {
    name.rsplit('/')
        .next()
        .unwrap_or(name)
        .to_ascii_lowercase()
        .contains("mmproj")
}

/// A file listed by the hub.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HubFile {
    pub path: String,
    pub size: u64,
    /// SHA-256 from the tree's `lfs.oid` (absent for small non-LFS files).
    pub sha256: Option<String>,
}

/// One downloadable model in a repository: its weight files (one, or all shards in
/// order), with its quantization.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Variant {
    /// The first (or only) weight file.
    pub path: String,
    pub quant: Option<String>,
    pub files: Vec<HubFile>,
    /// Shards expected from the names (`files.len()` when complete).
    pub shards: u32,
}

impl Variant {
    pub fn size(&self) -> u64 {
        self.files.iter().map(|f| f.size).sum()
    }

    pub fn complete(&self) -> bool {
        self.files.len() as u32 == self.shards
    }
}

/// A repository's GGUF files grouped: weight variants and projectors.
#[derive(Debug, Clone, PartialEq, Serialize, Default)]
pub struct RepoFiles {
    pub variants: Vec<Variant>,
    pub mmproj: Vec<HubFile>,
}

/// Group a tree listing into variants (shards together) and `mmproj` files.
pub fn group(files: &[HubFile]) -> RepoFiles {
    let mut out = RepoFiles::default();
    let mut ggufs: Vec<&HubFile> = files.iter().filter(|f| f.path.ends_with(".gguf")).collect();
    ggufs.sort_by(|a, b| a.path.cmp(&b.path));
    for f in ggufs {
        if is_mmproj(&f.path) {
            out.mmproj.push(f.clone());
            continue;
        }
        match shard_of(&f.path) {
            Some((1, n)) => {
                let mut shard_files = vec![f.clone()];
                for i in 2..=n {
                    let Some(p) = shard_path(&f.path, i, n) else {
                        break;
                    };
                    if let Some(s) = files.iter().find(|x| x.path == p) {
                        shard_files.push(s.clone());
                    }
                }
                out.variants.push(Variant {
                    path: f.path.clone(),
                    quant: quant_from_name(&f.path),
                    files: shard_files,
                    shards: n,
                });
            }
            Some(_) => {} // a later shard: part of its first shard's variant
            None => out.variants.push(Variant {
                path: f.path.clone(),
                quant: quant_from_name(&f.path),
                files: vec![f.clone()],
                shards: 1,
            }),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quant_names() {
        assert_eq!(
            quant_from_name("TinyLlama-1.1B-Chat.Q4_K_M.gguf").as_deref(),
            Some("Q4_K_M")
        );
        assert_eq!(quant_from_name("m-q8_0.gguf").as_deref(), Some("Q8_0"));
        assert_eq!(
            quant_from_name("Qwen3-8B-UD-Q4_K_XL.gguf").as_deref(),
            Some("Q4_K_XL")
        );
        assert_eq!(
            quant_from_name("x/IQ2_XXS/model-IQ2_XXS-00001-of-00002.gguf").as_deref(),
            Some("IQ2_XXS")
        );
        assert_eq!(quant_from_name("model-f16.gguf").as_deref(), Some("F16"));
        assert_eq!(quant_from_name("model-bf16.gguf").as_deref(), Some("BF16"));
        assert_eq!(quant_from_name("model.gguf"), None);
        // Not fooled by look-alikes inside words.
        assert_eq!(quant_from_name("XQ4_K_MX.gguf"), None);
    }

    #[test]
    fn shards_and_grouping() {
        assert_eq!(shard_of("a/m-Q4_K_M-00002-of-00003.gguf"), Some((2, 3)));
        assert_eq!(shard_of("m-00004-of-00003.gguf"), None);
        assert_eq!(shard_of("m.gguf"), None);
        assert_eq!(
            shard_path("m-Q8_0-00001-of-00003.gguf", 3, 3).as_deref(),
            Some("m-Q8_0-00003-of-00003.gguf")
        );
        let f = |p: &str, size| HubFile {
            path: p.into(),
            size,
            sha256: Some("x".into()),
        };
        let files = vec![
            f("README.md", 10),
            f("m-Q8_0-00002-of-00002.gguf", 5),
            f("m-Q8_0-00001-of-00002.gguf", 7),
            f("m-Q4_K_M.gguf", 6),
            f("mmproj-m-F16.gguf", 3),
            f("big/m-F16-00001-of-00003.gguf", 1),
        ];
        let g = group(&files);
        assert_eq!(g.mmproj.len(), 1);
        assert_eq!(g.variants.len(), 3);
        let q8 = g
            .variants
            .iter()
            .find(|v| v.quant.as_deref() == Some("Q8_0"))
            .unwrap();
        assert_eq!(q8.files.len(), 2);
        assert_eq!(q8.files[0].path, "m-Q8_0-00001-of-00002.gguf");
        assert_eq!(q8.size(), 12);
        assert!(q8.complete());
        let f16 = g
            .variants
            .iter()
            .find(|v| v.quant.as_deref() == Some("F16"))
            .unwrap();
        assert!(!f16.complete());
        assert!(is_mmproj("x/MMPROJ-model.gguf"));
    }
}
