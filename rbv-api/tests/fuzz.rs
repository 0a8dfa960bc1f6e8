// SPDX-License-Identifier: MPL-2.0
//! The client's reading of `/v1` answers, fuzzed (see `rbv_testkit::fuzz`).

use rbv_api::api::{Job, Upload, color_from_json, error_body};
use rbv_testkit::fuzz::fuzz;

#[test]
fn v1_answer_parsers() {
    let seeds: &[&[u8]] = &[
        br#"{"success":true,"id":"job_1","status":"created","message":"ok"}"#,
        br#"{"job_id":"job_2","status":"pending","progress":"40"}"#,
        br#"{"id":"j","status":"completed","progress":100,"output_url":"https://x/o.webm","error":null}"#,
        br#"{"id":"j","status":"failed","error":{"code":"decode_error","message":"bad"}}"#,
        br#"{"job":{"id":"j","status":"processing"}}"#,
        br#"{"success":true,"video_id":"v","video_url":"https://x/u.mp4","size":12}"#,
        br#"{"error":{"code":"insufficient_credits","message":"m","request_id":"req_1"}}"#,
        br#"{"error":"Job not found"}"#,
        br#"{"message":"Processing failed"}"#,
        b"[0.1,0.2,0.3]",
        b"\"#A0B1C2\"",
    ];
    fuzz("v1 answers", seeds, |b| {
        for status in [200u16, 401, 429, 503] {
            let _ = error_body(status, b);
        }
        if let Ok(v) = serde_json::from_slice::<serde_json::Value>(b) {
            let _ = Job::from_json(&v, None);
            let _ = Job::from_json(&v, Some("job_known"));
            let _ = Upload::from_json(&v);
            let _ = color_from_json(&v);
        }
    });
}
