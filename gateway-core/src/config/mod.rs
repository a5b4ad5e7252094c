//! Gateway configuration from the environment (see the contract's environment table).

use crate::store::Location;
use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;

use crate::burst::BurstSettings;
mod relay;

pub use relay::RelaySettings;

/// Everything the gateway needs to start.
#[derive(Debug, Clone)]
pub struct Config {
    pub host: IpAddr,
    pub port: u16,
    /// Directory for the database, the generated JWT secret, models and logs.
    pub data_dir: PathBuf,
    /// The database: a SQLite file, or PostgreSQL.
    pub database: Location,
    /// Explicit JWT secret (`JWT_SECRET`); when `None` one is generated and kept in the data dir.
    pub jwt_secret: Option<String>,
    /// Largest accepted request body, in bytes.
    pub max_body_bytes: usize,
    /// Relay timeouts, retry budget, breaker thresholds.
    pub relay: RelaySettings,
    /// Burst routing defaults (the console's saved changes go on top).
    pub burst: BurstSettings,
    /// Extra Host names the gateway answers to (`BURNCLOUD_ALLOWED_HOSTS`; `*` = any).
    pub allowed_hosts: Vec<String>,
    /// Creates the first admin (`admin`) non-interactively (`BURNCLOUD_ADMIN_PASSWORD`).
    pub admin_password: Option<String>,
    /// Warnings about ignored settings, for the binary to print at start.
    pub warnings: Vec<String>,
}

/// Shortest accepted `JWT_SECRET`, in bytes.
pub const MIN_JWT_SECRET_BYTES: usize = 32;

/// Configuration errors: always a message a person can act on.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("HOST={0:?} is not an IP address (use 127.0.0.1, 0.0.0.0 or ::1)")]
    BadHost(String),
    #[error("PORT={0:?} is not a port number (0-65535)")]
    BadPort(String),
    #[error(
        "DATABASE_URL={0:?} is not supported: use postgres://user:password@host:port/database, sqlite:<path> or a file path"
    )]
    BadDatabaseUrl(String),
    #[error(
        "DATABASE_URL names PostgreSQL, so JWT_SECRET must be set (the same value on every gateway on that database): it signs sessions and seals provider keys, e.g. `JWT_SECRET=$(openssl rand -hex 32)`"
    )]
    PostgresNeedsSecret,
    #[error("no data directory: set BURNCLOUD_DATA_DIR")]
    NoDataDir,
    #[error("burst routing setting: {0}")]
    Burst(String),
    #[error(
        "JWT_SECRET is {0} bytes long: use at least 32 random bytes (e.g. `openssl rand -hex 32`), or unset it to have one generated"
    )]
    ShortJwtSecret(usize),
}

/// The variables that set the listening host, the first set one winning.
pub const HOST_VARS: [&str; 2] = ["BURNCLOUD_HOST", "HOST"];
/// The variables that set the listening port, the first set one winning.
pub const PORT_VARS: [&str; 2] = ["BURNCLOUD_PORT", "PORT"];

