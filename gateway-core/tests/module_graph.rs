//! The shape of gateway-core, checked: its top-level modules ("rooms") import each other
//! only downwards, in the order of `LAYERS`, so the graph has no circle and no upward
//! import. A new `use crate::x` that points up (or a new module not placed in a layer)
//! fails here with the file and the edge to fix.
//!
//! Edges are read from the source: `use crate::…` (groups included) and `crate::x::…`
//! paths in code; comments and `#[cfg(test)]` modules are left out (tests may reach
//! anywhere). `super::` stays inside a room.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The rooms, bottom first. A room may import rooms of lower layers only (and rooms of
/// its own layer never, so a layer is a set of independent rooms).
const LAYERS: &[&[&str]] = &[
    // Leaves: plain vocabulary with no knowledge of the rest (`local`: the seam to the
    // local runtime and the names of its channels).
    &["money", "secure", "vocab", "local"],
    // Pure transformations: the price catalog's format; what every protocol conversion
    // shares (answer stages, endpoints, SSE, error shapes).
    &["catalog", "wire"],
    // The client protocols; the providers (one file each). Neither knows the other.
    &["ingress", "upstream"],
    // The channel type table (each row names its provider's upstream).
    &["channel_types"],
    // The database (it asks a channel's upstream whether its key is well formed).
    &["store"],
    // Passwords and tokens; what a request costs; burst policy; login throttling.
    &["auth", "tariff", "burst", "throttle"],
    // The routing snapshot; configuration.
    &["snapshot", "config"],
    // The data plane's in-memory state; channel probes.
    &["live", "probe"],
    // The shared application state.
    &["state"],
    // The request path; the console service (the control plane's rules, for the API and
    // the consoles).
    &["relay", "console"],
    // The HTTP surface (control plane, and the router that mounts the data plane).
    &["http"],
    // Open, serve, shut down.
    &["server"],
    // The protocol pieces the workspace's tests use directly.
    &["testing"],
];

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// The code of a file without comments and without its `#[cfg(test)]` module.
fn code(src: &str) -> String {
    let src = match src.find("#[cfg(test)]\nmod tests") {
        Some(i) => &src[..i],
        None => src,
    };
    src.lines()
        .map(|l| match l.find("//") {
            // `//` inside a string literal (a URL) is not a comment; good enough here:
            // a line whose `//` follows a quote keeps its text.
            Some(i) if !l[..i].contains('"') => &l[..i],
            _ => l,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The first segments of the path(s) at the start of `text`: `x::…` gives `x`, a group
/// `{a::b, c}` gives `a` and `c`.
fn first_segments(text: &str) -> BTreeSet<String> {
    let ident = |s: &str| -> String {
        s.trim_start()
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect()
    };
    let mut out = BTreeSet::new();
    match text.strip_prefix('{') {
        Some(group) => {
            // Top-level items of the group: split at depth-0 commas.
            let mut depth = 0;
            let mut start = 0;
            for (j, ch) in group.char_indices() {
                match ch {
                    '{' => depth += 1,
                    '}' if depth == 0 => {
                        out.insert(ident(&group[start..j]));
                        break;
                    }
                    '}' => depth -= 1,
                    ',' if depth == 0 => {
                        out.insert(ident(&group[start..j]));
                        start = j + 1;
                    }
                    _ => {}
                }
            }
        }
        None => {
            out.insert(ident(text));
        }
    }
    out.retain(|r| !r.is_empty() && r != "self");
    out
}

/// What follows each occurrence of `prefix` in `code`, read as paths.
fn paths_after(code: &str, prefix: &str) -> BTreeSet<String> {
    code.match_indices(prefix)
        .flat_map(|(i, _)| first_segments(&code[i + prefix.len()..]))
        .collect()
}

/// The rooms a file's code names: `crate::room` anywhere, and the first segment of each
/// path inside `use crate::{…}` groups.
fn imports(code: &str) -> BTreeSet<String> {
    paths_after(code, "crate::")
}

#[test]
fn rooms_import_only_downwards() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let layer_of: BTreeMap<&str, usize> = LAYERS
        .iter()
        .enumerate()
        .flat_map(|(i, rooms)| rooms.iter().map(move |r| (*r, i)))
        .collect();
    let mut problems = Vec::new();
    let mut rooms_seen = BTreeSet::new();
    for file in &files {
        let rel = file.strip_prefix(&src).unwrap();
        let room = rel
            .components()
            .next()
            .unwrap()
            .as_os_str()
            .to_string_lossy()
            .trim_end_matches(".rs")
            .to_string();
        if room == "lib" {
            continue;
        }
        rooms_seen.insert(room.clone());
        let Some(&mine) = layer_of.get(room.as_str()) else {
            problems.push(format!(
                "{}: module `{room}` is in no layer of LAYERS (place it)",
                rel.display()
            ));
            continue;
        };
        let text = std::fs::read_to_string(file).unwrap();
        for target in imports(&code(&text)) {
            if target == room {
                continue;
            }
            match layer_of.get(target.as_str()) {
                Some(&theirs) if theirs < mine => {}
                Some(&theirs) => problems.push(format!(
                    "{}: `{room}` (layer {mine}) imports `{target}` (layer {theirs}): only lower layers may be imported",
                    rel.display()
                )),
                None => {}
            }
        }
    }
    for room in layer_of.keys() {
        if !rooms_seen.contains(*room) {
            problems.push(format!(
                "LAYERS names `{room}`, which is not a module of gateway-core any more"
            ));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// The sibling modules a file of `room` names: `super::x`, `crate::room::x`, and the first
/// segment of each path in `use super::{…}` groups.
fn sibling_imports(room: &str, code: &str, siblings: &BTreeSet<String>) -> BTreeSet<String> {
    let mut out = paths_after(code, "super::");
    out.extend(paths_after(code, &format!("crate::{room}::")));
    out.retain(|m| siblings.contains(m));
    out
}

#[test]
fn files_inside_a_room_form_no_circle() {
    // Inside a room (a folder), `mod.rs` is the door every file may use; the other files
    // must not import each other in a circle.
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut problems = Vec::new();
    for entry in std::fs::read_dir(&src).unwrap() {
        let dir = entry.unwrap().path();
        if !dir.is_dir() {
            continue;
        }
        let room = dir.file_name().unwrap().to_string_lossy().to_string();
        let files: BTreeMap<String, PathBuf> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|x| x == "rs"))
            .map(|p| (p.file_stem().unwrap().to_string_lossy().to_string(), p))
            .filter(|(name, _)| name != "mod")
            .collect();
        let names: BTreeSet<String> = files.keys().cloned().collect();
        let edges: BTreeMap<String, BTreeSet<String>> = files
            .iter()
            .map(|(name, path)| {
                let text = std::fs::read_to_string(path).unwrap();
                let mut found = sibling_imports(&room, &code(&text), &names);
                found.remove(name);
                (name.clone(), found)
            })
            .collect();
        // Depth-first search for a back edge.
        fn visit(
            n: &str,
            edges: &BTreeMap<String, BTreeSet<String>>,
            state: &mut BTreeMap<String, u8>,
            path: &mut Vec<String>,
        ) -> Option<Vec<String>> {
            match state.get(n) {
                Some(1) => {
                    let start = path.iter().position(|p| p == n).unwrap();
                    let mut cycle = path[start..].to_vec();
                    cycle.push(n.to_string());
                    return Some(cycle);
                }
                Some(_) => return None,
                None => {}
            }
            state.insert(n.to_string(), 1);
            path.push(n.to_string());
            for m in &edges[n] {
                if let Some(c) = visit(m, edges, state, path) {
                    return Some(c);
                }
            }
            path.pop();
            state.insert(n.to_string(), 2);
            None
        }
        let mut state = BTreeMap::new();
        for n in edges.keys() {
            if let Some(cycle) = visit(n, &edges, &mut state, &mut Vec::new()) {
                problems.push(format!("{room}/: {}", cycle.join(" → ")));
                break;
            }
        }
    }
    assert!(
        problems.is_empty(),
        "circles between files:\n{}",
        problems.join("\n")
    );
}

#[test]
fn the_check_sees_upward_imports() {
    // The reader finds what the checks rely on, so a circle cannot hide from them.
    let text = code(
        "use crate::{store::{self, users}, relay::Usage};\nuse super::{forward::relay, ingress};\nfn f() { crate::http::ok(1); super::plan::go(); }\n// crate::server in a comment\n",
    );
    assert_eq!(
        imports(&text).into_iter().collect::<Vec<_>>(),
        ["http", "relay", "store"]
    );
    let siblings: BTreeSet<String> = ["forward", "ingress", "plan", "route"]
        .map(String::from)
        .into();
    assert_eq!(
        sibling_imports("relay", &text, &siblings)
            .into_iter()
            .collect::<Vec<_>>(),
        ["forward", "ingress", "plan"]
    );
}
