//! The server core: every change to courier's state goes through here.
//!
//! The CLI (and later the console and the admin API) call these methods;
//! each one checks the rules of the seed, writes the change and its event in
//! one transaction, and returns the object as the user will see it.
//!
//! Invariant: a refused request changes nothing, neither in the database
//! nor in the content store.

mod agents;
pub use agents::{check_info, check_name};
mod handle;
mod plan;
mod policies;
#[cfg(test)]
#[path = "policy_tests.rs"]
mod policy_tests;
mod removal;
mod rings;
mod software;
mod task_rules;
#[cfg(test)]
mod tests;
mod triage;

use crate::api::{AddPackage, EditPackage};
use crate::model::human_size;

use std::fs::File;
use std::path::Path;

use anyhow::{Result, anyhow, bail};

use crate::clock::Clock;
use crate::datadir::DataDir;
use crate::model::{
    DEFAULT_SUCCESS_CODES, DestinationId, Event, Kind, Level, NewEvent, Package, PackageId,
};
use crate::package::{self, Format, Installer, MAX_FILE_SIZE};
use crate::pki::ServerPki;
use crate::store::blobs::{ContentStore, StageError};
use crate::store::packages::{Content, Meta};
use crate::store::{Store, events, packages, tasks};

pub struct Service {
    /// Where everything lives: scratch space, keys.
    data: DataDir,
    store: Store,
    content: ContentStore,
    clock: Clock,
    /// The CA and server certificate, loaded (or created) on first need:
    /// tokens carry the CA fingerprint, enrolment signs certificates.
    pki: Option<ServerPki>,
    /// Destinations whose work changed since the server last looked; the
    /// server wakes their long-polls.
    wake: Vec<DestinationId>,
    /// When every policy was last evaluated for every destination.
    policies_judged_at: Option<i64>,
    /// Past these, unfinished work is flagged stuck.
    stuck_limits: crate::task::stuck::Limits,
    /// The server's transfer limits (`serve --bandwidth`,
    /// `--max-transfers`), for the pre-flight's estimates.
    transfer_limits: (Option<u64>, Option<usize>),
}

impl Service {
    pub fn open(data: DataDir, clock: Clock) -> Result<Service> {
        let store = Store::open(&data.db_path())?;
        let content = ContentStore::open(data.content_dir())?;
        Ok(Service {
            data,
            store,
            content,
            clock,
            pki: None,
            wake: Vec::new(),
            policies_judged_at: None,
            stuck_limits: Default::default(),
            transfer_limits: (None, None),
        })
    }

    /// The server's bandwidth for all content and transfers at once, for
    /// the pre-flight's estimates.
    pub fn set_transfer_limits(&mut self, bandwidth: Option<u64>, max_transfers: Option<usize>) {
        self.transfer_limits = (bandwidth, max_transfers);
    }

    /// The limits past which unfinished work is flagged stuck.
    pub fn set_stuck_limits(&mut self, limits: crate::task::stuck::Limits) {
        self.stuck_limits = limits;
    }

    /// Now, with the limits of stuck work: what rows are judged at.
    pub(crate) fn judged_now(&self) -> crate::store::tasks::Now {
        crate::store::tasks::Now {
            at: self.clock.now(),
            limits: self.stuck_limits,
        }
    }

    pub fn clock(&self) -> &Clock {
        &self.clock
    }

    pub fn data(&self) -> &DataDir {
        &self.data
    }

    /// The server PKI, created on first use.
    pub fn pki(&mut self) -> Result<&ServerPki> {
        if self.pki.is_none() {
            self.pki = Some(ServerPki::load_or_create(
                &self.data.tls_dir(),
                self.clock.now(),
            )?);
        }
        self.pki.as_ref().ok_or_else(|| anyhow!("PKI not loaded"))
    }

    /// Destinations whose long-polls should wake, since the last call.
    pub fn take_wakeups(&mut self) -> Vec<DestinationId> {
        std::mem::take(&mut self.wake)
    }

