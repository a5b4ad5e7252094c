//! `burncloud channel ...` and `burncloud token ...`: the console API's channel and key
//! operations for scripts, on the same database as a running gateway (which sees changes
//! within a second). `--json` prints exactly what the console API returns (keys masked).
//! Exit codes: 0 done; 1 refused or failed (the reason on stderr); 2 bad usage.

use gateway_core::vocab::status;
use std::io::BufRead;
use std::process::ExitCode;

use gateway_core::Config;
use gateway_core::auth::new_token_key;
use gateway_core::http::{channel_view, token_view};
use gateway_core::money::{format_usd, parse_usd};
use gateway_core::store::channels::{self, ChannelFields};
use gateway_core::store::tokens::{self, TokenFields};
use gateway_core::store::{Store, users};
use serde_json::{Value, json};

use crate::cli::{ChannelArgs, ChannelCommand, TokenArgs, TokenCommand};

/// What a command prints: text for people, the API's JSON with `--json`.
struct Out {
    text: String,
    json: Value,
}

fn finish(result: Result<Out, String>, json: bool) -> ExitCode {
    match result {
        Ok(out) => {
            if json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&out.json).unwrap_or_default()
                );
            } else {
                println!("{}", out.text);
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn open(config: &Config) -> Result<Store, String> {
    Store::connect(&config.database).map_err(|e| e.to_string())
}

fn read_key_stdin() -> Result<String, String> {
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .map_err(|e| format!("cannot read the key from standard input: {e}"))?;
    Ok(line.trim().to_string())
}

fn channel_fields(a: ChannelArgs) -> Result<ChannelFields, String> {
    let key = match (a.key, a.key_stdin) {
        (Some(_), true) => return Err("give --key or --key-stdin, not both".into()),
        (k, false) => k,
        (None, true) => Some(read_key_stdin()?),
    };
    let model_mapping = a
        .model_mapping
        .map(|m| {
            serde_json::from_str(&m)
                .map_err(|e| format!("--model-mapping must be a JSON object of model names: {e}"))
        })
        .transpose()?;
    let status = match (a.enable, a.disable) {
        (true, _) => Some(1),
        (_, true) => Some(2),
        _ => None,
    };
    Ok(ChannelFields {
        name: a.name,
        channel_type: a.channel_type,
        key,
        base_url: a.base_url,
        models: a.models,
        group: a.group,
        weight: a.weight,
        priority: a.priority,
        model_mapping,
        status,
        locality: a.locality,
        rpm_limit: a.rpm_limit.map(|r| (r > 0).then_some(r)),
    })
}

fn channel_line(v: &Value) -> String {
    format!(
        "{:<4} {:<20} {:<5} {:<9} {:<8} {:<34} {}",
        v["id"],
        v["name"].as_str().unwrap_or(""),
        v["type"],
        v["locality"].as_str().unwrap_or(""),
        if v["status"] == 1 {
            "enabled"
        } else {
            "disabled"
        },
        v["base_url"].as_str().unwrap_or(""),
        v["models"].as_str().unwrap_or("")
    )
}

const CHANNEL_HEADER: &str =
    "ID   NAME                 TYPE  LOCALITY  STATUS   BASE URL                           MODELS";

fn parse_id(id: &str) -> Result<i64, String> {
    id.parse()
        .map_err(|_| format!("'{id}' is not a channel or token id (a number)"))
}

/// Run `burncloud channel ...`.
pub fn channel(config: &Config, cmd: ChannelCommand) -> ExitCode {
    let json = match &cmd {
        ChannelCommand::Add { json, .. }
        | ChannelCommand::List { json }
        | ChannelCommand::Show { json, .. }
        | ChannelCommand::Set { json, .. }
        | ChannelCommand::Test { json, .. } => *json,
        ChannelCommand::Rm { .. } => false,
    };
    finish(open(config).and_then(|s| channel_cmd(&s, cmd)), json)
}

fn channel_cmd(store: &Store, cmd: ChannelCommand) -> Result<Out, String> {
    let e = |e: gateway_core::store::StoreError| e.to_string();
    match cmd {
        ChannelCommand::Add { args, .. } => {
            let fields = channel_fields(args)?;
            let c = store.with(|c| channels::create(c, fields)).map_err(e)?;
            let v = channel_view(&c);
            Ok(Out {
                text: format!(
                    "Added channel {} ({}), key {}",
                    c.id,
                    c.name,
                    c.masked_key()
                ),
                json: v,
            })
        }
        ChannelCommand::List { .. } => {
            let list: Vec<Value> = store
                .with(|c| channels::list(c))
                .map_err(e)?
                .iter()
                .map(channel_view)
                .collect();
            let mut text = CHANNEL_HEADER.to_string();
            for v in &list {
                text.push('\n');
                text.push_str(&channel_line(v));
            }
            if list.is_empty() {
                text = "No channels. Add one with: burncloud channel add --name N --type 1 --key-stdin --base-url URL --models M".into();
            }
            Ok(Out {
                text,
                json: Value::Array(list),
            })
        }
        ChannelCommand::Show { id, .. } => {
            let id = parse_id(&id)?;
            let c = store
                .with(|c| channels::get(c, id))
                .map_err(e)?
                .ok_or_else(|| format!("channel {id} not found"))?;
            let v = channel_view(&c);
            let text = format!(
                "{CHANNEL_HEADER}\n{}\nkey {}, group {}, weight {}, priority {}{}",
                channel_line(&v),
                c.masked_key(),
                c.groups.join(","),
                c.weight,
                c.priority,
                c.disabled_reason
                    .as_deref()
                    .map(|r| format!(", disabled: {r}"))
                    .unwrap_or_default()
            );
            Ok(Out { text, json: v })
        }
        ChannelCommand::Set { id, args, .. } => {
            let id = parse_id(&id)?;
            let fields = channel_fields(args)?;
            let c = store.with(|c| channels::update(c, id, fields)).map_err(e)?;
            Ok(Out {
                text: format!("Updated channel {} ({})", c.id, c.name),
                json: channel_view(&c),
            })
        }
        ChannelCommand::Test { id, .. } => {
            let id = parse_id(&id)?;
            let c = store
                .with(|c| channels::get(c, id))
                .map_err(e)?
                .ok_or_else(|| format!("channel {id} not found"))?;
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| e.to_string())?;
            match rt.block_on(gateway_core::console::channels::probe_channel(&c)) {
                Ok(p) => Ok(Out {
                    text: format!("{} answered {} in {} ms", c.name, p.model, p.millis),
                    json: json!({"id": c.id, "ok": true, "model": p.model, "ms": p.millis}),
                }),
                Err(err) => Err(match err.fix() {
                    Some(fix) => format!("{}: {err}\n{fix}", c.name),
                    None => format!("{}: {err}", c.name),
                }),
            }
        }
        ChannelCommand::Rm { id } => {
            let id = parse_id(&id)?;
            store.with(|c| channels::delete(c, id)).map_err(e)?;
            Ok(Out {
                text: format!("Removed channel {id}"),
                json: json!({"id": id}),
            })
        }
    }
}

