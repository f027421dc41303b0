//! Starting and stopping one throwaway cluster.

use std::fs;
use std::io::Read;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::os::{self, Account};
use crate::{find_server_binaries, Error, Result, ServerBinaries};

/// Prefix of every cluster folder in the temp directory; the owner's process
/// id follows, so that folders of dead owners can be found and removed.
const FOLDER_PREFIX: &str = "airsync-pg-";
const SUPERUSER: &str = "postgres";
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// How to start a cluster.
#[derive(Debug, Clone, Default)]
pub struct ClusterOptions {
    /// Port to listen on; a free one when `None`.
    pub port: Option<u16>,
    /// Where to put the cluster's folder; the system temp directory when `None`.
    pub parent_dir: Option<PathBuf>,
    /// Most client connections the server accepts (default 200).
    pub max_connections: Option<u32>,
}

/// A running throwaway cluster. Dropping it stops the server and removes its
/// folder.
#[derive(Debug)]
pub struct Cluster {
    root: PathBuf,
    port: u16,
    max_connections: u32,
    server: Option<Child>,
}

impl Cluster {
    /// Runs `initdb` into a new temporary folder and starts the server on a
    /// free loopback port, with fsync off. The server quits when the calling
    /// thread exits: start it from a thread that lives as long as it is needed.
    pub fn start(options: &ClusterOptions) -> Result<Cluster> {
        let binaries = find_server_binaries()?;
        let parent = options
            .parent_dir
            .clone()
            .unwrap_or_else(std::env::temp_dir);
        remove_abandoned_clusters(&parent);

        let account = os::server_account();
        let root = create_root(&parent, account)?;
        let max_connections = options.max_connections.unwrap_or(200);
        let mut cluster = Cluster {
            root,
            port: 0,
            max_connections,
            server: None,
        };
        cluster.initdb(&binaries, account)?;

        // A port found free may be taken before the server binds it; try again
        // with another one in that case.
        let mut last_error = None;
        for _ in 0..5 {
            let port = match options.port {
                Some(port) => port,
                None => free_port(&cluster.root)?,
            };
            match cluster.run_server(&binaries, account, port) {
                Ok(()) => return Ok(cluster),
                Err(err)
                    if options.port.is_none() && cluster.log_tail().contains("could not bind") =>
                {
                    last_error = Some(err);
                }
                Err(err) => return Err(err),
            }
        }
        Err(last_error.unwrap_or_else(|| Error::Start {
            reason: "no free port".into(),
            log: String::new(),
        }))
    }

    /// The port the server listens on, on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The cluster's folder (data directory, socket and log inside).
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// A connection URL for `database`, as the superuser `postgres`.
    pub fn url(&self, database: &str) -> String {
        format!("postgres://{SUPERUSER}@127.0.0.1:{}/{database}", self.port)
    }

    /// Stops the server (immediately: the data is thrown away) and removes the
    /// folder. Safe to call twice.
    pub fn stop(&mut self) {
        self.quit_server();
        let _ = fs::remove_dir_all(&self.root);
    }

    /// Restarts the server as after a crash: it quits at once, dropping every
    /// connection without a shutdown checkpoint, and starts again on the same
    /// data and port, recovering from its write-ahead log. Like
    /// [`Cluster::start`], call it from a thread that outlives the server.
    pub fn restart(&mut self) -> Result<()> {
        self.quit_server();
        let binaries = find_server_binaries()?;
        self.run_server(&binaries, os::server_account(), self.port)
    }

    /// Stops the server process at once (SIGQUIT), killing it if it lingers.
    fn quit_server(&mut self) {
        if let Some(mut server) = self.server.take() {
            os::signal(server.id() as i32, libc::SIGQUIT);
            let deadline = Instant::now() + Duration::from_secs(10);
            loop {
                match server.try_wait() {
                    Ok(Some(_)) | Err(_) => break,
                    Ok(None) if Instant::now() > deadline => {
                        let _ = server.kill();
                        let _ = server.wait();
                        break;
                    }
                    Ok(None) => std::thread::sleep(Duration::from_millis(20)),
                }
            }
        }
    }

    fn data_dir(&self) -> PathBuf {
        self.root.join("data")
    }

    fn log_path(&self) -> PathBuf {
        self.root.join("server.log")
    }

    fn initdb(&self, binaries: &ServerBinaries, account: Option<Account>) -> Result<()> {
        let mut command = Command::new(binaries.tool("initdb"));
        command
            .arg("--pgdata")
            .arg(self.data_dir())
            .args(["--username", SUPERUSER, "--auth", "trust"])
            .args(["--encoding", "UTF8", "--locale", "C", "--no-sync"])
            .stdin(Stdio::null());
        os::run_as(&mut command, account);
        let output = command.output().map_err(|source| Error::Io {
            action: "running",
            path: binaries.tool("initdb"),
            source,
        })?;
        if !output.status.success() {
            return Err(Error::Initdb {
                status: output.status,
                output: format!(
                    "{}{}",
                    String::from_utf8_lossy(&output.stdout),
                    String::from_utf8_lossy(&output.stderr)
                ),
            });
        }
        Ok(())
    }

