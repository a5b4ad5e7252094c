//! The model library: GGUF models downloaded into the data dir or imported in place,
//! with the header summary, in the `models` / `model_files` tables (`V3__models.sql`).
//!
//! A model is registered in one transaction after every file was read (and, for
//! downloads, verified): there is never a half-registered model.

use std::path::{Path, PathBuf};

use gateway_core::store::db::{Connection, OptionalExtension, params};
use gateway_core::store::{Store, StoreError, now_secs};
use serde::Serialize;

use crate::gguf::{self, GgufError, ModelSummary};
use crate::hub::files::{is_mmproj, quant_from_name, shard_of, shard_path};

/// The standard Hugging Face hub cache: `HF_HUB_CACHE`, else `HF_HOME/hub`, else
/// `~/.cache/huggingface/hub` (None without a home folder).
pub fn hf_cache_dir() -> Option<PathBuf> {
    let var = |k: &str| {
        std::env::var_os(k)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    if let Some(p) = var("HF_HUB_CACHE") {
        return Some(p);
    }
    if let Some(p) = var("HF_HOME") {
        return Some(p.join("hub"));
    }
    var("HOME")
        .or_else(|| var("USERPROFILE"))
        .map(|h| h.join(".cache").join("huggingface").join("hub"))
}

/// Settings key: Hugging Face cache models the user removed from the library.
const HF_IGNORED_KEY: &str = "library.hf_cache_ignored";

/// Largest GGUF header we read (tokenizers of large vocabularies take tens of MB).
pub const MAX_HEADER: u64 = 256 << 20;

/// Library errors, each a message a person can act on.
#[derive(Debug, thiserror::Error)]
pub enum LibraryError {
    #[error("no model {0:?} in the library (see `burncloud model list`)")]
    NotFound(String),
    #[error("{0}")]
    Invalid(String),
    #[error("{path}: {source}")]
    Gguf { path: String, source: GgufError },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
}

type Result<T> = std::result::Result<T, LibraryError>;

/// Where a model came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    /// Registered in place; deleting it from the library leaves the file alone.
    Import,
    /// Downloaded into the data dir; deleting it deletes the files.
    Hub,
}

impl Source {
    fn as_str(self) -> &'static str {
        match self {
            Source::Import => "import",
            Source::Hub => "hub",
        }
    }
}

/// One file of a model.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ModelFile {
    /// `weights` or `mmproj`.
    pub role: String,
    pub path: PathBuf,
    pub size: u64,
    pub sha256: Option<String>,
}

/// A model in the library.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Model {
    pub id: i64,
    pub name: String,
    /// The owner's extra name for it (`burncloud model alias`), answered beside
    /// `local-<id>` and `local-<slug>`.
    pub alias: Option<String>,
    pub source: Source,
    pub repo: Option<String>,
    pub revision: Option<String>,
    /// The file to load (first shard).
    pub path: PathBuf,
    pub size: u64,
    pub quantization: Option<String>,
    pub summary: ModelSummary,
    pub files: Vec<ModelFile>,
    pub created_at: i64,
}

impl Model {
    pub fn mmproj(&self) -> Option<&ModelFile> {
        self.files.iter().find(|f| f.role == "mmproj")
    }
}

/// What a new model consists of (before registration).
#[derive(Debug, Clone)]
pub struct NewModel {
    pub source: Source,
    pub repo: Option<String>,
    pub revision: Option<String>,
    /// Weight files in order (shards), then any mmproj.
    pub files: Vec<ModelFile>,
    /// Preferred name (made unique by the library).
    pub name: String,
}

/// The library: a store and the directory downloads go to.
#[derive(Debug, Clone)]
pub struct Library {
    store: Store,
    models_dir: PathBuf,
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> LibraryError + '_ {
    move |source| LibraryError::Io {
        path: path.display().to_string(),
        source,
    }
}

