//! Tests of the download: manifests refused, content checked.

/// A slow or crowded server's answer is tried again, not taken as a
/// refusal: a report answered 408 must not be set aside for good.
#[test]
fn timeouts_and_crowding_are_not_final() {
    use reqwest::StatusCode;
    for s in [
        StatusCode::NOT_FOUND,
        StatusCode::FORBIDDEN,
        StatusCode::BAD_REQUEST,
    ] {
        assert!(final_refusal(s), "{s}");
    }
    for s in [
        StatusCode::REQUEST_TIMEOUT,
        StatusCode::TOO_MANY_REQUESTS,
        StatusCode::SERVICE_UNAVAILABLE,
        StatusCode::INTERNAL_SERVER_ERROR,
    ] {
        assert!(!final_refusal(s), "{s}");
    }
}

use super::*;
use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// Serves plain HTTP on a local port: `manifest` for any path ending in
/// "/manifest", a 404 with an error body for anything else (content).
/// Returns the base URL.
async fn serve(manifest: &Manifest) -> String {
    let manifest = serde_json::to_vec(manifest).expect("manifest json");
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("address");
    tokio::spawn(async move {
        while let Ok((mut conn, _)) = listener.accept().await {
            let mut request = Vec::new();
            let mut buf = [0u8; 1024];
            while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                match conn.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => request.extend_from_slice(&buf[..n]),
                }
            }
            let line = String::from_utf8_lossy(&request);
            let path = line.split_whitespace().nth(1).unwrap_or("");
            let (status, body) = if path.ends_with("/manifest") {
                ("200 OK", manifest.clone())
            } else {
                ("404 Not Found", br#"{"error":"no such content"}"#.to_vec())
            };
            let head = format!(
                "HTTP/1.1 {status}\r\ncontent-type: application/json\r\n\
                 content-length: {}\r\nconnection: close\r\n\r\n",
                body.len()
            );
            let _ = conn.write_all(head.as_bytes()).await;
            let _ = conn.write_all(&body).await;
            let _ = conn.shutdown().await;
        }
    });
    format!("http://{addr}")
}

/// A client for plain HTTP; the TLS settings are never used.
fn client() -> reqwest::Client {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("protocol versions")
        .with_root_certificates(rustls::RootCertStore::empty())
        .with_no_client_auth();
    reqwest::Client::builder()
        .tls_backend_preconfigured(tls)
        .build()
        .expect("client")
}

fn package(size: u64) -> PackageRef {
    PackageRef {
        id: 1,
        name: "p".into(),
        hash: "ab".repeat(32),
        size,
        format: crate::task::Format::File,
        detect: Vec::new(),
        file_name: "p.bin".into(),
        command: None,
        folder: None,
        success_codes: Vec::new(),
    }
}

/// Fetches `pkg` from a server whose manifest is `manifest`, and
/// returns the error it must end with.
async fn refusal(pkg: &PackageRef, manifest: &Manifest) -> String {
    let base = serve(manifest).await;
    let cache = tempfile::tempdir().expect("tempdir");
    let client = client();
    let fetcher = Fetcher {
        client: &client,
        base: &base,
        cache: cache.path(),
    };
    match fetcher.ensure(pkg, |_, _| {}).await {
        Err((FetchError::Fatal(m), 0)) => m,
        Err((e, n)) => {
            panic!("expected a refusal before any content, got {e:?} after {n} bytes")
        }
        Ok(f) => panic!("expected a refusal, got {}", f.path.display()),
    }
}

fn hashes(n: usize) -> Vec<String> {
    vec![blake3::hash(b"").to_hex().to_string(); n]
}

/// A manifest of 2 million chunks (140 MB of JSON) is refused as it
/// arrives, before the agent holds it: a hostile server cannot make
/// it buffer gigabytes.
#[tokio::test]
async fn a_huge_manifest_is_refused_before_it_is_held() {
    let manifest = Manifest {
        size: 10,
        chunk_size: CHUNK_SIZE,
        chunks: hashes(2_000_000),
        tree: Vec::new(),
    };
    let message = refusal(&package(CHUNK_SIZE + 10), &manifest).await;
    assert!(message.contains("longer than 1024 KiB"), "{message}");
}

#[tokio::test]
async fn manifest_with_chunk_size_zero_is_refused_without_panic() {
    let manifest = Manifest {
        size: 10,
        chunk_size: 0,
        chunks: Vec::new(),
        tree: Vec::new(),
    };
    let message = refusal(&package(CHUNK_SIZE + 10), &manifest).await;
    assert!(message.contains("uses chunks of 0 bytes"), "{message}");
}

