//! The real desktop binary in a real window under Xvfb: the gateway answers `/health`,
//! the first-run key works, every page is reached with the keyboard (Alt+1..9) and drawn
//! (not blank, not an error), with one PNG per page under the target dir
//! (`target/tmp/desktop-screenshots/`, or `BURNCLOUD_SCREENSHOT_DIR`). Needs Xvfb, dbus-launch, xdotool and ImageMagick's
//! `import` and xclip (installed by `cargo xtask test`); a missing tool is a failure, not a skip.
#![cfg(feature = "desktop")]

use std::process::Command;
use std::time::{Duration, Instant};

#[path = "support/screen.rs"]
mod screen;
use screen::{BIN, Screen, free_port, wait_until};

#[path = "../../gateway-core/tests/support/fake_openai.rs"]
mod fake_openai;

const PAGES: [&str; 9] = [
    "Dashboard",
    "Chat",
    "Channels",
    "Tokens",
    "Models",
    "Logs",
    "Pricing",
    "Settings",
    "Users",
];

/// Distinct colours of a PPM screenshot.
fn distinct_colours(path: &std::path::Path) -> (usize, Vec<[u8; 3]>) {
    let (_, _, px) = ppm_pixels(&std::fs::read(path).unwrap());
    let mut colors = px.clone();
    colors.sort_unstable();
    colors.dedup();
    (colors.len(), px)
}

/// Give the state real content the pages then show: a channel to a fake upstream, a user,
/// redemption codes and an invitation (through the console API, logged in as the
/// first-run admin), requests with the first-run key, a price set with the CLI.
/// Returns the admin's login token.
fn seed(base: &str, data_dir: &std::path::Path, upstream: std::net::SocketAddr) -> String {
    let creds: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(data_dir.join("desktop-credentials.json"))
            .expect("first run wrote the credentials file"),
    )
    .unwrap();
    let key = creds["key"].as_str().unwrap();
    assert!(key.starts_with("sk-"));
    let client = reqwest::blocking::Client::new();
    let login: serde_json::Value = client
        .post(format!("{base}/api/auth/login"))
        .json(&serde_json::json!({"username": creds["username"], "password": creds["password"]}))
        .send()
        .unwrap()
        .json()
        .unwrap();
    let jwt = login["data"]["token"]
        .as_str()
        .expect("the first-run admin logs in");
    let r = client
        .post(format!("{base}/console/api/channel"))
        .bearer_auth(jwt)
        .json(
            &serde_json::json!({"name": "fake-openai", "type": 1, "key": "sk-upstream-0123456789",
            "base_url": format!("http://{upstream}"), "models": "gpt-4o-mini"}),
        )
        .send()
        .unwrap();
    assert!(r.status().is_success());
    // Accounts for the Users page: a user made by the admin, a batch of codes, an invitation.
    for (path, body) in [
        (
            "/console/api/users",
            serde_json::json!({"username": "carol", "password": "Carol-pass-1", "group": "vip", "balance_usd": 5}),
        ),
        (
            "/console/api/redemptions",
            serde_json::json!({"name": "launch", "amount_usd": 2, "count": 3}),
        ),
        (
            "/console/api/invitations",
            serde_json::json!({"max_uses": 5}),
        ),
    ] {
        let r = client
            .post(format!("{base}{path}"))
            .bearer_auth(jwt)
            .json(&body)
            .send()
            .unwrap();
        assert!(r.status().is_success(), "{path}: {}", r.text().unwrap());
    }
    let status = Command::new(BIN)
        .args([
            "price",
            "set",
            "gpt-4o-mini",
            "--input",
            "0.15",
            "--output",
            "0.6",
        ])
        .env("BURNCLOUD_DATA_DIR", data_dir)
        .status()
        .unwrap();
    assert!(status.success());
    std::thread::sleep(Duration::from_millis(1200));
    for i in 0..5 {
        let model = if i == 4 {
            "no-such-model"
        } else {
            "gpt-4o-mini"
        };
        let r = client
            .post(format!("{base}/v1/chat/completions"))
            .bearer_auth(key)
            .json(&serde_json::json!({"model": model, "messages": [{"role": "user", "content": "Hi"}]}))
            .send()
            .unwrap();
        assert_eq!(
            r.status().is_success(),
            i != 4,
            "request {i} with the first-run key"
        );
    }
    jwt.to_string()
}

