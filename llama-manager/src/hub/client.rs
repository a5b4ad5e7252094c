//! The hub client: search, repository info, the recursive tree and ranged header reads
//! against `HF_ENDPOINT` (huggingface.co or a mirror), with `HF_TOKEN` or the token saved
//! by `huggingface-cli login`.
//!
//! Plain `reqwest` on the hub's documented HTTP endpoints rather than `hf-hub` 1.0: that
//! crate pulls in `hf-xet` (a large dependency tree), does not resume or verify
//! downloads — which we have to build anyway — and the listing endpoints are three JSON
//! GETs.

use std::time::Duration;

use reqwest::{StatusCode, Url, header};
use serde::{Deserialize, Serialize};

use super::files::{HubFile, RepoFiles, group};
use crate::gguf::{self, GgufError, ModelSummary};

/// Hub errors, each a message a person can act on.
#[derive(Debug, thiserror::Error)]
pub enum HubError {
    #[error(
        "cannot reach the model hub at {endpoint} ({reason}); check the network or HF_ENDPOINT"
    )]
    Unreachable { endpoint: String, reason: String },
    #[error("repository {repo} was not found on {endpoint} (or it is private: set HF_TOKEN)")]
    RepoNotFound { repo: String, endpoint: String },
    #[error("{file} was not found in {repo}")]
    FileNotFound { repo: String, file: String },
    #[error(
        "{repo} is gated: accept its terms at {endpoint}/{repo}, then set HF_TOKEN to a read token (none is set)"
    )]
    GatedNoToken { repo: String, endpoint: String },
    #[error(
        "{repo} is gated and the token in use has no access: accept its terms at {endpoint}/{repo} with the account the token belongs to"
    )]
    GatedDenied { repo: String, endpoint: String },
    #[error("the hub answered {status} for {url}")]
    Status { status: u16, url: String },
    #[error("unexpected answer from {url}: {reason}")]
    BadAnswer { url: String, reason: String },
    #[error("{0}")]
    Invalid(String),
    #[error("{file}: {source}")]
    Header { file: String, source: GgufError },
}

/// Search order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SearchSort {
    Downloads,
    Likes,
    Recent,
}

/// A search.
#[derive(Debug, Clone)]
pub struct SearchQuery {
    pub text: String,
    pub sort: SearchSort,
    pub limit: u32,
}

/// A repository in search results.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RepoSummary {
    pub id: String,
    pub downloads: u64,
    pub likes: u64,
    pub last_modified: String,
    pub gated: bool,
}

/// One page of results; `next` is the hub's link to the following page.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SearchPage {
    pub models: Vec<RepoSummary>,
    pub next: Option<String>,
}

/// A repository's details.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RepoInfo {
    pub id: String,
    /// The commit everything is downloaded from (pinned for resumes).
    pub sha: String,
    pub gated: bool,
    pub downloads: u64,
    pub likes: u64,
    pub last_modified: String,
}

/// Info plus the grouped GGUF files.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RepoDetails {
    pub info: RepoInfo,
    pub files: RepoFiles,
}

#[derive(Deserialize)]
struct ApiModel {
    id: String,
    #[serde(default)]
    sha: Option<String>,
    #[serde(default)]
    downloads: u64,
    #[serde(default)]
    likes: u64,
    #[serde(default, rename = "lastModified")]
    last_modified: Option<String>,
    #[serde(default)]
    gated: serde_json::Value,
}

impl ApiModel {
    fn gated(&self) -> bool {
        match &self.gated {
            serde_json::Value::Bool(b) => *b,
            serde_json::Value::String(s) => !s.is_empty() && s != "false",
            _ => false,
        }
    }
}

#[derive(Deserialize)]
struct TreeEntry {
    #[serde(rename = "type")]
    kind: String,
    path: String,
    #[serde(default)]
    size: u64,
    #[serde(default)]
    lfs: Option<TreeLfs>,
}

#[derive(Deserialize)]
struct TreeLfs {
    oid: String,
    size: u64,
}

/// The client. Cheap to clone.
#[derive(Debug, Clone)]
pub struct HubClient {
    endpoint: String,
    token: Option<String>,
    http: reqwest::Client,
}

