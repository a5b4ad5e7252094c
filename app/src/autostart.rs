//! Start with the system (opt-in, off by default): an XDG autostart entry on Linux, a
//! `Run` value in the user's registry on Windows, a LaunchAgent on macOS. Turning it off
//! removes exactly what turning it on wrote.

use std::path::{Path, PathBuf};

/// Where the autostart entry lives for this user, and what it contains.
#[derive(Debug, Clone, PartialEq)]
pub enum Entry {
    /// A file (Linux `.desktop`, macOS LaunchAgent plist).
    File { path: PathBuf, contents: String },
    /// `HKCU\Software\Microsoft\Windows\CurrentVersion\Run` value `BurnCloud`.
    RunKey { command: String },
}

const LABEL: &str = "dev.burncloud.app";

/// The entry for `exe` on this platform; `home` and `config` are the user's home and
/// config folders (`$HOME`, `$XDG_CONFIG_HOME` or `~/.config`).
pub fn entry(exe: &Path, home: &Path, config: &Path) -> Entry {
    if cfg!(windows) {
        Entry::RunKey {
            command: format!("\"{}\"", exe.display()),
        }
    } else if cfg!(target_os = "macos") {
        Entry::File {
            path: home
                .join("Library/LaunchAgents")
                .join(format!("{LABEL}.plist")),
            contents: launch_agent(exe),
        }
    } else {
        Entry::File {
            path: config.join("autostart/burncloud.desktop"),
            contents: xdg_entry(exe),
        }
    }
}

/// The XDG autostart entry (freedesktop Desktop Application Autostart spec).
pub fn xdg_entry(exe: &Path) -> String {
    format!(
        "[Desktop Entry]\nType=Application\nName=BurnCloud\nComment=BurnCloud gateway and tray, started at login\nExec=\"{}\"\nIcon=burncloud\nTerminal=false\nX-GNOME-Autostart-enabled=true\n",
        exe.display()
    )
}

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The macOS LaunchAgent: run at login, not kept alive (quitting from the tray stays quit).
pub fn launch_agent(exe: &Path) -> String {
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<!DOCTYPE plist PUBLIC \"-//Apple//DTD PLIST 1.0//EN\" \"http://www.apple.com/DTDs/PropertyList-1.0.dtd\">\n<plist version=\"1.0\">\n<dict>\n  <key>Label</key>\n  <string>{LABEL}</string>\n  <key>ProgramArguments</key>\n  <array>\n    <string>{}</string>\n  </array>\n  <key>RunAtLoad</key>\n  <true/>\n  <key>KeepAlive</key>\n  <false/>\n  <key>ProcessType</key>\n  <string>Interactive</string>\n</dict>\n</plist>\n",
        xml_escape(&exe.display().to_string())
    )
}

/// Where the entry lives, for people.
pub fn location(e: &Entry) -> String {
    match e {
        Entry::File { path, .. } => path.display().to_string(),
        Entry::RunKey { .. } => format!("{RUN_KEY}\\BurnCloud"),
    }
}