/// Read and summarise the weight files (all shards) of a model.
pub fn summarize(weights: &[PathBuf]) -> Result<ModelSummary> {
    let mut summary: Option<ModelSummary> = None;
    for p in weights {
        let (g, len) = gguf::read_path(p, MAX_HEADER).map_err(|source| LibraryError::Gguf {
            path: p.display().to_string(),
            source,
        })?;
        g.check_complete(len).map_err(|source| LibraryError::Gguf {
            path: p.display().to_string(),
            source,
        })?;
        match summary.as_mut() {
            None => {
                let s = ModelSummary::from_gguf(&g, len)
                    .map_err(|e| LibraryError::Invalid(format!("{}: {e}", p.display())))?;
                if s.architecture == "clip" {
                    return Err(LibraryError::Invalid(format!(
                        "{} is a multimodal projector (mmproj), not a language model: import the model it belongs to",
                        p.display()
                    )));
                }
                summary = Some(s);
            }
            Some(s) => s.add_shard(&g, len),
        }
    }
    summary.ok_or_else(|| LibraryError::Invalid("no model file given".into()))
}

impl Library {
    pub fn new(store: Store, models_dir: PathBuf) -> Self {
        Library { store, models_dir }
    }

    /// The library of a gateway configuration (`<data dir>/models`).
    pub fn open(config: &gateway_core::Config) -> Result<Self> {
        let store = Store::connect(&config.database)?;
        Ok(Library::new(store, config.data_dir.join("models")))
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Where downloads go.
    pub fn models_dir(&self) -> &Path {
        &self.models_dir
    }

    /// Register an existing `.gguf` in place (no copy). A split model is registered from
    /// its first shard with all its shards; the files must all be present.
    pub fn import(&self, path: &Path) -> Result<Model> {
        let meta = std::fs::metadata(path).map_err(io_err(path))?;
        if !meta.is_file() {
            return Err(LibraryError::Invalid(format!(
                "{} is not a file",
                path.display()
            )));
        }
        let path = std::fs::canonicalize(path).map_err(io_err(path))?;
        let fname = path
            .file_name()
            .map(|f| f.to_string_lossy().into_owned())
            .unwrap_or_default();
        if is_mmproj(&fname) {
            return Err(LibraryError::Invalid(format!(
                "{} is a multimodal projector (mmproj), not a language model: import the model it belongs to",
                path.display()
            )));
        }
        let mut weights = vec![path.clone()];
        if let Some((i, n)) = shard_of(&fname) {
            if i != 1 {
                return Err(LibraryError::Invalid(format!(
                    "{} is shard {i} of {n}: import the first shard ({})",
                    path.display(),
                    shard_path(&fname, 1, n).unwrap_or_default()
                )));
            }
            for k in 2..=n {
                let p = path.with_file_name(shard_path(&fname, k, n).unwrap_or_default());
                if !p.is_file() {
                    return Err(LibraryError::Invalid(format!(
                        "shard {k} of {n} is missing: {}",
                        p.display()
                    )));
                }
                weights.push(p);
            }
        }
        let mut files = Vec::new();
        for p in &weights {
            let size = std::fs::metadata(p).map_err(io_err(p))?.len();
            files.push(ModelFile {
                role: "weights".into(),
                path: p.clone(),
                size,
                sha256: None,
            });
        }
        let name = default_name(&fname);
        self.register(NewModel {
            source: Source::Import,
            repo: None,
            revision: None,
            files,
            name,
        })
    }

    /// Read the headers and register a model in one transaction.
    pub fn register(&self, new: NewModel) -> Result<Model> {
        let weights: Vec<PathBuf> = new
            .files
            .iter()
            .filter(|f| f.role == "weights")
            .map(|f| f.path.clone())
            .collect();
        let summary = summarize(&weights)?;
        let primary = weights[0].clone();
        let quant = summary
            .file_type
            .clone()
            .filter(|t| !t.starts_with("type "))
            .or_else(|| quant_from_name(&primary.to_string_lossy()));
        let summary_json =
            serde_json::to_string(&summary).map_err(|e| LibraryError::Invalid(e.to_string()))?;
        let size: u64 = new.files.iter().map(|f| f.size).sum();
        let id = self.store.with(move |c| {
            let tx = c.transaction()?;
            let path_s = primary.to_string_lossy().into_owned();
            if let Some(id) = tx
                .query_row("SELECT id FROM models WHERE path = ?1", [&path_s], |r| {
                    r.get::<_, i64>(0)
                })
                .optional()?
            {
                return Err(StoreError::Conflict(format!(
                    "{path_s} is already in the library as model {id}"
                )));
            }
            let name = unique_name(&tx, &new.name)?;
            tx.execute(
                "INSERT INTO models (name, source, repo, revision, path, size_bytes, architecture, \
                 parameters, quantization, context_length, summary, created_at) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
                params![
                    name,
                    new.source.as_str(),
                    new.repo,
                    new.revision,
                    path_s,
                    size as i64,
                    summary.architecture,
                    summary.parameters as i64,
                    quant,
                    summary.context_length as i64,
                    summary_json,
                    now_secs()
                ],
            )?;
            let id = tx.last_insert_rowid();
            for (i, f) in new.files.iter().enumerate() {
                tx.execute(
                    "INSERT INTO model_files (model_id, role, idx, path, size_bytes, sha256) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                    params![
                        id,
                        f.role,
                        i as i64,
                        f.path.to_string_lossy(),
                        f.size as i64,
                        f.sha256
                    ],
                )?;
            }
            tx.commit()?;
            Ok(id)
        })?;
        self.get(&id.to_string())
    }