    fn run_server(
        &mut self,
        binaries: &ServerBinaries,
        account: Option<Account>,
        port: u16,
    ) -> Result<()> {
        let max_connections = self.max_connections;
        let log_path = self.log_path();
        let log = fs::File::create(&log_path).map_err(|source| Error::Io {
            action: "creating",
            path: log_path.clone(),
            source,
        })?;
        if let Some(account) = account {
            chown(&log_path, account)?;
        }
        let log_err = log.try_clone().map_err(|source| Error::Io {
            action: "opening",
            path: log_path.clone(),
            source,
        })?;
        let mut command = Command::new(binaries.tool("postgres"));
        command
            .arg("-D")
            .arg(self.data_dir())
            .arg("-p")
            .arg(port.to_string())
            .arg("-k")
            .arg(&self.root)
            .args(["-c", "listen_addresses=127.0.0.1"])
            // No fsync, but commits wait for their WAL write: a server that
            // is killed or restarted keeps every commit it acknowledged.
            .args(["-c", "fsync=off"])
            .args(["-c", "full_page_writes=off"])
            .arg("-c")
            .arg(format!("max_connections={max_connections}"))
            .args([
                "-c",
                "shared_buffers=128MB",
                "-c",
                "log_min_messages=warning",
            ])
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log_err);
        os::run_as(&mut command, account);
        os::quit_with_parent(&mut command);
        let child = command.spawn().map_err(|source| Error::Io {
            action: "running",
            path: binaries.tool("postgres"),
            source,
        })?;
        self.server = Some(child);
        self.port = port;
        self.wait_until_ready()
    }

    /// Waits for `postmaster.pid` to report `ready`, which the server writes
    /// once it accepts connections.
    fn wait_until_ready(&mut self) -> Result<()> {
        let pid_file = self.data_dir().join("postmaster.pid");
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if let Some(server) = self.server.as_mut() {
                if let Ok(Some(status)) = server.try_wait() {
                    self.server = None;
                    return Err(Error::Start {
                        reason: format!("the server exited with {status}"),
                        log: self.log_tail(),
                    });
                }
            }
            let ready = fs::read_to_string(&pid_file)
                .map(|text| text.lines().nth(7).map(str::trim) == Some("ready"))
                .unwrap_or(false);
            if ready {
                return Ok(());
            }
            if Instant::now() > deadline {
                let log = self.log_tail();
                self.stop_server_only();
                return Err(Error::Start {
                    reason: format!("not ready after {START_TIMEOUT:?}"),
                    log,
                });
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    fn stop_server_only(&mut self) {
        if let Some(mut server) = self.server.take() {
            let _ = server.kill();
            let _ = server.wait();
        }
    }

    fn log_tail(&self) -> String {
        let mut text = String::new();
        if let Ok(mut file) = fs::File::open(self.log_path()) {
            let _ = file.read_to_string(&mut text);
        }
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Creates `<parent>/airsync-pg-<pid>-<nanos>` owned by the server account.
fn create_root(parent: &Path, account: Option<Account>) -> Result<PathBuf> {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or_default();
    let root = parent.join(format!("{FOLDER_PREFIX}{}-{nanos:09}", std::process::id()));
    fs::create_dir_all(&root).map_err(|source| Error::Io {
        action: "creating",
        path: root.clone(),
        source,
    })?;
    if let Some(account) = account {
        chown(&root, account)?;
    }
    Ok(root)
}

fn chown(path: &Path, account: Account) -> Result<()> {
    std::os::unix::fs::chown(path, Some(account.uid), Some(account.gid)).map_err(|source| {
        Error::Io {
            action: "changing the owner of",
            path: path.to_owned(),
            source,
        }
    })
}

fn free_port(root: &Path) -> Result<u16> {
    let listener = TcpListener::bind("127.0.0.1:0").map_err(|source| Error::Io {
        action: "finding a free port for",
        path: root.to_owned(),
        source,
    })?;
    listener
        .local_addr()
        .map(|addr| addr.port())
        .map_err(|source| Error::Io {
            action: "finding a free port for",
            path: root.to_owned(),
            source,
        })
}

/// Removes cluster folders whose owning process is gone (it was killed before
/// it could clean up), stopping a server still running in one.
fn remove_abandoned_clusters(parent: &Path) {
    let Ok(entries) = fs::read_dir(parent) else {
        return;
    };
    for entry in entries.filter_map(|e| e.ok()) {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(owner) = name
            .strip_prefix(FOLDER_PREFIX)
            .and_then(|rest| rest.split('-').next())
            .and_then(|pid| pid.parse::<i32>().ok())
        else {
            continue;
        };
        if os::process_alive(owner) {
            continue;
        }
        let pid_file = entry.path().join("data").join("postmaster.pid");
        if let Some(server) = fs::read_to_string(pid_file).ok().and_then(|text| {
            text.lines()
                .next()
                .and_then(|l| l.trim().parse::<i32>().ok())
        }) {
            // The id may have been reused by an unrelated process since.
            let comm = fs::read_to_string(format!("/proc/{server}/comm")).unwrap_or_default();
            if comm.trim() == "postgres" {
                os::signal(server, libc::SIGQUIT);
            }
        }
        let _ = fs::remove_dir_all(entry.path());
    }
}
