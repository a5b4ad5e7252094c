//! `burncloud price ...`: the seed's pricing CLI, on the same database as the gateway
//! (a running gateway picks changes up within a second through `config_rev`).

use std::process::ExitCode;

use gateway_core::Config;
use gateway_core::money::{format_usd, parse_usd};
use gateway_core::store::Store;
use gateway_core::store::prices::{self, Price, Rates};

use crate::cli::{PriceCommand, PriceSet};

fn describe(p: &Price) -> String {
    let mut s = format!(
        "input ${} / 1M tokens, output ${} / 1M tokens",
        format_usd(p.rates.input),
        format_usd(p.rates.output)
    );
    if let Some(c) = p.rates.cache_read {
        s.push_str(&format!(", cache read ${} / 1M tokens", format_usd(c)));
    }
    if let Some(c) = p.rates.cache_write {
        s.push_str(&format!(", cache write ${} / 1M tokens", format_usd(c)));
    }
    s
}

fn usd(flag: &str, v: &str) -> Result<i64, String> {
    parse_usd(v).map_err(|e| format!("--{flag}: {e}"))
}

/// Run a price command; prints results on stdout, errors on stderr.
pub fn run(config: &Config, cmd: PriceCommand) -> ExitCode {
    match execute(config, cmd) {
        Ok(out) => {
            println!("{out}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn execute(config: &Config, cmd: PriceCommand) -> Result<String, String> {
    let store = Store::open(&config.database_path).map_err(|e| e.to_string())?;
    match cmd {
        PriceCommand::List => {
            let list = store.with(|c| prices::list(c)).map_err(|e| e.to_string())?;
            if list.is_empty() {
                return Ok(
                    "No prices set. Add one with: burncloud price set MODEL --input X --output Y"
                        .into(),
                );
            }
            let width = list.iter().map(|p| p.model.len()).max().unwrap_or(5).max(5);
            let mut out = format!(
                "{:<width$}  {:>12}  {:>12}  ALIAS OF",
                "MODEL", "INPUT/1M", "OUTPUT/1M"
            );
            for p in &list {
                out.push_str(&format!(
                    "\n{:<width$}  {:>12}  {:>12}  {}",
                    p.model,
                    format!("${}", format_usd(p.rates.input)),
                    format!("${}", format_usd(p.rates.output)),
                    p.alias_of.as_deref().unwrap_or("-")
                ));
            }
            Ok(out)
        }
        PriceCommand::Set(PriceSet {
            model,
            input,
            output,
            cache_read,
            cache_write,
            alias,
        }) => {
            if let Some(target) = alias {
                let p = store
                    .with(|c| prices::set_alias(c, &model, &target))
                    .map_err(|e| e.to_string())?;
                return Ok(format!(
                    "Set {model} as an alias of {target} ({})",
                    describe(&p)
                ));
            }
            let rates = Rates {
                input: usd("input", input.as_deref().unwrap_or_default())?,
                output: usd("output", output.as_deref().unwrap_or_default())?,
                cache_read: cache_read
                    .as_deref()
                    .map(|v| usd("cache-read", v))
                    .transpose()?,
                cache_write: cache_write
                    .as_deref()
                    .map(|v| usd("cache-write", v))
                    .transpose()?,
            };
            let p = store
                .with(|c| prices::set(c, &model, rates))
                .map_err(|e| e.to_string())?;
            Ok(format!("Set {model}: {}", describe(&p)))
        }
        PriceCommand::Get { model } => {
            let p = store
                .with(|c| prices::get(c, &model))
                .map_err(|e| e.to_string())?
                .ok_or_else(|| format!("no price for {model} (set one with: burncloud price set {model} --input X --output Y)"))?;
            Ok(match &p.alias_of {
                Some(t) => format!("{model} (alias of {t}): {}", describe(&p)),
                None => format!("{model}: {}", describe(&p)),
            })
        }
        PriceCommand::Delete { model } => {
            store
                .with(|c| prices::delete(c, &model))
                .map_err(|e| e.to_string())?;
            Ok(format!("Deleted the price of {model}"))
        }
    }
}
