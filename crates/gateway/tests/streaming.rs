//! Large bodies stream through the gateway with flat memory. Its own test
//! binary, so that other tests do not disturb the memory readings.

mod common;

use common::*;
use http_body_util::BodyExt;
use hyper::{Request, StatusCode};

/// Peak and current resident memory of this process, in KiB.
fn memory() -> (u64, u64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    (field("VmHWM:"), field("VmRSS:"))
}

async fn upload_and_download(size: u64) {
    let (mock, up) = start_mock().await;
    let gw = start_gateway(ALLOW, up).await;
    let (hwm_before, _) = memory();

    // Upload, as an RPC_IN_DATA channel declares it: a Content-Length, bytes made on the fly.
    let mut c = client::<Generated>(gw.addr).await;
    let req = Request::builder()
        .method("RPC_IN_DATA")
        .uri("/rpc/rpcproxy.dll?cas1.contoso.local:6001")
        .header("host", "mail.contoso.com")
        .header("user-agent", "MSRPC")
        .body(Generated::new(size))
        .unwrap();
    let resp = c.send.send_request(req).await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let _ = resp.into_body().collect().await.unwrap();
    let seen = mock.seen();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].body_len, size);
    assert_eq!(seen[0].body_sum, Generated::expected_sum(size));
    assert_eq!(seen[0].headers.get("content-length").unwrap().to_str().unwrap(), size.to_string());

    // Download, as RPC_OUT_DATA: read and checksum as it comes.
    let mut c = client::<http_body_util::Full<bytes::Bytes>>(gw.addr).await;
    let resp = c.get("/download?n=0", &[]).await;
    assert_eq!(resp.status, StatusCode::OK);
    let req = Request::builder()
        .method("RPC_OUT_DATA")
        .uri(format!("/download?n={size}"))
        .header("host", "mail.contoso.com")
        .body(http_body_util::Full::new(bytes::Bytes::new()))
        .unwrap();
    c.send.ready().await.unwrap();
    let resp = c.send.send_request(req).await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let mut body = resp.into_body();
    let (mut len, mut sum) = (0u64, SUM0);
    while let Some(frame) = body.frame().await {
        if let Ok(data) = frame.unwrap().into_data() {
            len += data.len() as u64;
            sum = checksum(sum, &data);
        }
    }
    assert_eq!(len, size);
    assert_eq!(sum, Generated::expected_sum(size));

    let (hwm_after, rss_after) = memory();
    let grew_mib = hwm_after.saturating_sub(hwm_before) / 1024;
    eprintln!("{} MiB each way: peak RSS grew {grew_mib} MiB (now {} MiB)", size >> 20, rss_after / 1024);
    // Buffers are bounded (64 KiB chunks, hyper's read buffer): a few MiB
    // of growth at most, far from the body's size.
    assert!(grew_mib < 48, "peak memory grew {grew_mib} MiB while streaming {} MiB", size >> 20);
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_256_mib_body_streams_both_ways_with_flat_memory() {
    within(300, upload_and_download(256 << 20)).await;
}

/// The 1 GB body; ignored in the normal run for time (run with --ignored).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "1 GiB each way takes a while in a debug build"]
async fn a_1_gib_body_streams_both_ways_with_flat_memory() {
    within(1200, upload_and_download(1 << 30)).await;
}
