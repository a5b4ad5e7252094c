//! A temporary PostgreSQL server for the tests (issue #22): Debian's `postgresql` package,
//! a fresh cluster in a temporary folder, listening on 127.0.0.1 only at a free port, with
//! a `burncloud` superuser and a random password (scram-sha-256). Dropping the
//! [`PgServer`] stops it and removes the folder.
//!
//! Nothing here is skipped quietly: a missing package, binary or user is an error that
//! says what to install.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

use crate::setup;

/// The variable that hands the server's URL to the tests (Rust and pytest).
pub const URL_ENV: &str = "BURNCLOUD_TEST_POSTGRES";
/// `postgres`: the tests run on the PostgreSQL backend instead of SQLite.
pub const BACKEND_ENV: &str = "BURNCLOUD_TEST_BACKEND";

/// The superuser `initdb` creates; the URL logs in as it.
pub const SUPERUSER: &str = "burncloud";

/// A running temporary PostgreSQL server. Stopped (`pg_ctl stop -m fast`) and its folder
/// removed on drop.
pub struct PgServer {
    /// `postgres://burncloud:<password>@127.0.0.1:<port>/postgres`.
    pub url: String,
    pub port: u16,
    pub password: String,
    /// The server's `bin` folder (`/usr/lib/postgresql/<major>/bin`): `psql`, `pg_ctl`, …
    pub bin_dir: PathBuf,
    /// The temporary folder: `data/` (the cluster), `socket/`, `pwfile`, `server.log`.
    dir: PathBuf,
    /// Running as root: the server runs as the `postgres` system user (initdb refuses root).
    as_postgres: bool,
}

impl PgServer {
    /// Install `postgresql` if missing, then initialise and start a throwaway cluster.
    pub fn start() -> Result<PgServer> {
        setup::ensure_packages(setup::POSTGRES_PACKAGES)?;
        let bin_dir = newest_bin_dir(Path::new("/usr/lib/postgresql"))?;
        let as_postgres = setup::is_root();
        if as_postgres && !user_exists("postgres") {
            bail!(
                "running as root but there is no `postgres` system user to run PostgreSQL as \
                 (initdb refuses root): reinstall the `postgresql` package, or run as a normal user"
            );
        }
        // As root the folder must be reachable by the `postgres` user: /tmp, not a TMPDIR
        // that may sit inside /root.
        let parent = if as_postgres {
            PathBuf::from("/tmp")
        } else {
            std::env::temp_dir()
        };
        let dir = parent.join(format!("burncloud-pg-{}", random_hex(6)?));
        private_dir(&dir)
            .with_context(|| format!("cannot create the PostgreSQL folder {}", dir.display()))?;
        let mut server = PgServer {
            url: String::new(),
            port: 0,
            password: random_hex(16)?,
            bin_dir,
            dir,
            as_postgres,
        };
        // From here on, a failure drops `server`, which removes the folder.
        server.init()?;
        // The port is picked by binding port 0 and releasing it: another process may take
        // it in between, so try a few times.
        let mut last = None;
        for _ in 0..3 {
            server.port = free_port()?;
            match server.pg_ctl_start() {
                Ok(()) => {
                    last = None;
                    break;
                }
                Err(e) => last = Some(e),
            }
        }
        if let Some(e) = last {
            return Err(e);
        }
        server.url = format!(
            "postgres://{SUPERUSER}:{}@127.0.0.1:{}/postgres",
            server.password, server.port
        );
        // Password authentication over TCP, exactly as the tests will connect.
        let version = server
            .psql("postgres", "SELECT version()")
            .context("the temporary PostgreSQL started but refuses the test login")?;
        eprintln!(
            "xtask: {} on 127.0.0.1:{}, data in {}",
            version.split(" on ").next().unwrap_or(&version),
            server.port,
            server.dir.display()
        );
        Ok(server)
    }

    /// The URL of database `db` on this server (same user and password).
    pub fn url_for(&self, db: &str) -> String {
        format!(
            "postgres://{SUPERUSER}:{}@127.0.0.1:{}/{db}",
            self.password, self.port
        )
    }