#[tokio::test]
async fn manifest_with_another_chunk_size_is_refused() {
    // Consistent in itself (3 chunks of 4 bytes for 10 bytes), but not
    // in the chunks this agent verifies.
    let manifest = Manifest {
        size: 10,
        chunk_size: 4,
        chunks: hashes(3),
        tree: Vec::new(),
    };
    let message = refusal(&package(CHUNK_SIZE + 10), &manifest).await;
    assert_eq!(
        message,
        format!(
            "manifest of {} uses chunks of 4 bytes, not the {CHUNK_SIZE} bytes this agent verifies",
            package(10).hash
        )
    );
}

#[tokio::test]
async fn manifest_whose_chunk_count_or_size_is_off_is_refused() {
    let size = CHUNK_SIZE + 1;
    let short = Manifest {
        size,
        chunk_size: CHUNK_SIZE,
        chunks: hashes(1),
        tree: Vec::new(),
    };
    let message = refusal(&package(size), &short).await;
    assert!(message.contains("does not match the package"), "{message}");
    assert!(message.contains("in 1 chunks; expected"), "{message}");

    let other_size = Manifest {
        size: CHUNK_SIZE + 10,
        chunk_size: CHUNK_SIZE,
        chunks: hashes(2),
        tree: Vec::new(),
    };
    let message = refusal(&package(CHUNK_SIZE + 11), &other_size).await;
    assert!(message.contains("does not match the package"), "{message}");
}

/// A manifest must prove itself against the address before a byte of
/// content is fetched: chunk values that do not merge to the hash, and
/// a manifest without them, are refused at once.
#[tokio::test]
async fn a_manifest_that_does_not_add_up_is_refused_before_download() {
    let size = CHUNK_SIZE + 10;
    let lying = Manifest {
        size,
        chunk_size: CHUNK_SIZE,
        chunks: hashes(2),
        tree: vec!["11".repeat(32), "22".repeat(32)],
    };
    let message = refusal(&package(size), &lying).await;
    assert!(message.contains("does not add up to its hash"), "{message}");
    let untreed = Manifest {
        tree: Vec::new(),
        ..lying
    };
    let message = refusal(&package(size), &untreed).await;
    assert!(message.contains("has no chunk tree"), "{message}");
}

/// Serves `content` with Range over plain HTTP, and a 404 for any
/// manifest; counts the manifest requests.
async fn serve_content(content: Vec<u8>) -> (String, Arc<std::sync::atomic::AtomicUsize>) {
    serve_with(content, None).await
}

/// As [`serve_content`], with `manifest` served when given.
async fn serve_with(
    content: Vec<u8>,
    manifest: Option<Manifest>,
) -> (String, Arc<std::sync::atomic::AtomicUsize>) {
    serve_in_pieces(content, manifest, &[]).await
}

/// As [`serve_with`], the body written in pieces of these sizes in turn,
/// each flushed and followed by a pause (all at once when empty).
async fn serve_in_pieces(
    content: Vec<u8>,
    manifest: Option<Manifest>,
    pieces: &'static [usize],
) -> (String, Arc<std::sync::atomic::AtomicUsize>) {
    let manifest = manifest.map(|m| serde_json::to_vec(&m).expect("manifest json"));
    let asked = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("address");
    let counter = asked.clone();
    tokio::spawn(async move {
        while let Ok((mut conn, _)) = listener.accept().await {
            let mut request = Vec::new();
            let mut buf = [0u8; 1024];
            while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                match conn.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => request.extend_from_slice(&buf[..n]),
                }
            }
            let text = String::from_utf8_lossy(&request).to_lowercase();
            let path = text.split_whitespace().nth(1).unwrap_or("").to_string();
            let from: usize = text
                .split("range: bytes=")
                .nth(1)
                .and_then(|r| r.split('-').next())
                .and_then(|n| n.trim().parse().ok())
                .unwrap_or(0);
            let (status, body) = if path.ends_with("/manifest") {
                counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                match &manifest {
                    Some(m) => ("200 OK", m.clone()),
                    None => ("404 Not Found", b"{}".to_vec()),
                }
            } else {
                (
                    "206 Partial Content",
                    content[from.min(content.len())..].to_vec(),
                )
            };
            let head = format!(
                "HTTP/1.1 {status}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                body.len()
            );
            let _ = conn.write_all(head.as_bytes()).await;
            if pieces.is_empty() {
                let _ = conn.write_all(&body).await;
            } else {
                let mut rest = &body[..];
                for n in pieces.iter().cycle() {
                    if rest.is_empty() {
                        break;
                    }
                    let (piece, after) = rest.split_at((*n).min(rest.len()));
                    rest = after;
                    if conn.write_all(piece).await.is_err() || conn.flush().await.is_err() {
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
            }
            let _ = conn.shutdown().await;
        }
    });
    (format!("http://{addr}"), asked)
}

