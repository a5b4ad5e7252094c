//! Channels (upstreams) and the abilities table derived from them.

use crate::vocab::status;
use std::collections::BTreeMap;

use crate::store::db::{
    Connection, OptionalExtension, Row, Transaction, TransactionBehavior, params,
};

use super::sealed;
use super::{FieldError, StoreError, StoreResult, first_refusal, now_secs, split_list};
use crate::channel_types::{channel_type, normalize_base_url};

/// A channel as stored, key included. Never serialise this to a client: use `crate::http` views.
#[derive(Debug, Clone)]
pub struct Channel {
    pub id: i64,
    pub name: String,
    pub channel_type: i64,
    pub key: String,
    pub base_url: String,
    pub models: Vec<String>,
    pub groups: Vec<String>,
    pub weight: i64,
    pub priority: i64,
    pub model_mapping: BTreeMap<String, String>,
    pub status: i64,
    pub locality: String,
    pub disabled_reason: Option<String>,
    /// Requests per minute this channel may receive (None: no cap).
    pub rpm_limit: Option<i64>,
    pub created_at: i64,
    pub updated_at: i64,
}

impl Channel {
    /// The key with all but a few characters hidden.
    pub fn masked_key(&self) -> String {
        mask_secret(&self.key)
    }
}

/// Hide a secret: keep a short prefix and suffix only when the secret is long enough.
pub fn mask_secret(secret: &str) -> String {
    let chars: Vec<char> = secret.chars().collect();
    if chars.len() < 12 {
        return "****".to_string();
    }
    let head: String = chars[..3].iter().collect();
    let tail: String = chars[chars.len() - 4..].iter().collect();
    format!("{head}...{tail}")
}

/// Fields of a channel change; `None` keeps the current value (all required on create).
#[derive(Debug, Clone, Default)]
pub struct ChannelFields {
    pub name: Option<String>,
    pub channel_type: Option<i64>,
    pub key: Option<String>,
    pub base_url: Option<String>,
    pub models: Option<String>,
    pub group: Option<String>,
    pub weight: Option<i64>,
    pub priority: Option<i64>,
    pub model_mapping: Option<BTreeMap<String, String>>,
    pub status: Option<i64>,
    pub locality: Option<String>,
    pub rpm_limit: Option<Option<i64>>,
}

const COLS: &str = "id, name, type, key, base_url, models, \"group\", weight, priority, model_mapping, status, locality, disabled_reason, created_at, updated_at, rpm_limit";

fn from_row(r: &Row<'_>) -> crate::store::db::Result<Channel> {
    let mapping: Option<String> = r.get(9)?;
    Ok(Channel {
        id: r.get(0)?,
        name: r.get(1)?,
        channel_type: r.get(2)?,
        key: r.get(3)?,
        base_url: r.get(4)?,
        models: split_list(&r.get::<_, String>(5)?),
        groups: split_list(&r.get::<_, String>(6)?),
        weight: r.get(7)?,
        priority: r.get(8)?,
        model_mapping: mapping
            .and_then(|m| serde_json::from_str(&m).ok())
            .unwrap_or_default(),
        status: r.get(10)?,
        locality: r.get(11)?,
        disabled_reason: r.get(12)?,
        created_at: r.get(13)?,
        updated_at: r.get(14)?,
        rpm_limit: r.get(15)?,
    })
}

fn invalid(msg: impl Into<String>) -> StoreError {
    StoreError::Invalid(msg.into())
}

/// Check a complete channel and fill defaults (base URL, locality): every refused field,
/// in the order the API reports them (it reports the first).
fn check(c: &mut Channel) -> Vec<FieldError> {
    let mut errors = Vec::new();
    let mut refuse = |field, message: String| errors.push(FieldError::invalid(field, message));
    c.name = c.name.trim().to_string();
    if c.name.is_empty() {
        refuse("name", "name must not be empty".into());
    }
    let ty = channel_type(c.channel_type);
    if ty.is_none() {
        refuse(
            "type",
            format!(
                "type {} is not a supported channel type (see GET /console/api/channel/types)",
                c.channel_type
            ),
        );
    }
    c.base_url = normalize_base_url(&c.base_url);
    if let Some(ty) = ty {
        if c.key.trim().is_empty() && c.locality != "local" && !ty.local_by_default {
            refuse("key", "key must not be empty".into());
        } else if let Err(e) = ty.upstream.check_key(&c.key, &mut c.base_url) {
            // The provider's own rule (Bedrock's key carries the region, which gives the
            // endpoint unless one is set; Vertex's is a service-account JSON).
            refuse("key", e);
        }
        if c.base_url.is_empty() {
            match ty.default_base_url {
                Some(url) => c.base_url = url.to_string(),
                None => refuse(
                    "base_url",
                    format!("base_url is required for type {} ({})", ty.id, ty.name),
                ),
            }
        }
    }
    let web = c.base_url.starts_with("http://") || c.base_url.starts_with("https://");
    if !c.base_url.is_empty() && !web {
        refuse(
            "base_url",
            "base_url must start with http:// or https://".into(),
        );
    }
    if c.models.is_empty() {
        refuse(
            "models",
            "models must list at least one model (comma separated)".into(),
        );
    }
    if c.groups.is_empty() {
        c.groups = vec!["default".to_string()];
    }
    if c.weight < 0 {
        refuse("weight", "weight must be 0 or more".into());
    }
    if c.status != status::ENABLED && c.status != status::DISABLED {
        refuse(
            "status",
            "status must be 1 (enabled) or 2 (disabled)".into(),
        );
    }
    if c.rpm_limit.is_some_and(|r| r < 1) {
        refuse("rpm_limit", "rpm_limit must be 1 or more, or null".into());
    }
    if c.locality != "local" && c.locality != "cloud" {
        refuse("locality", "locality must be \"local\" or \"cloud\"".into());
    }
    errors
}

