//! Auth, rate limits, URL length, faults, latency and the counters.

use std::time::{Duration, Instant};

use airsync_emulator::{EmulatorConfig, FaultBurst, FaultKind, RateLimits};
use serde_json::json;

use crate::support::{emulator, enc, people, start, Client, BASE};

#[tokio::test]
async fn the_sixth_request_in_a_second_gets_429_and_the_base_stays_refused_for_30_seconds() {
    let emu = start(EmulatorConfig::new().with_frozen_clock(1_700_000_000_000)).await;
    people(&emu);
    let client = Client::new(&emu);
    for _ in 0..5 {
        client.get(&format!("/v0/{BASE}/People")).await.expect(200);
    }
    let body = client.get(&format!("/v0/{BASE}/People")).await.expect(429);
    assert_eq!(
        body,
        json!({"error": {"type": "RATE_LIMIT_REACHED", "message": "Rate limit exceeded. Please try again later"}})
    );
    emu.advance_clock(Duration::from_secs(29));
    client.get(&format!("/v0/{BASE}/People")).await.expect(429);
    emu.advance_clock(Duration::from_secs(1));
    client.get(&format!("/v0/{BASE}/People")).await.expect(200);
    let stats = emu.stats();
    assert_eq!(stats.count(BASE, 429), 2);
    assert_eq!(stats.count(BASE, 200), 6);
    assert_eq!(stats.base(BASE).rate_limited, 2);
    assert_eq!(stats.rate_limited, 2);
}

#[tokio::test]
async fn the_token_limit_counts_requests_to_every_base() {
    let emu = start(
        EmulatorConfig::new()
            .with_frozen_clock(0)
            .with_limits(RateLimits {
                per_base: 0,
                per_token: 3,
                penalty_secs: 30,
            }),
    )
    .await;
    let other = emu.create_base("Other").expect("base");
    let client = Client::new(&emu);
    client
        .get(&format!("/v0/meta/bases/{BASE}/tables"))
        .await
        .expect(200);
    client
        .get(&format!("/v0/meta/bases/{other}/tables"))
        .await
        .expect(200);
    client.get("/v0/meta/bases").await.expect(200);
    client
        .get(&format!("/v0/meta/bases/{other}/tables"))
        .await
        .expect_error(429, "RATE_LIMIT_REACHED");
}

#[tokio::test]
async fn limits_can_be_changed_while_running() {
    let emu = start(EmulatorConfig::new().with_frozen_clock(0)).await;
    people(&emu);
    emu.set_limits(RateLimits::off());
    let client = Client::new(&emu);
    for _ in 0..20 {
        client.get(&format!("/v0/{BASE}/People")).await.expect(200);
    }
}

#[tokio::test]
async fn missing_and_unknown_tokens_get_401_authentication_required() {
    let emu = emulator().await;
    people(&emu);
    let mut client = Client::new(&emu);
    client.token = "patSomeoneElse".into();
    let body = client.get(&format!("/v0/{BASE}/People")).await.expect(401);
    assert_eq!(
        body,
        json!({"error": {"type": "AUTHENTICATION_REQUIRED", "message": "Authentication required"}})
    );
    let resp = reqwest::get(format!("{}/v0/{BASE}/People", emu.url()))
        .await
        .expect("answered");
    assert_eq!(resp.status().as_u16(), 401);
    assert_eq!(emu.stats().count(BASE, 401), 2);
}

#[tokio::test]
async fn urls_of_16000_characters_get_414_and_post_list_records_takes_the_same_formula() {
    let emu = emulator().await;
    people(&emu);
    let client = Client::new(&emu);
    let ids: Vec<String> = (0..700)
        .map(|i| format!("RECORD_ID()='rec{i:014}'"))
        .collect();
    let formula = format!("OR({})", ids.join(","));
    let answer = client
        .get(&format!(
            "/v0/{BASE}/People?filterByFormula={}",
            enc(&formula)
        ))
        .await;
    assert_eq!(answer.status, 414);
    client
        .post(
            &format!("/v0/{BASE}/People/listRecords"),
            json!({"filterByFormula": formula}),
        )
        .await
        .expect(200);
}

