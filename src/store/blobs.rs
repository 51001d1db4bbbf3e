//! The content store: registered files, addressed by their BLAKE3 hash.
//!
//! A file is streamed into `tmp/` while both hashes are computed, fsynced,
//! and only then renamed to `<first two hex digits>/<hash>`. A blob at its
//! final path is therefore always complete and always matches its name.
//!
//! Invariant: nothing here holds a whole file in memory; the copy buffer is
//! fixed-size.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use anyhow::{Context, Result};
use sha2::{Digest, Sha256};

use crate::content::{CHUNK_SIZE, ChunkHasher, Manifest, blob_path};
use crate::datadir::create_private_dir;

const COPY_BUFFER: usize = 1 << 20;

pub struct ContentStore {
    root: PathBuf,
}

/// A file copied into `tmp/` and hashed, not yet at its address. Dropping it
/// without [`ContentStore::commit`] removes the copy, so a refused
/// registration leaves nothing behind.
#[derive(Debug)]
pub struct Staged {
    path: PathBuf,
    pub size: u64,
    pub hash: String,
    pub sha256: String,
    /// The manifest agents verify downloads against, made from the bytes
    /// as registered.
    manifest: Option<Manifest>,
}

impl Staged {
    /// The staged copy, for inspection before it is committed.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for Staged {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.path);
    }
}

/// Why staging stopped early.
#[derive(Debug, thiserror::Error)]
pub enum StageError {
    #[error("larger than {limit} bytes")]
    TooLarge { limit: u64 },
    #[error(transparent)]
    Io(#[from] io::Error),
}

impl ContentStore {
    pub fn open(root: PathBuf) -> Result<ContentStore> {
        create_private_dir(&root.join("tmp"))?;
        Ok(ContentStore { root })
    }

    /// A handle on an existing content store, for readers in other threads.
    pub fn at(root: PathBuf) -> ContentStore {
        ContentStore { root }
    }

    /// Final path of the blob with this hash.
    pub fn path(&self, hash: &str) -> PathBuf {
        blob_path(&self.root, hash)
    }

    pub fn contains(&self, hash: &str) -> bool {
        self.path(hash).is_file()
    }

    /// Copies `src` into `tmp/`, hashing as it goes, refusing past `limit`
    /// bytes (checked while reading: the source may grow under us).
    pub fn stage(&self, src: &mut impl Read, limit: u64) -> Result<Staged, StageError> {
        static SEQ: AtomicU64 = AtomicU64::new(0);
        let name = format!(
            "{}-{}-{}",
            std::process::id(),
            SEQ.fetch_add(1, Ordering::Relaxed),
            jiff::Timestamp::now().as_nanosecond()
        );
        let path = self.root.join("tmp").join(name);
        let mut out = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)?;
        // From here on the Staged guard owns the file and removes it on error.
        let mut staged = Staged {
            path,
            size: 0,
            hash: String::new(),
            sha256: String::new(),
            manifest: None,
        };
        let mut b3 = blake3::Hasher::new();
        let mut chunks = ChunkHasher::default();
        let mut sha = Sha256::new();
        let mut buf = vec![0u8; COPY_BUFFER];
        loop {
            let n = match src.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e.into()),
            };
            staged.size += n as u64;
            if staged.size > limit {
                return Err(StageError::TooLarge { limit });
            }
            b3.update(&buf[..n]);
            sha.update(&buf[..n]);
            chunks.update(&buf[..n]);
            out.write_all(&buf[..n])?;
        }
        staged.manifest = Some(chunks.finish(staged.size));
        out.sync_all()?;
        staged.hash = b3.finalize().to_hex().to_string();
        staged.sha256 = hex::encode(sha.finalize());
        Ok(staged)
    }

    /// Moves a staged copy to its address. Identical content already stored
    /// is kept and the copy dropped.
    pub fn commit(&self, mut staged: Staged) -> Result<PathBuf> {
        let dest = self.path(&staged.hash);
        if dest.is_file() {
            return Ok(dest);
        }
        let Some(manifest) = staged.manifest.take() else {
            anyhow::bail!("content store: {} was not staged whole", staged.hash);
        };
        let dir = dest.parent().unwrap_or(&self.root);
        create_private_dir(dir)?;
        // The manifest goes first: a blob at its address always has one.
        let mpath = dest.with_extension("manifest");
        fs::write(&mpath, serde_json::to_vec(&manifest)?)
            .with_context(|| format!("content store: cannot write {}", mpath.display()))?;
        fs::rename(&staged.path, &dest)
            .with_context(|| format!("content store: cannot move blob to {}", dest.display()))?;
        sync_dir(dir);
        // The rename consumed the staged file; the guard's remove is a no-op.
        drop(staged);
        Ok(dest)
    }

    /// Removes a blob no package references any more.
    pub fn remove(&self, hash: &str) -> Result<()> {
        let _ = fs::remove_file(self.path(hash).with_extension("manifest"));
        match fs::remove_file(self.path(hash)) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(e).with_context(|| format!("content store: cannot remove {hash}")),
        }
    }

    pub fn open_blob(&self, hash: &str) -> io::Result<File> {
        File::open(self.path(hash))
    }

    /// Chunk hashes of a blob, computed on first request and kept beside
    /// it (content never changes, so neither does its manifest). One kept
    /// from before the chunk tree is made again.
    pub fn manifest(&self, hash: &str) -> io::Result<Manifest> {
        let cached = self.path(hash).with_extension("manifest");
        if let Ok(text) = fs::read_to_string(&cached)
            && let Ok(m) = serde_json::from_str::<Manifest>(&text)
            && (m.size <= CHUNK_SIZE || !m.tree.is_empty())
        {
            return Ok(m);
        }
        let mut f = self.open_blob(hash)?;
        let size = f.metadata()?.len();
        let mut chunks = ChunkHasher::default();
        let mut buf = vec![0u8; CHUNK_SIZE as usize];
        loop {
            let n = read_full(&mut f, &mut buf)?;
            if n == 0 {
                break;
            }
            chunks.update(&buf[..n]);
        }
        let m = chunks.finish(size);
        let tmp = cached.with_extension(format!("manifest.{}", std::process::id()));
        if fs::write(&tmp, serde_json::to_vec(&m).map_err(io::Error::other)?).is_ok() {
            let _ = fs::rename(&tmp, &cached);
        }
        Ok(m)
    }
}