    /// Register in place (no copy) the GGUF models found in a Hugging Face hub cache
    /// (`<hub>/models--ORG--NAME/snapshots/REV/...`, what `huggingface-cli`, `hf-hub` and
    /// llama.cpp's `-hf` write): the snapshot path is kept (a symlink into `blobs/`), the
    /// repository and revision are recorded, and `model rm` leaves the files alone (they are
    /// shared). Models already registered are skipped; unreadable files are logged and
    /// skipped. Returns the models added.
    pub fn sync_hf_cache(&self, hub: &Path) -> Result<Vec<Model>> {
        let mut added = Vec::new();
        let Ok(repos) = std::fs::read_dir(hub) else {
            return Ok(added);
        };
        let mut known: std::collections::HashSet<PathBuf> = self
            .list()?
            .into_iter()
            .flat_map(|m| m.files.into_iter().map(|f| f.path))
            .collect();
        // Removed by the user (`model rm`): not added again.
        known.extend(self.hf_ignored()?.into_iter().map(PathBuf::from));
        let mut repos: Vec<_> = repos.flatten().map(|e| e.path()).collect();
        repos.sort();
        for repo_dir in repos {
            let dname = repo_dir
                .file_name()
                .map(|f| f.to_string_lossy().into_owned())
                .unwrap_or_default();
            let Some(rest) = dname.strip_prefix("models--") else {
                continue;
            };
            let repo = rest.replacen("--", "/", 1);
            let Ok(snaps) = std::fs::read_dir(repo_dir.join("snapshots")) else {
                continue;
            };
            for snap in snaps.flatten() {
                let rev = snap.file_name().to_string_lossy().into_owned();
                let mut stack = vec![snap.path()];
                let mut firsts = Vec::new();
                while let Some(d) = stack.pop() {
                    for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
                        let p = e.path();
                        let fname = e.file_name().to_string_lossy().into_owned();
                        if p.is_dir() {
                            stack.push(p);
                        } else if fname.to_ascii_lowercase().ends_with(".gguf")
                            && !is_mmproj(&fname)
                            && shard_of(&fname).is_none_or(|(i, _)| i == 1)
                            && p.is_file()
                        {
                            firsts.push((p, fname));
                        }
                    }
                }
                firsts.sort();
                for (first, fname) in firsts {
                    if known.contains(&first) {
                        continue;
                    }
                    let mut weights = vec![first.clone()];
                    if let Some((_, n)) = shard_of(&fname) {
                        weights.extend((2..=n).map(|k| {
                            first.with_file_name(shard_path(&fname, k, n).unwrap_or_default())
                        }));
                        if weights.iter().any(|w| !w.is_file()) {
                            tracing::warn!(path = %first.display(), "HF cache: a shard is missing, skipped");
                            continue;
                        }
                    }
                    let files = weights
                        .iter()
                        .map(|p| ModelFile {
                            role: "weights".into(),
                            size: std::fs::metadata(p).map(|m| m.len()).unwrap_or(0),
                            path: p.clone(),
                            sha256: None,
                        })
                        .collect();
                    match self.register(NewModel {
                        source: Source::Import,
                        repo: Some(repo.clone()),
                        revision: Some(rev.clone()),
                        files,
                        name: default_name(&fname),
                    }) {
                        Ok(m) => added.push(m),
                        Err(e) => {
                            tracing::warn!(path = %first.display(), "HF cache: not a usable model: {e}")
                        }
                    }
                }
            }
        }
        Ok(added)
    }

    fn hf_ignored(&self) -> Result<Vec<String>> {
        let v = self
            .store
            .with(|c| gateway_core::store::settings::get(c, HF_IGNORED_KEY))?;
        Ok(v.and_then(|t| serde_json::from_str(&t).ok())
            .unwrap_or_default())
    }

    /// Every model, oldest first.
    pub fn list(&self) -> Result<Vec<Model>> {
        Ok(self.store.with(|c| {
            let ids: Vec<i64> = c
                .prepare("SELECT id FROM models ORDER BY id")?
                .query_map([], |r| r.get(0))?
                .collect::<std::result::Result<_, _>>()?;
            ids.into_iter().map(|id| load(c, id)).collect()
        })?)
    }

    /// A model by id (`3`) or name.
    pub fn get(&self, id_or_name: &str) -> Result<Model> {
        let key = id_or_name.trim().to_string();
        let found = self.store.with(move |c| {
            let id: Option<i64> = c
                .query_row(
                    "SELECT id FROM models WHERE CAST(id AS TEXT) = ?1 OR name = ?1 ORDER BY CASE WHEN CAST(id AS TEXT) = ?1 THEN 0 ELSE 1 END, id LIMIT 1",
                    [&key],
                    |r| r.get(0),
                )
                .optional()?;
            id.map(|id| load(c, id)).transpose()
        })?;
        found.ok_or_else(|| LibraryError::NotFound(id_or_name.to_string()))
    }

    /// Give a model an extra name it answers to through the gateway (`None` clears it).
    /// Names are 1–64 characters of letters, digits and `-._:/`; `local-<number>` is
    /// reserved for the canonical names, and two models cannot share one.
    pub fn set_alias(&self, id_or_name: &str, alias: Option<&str>) -> Result<Model> {
        let model = self.get(id_or_name)?;
        let alias = alias.map(str::trim).map(str::to_string);
        if let Some(a) = &alias {
            validate_alias(a)?;
        }
        let id = model.id;
        let taken = alias.clone();
        self.store.with(move |c| {
            if let Some(a) = &taken {
                let other: Option<(i64, String)> = c
                    .query_row(
                        "SELECT id, name FROM models WHERE alias = ?1 AND id != ?2",
                        gateway_core::store::db::params![a, id],
                        |r| Ok((r.get(0)?, r.get(1)?)),
                    )
                    .optional()?;
                if let Some((oid, oname)) = other {
                    return Err(StoreError::Conflict(format!(
                        "{a:?} is already the alias of model {oid} ({oname}); clear it there first"
                    )));
                }
            }
            c.execute(
                "UPDATE models SET alias = ?1 WHERE id = ?2",
                gateway_core::store::db::params![taken, id],
            )?;
            Ok(())
        })?;
        self.get(&id.to_string())
    }

    /// Remove a model. Downloaded files are deleted; imported files stay where they were.
    /// Returns the model and the files deleted.
    pub fn remove(&self, id_or_name: &str) -> Result<(Model, Vec<PathBuf>)> {
        let model = self.get(id_or_name)?;
        let id = model.id;
        // A model of the shared Hugging Face cache stays out of the library once removed.
        let mut ignored = self.hf_ignored()?;
        // Files in the shared cache (found there, or downloaded there) stay: other tools
        // may use them (`huggingface-cli delete-cache` removes them).
        let from_hf_cache = model.repo.is_some()
            && model
                .path
                .components()
                .any(|c| c.as_os_str() == "snapshots")
            && model.path.ancestors().any(|a| {
                a.file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with("models--"))
            });
        if from_hf_cache {
            ignored.push(model.path.to_string_lossy().into_owned());
        }
        let ignored = serde_json::to_string(&ignored).unwrap_or_else(|_| "[]".into());
        self.store.with(move |c| {
            c.execute("DELETE FROM models WHERE id = ?1", [id])?;
            if from_hf_cache {
                gateway_core::store::settings::set(c, HF_IGNORED_KEY, &ignored)?;
            }
            Ok(())
        })?;
        let mut deleted = Vec::new();
        if model.source == Source::Hub && !from_hf_cache {
            for f in &model.files {
                match std::fs::remove_file(&f.path) {
                    Ok(()) => deleted.push(f.path.clone()),
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => tracing::warn!(path = %f.path.display(), "cannot delete: {e}"),
                }
                // Drop directories the download created, if now empty.
                let mut dir = f.path.parent();
                while let Some(d) = dir {
                    if !d.starts_with(&self.models_dir) || d == self.models_dir {
                        break;
                    }
                    if std::fs::remove_dir(d).is_err() {
                        break;
                    }
                    dir = d.parent();
                }
            }
        }
        Ok((model, deleted))
    }
}

