// SPDX-License-Identifier: MPL-2.0
// The `/v1/admin` routes on two `rbv serve` processes sharing one data
// directory, as API nodes share one store: a key made on one works on the
// other, a key disabled on one is refused by the other on the next request,
// the token is checked, bodies are checked, and neither the new key nor the
// token reaches a log line.

use rbv_testkit as common;

use serde_json::{Value, json};
use sha2::Digest;

const RBV: &str = env!("CARGO_BIN_EXE_rbv");
const TOKEN: &str = "admin-token-0123456789abcdef";

async fn send(
    http: &reqwest::Client,
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
    body: Option<Value>,
) -> (u16, Value) {
    let mut r = match method {
        "POST" => http.post(url),
        _ => http.get(url),
    };
    for (k, v) in headers {
        r = r.header(*k, *v);
    }
    if let Some(b) = body {
        r = r
            .header("Content-Type", "application/json")
            .body(b.to_string());
    }
    let resp = r.send().await.unwrap();
    let status = resp.status().as_u16();
    let bytes = resp.bytes().await.unwrap();
    let v = serde_json::from_slice(&bytes)
        .unwrap_or_else(|_| panic!("not JSON ({status}): {}", String::from_utf8_lossy(&bytes)));
    (status, v)
}

fn error_code(v: &Value) -> &str {
    assert!(
        v["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty())
            && v["error"]["request_id"]
                .as_str()
                .is_some_and(|r| r.starts_with("req_")),
        "not the documented error body: {v}"
    );
    v["error"]["code"].as_str().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_keys_across_two_api_nodes() {
    common::init();
    let dir = common::scratch("serve-admin");
    let data = dir.join("data");
    let user_key = common::create_key(RBV, &data, "user");
    let env = [("RBV_ADMIN_TOKEN", TOKEN)];
    let args = ["--heavy-workers", "1", "--light-workers", "1"];
    let mut a = common::spawn_serve_env(RBV, &data, &args, &env);
    let mut b = common::spawn_serve_env(RBV, &data, &args, &env);
    let http = reqwest::Client::new();
    let admin = [("X-Admin-Token", TOKEN)];

    // The token: missing, wrong, or a user's API key instead.
    for (headers, code) in [
        (vec![], "missing_admin_token"),
        (
            vec![("X-Admin-Token", "admin-token-0123456789abcdeF")],
            "invalid_admin_token",
        ),
        (
            vec![("X-Api-Key", user_key.as_str())],
            "missing_admin_token",
        ),
    ] {
        for path in ["/v1/admin/config", "/v1/admin/keys"] {
            let (status, v) = send(&http, "GET", &format!("{}{path}", a.url), &headers, None).await;
            assert_eq!((status, error_code(&v)), (401, code), "{path}: {v}");
        }
        let (status, v) = send(
            &http,
            "POST",
            &format!("{}/v1/admin/keys", b.url),
            &headers,
            Some(json!({"client_id": "intruder"})),
        )
        .await;
        assert_eq!((status, error_code(&v)), (401, code), "{v}");
    }

    let (status, config) = send(
        &http,
        "GET",
        &format!("{}/v1/admin/config", a.url),
        &admin,
        None,
    )
    .await;
    assert_eq!(status, 200, "{config}");
    assert_eq!(config["rate_limit_per_minute"], 600);
    assert_eq!(config["heavy_workers"], 1);
    assert!(!config.to_string().contains(TOKEN), "{config}");

    // Made on A, with the secret in this one answer.
    let (status, made) = send(
        &http,
        "POST",
        &format!("{}/v1/admin/keys", a.url),
        &admin,
        Some(json!({"client_id": "acme", "note": "render farm"})),
    )
    .await;
    assert_eq!(status, 200, "{made}");
    let new_key = made["api_key"].as_str().unwrap().to_owned();
    let fingerprint = made["key_fingerprint"].as_str().unwrap().to_owned();
    let worked_out = hex::encode(sha2::Sha256::digest(new_key.as_bytes()));
    assert_eq!(fingerprint, worked_out[..16], "the documented fingerprint");
    assert_eq!(
        (made["client_id"].as_str(), made["note"].as_str()),
        (Some("acme"), Some("render farm"))
    );
    assert_eq!(made["enabled"], true);
    assert!(made["created_at"].as_str().unwrap().ends_with('Z'));
    assert!(made["last_used_at"].is_null());

    // Used on B, then listed on B: used, and no secret in the listing.
    let jobs_b = format!("{}/v1/jobs", b.url);
    let jobs_a = format!("{}/v1/jobs", a.url);
    let (status, v) = send(&http, "GET", &jobs_b, &[("X-Api-Key", &new_key)], None).await;
    assert_eq!(status, 200, "{v}");
    let (status, listed) = send(
        &http,
        "GET",
        &format!("{}/v1/admin/keys", b.url),
        &admin,
        None,
    )
    .await;
    assert_eq!(status, 200, "{listed}");
    let items = listed["items"].as_array().unwrap();
    assert_eq!(items.len(), 2, "{listed}");
    let mine = items
        .iter()
        .find(|k| k["key_fingerprint"] == fingerprint.as_str())
        .unwrap();
    for field in [
        "key_fingerprint",
        "client_id",
        "note",
        "enabled",
        "created_at",
        "last_used_at",
    ] {
        assert!(mine.get(field).is_some(), "{field} missing: {mine}");
    }
    assert_eq!(mine["client_id"], "acme");
    assert!(mine["last_used_at"].as_str().is_some(), "{mine}");
    assert!(!listed.to_string().contains(&new_key) && mine.get("api_key").is_none());

    // Disabled on A: B refuses it on the very next request; the user's key
    // is untouched.
    let body = json!({"key_fingerprint": fingerprint.to_uppercase()});
    let (status, v) = send(
        &http,
        "POST",
        &format!("{}/v1/admin/keys/disable", a.url),
        &admin,
        Some(body.clone()),
    )
    .await;
    assert_eq!((status, v["enabled"].as_bool()), (200, Some(false)), "{v}");
    let (status, v) = send(&http, "GET", &jobs_b, &[("X-Api-Key", &new_key)], None).await;
    assert_eq!((status, error_code(&v)), (401, "invalid_api_key"), "{v}");
    let (status, v) = send(&http, "GET", &jobs_a, &[("X-Api-Key", &new_key)], None).await;
    assert_eq!(status, 401, "{v}");
    let (status, v) = send(&http, "GET", &jobs_b, &[("X-Api-Key", &user_key)], None).await;
    assert_eq!(status, 200, "{v}");

    // Enabled on B: A takes it again.
    let (status, v) = send(
        &http,
        "POST",
        &format!("{}/v1/admin/keys/enable", b.url),
        &admin,
        Some(body),
    )
    .await;
    assert_eq!((status, v["enabled"].as_bool()), (200, Some(true)), "{v}");
    let (status, v) = send(&http, "GET", &jobs_a, &[("X-Api-Key", &new_key)], None).await;
    assert_eq!(status, 200, "{v}");

    // Bodies that cannot be acted on, each named.
    for (path, body, status, says) in [
        (
            "keys",
            json!({"client_id": "a", "notes": "x"}),
            400,
            "unknown field `notes`",
        ),
        ("keys", json!({"note": "x"}), 400, "client_id is required"),
        (
            "keys",
            json!({"client_id": "a", "credits": -5}),
            400,
            "credits must be",
        ),
        (
            "keys/disable",
            json!({"key_fingerprint": "abc"}),
            400,
            "16 hex characters",
        ),
        (
            "keys/disable",
            json!({"key_fingerprint": "0000000000000000"}),
            404,
            "no key has the fingerprint",
        ),
        ("keys/enable", json!("fingerprint"), 400, "JSON object"),
    ] {
        let (got, v) = send(
            &http,
            "POST",
            &format!("{}/v1/admin/{path}", a.url),
            &admin,
            Some(body),
        )
        .await;
        assert_eq!(got, status, "{path}: {v}");
        assert!(
            v["error"]["message"].as_str().unwrap().contains(says),
            "{path}: {v}"
        );
    }

    // A server started without the token has no admin routes; one started
    // with a short token does not start.
    let plain_data = dir.join("plain");
    let mut plain = common::spawn_serve(RBV, &plain_data, &args);
    let (status, v) = send(
        &http,
        "GET",
        &format!("{}/v1/admin/keys", plain.url),
        &admin,
        None,
    )
    .await;
    assert_eq!((status, error_code(&v)), (404, "not_found"), "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("RBV_ADMIN_TOKEN")
    );
    plain.child.kill().unwrap();
    plain.child.wait().unwrap();
    let out = std::process::Command::new(RBV)
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(&plain_data)
        .env("RBV_ADMIN_TOKEN", "short")
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && said.contains("RBV_ADMIN_TOKEN is 5 characters"),
        "{said}"
    );

    for node in [&mut a, &mut b] {
        node.child.kill().unwrap();
        node.child.wait().unwrap();
    }
    let log = [a.log.lock().unwrap().clone(), b.log.lock().unwrap().clone()].concat();
    assert!(
        log.iter()
            .any(|l| l.contains("path=/v1/admin/keys ") && l.contains("status=200")),
        "the admin requests are logged"
    );
    for secret in [new_key.as_str(), TOKEN] {
        assert!(
            !log.iter().any(|l| l.contains(secret)),
            "a secret reached the log"
        );
    }
}