#[tokio::test]
async fn injected_fault_bursts_answer_as_airtable_fails() {
    let emu = emulator().await;
    people(&emu);
    let client = Client::new(&emu);
    emu.inject_faults(FaultBurst {
        count: 2,
        kind: FaultKind::Unavailable,
        base: Some(BASE.into()),
    });
    client
        .get(&format!("/v0/{BASE}/People"))
        .await
        .expect_error(503, "RETRIABLE_ERROR");
    client
        .get(&format!("/v0/{BASE}/People"))
        .await
        .expect_error(503, "RETRIABLE_ERROR");
    client.get(&format!("/v0/{BASE}/People")).await.expect(200);
    emu.inject_faults(FaultBurst {
        count: 1,
        kind: FaultKind::BadGateway,
        base: None,
    });
    assert_eq!(client.get(&format!("/v0/{BASE}/People")).await.status, 502);
    emu.inject_faults(FaultBurst {
        count: 1,
        kind: FaultKind::ServerError,
        base: None,
    });
    assert_eq!(client.get(&format!("/v0/{BASE}/People")).await.status, 500);
    emu.inject_faults(FaultBurst {
        count: 1,
        kind: FaultKind::Drop,
        base: None,
    });
    let dropped = async {
        let resp = client
            .http
            .get(format!("{}/v0/{BASE}/People", emu.url()))
            .bearer_auth(&client.token)
            .send()
            .await?;
        resp.bytes().await
    }
    .await;
    assert!(dropped.is_err(), "the connection drops mid-answer");
    client.get(&format!("/v0/{BASE}/People")).await.expect(200);
}

#[tokio::test]
async fn a_fault_rate_of_one_fails_every_request_and_latency_delays_answers() {
    let emu = emulator().await;
    people(&emu);
    let client = Client::new(&emu);
    emu.set_fault_rate(1.0);
    for _ in 0..5 {
        let status = client
            .http
            .get(format!("{}/v0/{BASE}/People", emu.url()))
            .bearer_auth(&client.token)
            .send()
            .await
            .map(|r| r.status().as_u16());
        assert!(!matches!(status, Ok(200)), "{status:?}");
    }
    emu.set_fault_rate(0.0);
    emu.set_latency_ms(Some(80..=80));
    let started = Instant::now();
    client.get(&format!("/v0/{BASE}/People")).await.expect(200);
    assert!(started.elapsed() >= Duration::from_millis(80));
}

#[tokio::test]
async fn a_page_of_records_is_counted_when_it_is_made_before_its_answer_arrives() {
    let emu = emulator().await;
    let table = people(&emu);
    // The answer waits 3 s after the page is made: this test sees the count
    // well before, however slowly its own request got there.
    emu.set_listing_answer_latency_ms(Some(3_000..=3_000));
    let url = format!("{}/v0/{BASE}/People", emu.url());
    let pending = tokio::spawn(async move {
        reqwest::Client::new()
            .get(url)
            .bearer_auth(crate::support::TOKEN)
            .send()
            .await
            .map(|r| r.status().as_u16())
    });
    let deadline = Instant::now() + Duration::from_secs(10);
    while emu.stats().pages(BASE, &table.id) == 0 {
        assert!(
            Instant::now() < deadline,
            "the page was not counted as it was made"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(!pending.is_finished(), "the answer is still on its way");
    assert_eq!(pending.await.expect("joined").expect("answered"), 200);
    emu.set_listing_answer_latency_ms(None);
    let client = Client::new(&emu);
    let path = format!("/v0/{BASE}/{}/listRecords", table.id);
    client.post(&path, json!({})).await.expect(200);
    assert_eq!(emu.stats().pages(BASE, &table.id), 2);
    // A record read alone is no page.
    let record = client
        .post(
            &format!("/v0/{BASE}/People"),
            json!({"fields": {"Name": "Ada"}}),
        )
        .await
        .expect(200);
    let id = record["id"].as_str().expect("id").to_owned();
    client
        .get(&format!("/v0/{BASE}/People/{id}"))
        .await
        .expect(200);
    assert_eq!(emu.stats().pages(BASE, &table.id), 2);
    assert_eq!(emu.pages_listing(BASE, &id), 0);
    client.get(&format!("/v0/{BASE}/People")).await.expect(200);
    assert_eq!(emu.pages_listing(BASE, &id), 1);
    let filter = format!("/v0/{BASE}/People?filterByFormula={}", enc("{Name} = 'Bo'"));
    client.get(&filter).await.expect(200);
    assert_eq!(emu.pages_listing(BASE, &id), 1, "a page without the record");
}