fn usd_limit(flag: &str, v: &str) -> Result<i64, String> {
    match v.trim() {
        "-1" | "unlimited" => Ok(-1),
        t => parse_usd(t).map_err(|e| format!("--{flag}: {e}")),
    }
}

fn token_fields(a: TokenArgs) -> Result<TokenFields, String> {
    let status = match (a.enable, a.disable) {
        (true, _) => Some(1),
        (_, true) => Some(2),
        _ => None,
    };
    Ok(TokenFields {
        name: a.name,
        status,
        quota_limit_nano: a
            .quota
            .as_deref()
            .map(|q| usd_limit("quota", q))
            .transpose()?,
        expired_time: a.expires,
        models: a.models,
        group: a.group,
        allow_ips: a.allow_ips,
        rpm_limit: a.rpm.map(|r| (r > 0).then_some(r)),
        tpm_limit: a.tpm.map(|r| (r > 0).then_some(r)),
        local_only: a.local_only,
        burst_mode: None,
    })
}

const TOKEN_HEADER: &str =
    "ID   NAME                 KEY                  STATUS    QUOTA        USED         MODELS";

fn token_line(v: &Value) -> String {
    let money = |v: &Value| match v.as_f64() {
        Some(x) if x < 0.0 => "unlimited".to_string(),
        Some(x) => format!("${x}"),
        None => "-".into(),
    };
    format!(
        "{:<4} {:<20} {:<20} {:<9} {:<12} {:<12} {}",
        v["id"],
        v["name"].as_str().unwrap_or(""),
        v["key"].as_str().unwrap_or(""),
        if v["status"] == 1 {
            "enabled"
        } else {
            "disabled"
        },
        money(&v["quota_limit"]),
        money(&v["used_quota"]),
        v["models"]
            .as_str()
            .filter(|m| !m.is_empty())
            .unwrap_or("all")
    )
}

