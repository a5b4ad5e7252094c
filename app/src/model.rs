//! `burncloud model ...`: the model library and hub from the command line. Wiring and
//! printing only: the work is llama-manager's.

use std::process::ExitCode;

use gateway_core::Config;
use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use llama_manager::download::{self, DownloadEvent, DownloadOptions};
use llama_manager::fit::fit;
use llama_manager::gguf::human_count;
use llama_manager::hardware;
use llama_manager::hub::{HubClient, SearchQuery, SearchSort as HubSort};
use llama_manager::library::{Library, Model, Source};
use llama_manager::queue::{self, JobId, Queue, QueueEvent};

use crate::cli::{ModelCommand, ModelSearch, SearchSort};

/// Run a model command; results on stdout, errors on stderr.
pub fn run(config: &Config, cmd: ModelCommand) -> ExitCode {
    block_on(execute(config, cmd))
}

/// Run a command future on a small runtime; print its result or error.
pub fn block_on(fut: impl std::future::Future<Output = Result<String, String>>) -> ExitCode {
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(fut) {
        Ok(out) => {
            if !out.is_empty() {
                println!("{out}");
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn gib(b: u64) -> String {
    if b >= 1 << 30 {
        format!("{:.2} GiB", b as f64 / (1u64 << 30) as f64)
    } else {
        format!("{:.1} MiB", b as f64 / (1u64 << 20) as f64)
    }
}

async fn execute(config: &Config, cmd: ModelCommand) -> Result<String, String> {
    let lib = || Library::open(config).map_err(|e| e.to_string());
    match cmd {
        ModelCommand::List => list(&lib()?),
        ModelCommand::Import { path } => {
            let m = lib()?.import(&path).map_err(|e| e.to_string())?;
            Ok(format!(
                "Imported model {} ({}): {}, {} parameters, {}\n{}",
                m.id,
                m.name,
                m.summary.architecture,
                human_count(m.summary.parameters),
                m.quantization.as_deref().unwrap_or("?"),
                m.path.display()
            ))
        }
        ModelCommand::Rm { id } => {
            let (m, deleted) = lib()?.remove(&id).map_err(|e| e.to_string())?;
            let mut out = format!("Removed model {} ({}) from the library", m.id, m.name);
            match m.source {
                Source::Import => out.push_str(&format!(
                    "; its file stays where it was: {}",
                    m.path.display()
                )),
                Source::Hub => {
                    for d in deleted {
                        out.push_str(&format!("\ndeleted {}", d.display()));
                    }
                }
            }
            Ok(out)
        }
        ModelCommand::Alias { id, name, clear } => {
            let name = if clear { None } else { name };
            let m = lib()?
                .set_alias(&id, name.as_deref())
                .map_err(|e| e.to_string())?;
            let channel = gateway_core::local::channel_name(m.id);
            Ok(match &m.alias {
                Some(a) => format!(
                    "Model {} ({}) now also answers to \"{a}\" (its channel is {channel}); a running gateway picks this up within seconds",
                    m.id, m.name
                ),
                None => format!("Model {} ({}) has no alias now", m.id, m.name),
            })
        }
        ModelCommand::Info { id } => {
            let m = lib()?.get(&id).map_err(|e| e.to_string())?;
            let hw = crate::local::hardware_here(&config.data_dir);
            Ok(info(&m, &hw))
        }
        ModelCommand::Search(s) => search(s).await,
        ModelCommand::Show { repo } => show(&repo).await,
        ModelCommand::Download { specs, jobs } => {
            download_cmd(&lib()?, &specs, jobs.map(usize::from)).await
        }
        ModelCommand::Run { deploy, timeout } => crate::local::run(config, deploy, timeout).await,
        ModelCommand::Deploy { deploy } => crate::local::deploy_only(config, deploy),
        ModelCommand::Stop { id, timeout } => crate::local::stop(config, &id, timeout).await,
        ModelCommand::Ps => crate::local::ps(config),
        ModelCommand::Logs { id, follow, lines } => {
            crate::local::logs(config, &id, follow, lines).await
        }
    }
}

fn list(lib: &Library) -> Result<String, String> {
    // Models other tools put in the Hugging Face cache join the library in place.
    let mut shared = String::new();
    if let Some(hub) = llama_manager::library::hf_cache_dir() {
        let added = lib.sync_hf_cache(&hub).map_err(|e| e.to_string())?;
        if !added.is_empty() {
            shared = format!(
                "\n({} model(s) found in the Hugging Face cache {}, used in place)",
                added.len(),
                hub.display()
            );
        }
    }
    let models = lib.list().map_err(|e| e.to_string())?;
    let partial = download::unfinished(lib).map_err(|e| e.to_string())?;
    let mut out = String::new();
    if models.is_empty() {
        out.push_str(
            "No models yet. Download one with `burncloud model download REPO:QUANT` or import a .gguf with `burncloud model import PATH`.",
        );
    } else {
        let w = models
            .iter()
            .map(|m| m.name.len() + m.alias.as_ref().map_or(0, |a| a.len() + 3))
            .max()
            .unwrap_or(4)
            .max(4);
        out.push_str(&format!(
            "{:>3}  {:<w$}  {:<8}  {:>7}  {:>10}  {:>6}  {:<6}  PATH",
            "ID", "NAME", "QUANT", "PARAMS", "SIZE", "CTX", "SOURCE"
        ));
        for m in &models {
            out.push_str(&format!(
                "\n{:>3}  {:<w$}  {:<8}  {:>7}  {:>10}  {:>6}  {:<6}  {}",
                m.id,
                match &m.alias {
                    Some(a) => format!("{} ({a})", m.name),
                    None => m.name.clone(),
                },
                m.quantization.as_deref().unwrap_or("?"),
                human_count(m.summary.parameters),
                gib(m.size),
                m.summary.context_length,
                match m.source {
                    Source::Hub => "hub",
                    Source::Import => "import",
                },
                m.path.display()
            ));
        }
    }
    if !partial.is_empty() {
        out.push_str(
            "\n\nUnfinished downloads (run the same `burncloud model download` to resume):",
        );
        for p in partial {
            out.push_str(&format!(
                "\n  {}:{}  {} of {}",
                p.repo,
                p.file,
                gib(p.have),
                gib(p.size)
            ));
        }
    }
    out.push_str(&shared);
    Ok(out)
}

fn info(m: &Model, hw: &hardware::Hardware) -> String {
    let s = &m.summary;
    let mut out = format!(
        "Model {} ({})\n  path: {}\n  source: {}",
        m.id,
        m.name,
        m.path.display(),
        match (&m.source, &m.repo) {
            (Source::Hub, Some(r)) => format!("{r} @ {}", m.revision.as_deref().unwrap_or("?")),
            (Source::Hub, None) => "hub".into(),
            (Source::Import, _) => "imported in place".into(),
        }
    );
    out.push_str(&format!(
        "\n  architecture: {}\n  parameters: {} ({})\n  quantization: {}\n  layers: {}\n  context length: {}\n  embedding size: {}\n  attention heads: {} (KV heads {})\n  feed-forward size: {}\n  vocabulary: {}\n  chat template: {}\n  size: {} in {} file(s)",
        s.architecture,
        human_count(s.parameters),
        s.parameters,
        m.quantization.as_deref().unwrap_or("?"),
        s.layers,
        s.context_length,
        s.embedding_length,
        s.head_count,
        s.head_count_kv,
        s.feed_forward_length,
        s.vocab_size,
        if s.has_chat_template { "yes" } else { "no" },
        gib(m.size),
        m.files.len()
    ));
    if let Some(mm) = m.mmproj() {
        out.push_str(&format!("\n  projector (mmproj): {}", mm.path.display()));
    }
    let f = fit(s, m.size, hw);
    out.push_str(&format!(
        "\n\nThis machine:\n{}\n\nFit: {}",
        indent(&hw.describe()),
        f.explain()
    ));
    out
}

fn indent(s: &str) -> String {
    s.lines()
        .map(|l| format!("  {l}"))
        .collect::<Vec<_>>()
        .join("\n")
}

async fn search(s: ModelSearch) -> Result<String, String> {
    let client = HubClient::from_env().map_err(|e| e.to_string())?;
    let q = SearchQuery {
        text: s.query.clone(),
        sort: match s.sort {
            SearchSort::Downloads => HubSort::Downloads,
            SearchSort::Likes => HubSort::Likes,
            SearchSort::Recent => HubSort::Recent,
        },
        limit: s.limit.clamp(1, 1000),
    };
    let page = client
        .search_page(&q, s.page.max(1))
        .await
        .map_err(|e| e.to_string())?;
    if page.models.is_empty() {
        return Ok(format!("No GGUF repositories match {:?}.", s.query));
    }
    let w = page
        .models
        .iter()
        .map(|m| m.id.len())
        .max()
        .unwrap_or(4)
        .max(4);
    let mut out = format!(
        "{:<w$}  {:>10}  {:>6}  {:<10}  GATED",
        "REPOSITORY", "DOWNLOADS", "LIKES", "UPDATED"
    );
    for m in &page.models {
        out.push_str(&format!(
            "\n{:<w$}  {:>10}  {:>6}  {:<10}  {}",
            m.id,
            m.downloads,
            m.likes,
            m.last_modified.get(..10).unwrap_or(&m.last_modified),
            if m.gated { "yes" } else { "no" }
        ));
    }
    if page.next.is_some() {
        out.push_str(&format!("\n(more: --page {})", s.page.max(1) + 1));
    }
    Ok(out)
}

async fn show(repo: &str) -> Result<String, String> {
    let client = HubClient::from_env().map_err(|e| e.to_string())?;
    let details = client.repo_details(repo).await.map_err(|e| e.to_string())?;
    let hw = hardware::detect();
    let mut out = format!(
        "{} @ {}\n  downloads {}, likes {}, updated {}{}",
        details.info.id,
        details.info.sha,
        details.info.downloads,
        details.info.likes,
        details.info.last_modified,
        if details.info.gated {
            "\n  gated: downloads need an accepted licence and HF_TOKEN"
        } else {
            ""
        }
    );
    if details.files.variants.is_empty() {
        out.push_str("\n  no GGUF model files in this repository");
    }
    for v in &details.files.variants {
        out.push_str(&format!(
            "\n  {:<8}  {:>10}  {}{}",
            v.quant.as_deref().unwrap_or("?"),
            gib(v.size()),
            v.path,
            if v.shards > 1 {
                format!(
                    " ({} shards{})",
                    v.shards,
                    if v.complete() { "" } else { ", incomplete" }
                )
            } else {
                String::new()
            }
        ));
    }
    for p in &details.files.mmproj {
        out.push_str(&format!("\n  mmproj    {:>10}  {}", gib(p.size), p.path));
    }
    // The fit of the variant a plain download would pick, from a ranged read of its header.
    if let Ok(v) = llama_manager::hub::pick_variant(&details.files, None) {
        match client
            .remote_summary(&details.info.id, &details.info.sha, &v.path)
            .await
        {
            Ok(s) => {
                let f = fit(&s, v.size(), &hw);
                out.push_str(&format!(
                    "\n\n{} ({}, {} parameters, {} layers, context {}) on this machine:\n{}",
                    v.path,
                    s.architecture,
                    human_count(s.parameters),
                    s.layers,
                    s.context_length,
                    f.explain()
                ));
            }
            Err(e) => out.push_str(&format!("\n\n(could not read {}'s header: {e})", v.path)),
        }
    }
    Ok(out)
}

/// A line above the progress bar, or on stderr when there is no terminal to draw on.
fn say(bar: &ProgressBar, line: String) {
    if bar.is_hidden() {
        eprintln!("{line}");
    } else {
        bar.println(line);
    }
}

/// Download every spec through the queue, one progress bar per job. Successes go to
/// stdout; if any failed, the error lists each failure with its reason.
async fn download_cmd(
    lib: &Library,
    specs: &[String],
    jobs: Option<usize>,
) -> Result<String, String> {
    let limit = match jobs {
        Some(n) => n,
        None => queue::jobs_from_env().map_err(|e| e.to_string())?,
    };
    let mut seen = std::collections::HashSet::new();
    for s in specs {
        if !seen.insert(s.trim()) {
            return Err(format!("{} is given twice", s.trim()));
        }
    }
    let client = HubClient::from_env().map_err(|e| e.to_string())?;
    let style = ProgressStyle::with_template(
        "{msg} [{bar:30}] {bytes}/{total_bytes} {binary_bytes_per_sec} ETA {eta}",
    )
    .map_err(|e| e.to_string())?
    .progress_chars("=> ");
    let (q, mut events) = Queue::new(lib.clone(), client, DownloadOptions::from_env(), limit)
        .map_err(|e| e.to_string())?;
    let mp = MultiProgress::new();
    let several = specs.len() > 1;
    let mut bars: std::collections::BTreeMap<JobId, (String, ProgressBar)> = Default::default();
    for spec in specs {
        let id = q.enqueue(spec).map_err(|e| e.to_string())?;
        let bar = mp.add(ProgressBar::new(0));
        bar.set_style(style.clone());
        bar.set_message(format!("{} (queued)", spec.trim()));
        bars.insert(id, (spec.trim().to_string(), bar));
    }
    let mut finished: Vec<(JobId, Result<Model, String>)> = Vec::new();
    while finished.len() < bars.len() {
        let Some(event) = events.recv().await else {
            break;
        };
        let id = event.job();
        let Some((spec, bar)) = bars.get(&id) else {
            continue;
        };
        // With several downloads, lines say which one they are about.
        let tag = |line: String| {
            if several {
                format!("[{spec}] {line}")
            } else {
                line
            }
        };
        match event {
            QueueEvent::Download { event, .. } => match event {
                DownloadEvent::Started {
                    file,
                    total,
                    resumed_from,
                } => {
                    bar.set_length(total);
                    bar.set_position(resumed_from);
                    bar.reset_eta();
                    bar.set_message(file.clone());
                    if resumed_from > 0 {
                        say(
                            bar,
                            tag(format!("resuming {file} at {}", gib(resumed_from))),
                        );
                    }
                }
                DownloadEvent::Progress { done, .. } => bar.set_position(done),
                other => say(bar, tag(other.to_string())),
            },
            QueueEvent::Finished { model, .. } => {
                bar.finish_and_clear();
                finished.push((id, Ok(*model)));
            }
            QueueEvent::Failed { reason, .. } => {
                bar.abandon_with_message(format!("{spec}: failed"));
                finished.push((id, Err(reason)));
            }
            QueueEvent::Cancelled { .. } => {
                bar.finish_and_clear();
                finished.push((id, Err("cancelled".into())));
            }
            QueueEvent::Queued { .. }
            | QueueEvent::Started { .. }
            | QueueEvent::Paused { .. }
            | QueueEvent::Resumed { .. } => {}
        }
    }
    let _ = mp.clear();
    finished.sort_by_key(|(id, _)| *id);
    let mut failures = Vec::new();
    for (id, r) in &finished {
        match r {
            Ok(m) => println!(
                "Downloaded and verified model {} ({}), {} in {} file(s)\n{}",
                m.id,
                m.name,
                gib(m.size),
                m.files.len(),
                m.path.display()
            ),
            Err(reason) => failures.push((bars[id].0.clone(), reason.clone())),
        }
    }
    if finished.len() < bars.len() {
        return Err("the download queue stopped before every download finished".into());
    }
    match failures.as_slice() {
        [] => Ok(String::new()),
        [(_, reason)] if !several => Err(reason.clone()),
        _ => Err(format!(
            "{} of {} downloads failed:{}",
            failures.len(),
            bars.len(),
            failures
                .iter()
                .map(|(spec, reason)| format!("\n  {spec}: {reason}"))
                .collect::<String>()
        )),
    }
}