    /// Run one SQL command with `psql` on database `db`; returns its unaligned output.
    pub fn psql(&self, db: &str, sql: &str) -> Result<String> {
        let out = Command::new(self.bin_dir.join("psql"))
            .args(["-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-d"])
            .arg(self.url_for(db))
            .args(["-c", sql])
            .output()
            .context("cannot run psql")?;
        if !out.status.success() {
            bail!(
                "psql {sql:?} on {db} failed ({}): {}",
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
    }

    fn data(&self) -> PathBuf {
        self.dir.join("data")
    }

    /// A server command, run as `postgres` when we are root.
    fn command(&self, program: &str) -> Command {
        let path = self.bin_dir.join(program);
        if self.as_postgres {
            let mut cmd = Command::new("runuser");
            cmd.args(["-u", "postgres", "--"]).arg(path);
            cmd
        } else {
            Command::new(path)
        }
    }

    /// `initdb` with the superuser, its password and scram-sha-256 for every connection,
    /// then the test settings appended to `postgresql.conf`.
    fn init(&self) -> Result<()> {
        let pwfile = self.dir.join("pwfile");
        write_private(&pwfile, &format!("{}\n", self.password))?;
        std::fs::create_dir(self.dir.join("socket"))?;
        if self.as_postgres {
            checked(
                Command::new("chown")
                    .args(["-R", "postgres:postgres"])
                    .arg(&self.dir),
                "chown the PostgreSQL folder to postgres",
            )?;
        }
        checked(
            self.command("initdb")
                .arg("-D")
                .arg(self.data())
                .args(["-U", SUPERUSER, "--auth=scram-sha-256"])
                .arg(format!("--pwfile={}", pwfile.display()))
                // C collation: the same on every machine, no locale package needed.
                .args(["--encoding=UTF8", "--locale=C", "--no-sync"]),
            "initdb",
        )?;
        // Throwaway data: durability off, small memory. Connections: each test makes its
        // own database and a gateway holds a pool, so allow more than the default 100.
        let socket = self.dir.join("socket");
        let conf = format!(
            "\n# burncloud xtask: temporary test server\n\
             listen_addresses = '127.0.0.1'\n\
             unix_socket_directories = '{}'\n\
             max_connections = 300\n\
             shared_buffers = 32MB\n\
             fsync = off\n\
             synchronous_commit = off\n\
             full_page_writes = off\n",
            socket.display()
        );
        let conf_path = self.data().join("postgresql.conf");
        let mut text = std::fs::read_to_string(&conf_path)
            .with_context(|| format!("initdb wrote no {}", conf_path.display()))?;
        text.push_str(&conf);
        std::fs::write(&conf_path, text)?;
        Ok(())
    }

    fn pg_ctl_start(&self) -> Result<()> {
        checked(
            self.command("pg_ctl")
                .arg("-D")
                .arg(self.data())
                .arg("-l")
                .arg(self.dir.join("server.log"))
                .args(["-w", "-t", "60", "-o"])
                .arg(format!("-p {}", self.port))
                .arg("start"),
            &format!("pg_ctl start (port {})", self.port),
        )
        .with_context(|| {
            let log = std::fs::read_to_string(self.dir.join("server.log")).unwrap_or_default();
            format!("the PostgreSQL server log:\n{log}")
        })
    }

    /// The postmaster's pid while it runs.
    pub fn postmaster_pid(&self) -> Option<u32> {
        std::fs::read_to_string(self.data().join("postmaster.pid"))
            .ok()?
            .lines()
            .next()?
            .trim()
            .parse()
            .ok()
    }
}

impl Drop for PgServer {
    fn drop(&mut self) {
        if let Some(pid) = self.postmaster_pid() {
            let stopped = checked(
                self.command("pg_ctl")
                    .arg("-D")
                    .arg(self.data())
                    .args(["-m", "fast", "-w", "-t", "60", "stop"]),
                "pg_ctl stop",
            );
            if let Err(e) = stopped {
                // Immediate shutdown of that one postmaster (it stops its children).
                eprintln!("xtask: {e:#}; sending SIGQUIT to the postmaster {pid}");
                let _ = Command::new("kill")
                    .args(["-QUIT", &pid.to_string()])
                    .status();
                std::thread::sleep(std::time::Duration::from_secs(2));
            }
        }
        if let Err(e) = std::fs::remove_dir_all(&self.dir) {
            eprintln!("xtask: cannot remove {}: {e}", self.dir.display());
        }
    }
}

/// The `bin` folder of the newest PostgreSQL under `root` (`<root>/<major>/bin` with
/// `initdb`, `pg_ctl` and `psql`).
fn newest_bin_dir(root: &Path) -> Result<PathBuf> {
    let mut found: Vec<(Vec<u32>, PathBuf)> = Vec::new();
    if let Ok(entries) = std::fs::read_dir(root) {
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().to_string();
            let Some(version) = parse_version(&name) else {
                continue;
            };
            let bin = entry.path().join("bin");
            if ["initdb", "pg_ctl", "postgres", "psql"]
                .iter()
                .all(|b| bin.join(b).is_file())
            {
                found.push((version, bin));
            }
        }
    }
    found.sort();
    match found.pop() {
        Some((_, bin)) => Ok(bin),
        None => bail!(
            "no PostgreSQL server under {}/<version>/bin (initdb, pg_ctl, postgres, psql): \
             install Debian's `postgresql` package (`apt-get install postgresql`)",
            root.display()
        ),
    }
}

/// "15" → [15], "9.6" → [9, 6]; anything else is not a version folder.
fn parse_version(name: &str) -> Option<Vec<u32>> {
    name.split('.').map(|p| p.parse().ok()).collect()
}

fn user_exists(name: &str) -> bool {
    Command::new("id")
        .arg("-u")
        .arg(name)
        .output()
        .is_ok_and(|o| o.status.success())
}

/// A port nobody listens on right now (bound on 127.0.0.1, then released).
fn free_port() -> Result<u16> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(listener.local_addr()?.port())
}

