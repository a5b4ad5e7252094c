//! Control plane against a real gateway on port 0 with a temporary SQLite file.

mod support;

use reqwest::StatusCode;
use serde_json::json;
use support::TestGateway;

#[tokio::test]
async fn first_user_is_admin_later_ones_are_users() {
    let gw = TestGateway::start().await;
    let (s, v) = gw
        .post("/api/auth/register", None, json!({"username": "admin", "password": "YourSecurePassword!", "email": "admin@example.com"}))
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v["success"], true);
    assert_eq!(v["data"]["roles"], json!(["admin"]));
    assert_eq!(v["data"]["username"], "admin");
    assert!(v["data"]["id"].as_str().unwrap().len() == 36, "uuid id");
    assert!(v["data"]["token"].as_str().unwrap().starts_with("eyJ"));
    let (s, v) = gw
        .post(
            "/api/auth/register",
            None,
            json!({"username": "bob", "password": "AnotherPass#1"}),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v["data"]["roles"], json!(["user"]));
    let (s, v) = gw
        .post(
            "/api/auth/login",
            None,
            json!({"username": "bob", "password": "AnotherPass#1"}),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let bob = v["data"]["token"].as_str().unwrap().to_string();
    let (s, v) = gw.get("/api/user/self", Some(&bob)).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v["data"]["username"], "bob");
    assert_eq!(v["data"]["group"], "default");
    gw.stop().await;
}

#[tokio::test]
async fn registration_and_login_bad_input() {
    let gw = TestGateway::start().await;
    gw.register("alice").await;
    let cases = [
        (
            "{\"username\": \"x\",",
            StatusCode::BAD_REQUEST,
            "malformed JSON",
        ),
        ("", StatusCode::BAD_REQUEST, "empty"),
        (
            "{\"username\": 5, \"password\": \"Abcdefg1!\"}",
            StatusCode::BAD_REQUEST,
            "username",
        ),
        (
            "{\"password\": \"Abcdefg1!\"}",
            StatusCode::BAD_REQUEST,
            "username",
        ),
        (
            "{\"username\": \"carol\", \"password\": \"\"}",
            StatusCode::BAD_REQUEST,
            "at least 8",
        ),
        (
            "{\"username\": \"carol\", \"password\": \"abcdefgh\"}",
            StatusCode::BAD_REQUEST,
            "mix",
        ),
        (
            "{\"username\": \"alice\", \"password\": \"YourSecurePassword!\"}",
            StatusCode::CONFLICT,
            "already taken",
        ),
        (
            "{\"username\": \"bad name!\", \"password\": \"YourSecurePassword!\"}",
            StatusCode::BAD_REQUEST,
            "username",
        ),
    ];
    for (body, status, needle) in cases {
        let (s, v) = gw
            .send(
                reqwest::Method::POST,
                "/api/auth/register",
                None,
                Some(body),
            )
            .await;
        assert_eq!(s, status, "{body} -> {v}");
        assert_eq!(v["success"], false, "{body}");
        assert!(
            v["message"].as_str().unwrap().contains(needle),
            "{body} -> {v}"
        );
    }
    let (s, v) = gw
        .post(
            "/api/auth/login",
            None,
            json!({"username": "alice", "password": "wrong-Password1"}),
        )
        .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    assert_eq!(v["message"], "wrong username or password");
    let (s, _) = gw
        .post(
            "/api/auth/login",
            None,
            json!({"username": "nobody", "password": "wrong-Password1"}),
        )
        .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    // Nothing half-written: exactly one user exists.
    let n: i64 = gw
        .state()
        .store
        .with(|c| Ok(c.query_row("SELECT COUNT(*) FROM users", [], |r| r.get(0))?))
        .unwrap();
    assert_eq!(n, 1);
    gw.stop().await;
}

