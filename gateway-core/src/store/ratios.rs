//! Model ratios (New API style), the alternative to absolute prices: a model's prompt
//! tokens cost `model_ratio` × $2 / 1M, completion tokens `completion_ratio` times that.
//! A model that also has an absolute price is billed by the price.

use crate::store::db::{Connection, OptionalExtension, Row, params};

use super::{StoreError, StoreResult, now_secs};

/// A model's ratios in millionths.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelRatio {
    pub model: String,
    pub model_ratio: i64,
    pub completion_ratio: i64,
    pub updated_at: i64,
}

const SELECT: &str =
    "SELECT model, model_ratio_micro, completion_ratio_micro, updated_at FROM model_ratios";

fn from_row(r: &Row<'_>) -> crate::store::db::Result<ModelRatio> {
    Ok(ModelRatio {
        model: r.get(0)?,
        model_ratio: r.get(1)?,
        completion_ratio: r.get(2)?,
        updated_at: r.get(3)?,
    })
}

/// Set a model's ratios.
pub fn set(
    conn: &Connection,
    model: &str,
    model_ratio: i64,
    completion_ratio: i64,
) -> StoreResult<ModelRatio> {
    if model.trim().is_empty() {
        return Err(StoreError::Invalid("model name must not be empty".into()));
    }
    if model_ratio < 0 || completion_ratio < 0 {
        return Err(StoreError::Invalid("ratios must not be negative".into()));
    }
    conn.execute(
        "INSERT INTO model_ratios (model, model_ratio_micro, completion_ratio_micro, updated_at) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT(model) DO UPDATE SET model_ratio_micro = excluded.model_ratio_micro,
           completion_ratio_micro = excluded.completion_ratio_micro, updated_at = excluded.updated_at",
        params![model, model_ratio, completion_ratio, now_secs()],
    )?;
    get(conn, model)?.ok_or_else(|| StoreError::NotFound(model.to_string()))
}

/// One model's ratios.
pub fn get(conn: &Connection, model: &str) -> StoreResult<Option<ModelRatio>> {
    Ok(conn
        .query_row(&format!("{SELECT} WHERE model = ?1"), [model], from_row)
        .optional()?)
}

/// Every model's ratios.
pub fn list(conn: &Connection) -> StoreResult<Vec<ModelRatio>> {
    let mut stmt = conn.prepare(&format!("{SELECT} ORDER BY model"))?;
    let rows = stmt.query_map([], from_row)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Delete a model's ratios; false when it had none.
pub fn delete(conn: &Connection, model: &str) -> StoreResult<bool> {
    Ok(conn.execute("DELETE FROM model_ratios WHERE model = ?1", [model])? > 0)
}
