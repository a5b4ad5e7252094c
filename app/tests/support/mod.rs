//! Shared by the tests that run the real `burncloud router`.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_burncloud");

/// A running `burncloud router` child (killed on drop).
pub struct Router {
    pub child: Child,
    pub addr: String,
    /// Everything it printed on stdout so far.
    pub stdout: Arc<Mutex<Vec<String>>>,
}

impl Router {
    /// Start on 127.0.0.1:`port` (0: any free port) with `dir` as the data folder.
    pub fn start(dir: &std::path::Path, port: u16) -> Result<Router, String> {
        Self::start_with(
            dir,
            &[
                ("BURNCLOUD_HOST", "127.0.0.1"),
                ("BURNCLOUD_PORT", &port.to_string()),
            ],
        )
    }

    /// Start with these environment variables on top of the data folder.
    pub fn start_with(dir: &std::path::Path, env: &[(&str, &str)]) -> Result<Router, String> {
        Self::start_cmd(Command::new(BIN), dir, env)
    }

    /// Start `cmd` (the binary, or a wrapper running it) as `burncloud router`.
    pub fn start_cmd(
        mut cmd: Command,
        dir: &std::path::Path,
        env: &[(&str, &str)],
    ) -> Result<Router, String> {
        cmd.arg("router")
            .env("BURNCLOUD_DATA_DIR", dir)
            .env_remove("DATABASE_URL")
            .env_remove("BURNCLOUD_DATABASE_URL")
            .env_remove("HOST")
            .env_remove("PORT")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().map_err(|e| e.to_string())?;
        let stdout = child.stdout.take().unwrap();
        let mut reader = BufReader::new(stdout);
        let mut line = String::new();
        reader.read_line(&mut line).unwrap();
        let lines = Arc::new(Mutex::new(vec![line.clone()]));
        let sink = lines.clone();
        std::thread::spawn(move || {
            for l in reader.lines().map_while(Result::ok) {
                sink.lock().unwrap().push(l);
            }
        });
        match line.split("http://").nth(1) {
            Some(rest) => Ok(Router {
                addr: rest.split_whitespace().next().unwrap().to_string(),
                child,
                stdout: lines,
            }),
            None => {
                let status = child.wait().unwrap();
                let mut err = String::new();
                std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut err).unwrap();
                Err(format!("exit {:?}: {err}", status.code()))
            }
        }
    }

    pub fn base(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn port(&self) -> u16 {
        self.addr.rsplit(':').next().unwrap().parse().unwrap()
    }

    /// Wait (at most 5 s) for a stdout line containing `needle`.
    pub fn line_with(&self, needle: &str) -> Option<String> {
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Some(l) = self
                .stdout
                .lock()
                .unwrap()
                .iter()
                .find(|l| l.contains(needle))
            {
                return Some(l.clone());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }

    /// SIGTERM, then the exit code (panics after 10 s).
    pub fn terminate(mut self) -> i32 {
        signal(self.child.id(), 15);
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                return s.code().unwrap_or(-1);
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!("router did not stop on SIGTERM");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Router {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Send a signal by number.
pub fn signal(pid: u32, sig: i32) {
    let _ = Command::new("kill")
        .arg(format!("-{sig}"))
        .arg(pid.to_string())
        .status();
}
