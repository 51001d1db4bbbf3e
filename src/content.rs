//! The format of content-addressed blobs, shared by the content store that
//! writes them, the server that serves them and the agent that verifies
//! them: where a blob lives, and its chunk manifest.
//!
//! A blob's address is its BLAKE3 hash. BLAKE3 is a tree: every
//! [`CHUNK_SIZE`]-aligned chunk of a larger blob is a complete subtree, and
//! the address is those subtrees' chaining values merged up to the root.
//! The manifest lists them, so an agent proves the manifest against the
//! address before it downloads anything, then checks each chunk with one
//! hashing pass and needs no second pass over the whole file.

use std::path::{Path, PathBuf};

use blake3::hazmat::{
    ChainingValue, HasherExt, Mode, merge_subtrees_non_root, merge_subtrees_root,
};
use serde::{Deserialize, Serialize};

/// Bytes per verified chunk of content: a power of two of BLAKE3's own
/// 1 KiB chunks, so each is a subtree of the blob's hash.
pub const CHUNK_SIZE: u64 = 1 << 20;

/// Chunk hashes of a blob, made at registration from the bytes as
/// registered; served as `GET /v1/content/{hash}/manifest`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Manifest {
    pub size: u64,
    pub chunk_size: u64,
    /// BLAKE3 of each chunk on its own, hex: what agents before the
    /// chunk tree verify against.
    pub chunks: Vec<String>,
    /// Each chunk's chaining value as a subtree of the blob, hex (empty
    /// for a blob of one chunk, whose hash is its address).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tree: Vec<String>,
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
            tree: Vec::new(),
        })
    }
}

/// A hasher for chunk `index` of a blob of more than one chunk: what it
/// is fed gives that chunk's chaining value ([`chunk_value`]).
pub fn chunk_hasher(index: u64) -> blake3::Hasher {
    let mut h = blake3::Hasher::new();
    h.set_input_offset(index * CHUNK_SIZE);
    h
}

/// The chaining value of the chunk fed to `h` (from [`chunk_hasher`]).
pub fn chunk_value(h: &blake3::Hasher) -> ChainingValue {
    h.finalize_non_root()
}

/// Hashes one whole blob's chunks as they stream past, for a manifest:
/// each chunk's own hash and its chaining value.
pub struct ChunkHasher {
    index: u64,
    fill: u64,
    own: blake3::Hasher,
    subtree: blake3::Hasher,
    pub chunks: Vec<String>,
    pub tree: Vec<String>,
}

impl Default for ChunkHasher {
    fn default() -> Self {
        ChunkHasher {
            index: 0,
            fill: 0,
            own: blake3::Hasher::new(),
            subtree: chunk_hasher(0),
            chunks: Vec::new(),
            tree: Vec::new(),
        }
    }
}

impl ChunkHasher {
    pub fn update(&mut self, mut bytes: &[u8]) {
        while !bytes.is_empty() {
            let take = ((CHUNK_SIZE - self.fill) as usize).min(bytes.len());
            self.own.update(&bytes[..take]);
            self.subtree.update(&bytes[..take]);
            self.fill += take as u64;
            bytes = &bytes[take..];
            if self.fill == CHUNK_SIZE {
                self.close();
            }
        }
    }

    fn close(&mut self) {
        self.chunks.push(self.own.finalize().to_hex().to_string());
        self.tree.push(hex::encode(chunk_value(&self.subtree)));
        self.index += 1;
        self.fill = 0;
        self.own.reset();
        self.subtree = chunk_hasher(self.index);
    }

    /// The manifest of the `size` bytes fed.
    pub fn finish(mut self, size: u64) -> Manifest {
        if self.fill > 0 {
            self.close();
        }
        if self.chunks.len() < 2 {
            self.tree.clear();
        }
        Manifest {
            size,
            chunk_size: CHUNK_SIZE,
            chunks: self.chunks,
            tree: self.tree,
        }
    }
}

/// The blob hash that chunk chaining values `cvs` (in order, at least
/// two) merge to: BLAKE3's tree, whose left subtree at every level holds
/// the largest power of two of chunks that leaves at least one chunk to
/// the right.
pub fn root_of(cvs: &[ChainingValue]) -> Option<blake3::Hash> {
    fn subtree(cvs: &[ChainingValue]) -> ChainingValue {
        if cvs.len() == 1 {
            return cvs[0];
        }
        let (l, r) = cvs.split_at(left_len(cvs.len()));
        merge_subtrees_non_root(&subtree(l), &subtree(r), Mode::Hash)
    }
    fn left_len(n: usize) -> usize {
        1 << (usize::BITS - 1 - (n - 1).leading_zeros())
    }
    if cvs.len() < 2 {
        return None;
    }
    let (l, r) = cvs.split_at(left_len(cvs.len()));
    Some(merge_subtrees_root(&subtree(l), &subtree(r), Mode::Hash))
}

/// Where the blob `hash` lives under the content root `root`: one folder
/// per first two hex digits, so no folder holds more than a few thousand.
pub fn blob_path(root: &Path, hash: &str) -> PathBuf {
    let prefix = hash.get(..2).unwrap_or("00");
    root.join(prefix).join(hash)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The chunk tree merges to `blake3::hash` of the whole for sizes
    /// around every boundary that shapes the tree: 2, 3, 4, 5 and 8
    /// chunks, a byte more or less.
    #[test]
    fn chunk_values_merge_to_the_blob_hash() {
        let c = CHUNK_SIZE as usize;
        let data: Vec<u8> = (0..9 * c + 7).map(|i| (i * 31 % 251) as u8).collect();
        for size in [
            c + 1,
            2 * c,
            2 * c + 1,
            3 * c - 1,
            3 * c,
            4 * c,
            4 * c + 1,
            5 * c + 3,
            8 * c,
            9 * c + 7,
        ] {
            let bytes = &data[..size];
            let mut h = ChunkHasher::default();
            // Fed in odd pieces, as a stream delivers them.
            for piece in bytes.chunks(70_001) {
                h.update(piece);
            }
            let m = h.finish(size as u64);
            assert_eq!(m.chunks.len(), size.div_ceil(c), "{size}");
            assert_eq!(m.tree.len(), m.chunks.len(), "{size}");
            let cvs: Vec<ChainingValue> = m
                .tree
                .iter()
                .map(|x| hex::decode(x).unwrap().try_into().unwrap())
                .collect();
            assert_eq!(root_of(&cvs), Some(blake3::hash(bytes)), "{size}");
            // A chunk's own hash stays what agents before the tree check.
            assert_eq!(
                m.chunks[1],
                blake3::hash(&bytes[c..size.min(2 * c)]).to_hex().as_str()
            );
            // Swapping two chunks' values breaks the proof.
            let mut swapped = cvs.clone();
            swapped.swap(0, 1);
            assert_ne!(root_of(&swapped), Some(blake3::hash(bytes)), "{size}");
        }
    }

    #[test]
    fn one_chunk_has_no_tree() {
        let mut h = ChunkHasher::default();
        h.update(b"hello");
        let m = h.finish(5);
        assert_eq!(
            m,
            Manifest::of_small(5, blake3::hash(b"hello").to_hex().as_str()).unwrap()
        );
        assert_eq!(root_of(&[[0; 32]]), None);
    }
}
