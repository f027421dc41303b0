//! State survives a restart with a data directory.

use airsync_emulator::EmulatorConfig;
use serde_json::json;

use crate::support::{people, start, Client, BASE};

#[tokio::test]
async fn records_schema_and_webhooks_survive_a_restart() {
    let dir = std::env::temp_dir().join(format!("airsync-emulator-test-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let emu = start(EmulatorConfig::new().without_limits().with_data_dir(&dir)).await;
    people(&emu);
    let client = Client::new(&emu);
    let ids = client
        .create_all("People", vec![json!({"Name": "Ada", "Level": "High"})])
        .await;
    client
        .post(
            &format!("/v0/bases/{BASE}/webhooks"),
            json!({"specification": {"options": {"filters": {"dataTypes": ["tableData"]}}}}),
        )
        .await
        .expect(200);
    emu.shutdown().await.expect("clean shutdown");

    let emu = start(EmulatorConfig::new().without_limits().with_data_dir(&dir)).await;
    let client = Client::new(&emu);
    let record = client
        .get(&format!("/v0/{BASE}/People/{}", ids[0]))
        .await
        .expect(200);
    assert_eq!(record["fields"], json!({"Name": "Ada", "Level": "High"}));
    let hooks = client
        .get(&format!("/v0/bases/{BASE}/webhooks"))
        .await
        .expect(200);
    assert_eq!(hooks["webhooks"].as_array().map(Vec::len), Some(1));
    let more = client
        .create_all("People", vec![json!({"Name": "Bob"})])
        .await;
    assert_ne!(more[0], ids[0]);
    emu.shutdown().await.expect("clean shutdown");
    let _ = std::fs::remove_dir_all(&dir);
}
