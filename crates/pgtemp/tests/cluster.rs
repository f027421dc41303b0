//! A throwaway cluster starts, serves, and leaves nothing behind, even when
//! its owner is killed.

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use airsync_pgtemp::{Cluster, ClusterOptions};

const CHILD_ENV: &str = "AIRSYNC_PGTEMP_TEST_CHILD_DIR";

fn server_pid(root: &std::path::Path) -> i32 {
    let text =
        std::fs::read_to_string(root.join("data").join("postmaster.pid")).expect("postmaster.pid");
    text.lines()
        .next()
        .and_then(|l| l.trim().parse().ok())
        .expect("pid line")
}

fn alive(pid: i32) -> bool {
    std::path::Path::new(&format!("/proc/{pid}")).exists()
        && !std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .unwrap_or_default()
            .contains(") Z ")
}

fn wait_until(deadline: Duration, mut condition: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + deadline;
    while Instant::now() < end {
        if condition() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    condition()
}

#[test]
fn a_cluster_accepts_connections_and_is_removed_when_stopped() {
    let mut cluster = Cluster::start(&ClusterOptions::default()).expect("start");
    let root = cluster.root().to_owned();
    let pid = server_pid(&root);
    std::net::TcpStream::connect(("127.0.0.1", cluster.port())).expect("the server listens");
    assert!(cluster
        .url("postgres")
        .starts_with("postgres://postgres@127.0.0.1:"));

    cluster.stop();
    assert!(!root.exists(), "{root:?} was not removed");
    assert!(
        wait_until(Duration::from_secs(5), || !alive(pid)),
        "server {pid} still runs"
    );
}

#[test]
fn a_restarted_cluster_comes_back_on_its_port_with_a_new_server() {
    let mut cluster = Cluster::start(&ClusterOptions::default()).expect("start");
    let (port, before) = (cluster.port(), server_pid(cluster.root()));
    cluster.restart().expect("restart");
    assert_eq!(cluster.port(), port);
    let after = server_pid(cluster.root());
    assert_ne!(before, after, "the server was not restarted");
    assert!(
        wait_until(Duration::from_secs(5), || !alive(before)),
        "the old server {before} still runs"
    );
    std::net::TcpStream::connect(("127.0.0.1", port)).expect("the server listens again");
    cluster.stop();
    assert!(wait_until(Duration::from_secs(5), || !alive(after)));
}

/// Runs in a child process (see the next test): starts a cluster, reports its
/// folder, and waits to be killed.
#[test]
#[ignore = "run by a_killed_owner_leaves_no_server_behind as a child process"]
fn child_starts_a_cluster_and_waits_to_be_killed() {
    let Some(report) = std::env::var_os(CHILD_ENV) else {
        return;
    };
    let cluster = Cluster::start(&ClusterOptions::default()).expect("start");
    // Written beside and renamed, so the parent never reads half a path.
    let report = PathBuf::from(report);
    let writing = report.with_extension("writing");
    std::fs::write(&writing, cluster.root().to_string_lossy().as_bytes()).expect("report");
    std::fs::rename(&writing, &report).expect("report");
    std::thread::sleep(Duration::from_secs(60));
    drop(cluster);
}

#[test]
fn a_killed_owner_leaves_no_server_behind() {
    let report = std::env::temp_dir().join(format!("airsync-pgtemp-report-{}", std::process::id()));
    let _ = std::fs::remove_file(&report);
    let mut child = Command::new(std::env::current_exe().expect("test binary"))
        .args([
            "--exact",
            "child_starts_a_cluster_and_waits_to_be_killed",
            "--ignored",
            "--nocapture",
        ])
        .env(CHILD_ENV, &report)
        .spawn()
        .expect("spawn child");
    assert!(
        wait_until(Duration::from_secs(30), || report.exists()),
        "child never started its cluster"
    );
    let root = PathBuf::from(std::fs::read_to_string(&report).expect("read report"));
    let pid = server_pid(&root);

    child.kill().expect("kill child");
    child.wait().expect("reap child");
    assert!(
        wait_until(Duration::from_secs(10), || !alive(pid)),
        "server {pid} outlived its killed owner"
    );

    // The next start removes the folder the killed owner left.
    let mut next = Cluster::start(&ClusterOptions::default()).expect("start");
    next.stop();
    assert!(!root.exists(), "{root:?} was not removed by the next start");
    let _ = std::fs::remove_file(&report);
}
