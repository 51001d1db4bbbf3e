//! The seeded data: packages, destinations, tasks, failures and events
//! with fixed timestamps and a fixed listen address.

use courier::console::backend::Snapshot;
use courier::model::{
    Counts, Destination, Event, Failure, Kind, Level, Package, Status, Task, TaskDestination,
};

const WHEN: &str = "2025-06-01T09:00:00Z";

fn package(id: i64, name: &str, kind: Kind, format: &str, size: u64) -> Package {
    Package {
        id,
        name: name.into(),
        version: None,
        kind,
        format: format.parse().unwrap(),
        size,
        hash: format!("{id:064x}"),
        sha256: format!("{:064x}", id * 7),
        install_command: None,
        uninstall_command: None,
        folder: None,
        success_codes: vec![0, 3010, 1641],
        file_name: name.into(),
        installer: None,
        product_code: None,
        unzipped_size: None,
        entries: None,
        created_at: WHEN.into(),
        updated_at: WHEN.into(),
        detect: Vec::new(),
    }
}

fn packages() -> Vec<Package> {
    let mut msi = package(1, "Courier Hello", Kind::Install, "msi", 32_768);
    msi.version = Some("1.0.0".into());
    msi.file_name = "hello.msi".into();
    msi.install_command = Some(r#"msiexec /i "hello.msi" /qn /norestart"#.into());
    msi.uninstall_command =
        Some("msiexec /x {6F1E3D4C-1B2A-4C5D-9E8F-0A1B2C3D4E5F} /qn /norestart".into());
    msi.product_code = Some("{6F1E3D4C-1B2A-4C5D-9E8F-0A1B2C3D4E5F}".into());
    let mut exe = package(2, "hello-nsis", Kind::Install, "exe", 61_440);
    exe.version = Some("2.4".into());
    exe.file_name = "hello-nsis.exe".into();
    exe.install_command = Some("hello-nsis.exe /S".into());
    let mut zip = package(3, "legacy-erp-client", Kind::Install, "zip", 4_718_592);
    zip.file_name = "legacy-erp-client.zip".into();
    zip.install_command = Some("sh setup.sh".into());
    zip.installer = Some("setup.sh".into());
    zip.unzipped_size = Some(9_437_184);
    zip.entries = Some(12);
    let mut motd = package(4, "motd.txt", Kind::File, "file", 42);
    motd.folder = Some("/etc/motd.d".into());
    vec![msi, exe, zip, motd]
}

fn destination(id: i64, name: &str, status: &str, os: &str, seen: Option<&str>) -> Destination {
    Destination {
        software: None,
        id,
        name: name.into(),
        status: status.parse().unwrap(),
        os: Some(os.into()),
        hostname: Some(format!("{name}.corp.example")),
        agent_version: Some("0.1.0".into()),
        last_seen: seen.map(str::to_string),
        enrolled_at: "2025-05-30T08:00:00Z".into(),
        running_work: 0,
        moving_to: None,
        cert_expires_at: None,
    }
}

fn destinations() -> Vec<Destination> {
    let mut online = destination(1, "pc-accounting-01", "online", "windows", Some(WHEN));
    online.running_work = 2;
    vec![
        online,
        destination(2, "pc-accounting-02", "online", "windows", Some(WHEN)),
        destination(
            3,
            "build-linux-07",
            "offline",
            "linux",
            Some("2025-05-31T17:42:10Z"),
        ),
        destination(4, "kiosk-lobby", "pending", "windows", None),
        destination(
            5,
            "unknown-laptop",
            "rejected",
            "linux",
            Some("2025-05-29T11:00:00Z"),
        ),
    ]
}

fn counts(
    waiting: u64,
    transferring: u64,
    installing: u64,
    succeeded: u64,
    failed: u64,
    cancelled: u64,
) -> Counts {
    Counts {
        waiting,
        transferring,
        installing,
        succeeded,
        failed,
        cancelled,
    }
}

fn task(id: i64, name: &str, status: &str, package: &Package, counts: Counts) -> Task {
    Task {
        id,
        name: name.into(),
        kind: "install".parse().unwrap(),
        class: "admin".parse().unwrap(),
        status: status.parse().unwrap(),
        package: Some(package.id),
        package_name: package.name.clone(),
        software: None,
        software_version: None,
        policy: None,
        force: false,
        rings: Vec::new(),
        gate: None,
        paused_reason: None,
        start_at: None,
        window: None,
        created_at: "2025-06-01T08:30:00Z".into(),
        completed_at: None,
        counts,
        destinations: Vec::new(),
        warnings: Vec::new(),
    }
}

fn tasks() -> Vec<Task> {
    let p = packages();
    let mut done = task(
        2,
        "Install legacy ERP client",
        "failed",
        &p[2],
        counts(0, 0, 0, 1, 3, 0),
    );
    done.completed_at = Some("2025-06-01T08:41:07Z".into());
    let mut motd = task(
        3,
        "Distribute message of the day",
        "completed",
        &p[3],
        counts(0, 0, 0, 2, 0, 0),
    );
    motd.completed_at = Some("2025-06-01T08:35:00Z".into());
    let mut later = task(
        4,
        "Uninstall hello-nsis overnight",
        "scheduled",
        &p[1],
        counts(2, 0, 0, 0, 0, 0),
    );
    later.kind = "uninstall".parse().unwrap();
    later.start_at = Some("2025-06-02T22:00:00Z".into());
    later.window = Some("22:00-06:00".into());
    vec![
        task(
            1,
            "Roll out Courier Hello 1.0",
            "running",
            &p[0],
            counts(1, 1, 1, 2, 3, 1),
        ),
        done,
        motd,
        later,
    ]
}

pub(super) fn row(name: &str, status: &str) -> TaskDestination {
    TaskDestination {
        name: name.into(),
        status: status.parse().unwrap(),
        exit_code: None,
        message: None,
        meaning: None,
        attempt: 1,
        retries: 0,
        transferred: 0,
        reboot_required: false,
        output: None,
        updated_at: WHEN.into(),
        started_at: None,
        elapsed_secs: None,
        command: None,
        detection: None,
        has_log: false,
        log: None,
        state_since: None,
        stuck: None,
    }
}

fn failed_row(name: &str, code: i64, meaning: &str, message: &str) -> TaskDestination {
    TaskDestination {
        exit_code: Some(code),
        meaning: Some(meaning.into()),
        message: Some(message.into()),
        transferred: 32_768,
        ..row(name, "failed")
    }
}

/// Task 1 with one row per state: a transfer half done (the gauge),
/// failures with exit codes 1603, 1618 and 3010 (this package does not
/// count a restart as success), a success that needs a restart.
pub(super) fn detail() -> Task {
    let mut t = tasks().remove(0);
    let mut ok = row("pc-accounting-01", "succeeded");
    ok.exit_code = Some(0);
    ok.transferred = 32_768;
    let mut reboot = row("pc-accounting-02", "succeeded");
    reboot.exit_code = Some(3010);
    reboot.meaning = Some("success; a restart is required to complete the installation".into());
    reboot.reboot_required = true;
    reboot.transferred = 32_768;
    let mut moving = row("pc-sales-01", "transferring");
    moving.transferred = 16_384;
    let mut busy = row("pc-sales-02", "installing");
    busy.transferred = 32_768;
    let mut retried = failed_row(
        "pc-sales-03",
        1618,
        "another installation is in progress; retry later",
        "exit 1618: gave up after 3 tries",
    );
    retried.retries = 3;
    t.destinations = vec![
        ok,
        reboot,
        moving,
        busy,
        failed_row(
            "pc-hr-01",
            1603,
            "fatal error during installation (see the Windows Installer log)",
            "exit 1603: Product: Courier Hello -- Installation failed.",
        ),
        retried,
        failed_row(
            "pc-hr-02",
            3010,
            "success; a restart is required to complete the installation",
            "exit 3010: not a success code of this package",
        ),
        row("pc-hr-03", "waiting"),
        row("pc-old-09", "cancelled"),
    ];
    t
}

fn failure(task: &Task, dest: &str, code: Option<i64>, message: &str) -> Failure {
    Failure {
        task_id: task.id,
        task_name: task.name.clone(),
        destination: dest.into(),
        exit_code: code,
        meaning: code.and_then(|c| courier::task::outcome::meaning(c).map(str::to_string)),
        message: Some(message.into()),
        attempt: 1,
        updated_at: WHEN.into(),
        os: Some("windows".into()),
        said: None,
        action: None,
        detection: None,
        has_log: false,
        stuck: None,
    }
}

/// A failure on Linux whose output said `said`; its message is what the
/// server stored: the code's (Windows) meaning when it has one.
fn linux_failure(task: &Task, dest: &str, code: i64, said: &str) -> Failure {
    let message = match courier::task::outcome::meaning(code) {
        Some(m) => format!("exit {code}: {m}"),
        None => format!("exit {code}: {said}"),
    };
    Failure {
        os: Some("linux".into()),
        said: Some(said.into()),
        ..failure(task, dest, Some(code), &message)
    }
}

/// Failed destinations of tasks 1 (an MSI on Windows) and 2 (a script on
/// Linux): a 1603 whose log names the failing action, a 1618; on Linux,
/// an exit 5 that is no "access denied", two exit-1 failures with
/// different errors; and two download time-outs on both tasks that differ
/// only in a number.
pub(super) fn failures() -> Vec<Failure> {
    let t = tasks();
    let mut msi = failure(
        &t[0],
        "pc-hr-01",
        Some(1603),
        "exit 1603: fatal error during installation (see the Windows Installer log)",
    );
    msi.said = Some("Product: Courier Hello -- Installation failed.".into());
    msi.action = Some("InstallFinalize".into());
    vec![
        msi,
        failure(
            &t[0],
            "pc-sales-03",
            Some(1618),
            "exit 1618: gave up after 3 tries",
        ),
        failure(
            &t[0],
            "pc-branch-11",
            None,
            "download timed out after 600 s: no byte for 60 s",
        ),
        linux_failure(&t[1], "pc-fin-01", 5, "fatal: disk quota exceeded on /var"),
        linux_failure(
            &t[1],
            "pc-fin-02",
            1,
            "error: libodbc.so.2 not found: install the ODBC driver first",
        ),
        linux_failure(
            &t[1],
            "pc-fin-03",
            1,
            "npm ERR! network timeout at https://registry.example.com/erp",
        ),
        failure(
            &t[1],
            "pc-branch-12",
            None,
            "download timed out after 3600 s: no byte for 60 s",
        ),
    ]
}

fn event(id: i64, at: &str, level: Level, kind: &str, subject: &str, message: &str) -> Event {
    Event {
        id,
        at: at.into(),
        level,
        kind: kind.into(),
        subject: subject.into(),
        message: message.into(),
    }
}

fn events() -> Vec<Event> {
    // Subjects and messages in the server's own words.
    vec![
        event(
            1,
            "2025-06-01T08:30:00Z",
            Level::Info,
            "package.added",
            "package 1",
            "'Courier Hello' 1.0.0 (install, msi, 32.77 kB) from hello.msi, sha256 1f0e…",
        ),
        event(
            2,
            "2025-06-01T08:30:05Z",
            Level::Info,
            "task.created",
            "task 1",
            "'Roll out Courier Hello 1.0' for 9 destinations",
        ),
        event(
            3,
            "2025-06-01T08:31:12Z",
            Level::Warn,
            "agent.enrolled",
            "destination kiosk-lobby",
            "kiosk-lobby (windows, 0.1.0) with token 3, waiting for approval",
        ),
        event(
            4,
            "2025-06-01T08:40:59Z",
            Level::Error,
            "task.destination",
            "task 1",
            "'Roll out Courier Hello 1.0' on pc-hr-01: failed, exit 1603",
        ),
        event(
            5,
            "2025-06-01T08:41:07Z",
            Level::Warn,
            "task.finished",
            "task 2",
            "'Install legacy ERP client' failed: 1 succeeded, 3 failed, 0 cancelled",
        ),
        event(
            6,
            "2025-06-01T08:59:30Z",
            Level::Info,
            "agent.online",
            "destination pc-accounting-02",
            "windows 0.1.0",
        ),
    ]
}

pub(super) fn status() -> Status {
    Status {
        listen: Some("10.0.0.5:7443".into()),
        online: 2,
        offline: 1,
        pending: 1,
        total: 5,
        running_tasks: 1,
        unfinished: 3,
        bytes_served: 0,
        stuck: 0,
    }
}

pub(super) fn snapshot() -> Snapshot {
    Snapshot {
        status: status(),
        packages: packages(),
        tasks: tasks(),
        destinations: destinations(),
        fleet_skipped: false,
        events: events(),
        task: None,
        task_changes: None,
        task_rev: None,
        failures: None,
        output: None,
        policies: None,
        software: None,
        inventory: None,
    }
}