/// Content of whole chunks, from a server that sends bytes past its
/// end: the download stops at the end, proven, instead of looking for
/// a chunk that is not there.
#[tokio::test]
async fn bytes_past_the_end_are_not_read() {
    let size = 2 * CHUNK_SIZE as usize;
    let content: Vec<u8> = (0..size).map(|i| (i * 7 % 253) as u8).collect();
    let mut h = content::ChunkHasher::default();
    h.update(&content);
    let manifest = h.finish(size as u64);
    let pkg = PackageRef {
        hash: blake3::hash(&content).to_hex().to_string(),
        ..package(size as u64)
    };
    let mut served = content.clone();
    served.extend_from_slice(b"and more the agent did not ask for");
    let (base, _) = serve_with(served, Some(manifest)).await;
    let cache = tempfile::tempdir().expect("tempdir");
    let client = client();
    let fetcher = Fetcher {
        client: &client,
        base: &base,
        cache: cache.path(),
    };
    let f = fetcher.ensure(&pkg, |_, _| {}).await.expect("fetched");
    assert_eq!(std::fs::read(&f.path).unwrap(), content);
}

/// Pieces of every size against the blocks the agent hashes and writes in
/// (straddling blocks and chunks, smaller than a byte of one, larger than
/// several, and a last chunk that is not whole): the file is the content,
/// and a piece that is not the content is still caught.
#[tokio::test]
async fn pieces_of_any_size_land_whole_and_checked() {
    const PIECES: &[usize] = &[1, 1023, 16_383, 16_385, 40_000, 70_001, 5, 300_000, 16_384];
    let size = 2 * CHUNK_SIZE as usize + 12_345;
    let content: Vec<u8> = (0..size).map(|i| (i * 31 % 251) as u8).collect();
    let mut h = content::ChunkHasher::default();
    h.update(&content);
    let manifest = h.finish(size as u64);
    let pkg = PackageRef {
        hash: blake3::hash(&content).to_hex().to_string(),
        ..package(size as u64)
    };
    let client = client();
    let (base, _) = serve_in_pieces(content.clone(), Some(manifest.clone()), PIECES).await;
    let cache = tempfile::tempdir().expect("tempdir");
    let fetcher = Fetcher {
        client: &client,
        base: &base,
        cache: cache.path(),
    };
    let f = fetcher.ensure(&pkg, |_, _| {}).await.expect("fetched");
    assert_eq!(std::fs::read(&f.path).unwrap(), content);

    // One byte wrong in the middle of the second chunk, every time: never
    // cached.
    let mut bad = content.clone();
    bad[CHUNK_SIZE as usize + 70_000] ^= 1;
    let (base, _) = serve_in_pieces(bad, Some(manifest), PIECES).await;
    let cache = tempfile::tempdir().expect("tempdir");
    let fetcher = Fetcher {
        client: &client,
        base: &base,
        cache: cache.path(),
    };
    match fetcher.ensure(&pkg, |_, _| {}).await {
        Err((FetchError::Fatal(m), _)) => assert!(m.contains("chunk 1 "), "{m}"),
        Err((e, _)) => panic!("expected a refusal, got {e:?}"),
        Ok(f) => panic!("corrupt content accepted at {}", f.path.display()),
    }
}

#[tokio::test]
async fn content_of_one_chunk_is_fetched_without_a_manifest_and_still_checked() {
    let content = b"#!/bin/sh\necho hello\n".to_vec();
    let pkg = PackageRef {
        hash: blake3::hash(&content).to_hex().to_string(),
        ..package(content.len() as u64)
    };
    let (base, asked) = serve_content(content.clone()).await;
    let cache = tempfile::tempdir().expect("tempdir");
    let client = client();
    let fetcher = Fetcher {
        client: &client,
        base: &base,
        cache: cache.path(),
    };
    let f = fetcher.ensure(&pkg, |_, _| {}).await.expect("fetched");
    assert_eq!(std::fs::read(&f.path).unwrap(), content);
    assert_eq!(asked.load(std::sync::atomic::Ordering::SeqCst), 0);
    // Bytes that are not what the address says are refused, never
    // cached: the one chunk is checked against the address.
    let (base, _) = serve_content(b"#!/bin/sh\nrm -rf ~\n".to_vec()).await;
    let cache = tempfile::tempdir().expect("tempdir");
    let fetcher = Fetcher {
        client: &client,
        base: &base,
        cache: cache.path(),
    };
    let pkg = PackageRef { size: 19, ..pkg };
    match fetcher.ensure(&pkg, |_, _| {}).await {
        Err((FetchError::Fatal(m), _)) => assert!(m.contains("failed verification"), "{m}"),
        Err((e, _)) => panic!("expected a refusal, got {e:?}"),
        Ok(f) => panic!("corrupt content accepted at {}", f.path.display()),
    }
    assert!(!cache.path().join(&pkg.hash).exists());
}
