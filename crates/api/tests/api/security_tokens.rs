//! Security pass, credentials: forged, tampered, expired and malformed
//! access tokens; refresh-token reuse and rotation races; tokens of one
//! kind presented as another; single-use setup tokens.
//!
//! Tokens are minted here with the test's `JWT_SECRET`, so each refusal is
//! checked against a control that the same minting with the right key,
//! algorithm and claims is accepted.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{Hmac, Mac};
use reqwest::Method;
use serde_json::{json, Value};
use sha2::{Sha256, Sha512};

use crate::support::{assert_error, default_now, statuses_of, TestApp, TestUser, SECRET};

/// A JWT with this header and claims, signed with HMAC-SHA256 under `key`.
fn mint(header: &Value, claims: &Value, key: &[u8]) -> String {
    let input = unsigned(header, claims);
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("key");
    mac.update(input.as_bytes());
    format!(
        "{input}.{}",
        URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
    )
}

/// `header.claims`, base64url, without a signature.
fn unsigned(header: &Value, claims: &Value) -> String {
    format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    )
}

fn hs256() -> Value {
    json!({ "alg": "HS256", "typ": "JWT" })
}

/// The claims the API would issue to `user`, valid for an hour from the
/// test clock's now.
fn claims_of(user: &TestUser, role: &str) -> Value {
    let now = default_now().timestamp();
    json!({ "sub": user.id, "role": role, "tz": "Europe/Amsterdam", "iat": now, "exp": now + 3600 })
}

/// The claims inside a token the API issued.
fn decoded_claims(token: &str) -> Value {
    let payload = token.split('.').nth(1).expect("payload");
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).expect("base64")).expect("json")
}

