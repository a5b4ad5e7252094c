//! The routing snapshot: an immutable copy of channels, abilities, tokens, users and prices
//! that the data plane reads without touching the database. Rebuilt and swapped whole
//! (`ArcSwap`) whenever the control plane, the CLI or another process changes something.

use crate::vocab::status;
use std::collections::{BTreeSet, HashSet};
use std::sync::Arc;

use crate::store::db::Connection;

use crate::Map;
use axum::http::HeaderValue;

use crate::catalog::CatalogEntry;
use crate::channel_types::channel_type;
use crate::store::{
    Store, StoreResult, catalog, channels, governance, groups, prices, ratios, tokens, users,
};
use crate::tariff::{RATIO_ONE, Tariff};
use crate::upstream::openai::OpenAi;
use crate::upstream::{Target, Upstream};
use crate::vocab::Rates;

/// A channel as the relay needs it.
#[derive(Debug)]
pub struct ChannelRt {
    pub id: i64,
    pub name: String,
    /// The provider's upstream (from the channel type table).
    pub upstream: &'static dyn Upstream,
    pub key: String,
    /// `Authorization: Bearer <key>`, prepared once.
    pub auth_header: Option<HeaderValue>,
    pub base_url: String,
    pub model_mapping: Map<String, String>,
    pub locality: String,
    pub rpm_limit: Option<i64>,
}

impl ChannelRt {
    /// The channel as its upstream sees it.
    pub fn target(&self) -> Target<'_> {
        Target {
            id: self.id,
            base_url: &self.base_url,
            key: &self.key,
            bearer: self.auth_header.as_ref(),
        }
    }

    /// The upstream model name for a requested model.
    pub fn upstream_model<'a>(&'a self, model: &'a str) -> &'a str {
        self.model_mapping
            .get(model)
            .map(String::as_str)
            .unwrap_or(model)
    }
}

/// Channels of one priority tier with their weights.
#[derive(Debug, Clone)]
pub struct Tier {
    pub priority: i64,
    pub members: Vec<(i64, i64)>,
}

/// A token as the relay needs it.
#[derive(Debug)]
pub struct TokenRt {
    pub id: i64,
    pub user_id: String,
    pub enabled: bool,
    pub quota_limit_nano: i64,
    pub used_quota_nano: i64,
    pub expired_time: i64,
    pub models: HashSet<String>,
    pub group: String,
    pub allow_ips: Vec<String>,
    pub rpm_limit: Option<i64>,
    pub tpm_limit: Option<i64>,
    pub local_only: bool,
    pub burst_mode: Option<crate::burst::BurstMode>,
}

/// A user as the relay needs it (JWT callers on `/v1`).
#[derive(Debug)]
pub struct UserRt {
    pub id: String,
    pub group: String,
    pub enabled: bool,
    pub admin: bool,
    /// Credit granted (nano-dollars, -1 unlimited) and spent as stored.
    pub quota_nano: i64,
    pub used_quota_nano: i64,
    /// Login tokens issued before this (unix seconds) are refused.
    pub password_changed_at: i64,
}

impl UserRt {
    /// The group this user's requests route and are priced in: their own; through an
    /// admin's token, the token's group (admins may route keys through any group).
    pub fn group_for<'a>(&'a self, token: Option<&'a TokenRt>) -> &'a str {
        match token {
            Some(t) if self.admin => &t.group,
            _ => &self.group,
        }
    }
}

/// Everything the data plane reads.
#[derive(Debug, Default)]
pub struct Snapshot {
    pub rev: i64,
    pub channels: Map<i64, Arc<ChannelRt>>,
    /// group → model → tiers, highest priority first.
    pub routes: Map<String, Map<String, Vec<Tier>>>,
    /// group → models served there.
    pub group_models: Map<String, BTreeSet<String>>,
    /// sha256(key) → token.
    pub tokens: Map<String, Arc<TokenRt>>,
    pub users: Map<String, Arc<UserRt>>,
    /// model → rates, aliases resolved.
    pub prices: Map<String, Rates>,
    /// `local-<id>` → library model id, for deployments started on the first request
    /// (just-in-time) whether or not they run now.
    pub jit_models: std::collections::BTreeMap<String, i64>,
    /// model → (model ratio, completion ratio) in millionths, for models billed by ratio.
    pub ratios: Map<String, (i64, i64)>,
    /// group → price ratio in millionths.
    pub group_ratios: Map<String, i64>,
    /// The price catalog by model name (also without LiteLLM's provider prefix): billed
    /// when the owner set neither a price nor a ratio.
    pub catalog: Map<String, Arc<CatalogEntry>>,
    /// Whether non-admins may use cloud models that have no price (off by default).
    pub allow_unpriced_cloud: bool,
    /// Library models by their `local-<id>` name: their context windows.
    pub local_models: Map<String, LocalModelMeta>,
    /// Other names a model answers to (`local-<slug of the model name>`) → its name.
    pub aliases: Map<String, String>,
    /// The token keyless Ollama requests from this machine use (setting
    /// [`OLLAMA_KEYLESS_TOKEN`], off when unset).
    pub ollama_keyless_token: Option<i64>,
}

