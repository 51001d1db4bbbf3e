//! Content download: by hash, over HTTPS with Range, each chunk verified
//! against the manifest before it is written, resumed after any break.
//!
//! Invariant: a file reaches its final cache path only when every chunk
//! and the whole-file BLAKE3 match; a corrupted chunk is fetched again and
//! never used. Memory is one chunk buffer.

use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use futures_util::StreamExt;

use crate::proto::{Manifest, PackageRef};

/// Tries in a row without progress before a download gives up.
const MAX_STALLS: u32 = 8;
/// Times one chunk may arrive corrupted before the download fails.
const MAX_CORRUPT: u32 = 3;

#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    /// The network or the server failed; worth retrying later.
    #[error("{0}")]
    Transient(String),
    /// The content cannot be had as it should be (corrupt at the source,
    /// size mismatch, refused); retrying will not help.
    #[error("{0}")]
    Fatal(String),
}

/// What a download did: where the verified file is and how many bytes
/// crossed the network for it.
pub struct Fetched {
    pub path: PathBuf,
    pub transferred: u64,
    /// Where the download started, when it resumed a partial file.
    pub resumed_from: u64,
}

pub struct Fetcher<'a> {
    pub client: &'a reqwest::Client,
    /// `https://host:port`
    pub base: &'a str,
    pub cache: &'a Path,
}

impl Fetcher<'_> {
    /// Makes sure the content of `pkg` is in the cache, downloading what is
    /// missing. `progress` is told the verified byte count as it grows and
    /// the bytes transferred.
    pub async fn ensure(
        &self,
        pkg: &PackageRef,
        progress: impl FnMut(u64, u64),
    ) -> Result<Fetched, (FetchError, u64)> {
        let mut transferred = 0u64;
        self.fetch(pkg, progress, &mut transferred)
            .await
            .map_err(|e| (e, transferred))
    }

    /// The download itself; `transferred` counts every byte received, so
    /// a failed attempt still reports what it cost.
    async fn fetch(
        &self,
        pkg: &PackageRef,
        mut progress: impl FnMut(u64, u64),
        transferred: &mut u64,
    ) -> Result<Fetched, FetchError> {
        let done = self.cache.join(&pkg.hash);
        if std::fs::metadata(&done).is_ok_and(|m| m.len() == pkg.size) {
            // The cached copy is used by earlier runs' commands (it is
            // linked into their work dirs): check it is still what it was
            // before running it again; a changed one is fetched anew.
            let (path, hash) = (done.clone(), pkg.hash.clone());
            let intact =
                tokio::task::spawn_blocking(move || hash_file(&path).is_ok_and(|h| h == hash))
                    .await
                    .unwrap_or(false);
            if intact {
                return Ok(Fetched {
                    path: done,
                    transferred: 0,
                    resumed_from: pkg.size,
                });
            }
            tracing::warn!(hash = %pkg.hash, "cached content changed since download; fetching it again");
            let _ = std::fs::remove_file(&done);
        }
        let manifest = self.manifest(&pkg.hash).await?;
        if manifest.size != pkg.size
            || manifest.chunks.len() as u64 != manifest.size.div_ceil(manifest.chunk_size)
        {
            return Err(FetchError::Fatal(format!(
                "manifest of {} does not match the package ({} bytes, {} chunks)",
                pkg.hash,
                manifest.size,
                manifest.chunks.len()
            )));
        }
        let part_path = self.cache.join(format!("{}.part", pkg.hash));
        let cs = manifest.chunk_size;
        let (mut part, mut verified) = {
            let path = part_path.clone();
            let m = manifest.clone();
            tokio::task::spawn_blocking(move || open_part(&path, &m))
                .await
                .map_err(|e| FetchError::Transient(e.to_string()))?
                .map_err(|e| FetchError::Transient(format!("cache: {e}")))?
        };
        let resumed_from = verified;
        let mut stalls = 0u32;
        let mut corrupt = 0u32;
        let mut buf: Vec<u8> = Vec::with_capacity(cs as usize);
        while verified < manifest.size {
            let before = verified;
            buf.clear();
            let url = format!("{}/v1/content/{}", self.base, pkg.hash);
            let resp = self
                .client
                .get(&url)
                .header(reqwest::header::RANGE, format!("bytes={verified}-"))
                .timeout(Duration::from_secs(3600))
                .send()
                .await;
            let resp = match resp {
                Ok(r) if r.status() == reqwest::StatusCode::PARTIAL_CONTENT => r,
                Ok(r) if r.status().is_client_error() => {
                    return Err(FetchError::Fatal(format!(
                        "server refused the content: {}",
                        error_text(r).await
                    )));
                }
                Ok(r) => {
                    let msg = format!("content request: HTTP {}", r.status());
                    stall(&mut stalls, msg).await?;
                    continue;
                }
                Err(e) => {
                    stall(&mut stalls, format!("content request: {e}")).await?;
                    continue;
                }
            };
            let mut body = resp.bytes_stream();
            let mut broken: Option<String> = None;
            'stream: while let Some(piece) = body.next().await {
                let piece = match piece {
                    Ok(p) => p,
                    Err(e) => {
                        broken = Some(format!("transfer broke at {verified} bytes: {e}"));
                        break;
                    }
                };
                *transferred += piece.len() as u64;
                let mut rest = &piece[..];
                while !rest.is_empty() {
                    let want = chunk_len(&manifest, verified) - buf.len();
                    let take = want.min(rest.len());
                    buf.extend_from_slice(&rest[..take]);
                    rest = &rest[take..];
                    if buf.len() == chunk_len(&manifest, verified) {
                        let index = (verified / cs) as usize;
                        if blake3::hash(&buf).to_hex().as_str() != manifest.chunks[index] {
                            corrupt += 1;
                            tracing::warn!(
                                chunk = index,
                                "chunk failed verification; fetching it again"
                            );
                            if corrupt > MAX_CORRUPT {
                                return Err(FetchError::Fatal(format!(
                                    "chunk {index} of {} failed verification {corrupt} times: the server's copy may be damaged",
                                    pkg.hash
                                )));
                            }
                            buf.clear();
                            break 'stream;
                        }
                        part.seek(SeekFrom::Start(verified))
                            .and_then(|_| part.write_all(&buf))
                            .map_err(|e| FetchError::Transient(format!("cache write: {e}")))?;
                        verified += buf.len() as u64;
                        buf.clear();
                        progress(verified, *transferred);
                    }
                }
            }
            if verified > before {
                stalls = 0;
            }
            if let Some(msg) = broken
                && verified < manifest.size
            {
                if verified == before {
                    stall(&mut stalls, msg).await?;
                } else {
                    tracing::info!("{msg}; resuming");
                }
            }
        }
        part.sync_all()
            .map_err(|e| FetchError::Transient(format!("cache: {e}")))?;
        drop(part);
        let (pp, dp, hash) = (part_path.clone(), done.clone(), pkg.hash.clone());
        tokio::task::spawn_blocking(move || finish(&pp, &dp, &hash))
            .await
            .map_err(|e| FetchError::Transient(e.to_string()))??;
        Ok(Fetched {
            path: done,
            transferred: *transferred,
            resumed_from,
        })
    }

    async fn manifest(&self, hash: &str) -> Result<Manifest, FetchError> {
        let mut stalls = 0;
        loop {
            let url = format!("{}/v1/content/{hash}/manifest", self.base);
            match self
                .client
                .get(&url)
                .timeout(Duration::from_secs(120))
                .send()
                .await
            {
                Ok(r) if r.status().is_success() => {
                    return r
                        .json::<Manifest>()
                        .await
                        .map_err(|e| FetchError::Transient(format!("manifest: {e}")));
                }
                Ok(r) if r.status().is_client_error() => {
                    return Err(FetchError::Fatal(format!(
                        "server refused the manifest: {}",
                        error_text(r).await
                    )));
                }
                Ok(r) => stall(&mut stalls, format!("manifest: HTTP {}", r.status())).await?,
                Err(e) => stall(&mut stalls, format!("manifest: {e}")).await?,
            }
        }
    }
}

