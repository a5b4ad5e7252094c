//! The stored price catalog (table `price_catalog`): the shipped catalog on first start
//! (and when a newer build ships a newer one), entries from `burncloud price sync` on top.

use crate::store::db::{Connection, TransactionBehavior, params};
use serde_json::json;

use super::prices::Rates;
use super::{StoreResult, now_secs, settings};
use crate::catalog::{self, Catalog, CatalogEntry};

/// Settings key: `{"source": "...", "synced": bool}` of what is stored.
const CATALOG_KEY: &str = "price_catalog";

/// Store the shipped catalog unless it is already there or the owner synced one.
pub fn ensure_shipped(conn: &mut Connection) -> StoreResult<()> {
    let shipped = catalog::shipped();
    let current = settings::get(conn, CATALOG_KEY)?
        .and_then(|s| serde_json::from_str::<serde_json::Value>(&s).ok());
    let synced = current
        .as_ref()
        .and_then(|v| v["synced"].as_bool())
        .unwrap_or(false);
    let same = current
        .as_ref()
        .and_then(|v| v["source"].as_str())
        .is_some_and(|s| s == shipped.source);
    if synced || same {
        return Ok(());
    }
    store(conn, &shipped, false)?;
    Ok(())
}

/// Add or update every entry of `catalog` (a sync keeps entries it does not mention).
pub fn store(conn: &mut Connection, catalog: &Catalog, synced: bool) -> StoreResult<usize> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    if !synced {
        tx.execute("DELETE FROM price_catalog", [])?;
    }
    {
        let mut stmt = tx.prepare(
            "INSERT INTO price_catalog (model, provider, mode, input_nano, output_nano, cache_read_nano, cache_write_nano, context_length, max_output_tokens, source, updated_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)
             ON CONFLICT(model) DO UPDATE SET provider=excluded.provider, mode=excluded.mode,
               input_nano=excluded.input_nano, output_nano=excluded.output_nano,
               cache_read_nano=excluded.cache_read_nano, cache_write_nano=excluded.cache_write_nano,
               context_length=excluded.context_length, max_output_tokens=excluded.max_output_tokens,
               source=excluded.source, updated_at=excluded.updated_at",
        )?;
        let now = now_secs();
        for e in &catalog.entries {
            stmt.execute(params![
                e.model,
                e.provider,
                e.mode,
                e.rates.input,
                e.rates.output,
                e.rates.cache_read,
                e.rates.cache_write,
                e.context_length,
                e.max_output_tokens,
                catalog.source,
                now
            ])?;
        }
    }
    settings::set(
        &tx,
        CATALOG_KEY,
        &json!({"source": catalog.source, "synced": synced}).to_string(),
    )?;
    tx.commit()?;
    Ok(catalog.entries.len())
}

/// Every stored entry.
pub fn load(conn: &Connection) -> StoreResult<Vec<CatalogEntry>> {
    let mut stmt = conn.prepare(
        "SELECT model, provider, mode, input_nano, output_nano, cache_read_nano, cache_write_nano, context_length, max_output_tokens FROM price_catalog",
    )?;
    let rows = stmt.query_map([], |r| {
        Ok(CatalogEntry {
            model: r.get(0)?,
            provider: r.get(1)?,
            mode: r.get(2)?,
            rates: Rates {
                input: r.get(3)?,
                output: r.get(4)?,
                cache_read: r.get(5)?,
                cache_write: r.get(6)?,
            },
            context_length: r.get(7)?,
            max_output_tokens: r.get(8)?,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Where the stored catalog came from, and whether the owner synced it.
pub fn source(conn: &Connection) -> StoreResult<Option<(String, bool)>> {
    Ok(settings::get(conn, CATALOG_KEY)?
        .and_then(|s| serde_json::from_str::<serde_json::Value>(&s).ok())
        .and_then(|v| Some((v["source"].as_str()?.to_string(), v["synced"].as_bool()?))))
}
