//! The format of content-addressed blobs, shared by the content store that
//! writes them, the server that serves them and the agent that verifies
//! them: where a blob lives, and its chunk manifest.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// Bytes per verified chunk of content.
pub const CHUNK_SIZE: u64 = 1 << 20;

/// Chunk hashes of a blob, made at registration from the bytes as
/// registered; served as `GET /v1/content/{hash}/manifest`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Manifest {
    pub size: u64,
    pub chunk_size: u64,
    /// BLAKE3 of each chunk, hex.
    pub chunks: Vec<String>,
}

impl Manifest {
    /// The manifest of content of at most one chunk, known without asking
    /// the server: its one chunk is the whole content, whose BLAKE3 is its
    /// address (`hash`). None for larger content.
    pub fn of_small(size: u64, hash: &str) -> Option<Manifest> {
        (size <= CHUNK_SIZE).then(|| Manifest {
            size,
            chunk_size: CHUNK_SIZE,
            chunks: if size == 0 {
                Vec::new()
            } else {
                vec![hash.to_string()]
            },
        })
    }
}

/// Where the blob `hash` lives under the content root `root`: one folder
/// per first two hex digits, so no folder holds more than a few thousand.
pub fn blob_path(root: &Path, hash: &str) -> PathBuf {
    let prefix = hash.get(..2).unwrap_or("00");
    root.join(prefix).join(hash)
}