/// The names of the accounts, through the console API.
fn usernames(base: &str, jwt: &str) -> Vec<String> {
    let v: serde_json::Value = reqwest::blocking::Client::new()
        .get(format!("{base}/console/api/users"))
        .bearer_auth(jwt)
        .send()
        .unwrap()
        .json()
        .unwrap();
    v["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["username"].as_str().unwrap().to_string())
        .collect()
}

/// A user's balance in USD through the console API (None: unknown user or unlimited).
fn user_balance(base: &str, jwt: &str, name: &str) -> Option<f64> {
    let v: serde_json::Value = reqwest::blocking::Client::new()
        .get(format!("{base}/console/api/users"))
        .bearer_auth(jwt)
        .send()
        .unwrap()
        .json()
        .unwrap();
    v["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["username"] == name)
        .and_then(|u| u["balance_usd"].as_f64())
}

/// The channels through the console API.
fn channels(base: &str, jwt: &str) -> Vec<serde_json::Value> {
    let v: serde_json::Value = reqwest::blocking::Client::new()
        .get(format!("{base}/console/api/channel"))
        .bearer_auth(jwt)
        .send()
        .unwrap()
        .json()
        .unwrap();
    v["data"].as_array().unwrap().clone()
}

fn channel_names(base: &str, jwt: &str) -> Vec<String> {
    channels(base, jwt)
        .iter()
        .map(|c| c["name"].as_str().unwrap().to_string())
        .collect()
}

fn channel(base: &str, jwt: &str, name: &str) -> serde_json::Value {
    channels(base, jwt)
        .into_iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("no channel {name}"))
}

/// Parse a binary PPM (P6) as written by `import`.
fn ppm_pixels(bytes: &[u8]) -> (usize, usize, Vec<[u8; 3]>) {
    let mut fields = Vec::new();
    let mut i = 0;
    while fields.len() < 4 {
        while bytes[i].is_ascii_whitespace() {
            i += 1;
        }
        if bytes[i] == b'#' {
            while bytes[i] != b'\n' {
                i += 1;
            }
            continue;
        }
        let start = i;
        while !bytes[i].is_ascii_whitespace() {
            i += 1;
        }
        fields.push(String::from_utf8_lossy(&bytes[start..i]).to_string());
    }
    assert_eq!(fields[0], "P6");
    let (w, h): (usize, usize) = (fields[1].parse().unwrap(), fields[2].parse().unwrap());
    let data = &bytes[i + 1..];
    // ImageMagick writes 16-bit samples (maxval 65535): two bytes each, high byte first.
    let step = if fields[3].parse::<u32>().unwrap() > 255 {
        2
    } else {
        1
    };
    let px = data
        .chunks_exact(3 * step)
        .take(w * h)
        .map(|c| [c[0], c[step], c[2 * step]])
        .collect();
    (w, h, px)
}

#[test]
fn desktop_window_runs_the_gateway_and_draws_every_page() {
    let screen = Screen::start();
    let display = screen.display;
    let bus = screen.bus.clone();

    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let app = screen.launch(dir.path(), port, "app.log", &[]);
    let health = format!("http://127.0.0.1:{port}/health");
    wait_until(
        "/health from the desktop app",
        Duration::from_secs(60),
        || {
            reqwest::blocking::get(&health)
                .map(|r| r.status().is_success())
                .unwrap_or(false)
        },
    );
    // `/` is the sign-in page; the live web console is not served beside the window.
    let home = reqwest::blocking::get(format!("http://127.0.0.1:{port}/")).unwrap();
    assert_eq!(home.status(), 200);
    assert!(
        home.text()
            .unwrap()
            .contains("<title>Sign in · BurnCloud</title>")
    );
    let ws = reqwest::blocking::Client::new()
        .get(format!("http://127.0.0.1:{port}/console/ws"))
        .header("connection", "upgrade")
        .header("upgrade", "websocket")
        .header("sec-websocket-version", "13")
        .header("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ==")
        .header("origin", format!("http://127.0.0.1:{port}"))
        .send()
        .unwrap();
    assert_eq!(ws.status(), 404);
    let window = screen.window("^BurnCloud", Duration::from_secs(60));
    // Let the webview paint, then take a screenshot of the whole screen.
    let shot = dir.path().join("shot.ppm");
    let mut distinct = 0;
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        std::thread::sleep(Duration::from_secs(2));
        let ok = Command::new("import")
            .args(["-window", "root", shot.to_str().unwrap()])
            .env("DISPLAY", format!(":{display}"))
            .status()
            .unwrap()
            .success();
        assert!(ok, "import failed");
        let (w, h, _) = ppm_pixels(&std::fs::read(&shot).unwrap());
        assert_eq!((w, h), (1280, 800));
        distinct = distinct_colours(&shot).0;
        if distinct > 50 {
            break;
        }
    }
    let log = std::fs::read_to_string(dir.path().join("app.log")).unwrap_or_default();
    assert!(
        distinct > 50,
        "the screen looks blank ({distinct} colours); app log:\n{log}"
    );
    // The window keeps its own log file too (rotated daily, readable only by the user).
    let logs_dir = dir.path().join("logs");
    let file = std::fs::read_dir(&logs_dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("burncloud.")
        })
        .unwrap_or_else(|| panic!("no burncloud log file in {}", logs_dir.display()));
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(
        text.contains("INFO") && !text.contains('\u{1b}'),
        "{}: {text}",
        file.display()
    );
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&logs_dir).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o700, "{}", logs_dir.display());
    }

    // Real content for the pages, then every page by keyboard, one screenshot each.
    let rt = tokio::runtime::Runtime::new().unwrap();
    let fake = fake_openai::Fake::new();
    let upstream = rt.block_on(fake_openai::start(fake.clone()));
    let base = format!("http://127.0.0.1:{port}");
    let jwt = seed(&base, dir.path(), upstream);
    let out_dir = std::env::var("BURNCLOUD_SCREENSHOT_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|_| {
            std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("desktop-screenshots")
        });
    std::fs::create_dir_all(&out_dir).unwrap();
    let xdo = |args: &[&str]| screen.xdo(args);
    // Every page by keyboard, one screenshot each (`suffix` names the theme's set).
    // Returns each page's mean brightness.
    let tour = |suffix: &str| -> Vec<f64> {
        let mut brightness = Vec::new();
        let mut previous: Option<Vec<[u8; 3]>> = None;
        for (i, page) in PAGES.iter().enumerate() {
            xdo(&["windowfocus", "--sync", &window]);
            xdo(&["key", &format!("alt+{}", i + 1)]);
            let title = format!("^BurnCloud · {page}$");
            let mut titled = String::new();
            wait_until(&format!("the {page} page"), Duration::from_secs(20), || {
                titled = String::from_utf8_lossy(&xdo(&["search", "--name", &title]).stdout)
                    .lines()
                    .next()
                    .unwrap_or("")
                    .to_string();
                !titled.is_empty()
            });
            // The page's data arrives with the next reload (at most 2 s), then paint.
            std::thread::sleep(Duration::from_millis(2500));
            // The window's part of the screen.
            let geo =
                String::from_utf8_lossy(&xdo(&["getwindowgeometry", "--shell", &titled]).stdout)
                    .to_string();
            let g = |k: &str| -> String {
                geo.lines()
                    .find_map(|l| l.strip_prefix(&format!("{k}=")).map(str::to_string))
                    .unwrap_or_else(|| panic!("no {k} in {geo}"))
            };
            let crop = format!("{}x{}+{}+{}", g("WIDTH"), g("HEIGHT"), g("X"), g("Y"));
            let ppm = dir.path().join(format!("{page}.ppm"));
            let ok = Command::new("import")
                .args([
                    "-window",
                    "root",
                    "-crop",
                    &crop,
                    "+repage",
                    ppm.to_str().unwrap(),
                ])
                .env("DISPLAY", format!(":{display}"))
                .status()
                .unwrap()
                .success();
            assert!(ok, "import of the {page} page failed");
            let (n, px) = distinct_colours(&ppm);
            let log = std::fs::read_to_string(dir.path().join("app.log")).unwrap_or_default();
            assert!(
                n > 50,
                "the {page} page looks blank ({n} colours); app log:\n{log}"
            );
            assert!(
                !log.contains("panicked"),
                "the app panicked on {page}:\n{log}"
            );
            assert_ne!(
                previous.as_ref(),
                Some(&px),
                "{page} looks like the page before it"
            );
            brightness.push(
                px.iter()
                    .map(|p| (p[0] as f64 + p[1] as f64 + p[2] as f64) / 3.0)
                    .sum::<f64>()
                    / px.len().max(1) as f64,
            );
            previous = Some(px);
            let png = out_dir.join(format!("{}{suffix}.png", page.to_lowercase()));
            let ok = Command::new("convert")
                .args([
                    ppm.to_str().unwrap(),
                    "-strip",
                    "-colors",
                    "96",
                    png.to_str().unwrap(),
                ])
                .status()
                .unwrap()
                .success();
            assert!(ok, "convert {page} to PNG");
        }
        brightness
    };
    let light = tour("");
    // The same pages in the dark theme (the Settings page's choice, saved where the app
    // keeps it; each page change reads it again).
    gateway_core::store::Store::open(&dir.path().join("burncloud.db"))
        .unwrap()
        .with(|c| gateway_core::store::settings::set(c, "desktop.theme", "dark"))
        .unwrap();
    let dark = tour("-dark");
    for ((page, l), d) in PAGES.iter().zip(&light).zip(&dark) {
        assert!(
            d + 40.0 < *l,
            "{page} is not dark: mean brightness {d:.0} vs {l:.0} light"
        );
    }
    // The Users page (the last one visited) in the real window, by keyboard: a refused
    // form keeps what was typed, a successful one is emptied. From the navigation, Tab
    // reaches Username, Password, Email, Role, Group, Starting balance, Create user.
    xdo(&["windowfocus", "--sync", &window]);
    let keys = |keys: &[&str]| screen.keys(keys);
    let typed = |text: &str| screen.type_text(text, 60);
    // A password manager's auto-type: 10 ms per key.
    let fast = |text: &str| screen.type_text(text, 10);
    let set_clipboard = |text: &str| screen.set_clipboard(text);
    let copy_all = || screen.copy_all();
    let to_button = ["Tab"; 5];
    keys(&["Tab"]);
    typed("erin");
    keys(&["Tab"]);
    typed("short");
    keys(&to_button);
    keys(&["Return"]);
    std::thread::sleep(Duration::from_millis(1500));
    assert!(
        !usernames(&base, &jwt).contains(&"erin".to_string()),
        "a weak password is refused"
    );
    // Back to the password only: the username typed before the refusal is still there.
    keys(&["shift+Tab"; 5]);
    keys(&["ctrl+a"]);
    typed("Erin-pass-1");
    keys(&to_button);
    keys(&["Return"]);
    wait_until(
        "erin, made from the kept username",
        Duration::from_secs(10),
        || usernames(&base, &jwt).contains(&"erin".to_string()),
    );
    // After the success the form is empty: a name typed at the end of the field (Tab
    // selects a field's text; End goes past it) is not appended to the old one.
    std::thread::sleep(Duration::from_millis(500));
    keys(&["shift+Tab"; 6]);
    keys(&["End"]);
    typed("frank");
    keys(&["Tab", "End"]);
    typed("Frank-pass-1");
    keys(&to_button);
    keys(&["Return"]);
    wait_until("frank", Duration::from_secs(10), || {
        let names = usernames(&base, &jwt);
        assert!(!names.contains(&"erinfrank".to_string()), "{names:?}");
        names.contains(&"frank".to_string())
    });
    // Credit erin's balance in the window. From "Create user", Tab goes through the rows
    // in the table's order: the admin (unlimited: group, amount, Set, role, Disable),
    // carol (group, amount, Add, Subtract, Set, role, Disable), then erin's group and
    // amount; after the amount comes Add.
    keys(&["Tab"; 14]);
    typed("2.75");
    keys(&["Tab", "Return"]);
    wait_until(
        "erin's balance credited in the database",
        Duration::from_secs(10),
        || user_balance(&base, &jwt, "erin") == Some(2.75),
    );
    // The window shows the new balance in erin's row together with the message (the
    // page's text, selected and copied, once the message is there).
    let mut text = String::new();
    wait_until("the message of the credit", Duration::from_secs(10), || {
        text = copy_all();
        text.contains("erin now has $2.75 left.")
    });
    let table = &text[text.find("Balance").expect("the users table")..];
    let erin_row = match (table.find("erin"), table.find("frank")) {
        (Some(a), Some(b)) if a < b => &table[a..b],
        _ => panic!("erin's row, then frank's, in\n{text}"),
    };
    assert!(
        erin_row.contains("$2.75"),
        "erin's row shows the new balance: {erin_row:?} in\n{text}"
    );

    // Channels: a new channel typed at 10 ms per key (a password manager's auto-type),
    // its key pasted. Every character arrives; a refused Save keeps the form open with
    // every field as typed and each refused field marked; fixed, it saves what was typed.
    xdo(&["windowfocus", "--sync", &window]);
    xdo(&["key", "alt+3"]);
    wait_until("the Channels page", Duration::from_secs(20), || {
        !xdo(&["search", "--name", "^BurnCloud · Channels$"])
            .stdout
            .is_empty()
    });
    std::thread::sleep(Duration::from_millis(1500));
    // From the navigation (past Tokens … Users): Add channel, then Provider, Name.
    keys(&["Tab"; 7]);
    keys(&["Return"]);
    std::thread::sleep(Duration::from_millis(800));
    keys(&["Tab", "Tab"]);
    let name = "typed-at-10ms-per-key-abcdefghijklmnopqrstuvwxyz-0123456789";
    fast(name);
    std::thread::sleep(Duration::from_millis(1000));
    let held = copy_all();
    let found = name
        .chars()
        .zip(held.chars())
        .take_while(|(a, b)| a == b)
        .count();
    eprintln!(
        "typed {} characters at 10 ms per key; the field holds {} ({held:?}), the first {found} in order",
        name.len(),
        held.chars().count()
    );
    assert_eq!(held, name, "every character typed at 10 ms per key");
    // The key, pasted.
    let key = "sk-pasted-key-0123456789-abcdefghijklmnop";
    set_clipboard(key);
    keys(&["Tab", "ctrl+v"]);
    keys(&["Tab"]);
    fast(&format!("http://{upstream}"));
    // Models left empty (refused), then Mapping, Group(s), Priority, Weight: -2 (refused).
    keys(&["Tab", "Tab", "Tab", "Tab", "Tab", "ctrl+a"]);
    fast("-2");
    // Locality, Save.
    keys(&["Tab", "Tab", "Return"]);
    std::thread::sleep(Duration::from_millis(1500));
    assert!(
        !channel_names(&base, &jwt).contains(&name.to_string()),
        "a channel without models is refused"
    );
    let text = copy_all();
    assert!(
        text.contains("Model mapping"),
        "the form is still open: {text}"
    );
    for message in [
        "models must list at least one model",
        "weight must be 0 or more",
    ] {
        assert!(
            text.contains(message),
            "{message:?} is shown with the form: {text}"
        );
    }
    // Back from Save to Weight (Locality between) and Models (Group, Priority, Mapping
    // between): the fixes; the name, pasted key and base URL are still as typed.
    keys(&["shift+Tab", "shift+Tab", "ctrl+a"]);
    fast("3");
    keys(&["shift+Tab"; 4]);
    fast("fast-model");
    keys(&["Tab"; 6]);
    keys(&["Return"]);
    wait_until(
        "the channel saved from the kept fields",
        Duration::from_secs(10),
        || channel_names(&base, &jwt).contains(&name.to_string()),
    );
    let saved = channel(&base, &jwt, name);
    assert_eq!(saved["base_url"], format!("http://{upstream}"), "{saved}");
    assert_eq!(saved["models"], "fast-model", "{saved}");
    assert_eq!(saved["weight"], 3, "{saved}");
    // The pasted key is the channel's key: the upstream receives it.
    let creds: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(dir.path().join("desktop-credentials.json")).unwrap(),
    )
    .unwrap();
    let r = reqwest::blocking::Client::new()
        .post(format!("{base}/v1/chat/completions"))
        .bearer_auth(creds["key"].as_str().unwrap())
        .json(&serde_json::json!({"model": "fast-model", "messages": [{"role": "user", "content": "Hi"}]}))
        .send()
        .unwrap();
    assert!(r.status().is_success(), "{}", r.text().unwrap());
    assert_eq!(
        fake.last().unwrap().authorization.as_deref(),
        Some(format!("Bearer {key}").as_str())
    );

    // Row actions are within the window at its default size (1100×720): Tab from the last
    // row's Disable to its Delete changes only those two buttons' pixels (their focus
    // rings). When the actions sat right of the visible area, each focus scrolled the
    // table sideways and every row moved.
    // The page window (the first "^BurnCloud" match can be a 10×10 helper window).
    let page_window = screen.window("^BurnCloud · ", Duration::from_secs(10));
    let window_shot = |name: &str| -> (usize, usize, Vec<[u8; 3]>) {
        let geo =
            String::from_utf8_lossy(&xdo(&["getwindowgeometry", "--shell", &page_window]).stdout)
                .to_string();
        let g = |k: &str| -> String {
            geo.lines()
                .find_map(|l| l.strip_prefix(&format!("{k}=")).map(str::to_string))
                .unwrap_or_else(|| panic!("no {k} in {geo}"))
        };
        // Kept under the target dir, for a failure's diagnosis.
        let checks = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("desktop-checks");
        std::fs::create_dir_all(&checks).unwrap();
        let ppm = checks.join(format!("{name}.ppm"));
        let crop = format!("{}x{}+{}+{}", g("WIDTH"), g("HEIGHT"), g("X"), g("Y"));
        let ok = Command::new("import")
            .args(["-window", "root", "-crop", &crop, "+repage"])
            .arg(&ppm)
            .env("DISPLAY", format!(":{display}"))
            .status()
            .unwrap()
            .success();
        assert!(ok, "import {name}");
        ppm_pixels(&std::fs::read(&ppm).unwrap())
    };
    let changed_box = |a: &(usize, usize, Vec<[u8; 3]>), b: &(usize, usize, Vec<[u8; 3]>)| {
        assert_eq!((a.0, a.1), (b.0, b.1), "the window kept its size");
        let (mut x0, mut y0, mut x1, mut y1, mut n) = (usize::MAX, usize::MAX, 0, 0, 0);
        for (i, (p, q)) in a.2.iter().zip(&b.2).enumerate() {
            if p != q {
                let (x, y) = (i % a.0, i / a.0);
                (x0, y0, x1, y1, n) = (x0.min(x), y0.min(y), x1.max(x), y1.max(y), n + 1);
            }
        }
        (n, x1.saturating_sub(x0) + 1, y1.saturating_sub(y0) + 1)
    };
    let before = window_shot("channels-default-size");
    assert_eq!((before.0, before.1), (1100, 720), "the default window size");
    // Channels afresh (no message above the table); from its navigation item: Tokens …
    // Users, Add channel, then each row's Test, Models, Edit, Disable, Delete.
    xdo(&["windowfocus", "--sync", &window]);
    xdo(&["key", "alt+2"]);
    std::thread::sleep(Duration::from_millis(800));
    xdo(&["key", "alt+3"]);
    std::thread::sleep(Duration::from_millis(1500));
    keys(&["Tab"; 7 + 9]);
    std::thread::sleep(Duration::from_millis(800));
    let on_disable = window_shot("channels-disable-focused");
    keys(&["Tab"]);
    std::thread::sleep(Duration::from_millis(800));
    let on_delete = window_shot("channels-delete-focused");
    let (n, w, h) = changed_box(&on_disable, &on_delete);
    assert!(
        n > 0 && w < 200 && h < 60,
        "Tab from Disable to Delete changed {n} pixels in a {w}×{h} box: the table moved"
    );
    // It was Delete: Return asks to confirm, naming the channel.
    keys(&["Return"]);
    screen.wait_for_text("the delete confirmation", Duration::from_secs(10), &["?"]);
    let text = copy_all();
    assert!(
        text.contains(&format!("Delete {name}?")),
        "the focused action was the last row's Delete: {text}"
    );

    // Each page opens at its top: Settings scrolled to its end, then Users shows its title
    // where the tour saw it (the pages share one scrolling area).
    xdo(&["key", "alt+8"]);
    std::thread::sleep(Duration::from_millis(1500));
    xdo(&["mousemove", "--window", &page_window, "700", "400"]);
    for _ in 0..30 {
        xdo(&["click", "5"]);
    }
    // Smooth scrolling ends before the page changes.
    std::thread::sleep(Duration::from_millis(2000));
    let scrolled = window_shot("settings-scrolled");
    xdo(&["key", "alt+9"]);
    std::thread::sleep(Duration::from_millis(2000));
    let users = window_shot("users-after-scroll");
    // The tour's shots (dark theme, as now) show each page unscrolled.
    let toured =
        |page: &str| ppm_pixels(&std::fs::read(dir.path().join(format!("{page}.ppm"))).unwrap());
    let top = |s: &(usize, usize, Vec<[u8; 3]>)| s.2[..s.0 * 90].to_vec();
    assert_ne!(
        top(&scrolled),
        top(&toured("Settings")),
        "Settings was scrolled away from its top"
    );
    let toured = toured("Users");
    let differ = top(&users)
        .iter()
        .zip(top(&toured))
        .filter(|(a, b)| **a != *b)
        .count();
    assert!(
        differ < users.0 * 90 / 100,
        "the Users page's top (title) is where it was when the page opened unscrolled: {differ} pixels differ"
    );

    // Keyboard focus is visible: Tab moves to a control on the page.
    xdo(&["key", "Tab"]);
    // A second launch on the same data folder: refused, naming the first, whose window
    // it brings forward; the first keeps serving.
    let again = Command::new(BIN)
        .env("DISPLAY", format!(":{display}"))
        .env("DBUS_SESSION_BUS_ADDRESS", &bus)
        .env("NO_AT_BRIDGE", "1")
        .env("BURNCLOUD_DATA_DIR", dir.path())
        .env("PORT", port.to_string())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&again.stderr);
    assert!(
        err.contains(&format!(
            "already running (pid {}, port {port})",
            app.0.id()
        )) && err.contains("brought to the front"),
        "{err}"
    );
    assert!(again.status.success(), "{err}");
    wait_until(
        "the first window shown on request",
        Duration::from_secs(10),
        || {
            std::fs::read_to_string(dir.path().join("app.log"))
                .unwrap_or_default()
                .contains("shown at the request of a second launch")
        },
    );
    assert!(
        reqwest::blocking::get(&health)
            .map(|r| r.status().is_success())
            .unwrap_or(false),
        "the first app keeps serving"
    );
    // A second app on the same (now busy) port: its window says so and it keeps running.
    let dir2 = tempfile::tempdir().unwrap();
    let mut second = screen.launch(dir2.path(), port, "app.log", &[]);
    wait_until("a second BurnCloud window", Duration::from_secs(60), || {
        String::from_utf8_lossy(&screen.xdo(&["search", "--name", "^BurnCloud"]).stdout)
            .lines()
            .count()
            >= 2
    });
    std::thread::sleep(Duration::from_secs(3));
    assert!(
        second.0.try_wait().unwrap().is_none(),
        "the app must not exit when its port is taken"
    );
    let log2 = std::fs::read_to_string(dir2.path().join("app.log")).unwrap_or_default();
    assert!(log2.contains("already in use"), "{log2}");
    drop(second);
    // Quit gracefully: SIGTERM ends the app.
    let _ = Command::new("kill").arg(app.0.id().to_string()).status();
    drop(app);
    drop(screen);
}