#[tokio::test]
async fn jwt_expired_forged_and_missing() {
    let gw = TestGateway::start().await;
    let admin = gw.register("admin").await;
    let (s, v) = gw.get("/console/api/channel", None).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    assert!(v["message"].as_str().unwrap().contains("Authorization"));
    // Forged: valid shape, wrong signature.
    let forged = gateway_core::auth::JwtKeys::new(b"not-the-secret-not-the-secret-xx").issue(
        "x",
        "admin",
        gateway_core::store::users::Role::Admin,
        gateway_core::store::now_secs(),
    );
    let (s, v) = gw.get("/console/api/channel", Some(&forged)).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    assert_eq!(v["message"], "invalid token");
    // Expired: signed with the real secret, issued long ago.
    let claims = gw.state().jwt.verify(&admin).unwrap();
    let old = gw.state().jwt.issue(
        &claims.sub,
        "admin",
        gateway_core::store::users::Role::Admin,
        1_000_000,
    );
    let (s, v) = gw.get("/console/api/channel", Some(&old)).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    assert!(v["message"].as_str().unwrap().contains("expired"));
    let (s, _) = gw.get("/console/api/channel", Some("sk-whatever")).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    gw.stop().await;
}

#[tokio::test]
async fn channels_crud_masks_keys_and_expands_abilities() {
    let gw = TestGateway::start().await;
    let admin = gw.register("admin").await;
    let secret_key = "sk-very-secret-upstream-key-ABCDEFGHIJ";
    let (s, v) = gw
        .post(
            "/console/api/channel",
            Some(&admin),
            json!({"name": "my-openai-channel", "type": 1, "key": secret_key, "base_url": "https://api.openai.com/v1/", "models": "gpt-4o-mini, gpt-4o", "group": "default,vip", "weight": 1, "priority": 0, "model_mapping": "{\"gpt-4o\": \"gpt-4o-2024-08-06\"}"}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let id = v["data"]["id"].as_i64().unwrap();
    assert_eq!(v["data"]["base_url"], "https://api.openai.com");
    assert_eq!(v["data"]["model_mapping"]["gpt-4o"], "gpt-4o-2024-08-06");
    let abilities: i64 = gw
        .state()
        .store
        .with(|c| {
            Ok(c.query_row(
                "SELECT COUNT(*) FROM abilities WHERE channel_id = ?1",
                [id],
                |r| r.get(0),
            )?)
        })
        .unwrap();
    assert_eq!(abilities, 4, "2 models x 2 groups");
    for path in [
        "/console/api/channel".to_string(),
        format!("/console/api/channel/{id}"),
    ] {
        let (s, v) = gw.get(&path, Some(&admin)).await;
        assert_eq!(s, StatusCode::OK);
        assert!(
            !v.to_string().contains(secret_key),
            "key leaked by {path}: {v}"
        );
        assert!(
            !v.to_string().contains("upstream-key-ABCDEF"),
            "key leaked by {path}"
        );
    }
    // Update through PUT with id in the body; an empty key keeps the old one.
    let (s, v) = gw
        .put(
            "/console/api/channel",
            Some(&admin),
            json!({"id": id, "priority": 5, "key": ""}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["data"]["priority"], 5);
    let stored = gw
        .state()
        .store
        .with(|c| gateway_core::store::channels::get(c, id))
        .unwrap()
        .unwrap();
    assert_eq!(stored.key, secret_key);
    // Bad input.
    let cases = [
        (
            json!({"name": "x", "type": 1, "models": "a", "weight": "heavy"}),
            "weight",
        ),
        (
            json!({"name": "x", "type": 999, "key": "k", "models": "a"}),
            "type",
        ),
        (
            json!({"name": "x", "type": 1, "key": "k", "models": " , "}),
            "models",
        ),
        (json!({"type": 1, "key": "k", "models": "a"}), "name"),
        (
            json!({"name": "x", "type": 3, "key": "k", "models": "a"}),
            "base_url",
        ),
        (
            json!({"name": "x", "type": 1, "key": "k", "models": "a", "model_mapping": "{nope"}),
            "model_mapping",
        ),
        (
            json!({"name": "x", "type": 1, "key": "k", "models": "a", "base_url": "ftp://x"}),
            "base_url",
        ),
    ];
    for (body, needle) in cases {
        let (s, v) = gw
            .post("/console/api/channel", Some(&admin), body.clone())
            .await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{body} -> {v}");
        assert!(
            v["message"].as_str().unwrap().contains(needle),
            "{body} -> {v}"
        );
    }
    let (s, _) = gw.get("/console/api/channel/999", Some(&admin)).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, v) = gw.get("/console/api/channel/abc", Some(&admin)).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
    let (s, _) = gw
        .put(
            "/console/api/channel",
            Some(&admin),
            json!({"id": 999, "priority": 1}),
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, _) = gw
        .delete(&format!("/console/api/channel/{id}"), Some(&admin))
        .await;
    assert_eq!(s, StatusCode::OK);
    let (s, _) = gw
        .delete(&format!("/console/api/channel/{id}"), Some(&admin))
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (_, v) = gw.get("/console/api/channel", Some(&admin)).await;
    assert_eq!(v["data"], json!([]));
    gw.stop().await;
}

#[tokio::test]
async fn non_admins_are_refused_admin_routes() {
    let gw = TestGateway::start().await;
    let admin = gw.register("admin").await;
    let user = gw.register("user1").await;
    let ch = json!({"name": "c", "type": 1, "key": "sk-upstream-0123456789", "models": "m"});
    let (s, v) = gw
        .post("/console/api/channel", Some(&user), ch.clone())
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{v}");
    assert!(v["message"].as_str().unwrap().contains("admin"));
    let (s, _) = gw.get("/console/api/channel", Some(&user)).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let id = gw.add_channel(&admin, ch).await;
    let (s, _) = gw
        .delete(&format!("/console/api/channel/{id}"), Some(&user))
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, _) = gw
        .put(
            "/console/api/prices/gpt-4",
            Some(&user),
            json!({"input": 1, "output": 2}),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    // Users read prices and their own logs and billing, not others'.
    let (s, _) = gw.get("/console/api/prices", Some(&user)).await;
    assert_eq!(s, StatusCode::OK);
    let admin_id = gw.state().jwt.verify(&admin).unwrap().sub;
    let (s, _) = gw
        .get(
            &format!("/api/billing/summary?user_id={admin_id}"),
            Some(&user),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, _) = gw
        .get(
            &format!("/console/api/logs?user_id={admin_id}"),
            Some(&user),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    // A token group other than the user's own is refused.
    let (s, _) = gw
        .post(
            "/console/api/tokens",
            Some(&user),
            json!({"name": "t", "group": "vip"}),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    gw.stop().await;
}

#[tokio::test]
async fn tokens_are_shown_once_stored_hashed_and_revocable() {
    let gw = TestGateway::start().await;
    let admin = gw.register("admin").await;
    let user = gw.register("user1").await;
    let (s, v) = gw
        .post("/console/api/tokens", Some(&user), json!({"name": "ci", "quota_limit": 1.5, "expired_time": -1, "models": ["gpt-4o-mini"]}))
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let key = v["data"]["key"].as_str().unwrap().to_string();
    let id = v["data"]["id"].as_i64().unwrap();
    assert!(key.starts_with("sk-") && key.len() == 51);
    assert_eq!(v["data"]["quota_limit"], 1.5);
    // Stored hashed: the key is nowhere in the database.
    for bytes in gw.database_contents() {
        assert!(
            !bytes.windows(key.len()).any(|w| w == key.as_bytes()),
            "plain key stored"
        );
    }
    // Never shown again.
    let (_, list) = gw.get("/console/api/tokens", Some(&user)).await;
    assert!(!list.to_string().contains(&key));
    assert_eq!(list["data"].as_array().unwrap().len(), 1);
    let (_, one) = gw
        .get(&format!("/console/api/tokens/{id}"), Some(&user))
        .await;
    assert!(!one.to_string().contains(&key));
    // Owner isolation: the admin sees it, another user does not.
    let other = gw.register("user2").await;
    let (s, _) = gw
        .get(&format!("/console/api/tokens/{id}"), Some(&other))
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, _) = gw
        .delete(&format!("/console/api/tokens/{id}"), Some(&other))
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (_, all) = gw.get("/console/api/tokens", Some(&admin)).await;
    assert_eq!(all["data"].as_array().unwrap().len(), 1);
    // Update and bad input.
    let (s, v) = gw
        .put(
            &format!("/console/api/tokens/{id}"),
            Some(&user),
            json!({"name": "renamed", "rpm_limit": 10}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["data"]["rpm_limit"], 10);
    for body in [
        json!({"quota_limit": "lots"}),
        json!({"expired_time": -5}),
        json!({"rpm_limit": 0}),
        json!({"status": 7}),
    ] {
        let (s, v) = gw
            .put(
                &format!("/console/api/tokens/{id}"),
                Some(&user),
                body.clone(),
            )
            .await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{body} -> {v}");
    }
    let (s, _) = gw
        .post(
            "/console/api/tokens",
            Some(&user),
            json!({"quota_limit": 1}),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "name required");
    // Revoke: the key stops working on /v1 at once.
    let (s, _) = gw
        .delete(&format!("/console/api/tokens/{id}"), Some(&user))
        .await;
    assert_eq!(s, StatusCode::OK);
    let (s, v) = gw.get("/v1/models", Some(&key)).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    assert_eq!(v["error"]["code"], "invalid_token");
    gw.stop().await;
}

#[tokio::test]
async fn prices_api_matches_cli_semantics() {
    let gw = TestGateway::start().await;
    let admin = gw.register("admin").await;
    let (s, v) = gw
        .put(
            "/console/api/prices/gpt-4",
            Some(&admin),
            json!({"input": 30.0, "output": 60.0}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let (s, v) = gw
        .put(
            "/console/api/prices",
            Some(&admin),
            json!({"model": "gpt-4-turbo", "alias": "gpt-4"}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["data"]["input"], 30.0);
    assert_eq!(v["data"]["alias_of"], "gpt-4");
    let (s, v) = gw.delete("/console/api/prices/gpt-4", Some(&admin)).await;
    assert_eq!(s, StatusCode::CONFLICT, "{v}");
    let (s, _) = gw
        .put(
            "/console/api/prices/x",
            Some(&admin),
            json!({"input": -1, "output": 1}),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    let (s, _) = gw
        .put("/console/api/prices/x", Some(&admin), json!({"input": 1}))
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    let (s, _) = gw.get("/console/api/prices/nope", Some(&admin)).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (_, v) = gw.get("/console/api/prices", Some(&admin)).await;
    assert_eq!(v["data"].as_array().unwrap().len(), 2);
    gw.stop().await;
}

#[tokio::test]
async fn billing_summary_is_empty_before_usage() {
    let gw = TestGateway::start().await;
    let admin = gw.register("admin").await;
    let (s, v) = gw.get("/api/billing/summary", Some(&admin)).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(
        v["data"],
        json!({"period_start": null, "period_end": null, "pre_migration_requests": 0, "models": [], "total_cost_usd": 0.0})
    );
    let (s, _) = gw
        .get("/api/billing/summary?start=yesterday", Some(&admin))
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    gw.stop().await;
}

#[tokio::test]
async fn health_and_unknown_routes() {
    let gw = TestGateway::start().await;
    let (s, v) = gw.get("/health", None).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v["status"], "ok");
    let (s, v) = gw.get("/console/api/nothing", None).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert_eq!(v["success"], false);
    let (s, v) = gw.get("/v1/nothing", None).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert_eq!(v["error"]["type"], "not_found_error");
    gw.stop().await;
}

#[tokio::test]
async fn huge_console_bodies_are_413() {
    let gw = TestGateway::start().await;
    let admin = gw.register("admin").await;
    let big = format!(
        "{{\"name\": \"{}\", \"type\": 1, \"models\": \"m\"}}",
        "x".repeat(2 * 1024 * 1024)
    );
    let (s, v) = gw
        .send(
            reqwest::Method::POST,
            "/console/api/channel",
            Some(&admin),
            Some(&big),
        )
        .await;
    assert_eq!(s, StatusCode::PAYLOAD_TOO_LARGE, "{v}");
    gw.stop().await;
}

#[tokio::test]
async fn two_data_dirs_have_different_jwt_secrets() {
    let a = TestGateway::start().await;
    let b = TestGateway::start().await;
    let token_a = a.register("admin").await;
    b.register("admin").await;
    let (s, _) = b.get("/api/user/self", Some(&token_a)).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    let sa = std::fs::read_to_string(a.dir.path().join("jwt_secret")).unwrap();
    let sb = std::fs::read_to_string(b.dir.path().join("jwt_secret")).unwrap();
    assert_ne!(sa, sb);
    assert!(sa.len() >= 32);
    a.stop().await;
    b.stop().await;
}

#[tokio::test]
async fn a_busy_port_is_a_clear_error() {
    let holder = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = holder.local_addr().unwrap().port();
    let dir = tempfile::tempdir().unwrap();
    let gw = gateway_core::Gateway::open(support::test_config(dir.path()))
        .await
        .unwrap();
    let err = match gw
        .serve_on(format!("127.0.0.1:{port}").parse().unwrap())
        .await
    {
        Err(e) => e,
        Ok(_) => panic!("bound a busy port"),
    };
    assert!(matches!(err, gateway_core::StartError::PortInUse { .. }));
    assert!(err.to_string().contains("already in use"));
    gw.shutdown().await;
}

#[tokio::test]
async fn web_console_session_cookie_is_httponly_strict_and_only_for_the_console() {
    let gw = TestGateway::start().await;
    gw.register("admin").await;
    let url = format!("{}/console/api/session", gw.base);
    let client = reqwest::Client::new();
    // Wrong password: 401, no cookie.
    let r = client
        .post(&url)
        .json(&json!({"username": "admin", "password": "wrong-password-1"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert!(r.headers().get("set-cookie").is_none());
    let r = client
        .post(&url)
        .json(&json!({"username": "admin", "password": "YourSecurePassword!"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let cookie = r.headers()["set-cookie"].to_str().unwrap().to_string();
    for attr in ["HttpOnly", "SameSite=Strict", "Path=/", "Max-Age=604800"] {
        assert!(cookie.contains(attr), "{attr} missing from {cookie}");
    }
    let v: serde_json::Value = r.json().await.unwrap();
    assert_eq!(v["data"]["username"], "admin");
    assert!(
        v["data"].get("token").is_none(),
        "the token is only in the cookie: {v}"
    );
    let pair = cookie.split(';').next().unwrap().to_string();
    let token = pair.trim_start_matches("burncloud_session=");
    // The cookie's token is a real session...
    let session = gateway_core::http::Session::for_token(gw.state(), token).await;
    assert!(session.is_ok_and(|s| s.user.username == "admin"));
    // ...but the JSON API never takes cookies (no CSRF through the control plane).
    let r = client
        .get(format!("{}/console/api/channel", gw.base))
        .header("cookie", &pair)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    // A form post (what a hostile page sends without a preflight) cannot log in.
    let r = client
        .post(&url)
        .header("content-type", "application/x-www-form-urlencoded")
        .body("username=admin&password=YourSecurePassword!")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    // Logging out clears the cookie.
    let r = client.delete(&url).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let cleared = r.headers()["set-cookie"].to_str().unwrap();
    assert!(cleared.starts_with("burncloud_session=;") && cleared.contains("Max-Age=0"));
    gw.stop().await;
}