impl Config {
    /// Read `BURNCLOUD_HOST`/`HOST`, `BURNCLOUD_PORT`/`PORT`, `BURNCLOUD_ALLOWED_HOSTS`, `BURNCLOUD_ADMIN_PASSWORD`, `BURNCLOUD_DATA_DIR`, `DATABASE_URL`/`BURNCLOUD_DATABASE_URL`, `JWT_SECRET`.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|k| std::env::var(k).ok())
    }

    /// Same as [`Config::from_env`] with an explicit variable lookup (for tests).
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let mut warnings = Vec::new();
        // BURNCLOUD_HOST / BURNCLOUD_PORT win; plain HOST is often the machine's name
        // (tcsh exports it), so a HOST that is not an address is ignored with a warning.
        let host = match get(HOST_VARS[0]).filter(|s| !s.is_empty()) {
            Some(h) => parse_host(&h).ok_or(ConfigError::BadHost(h))?,
            None => match get(HOST_VARS[1]).filter(|s| !s.is_empty()) {
                Some(h) => parse_host(&h).unwrap_or_else(|| {
                    warnings.push(format!(
                        "HOST={h:?} is not an IP address; listening on 127.0.0.1 (set BURNCLOUD_HOST to choose)"
                    ));
                    IpAddr::V4(Ipv4Addr::LOCALHOST)
                }),
                None => IpAddr::V4(Ipv4Addr::LOCALHOST),
            },
        };
        let port = match get(PORT_VARS[0])
            .filter(|s| !s.is_empty())
            .or_else(|| get(PORT_VARS[1]).filter(|s| !s.is_empty()))
        {
            Some(p) => p.parse().map_err(|_| ConfigError::BadPort(p))?,
            None => 3000,
        };
        let data_dir = match get("BURNCLOUD_DATA_DIR").filter(|s| !s.is_empty()) {
            Some(d) => PathBuf::from(d),
            None => directories::ProjectDirs::from("ai", "BurnCloud", "burncloud")
                .map(|p| p.data_dir().to_path_buf())
                .ok_or(ConfigError::NoDataDir)?,
        };
        let db_url = get("BURNCLOUD_DATABASE_URL")
            .or_else(|| get("DATABASE_URL"))
            .filter(|s| !s.is_empty());
        let jwt_secret = get("JWT_SECRET").filter(|s| !s.is_empty());
        if let Some(s) = &jwt_secret
            && s.len() < MIN_JWT_SECRET_BYTES
        {
            return Err(ConfigError::ShortJwtSecret(s.len()));
        }
        let database = match db_url {
            Some(url) if url.starts_with("postgres://") || url.starts_with("postgresql://") => {
                Location::Postgres {
                    url,
                    secret: jwt_secret.clone().ok_or(ConfigError::PostgresNeedsSecret)?,
                }
            }
            Some(url) => Location::Sqlite(parse_database_url(&url)?),
            None => Location::Sqlite(data_dir.join("burncloud.db")),
        };
        Ok(Config {
            host,
            port,
            data_dir,
            database,
            jwt_secret,
            max_body_bytes: get("BURNCLOUD_MAX_BODY_BYTES")
                .and_then(|v| v.parse().ok())
                .unwrap_or(32 * 1024 * 1024),
            relay: RelaySettings::from_lookup(&get),
            burst: BurstSettings::from_lookup(&get).map_err(ConfigError::Burst)?,
            allowed_hosts: get("BURNCLOUD_ALLOWED_HOSTS")
                .map(|v| {
                    v.split(',')
                        .map(|h| h.trim().to_ascii_lowercase())
                        .filter(|h| !h.is_empty())
                        .collect()
                })
                .unwrap_or_default(),
            admin_password: get("BURNCLOUD_ADMIN_PASSWORD").filter(|s| !s.is_empty()),
            warnings,
        })
    }

    /// A configuration rooted in `data_dir`, listening on 127.0.0.1:`port` (tests, embedding).
    pub fn for_data_dir(data_dir: impl Into<PathBuf>, port: u16) -> Self {
        let data_dir = data_dir.into();
        Config {
            host: IpAddr::V4(Ipv4Addr::LOCALHOST),
            port,
            database: Location::Sqlite(data_dir.join("burncloud.db")),
            data_dir,
            jwt_secret: None,
            max_body_bytes: 32 * 1024 * 1024,
            relay: RelaySettings::default(),
            burst: BurstSettings::default(),
            allowed_hosts: Vec::new(),
            admin_password: None,
            warnings: Vec::new(),
        }
    }
}

/// An IP address, or `localhost`.
fn parse_host(h: &str) -> Option<IpAddr> {
    if h == "localhost" {
        return Some(IpAddr::V4(Ipv4Addr::LOCALHOST));
    }
    h.trim_start_matches('[').trim_end_matches(']').parse().ok()
}

