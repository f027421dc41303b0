//! The listener's limits: connections at once, and the deadline for a
//! request's headers.

use std::time::Duration;

use airsync_api::ServerLimits;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::support::TestApp;

/// Serves the test app's API with `limits`; answers the address.
async fn serve_with(app: &TestApp, limits: ServerLimits) -> std::net::SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let router = airsync_api::router(app.state.clone());
    tokio::spawn(airsync_api::serve_router(
        listener,
        router,
        limits,
        std::future::pending(),
    ));
    address
}

/// Sends one request on a new connection and reads the whole answer.
async fn request(address: std::net::SocketAddr, path: &str) -> String {
    let mut stream = TcpStream::connect(address).await.unwrap();
    let head = format!("GET {path} HTTP/1.1\r\nhost: test\r\nconnection: close\r\n\r\n");
    stream.write_all(head.as_bytes()).await.unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).await.unwrap();
    answer
}

#[tokio::test]
async fn past_the_connection_limit_a_client_waits_until_a_connection_closes() {
    let app = TestApp::start().await;
    let address = serve_with(
        &app,
        ServerLimits {
            max_connections: 1,
            header_read_timeout: Duration::from_secs(600),
        },
    )
    .await;
    // The holder is served once and keeps its connection open.
    let mut holder = TcpStream::connect(address).await.unwrap();
    holder
        .write_all(b"GET /api/openapi.json HTTP/1.1\r\nhost: test\r\n\r\n")
        .await
        .unwrap();
    let mut first = [0u8; 12];
    holder.read_exact(&mut first).await.unwrap();
    assert_eq!(&first, b"HTTP/1.1 200");
    let waiting = tokio::spawn(request(address, "/api/openapi.json"));
    // Not served while the holder's connection stays open.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        !waiting.is_finished(),
        "a second connection was served past the limit of one"
    );
    drop(holder);
    let answer = tokio::time::timeout(Duration::from_secs(30), waiting)
        .await
        .expect("served once the first connection closed")
        .unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
}

#[tokio::test]
async fn a_client_that_sends_its_headers_too_slowly_is_disconnected() {
    let app = TestApp::start().await;
    let address = serve_with(
        &app,
        ServerLimits {
            max_connections: 16,
            header_read_timeout: Duration::from_millis(200),
        },
    )
    .await;
    let mut slow = TcpStream::connect(address).await.unwrap();
    slow.write_all(b"GET /api/openapi.json HTTP/1.1\r\nhost: te")
        .await
        .unwrap();
    let mut rest = Vec::new();
    let closed = tokio::time::timeout(Duration::from_secs(30), slow.read_to_end(&mut rest)).await;
    assert!(
        closed.is_ok(),
        "the connection stayed open past the deadline"
    );
    // The server still serves others.
    let answer = request(address, "/api/openapi.json").await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
}

#[tokio::test]
async fn an_idle_kept_alive_connection_is_closed_after_the_header_deadline() {
    let app = TestApp::start().await;
    let address = serve_with(
        &app,
        ServerLimits {
            max_connections: 16,
            header_read_timeout: Duration::from_millis(200),
        },
    )
    .await;
    let mut idle = TcpStream::connect(address).await.unwrap();
    idle.write_all(b"GET /api/openapi.json HTTP/1.1\r\nhost: test\r\n\r\n")
        .await
        .unwrap();
    let mut answered = Vec::new();
    let closed =
        tokio::time::timeout(Duration::from_secs(30), idle.read_to_end(&mut answered)).await;
    assert!(closed.is_ok(), "an idle connection stayed open");
    assert!(answered.starts_with(b"HTTP/1.1 200"));
}