/// Why `alias` cannot name a local model, if it cannot.
pub fn validate_alias(alias: &str) -> Result<()> {
    if alias.is_empty() || alias.len() > 64 {
        return Err(LibraryError::Invalid(
            "an alias is 1 to 64 characters long".into(),
        ));
    }
    if let Some(bad) = alias
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || "-._:/".contains(*c)))
    {
        return Err(LibraryError::Invalid(format!(
            "{bad:?} cannot be in an alias: use letters, digits and - . _ : /"
        )));
    }
    if alias
        .strip_prefix("local-")
        .is_some_and(|n| n.chars().all(|c| c.is_ascii_digit()))
    {
        return Err(LibraryError::Invalid(format!(
            "{alias:?} is reserved: local-<number> always names that model's own channel"
        )));
    }
    Ok(())
}

fn load(c: &Connection, id: i64) -> std::result::Result<Model, StoreError> {
    let mut m = c.query_row(
        "SELECT id, name, source, repo, revision, path, size_bytes, quantization, summary, created_at, alias \
         FROM models WHERE id = ?1",
        [id],
        |r| {
            let summary: String = r.get(8)?;
            Ok(Model {
                id: r.get(0)?,
                name: r.get(1)?,
                source: if r.get::<_, String>(2)? == "hub" {
                    Source::Hub
                } else {
                    Source::Import
                },
                repo: r.get(3)?,
                revision: r.get(4)?,
                path: PathBuf::from(r.get::<_, String>(5)?),
                size: r.get::<_, i64>(6)? as u64,
                quantization: r.get(7)?,
                summary: serde_json::from_str(&summary).unwrap_or_default(),
                files: Vec::new(),
                created_at: r.get(9)?,
                alias: r.get(10)?,
            })
        },
    )?;
    m.files = c
        .prepare(
            "SELECT role, path, size_bytes, sha256 FROM model_files WHERE model_id = ?1 ORDER BY idx",
        )?
        .query_map([id], |r| {
            Ok(ModelFile {
                role: r.get(0)?,
                path: PathBuf::from(r.get::<_, String>(1)?),
                size: r.get::<_, i64>(2)? as u64,
                sha256: r.get(3)?,
            })
        })?
        .collect::<std::result::Result<_, _>>()?;
    Ok(m)
}

