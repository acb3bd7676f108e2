//! The compiled-plugin cache of teammates: each plugin's machine code is
//! kept as a precompiled file ([`Component::serialize`]) that the next run
//! maps ([`Component::deserialize_file`]) instead of compiling again.
//!
//! It replaces wasmtime's own cache for teammates: that cache stores the
//! code zstd-compressed, and an interpreter-sized component (Python or
//! JavaScript: tens of MB of machine code) spent most of a second run
//! decompressing and copying it (docs/BENCHMARKS.md, "Python and JavaScript
//! teammates"). A mapped file is paged in on use.
//!
//! A file is `<cache>/components/<sha256 of the component>-<engine>.cwasm`,
//! where `<engine>` hashes wasmtime's version and every setting that
//! changes the machine code ([`Engine::precompile_compatibility_hash`]).
//! Loading checks both again, so a file made by another build or with other
//! settings is a miss (recompiled and replaced), never a wrong load.
//!
//! Trust: a precompiled file is machine code the host runs, so whoever can
//! write one can run code as the host. That is the trust wasmtime's own
//! cache asks for too (it also deserializes what it finds). The directory
//! is created owner-only (0700), and a `components` directory that group or
//! others may write, or that another user owns, is not used: plugins then
//! compile in memory, with a warning that names the directory.
//!
//! Size: at most [`MAX_FILES`] files and [`MAX_BYTES`] in all; storing a new
//! file removes the least recently used ones (a hit refreshes a file's
//! modification time).
//!
//! Finding the file without reading the plugin: naming the file needs the
//! plugin's sha256, and reading and hashing an 18 MB Python component was
//! most of a warm start. So `ids/` keeps, per plugin file, its identity
//! (device, inode, size, modification and change times, in nanoseconds)
//! and the digest of the bytes it had. A load whose plugin still has that
//! identity maps the precompiled file without reading the plugin. The change
//! time (ctime) is set by the kernel on every write and cannot be set back
//! by a user, so a plugin rewritten in place, even with its old size and
//! modification time restored, has another identity and is read again.
//! Timestamps are coarse (a few ms), so an identity is only recorded when
//! its change time is at least [`SETTLE`] older than the moment the read
//! began: a write after the read then always changes it (the rule git's
//! index uses for "racily clean" files). At most [`MAX_IDS`] are kept.

use std::fs::File;
use std::hash::{Hash, Hasher};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use sha2::{Digest, Sha256};
use wasmtime::Engine;
use wasmtime::component::Component;

use super::{Limits, LoadError, checked_metadata, compile_component, read_checked};

/// Most precompiled files kept.
pub const MAX_FILES: usize = 64;
/// Most bytes of precompiled files kept (a Python teammate is about 60 MB).
pub const MAX_BYTES: u64 = 2 << 30;

/// Most plugin identities kept in `ids/`.
pub const MAX_IDS: usize = 256;
/// How much older than a read a plugin's change time must be for its
/// identity to be recorded.
pub const SETTLE: Duration = Duration::from_secs(2);

/// The precompiled cache under a cache directory.
pub(crate) struct Precompiled {
    dir: PathBuf,
}

/// How [`Precompiled::load`] got a component.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Loaded {
    /// Mapped a precompiled file found by the plugin's recorded identity,
    /// without reading the plugin.
    MappedUnread,
    /// Read and hashed the plugin, then mapped its precompiled file.
    Mapped,
    /// Read, hashed and compiled the plugin (and stored its code).
    Compiled,
}

impl Precompiled {
    /// The cache in `<cache_dir>/components`, created owner-only; `None`
    /// (with a warning) if it cannot be made or may be written by others.
    pub(crate) fn open(cache_dir: &Path) -> Option<Self> {
        let dir = cache_dir.join("components");
        match usable(&dir) {
            Ok(()) => Some(Self { dir }),
            Err(why) => {
                tracing::warn!(
                    "not using the compiled-plugin cache {}: {why}; plugins compile in memory",
                    dir.display()
                );
                None
            }
        }
    }

