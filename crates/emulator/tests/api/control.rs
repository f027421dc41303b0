//! Control endpoints under /_emulator/.

use serde_json::json;

use crate::support::{emulator, people, start, Client, BASE};
use airsync_emulator::EmulatorConfig;

#[tokio::test]
async fn control_endpoints_are_off_without_control_but_stats_are_served() {
    let emu = emulator().await;
    let client = Client::new(&emu);
    client.post("/_emulator/reset", json!({})).await.expect(404);
    let stats = client.get("/_emulator/stats").await.expect(200);
    assert_eq!(stats["total"], json!(0));
}

#[tokio::test]
async fn control_endpoints_edit_as_a_person_dump_advance_and_reset() {
    let emu = start(EmulatorConfig::new().without_limits().with_control()).await;
    let table = people(&emu);
    let client = Client::new(&emu);
    let edit = client
        .post(
            &format!("/_emulator/bases/{BASE}/tables/People/edit"),
            json!({"create": [{"Name": "Ada"}, {"Name": "Bob"}]}),
        )
        .await
        .expect(200);
    assert_eq!(edit["created"].as_array().map(Vec::len), Some(2));
    let dump = client
        .get(&format!(
            "/_emulator/bases/{BASE}/tables/{}/records",
            table.id
        ))
        .await
        .expect(200);
    assert_eq!(dump["records"].as_array().map(Vec::len), Some(2));
    let before = client.get("/_emulator/clock").await.expect(200);
    let after = client
        .post("/_emulator/clock/advance", json!({"seconds": 3600}))
        .await
        .expect(200);
    assert_ne!(before["now"], after["now"]);
    client
        .post(
            "/_emulator/faults",
            json!({"count": 1, "kind": "unavailable"}),
        )
        .await
        .expect(200);
    client.get(&format!("/v0/{BASE}/People")).await.expect(503);
    let view = client
        .post(
            &format!("/_emulator/bases/{BASE}/tables/People/views"),
            json!({"name": "Only Ada", "filterByFormula": "{Name}='Ada'"}),
        )
        .await
        .expect(200);
    assert!(view["id"].as_str().expect("id").starts_with("viw"));
    let page = client
        .get(&format!("/v0/{BASE}/People?view=Only%20Ada"))
        .await
        .expect(200);
    assert_eq!(page["records"].as_array().map(Vec::len), Some(1));
    let stats = client.get("/_emulator/stats").await.expect(200);
    assert_eq!(stats["bases"][BASE]["by_status"]["503"], json!(1));
    client
        .put(
            "/_emulator/settings",
            json!({"rateLimitPerBase": 1, "latencyMs": null}),
        )
        .await
        .expect(200);
    client.post("/_emulator/reset", json!({})).await.expect(200);
    client.get(&format!("/v0/{BASE}/People")).await.expect(403);
    assert_eq!(
        client.get("/_emulator/stats").await.expect(200)["bases"][BASE]["total"],
        json!(1)
    );
}