/// `bytes` random bytes from the kernel, as hex.
fn random_hex(bytes: usize) -> Result<String> {
    let mut buf = vec![0u8; bytes];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut buf))
        .context("cannot read /dev/urandom")?;
    Ok(buf.iter().map(|b| format!("{b:02x}")).collect())
}

/// A folder only its owner can enter (the workspace also cross-builds for Windows, where
/// this module is never run).
fn private_dir(dir: &Path) -> std::io::Result<()> {
    #[cfg_attr(not(unix), allow(unused_mut))]
    let mut builder = std::fs::DirBuilder::new();
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir)
}

fn write_private(path: &Path, text: &str) -> Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options
        .open(path)
        .with_context(|| format!("cannot create {}", path.display()))?;
    file.write_all(text.as_bytes())?;
    Ok(())
}

/// Run a command quietly; on failure, fail with what it printed.
fn checked(cmd: &mut Command, what: &str) -> Result<()> {
    let out = cmd
        .output()
        .with_context(|| format!("cannot start {what} ({cmd:?})"))?;
    if !out.status.success() {
        bail!(
            "{what} failed ({}): {}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_sort_numerically() {
        assert_eq!(parse_version("15"), Some(vec![15]));
        assert_eq!(parse_version("9.6"), Some(vec![9, 6]));
        assert_eq!(parse_version("15-dev"), None);
        let mut v = vec![
            parse_version("9.6"),
            parse_version("16"),
            parse_version("15"),
        ];
        v.sort();
        assert_eq!(v.pop().unwrap(), Some(vec![16]));
    }

    #[test]
    fn newest_bin_dir_needs_the_server_binaries() {
        let root = std::env::temp_dir().join(format!("xtask-pg-{}", random_hex(6).unwrap()));
        for (version, bins) in [
            ("15", &["initdb", "pg_ctl", "postgres", "psql"][..]),
            ("16", &["initdb", "pg_ctl", "postgres", "psql"][..]),
            ("17", &["psql"][..]), // client only: not a server
        ] {
            let bin = root.join(version).join("bin");
            std::fs::create_dir_all(&bin).unwrap();
            for b in bins {
                std::fs::write(bin.join(b), "").unwrap();
            }
        }
        assert_eq!(newest_bin_dir(&root).unwrap(), root.join("16/bin"));
        let err = newest_bin_dir(&root.join("none")).unwrap_err().to_string();
        assert!(err.contains("postgresql"), "{err}");
        std::fs::remove_dir_all(&root).unwrap();
    }
}