/// This user's folders: `(home, config)`.
pub fn user_dirs() -> Result<(PathBuf, PathBuf), String> {
    let home = std::env::var_os("HOME")
        .or_else(|| std::env::var_os("USERPROFILE"))
        .map(PathBuf::from)
        .ok_or("cannot tell the home folder (HOME is not set)")?;
    let config = std::env::var_os("XDG_CONFIG_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| home.join(".config"));
    Ok((home, config))
}

const RUN_KEY: &str = r"HKCU\Software\Microsoft\Windows\CurrentVersion\Run";

fn reg(args: &[&str]) -> Result<std::process::Output, String> {
    std::process::Command::new("reg")
        .args(args)
        .output()
        .map_err(|e| format!("cannot run reg.exe: {e}"))
}

/// Whether the entry is in place.
pub fn is_enabled(e: &Entry) -> bool {
    match e {
        Entry::File { path, .. } => path.exists(),
        Entry::RunKey { .. } => reg(&["query", RUN_KEY, "/v", "BurnCloud"])
            .map(|o| o.status.success())
            .unwrap_or(false),
    }
}

/// Write the entry.
pub fn enable(e: &Entry) -> Result<(), String> {
    match e {
        Entry::File { path, contents } => {
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir).map_err(|err| format!("{}: {err}", dir.display()))?;
            }
            let tmp = path.with_extension("tmp");
            std::fs::write(&tmp, contents).map_err(|err| format!("{}: {err}", tmp.display()))?;
            std::fs::rename(&tmp, path).map_err(|err| format!("{}: {err}", path.display()))
        }
        Entry::RunKey { command } => {
            let o = reg(&[
                "add",
                RUN_KEY,
                "/v",
                "BurnCloud",
                "/t",
                "REG_SZ",
                "/d",
                command,
                "/f",
            ])?;
            o.status
                .success()
                .then_some(())
                .ok_or_else(|| String::from_utf8_lossy(&o.stderr).trim().to_string())
        }
    }
}

/// Remove the entry (no error when it is not there).
pub fn disable(e: &Entry) -> Result<(), String> {
    match e {
        Entry::File { path, .. } => match std::fs::remove_file(path) {
            Ok(()) => Ok(()),
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(err) => Err(format!("{}: {err}", path.display())),
        },
        Entry::RunKey { .. } => {
            if !is_enabled(e) {
                return Ok(());
            }
            let o = reg(&["delete", RUN_KEY, "/v", "BurnCloud", "/f"])?;
            o.status
                .success()
                .then_some(())
                .ok_or_else(|| String::from_utf8_lossy(&o.stderr).trim().to_string())
        }
    }
}

/// `burncloud autostart on|off|status` for this executable and user.
pub fn run(cmd: crate::cli::AutostartCommand) -> Result<String, String> {
    let exe =
        std::env::current_exe().map_err(|e| format!("cannot tell where burncloud is: {e}"))?;
    let (home, config) = user_dirs()?;
    let e = entry(&exe, &home, &config);
    let where_ = location(&e);
    match cmd {
        crate::cli::AutostartCommand::On => {
            enable(&e)?;
            Ok(format!("BurnCloud will start at login ({where_})"))
        }
        crate::cli::AutostartCommand::Off => {
            disable(&e)?;
            Ok(format!(
                "BurnCloud will not start at login (removed {where_})"
            ))
        }
        crate::cli::AutostartCommand::Status => Ok(if is_enabled(&e) {
            format!("on ({where_})")
        } else {
            "off".into()
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_per_platform_name_the_executable() {
        let exe = Path::new("/opt/Burn & Cloud/burncloud");
        let x = xdg_entry(exe);
        assert!(x.starts_with("[Desktop Entry]\nType=Application\n"));
        assert!(x.contains("Exec=\"/opt/Burn & Cloud/burncloud\"\n"), "{x}");
        let p = launch_agent(exe);
        assert!(
            p.contains("<string>/opt/Burn &amp; Cloud/burncloud</string>"),
            "{p}"
        );
        assert!(p.contains("<key>RunAtLoad</key>\n  <true/>"));
    }

    #[test]
    fn on_off_status_round_trip_in_a_temporary_config_dir() {
        let dir = tempfile::tempdir().unwrap();
        let e = entry(
            Path::new("/usr/bin/burncloud"),
            dir.path(),
            &dir.path().join("cfg"),
        );
        if matches!(e, Entry::RunKey { .. }) {
            return; // the registry is exercised on Windows only
        }
        assert!(!is_enabled(&e), "off by default");
        enable(&e).unwrap();
        assert!(is_enabled(&e));
        let Entry::File { path, contents } = &e else {
            unreachable!()
        };
        assert_eq!(&std::fs::read_to_string(path).unwrap(), contents);
        enable(&e).unwrap(); // idempotent
        disable(&e).unwrap();
        assert!(!is_enabled(&e) && !path.exists());
        disable(&e).unwrap(); // nothing to remove is fine
    }
}