/// `HF_TOKEN`, else the file `huggingface-cli login` writes (`HF_TOKEN_PATH`,
/// `$HF_HOME/token`, `~/.cache/huggingface/token`).
pub fn token_from_env() -> Option<String> {
    if let Ok(t) = std::env::var("HF_TOKEN") {
        let t = t.trim().to_string();
        if !t.is_empty() {
            return Some(t);
        }
    }
    let path = std::env::var_os("HF_TOKEN_PATH")
        .map(std::path::PathBuf::from)
        .or_else(|| std::env::var_os("HF_HOME").map(|h| std::path::PathBuf::from(h).join("token")))
        .or_else(|| {
            std::env::var_os("HOME")
                .map(|h| std::path::PathBuf::from(h).join(".cache/huggingface/token"))
        })?;
    let t = std::fs::read_to_string(path).ok()?.trim().to_string();
    (!t.is_empty()).then_some(t)
}

/// Check a repository id (`org/name`, or a legacy bare `name`).
pub fn check_repo_id(repo: &str) -> Result<(), HubError> {
    let ok_part = |p: &str| {
        !p.is_empty()
            && p != "."
            && p != ".."
            && p.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    };
    let parts: Vec<&str> = repo.split('/').collect();
    if parts.len() > 2 || !parts.iter().all(|p| ok_part(p)) {
        return Err(HubError::Invalid(format!(
            "{repo:?} is not a repository id (expected ORG/NAME, e.g. TheBloke/TinyLlama-1.1B-Chat-v1.0-GGUF)"
        )));
    }
    Ok(())
}