/// Sends `GET path` with a raw `Authorization` header (or none).
async fn get_with_header(app: &TestApp, path: &str, authorization: Option<&[u8]>) -> (u16, Value) {
    let mut request = app.client.get(format!("{}{path}", app.base));
    if let Some(value) = authorization {
        let value = reqwest::header::HeaderValue::from_bytes(value).expect("header value");
        request = request.header(reqwest::header::AUTHORIZATION, value);
    }
    let response = request.send().await.expect("request");
    let status = response.status().as_u16();
    let text = response.text().await.expect("body");
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

/// Asserts that `token` is refused with a 401 in the error shape on a few
/// routes that take a token (they share one extractor).
async fn assert_refused(app: &TestApp, token: &str, bob: &TestUser, what: &str) {
    let routes = [
        "/api/auth/me".to_owned(),
        "/api/programs".to_owned(),
        format!("/api/programs?userId={}", bob.id),
        "/api/rewards".to_owned(),
    ];
    for path in &routes {
        let (status, body) = app.send(Method::GET, path, Some(token), None).await;
        assert_eq!(
            status, 401,
            "{what}: GET {path} answered {status}: {body:#}"
        );
        assert_error(&body, "unauthorized", None);
    }
    let (status, body) = app
        .send(
            Method::POST,
            "/api/personal-goals",
            Some(token),
            Some(json!({ "name": "forged" })),
        )
        .await;
    assert_eq!(status, 401, "{what}: POST answered {status}: {body:#}");
    assert_error(&body, "unauthorized", None);
}

#[tokio::test]
async fn a_token_with_a_tampered_signature_or_tampered_claims_is_refused() {
    let app = TestApp::start().await;
    let ann = app.user("ann@example.com").await;
    let bob = app.user("bob@example.com").await;

    // Controls: the minting below is right, so a refusal is the check's.
    let minted_admin = mint(&hs256(), &claims_of(&ann, "admin"), SECRET.as_bytes());
    app.call(
        Method::GET,
        &format!("/api/programs?userId={}", bob.id),
        Some(&minted_admin),
        None,
        200,
    )
    .await;
    app.get(&ann, &format!("/api/programs?userId={}", bob.id), 404)
        .await;

    let (header, _, signature) = {
        let mut parts = ann.token.split('.');
        (
            parts.next().unwrap().to_owned(),
            parts.next().unwrap().to_owned(),
            parts.next().unwrap().to_owned(),
        )
    };
    let original = decoded_claims(&ann.token);

    // The claims changed, the signature kept.
    let mut as_admin = original.clone();
    as_admin["role"] = json!("admin");
    let mut as_bob = original.clone();
    as_bob["sub"] = json!(bob.id);
    let mut longer = original.clone();
    longer["exp"] = json!(original["exp"].as_i64().unwrap() + 10 * 365 * 24 * 3600);
    for (what, claims) in [
        ("role switched to admin", as_admin),
        ("another user's id", as_bob),
        ("a later expiry", longer),
    ] {
        let token = format!(
            "{header}.{}.{signature}",
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        assert_refused(&app, &token, &bob, what).await;
    }

    // The signature changed: one character flipped, cut short, dropped,
    // another key's, padded base64.
    let mut flipped = ann.token.clone();
    let last = flipped.pop().unwrap();
    flipped.push(if last == 'A' { 'B' } else { 'A' });
    let mut first_flipped = format!("{header}.{}.", ann.token.split('.').nth(1).unwrap());
    let sig_first = signature.chars().next().unwrap();
    first_flipped.push(if sig_first == 'A' { 'B' } else { 'A' });
    first_flipped.push_str(&signature[1..]);
    let truncated = ann.token[..ann.token.len() - 4].to_owned();
    let no_signature = format!("{header}.{}.", ann.token.split('.').nth(1).unwrap());
    let other_key = mint(
        &hs256(),
        &claims_of(&ann, "admin"),
        b"another-secret-another-secret-another!",
    );
    let padded = format!("{}=", ann.token);
    for (what, token) in [
        ("last signature character flipped", flipped),
        ("first signature character flipped", first_flipped),
        ("signature cut short", truncated),
        ("signature dropped", no_signature),
        ("signed with another key", other_key),
        ("padded signature", padded),
    ] {
        assert_refused(&app, &token, &bob, what).await;
    }
}

#[tokio::test]
async fn a_token_naming_another_algorithm_or_none_is_refused() {
    let app = TestApp::start().await;
    let ann = app.user("ann@example.com").await;
    let bob = app.user("bob@example.com").await;
    let claims = claims_of(&ann, "admin");
    // Control.
    app.call(
        Method::GET,
        "/api/auth/me",
        Some(&mint(&hs256(), &claims, SECRET.as_bytes())),
        None,
        200,
    )
    .await;

    let none = json!({ "alg": "none", "typ": "JWT" });
    let hs512 = {
        let header = json!({ "alg": "HS512", "typ": "JWT" });
        let input = unsigned(&header, &claims);
        let mut mac = Hmac::<Sha512>::new_from_slice(SECRET.as_bytes()).expect("key");
        mac.update(input.as_bytes());
        format!(
            "{input}.{}",
            URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
        )
    };
    let cases = [
        (
            "alg none, no signature",
            format!("{}.", unsigned(&none, &claims)),
        ),
        ("alg none, no signature part", unsigned(&none, &claims)),
        (
            "alg None",
            format!("{}.", unsigned(&json!({ "alg": "None" }), &claims)),
        ),
        // Signed correctly with HS256, but the header says otherwise.
        (
            "alg none, HMAC signature",
            mint(&none, &claims, SECRET.as_bytes()),
        ),
        (
            "alg RS256 with an HMAC signature (key confusion)",
            mint(
                &json!({ "alg": "RS256", "typ": "JWT" }),
                &claims,
                SECRET.as_bytes(),
            ),
        ),
        ("alg HS512", hs512),
        (
            "alg hs256 (lower case)",
            mint(&json!({ "alg": "hs256" }), &claims, SECRET.as_bytes()),
        ),
        (
            "no alg",
            mint(&json!({ "typ": "JWT" }), &claims, SECRET.as_bytes()),
        ),
        (
            "alg not a string",
            mint(&json!({ "alg": ["HS256"] }), &claims, SECRET.as_bytes()),
        ),
        ("header not JSON", {
            let input = format!(
                "{}.{}",
                URL_SAFE_NO_PAD.encode("HS256"),
                URL_SAFE_NO_PAD.encode(claims.to_string())
            );
            let mut mac = Hmac::<Sha256>::new_from_slice(SECRET.as_bytes()).expect("key");
            mac.update(input.as_bytes());
            format!(
                "{input}.{}",
                URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
            )
        }),
    ];
    for (what, token) in cases {
        assert_refused(&app, &token, &bob, what).await;
    }
}

#[tokio::test]
async fn an_expired_token_or_one_with_unreadable_claims_is_refused_even_when_signed() {
    let app = TestApp::start().await;
    let ann = app.user("ann@example.com").await;
    let bob = app.user("bob@example.com").await;
    let now = default_now().timestamp();
    let with = |patch: Value| {
        let mut claims = claims_of(&ann, "user");
        for (key, value) in patch.as_object().unwrap() {
            if value.is_null() {
                claims.as_object_mut().unwrap().remove(key);
            } else {
                claims[key] = value.clone();
            }
        }
        mint(&hs256(), &claims, SECRET.as_bytes())
    };
    let leeway = airsync_api::ACCESS_TOKEN_LEEWAY_SECS;
    // Controls: one second left, and expired a second ago but within the
    // leeway for clocks that differ a little; so is a not-before that
    // close, and a token without one (as the API issues them).
    for claims in [
        json!({ "exp": now + 1 }),
        json!({ "exp": now - 1 }),
        json!({ "exp": now + 60, "nbf": now + leeway }),
        json!({ "exp": now + 60, "nbf": null }),
    ] {
        app.call(
            Method::GET,
            "/api/auth/me",
            Some(&with(claims.clone())),
            None,
            200,
        )
        .await;
    }
    let cases = [
        (
            "expired a second past the leeway",
            with(json!({ "exp": now - leeway - 1 })),
        ),
        (
            "expiring at the leeway's end",
            with(json!({ "exp": now - leeway })),
        ),
        (
            "not before a minute from now",
            with(json!({ "exp": now + 3600, "nbf": now + 60 })),
        ),
        (
            "not-before as text",
            with(json!({ "nbf": now.to_string() })),
        ),
        ("expired long ago", with(json!({ "exp": 0 }))),
        ("no expiry", with(json!({ "exp": null }))),
        (
            "expiry as text",
            with(json!({ "exp": (now + 3600).to_string() })),
        ),
        (
            "expiry as a fraction",
            with(json!({ "exp": (now + 3600) as f64 + 0.5 })),
        ),
        ("an unknown role", with(json!({ "role": "superuser" }))),
        ("role in capitals", with(json!({ "role": "ADMIN" }))),
        ("no role", with(json!({ "role": null }))),
        ("subject not a UUID", with(json!({ "sub": "1 OR 1=1" }))),
        ("no subject", with(json!({ "sub": null }))),
        (
            "claims not an object",
            mint(&hs256(), &json!(["admin"]), SECRET.as_bytes()),
        ),
    ];
    for (what, token) in cases {
        assert_refused(&app, &token, &bob, what).await;
    }
    // `iat` is informational and not checked; `nbf` is.
}

#[tokio::test]
async fn garbage_and_a_wrong_authorization_scheme_are_refused_with_401_never_500() {
    let app = TestApp::start().await;
    let ann = app.user("ann@example.com").await;
    let bob = app.user("bob@example.com").await;
    let long = "a".repeat(8 * 1024);
    let dotted_long = format!("{0}.{0}.{0}", "b".repeat(2 * 1024));
    let garbage = [
        "",
        ".",
        "..",
        "...",
        "a.b.c",
        "not-a-jwt",
        "null",
        "{}",
        "eyJ.eyJ.eyJ",
        "%00.%00.%00",
        "ü.ü.ü",
        "' OR 1=1 --",
        long.as_str(),
        dotted_long.as_str(),
    ];
    for token in garbage {
        assert_refused(&app, token, &bob, &format!("garbage {:.40?}", token)).await;
    }
    let four_parts = format!("{}.extra", ann.token);
    let two_parts = ann.token.rsplit_once('.').unwrap().0.to_owned();
    let spaced = ann.token.replacen('.', ". ", 1);
    for (what, token) in [
        ("four parts", four_parts),
        ("two parts", two_parts),
        ("a space inside", spaced),
    ] {
        assert_refused(&app, &token, &bob, what).await;
    }

    // The header itself: no scheme, another scheme, the scheme twice, the
    // scheme alone, bytes that are not text.
    let headers: Vec<Vec<u8>> = vec![
        ann.token.clone().into_bytes(),
        format!("Basic {}", ann.token).into_bytes(),
        format!("Token {}", ann.token).into_bytes(),
        format!("Bearer Bearer {}", ann.token).into_bytes(),
        format!("Bearer{}", ann.token).into_bytes(),
        b"Bearer".to_vec(),
        b"Bearer ".to_vec(),
        b"Basic YW5uOnBhc3N3b3Jk".to_vec(),
        [b"Bearer ".as_slice(), &[0xff, 0xfe, 0x80]].concat(),
    ];
    for header in &headers {
        for path in ["/api/auth/me", "/api/programs"] {
            let (status, body) = get_with_header(&app, path, Some(header)).await;
            assert_eq!(
                status,
                401,
                "Authorization {:?} on {path}: {body:#}",
                String::from_utf8_lossy(header)
            );
            assert_error(&body, "unauthorized", None);
        }
    }
    // Control: the same token with the right scheme.
    let (status, _) = get_with_header(
        &app,
        "/api/auth/me",
        Some(format!("Bearer {}", ann.token).as_bytes()),
    )
    .await;
    assert_eq!(status, 200);
}

async fn refresh(app: &TestApp, token: &str, expected: u16) -> Value {
    app.call(
        Method::POST,
        "/api/auth/refresh",
        None,
        Some(json!({ "refreshToken": token })),
        expected,
    )
    .await
}

#[tokio::test]
async fn reusing_any_rotated_refresh_token_revokes_the_family_down_to_the_newest() {
    let app = TestApp::start().await;
    let ann = app.user("ann@example.com").await;
    let mut chain = vec![ann.refresh_token.clone()];
    for _ in 0..3 {
        let next = refresh(&app, chain.last().unwrap(), 200).await;
        chain.push(next["refreshToken"].as_str().unwrap().to_owned());
    }
    // A token from the middle of the chain, stolen and replayed.
    let body = refresh(&app, &chain[1], 401).await;
    assert_error(&body, "unauthorized", None);
    for (i, token) in chain.iter().enumerate() {
        let body = refresh(&app, token, 401).await;
        assert_error(&body, "unauthorized", None);
        assert!(body["error"]["message"].is_string(), "token {i}");
    }
    let live: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM auth_refresh_tokens WHERE user_id = $1 AND revoked_at IS NULL",
    )
    .bind(ann.id)
    .fetch_one(app.pool())
    .await
    .unwrap();
    assert_eq!(live, 0, "every token of the family is revoked");
}

#[tokio::test]
async fn concurrent_refreshes_with_one_token_succeed_at_most_once() {
    let app = TestApp::start().await;
    let ann = app.user("ann@example.com").await;
    let attempts = (0..8).map(|_| {
        app.client
            .post(format!("{}/api/auth/refresh", app.base))
            .json(&json!({ "refreshToken": ann.refresh_token }))
            .send()
    });
    let answers = statuses_of(attempts).await;
    let ok = answers.iter().filter(|s| **s == 200).count();
    assert!(
        ok <= 1,
        "{ok} refreshes succeeded with one token: {answers:?}"
    );
    assert!(
        answers.iter().all(|s| *s == 200 || *s == 401),
        "{answers:?}"
    );
    // Whatever the race, the reuse revoked the family.
    let live: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM auth_refresh_tokens WHERE user_id = $1 AND revoked_at IS NULL",
    )
    .bind(ann.id)
    .fetch_one(app.pool())
    .await
    .unwrap();
    assert_eq!(live, 0);
}

