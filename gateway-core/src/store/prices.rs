//! Model prices per 1M tokens (nano-dollars), with aliases that share another model's price.

use crate::store::db::{Connection, OptionalExtension, TransactionBehavior, params};

use super::{FieldError, StoreError, StoreResult, first_refusal, now_secs};

pub use crate::vocab::Rates;

/// A price row: either own rates, or an alias of another model (rates resolved from it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Price {
    pub model: String,
    pub rates: Rates,
    pub alias_of: Option<String>,
    pub updated_at: i64,
}

fn model_errors(model: &str) -> Vec<FieldError> {
    if model.trim().is_empty() {
        return vec![FieldError::invalid("model", "model name must not be empty")];
    }
    vec![]
}

/// Every field `set` would refuse (a form marks them all; the write reports the first).
pub fn rate_errors(model: &str, rates: &Rates) -> Vec<FieldError> {
    let mut errors = model_errors(model);
    for (field, v) in [
        ("input", Some(rates.input)),
        ("output", Some(rates.output)),
        ("cache_read", rates.cache_read),
        ("cache_write", rates.cache_write),
    ] {
        if v.is_some_and(|v| v < 0) {
            errors.push(FieldError::invalid(field, "prices must not be negative"));
        }
    }
    errors
}

/// Set a model's own rates (replacing an alias if it was one).
pub fn set(conn: &mut Connection, model: &str, rates: Rates) -> StoreResult<Price> {
    first_refusal(rate_errors(model, &rates))?;
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    tx.execute(
        "INSERT INTO prices (model, input_nano, output_nano, cache_read_nano, cache_write_nano, alias_of, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, NULL, ?6)
         ON CONFLICT(model) DO UPDATE SET input_nano=excluded.input_nano, output_nano=excluded.output_nano,
           cache_read_nano=excluded.cache_read_nano, cache_write_nano=excluded.cache_write_nano, alias_of=NULL, updated_at=excluded.updated_at",
        params![model, rates.input, rates.output, rates.cache_read, rates.cache_write, now_secs()],
    )?;
    let price = get_in(&tx, model)?.ok_or_else(|| StoreError::NotFound(model.to_string()))?;
    tx.commit()?;
    Ok(price)
}

/// Every field `set_alias` would refuse, from the prices as they are (a form marks them
/// all; the write reports the first).
pub fn alias_errors(conn: &Connection, model: &str, target: &str) -> StoreResult<Vec<FieldError>> {
    let mut errors = model_errors(model);
    if model == target {
        errors.push(FieldError::invalid(
            "alias_of",
            format!("{model} cannot be an alias of itself"),
        ));
        return Ok(errors);
    }
    let target_alias: Option<Option<String>> = conn
        .query_row(
            "SELECT alias_of FROM prices WHERE model = ?1",
            [target],
            |r| r.get(0),
        )
        .optional()?;
    match target_alias {
        None => errors.push(FieldError::not_found(
            "alias_of",
            format!(
                "no price for {target}: set one first (burncloud price set {target} --input X --output Y)"
            ),
        )),
        Some(Some(root)) => errors.push(FieldError::invalid(
            "alias_of",
            format!("{target} is itself an alias of {root}: alias {model} to {root} instead"),
        )),
        Some(None) => {}
    }
    let dependants = aliases_of(conn, model)?;
    if !dependants.is_empty() {
        errors.push(FieldError::conflict(
            "model",
            format!(
                "{model} has its own aliases ({}); point them elsewhere first",
                dependants.join(", ")
            ),
        ));
    }
    Ok(errors)
}

/// Make `model` share `target`'s price. The target must have its own price.
pub fn set_alias(conn: &mut Connection, model: &str, target: &str) -> StoreResult<Price> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    first_refusal(alias_errors(&tx, model, target)?)?;
    tx.execute(
        "INSERT INTO prices (model, input_nano, output_nano, cache_read_nano, cache_write_nano, alias_of, updated_at)
         VALUES (?1, NULL, NULL, NULL, NULL, ?2, ?3)
         ON CONFLICT(model) DO UPDATE SET input_nano=NULL, output_nano=NULL, cache_read_nano=NULL, cache_write_nano=NULL,
           alias_of=excluded.alias_of, updated_at=excluded.updated_at",
        params![model, target, now_secs()],
    )?;
    let price = get_in(&tx, model)?.ok_or_else(|| StoreError::NotFound(model.to_string()))?;
    tx.commit()?;
    Ok(price)
}

