//! Gateway configuration from the environment (see the contract's environment table).

use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;

use crate::burst::BurstSettings;
use crate::relay::RelaySettings;

/// Everything the gateway needs to start.
#[derive(Debug, Clone)]
pub struct Config {
    pub host: IpAddr,
    pub port: u16,
    /// Directory for the database, the generated JWT secret, models and logs.
    pub data_dir: PathBuf,
    /// SQLite database file.
    pub database_path: PathBuf,
    /// Explicit JWT secret (`JWT_SECRET`); when `None` one is generated and kept in the data dir.
    pub jwt_secret: Option<String>,
    /// Largest accepted request body, in bytes.
    pub max_body_bytes: usize,
    /// Relay timeouts, retry budget, breaker thresholds.
    pub relay: RelaySettings,
    /// Burst routing defaults (the console's saved changes go on top).
    pub burst: BurstSettings,
}

/// Configuration errors: always a message a person can act on.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("HOST={0:?} is not an IP address (use 127.0.0.1, 0.0.0.0 or ::1)")]
    BadHost(String),
    #[error("PORT={0:?} is not a port number (0-65535)")]
    BadPort(String),
    #[error("DATABASE_URL={0:?} is not supported: use sqlite:<path> or a file path")]
    BadDatabaseUrl(String),
    #[error("no data directory: set BURNCLOUD_DATA_DIR")]
    NoDataDir,
    #[error("burst routing setting: {0}")]
    Burst(String),
}

impl Config {
    /// Read `HOST`, `PORT`, `BURNCLOUD_DATA_DIR`, `DATABASE_URL`/`BURNCLOUD_DATABASE_URL`, `JWT_SECRET`.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|k| std::env::var(k).ok())
    }

    /// Same as [`Config::from_env`] with an explicit variable lookup (for tests).
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let host = match get("HOST").filter(|s| !s.is_empty()) {
            Some(h) if h == "localhost" => IpAddr::V4(Ipv4Addr::LOCALHOST),
            Some(h) => h.parse().map_err(|_| ConfigError::BadHost(h))?,
            None => IpAddr::V4(Ipv4Addr::LOCALHOST),
        };
        let port = match get("PORT").filter(|s| !s.is_empty()) {
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
        let database_path = match db_url {
            Some(url) => parse_database_url(&url)?,
            None => data_dir.join("burncloud.db"),
        };
        Ok(Config {
            host,
            port,
            data_dir,
            database_path,
            jwt_secret: get("JWT_SECRET").filter(|s| !s.is_empty()),
            max_body_bytes: get("BURNCLOUD_MAX_BODY_BYTES")
                .and_then(|v| v.parse().ok())
                .unwrap_or(32 * 1024 * 1024),
            relay: RelaySettings::from_lookup(&get),
            burst: BurstSettings::from_lookup(&get).map_err(ConfigError::Burst)?,
        })
    }

    /// A configuration rooted in `data_dir`, listening on 127.0.0.1:`port` (tests, embedding).
    pub fn for_data_dir(data_dir: impl Into<PathBuf>, port: u16) -> Self {
        let data_dir = data_dir.into();
        Config {
            host: IpAddr::V4(Ipv4Addr::LOCALHOST),
            port,
            database_path: data_dir.join("burncloud.db"),
            data_dir,
            jwt_secret: None,
            max_body_bytes: 32 * 1024 * 1024,
            relay: RelaySettings::default(),
            burst: BurstSettings::default(),
        }
    }
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
        assert_eq!(c.database_path, PathBuf::from("/tmp/x/burncloud.db"));
    }

    #[test]
    fn database_url_forms() {
        let c = cfg(&[
            ("BURNCLOUD_DATA_DIR", "/d"),
            ("DATABASE_URL", "sqlite:burncloud.db"),
        ])
        .unwrap();
        assert_eq!(c.database_path, PathBuf::from("burncloud.db"));
        let c = cfg(&[
            ("BURNCLOUD_DATA_DIR", "/d"),
            ("DATABASE_URL", "sqlite:///var/b.db?mode=rwc"),
        ])
        .unwrap();
        assert_eq!(c.database_path, PathBuf::from("/var/b.db"));
        assert!(matches!(
            cfg(&[
                ("BURNCLOUD_DATA_DIR", "/d"),
                ("DATABASE_URL", "postgres://x")
            ]),
            Err(ConfigError::BadDatabaseUrl(_))
        ));
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
            cfg(&[("HOST", "my host")])
                .unwrap_err()
                .to_string()
                .contains("HOST")
        );
    }
}
