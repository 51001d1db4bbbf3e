//! Content download: by hash, over HTTPS with Range, each chunk verified
//! against the manifest, resumed after any break.
//!
//! Invariant: a file reaches its final cache path only when every chunk
//! holds against a manifest that itself holds against the address (its
//! chunk tree merges to the content's BLAKE3, checked before the first
//! byte is fetched); a corrupted chunk is fetched again and never used.
//! Each byte is hashed once, in 16 KiB blocks as it arrives, and written
//! into the partial file past the verified prefix, where nothing reads it
//! until its chunk holds: no chunk buffer, no second pass over the file.
//!
//! The cache is not synced to disk: nothing trusts it without checking.
//! A file at its final path is hashed again before every reuse, and a
//! partial one is verified chunk by chunk before a download resumes it; so
//! what a power loss leaves (a short file, zeros) is fetched again, never
//! run. Syncing 256 MiB per agent made a fan-out wait for the disk
//! (docs/PERFORMANCE.md).

use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use futures_util::StreamExt;

use blake3::hazmat::ChainingValue;

use crate::content;
use crate::proto::{CHUNK_SIZE, Manifest, PackageRef};

/// Tries in a row without progress before a download gives up.
const MAX_STALLS: u32 = 8;
/// Times one chunk may arrive corrupted before the download fails.
const MAX_CORRUPT: u32 = 3;
/// Received bytes are hashed and written in whole blocks of this size,
/// aligned within their chunk (it divides [`CHUNK_SIZE`]); only the
/// bytes that do not make a whole block of a piece are copied aside.
/// Pieces come off the connection at sizes TLS and HTTP choose, not
/// multiples of BLAKE3's 1 KiB chunks: hashing them as they come ran at
/// half speed (2.0 against 4.2 GB/s here for 16,000-byte pieces against
/// 16 KiB ones). And the size of each write sets what the kernel's copy
/// into the page cache costs, which is where 20 agents writing at once
/// spend their CPU: 20 concurrent `dd` of 256 MiB took 2.6 to 2.9 s of
/// system CPU with 16 KiB writes in every run, 2.7 to 7.8 s with 64 KiB,
/// 13 to 14 s with 1 MiB (Linux 6.18, docs/PERFORMANCE.md).
const BLOCK_SIZE: usize = 16 << 10;
const _: () = assert!(CHUNK_SIZE.is_multiple_of(BLOCK_SIZE as u64));

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
        // Content of one chunk needs no manifest: its chunk is checked
        // against its address. One request fewer per agent and package,
        // which a fleet of small packages (scripts, configurations) feels.
        let manifest = match Manifest::of_small(pkg.size, &pkg.hash) {
            Some(m) => m,
            None => self.manifest(&pkg.hash).await?,
        };
        check_manifest(pkg, &manifest)?;
        let proof = Proof::of(pkg, &manifest)?;
        let part_path = self.cache.join(format!("{}.part", pkg.hash));
        let cs = manifest.chunk_size;
        let (mut part, mut verified) = {
            let path = part_path.clone();
            let (m, p) = (manifest.clone(), proof.clone());
            tokio::task::spawn_blocking(move || open_part(&path, &m, &p))
                .await
                .map_err(|e| FetchError::Transient(e.to_string()))?
                .map_err(|e| FetchError::Transient(format!("cache: {e}")))?
        };
        let resumed_from = verified;
        let mut stalls = 0u32;
        let mut corrupt = 0u32;
        let cache_write = |e: std::io::Error| FetchError::Transient(format!("cache write: {e}"));
        // Pieces arrive in whatever sizes TLS and HTTP cut them; they are
        // gathered into aligned blocks, each hashed and written at once.
        let mut block: Vec<u8> = Vec::with_capacity(BLOCK_SIZE);
        while verified < manifest.size {
            let before = verified;
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
                Ok(r) if final_refusal(r.status()) => {
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
            // Each block is hashed and written as it fills, past the
            // verified prefix; the chunk counts only once its hash holds,
            // and a chunk that fails is written over by its next try.
            part.seek(SeekFrom::Start(verified)).map_err(cache_write)?;
            let mut hasher = proof.hasher(verified / cs);
            let mut filled = 0usize;
            block.clear();
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
                    if verified == manifest.size {
                        // A server that sends past the end is not read
                        // further: there is no chunk there to check.
                        break 'stream;
                    }
                    let len = chunk_len(&manifest, verified);
                    let want = len - filled;
                    let ready: &[u8] = if block.is_empty() && rest.len() >= BLOCK_SIZE.min(want) {
                        // Whole blocks (or the chunk's end) straight from
                        // the piece.
                        let n = if rest.len() >= want {
                            want
                        } else {
                            rest.len() / BLOCK_SIZE * BLOCK_SIZE
                        };
                        let (ready, after) = rest.split_at(n);
                        rest = after;
                        ready
                    } else {
                        let take = (BLOCK_SIZE - block.len())
                            .min(want - block.len())
                            .min(rest.len());
                        block.extend_from_slice(&rest[..take]);
                        rest = &rest[take..];
                        if block.len() < BLOCK_SIZE && block.len() < want {
                            continue;
                        }
                        &block
                    };
                    hasher.update(ready);
                    for w in ready.chunks(BLOCK_SIZE) {
                        part.write_all(w).map_err(cache_write)?;
                    }
                    filled += ready.len();
                    block.clear();
                    if filled < len {
                        continue;
                    }
                    let index = verified / cs;
                    if !proof.holds(&manifest, index, &hasher) {
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
                        break 'stream;
                    }
                    verified += len as u64;
                    filled = 0;
                    hasher = proof.hasher(index + 1);
                    progress(verified, *transferred);
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
        // Every chunk held against a manifest that itself holds against
        // the address: the file is the content, and needs no second pass.
        part.set_len(manifest.size).map_err(cache_write)?;
        drop(part);
        std::fs::rename(&part_path, &done)
            .map_err(|e| FetchError::Transient(format!("cache: {e}")))?;
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
                Ok(r) if r.status().is_success() => return read_manifest(r).await,
                Ok(r) if final_refusal(r.status()) => {
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

/// The longest manifest read: 64 hex digits and quotes a chunk, 1,024
/// chunks for the largest package, with room to spare.
const MANIFEST_MAX: usize = 1 << 20;

/// Reads a manifest's body, refusing one longer than `MANIFEST_MAX` as
/// it arrives: a hostile or broken server cannot make the agent buffer
/// gigabytes.
async fn read_manifest(mut r: reqwest::Response) -> Result<Manifest, FetchError> {
    let mut body = Vec::new();
    while let Some(part) = r
        .chunk()
        .await
        .map_err(|e| FetchError::Transient(format!("manifest: {e}")))?
    {
        if body.len() + part.len() > MANIFEST_MAX {
            return Err(FetchError::Fatal(format!(
                "the server's manifest is longer than {} KiB",
                MANIFEST_MAX >> 10
            )));
        }
        body.extend_from_slice(&part);
    }
    serde_json::from_slice(&body).map_err(|e| FetchError::Fatal(format!("manifest: {e}")))
}

/// Refuses a manifest the content cannot be verified against. Its chunks
/// must be the size this agent hashes ([`CHUNK_SIZE`]): the download loop
/// divides by it and allocates a buffer of it, so neither 0 nor a size a
/// server picked may reach them. Its size must be the package's, and its
/// chunk count the one that size makes.
fn check_manifest(pkg: &PackageRef, m: &Manifest) -> Result<(), FetchError> {
    if m.chunk_size != CHUNK_SIZE {
        return Err(FetchError::Fatal(format!(
            "manifest of {} uses chunks of {} bytes, not the {CHUNK_SIZE} bytes this agent verifies",
            pkg.hash, m.chunk_size
        )));
    }
    let expected = m.size.div_ceil(CHUNK_SIZE);
    if m.size != pkg.size || m.chunks.len() as u64 != expected {
        return Err(FetchError::Fatal(format!(
            "manifest of {} does not match the package ({} bytes in {} chunks; expected {} bytes in {} chunks)",
            pkg.hash,
            m.size,
            m.chunks.len(),
            pkg.size,
            pkg.size.div_ceil(CHUNK_SIZE)
        )));
    }
    Ok(())
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

/// Opens the partial file and keeps only its leading chunks that verify;
/// returns it and their length.
fn open_part(path: &Path, m: &Manifest, proof: &Proof) -> std::io::Result<(std::fs::File, u64)> {
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
        let index = good / m.chunk_size;
        let mut h = proof.hasher(index);
        h.update(&buf[..want]);
        if !proof.holds(m, index, &h) {
            break;
        }
        good += want as u64;
    }
    f.set_len(good)?;
    reserve(&f, m.size);
    Ok((f, good))
}

/// Reserves the disk the whole file will take, past its end (its length
/// stays what was verified). A full disk is then found before the
/// download rather than during it; and on ext4 the chunks written later
/// fill reserved, unwritten extents, which the journal does not make wait:
/// without this, every small synced write of this agent (its attempt
/// record, its report) waited for the whole download's pages to reach the
/// disk first (ext4's ordered data mode), and a fan-out to 20 agents on
/// one disk spent seconds in it (docs/PERFORMANCE.md). Where the file
/// system cannot (tmpfs, FAT), nothing is reserved.
#[cfg(target_os = "linux")]
fn reserve(f: &std::fs::File, size: u64) {
    use nix::fcntl::{FallocateFlags, fallocate};
    if let Ok(len) = i64::try_from(size) {
        let _ = fallocate(f, FallocateFlags::FALLOC_FL_KEEP_SIZE, 0, len);
    }
}

#[cfg(not(target_os = "linux"))]
fn reserve(_: &std::fs::File, _: u64) {}

/// How each chunk is proven to be the content's.
#[derive(Clone)]
enum Proof {
    /// Content of one chunk: its BLAKE3 is the address.
    Whole,
    /// Each chunk's chaining value, from a manifest whose values merge to
    /// the address (checked before anything is downloaded).
    Tree(Vec<ChainingValue>),
}

impl Proof {
    /// Proves the manifest against the address: a manifest that does not
    /// add up is refused before any content is fetched.
    fn of(pkg: &PackageRef, m: &Manifest) -> Result<Proof, FetchError> {
        if m.chunks.len() < 2 {
            return Ok(Proof::Whole);
        }
        if m.tree.len() != m.chunks.len() {
            return Err(FetchError::Fatal(format!(
                "the server's manifest of {} has no chunk tree; the server is older than this agent: update it",
                pkg.hash
            )));
        }
        let cvs = m
            .tree
            .iter()
            .map(|x| {
                let mut cv = [0u8; 32];
                hex::decode_to_slice(x, &mut cv).map(|_| cv)
            })
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| FetchError::Fatal(format!("manifest of {}: {e}", pkg.hash)))?;
        if content::root_of(&cvs).is_none_or(|h| h.to_hex().as_str() != pkg.hash) {
            return Err(FetchError::Fatal(format!(
                "the server's manifest of {} does not add up to its hash: refused before download",
                pkg.hash
            )));
        }
        Ok(Proof::Tree(cvs))
    }

    fn hasher(&self, index: u64) -> blake3::Hasher {
        match self {
            Proof::Whole => blake3::Hasher::new(),
            Proof::Tree(_) => content::chunk_hasher(index),
        }
    }

    /// Whether chunk `index`, fed whole to `h` (from [`Proof::hasher`]),
    /// is the content's.
    fn holds(&self, m: &Manifest, index: u64, h: &blake3::Hasher) -> bool {
        match self {
            Proof::Whole => h.finalize().to_hex().as_str() == m.chunks[index as usize],
            Proof::Tree(cvs) => content::chunk_value(h) == cvs[index as usize],
        }
    }
}

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

/// A 4xx the server will answer again the same way: the request is
/// refused for good. 408 (the request came too slowly) and 429 (too many
/// at once) pass, like 5xx: the agent tries again later.
pub(crate) fn final_refusal(status: reqwest::StatusCode) -> bool {
    status.is_client_error()
        && status != reqwest::StatusCode::REQUEST_TIMEOUT
        && status != reqwest::StatusCode::TOO_MANY_REQUESTS
}

#[cfg(test)]
#[path = "fetch_tests.rs"]
mod tests;