    pub fn content(&self) -> &ContentStore {
        &self.content
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    pub fn store_mut(&mut self) -> &mut Store {
        &mut self.store
    }

    /// Applies the log's retention (`store::events::KEEP`, `KEEP_DAYS`).
    pub fn prune_events(&mut self) -> Result<usize> {
        let now = self.clock.now();
        self.store.write(|tx| events::prune(tx, now))
    }

    pub(crate) fn event(
        &self,
        level: Level,
        kind: &'static str,
        subject: String,
        message: String,
    ) -> NewEvent {
        NewEvent {
            at: self.clock.now(),
            level,
            kind,
            subject,
            message,
        }
    }

    // ---- packages -------------------------------------------------------

    /// Registers a file as a package: copies it into the content store,
    /// inspects the copy, decides kind and commands, and records it.
    pub fn add_package(&mut self, req: AddPackage) -> Result<Package> {
        let prepared = prepare_package(&self.content, &self.data.scratch_dir(), &req)?;
        self.add_prepared(prepared)
    }

    /// Records a package whose file was copied and inspected by
    /// [`prepare_package`]: the short part of a registration, the only
    /// one the server's writer waits for.
    pub fn add_prepared(&mut self, prepared: PreparedPackage) -> Result<Package> {
        let PreparedPackage {
            shown,
            content,
            meta,
            staged,
        } = prepared;
        let hash = content.hash.clone();
        self.content.commit(staged)?;
        let ev = self.event(
            Level::Info,
            "package.added",
            String::new(),
            format!(
                "'{}'{} ({}, {}, {}) from {shown}, sha256 {}",
                meta.name,
                meta.version
                    .as_deref()
                    .map(|v| format!(" {v}"))
                    .unwrap_or_default(),
                meta.kind.as_str(),
                content.format,
                human_size(content.size),
                content.sha256,
            ),
        );
        let now = self.clock.now();
        let inserted = self.store.write(|tx| {
            let id = packages::insert(tx, &content, &meta, now)?;
            events::append(
                tx,
                &NewEvent {
                    subject: format!("package {id}"),
                    ..ev
                },
            )?;
            Ok(id)
        });
        match inserted {
            Ok(id) => self.package(id),
            Err(e) => {
                // Keep the store consistent: drop the blob unless another
                // package shares it.
                if packages::count_by_hash(self.store.conn(), &hash).unwrap_or(1) == 0 {
                    let _ = self.content.remove(&hash);
                }
                Err(e)
            }
        }
    }

    /// Packages; update packages (those an update policy distributes, the
    /// seed's Windows updates) only with `all`.
    pub fn packages(&self, all: bool) -> Result<Vec<Package>> {
        let c = self.store.conn();
        let mut list = packages::list(c)?;
        if !all {
            let updates = crate::store::policies::update_packages(c)?;
            list.retain(|p| !updates.contains(&p.id));
        }
        Ok(list)
    }

    pub fn package(&self, id: PackageId) -> Result<Package> {
        packages::get(self.store.conn(), id)?
            .ok_or_else(|| not_found(format!("package {id}: no such package")))
    }

    /// Changes a package's metadata; its content never changes.
    pub fn edit_package(&mut self, id: PackageId, edit: EditPackage) -> Result<Package> {
        let old = self.package(id)?;
        let mut meta = Meta::of(&old);
        let clear = |s: String| if s.trim().is_empty() { None } else { Some(s) };
        if let Some(n) = edit.name {
            meta.name = n;
        }
        if let Some(v) = edit.version {
            meta.version = clear(v);
        }
        if let Some(k) = edit.kind {
            meta.kind = k;
        }
        if let Some(c) = edit.install_command {
            meta.install_command = clear(c);
        }
        if let Some(c) = edit.uninstall_command {
            meta.uninstall_command = clear(c);
        }
        if let Some(f) = edit.folder {
            meta.folder = clear(f);
        }
        if let Some(c) = edit.success_codes {
            meta.success_codes = c;
        }
        if let Some(rules) = edit.detect {
            // `--detect ''` clears them.
            let rules: Vec<String> = rules.into_iter().filter(|r| !r.trim().is_empty()).collect();
            meta.detect =
                crate::task::detect::canonical(&rules).map_err(|e| anyhow!("package {id}: {e}"))?;
        }
        validate(&meta).map_err(|e| anyhow!("package {id}: {e:#}"))?;
        let changes = describe_changes(&Meta::of(&old), &meta);
        if changes.is_empty() {
            return Ok(old);
        }
        let now = self.clock.now();
        let ev = self.event(
            Level::Info,
            "package.edited",
            format!("package {id}"),
            changes.join(", "),
        );
        self.store.write(|tx| {
            packages::update_meta(tx, id, &meta, now)?;
            events::append(tx, &ev)?;
            Ok(())
        })?;
        self.package(id)
    }

    /// Deletes a package, refusing while unfinished tasks use it. Its content
    /// goes too unless another package has the same bytes.
    pub fn remove_package(&mut self, id: PackageId) -> Result<Package> {
        let p = self.package(id)?;
        let policies = crate::store::policies::using_package(self.store.conn(), id)?;
        if let Some((pid, name)) = policies.first() {
            return Err(conflict(format!(
                "package {id}: policy {pid} ({name}) installs it: remove the policy or give it another package first"
            )));
        }
        let users = tasks::unfinished_using_package(self.store.conn(), id)?;
        if !users.is_empty() {
            let names: Vec<String> = users
                .iter()
                .map(|(tid, name)| format!("{tid} ({name})"))
                .collect();
            return Err(conflict(format!(
                "package {id}: used by unfinished task{} {}: delete or finish {} first",
                if users.len() == 1 { "" } else { "s" },
                names.join(", "),
                if users.len() == 1 { "it" } else { "them" },
            )));
        }
        let ev = self.event(
            Level::Info,
            "package.removed",
            format!("package {id}"),
            format!("'{}' ({}, {})", p.name, p.format, human_size(p.size)),
        );
        let remaining = self.store.write(|tx| {
            packages::delete(tx, id)?;
            events::append(tx, &ev)?;
            packages::count_by_hash(tx, &p.hash)
        })?;
        if remaining == 0 {
            self.content.remove(&p.hash)?;
        }
        Ok(p)
    }

    // ---- events ---------------------------------------------------------

    pub fn log_server_start(&mut self, listen: &str) -> Result<()> {
        let ev = self.event(
            Level::Info,
            "server.started",
            String::new(),
            format!("agents on {listen}"),
        );
        self.store.write(|tx| events::append(tx, &ev).map(|_| ()))
    }

    pub fn log_server_stop(&mut self) -> Result<()> {
        let ev = self.event(
            Level::Info,
            "server.stopped",
            String::new(),
            "shut down".into(),
        );
        self.store.write(|tx| events::append(tx, &ev).map(|_| ()))
    }

    pub fn events_tail(&self, n: u32) -> Result<Vec<Event>> {
        events::tail(self.store.conn(), n)
    }

    pub fn events_since(&self, after: i64, limit: u32) -> Result<Vec<Event>> {
        events::since(self.store.conn(), after, limit)
    }
}

fn too_large(size: u64) -> String {
    format!(
        "{} is over the 1 GiB limit for a registered file: split it into pieces of at most 1 GiB \
         and distribute them as a ZIP or separate packages",
        if size > MAX_FILE_SIZE && size < MAX_FILE_SIZE + 1024 {
            format!("{size} bytes")
        } else {
            human_size(size)
        }
    )
}

fn io_reason(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::NotFound => "no such file".into(),
        std::io::ErrorKind::PermissionDenied => "permission denied".into(),
        _ => e.to_string(),
    }
}