    /// The component in the plugin at `path` (checked against `limits`):
    /// mapped from its precompiled file if there is a good one, else
    /// compiled (within `compile_timeout`) and stored for the next run. The
    /// plugin is only read if its identity was not recorded (module doc).
    pub(crate) fn load(&self, engine: &Engine, path: &Path, limits: &Limits) -> Result<(Component, Loaded), LoadError> {
        self.load_at(engine, path, limits, SystemTime::now())
    }

    /// [`Self::load`], with `now` as the moment the read begins.
    fn load_at(
        &self,
        engine: &Engine,
        path: &Path,
        limits: &Limits,
        now: SystemTime,
    ) -> Result<(Component, Loaded), LoadError> {
        let before = checked_metadata(path, limits)?;
        let id = Identity::of(&before);
        if let Some(digest) = id.as_ref().and_then(|id| self.recorded(id)) {
            let file = self.dir.join(file_name(engine, &digest));
            if file.is_file()
                && let Ok(component) = map(engine, &file)
            {
                remember_loaded(path, digest);
                touch(&file);
                return Ok((component, Loaded::MappedUnread));
            }
        }
        let bytes = read_checked(path)?;
        let digest: [u8; 32] = Sha256::digest(&bytes).into();
        remember_loaded(path, digest);
        if let Some(id) = id
            && id.changed_before(now)
            && std::fs::metadata(path).ok().and_then(|m| Identity::of(&m)).as_ref() == Some(&id)
        {
            self.record(&id, &digest);
        }
        let file = self.dir.join(file_name(engine, &digest));
        if file.is_file() {
            match map(engine, &file) {
                Ok(component) => {
                    touch(&file);
                    return Ok((component, Loaded::Mapped));
                }
                Err(e) => {
                    tracing::warn!(
                        "precompiled {} is not usable ({e:#}); compiling {} again",
                        file.display(),
                        path.display()
                    );
                    let _ = std::fs::remove_file(&file);
                }
            }
        }
        let component = compile_component(engine, bytes, path, limits.compile_timeout)?;
        match component.serialize().map_err(std::io::Error::other).and_then(|code| store(&self.dir, &file, &code)) {
            Ok(()) => evict(&self.dir, &file),
            Err(e) => tracing::warn!("cannot store the precompiled {}: {e}", file.display()),
        }
        Ok((component, Loaded::Compiled))
    }

    fn ids(&self) -> PathBuf {
        self.dir.join("ids")
    }

    /// The digest recorded for a plugin file with identity `id`, if any.
    fn recorded(&self, id: &Identity) -> Option<[u8; 32]> {
        let text = std::fs::read_to_string(self.ids().join(id.file_name())).ok()?;
        let (fields, hex) = text.trim_end().rsplit_once(' ')?;
        (fields == id.fields()).then(|| from_hex(hex)).flatten()
    }

    /// Records that the plugin file with identity `id` has sha256 `digest`
    /// (best effort: a failure only costs the next run a read).
    fn record(&self, id: &Identity, digest: &[u8; 32]) {
        let ids = self.ids();
        let file = ids.join(id.file_name());
        let line = format!("{} {}\n", id.fields(), to_hex(digest));
        let stored = std::fs::create_dir_all(&ids).and_then(|()| store(&ids, &file, line.as_bytes()));
        match stored {
            Ok(()) => evict_ids(&ids, &file, MAX_IDS),
            Err(e) => tracing::debug!("cannot record the identity of a plugin in {}: {e}", ids.display()),
        }
    }
}

/// What identifies a plugin file's contents without reading them: if any
/// byte was written since, the change time differs (module doc).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Identity {
    dev: u64,
    ino: u64,
    size: u64,
    mtime_ns: i128,
    ctime_ns: i128,
}