/// Run `burncloud token ...`.
pub fn token(config: &Config, cmd: TokenCommand) -> ExitCode {
    let json = match &cmd {
        TokenCommand::Create { json, .. }
        | TokenCommand::List { json, .. }
        | TokenCommand::Show { json, .. }
        | TokenCommand::Set { json, .. } => *json,
        TokenCommand::Revoke { .. } => false,
    };
    finish(open(config).and_then(|s| token_cmd(&s, cmd)), json)
}

fn owner_id(store: &Store, user: Option<String>) -> Result<String, String> {
    store
        .with(|c| match &user {
            Some(u) => users::find(c, u).map(|u| u.id),
            None => users::list(c)?
                .into_iter()
                .find(|u| u.role == users::Role::Admin && u.status == status::ENABLED)
                .map(|u| u.id)
                .ok_or_else(|| {
                    gateway_core::store::StoreError::NotFound(
                        "no enabled admin to own the key: give --user".into(),
                    )
                }),
        })
        .map_err(|e| e.to_string())
}

fn token_cmd(store: &Store, cmd: TokenCommand) -> Result<Out, String> {
    let e = |e: gateway_core::store::StoreError| e.to_string();
    match cmd {
        TokenCommand::Create { user, args, .. } => {
            if args.name.as_deref().is_none_or(|n| n.trim().is_empty()) {
                return Err("--name is required".into());
            }
            let owner = owner_id(store, user)?;
            let mut fields = token_fields(args)?;
            if fields.group.is_none() {
                fields.group = store
                    .with(|c| users::get(c, &owner))
                    .map_err(e)?
                    .map(|u| u.group);
            }
            let key = new_token_key();
            let t = store
                .with(|c| tokens::create(c, &owner, &key.hash, &key.display, fields))
                .map_err(e)?;
            let mut v = token_view(&t);
            v["key"] = json!(key.key);
            v["key_masked"] = json!(t.key_prefix);
            Ok(Out {
                text: format!(
                    "Created key {} ({}): {}\nIt is shown only this once: store it now.",
                    t.id, t.name, key.key
                ),
                json: v,
            })
        }
        TokenCommand::List { user, .. } => {
            let owner = user.map(|u| owner_id(store, Some(u))).transpose()?;
            let list: Vec<Value> = store
                .with(|c| tokens::list(c, owner.as_deref()))
                .map_err(e)?
                .iter()
                .map(token_view)
                .collect();
            let mut text = TOKEN_HEADER.to_string();
            for v in &list {
                text.push('\n');
                text.push_str(&token_line(v));
            }
            if list.is_empty() {
                text = "No keys. Create one with: burncloud token create --name NAME".into();
            }
            Ok(Out {
                text,
                json: Value::Array(list),
            })
        }
        TokenCommand::Show { id, .. } => {
            let id = parse_id(&id)?;
            let t = store
                .with(|c| tokens::get(c, id, None))
                .map_err(e)?
                .ok_or_else(|| format!("token {id} not found"))?;
            let v = token_view(&t);
            Ok(Out {
                text: format!(
                    "{TOKEN_HEADER}\n{}\nowner {}, group {}, expires {}, rpm {}, tpm {}, spent ${}",
                    token_line(&v),
                    t.user_id,
                    t.group,
                    if t.expired_time < 0 {
                        "never".into()
                    } else {
                        t.expired_time.to_string()
                    },
                    t.rpm_limit.map_or("-".into(), |r| r.to_string()),
                    t.tpm_limit.map_or("-".into(), |r| r.to_string()),
                    format_usd(t.used_quota_nano)
                ),
                json: v,
            })
        }
        TokenCommand::Set { id, args, .. } => {
            let id = parse_id(&id)?;
            let fields = token_fields(args)?;
            let t = store
                .with(|c| tokens::update(c, id, None, fields))
                .map_err(e)?;
            Ok(Out {
                text: format!("Updated key {} ({})", t.id, t.name),
                json: token_view(&t),
            })
        }
        TokenCommand::Revoke { id } => {
            let id = parse_id(&id)?;
            store.with(|c| tokens::delete(c, id, None)).map_err(e)?;
            Ok(Out {
                text: format!("Revoked key {id}"),
                json: json!({"id": id}),
            })
        }
    }
}