/// An error for a request naming something that does not exist.
pub(crate) fn not_found(message: String) -> anyhow::Error {
    crate::api::ApiError::not_found(message).into()
}

/// An error for a request that clashes with the current state.
pub(crate) fn conflict(message: String) -> anyhow::Error {
    crate::api::ApiError::conflict(message).into()
}

fn msi_install_command(path: &str) -> String {
    format!("msiexec /i \"{path}\" /qn /norestart")
}

fn msi_uninstall_command(product_code: &str) -> String {
    format!("msiexec /x {product_code} /qn /norestart")
}

/// Decides a new package's metadata from what the admin gave and what the
/// file turned out to be.
fn plan(req: &AddPackage, insp: &package::Inspection, file_name: &str) -> Result<Meta> {
    let installer = insp.installer.as_ref();
    let kind = match req.kind {
        Some(k) => k,
        None if req.install_command.is_some() => Kind::Install,
        None if req.folder.is_some() => match installer {
            Some(i) => bail!(
                "{} with --folder: say --kind install to install it, or --kind file to place it in the folder",
                describe_installer(i)
            ),
            None => Kind::File,
        },
        None if installer.is_some() => Kind::Install,
        None if !insp.ambiguous.is_empty() => bail!(
            "several installers inside ({}): give --install-command to say which to run",
            insp.ambiguous.join(", ")
        ),
        None => bail!(
            "no MSI or EXE installer found: give --folder DIR to distribute it as a file, \
             or --install-command CMD to install it"
        ),
    };
    let msi = installer.and_then(|i| i.msi.as_ref());
    let name = req
        .name
        .clone()
        .or_else(|| msi.and_then(|m| m.product_name.clone()))
        .unwrap_or_else(|| file_stem(file_name));
    let version = req
        .version
        .clone()
        .or_else(|| msi.and_then(|m| m.product_version.clone()));
    let success_codes = req
        .success_codes
        .clone()
        .unwrap_or_else(|| DEFAULT_SUCCESS_CODES.to_vec());
    match kind {
        Kind::File => {
            if req.install_command.is_some() {
                bail!(
                    "a file-distribution package has no install command: drop --install-command or use --kind install"
                );
            }
            if req.folder.is_none() {
                bail!("a file-distribution package needs --folder DIR (the destination folder)");
            }
            Ok(Meta {
                name,
                version,
                kind,
                install_command: None,
                uninstall_command: req.uninstall_command.clone(),
                folder: req.folder.clone(),
                success_codes,
                detect: given_rules(req)?,
            })
        }
        Kind::Install => {
            let install_command = match (&req.install_command, installer) {
                (Some(c), _) => c.clone(),
                (None, Some(i)) if i.format == Format::Msi => {
                    msi_install_command(&i.command_path(file_name))
                }
                (None, Some(i)) => bail!(exe_needs_command(i, file_name)),
                (None, None) if !insp.ambiguous.is_empty() => bail!(
                    "several installers inside ({}): give --install-command to say which to run",
                    insp.ambiguous.join(", ")
                ),
                (None, None) => bail!(
                    "no MSI or EXE installer found: give --install-command CMD (it runs in the unpacked package)"
                ),
            };
            let uninstall_command = req.uninstall_command.clone().or_else(|| {
                msi.and_then(|m| m.product_code.as_deref())
                    .map(msi_uninstall_command)
            });
            // An MSI is known installed by its ProductCode, unless the
            // admin said how to tell.
            let mut detect = given_rules(req)?;
            if let Some(code) = msi.and_then(|m| m.product_code.as_deref())
                && !detect.iter().any(|r| r.starts_with("msi:"))
            {
                detect.insert(0, format!("msi:{}", code.to_ascii_uppercase()));
            }
            Ok(Meta {
                name,
                version,
                kind,
                install_command: Some(install_command),
                uninstall_command,
                folder: req.folder.clone(),
                success_codes,
                detect,
            })
        }
    }
}