impl Identity {
    #[cfg(unix)]
    fn of(meta: &std::fs::Metadata) -> Option<Self> {
        use std::os::unix::fs::MetadataExt as _;
        let ns = |s: i64, n: i64| i128::from(s) * 1_000_000_000 + i128::from(n);
        meta.is_file().then(|| Self {
            dev: meta.dev(),
            ino: meta.ino(),
            size: meta.len(),
            mtime_ns: ns(meta.mtime(), meta.mtime_nsec()),
            ctime_ns: ns(meta.ctime(), meta.ctime_nsec()),
        })
    }

    /// Without a change time the identity is not trusted: always read.
    #[cfg(not(unix))]
    fn of(_meta: &std::fs::Metadata) -> Option<Self> {
        None
    }

    /// Whether the last change was at least [`SETTLE`] before `now`.
    fn changed_before(&self, now: SystemTime) -> bool {
        let Ok(now) = now.duration_since(SystemTime::UNIX_EPOCH) else { return false };
        self.ctime_ns + SETTLE.as_nanos() as i128 <= now.as_nanos() as i128
    }

    fn fields(&self) -> String {
        format!("{} {} {} {} {}", self.dev, self.ino, self.size, self.mtime_ns, self.ctime_ns)
    }

    /// One entry per file (device and inode); a rewrite replaces it.
    fn file_name(&self) -> String {
        #[allow(deprecated)]
        let mut h = std::hash::SipHasher::new();
        (self.dev, self.ino).hash(&mut h);
        format!("{:016x}", h.finish())
    }
}

/// Refreshes a precompiled file's place in the least-recently-used order.
fn touch(file: &Path) {
    let _ = File::options().append(true).open(file).and_then(|f| f.set_modified(SystemTime::now()));
}

fn to_hex(digest: &[u8; 32]) -> String {
    let mut hex = String::with_capacity(64);
    for b in digest {
        use std::fmt::Write as _;
        let _ = write!(hex, "{b:02x}");
    }
    hex
}

fn from_hex(hex: &str) -> Option<[u8; 32]> {
    let mut digest = [0u8; 32];
    if hex.len() != 64 {
        return None;
    }
    for (i, b) in digest.iter_mut().enumerate() {
        *b = u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(digest)
}

/// The sha256 of the bytes this process loaded as a plugin from each path
/// (absolute), recorded when the cache named its file by it: the state pins
/// the plugin that actually ran without reading and hashing the file again
/// (18 MB for a Python plugin).
static LOADED: std::sync::Mutex<std::collections::BTreeMap<PathBuf, [u8; 32]>> =
    std::sync::Mutex::new(std::collections::BTreeMap::new());

fn remember_loaded(path: &Path, digest: [u8; 32]) {
    let path = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    LOADED.lock().unwrap_or_else(|e| e.into_inner()).insert(path, digest);
}

/// The sha256 of the bytes this process last loaded as a plugin from
/// `path` through the compiled-plugin cache, if it did.
pub fn loaded_digest(path: &Path) -> Option<[u8; 32]> {
    let path = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    LOADED.lock().unwrap_or_else(|e| e.into_inner()).get(&path).copied()
}

/// The file name of a component whose bytes have sha256 `digest`, compiled
/// by `engine`.
fn file_name(engine: &Engine, digest: &[u8; 32]) -> String {
    let hex = to_hex(digest);
    // A fixed-key hasher: the same engine settings give the same name in
    // every process of this build.
    #[allow(deprecated)]
    let mut h = std::hash::SipHasher::new();
    engine.precompile_compatibility_hash().hash(&mut h);
    format!("{hex}-{:016x}.cwasm", h.finish())
}

/// Maps a precompiled file.
#[allow(unsafe_code)]
fn map(engine: &Engine, file: &Path) -> wasmtime::Result<Component> {
    // SAFETY: `deserialize_file` runs the file's machine code, so the file
    // must have been made by `Component::serialize` of a compatible wasmtime
    // and not changed since. Only this module writes the directory, and
    // `usable` refused it unless it is the host user's own and writable by
    // no one else (see the module doc: the same trust as wasmtime's own
    // cache). wasmtime checks the header, version and engine settings and
    // answers an error for a file that is not one of its own.
    unsafe { Component::deserialize_file(engine, file) }
}

/// Creates `dir` owner-only if missing and checks that no one else may
/// write it.
fn usable(dir: &Path) -> Result<(), String> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::{DirBuilderExt as _, MetadataExt as _};
        if !dir.is_dir() {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)
                .map_err(|e| format!("cannot create it: {e}"))?;
        }
        let meta = std::fs::symlink_metadata(dir).map_err(|e| e.to_string())?;
        if !meta.is_dir() {
            return Err("it is not a directory".into());
        }
        if meta.mode() & 0o022 != 0 {
            return Err(format!("group or others may write it (mode {:o})", meta.mode() & 0o777));
        }
        // The effective user owns /proc/self (Linux); elsewhere the mode check stands alone.
        if let Ok(me) = std::fs::metadata("/proc/self")
            && me.uid() != meta.uid()
        {
            return Err(format!("user {} owns it, not this user ({})", meta.uid(), me.uid()));
        }
        Ok(())
    }
    #[cfg(not(unix))]
    {
        std::fs::create_dir_all(dir).map_err(|e| format!("cannot create it: {e}"))
    }
}