#[tokio::test]
async fn a_token_of_one_kind_is_refused_where_another_kind_is_expected() {
    let app = TestApp::start().await;
    let ann = app.user("ann@example.com").await;
    let bob = app.user("bob@example.com").await;
    sqlx::query("INSERT INTO users_pg (email, name) VALUES ('new@example.com', 'New')")
        .execute(app.pool())
        .await
        .unwrap();
    let setup = airsync_api::invite_user(
        app.pool(),
        "new@example.com",
        std::time::Duration::from_secs(3600),
    )
    .await
    .unwrap();

    // An access token or a setup token as a refresh token.
    for token in [&ann.token, &setup] {
        let body = refresh(&app, token, 401).await;
        assert_error(&body, "unauthorized", None);
    }
    // A refresh token or a setup token as an access token.
    for token in [&ann.refresh_token, &setup] {
        assert_refused(&app, token, &bob, "an opaque token as a bearer token").await;
    }
    // An access token or a refresh token as a setup token.
    for token in [&ann.token, &ann.refresh_token] {
        let body = app
            .call(
                Method::POST,
                "/api/auth/set-password",
                None,
                Some(json!({ "setupToken": token, "newPassword": "a hijacked password" })),
                401,
            )
            .await;
        assert_error(&body, "unauthorized", None);
    }
    // None of that used up the real tokens.
    refresh(&app, &ann.refresh_token, 200).await;
    let body = json!({ "setupToken": setup, "newPassword": "my first password" });
    app.call(
        Method::POST,
        "/api/auth/set-password",
        None,
        Some(body.clone()),
        200,
    )
    .await;
    // Single use: the second time, and concurrently, it is refused.
    let answer = app
        .call(
            Method::POST,
            "/api/auth/set-password",
            None,
            Some(body),
            401,
        )
        .await;
    assert_error(&answer, "unauthorized", None);
}

#[tokio::test]
async fn concurrent_uses_of_one_setup_token_succeed_at_most_once() {
    let app = TestApp::start().await;
    sqlx::query("INSERT INTO users_pg (email, name) VALUES ('new@example.com', 'New')")
        .execute(app.pool())
        .await
        .unwrap();
    let setup = airsync_api::invite_user(
        app.pool(),
        "new@example.com",
        std::time::Duration::from_secs(3600),
    )
    .await
    .unwrap();
    let attempts = (0..6).map(|i| {
        app.client
            .post(format!("{}/api/auth/set-password", app.base))
            .json(&json!({ "setupToken": setup, "newPassword": format!("password number {i}") }))
            .send()
    });
    let answers = statuses_of(attempts).await;
    assert_eq!(
        answers.iter().filter(|s| **s == 200).count(),
        1,
        "{answers:?}"
    );
    assert!(
        answers.iter().all(|s| *s == 200 || *s == 401),
        "{answers:?}"
    );
}