/// The detection rules the admin gave, in their canonical spelling.
fn given_rules(req: &AddPackage) -> Result<Vec<String>> {
    crate::task::detect::canonical(req.detect.as_deref().unwrap_or_default())
        .map_err(|e| anyhow!(e))
}

fn describe_installer(i: &Installer) -> String {
    let what = match i.format {
        Format::Msi => "an MSI installer",
        _ => "an EXE installer",
    };
    match &i.path {
        Some(p) => format!("{what} inside ('{p}')"),
        None => what.to_string(),
    }
}

fn exe_needs_command(i: &Installer, file_name: &str) -> String {
    let exe = i.command_path(file_name);
    match i.framework {
        Some(fw) => format!(
            "an EXE needs a silent install command: {} installer detected{}, try --install-command '{}'",
            fw.name(),
            i.path
                .as_deref()
                .map(|p| format!(" at '{p}'"))
                .unwrap_or_default(),
            fw.suggested_command(&exe)
        ),
        None => format!(
            "an EXE needs a silent install command (--install-command '{} <silent switches>'): \
             no installer framework recognised; common switches are /S (NSIS), \
             /VERYSILENT /SUPPRESSMSGBOXES /NORESTART (Inno Setup), /quiet /norestart (WiX Burn)",
            package::quote_path(&exe)
        ),
    }
}

fn file_stem(file_name: &str) -> String {
    Path::new(file_name)
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| file_name.to_string())
}

/// True for absolute paths of either family, since a destination may run
/// Windows or Unix: `/opt/x`, `C:\x`, `C:/x`, `\\server\share`, `%ProgramFiles%\x`.
pub fn is_absolute_folder(f: &str) -> bool {
    let b = f.as_bytes();
    f.starts_with('/')
        || f.starts_with("\\\\")
        || (b.len() >= 3
            && b[0].is_ascii_alphabetic()
            && b[1] == b':'
            && (b[2] == b'\\' || b[2] == b'/'))
        || (f.starts_with('%') && f[1..].contains('%'))
}

fn check_text(what: &str, s: &str, max: usize) -> Result<()> {
    if s.chars().any(|c| c.is_control()) {
        bail!("{what}: control characters (newline, tab…) are not allowed");
    }
    if s.len() > max {
        bail!("{what}: longer than {max} bytes");
    }
    Ok(())
}

/// A package file copied into the content store's staging area, hashed
/// and inspected, not yet recorded.
pub struct PreparedPackage {
    shown: String,
    content: Content,
    meta: Meta,
    staged: crate::store::blobs::Staged,
}