/// Check a complete channel and fill defaults; the first refusal is the error.
fn validate(c: &mut Channel) -> StoreResult<()> {
    first_refusal(check(c))
}

/// Every field `create` (`id` None) or `update` would refuse in `fields`, without writing.
/// Forms use it to mark all refused fields at once; the writes report the first.
pub fn field_errors(
    conn: &Connection,
    id: Option<i64>,
    fields: ChannelFields,
) -> StoreResult<Vec<FieldError>> {
    let mut c = match id {
        None => match fields.channel_type {
            Some(ty) => new_channel(ty),
            None => return Ok(vec![FieldError::invalid("type", "type is required")]),
        },
        Some(id) => {
            get(conn, id)?.ok_or_else(|| StoreError::NotFound(format!("channel {id} not found")))?
        }
    };
    apply(&mut c, fields);
    Ok(check(&mut c))
}

/// A channel of type `ty` with the defaults of a new one.
/// A channel of type `ty` that is not saved (to ask its provider something before it is).
pub fn draft(ty: i64, key: &str, base_url: &str) -> Channel {
    let mut c = new_channel(ty);
    c.key = key.trim().to_string();
    c.base_url = base_url.trim().to_string();
    c
}

fn new_channel(ty: i64) -> Channel {
    Channel {
        id: 0,
        name: String::new(),
        channel_type: ty,
        key: String::new(),
        base_url: String::new(),
        models: vec![],
        groups: vec![],
        weight: 1,
        priority: 0,
        model_mapping: BTreeMap::new(),
        status: status::ENABLED,
        locality: if channel_type(ty).is_some_and(|t| t.local_by_default) {
            "local".into()
        } else {
            "cloud".into()
        },
        disabled_reason: None,
        rpm_limit: None,
        created_at: now_secs(),
        updated_at: now_secs(),
    }
}

fn apply(c: &mut Channel, f: ChannelFields) {
    if let Some(v) = f.name {
        c.name = v;
    }
    if let Some(v) = f.channel_type {
        c.channel_type = v;
    }
    // An empty key, or the masked key the API showed, keeps the stored key.
    if let Some(v) = f.key.filter(|k| !k.trim().is_empty()) {
        let v = v.trim();
        if v != mask_secret(&c.key) && v != "****" {
            c.key = v.to_string();
        }
    }
    if let Some(v) = f.base_url {
        c.base_url = v;
    }
    if let Some(v) = f.models {
        c.models = split_list(&v);
    }
    if let Some(v) = f.group {
        c.groups = split_list(&v);
    }
    if let Some(v) = f.weight {
        c.weight = v;
    }
    if let Some(v) = f.priority {
        c.priority = v;
    }
    if let Some(v) = f.model_mapping {
        c.model_mapping = v;
    }
    if let Some(v) = f.status {
        c.status = v;
    }
    if let Some(v) = f.locality {
        c.locality = v;
    }
    if let Some(v) = f.rpm_limit {
        c.rpm_limit = v;
    }
}

