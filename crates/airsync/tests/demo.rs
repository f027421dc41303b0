//! `airsync demo` from start to Ctrl-C: it prints its URLs, the tour's
//! commands work as printed, and nothing is left behind.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

/// Kills the demo if the test ends early, so a failed test leaves no process.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Two ports free now, and different: both are held until both are known.
fn free_ports() -> (u16, u16) {
    let bind = || std::net::TcpListener::bind("127.0.0.1:0").expect("free port");
    let (first, second) = (bind(), bind());
    let port = |l: &std::net::TcpListener| l.local_addr().expect("free port").port();
    (port(&first), port(&second))
}

#[tokio::test(flavor = "multi_thread")]
async fn the_demo_starts_runs_its_tour_and_stops_on_ctrl_c_leaving_nothing_behind() {
    let (api_port, emulator_port) = free_ports();
    let mut demo = Command::new(env!("CARGO_BIN_EXE_airsync"))
        .args([
            "demo",
            "--listen",
            &format!("127.0.0.1:{api_port}"),
            "--emulator-listen",
            &format!("127.0.0.1:{emulator_port}"),
        ])
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("RUST_LOG", "warn")
        .env("AIRSYNC_LOG_FORMAT", "json")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start the demo");
    let stdout = demo.stdout.take().expect("stdout");
    let mut demo = KillOnDrop(demo);
    let started = Instant::now();
    let (lines_tx, lines_rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if lines_tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut printed = String::new();
    while !printed.contains("Sign in as the sample user") {
        let line = lines_rx
            .recv_timeout(Duration::from_secs(120).saturating_sub(started.elapsed()))
            .unwrap_or_else(|_| panic!("the demo printed no URLs within 2 minutes:\n{printed}"));
        printed.push_str(&line);
        printed.push('\n');
    }
    let api = format!("http://127.0.0.1:{api_port}");
    assert!(
        printed.contains(&format!("ops page      {api}/ops")),
        "{printed}"
    );

    // The tour: sign in, write through the API, see it in Airtable.
    let http = reqwest::Client::new();
    let login: Value = http
        .post(format!("{api}/api/auth/login"))
        .json(&json!({"email": "anna@example.com", "password": "demo-password-1"}))
        .send()
        .await
        .expect("login")
        .json()
        .await
        .expect("json");
    let token = login["accessToken"].as_str().expect("token").to_owned();
    let habits: Value = http
        .get(format!("{api}/api/methods/habits"))
        .bearer_auth(&token)
        .send()
        .await
        .expect("habits")
        .json()
        .await
        .expect("json");
    let habit = habits["items"][0]["id"]
        .as_str()
        .expect("a habit")
        .to_owned();
    let today = chrono::Utc::now().date_naive().to_string();
    let posted = http
        .post(format!("{api}/api/habit-usage"))
        .bearer_auth(&token)
        .json(&json!({"methodId": habit, "usedOn": today}))
        .send()
        .await
        .expect("post");
    assert!(
        posted.status().is_success(),
        "{}",
        posted.text().await.unwrap_or_default()
    );
    // The emulator's control endpoint reads the table without using the
    // base's rate budget, which the worker needs.
    let airtable = format!("http://127.0.0.1:{emulator_port}/_emulator/bases/appDEMOCOACHBASE1/tables/Habit%20usage/records");
    // Behind the sample data's own pushes, at 5 requests a second.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let records: Value = http
            .get(&airtable)
            .bearer_auth("patDEMODEMODEMODE.demo")
            .send()
            .await
            .expect("airtable")
            .json()
            .await
            .expect("json");
        if records["records"].as_array().is_some_and(|r| r.len() == 1) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the habit usage never reached Airtable: {records}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let programs: Value = http
        .get(format!("{api}/api/programs"))
        .bearer_auth(&token)
        .send()
        .await
        .expect("programs")
        .json()
        .await
        .expect("json");
    assert_eq!(
        programs["items"].as_array().map(Vec::len),
        Some(1),
        "{programs}"
    );

    // Ctrl-C stops everything.
    // SAFETY: kill with a valid pid and signal.
    #[allow(unsafe_code)]
    unsafe {
        libc::kill(demo.0.id() as i32, libc::SIGINT);
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = demo.0.try_wait().expect("wait") {
            break status;
        }
        assert!(Instant::now() < deadline, "the demo did not stop on Ctrl-C");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "the demo exited with {status}");
    assert!(
        http.get(format!("{api}/api/health")).send().await.is_err(),
        "the server still answers"
    );
}