/// Reads until `buf` is full or the file ends; returns the bytes read.
pub fn read_full(r: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// Makes a rename durable. Best effort: some filesystems refuse to fsync a
/// directory, and the rename itself is already atomic.
fn sync_dir(dir: &Path) {
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stages_hashes_and_commits() {
        let t = tempfile::tempdir().unwrap();
        let cs = ContentStore::open(t.path().to_path_buf()).unwrap();
        let data = b"hello courier".to_vec();
        let staged = cs.stage(&mut &data[..], 1 << 20).unwrap();
        assert_eq!(staged.size, data.len() as u64);
        assert_eq!(staged.hash, blake3::hash(&data).to_hex().to_string());
        assert_eq!(staged.sha256, hex::encode(Sha256::digest(&data)));
        let hash = staged.hash.clone();
        let p = cs.commit(staged).unwrap();
        assert_eq!(fs::read(p).unwrap(), data);
        assert!(cs.contains(&hash));
        assert_eq!(fs::read_dir(t.path().join("tmp")).unwrap().count(), 0);
    }

    /// What the agent assumes of content of one chunk (and none) without
    /// asking is what registration made.
    #[test]
    fn a_small_blobs_manifest_is_known_from_its_address() {
        let t = tempfile::tempdir().unwrap();
        let cs = ContentStore::open(t.path().to_path_buf()).unwrap();
        for data in [
            Vec::new(),
            b"echo hi".to_vec(),
            vec![7u8; CHUNK_SIZE as usize],
        ] {
            let staged = cs.stage(&mut &data[..], u64::MAX).unwrap();
            let hash = staged.hash.clone();
            cs.commit(staged).unwrap();
            let m = cs.manifest(&hash).unwrap();
            assert_eq!(
                Some(m),
                crate::content::Manifest::of_small(data.len() as u64, &hash)
            );
        }
        assert_eq!(
            crate::content::Manifest::of_small(CHUNK_SIZE + 1, "x"),
            None
        );
    }

    #[test]
    fn manifest_hashes_each_chunk() {
        let t = tempfile::tempdir().unwrap();
        let cs = ContentStore::open(t.path().to_path_buf()).unwrap();
        let data: Vec<u8> = (0..(CHUNK_SIZE as usize * 2 + 10))
            .map(|i| (i % 251) as u8)
            .collect();
        let staged = cs.stage(&mut &data[..], u64::MAX).unwrap();
        let hash = staged.hash.clone();
        cs.commit(staged).unwrap();
        let m = cs.manifest(&hash).unwrap();
        // Computed again from the blob, it is the same.
        fs::remove_file(cs.path(&hash).with_extension("manifest")).unwrap();
        assert_eq!(cs.manifest(&hash).unwrap(), m);
        assert_eq!(m.size, data.len() as u64);
        assert_eq!(m.chunks.len(), 3);
        let c = CHUNK_SIZE as usize;
        assert_eq!(m.chunks[2], blake3::hash(&data[2 * c..]).to_hex().as_str());
        // Its chunk tree proves it against the address.
        let cvs: Vec<[u8; 32]> = m
            .tree
            .iter()
            .map(|x| hex::decode(x).unwrap().try_into().unwrap())
            .collect();
        assert_eq!(
            crate::content::root_of(&cvs).map(|h| h.to_hex().to_string()),
            Some(hash.clone())
        );
        // Served again from the cache beside the blob.
        assert_eq!(cs.manifest(&hash).unwrap(), m);
        // One kept from before the chunk tree is made again, whole.
        let old = Manifest {
            tree: Vec::new(),
            ..m.clone()
        };
        let kept = cs.path(&hash).with_extension("manifest");
        fs::write(&kept, serde_json::to_vec(&old).unwrap()).unwrap();
        assert_eq!(cs.manifest(&hash).unwrap(), m);
        cs.remove(&hash).unwrap();
        assert_eq!(
            fs::read_dir(t.path()).unwrap().count(),
            2,
            "only tmp/ and the prefix dir left"
        );
    }

    #[test]
    fn over_limit_leaves_nothing() {
        let t = tempfile::tempdir().unwrap();
        let cs = ContentStore::open(t.path().to_path_buf()).unwrap();
        let data = vec![7u8; 1000];
        let e = cs.stage(&mut &data[..], 999).unwrap_err();
        assert!(matches!(e, StageError::TooLarge { limit: 999 }));
        assert_eq!(fs::read_dir(t.path().join("tmp")).unwrap().count(), 0);
    }

    #[test]
    fn dropped_stage_is_removed() {
        let t = tempfile::tempdir().unwrap();
        let cs = ContentStore::open(t.path().to_path_buf()).unwrap();
        let staged = cs.stage(&mut &b"abc"[..], 10).unwrap();
        assert!(staged.path().exists());
        drop(staged);
        assert_eq!(fs::read_dir(t.path().join("tmp")).unwrap().count(), 0);
    }
}