fn write_abilities(tx: &Transaction<'_>, c: &Channel) -> StoreResult<()> {
    tx.execute("DELETE FROM abilities WHERE channel_id = ?1", [c.id])?;
    let mut stmt = tx.prepare(
        "INSERT INTO abilities (\"group\", model, channel_id, enabled, priority, weight) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?;
    for g in &c.groups {
        for m in &c.models {
            stmt.execute(params![
                g,
                m,
                c.id,
                c.status == status::ENABLED,
                c.priority,
                c.weight
            ])?;
        }
    }
    Ok(())
}

fn mapping_json(c: &Channel) -> Option<String> {
    (!c.model_mapping.is_empty())
        .then(|| serde_json::to_string(&c.model_mapping).unwrap_or_default())
}

/// Create a channel and its abilities in one transaction.
pub fn create(conn: &mut Connection, fields: ChannelFields) -> StoreResult<Channel> {
    let ty = fields
        .channel_type
        .ok_or_else(|| invalid("type is required"))?;
    let mut c = new_channel(ty);
    apply(&mut c, fields);
    validate(&mut c)?;
    let sealed = sealed::for_conn(conn)?.seal(&c.key);
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    tx.execute(
        "INSERT INTO channels (name, type, key, base_url, models, \"group\", weight, priority, model_mapping, status, locality, created_at, updated_at, rpm_limit)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)",
        params![
            c.name, c.channel_type, sealed, c.base_url, c.models.join(","), c.groups.join(","),
            c.weight, c.priority, mapping_json(&c), c.status, c.locality, c.created_at, c.updated_at, c.rpm_limit
        ],
    )?;
    c.id = tx.last_insert_rowid();
    write_abilities(&tx, &c)?;
    tx.commit()?;
    Ok(c)
}

/// Change a channel; fields left `None` keep their values, an empty key keeps the old key.
pub fn update(conn: &mut Connection, id: i64, fields: ChannelFields) -> StoreResult<Channel> {
    let sealer = sealed::for_conn(conn)?;
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let mut c = tx
        .query_row(
            &format!("SELECT {COLS} FROM channels WHERE id = ?1"),
            [id],
            from_row,
        )
        .optional()?
        .ok_or_else(|| StoreError::NotFound(format!("channel {id} not found")))?;
    c.key = unseal(&sealer, c.id, &c.key);
    let re_enabled = fields.status == Some(1);
    apply(&mut c, fields);
    validate(&mut c)?;
    if re_enabled {
        c.disabled_reason = None;
    }
    c.updated_at = now_secs();
    tx.execute(
        "UPDATE channels SET name=?1, type=?2, key=?3, base_url=?4, models=?5, \"group\"=?6, weight=?7, priority=?8,
         model_mapping=?9, status=?10, locality=?11, disabled_reason=?12, updated_at=?13, rpm_limit=?14 WHERE id=?15",
        params![
            c.name, c.channel_type, sealer.seal(&c.key), c.base_url, c.models.join(","), c.groups.join(","),
            c.weight, c.priority, mapping_json(&c), c.status, c.locality, c.disabled_reason, c.updated_at, c.rpm_limit, c.id
        ],
    )?;
    write_abilities(&tx, &c)?;
    tx.commit()?;
    Ok(c)
}

/// Disable (status 2) or enable a channel, recording why (used by automatic disabling).
pub fn set_status(
    conn: &mut Connection,
    id: i64,
    status: i64,
    reason: Option<&str>,
) -> StoreResult<()> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let n = tx.execute(
        "UPDATE channels SET status = ?1, disabled_reason = ?2, updated_at = ?3 WHERE id = ?4",
        params![status, reason, now_secs(), id],
    )?;
    if n == 0 {
        return Err(StoreError::NotFound(format!("channel {id} not found")));
    }
    tx.execute(
        "UPDATE abilities SET enabled = ?1 WHERE channel_id = ?2",
        params![status == status::ENABLED, id],
    )?;
    tx.commit()?;
    Ok(())
}

/// Delete a channel (its abilities go with it).
pub fn delete(conn: &mut Connection, id: i64) -> StoreResult<()> {
    let n = conn.execute("DELETE FROM channels WHERE id = ?1", [id])?;
    if n == 0 {
        return Err(StoreError::NotFound(format!("channel {id} not found")));
    }
    Ok(())
}

/// One channel.
pub fn get(conn: &Connection, id: i64) -> StoreResult<Option<Channel>> {
    let sealer = sealed::for_conn(conn)?;
    Ok(conn
        .query_row(
            &format!("SELECT {COLS} FROM channels WHERE id = ?1"),
            [id],
            from_row,
        )
        .optional()?
        .map(|mut c| {
            c.key = unseal(&sealer, c.id, &c.key);
            c
        }))
}

/// Every channel by id.
pub fn list(conn: &Connection) -> StoreResult<Vec<Channel>> {
    let sealer = sealed::for_conn(conn)?;
    let mut stmt = conn.prepare(&format!("SELECT {COLS} FROM channels ORDER BY id"))?;
    let rows = stmt.query_map([], from_row)?;
    let mut list: Vec<Channel> = rows.collect::<Result<_, _>>()?;
    for c in &mut list {
        c.key = unseal(&sealer, c.id, &c.key);
    }
    Ok(list)
}

/// The plain key; empty (with an error in the log) when it was sealed under another key
/// file: the channel then fails its requests until its key is entered again.
fn unseal(sealer: &sealed::Sealer, id: i64, stored: &str) -> String {
    sealer.open(stored).unwrap_or_else(|| {
        tracing::error!(
            channel = id,
            "the provider key of this channel cannot be decrypted (provider-keys.key is missing or from another install): enter the key again"
        );
        String::new()
    })
}