/// What the gateway knows about a local model (from the library's GGUF header and its
/// deployment).
#[derive(Debug, Clone)]
pub struct LocalModelMeta {
    /// The context the model was trained for (GGUF header).
    pub trained_context: i64,
    /// The context llama-server runs it with (`model run --ctx`), when set.
    pub served_context: Option<i64>,
}

/// The setting naming the token id keyless Ollama-API requests from loopback use.
pub const OLLAMA_KEYLESS_TOKEN: &str = "ollama_keyless_token_id";

impl Snapshot {
    /// Read the whole routing state in one read transaction.
    pub fn load(conn: &mut Connection) -> StoreResult<Snapshot> {
        let tx = conn.transaction()?;
        let rev = Store::config_rev(&tx)?;
        let mut snap = Snapshot {
            rev,
            ..Default::default()
        };
        for c in channels::list(&tx)? {
            if c.status != status::ENABLED {
                continue;
            }
            let upstream =
                channel_type(c.channel_type).map_or(&OpenAi as &dyn Upstream, |t| t.upstream);
            let auth_header = (!c.key.is_empty())
                .then(|| HeaderValue::from_str(&format!("Bearer {}", c.key)).ok())
                .flatten()
                .map(|mut h| {
                    h.set_sensitive(true);
                    h
                });
            snap.channels.insert(
                c.id,
                Arc::new(ChannelRt {
                    id: c.id,
                    name: c.name,
                    upstream,
                    key: c.key,
                    auth_header,
                    base_url: c.base_url,
                    model_mapping: c.model_mapping.into_iter().collect(),
                    locality: c.locality,
                    rpm_limit: c.rpm_limit,
                }),
            );
        }
        for a in channels::abilities(&tx)? {
            if !a.enabled || !snap.channels.contains_key(&a.channel_id) {
                continue;
            }
            snap.group_models
                .entry(a.group.clone())
                .or_default()
                .insert(a.model.clone());
            let tiers = snap
                .routes
                .entry(a.group)
                .or_default()
                .entry(a.model)
                .or_default();
            match tiers.iter_mut().find(|t| t.priority == a.priority) {
                Some(t) => t.members.push((a.channel_id, a.weight)),
                None => tiers.push(Tier {
                    priority: a.priority,
                    members: vec![(a.channel_id, a.weight)],
                }),
            }
        }
        for tiers in snap.routes.values_mut().flat_map(|m| m.values_mut()) {
            tiers.sort_by_key(|t| std::cmp::Reverse(t.priority));
        }
        for u in users::list(&tx)? {
            snap.users.insert(
                u.id.clone(),
                Arc::new(UserRt {
                    enabled: u.status == status::ENABLED,
                    admin: u.role == users::Role::Admin,
                    quota_nano: u.quota_nano,
                    used_quota_nano: u.used_quota_nano,
                    password_changed_at: u.password_changed_at,
                    id: u.id,
                    group: u.group,
                }),
            );
        }
        for t in tokens::list(&tx, None)? {
            snap.tokens.insert(
                t.key_hash.clone(),
                Arc::new(TokenRt {
                    id: t.id,
                    user_id: t.user_id,
                    enabled: t.status == status::ENABLED,
                    quota_limit_nano: t.quota_limit_nano,
                    used_quota_nano: t.used_quota_nano,
                    expired_time: t.expired_time,
                    models: t.models.into_iter().collect(),
                    group: t.group,
                    allow_ips: t.allow_ips,
                    rpm_limit: t.rpm_limit,
                    tpm_limit: t.tpm_limit,
                    local_only: t.local_only,
                    burst_mode: t
                        .burst_mode
                        .as_deref()
                        .and_then(crate::burst::BurstMode::parse),
                }),
            );
        }
        for p in prices::list(&tx)? {
            snap.prices.insert(p.model, p.rates);
        }
        let mut stmt = tx.prepare("SELECT model_id FROM deployments WHERE jit = 1")?;
        for id in stmt.query_map([], |r| r.get::<_, i64>(0))? {
            let id = id?;
            snap.jit_models.insert(crate::local::channel_name(id), id);
        }
        drop(stmt);
        for r in ratios::list(&tx)? {
            snap.ratios
                .insert(r.model, (r.model_ratio, r.completion_ratio));
        }
        for g in groups::list(&tx)? {
            snap.group_ratios.insert(g.name, g.ratio_micro);
        }
        // Own names first, so a bare name never shadows an entry of that exact name.
        let mut entries = catalog::load(&tx)?;
        entries.sort_by_key(|e| e.model.contains('/'));
        for e in entries {
            let e = Arc::new(e);
            for name in crate::catalog::names(&e.model) {
                snap.catalog
                    .entry(name.to_string())
                    .or_insert_with(|| e.clone());
            }
        }
        snap.allow_unpriced_cloud = governance::load(&tx)?.allow_unpriced_cloud;
        let mut stmt = tx.prepare(
            "SELECT m.id, m.name, m.context_length, d.ctx_size, m.alias FROM models m \
             LEFT JOIN deployments d ON d.model_id = m.id ORDER BY m.id",
        )?;
        let rows = stmt.query_map([], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, i64>(2)?,
                r.get::<_, Option<i64>>(3)?,
                r.get::<_, Option<String>>(4)?,
            ))
        })?;
        for row in rows {
            let (id, name, trained, served, alias) = row?;
            let canonical = crate::local::channel_name(id);
            // The owner's alias wins over any model's readable name.
            if let Some(alias) = alias {
                snap.aliases.insert(alias, canonical.clone());
            }
            if let Some(alias) = crate::local::readable_name(&name) {
                snap.aliases
                    .entry(alias)
                    .or_insert_with(|| canonical.clone());
            }
            snap.local_models.insert(
                canonical,
                LocalModelMeta {
                    trained_context: trained,
                    served_context: served.filter(|c| *c > 0),
                },
            );
        }
        drop(stmt);
        snap.ollama_keyless_token = crate::store::settings::get(&tx, OLLAMA_KEYLESS_TOKEN)?
            .and_then(|v| v.trim().parse().ok());
        Ok(snap)
    }

    /// How `model` is billed: its absolute price (aliases resolved) if it has one, else its
    /// ratios, else None (unpriced).
    pub fn tariff(&self, model: &str) -> Option<Tariff> {
        if let Some(r) = self.prices.get(model) {
            return Some(Tariff::from_rates(r));
        }
        if let Some(&(m, c)) = self.ratios.get(model) {
            return Some(Tariff::from_ratios(m, c));
        }
        self.catalog
            .get(model)
            .map(|e| Tariff::from_rates(&e.rates))
    }

    /// The price ratio of `group` (1.0 for a group without a row).
    pub fn group_ratio(&self, group: &str) -> i64 {
        self.group_ratios.get(group).copied().unwrap_or(RATIO_ONE)
    }

    /// Tiers of channels serving `model` for `group`.
    pub fn tiers(&self, group: &str, model: &str) -> Option<&[Tier]> {
        self.routes.get(group)?.get(model).map(Vec::as_slice)
    }

    /// The name a requested model goes by (`local-<slug>` → `local-<id>`).
    pub fn resolve<'a>(&'a self, model: &'a str) -> &'a str {
        self.aliases.get(model).map(String::as_str).unwrap_or(model)
    }

    /// The context window (tokens) and the longest answer of `model`, where known: for a
    /// local model the context llama-server serves (else the GGUF header's); output is
    /// bounded by the context. Cloud models: from the price catalog.
    pub fn model_limits(&self, model: &str) -> (Option<i64>, Option<i64>) {
        match self.local_models.get(self.resolve(model)) {
            Some(m) => {
                let ctx = m.served_context.unwrap_or(m.trained_context);
                (Some(ctx).filter(|c| *c > 0), Some(ctx).filter(|c| *c > 0))
            }
            // Cloud models: the price catalog's context window and output cap.
            None => self
                .catalog
                .get(model)
                .map_or((None, None), |e| (e.context_length, e.max_output_tokens)),
        }
    }

    /// The models served to `group` (or started just in time) that `allowed` lets
    /// through, with the readable names of local ones, sorted: what `/v1/models` lists.
    pub fn models_for(&self, group: &str, allowed: impl Fn(&str) -> bool) -> Vec<String> {
        let mut names: BTreeSet<String> = self
            .group_models
            .get(group)
            .into_iter()
            .flatten()
            .chain(self.jit_models.keys())
            .filter(|m| allowed(m))
            .cloned()
            .collect();
        for (alias, canonical) in &self.aliases {
            if names.contains(canonical) {
                names.insert(alias.clone());
            }
        }
        names.into_iter().collect()
    }

    /// The group a token's requests are routed in: an admin's keys pick their own group, a
    /// user's keys follow the user (a user moved to another group takes them along).
    /// None: the key cannot be used (disabled, expired, its owner unknown or disabled).
    pub fn token_group<'a>(&'a self, token: &'a TokenRt) -> Option<&'a str> {
        if !token.enabled
            || (token.expired_time > 0 && token.expired_time <= crate::vocab::now_secs())
        {
            return None;
        }
        let user = self.users.get(&token.user_id).filter(|u| u.enabled)?;
        Some(user.group_for(Some(token)))
    }

    /// Whether any group serves `model`.
    pub fn model_exists(&self, model: &str) -> bool {
        self.group_models.values().any(|m| m.contains(model))
    }
}