fn parse_database_url(url: &str) -> Result<PathBuf, ConfigError> {
    let path = if let Some(rest) = url.strip_prefix("sqlite://") {
        rest
    } else if let Some(rest) = url.strip_prefix("sqlite:") {
        rest
    } else if url.contains("://") {
        return Err(ConfigError::BadDatabaseUrl(url.to_string()));
    } else {
        url
    };
    let path = path.split('?').next().unwrap_or(path);
    if path.is_empty() {
        return Err(ConfigError::BadDatabaseUrl(url.to_string()));
    }
    Ok(PathBuf::from(path))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn cfg(vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Config::from_lookup(|k| map.get(k).cloned())
    }

    #[test]
    fn defaults_are_loopback_3000() {
        let c = cfg(&[("BURNCLOUD_DATA_DIR", "/tmp/x")]).unwrap();
        assert_eq!(c.host.to_string(), "127.0.0.1");
        assert_eq!(c.port, 3000);
        assert_eq!(c.database, Location::Sqlite("/tmp/x/burncloud.db".into()));
    }

    #[test]
    fn database_url_forms() {
        let c = cfg(&[
            ("BURNCLOUD_DATA_DIR", "/d"),
            ("DATABASE_URL", "sqlite:burncloud.db"),
        ])
        .unwrap();
        assert_eq!(c.database, Location::Sqlite("burncloud.db".into()));
        let c = cfg(&[
            ("BURNCLOUD_DATA_DIR", "/d"),
            ("DATABASE_URL", "sqlite:///var/b.db?mode=rwc"),
        ])
        .unwrap();
        assert_eq!(c.database, Location::Sqlite("/var/b.db".into()));
        assert!(matches!(
            cfg(&[("BURNCLOUD_DATA_DIR", "/d"), ("DATABASE_URL", "mysql://x")]),
            Err(ConfigError::BadDatabaseUrl(_))
        ));
        // PostgreSQL: every gateway on it must share the secret.
        assert!(matches!(
            cfg(&[("DATABASE_URL", "postgres://bc:pw@db/bc")]),
            Err(ConfigError::PostgresNeedsSecret)
        ));
        let secret = "0123456789abcdef0123456789abcdef";
        let c = cfg(&[
            ("BURNCLOUD_DATABASE_URL", "postgres://bc:pw@db/bc"),
            ("JWT_SECRET", secret),
        ])
        .unwrap();
        assert_eq!(
            c.database,
            Location::Postgres {
                url: "postgres://bc:pw@db/bc".into(),
                secret: secret.into()
            }
        );
    }

    #[test]
    fn bad_port_and_host_are_clear() {
        assert!(
            cfg(&[("PORT", "http")])
                .unwrap_err()
                .to_string()
                .contains("PORT")
        );
        assert!(
            cfg(&[("BURNCLOUD_HOST", "my host")])
                .unwrap_err()
                .to_string()
                .contains("HOST")
        );
    }

    #[test]
    fn burncloud_names_win_and_a_hostname_in_host_is_ignored() {
        let c = cfg(&[
            ("BURNCLOUD_DATA_DIR", "/d"),
            ("HOST", "0.0.0.0"),
            ("PORT", "4000"),
            ("BURNCLOUD_HOST", "127.0.0.1"),
            ("BURNCLOUD_PORT", "4100"),
        ])
        .unwrap();
        assert_eq!((c.host.to_string(), c.port), ("127.0.0.1".into(), 4100));
        // tcsh exports the machine's name as HOST.
        let c = cfg(&[("BURNCLOUD_DATA_DIR", "/d"), ("HOST", "mybox.lan")]).unwrap();
        assert_eq!(c.host.to_string(), "127.0.0.1");
        assert!(c.warnings[0].contains("mybox.lan"), "{:?}", c.warnings);
    }

    #[test]
    fn short_jwt_secrets_are_refused() {
        let e = cfg(&[("BURNCLOUD_DATA_DIR", "/d"), ("JWT_SECRET", "secret")]).unwrap_err();
        assert!(e.to_string().contains("at least 32"), "{e}");
        let long = "x".repeat(32);
        assert!(cfg(&[("BURNCLOUD_DATA_DIR", "/d"), ("JWT_SECRET", &long)]).is_ok());
    }

    #[test]
    fn allowed_hosts_and_admin_password() {
        let c = cfg(&[
            ("BURNCLOUD_DATA_DIR", "/d"),
            ("BURNCLOUD_ALLOWED_HOSTS", " Gateway.Lan ,, box.example "),
            ("BURNCLOUD_ADMIN_PASSWORD", "Very-secret-1"),
        ])
        .unwrap();
        assert_eq!(c.allowed_hosts, vec!["gateway.lan", "box.example"]);
        assert_eq!(c.admin_password.as_deref(), Some("Very-secret-1"));
    }
}