/// An ability row: which channel serves which model for which group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ability {
    pub group: String,
    pub model: String,
    pub channel_id: i64,
    pub enabled: bool,
    pub priority: i64,
    pub weight: i64,
}

/// Every ability.
pub fn abilities(conn: &Connection) -> StoreResult<Vec<Ability>> {
    let mut stmt = conn.prepare(
        "SELECT \"group\", model, channel_id, enabled, priority, weight FROM abilities ORDER BY \"group\", model, priority DESC, channel_id",
    )?;
    let rows = stmt.query_map([], |r| {
        Ok(Ability {
            group: r.get(0)?,
            model: r.get(1)?,
            channel_id: r.get(2)?,
            enabled: r.get(3)?,
            priority: r.get(4)?,
            weight: r.get(5)?,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Store;

    fn fields() -> ChannelFields {
        ChannelFields {
            name: Some("a".into()),
            channel_type: Some(1),
            key: Some("sk-upstream-key-123456".into()),
            models: Some("m1, m2".into()),
            group: Some("default,vip".into()),
            ..Default::default()
        }
    }

    #[test]
    fn abilities_follow_models_times_groups() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::connect(&crate::store::testing::location(dir.path())).unwrap();
        let c = store.with(|c| create(c, fields())).unwrap();
        assert_eq!(c.base_url, "https://api.openai.com");
        assert_eq!(store.with(|c| abilities(c)).unwrap().len(), 4);
        store
            .with(|conn| {
                update(
                    conn,
                    c.id,
                    ChannelFields {
                        models: Some("m3".into()),
                        ..Default::default()
                    },
                )
            })
            .unwrap();
        let ab = store.with(|c| abilities(c)).unwrap();
        assert_eq!(ab.len(), 2);
        assert!(ab.iter().all(|a| a.model == "m3"));
        store.with(|conn| delete(conn, c.id)).unwrap();
        assert!(store.with(|c| abilities(c)).unwrap().is_empty());
    }

    #[test]
    fn invalid_channels_write_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::connect(&crate::store::testing::location(dir.path())).unwrap();
        let mut f = fields();
        f.models = Some(" , ".into());
        assert!(matches!(
            store.with(|c| create(c, f)),
            Err(StoreError::Invalid(_))
        ));
        let mut f = fields();
        f.channel_type = Some(999);
        assert!(matches!(
            store.with(|c| create(c, f)),
            Err(StoreError::Invalid(_))
        ));
        assert!(store.with(|c| list(c)).unwrap().is_empty());
    }

    #[test]
    fn every_refused_field_is_found_at_once_and_the_write_reports_the_first() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::connect(&crate::store::testing::location(dir.path())).unwrap();
        let bad = ChannelFields {
            name: Some("  ".into()),
            key: Some(String::new()),
            base_url: Some("ftp://x".into()),
            models: Some(String::new()),
            weight: Some(-2),
            ..fields()
        };
        let errors = store.with(|c| field_errors(c, None, bad.clone())).unwrap();
        let named: Vec<&str> = errors.iter().map(|e| e.field).collect();
        assert_eq!(named, ["name", "key", "base_url", "models", "weight"]);
        assert_eq!(
            errors[3].message,
            "models must list at least one model (comma separated)"
        );
        match store.with(|c| create(c, bad)) {
            Err(StoreError::Invalid(m)) => assert_eq!(m, "name must not be empty"),
            other => panic!("{other:?}"),
        }
        assert!(
            store
                .with(|c| field_errors(c, None, fields()))
                .unwrap()
                .is_empty()
        );
        let no_type = ChannelFields {
            channel_type: None,
            ..fields()
        };
        assert_eq!(
            store.with(|c| field_errors(c, None, no_type)).unwrap()[0].field,
            "type"
        );
        // An edit is checked against the stored channel: an empty key keeps it.
        let c = store.with(|c| create(c, fields())).unwrap();
        let edit = ChannelFields {
            key: Some(String::new()),
            weight: Some(-1),
            ..Default::default()
        };
        let errors = store
            .with(|conn| field_errors(conn, Some(c.id), edit))
            .unwrap();
        assert_eq!(
            errors,
            [FieldError::invalid("weight", "weight must be 0 or more")]
        );
        assert!(matches!(
            store.with(|conn| field_errors(conn, Some(c.id + 1), ChannelFields::default())),
            Err(StoreError::NotFound(_))
        ));
    }

    #[test]
    fn masking_hides_the_middle() {
        assert_eq!(mask_secret("sk-abcdefghijklmnop"), "sk-...mnop");
        assert_eq!(mask_secret("short"), "****");
    }
}