/// Length of the chunk that starts at `offset`.
fn chunk_len(m: &Manifest, offset: u64) -> usize {
    (m.size - offset).min(m.chunk_size) as usize
}

/// Counts a try without progress and waits before the next; gives up
/// after [`MAX_STALLS`].
async fn stall(stalls: &mut u32, msg: String) -> Result<(), FetchError> {
    *stalls += 1;
    if *stalls > MAX_STALLS {
        return Err(FetchError::Transient(msg));
    }
    let wait = Duration::from_millis(250 << (*stalls).min(7));
    tracing::info!("{msg}; retrying in {wait:?}");
    tokio::time::sleep(wait).await;
    Ok(())
}

pub async fn error_text(r: reqwest::Response) -> String {
    let status = r.status();
    match r.json::<crate::proto::ErrorBody>().await {
        Ok(b) => b.error,
        Err(_) => format!("HTTP {status}"),
    }
}

/// Opens the partial file and keeps only its leading chunks that verify.
fn open_part(path: &Path, m: &Manifest) -> std::io::Result<(std::fs::File, u64)> {
    let mut f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)?;
    let len = f.metadata()?.len().min(m.size);
    let mut good = 0u64;
    let mut buf = vec![0u8; m.chunk_size as usize];
    f.seek(SeekFrom::Start(0))?;
    while good < len {
        let want = chunk_len(m, good);
        if good + want as u64 > len {
            break;
        }
        f.read_exact(&mut buf[..want])?;
        let index = (good / m.chunk_size) as usize;
        if blake3::hash(&buf[..want]).to_hex().as_str() != m.chunks[index] {
            break;
        }
        good += want as u64;
    }
    f.set_len(good)?;
    Ok((f, good))
}

/// Checks the whole file against its address and moves it into place.
/// BLAKE3 of a file, hex, streamed through a fixed buffer.
fn hash_file(path: &Path) -> std::io::Result<String> {
    let mut f = std::fs::File::open(path)?;
    let mut h = blake3::Hasher::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(h.finalize().to_hex().to_string())
}

fn finish(part: &Path, done: &Path, hash: &str) -> Result<(), FetchError> {
    let got = hash_file(part).map_err(|e| FetchError::Transient(e.to_string()))?;
    if got != hash {
        let _ = std::fs::remove_file(part);
        return Err(FetchError::Fatal(format!(
            "downloaded content does not match its hash {hash}"
        )));
    }
    std::fs::rename(part, done).map_err(|e| FetchError::Transient(format!("cache: {e}")))
}