/// The long part of a registration: reads, hashes, copies and inspects
/// the file (seconds for a big one), touching no database, so the server
/// runs it beside its writer (`server::Core::handle`). Errors name the
/// file.
pub fn prepare_package(
    content: &ContentStore,
    scratch: &std::path::Path,
    req: &AddPackage,
) -> Result<PreparedPackage> {
    prepare(content, scratch, req).map_err(|e| anyhow!("{}: {e:#}", req.path.display()))
}

fn prepare(
    content: &ContentStore,
    scratch: &std::path::Path,
    req: &AddPackage,
) -> Result<PreparedPackage> {
    let md = std::fs::metadata(&req.path).map_err(|e| anyhow!("cannot read: {}", io_reason(&e)))?;
    if !md.is_file() {
        bail!("not a regular file");
    }
    if md.len() > MAX_FILE_SIZE {
        bail!(too_large(md.len()));
    }
    let mut f = File::open(&req.path).map_err(|e| anyhow!("cannot read: {}", io_reason(&e)))?;
    let staged = match content.stage(&mut f, MAX_FILE_SIZE) {
        Ok(s) => s,
        Err(StageError::TooLarge { .. }) => bail!(too_large(MAX_FILE_SIZE + 1)),
        Err(StageError::Io(e)) => return Err(anyhow!("cannot copy: {}", io_reason(&e))),
    };
    let inspection = package::inspect(staged.path(), scratch)?;
    let file_name = req
        .path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "package".into());
    let meta = plan(req, &inspection, &file_name)?;
    validate(&meta)?;
    let content = Content {
        format: inspection.format,
        size: staged.size,
        hash: staged.hash.clone(),
        sha256: staged.sha256.clone(),
        file_name,
        installer: inspection.installer.as_ref().and_then(|i| i.path.clone()),
        product_code: inspection
            .installer
            .as_ref()
            .and_then(|i| i.msi.as_ref())
            .and_then(|m| m.product_code.clone()),
        unzipped_size: inspection.unzipped_size,
        entries: inspection.entries,
    };
    Ok(PreparedPackage {
        shown: req.path.display().to_string(),
        content,
        meta,
        staged,
    })
}

/// The rules every package's metadata obeys, after registration and after
/// each edit.
fn validate(m: &Meta) -> Result<()> {
    if m.name.trim().is_empty() {
        bail!("name: must not be empty");
    }
    check_text("name", &m.name, 200)?;
    if let Some(v) = &m.version {
        check_text("version", v, 64)?;
    }
    for (what, c) in [
        ("install command", &m.install_command),
        ("uninstall command", &m.uninstall_command),
    ] {
        if let Some(c) = c {
            check_text(what, c, 8192)?;
        }
    }
    if let Some(f) = &m.folder {
        check_text("folder", f, 1024)?;
        if !is_absolute_folder(f) {
            bail!(
                "folder '{f}': must be an absolute path (/opt/app, C:\\App or %ProgramFiles%\\App)"
            );
        }
    }
    match m.kind {
        Kind::Install if m.install_command.is_none() => {
            bail!("an installation package needs an install command")
        }
        Kind::File if m.folder.is_none() => bail!("a file-distribution package needs a folder"),
        Kind::File if m.install_command.is_some() => {
            bail!("a file-distribution package has no install command")
        }
        _ => {}
    }
    if m.success_codes.is_empty() {
        bail!("success codes: at least one exit code (usually 0)");
    }
    Ok(())
}

fn describe_changes(old: &Meta, new: &Meta) -> Vec<String> {
    fn show(v: &Option<String>) -> String {
        v.as_deref()
            .map(|s| format!("'{s}'"))
            .unwrap_or_else(|| "none".into())
    }
    let pairs = [
        (
            "name",
            show(&Some(old.name.clone())),
            show(&Some(new.name.clone())),
        ),
        ("version", show(&old.version), show(&new.version)),
        (
            "kind",
            old.kind.as_str().to_string(),
            new.kind.as_str().to_string(),
        ),
        (
            "install command",
            show(&old.install_command),
            show(&new.install_command),
        ),
        (
            "uninstall command",
            show(&old.uninstall_command),
            show(&new.uninstall_command),
        ),
        ("folder", show(&old.folder), show(&new.folder)),
        (
            "success codes",
            format!("{:?}", old.success_codes),
            format!("{:?}", new.success_codes),
        ),
        (
            "detection",
            format!("{:?}", old.detect),
            format!("{:?}", new.detect),
        ),
    ];
    pairs
        .into_iter()
        .filter(|(_, a, b)| a != b)
        .map(|(what, a, b)| format!("{what} {a} → {b}"))
        .collect()
}