/// Writes `code` to `file` through a temporary file in `dir`, so a reader
/// never maps a half-written file.
fn store(dir: &Path, file: &Path, code: &[u8]) -> std::io::Result<()> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let tmp = dir.join(format!(".{}.{n}.tmp", std::process::id()));
    let result = (|| {
        let mut f = File::create(&tmp)?;
        f.write_all(code)?;
        f.sync_all()?;
        std::fs::rename(&tmp, file)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// Removes the least recently used files (never `keep`) until at most
/// [`MAX_FILES`] and [`MAX_BYTES`] remain.
fn evict(dir: &Path, keep: &Path) {
    evict_to(dir, keep, MAX_FILES, MAX_BYTES);
}

/// Removes the least recently written identities (never `keep`) past `max`.
fn evict_ids(ids: &Path, keep: &Path, max: usize) {
    let Ok(entries) = std::fs::read_dir(ids) else { return };
    let mut files: Vec<(SystemTime, PathBuf)> = entries
        .flatten()
        .filter(|e| !e.file_name().to_string_lossy().starts_with('.'))
        .filter_map(|e| Some((e.metadata().ok()?.modified().ok()?, e.path())))
        .collect();
    if files.len() <= max {
        return;
    }
    files.sort_by_key(|(modified, path)| (path != keep, std::cmp::Reverse(*modified)));
    for (_, path) in files.into_iter().skip(max) {
        let _ = std::fs::remove_file(path);
    }
}

fn evict_to(dir: &Path, keep: &Path, max_files: usize, max_bytes: u64) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    let mut files: Vec<(SystemTime, u64, PathBuf)> = entries
        .flatten()
        .filter(|e| e.path().extension().is_some_and(|x| x == "cwasm"))
        .filter_map(|e| {
            let meta = e.metadata().ok()?;
            Some((meta.modified().ok()?, meta.len(), e.path()))
        })
        .collect();
    // `keep` first (it was just stored), then the newest.
    files.sort_by_key(|(modified, _, path)| (path != keep, std::cmp::Reverse(*modified)));
    let (mut count, mut bytes) = (0usize, 0u64);
    for (_, len, path) in files {
        count += 1;
        bytes += len;
        if path != keep && (count > max_files || bytes > max_bytes) {
            let _ = std::fs::remove_file(&path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _};

    fn engine() -> Engine {
        super::super::new_engine(1 << 20, None).unwrap()
    }

    fn ping() -> Vec<u8> {
        std::fs::read(swarm_tests::PING).unwrap()
    }

    fn cwasm_files(dir: &Path) -> Vec<PathBuf> {
        let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
            .unwrap()
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "cwasm"))
            .collect();
        files.sort();
        files
    }

    const LONG: Duration = Duration::from_secs(300);

    #[test]
    fn the_second_load_maps_the_file_the_first_stored() {
        let tmp = tempfile::tempdir().unwrap();
        let cache = Precompiled::open(tmp.path()).unwrap();
        let (engine, path) = (engine(), Path::new(swarm_tests::PING));
        cache.load(&engine, path, &limits()).unwrap();
        let files = cwasm_files(&cache.dir);
        assert_eq!(files.len(), 1, "{files:?}");
        let inode = std::fs::metadata(&files[0]).unwrap().ino();
        cache.load(&engine, path, &limits()).unwrap();
        assert_eq!(cwasm_files(&cache.dir), files);
        assert_eq!(std::fs::metadata(&files[0]).unwrap().ino(), inode, "a hit maps the file, it does not rewrite it");
        let mode = std::fs::metadata(&cache.dir).unwrap().mode() & 0o777;
        assert_eq!(mode, 0o700, "the directory is owner-only");
    }

    fn limits() -> Limits {
        Limits { compile_timeout: LONG, ..Limits::default() }
    }

    /// A cache in a temp dir, and a copy of the ping plugin in the same dir.
    fn cache_and_plugin() -> (tempfile::TempDir, Precompiled, PathBuf) {
        let tmp = tempfile::tempdir().unwrap();
        let cache = Precompiled::open(tmp.path()).unwrap();
        let plugin = tmp.path().join("ping.wasm");
        std::fs::write(&plugin, ping()).unwrap();
        (tmp, cache, plugin)
    }

    /// A moment long enough after every file made by the test for its
    /// identity to be recorded.
    fn later() -> SystemTime {
        SystemTime::now() + SETTLE * 5
    }

    #[test]
    fn a_warm_load_of_an_unchanged_plugin_maps_its_code_without_reading_it() {
        let (_tmp, cache, plugin) = cache_and_plugin();
        let engine = engine();
        let (_, how) = cache.load_at(&engine, &plugin, &limits(), later()).unwrap();
        assert_eq!(how, Loaded::Compiled);
        let (_, how) = cache.load_at(&engine, &plugin, &limits(), later()).unwrap();
        assert_eq!(how, Loaded::MappedUnread, "the recorded identity names the precompiled file");
        let loaded: [u8; 32] = Sha256::digest(ping()).into();
        assert_eq!(loaded_digest(&plugin), Some(loaded), "the pin is still the digest of what runs");
    }

    #[test]
    fn a_plugin_changed_within_the_settle_time_is_not_recorded() {
        let (_tmp, cache, plugin) = cache_and_plugin();
        let engine = engine();
        // The read begins in the same instant as the write: a write right
        // after the read could keep the same (coarse) change time.
        cache.load_at(&engine, &plugin, &limits(), SystemTime::now()).unwrap();
        let (_, how) = cache.load_at(&engine, &plugin, &limits(), SystemTime::now()).unwrap();
        assert_eq!(how, Loaded::Mapped, "read and hashed again, then mapped");
    }

    #[test]
    fn a_plugin_rewritten_in_place_with_its_old_size_and_mtime_is_read_again() {
        let (_tmp, cache, plugin) = cache_and_plugin();
        let engine = engine();
        cache.load_at(&engine, &plugin, &limits(), later()).unwrap();
        let before = std::fs::metadata(&plugin).unwrap();
        // Same size, same inode, the old modification time put back: only
        // the kernel-set change time tells.
        let mut other = ping();
        other[8..].fill(0);
        let mut f = File::options().write(true).open(&plugin).unwrap();
        f.write_all(&other).unwrap();
        f.set_modified(before.modified().unwrap()).unwrap();
        drop(f);
        let after = std::fs::metadata(&plugin).unwrap();
        assert_eq!(
            (after.ino(), after.len(), after.modified().unwrap()),
            (before.ino(), before.len(), before.modified().unwrap())
        );
        let Err(err) = cache.load_at(&engine, &plugin, &limits(), later()) else {
            panic!("the new bytes are not a plugin, yet the old code was mapped")
        };
        assert!(matches!(err, LoadError::Compile { .. }), "the rewritten bytes were read and compiled: {err}");
    }

    #[test]
    fn a_load_remembers_the_digest_of_the_bytes_it_loaded() {
        let (tmp, cache, plugin) = cache_and_plugin();
        cache.load(&engine(), &plugin, &limits()).unwrap();
        // The file changes after the load: the digest is still that of what
        // was loaded.
        std::fs::write(&plugin, b"changed").unwrap();
        let loaded: [u8; 32] = Sha256::digest(ping()).into();
        assert_eq!(loaded_digest(&plugin), Some(loaded));
        assert_eq!(loaded_digest(&tmp.path().join("never-loaded.wasm")), None);
    }

    #[test]
    fn a_corrupt_file_is_compiled_again_and_replaced() {
        let tmp = tempfile::tempdir().unwrap();
        let cache = Precompiled::open(tmp.path()).unwrap();
        let (engine, path) = (engine(), Path::new(swarm_tests::PING));
        cache.load(&engine, path, &limits()).unwrap();
        let file = cwasm_files(&cache.dir).remove(0);
        std::fs::write(&file, b"\x7fELF not really").unwrap();
        cache.load(&engine, path, &limits()).unwrap();
        assert!(map(&engine, &file).is_ok(), "the corrupt file was replaced by a good one");
    }

    #[test]
    fn a_file_made_with_other_engine_settings_is_not_loaded() {
        let tmp = tempfile::tempdir().unwrap();
        let cache = Precompiled::open(tmp.path()).unwrap();
        let path = Path::new(swarm_tests::PING);
        cache.load(&engine(), path, &limits()).unwrap();
        let fuel = super::super::new_engine_with(1 << 20, None, true, None, None).unwrap();
        cache.load(&fuel, path, &limits()).unwrap();
        assert_eq!(cwasm_files(&cache.dir).len(), 2, "fuel changes the code: a file of its own");
        let [plain, other] = [&cwasm_files(&cache.dir)[0], &cwasm_files(&cache.dir)[1]].map(|p| p.to_path_buf());
        // Even under the other name, wasmtime refuses code made for other settings.
        let (with_fuel, without) = if map(&fuel, &plain).is_ok() { (plain, other) } else { (other, plain) };
        assert!(map(&engine(), &with_fuel).is_err(), "code compiled for fuel is refused by a plain engine");
        assert!(map(&engine(), &without).is_ok());
    }

    #[test]
    fn a_directory_others_may_write_is_not_used() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("components");
        std::fs::create_dir(&dir).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).unwrap();
        assert!(
            Precompiled::open(tmp.path()).is_none(),
            "a world-writable cache would let anyone run code as the host"
        );
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).unwrap();
        assert!(Precompiled::open(tmp.path()).is_some());
    }

    #[test]
    fn storing_removes_the_least_recently_used_files_past_the_cap() {
        let tmp = tempfile::tempdir().unwrap();
        let base = SystemTime::now() - Duration::from_secs(1000);
        for i in 0..6u64 {
            let p = tmp.path().join(format!("{i}.cwasm"));
            std::fs::write(&p, [0u8; 10]).unwrap();
            File::options().append(true).open(&p).unwrap().set_modified(base + Duration::from_secs(i)).unwrap();
        }
        // File 0 is the oldest, but it is the one just stored.
        evict_to(tmp.path(), &tmp.path().join("0.cwasm"), 3, u64::MAX);
        let left: Vec<String> =
            cwasm_files(tmp.path()).iter().map(|p| p.file_name().unwrap().to_string_lossy().into_owned()).collect();
        assert_eq!(left, ["0.cwasm", "4.cwasm", "5.cwasm"]);
        evict_to(tmp.path(), &tmp.path().join("5.cwasm"), 10, 15);
        let left: Vec<String> =
            cwasm_files(tmp.path()).iter().map(|p| p.file_name().unwrap().to_string_lossy().into_owned()).collect();
        assert_eq!(left, ["5.cwasm"], "the byte cap counts too");
    }
}
