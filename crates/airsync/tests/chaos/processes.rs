//! The airsync processes of the chaos test: one `serve --no-worker` (API and
//! inbound sync) and the `worker` processes that are killed and respawned.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A process of the test, killed if the test ends early (or is killed); its standard error
/// (the JSON log) goes to a file, shown when the test fails.
pub struct Process {
    pub name: String,
    child: Child,
    log: PathBuf,
}

impl Process {
    pub fn spawn(name: &str, args: &[&str], env: &[(String, String)], logs: &Path) -> Process {
        let log = logs.join(format!("{name}.log"));
        let file = File::options()
            .create(true)
            .append(true)
            .open(&log)
            .expect("log file");
        let mut command = Command::new(env!("CARGO_BIN_EXE_airsync"));
        command
            .args(args)
            .env_clear()
            .envs(env.iter().map(|(k, v)| (k, v)))
            .stdout(Stdio::null())
            .stderr(file);
        // Killed with the test's thread, even when a timeout kills the run.
        airsync_pgtemp::kill_with_parent(&mut command);
        let child = command.spawn().expect("spawn airsync");
        Process {
            name: name.to_owned(),
            child,
            log,
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// SIGKILL: no warning, no clean-up.
    pub fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM, then waits for a clean exit.
    pub fn stop(mut self) {
        // SAFETY: kill with a valid pid and signal.
        #[allow(unsafe_code)]
        unsafe {
            libc::kill(self.child.id() as i32, libc::SIGTERM);
        }
        let deadline = Instant::now() + Duration::from_secs(40);
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                assert!(
                    status.success(),
                    "{} exited with {status}:\n{}",
                    self.name,
                    self.log_tail(40)
                );
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("{} did not stop within 40 s of SIGTERM", self.name);
    }

    /// Resident memory in KiB, from /proc.
    pub fn rss_kib(&self) -> Option<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid())).ok()?;
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
    }

    pub fn log_tail(&self, lines: usize) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A free loopback port.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// Waits for `GET {url}/api/health` to answer 200.
pub async fn wait_healthy(http: &reqwest::Client, url: &str, serve: &mut Process) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok(answer) = http.get(format!("{url}/api/health")).send().await {
            if answer.status().is_success() {
                return;
            }
        }
        assert!(serve.is_running(), "serve exited:\n{}", serve.log_tail(40));
        assert!(
            Instant::now() < deadline,
            "serve not healthy:\n{}",
            serve.log_tail(40)
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