fn aliases_of(conn: &Connection, model: &str) -> StoreResult<Vec<String>> {
    let mut stmt = conn.prepare("SELECT model FROM prices WHERE alias_of = ?1 ORDER BY model")?;
    let rows = stmt.query_map([model], |r| r.get(0))?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Delete a price. Refused while other models alias it, so nothing is left dangling.
pub fn delete(conn: &mut Connection, model: &str) -> StoreResult<()> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let dependants = aliases_of(&tx, model)?;
    if !dependants.is_empty() {
        return Err(StoreError::Conflict(format!(
            "{model} is the price of its aliases {}; delete or re-point them first",
            dependants.join(", ")
        )));
    }
    let n = tx.execute("DELETE FROM prices WHERE model = ?1", [model])?;
    if n == 0 {
        return Err(StoreError::NotFound(format!("no price for {model}")));
    }
    tx.commit()?;
    Ok(())
}

/// Delete everything a model is billed by: its price and its ratios (the price first, so a
/// refused price deletion changes nothing). NotFound when it had neither.
pub fn delete_pricing(conn: &mut Connection, model: &str) -> StoreResult<()> {
    match delete(conn, model) {
        Ok(()) => super::ratios::delete(conn, model).map(|_| ()),
        Err(StoreError::NotFound(m)) => match super::ratios::delete(conn, model)? {
            true => Ok(()),
            false => Err(StoreError::NotFound(m)),
        },
        Err(e) => Err(e),
    }
}

const SELECT: &str = "SELECT p.model, COALESCE(p.input_nano, t.input_nano), COALESCE(p.output_nano, t.output_nano),
    COALESCE(p.cache_read_nano, t.cache_read_nano), COALESCE(p.cache_write_nano, t.cache_write_nano), p.alias_of, p.updated_at
    FROM prices p LEFT JOIN prices t ON t.model = p.alias_of";

fn row(r: &crate::store::db::Row<'_>) -> crate::store::db::Result<Price> {
    Ok(Price {
        model: r.get(0)?,
        rates: Rates {
            input: r.get::<_, Option<i64>>(1)?.unwrap_or(0),
            output: r.get::<_, Option<i64>>(2)?.unwrap_or(0),
            cache_read: r.get(3)?,
            cache_write: r.get(4)?,
        },
        alias_of: r.get(5)?,
        updated_at: r.get(6)?,
    })
}

fn get_in(conn: &Connection, model: &str) -> StoreResult<Option<Price>> {
    Ok(conn
        .query_row(&format!("{SELECT} WHERE p.model = ?1"), [model], row)
        .optional()?)
}

/// One model's price with alias rates resolved.
pub fn get(conn: &Connection, model: &str) -> StoreResult<Option<Price>> {
    get_in(conn, model)
}

/// Every price, by model name, alias rates resolved.
pub fn list(conn: &Connection) -> StoreResult<Vec<Price>> {
    let mut stmt = conn.prepare(&format!("{SELECT} ORDER BY p.model"))?;
    let rows = stmt.query_map([], row)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Store;

    #[test]
    fn aliases_share_and_guard_their_target() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::connect(&crate::store::testing::location(dir.path())).unwrap();
        let r = Rates {
            input: 30_000_000_000,
            output: 60_000_000_000,
            ..Default::default()
        };
        store.with(|c| set(c, "gpt-4", r)).unwrap();
        let a = store
            .with(|c| set_alias(c, "gpt-4-turbo", "gpt-4"))
            .unwrap();
        assert_eq!(a.rates, r);
        assert!(matches!(
            store.with(|c| delete(c, "gpt-4")),
            Err(StoreError::Conflict(_))
        ));
        assert!(matches!(
            store.with(|c| set_alias(c, "x", "gpt-4-turbo")),
            Err(StoreError::Invalid(_))
        ));
        assert!(matches!(
            store.with(|c| set_alias(c, "x", "nope")),
            Err(StoreError::NotFound(_))
        ));
        store.with(|c| delete(c, "gpt-4-turbo")).unwrap();
        store.with(|c| delete(c, "gpt-4")).unwrap();
        assert!(store.with(|c| list(c)).unwrap().is_empty());
    }

    #[test]
    fn every_refused_field_is_found_at_once_and_the_write_reports_the_first() {
        let rates = Rates {
            input: -1,
            output: 5,
            cache_write: Some(-3),
            ..Default::default()
        };
        let named: Vec<&str> = rate_errors(" ", &rates).iter().map(|e| e.field).collect();
        assert_eq!(named, ["model", "input", "cache_write"]);
        let dir = tempfile::tempdir().unwrap();
        let store = Store::connect(&crate::store::testing::location(dir.path())).unwrap();
        match store.with(|c| set(c, " ", rates)) {
            Err(StoreError::Invalid(m)) => assert_eq!(m, "model name must not be empty"),
            other => panic!("{other:?}"),
        }
        let errors = store.with(|c| alias_errors(c, "", "nope")).unwrap();
        let named: Vec<&str> = errors.iter().map(|e| e.field).collect();
        assert_eq!(named, ["model", "alias_of"]);
        assert!(errors[1].message.starts_with("no price for nope"));
    }
}
