//! `burncloud price ...`: the seed's pricing CLI, on the same database as the gateway
//! (a running gateway picks changes up within a second through `config_rev`).

use std::process::ExitCode;

use gateway_core::Config;
use gateway_core::money::{format_usd, parse_usd};
use gateway_core::store::Store;
use gateway_core::store::prices::{self, Price, Rates};
use gateway_core::store::ratios::{self, ModelRatio};
use gateway_core::tariff::{RATIO_ONE, Tariff, format_ratio, parse_ratio};

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

/// What a model's ratios come to per 1M prompt (or completion) tokens.
fn per_million(r: &ModelRatio, completion: bool) -> i64 {
    Tariff::from_ratios(r.model_ratio, r.completion_ratio).per_million(completion)
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
    let store = Store::connect(&config.database).map_err(|e| e.to_string())?;
    match cmd {
        PriceCommand::List => {
            let list = store.with(|c| prices::list(c)).map_err(|e| e.to_string())?;
            let ratio_list = store.with(|c| ratios::list(c)).map_err(|e| e.to_string())?;
            // Models billed by ratio (those without an absolute price).
            let by_ratio: Vec<&ModelRatio> = ratio_list
                .iter()
                .filter(|r| !list.iter().any(|p| p.model == r.model))
                .collect();
            if list.is_empty() && by_ratio.is_empty() {
                return Ok(
                    "No prices set. Add one with: burncloud price set MODEL --input X --output Y"
                        .into(),
                );
            }
            let width = list
                .iter()
                .map(|p| p.model.len())
                .chain(by_ratio.iter().map(|r| r.model.len()))
                .max()
                .unwrap_or(5)
                .max(5);
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
            for r in by_ratio {
                out.push_str(&format!(
                    "\n{:<width$}  {:>12}  {:>12}  - (model ratio {}, completion ratio {})",
                    r.model,
                    format!("${}", format_usd(per_million(r, false))),
                    format!("${}", format_usd(per_million(r, true))),
                    format_ratio(r.model_ratio),
                    format_ratio(r.completion_ratio),
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
            model_ratio,
            completion_ratio,
        }) => {
            if let Some(mr) = model_ratio {
                let ratio =
                    |flag: &str, v: &str| parse_ratio(v).map_err(|e| format!("--{flag}: {e}"));
                let mr = ratio("model-ratio", &mr)?;
                let cr = completion_ratio
                    .as_deref()
                    .map(|v| ratio("completion-ratio", v))
                    .transpose()?
                    .unwrap_or(RATIO_ONE);
                let r = store
                    .with(|c| ratios::set(c, &model, mr, cr))
                    .map_err(|e| e.to_string())?;
                let mut out = format!(
                    "Set {model}: model ratio {}, completion ratio {} (input ${} / 1M tokens, output ${} / 1M tokens)",
                    format_ratio(r.model_ratio),
                    format_ratio(r.completion_ratio),
                    format_usd(per_million(&r, false)),
                    format_usd(per_million(&r, true)),
                );
                if store
                    .with(|c| prices::get(c, &model))
                    .map_err(|e| e.to_string())?
                    .is_some()
                {
                    out.push_str(&format!(
                        "\nNote: {model} also has an absolute price, which wins over ratios (burncloud price delete {model} removes both)"
                    ));
                }
                return Ok(out);
            }
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
            let ratio = store
                .with(|c| ratios::get(c, &model))
                .map_err(|e| e.to_string())?;
            let price = store
                .with(|c| prices::get(c, &model))
                .map_err(|e| e.to_string())?;
            if let (None, Some(r)) = (&price, &ratio) {
                return Ok(format!(
                    "{model}: model ratio {}, completion ratio {} (input ${} / 1M tokens, output ${} / 1M tokens)",
                    format_ratio(r.model_ratio),
                    format_ratio(r.completion_ratio),
                    format_usd(per_million(r, false)),
                    format_usd(per_million(r, true)),
                ));
            }
            let Some(p) = price else {
                let catalog = store
                    .with(|c| {
                        let snap = gateway_core::store::catalog::load(c)?;
                        Ok(snap
                            .into_iter()
                            .find(|e| gateway_core::catalog::names(&e.model).any(|n| n == model)))
                    })
                    .map_err(|e| e.to_string())?;
                return Err(match catalog {
                    Some(e) => format!(
                        "no price for {model} set here; the price catalog bills it at input ${} / 1M tokens, output ${} / 1M tokens (override with: burncloud price set {model} --input X --output Y)",
                        format_usd(e.rates.input),
                        format_usd(e.rates.output)
                    ),
                    None => format!(
                        "no price for {model} (set one with: burncloud price set {model} --input X --output Y)"
                    ),
                });
            };
            Ok(match &p.alias_of {
                Some(t) => format!("{model} (alias of {t}): {}", describe(&p)),
                None => format!("{model}: {}", describe(&p)),
            })
        }
        PriceCommand::Sync { source } => sync(&store, source),
        PriceCommand::Delete { model } => {
            store
                .with(|c| prices::delete_pricing(c, &model))
                .map_err(|e| e.to_string())?;
            Ok(format!("Deleted the price of {model}"))
        }
    }
}

/// LiteLLM's published price and context-window file.
const LITELLM_CATALOG_URL: &str =
    "https://raw.githubusercontent.com/BerriAI/litellm/main/model_prices_and_context_window.json";

/// `burncloud price sync [FILE|URL]`: read a LiteLLM-format catalog and store it.
fn sync(store: &Store, source: Option<String>) -> Result<String, String> {
    let source = source.unwrap_or_else(|| LITELLM_CATALOG_URL.to_string());
    let text = if source.starts_with("http://") || source.starts_with("https://") {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| e.to_string())?;
        rt.block_on(async {
            let resp = reqwest::Client::builder()
                .timeout(std::time::Duration::from_secs(60))
                .build()
                .map_err(|e| e.to_string())?
                .get(&source)
                .send()
                .await
                .map_err(|e| format!("cannot fetch {source}: {e}"))?;
            if !resp.status().is_success() {
                return Err(format!("cannot fetch {source}: HTTP {}", resp.status()));
            }
            resp.text()
                .await
                .map_err(|e| format!("cannot read {source}: {e}"))
        })?
    } else {
        std::fs::read_to_string(&source).map_err(|e| format!("cannot read {source}: {e}"))?
    };
    let catalog =
        gateway_core::catalog::parse(&text, &source).map_err(|e| format!("{source}: {e}"))?;
    let n = store
        .with(|c| gateway_core::store::catalog::store(c, &catalog, true))
        .map_err(|e| e.to_string())?;
    Ok(format!(
        "Price catalog updated from {}: {n} models (prices you set still win)",
        catalog.source
    ))
}