/// `model-Q4_K_M-00001-of-00002.gguf` → `model-Q4_K_M`.
pub fn default_name(file: &str) -> String {
    let file = file.rsplit('/').next().unwrap_or(file);
    let stem = file.strip_suffix(".gguf").unwrap_or(file);
    let stem = match shard_of(file) {
        Some(_) => stem
            .rsplit_once("-of-")
            .and_then(|(rest, _)| rest.rsplit_once('-'))
            .map(|(base, _)| base)
            .unwrap_or(stem),
        None => stem,
    };
    if stem.is_empty() {
        "model".into()
    } else {
        stem.to_string()
    }
}

fn unique_name(c: &Connection, base: &str) -> std::result::Result<String, StoreError> {
    let taken = |n: &str| -> std::result::Result<bool, StoreError> {
        Ok(
            c.query_row("SELECT COUNT(*) FROM models WHERE name = ?1", [n], |r| {
                r.get::<_, i64>(0)
            })? > 0,
        )
    };
    // A bare number would read as an id.
    let base = if base.parse::<i64>().is_ok() {
        format!("model-{base}")
    } else {
        base.to_string()
    };
    if !taken(&base)? {
        return Ok(base);
    }
    for i in 2.. {
        let n = format!("{base}-{i}");
        if !taken(&n)? {
            return Ok(n);
        }
    }
    unreachable!("some suffix is free")
}