impl HubClient {
    /// A client for `endpoint` (no trailing slash needed).
    pub fn new(endpoint: &str, token: Option<String>) -> Result<Self, HubError> {
        let endpoint = endpoint.trim_end_matches('/').to_string();
        Url::parse(&endpoint)
            .map_err(|e| HubError::Invalid(format!("HF_ENDPOINT={endpoint:?}: {e}")))?;
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .user_agent(concat!("burncloud/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| HubError::Invalid(e.to_string()))?;
        Ok(HubClient {
            endpoint,
            token,
            http,
        })
    }

    /// `HF_ENDPOINT` (default `https://huggingface.co`) and the token from the environment.
    pub fn from_env() -> Result<Self, HubError> {
        let endpoint =
            std::env::var("HF_ENDPOINT").unwrap_or_else(|_| "https://huggingface.co".into());
        HubClient::new(&endpoint, token_from_env())
    }

    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    pub fn has_token(&self) -> bool {
        self.token.is_some()
    }

    /// A request with the token (reqwest drops it on redirects to another host).
    pub(crate) fn get(&self, url: Url) -> reqwest::RequestBuilder {
        let rb = self.http.get(url);
        match &self.token {
            Some(t) => rb.bearer_auth(t),
            None => rb,
        }
    }

    fn url(&self, segments: &[&str]) -> Result<Url, HubError> {
        let mut url = Url::parse(&self.endpoint)
            .map_err(|e| HubError::Invalid(format!("HF_ENDPOINT: {e}")))?;
        {
            let mut p = url
                .path_segments_mut()
                .map_err(|_| HubError::Invalid("HF_ENDPOINT cannot be a base URL".into()))?;
            p.pop_if_empty();
            for s in segments {
                for part in s.split('/') {
                    p.push(part);
                }
            }
        }
        Ok(url)
    }

    /// The `resolve` URL of a file at a revision.
    pub fn resolve_url(&self, repo: &str, rev: &str, file: &str) -> Result<Url, HubError> {
        self.url(&[repo, "resolve", rev, file])
    }

    pub(crate) fn unreachable(&self, e: &reqwest::Error) -> HubError {
        HubError::Unreachable {
            endpoint: self.endpoint.clone(),
            reason: e.to_string(),
        }
    }

    async fn get_json<T: for<'de> Deserialize<'de>>(
        &self,
        url: Url,
        repo: Option<&str>,
    ) -> Result<(T, Option<String>), HubError> {
        let resp = self
            .get(url.clone())
            .timeout(Duration::from_secs(60))
            .send()
            .await
            .map_err(|e| self.unreachable(&e))?;
        let status = resp.status();
        if let Some(repo) = repo
            && (status == StatusCode::NOT_FOUND || status == StatusCode::UNAUTHORIZED)
        {
            return Err(HubError::RepoNotFound {
                repo: repo.into(),
                endpoint: self.endpoint.clone(),
            });
        }
        if !status.is_success() {
            return Err(HubError::Status {
                status: status.as_u16(),
                url: url.to_string(),
            });
        }
        let next = next_link(resp.headers());
        let body = resp.bytes().await.map_err(|e| self.unreachable(&e))?;
        let v = serde_json::from_slice(&body).map_err(|e| HubError::BadAnswer {
            url: url.to_string(),
            reason: e.to_string(),
        })?;
        Ok((v, next))
    }

    /// One page of GGUF repositories matching `q`; `page` 1 is the first (later pages
    /// follow the hub's `Link: rel="next"`).
    pub async fn search_page(&self, q: &SearchQuery, page: u32) -> Result<SearchPage, HubError> {
        let mut url = self.url(&["api", "models"])?;
        url.query_pairs_mut()
            .append_pair("search", &q.text)
            .append_pair("filter", "gguf")
            .append_pair(
                "sort",
                match q.sort {
                    SearchSort::Downloads => "downloads",
                    SearchSort::Likes => "likes",
                    SearchSort::Recent => "lastModified",
                },
            )
            .append_pair("direction", "-1")
            .append_pair("limit", &q.limit.to_string());
        let mut page_no = 1;
        loop {
            let (models, next): (Vec<ApiModel>, _) = self.get_json(url.clone(), None).await?;
            if page_no >= page {
                return Ok(SearchPage {
                    models: models
                        .into_iter()
                        .map(|m| RepoSummary {
                            gated: m.gated(),
                            id: m.id,
                            downloads: m.downloads,
                            likes: m.likes,
                            last_modified: m.last_modified.unwrap_or_default(),
                        })
                        .collect(),
                    next,
                });
            }
            let Some(n) = next else {
                return Ok(SearchPage {
                    models: Vec::new(),
                    next: None,
                });
            };
            url = Url::parse(&n).map_err(|e| HubError::BadAnswer {
                url: n.clone(),
                reason: e.to_string(),
            })?;
            page_no += 1;
        }
    }

    /// Repository info (its current commit, gating, popularity).
    pub async fn repo(&self, repo: &str) -> Result<RepoInfo, HubError> {
        check_repo_id(repo)?;
        let url = self.url(&["api", "models", repo])?;
        let (m, _): (ApiModel, _) = self.get_json(url.clone(), Some(repo)).await?;
        Ok(RepoInfo {
            gated: m.gated(),
            sha: m.sha.ok_or_else(|| HubError::BadAnswer {
                url: url.to_string(),
                reason: "no sha".into(),
            })?,
            id: m.id,
            downloads: m.downloads,
            likes: m.likes,
            last_modified: m.last_modified.unwrap_or_default(),
        })
    }

    /// Every file of a repository at `rev` with sizes and LFS SHA-256.
    pub async fn tree(&self, repo: &str, rev: &str) -> Result<Vec<HubFile>, HubError> {
        check_repo_id(repo)?;
        let mut url = self.url(&["api", "models", repo, "tree", rev])?;
        url.query_pairs_mut().append_pair("recursive", "true");
        let mut out = Vec::new();
        loop {
            let (entries, next): (Vec<TreeEntry>, _) = self.get_json(url, Some(repo)).await?;
            out.extend(entries.into_iter().filter(|e| e.kind == "file").map(|e| {
                let (size, sha256) = match e.lfs {
                    Some(l) => (l.size, Some(l.oid)),
                    None => (e.size, None),
                };
                HubFile {
                    path: e.path,
                    size,
                    sha256,
                }
            }));
            match next {
                Some(n) => {
                    url = Url::parse(&n).map_err(|e| HubError::BadAnswer {
                        url: n.clone(),
                        reason: e.to_string(),
                    })?
                }
                None => return Ok(out),
            }
        }
    }

    /// Info and grouped GGUF files.
    pub async fn repo_details(&self, repo: &str) -> Result<RepoDetails, HubError> {
        let info = self.repo(repo).await?;
        let tree = self.tree(repo, &info.sha).await?;
        Ok(RepoDetails {
            files: group(&tree),
            info,
        })
    }

    /// Read a remote GGUF's header with ranged requests (1 MiB, growing to 64 MiB) and
    /// summarise it, without downloading the model. For a split model this is the first
    /// shard; `total_size` (all shards) scales the weights.
    pub async fn remote_summary(
        &self,
        repo: &str,
        rev: &str,
        file: &str,
    ) -> Result<ModelSummary, HubError> {
        let url = self.resolve_url(repo, rev, file)?;
        let mut want: u64 = 1 << 20;
        loop {
            let resp = self
                .get(url.clone())
                .header(header::RANGE, format!("bytes=0-{}", want - 1))
                .timeout(Duration::from_secs(120))
                .send()
                .await
                .map_err(|e| self.unreachable(&e))?;
            let status = resp.status();
            self.check_file_status(status, repo, file)?;
            let total = match status {
                StatusCode::PARTIAL_CONTENT => content_range_total(resp.headers()),
                _ => resp.content_length(),
            };
            // Read at most `want` bytes even if the Range was ignored.
            let mut buf = Vec::new();
            let mut resp = resp;
            while (buf.len() as u64) < want {
                match resp.chunk().await.map_err(|e| self.unreachable(&e))? {
                    Some(c) => buf.extend_from_slice(&c),
                    None => break,
                }
            }
            buf.truncate(want as usize);
            match gguf::parse(&buf) {
                Ok(g) => {
                    let len = total.unwrap_or(buf.len() as u64);
                    return ModelSummary::from_gguf(&g, len).map_err(HubError::Invalid);
                }
                Err(GgufError::Truncated { at })
                    if total.is_none_or(|t| t > buf.len() as u64) && want < 64 << 20 =>
                {
                    want = (want * 4).max(at + (1 << 16)).min(64 << 20);
                }
                Err(source) => {
                    return Err(HubError::Header {
                        file: file.into(),
                        source,
                    });
                }
            }
        }
    }

    /// Map a download response's status to an error (`Ok` for 2xx).
    pub(crate) fn check_file_status(
        &self,
        status: StatusCode,
        repo: &str,
        file: &str,
    ) -> Result<(), HubError> {
        match status {
            s if s.is_success() => Ok(()),
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN if self.token.is_none() => {
                Err(HubError::GatedNoToken {
                    repo: repo.into(),
                    endpoint: self.endpoint.clone(),
                })
            }
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => Err(HubError::GatedDenied {
                repo: repo.into(),
                endpoint: self.endpoint.clone(),
            }),
            StatusCode::NOT_FOUND => Err(HubError::FileNotFound {
                repo: repo.into(),
                file: file.into(),
            }),
            s => Err(HubError::Status {
                status: s.as_u16(),
                url: format!("{}/{repo}/resolve/.../{file}", self.endpoint),
            }),
        }
    }
}

/// `Content-Range: bytes 0-99/1234` → 1234.
pub(crate) fn content_range_total(h: &header::HeaderMap) -> Option<u64> {
    h.get(header::CONTENT_RANGE)?
        .to_str()
        .ok()?
        .rsplit_once('/')?
        .1
        .parse()
        .ok()
}

/// `Content-Range: bytes 100-199/1234` → 100.
pub(crate) fn content_range_start(h: &header::HeaderMap) -> Option<u64> {
    let v = h.get(header::CONTENT_RANGE)?.to_str().ok()?;
    let spec = v.strip_prefix("bytes ")?;
    spec.split_once('-')?.0.trim().parse().ok()
}

fn next_link(h: &header::HeaderMap) -> Option<String> {
    let v = h.get(header::LINK)?.to_str().ok()?;
    v.split(',').find_map(|part| {
        let (url, params) = part.split_once(';')?;
        params.contains("rel=\"next\"").then(|| {
            url.trim()
                .trim_start_matches('<')
                .trim_end_matches('>')
                .to_string()
        })
    })
}
