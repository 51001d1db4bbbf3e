//! `courier package …`: registration of every kind of file the seed names,
//! the limits, metadata edits and deletion.

use std::fs;

use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::support::{Courier, Entry, fixture, make_zip, sparse, write_zip};

/// ProductCode of tests/fixtures/hello.wxs.
const HELLO_CODE: &str = "{6F1C2B9A-3D4E-4F50-8A61-7B2C3D4E5F60}";
const GIB: u64 = 1 << 30;

fn fields(v: &Value) -> Vec<String> {
    let mut k: Vec<String> = v.as_object().unwrap().keys().cloned().collect();
    k.sort();
    k
}

#[test]
fn msi_is_read_and_commands_are_set() {
    let c = Courier::new();
    let msi = fixture("hello.msi");
    let p = c.json(&["package", "add", msi.to_str().unwrap(), "--json"]);
    assert_eq!(p["id"], 1);
    assert_eq!(p["name"], "Courier Hello");
    assert_eq!(p["version"], "1.2.3");
    assert_eq!(p["kind"], "install");
    assert_eq!(p["format"], "msi");
    assert_eq!(
        p["install_command"],
        "msiexec /i \"hello.msi\" /qn /norestart"
    );
    assert_eq!(
        p["uninstall_command"],
        format!("msiexec /x {HELLO_CODE} /qn /norestart")
    );
    let bytes = fs::read(&msi).unwrap();
    assert_eq!(p["size"], bytes.len() as u64);
    assert_eq!(p["hash"], blake3::hash(&bytes).to_hex().as_str());
    assert_eq!(p["sha256"], hex::encode(Sha256::digest(&bytes)));
    for f in [
        "id",
        "name",
        "version",
        "kind",
        "format",
        "size",
        "hash",
        "sha256",
        "install_command",
        "uninstall_command",
        "folder",
    ] {
        assert!(fields(&p).contains(&f.to_string()), "missing field {f}");
    }
    // The content store holds exactly the bytes registered, at their hash.
    let h = p["hash"].as_str().unwrap();
    let blob = c.data().join("content").join(&h[..2]).join(h);
    assert_eq!(fs::read(blob).unwrap(), bytes);
}

#[test]
fn msi_is_detected_by_content_not_extension() {
    let c = Courier::new();
    let disguised = c.input("installer.bin");
    fs::copy(fixture("hello.msi"), &disguised).unwrap();
    let p = c.json(&["package", "add", disguised.to_str().unwrap(), "--json"]);
    assert_eq!(p["format"], "msi");
    assert_eq!(
        p["install_command"],
        "msiexec /i \"installer.bin\" /qn /norestart"
    );
    // And a text file named .msi is no installer.
    let fake = c.input("fake.msi");
    fs::write(&fake, "not an msi").unwrap();
    let e = c.err(&["package", "add", fake.to_str().unwrap()]);
    assert!(e.contains("--folder"), "{e}");
}

#[test]
fn exe_without_command_is_refused_naming_nsis_and_its_switch() {
    let c = Courier::new();
    let exe = fixture("hello-nsis.exe");
    let e = c.err(&["package", "add", exe.to_str().unwrap()]);
    assert!(e.starts_with("courier: "), "{e}");
    assert!(e.contains("NSIS"), "{e}");
    assert!(e.contains("hello-nsis.exe /S"), "{e}");
    assert!(c.content_files().is_empty(), "{:?}", c.content_files());
    assert_eq!(c.json(&["package", "list", "--json"]), Value::Array(vec![]));

    let p = c.json(&[
        "package",
        "add",
        exe.to_str().unwrap(),
        "--install-command",
        "hello-nsis.exe /S",
        "--json",
    ]);
    assert_eq!(p["format"], "exe");
    assert_eq!(p["kind"], "install");
    assert_eq!(p["install_command"], "hello-nsis.exe /S");
    assert_eq!(p["uninstall_command"], Value::Null);
}

#[test]
fn unknown_exe_is_refused_with_common_switches() {
    let c = Courier::new();
    let exe = c.input("tool.exe");
    // A minimal PE: "MZ", e_lfanew at 0x3c pointing at "PE\0\0", an
    // executable image (not a DLL) for the Windows GUI subsystem.
    let mut b = vec![0u8; 512];
    b[0] = b'M';
    b[1] = b'Z';
    b[0x3c] = 0x80;
    b[0x80..0x84].copy_from_slice(b"PE\0\0");
    b[0x80 + 22] = 0x02;
    b[0x80 + 24 + 68] = 2;
    fs::write(&exe, &b).unwrap();
    let e = c.err(&["package", "add", exe.to_str().unwrap()]);
    assert!(e.contains("--install-command"), "{e}");
    assert!(e.contains("/VERYSILENT"), "{e}");
}

#[test]
fn zip_with_nested_msi_finds_the_installer() {
    let c = Courier::new();
    let z = c.input("bundle.zip");
    let msi = fs::read(fixture("hello.msi")).unwrap();
    make_zip(
        &z,
        &[
            ("readme.txt", b"read me"),
            ("vendor/app/setup.msi", &msi),
            ("vendor/app/config.ini", b"[x]"),
        ],
    );
    let p = c.json(&["package", "add", z.to_str().unwrap(), "--json"]);
    assert_eq!(p["format"], "zip");
    assert_eq!(p["kind"], "install");
    assert_eq!(p["name"], "Courier Hello");
    assert_eq!(p["installer"], "vendor/app/setup.msi");
    assert_eq!(
        p["install_command"],
        "msiexec /i \"vendor\\app\\setup.msi\" /qn /norestart"
    );
    assert_eq!(
        p["uninstall_command"],
        format!("msiexec /x {HELLO_CODE} /qn /norestart")
    );
    assert_eq!(p["entries"], 3);
    assert_eq!(p["unzipped_size"], (7 + msi.len() + 3) as u64);
}

#[test]
fn zip_with_nested_exe_needs_its_command() {
    let c = Courier::new();
    let z = c.input("bundle.zip");
    let exe = fs::read(fixture("hello-nsis.exe")).unwrap();
    make_zip(&z, &[("bin/setup.exe", &exe), ("data.dat", b"123")]);
    let e = c.err(&["package", "add", z.to_str().unwrap()]);
    assert!(e.contains("NSIS"), "{e}");
    assert!(e.contains("bin\\setup.exe /S"), "{e}");
    let p = c.json(&[
        "package",
        "add",
        z.to_str().unwrap(),
        "--install-command",
        "bin\\setup.exe /S",
        "--json",
    ]);
    assert_eq!(p["installer"], "bin/setup.exe");
}

#[test]
fn zip_for_file_distribution_keeps_a_nested_zip_as_is() {
    let c = Courier::new();
    let inner = c.input("inner.zip");
    make_zip(&inner, &[("a.txt", b"a")]);
    let outer = c.input("outer.zip");
    make_zip(
        &outer,
        &[
            ("inner.zip", &fs::read(&inner).unwrap()),
            ("conf/b.txt", b"bb"),
        ],
    );
    let p = c.json(&[
        "package",
        "add",
        outer.to_str().unwrap(),
        "--folder",
        "C:\\Data",
        "--json",
    ]);
    assert_eq!(p["kind"], "file");
    assert_eq!(p["format"], "zip");
    assert_eq!(p["folder"], "C:\\Data");
    assert_eq!(p["install_command"], Value::Null);
    assert_eq!(p["entries"], 2);
    assert_eq!(p["installer"], Value::Null);
}

#[test]
fn plain_file_needs_a_folder() {
    let c = Courier::new();
    let f = c.input("settings.conf");
    fs::write(&f, "x=1\n").unwrap();
    let e = c.err(&["package", "add", f.to_str().unwrap()]);
    assert!(e.contains("--folder"), "{e}");
    let e = c.err(&["package", "add", f.to_str().unwrap(), "--folder", "etc/app"]);
    assert!(e.contains("absolute"), "{e}");
    let e = c.err(&["package", "add", f.to_str().unwrap(), "--kind", "file"]);
    assert!(e.contains("folder"), "{e}");
    let p = c.json(&[
        "package",
        "add",
        f.to_str().unwrap(),
        "--folder",
        "/etc/app",
        "--json",
    ]);
    assert_eq!(p["kind"], "file");
    assert_eq!(p["format"], "file");
    assert_eq!(p["name"], "settings");
    assert_eq!(p["folder"], "/etc/app");
}

#[test]
fn installer_with_folder_asks_which_kind() {
    let c = Courier::new();
    let msi = fixture("hello.msi");
    let e = c.err(&[
        "package",
        "add",
        msi.to_str().unwrap(),
        "--folder",
        "C:\\Drop",
    ]);
    assert!(
        e.contains("--kind install") && e.contains("--kind file"),
        "{e}"
    );
    let p = c.json(&[
        "package",
        "add",
        msi.to_str().unwrap(),
        "--folder",
        "C:\\Drop",
        "--kind",
        "file",
        "--json",
    ]);
    assert_eq!(p["kind"], "file");
    assert_eq!(p["format"], "msi");
}

#[test]
fn missing_and_odd_paths_are_one_line_errors() {
    let c = Courier::new();
    let e = c.err(&["package", "add", "/nonexistent/setup.msi"]);
    assert!(
        e.contains("/nonexistent/setup.msi") && e.contains("no such file"),
        "{e}"
    );
    let e = c.err(&[
        "package",
        "add",
        c.dir.path().to_str().unwrap(),
        "--folder",
        "/x",
    ]);
    assert!(e.contains("not a regular file"), "{e}");
    let e = c.err(&["package", "show", "42"]);
    assert_eq!(e, "courier: package 42: no such package");
}

#[test]
fn file_of_exactly_1_gib_registers_in_bounded_memory() {
    let c = Courier::new();
    let f = c.input("big.img");
    sparse(&f, GIB);
    // GNU time reports the peak resident set of the registration.
    let o = std::process::Command::new("/usr/bin/time")
        .args(["-f", "maxrss_kib=%M"])
        .arg(env!("CARGO_BIN_EXE_courier"))
        .arg("--data")
        .arg(c.data())
        .args([
            "package",
            "add",
            f.to_str().unwrap(),
            "--folder",
            "/srv/img",
            "--json",
        ])
        .output()
        .expect("/usr/bin/time (Debian package 'time')");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let p: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(p["size"], GIB);
    let stderr = String::from_utf8_lossy(&o.stderr);
    let kib: u64 = stderr
        .lines()
        .find_map(|l| l.strip_prefix("maxrss_kib="))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no rss in {stderr}"));
    assert!(
        kib < 64 * 1024,
        "registering 1 GiB took {kib} KiB of memory"
    );
    c.ok(&["package", "rm", "1"]);
    assert!(c.content_files().is_empty());
}

#[test]
fn file_over_1_gib_is_refused_and_leaves_nothing() {
    let c = Courier::new();
    let f = c.input("big.img");
    sparse(&f, GIB + 1);
    let e = c.err(&["package", "add", f.to_str().unwrap(), "--folder", "/srv"]);
    assert!(e.contains("1 GiB"), "{e}");
    assert!(e.contains("split"), "{e}");
    assert!(c.content_files().is_empty());
    assert_eq!(c.json(&["package", "list", "--json"]), Value::Array(vec![]));
}

#[test]
fn zip_that_lies_about_its_size_is_refused() {
    let c = Courier::new();
    let z = c.input("bomb.zip");
    // Three entries that each claim 1 KiB and really inflate to 1 GiB:
    // 3 GiB in all, beyond the 2 GiB limit, while the headers say 3 KiB.
    let e1 = Entry::zeros("a.bin", GIB, 1024);
    let e2 = Entry::zeros("b.bin", GIB, 1024);
    let e3 = Entry::zeros("c.bin", GIB, 1024);
    write_zip(&z, &[e1, e2, e3]);
    let e = c.err(&["package", "add", z.to_str().unwrap(), "--folder", "/srv"]);
    assert!(e.contains("a.bin") && e.contains("decompresses"), "{e}");
    assert!(c.content_files().is_empty());
}

#[test]
fn zip_beyond_2_gib_unzipped_is_refused() {
    let c = Courier::new();
    let z = c.input("huge.zip");
    // Honest headers, 1 GiB + 1 GiB + 1 byte of real content.
    let e1 = Entry::zeros("a.bin", GIB, GIB);
    let e2 = Entry::zeros("b.bin", GIB, GIB);
    let e3 = Entry::stored("c.bin", b"x");
    write_zip(&z, &[e1, e2, e3]);
    let e = c.err(&["package", "add", z.to_str().unwrap(), "--folder", "/srv"]);
    assert!(e.contains("2 GiB"), "{e}");
    assert!(c.content_files().is_empty());
}

#[test]
fn zip_of_exactly_2_gib_unzipped_is_accepted() {
    let c = Courier::new();
    let z = c.input("full.zip");
    write_zip(
        &z,
        &[
            Entry::zeros("a.bin", GIB, GIB),
            Entry::zeros("b.bin", GIB, GIB),
        ],
    );
    let p = c.json(&[
        "package",
        "add",
        z.to_str().unwrap(),
        "--folder",
        "/srv",
        "--json",
    ]);
    assert_eq!(p["unzipped_size"], 2 * GIB);
}

#[test]
fn zip_entries_that_escape_the_folder_are_refused() {
    for name in [
        "../evil.txt",
        "a/../../evil.txt",
        "/etc/passwd",
        "C:\\Windows\\evil.dll",
        "c:evil",
        "..\\evil",
    ] {
        let c = Courier::new();
        let z = c.input("evil.zip");
        write_zip(
            &z,
            &[Entry::stored("ok.txt", b"fine"), Entry::stored(name, b"x")],
        );
        let e = c.err(&["package", "add", z.to_str().unwrap(), "--folder", "/srv"]);
        assert!(e.contains(name), "{name}: {e}");
        assert!(c.content_files().is_empty(), "{name}");
    }
}

#[test]
fn zip_links_and_encrypted_entries_are_refused() {
    let c = Courier::new();
    let z = c.input("link.zip");
    let mut link = Entry::stored("passwd", b"/etc/passwd");
    link.unix_mode = 0o120777;
    write_zip(&z, &[link]);
    let e = c.err(&["package", "add", z.to_str().unwrap(), "--folder", "/srv"]);
    assert!(e.contains("passwd") && e.contains("link"), "{e}");

    let z = c.input("secret.zip");
    let mut secret = Entry::stored("secret.txt", b"xxxxxxxxxxxxxxxx");
    secret.flags = 1;
    write_zip(&z, &[secret]);
    let e = c.err(&["package", "add", z.to_str().unwrap(), "--folder", "/srv"]);
    assert!(e.contains("secret.txt") && e.contains("encrypted"), "{e}");
    assert!(c.content_files().is_empty());
}

#[test]
fn edit_changes_metadata_never_content() {
    let c = Courier::new();
    let msi = fixture("hello.msi");
    let before = c.json(&["package", "add", msi.to_str().unwrap(), "--json"]);
    let after = c.json(&[
        "package",
        "edit",
        "1",
        "--name",
        "Hello (pilot)",
        "--install-command",
        "msiexec /i \"hello.msi\" /qn /norestart ALLUSERS=1",
        "--success-codes",
        "0,3010",
        "--json",
    ]);
    assert_eq!(after["name"], "Hello (pilot)");
    assert_eq!(
        after["install_command"],
        "msiexec /i \"hello.msi\" /qn /norestart ALLUSERS=1"
    );
    assert_eq!(after["success_codes"], serde_json::json!([0, 3010]));
    for same in [
        "hash",
        "sha256",
        "size",
        "format",
        "uninstall_command",
        "version",
    ] {
        assert_eq!(after[same], before[same], "{same} changed");
    }
    // Clearing the uninstall command is allowed; clearing the install
    // command of an installation package is not.
    let p = c.json(&["package", "edit", "1", "--uninstall-command", "", "--json"]);
    assert_eq!(p["uninstall_command"], Value::Null);
    let e = c.err(&["package", "edit", "1", "--install-command", ""]);
    assert!(
        e.contains("package 1") && e.contains("install command"),
        "{e}"
    );
    let e = c.err(&["package", "edit", "1", "--kind", "file"]);
    assert!(e.contains("folder"), "{e}");
    let e = c.err(&["package", "edit", "1", "--folder", "relative\\dir"]);
    assert!(e.contains("absolute"), "{e}");
    // Nothing of the refused edits stuck.
    let now = c.json(&["package", "show", "1", "--json"]);
    assert_eq!(now["name"], "Hello (pilot)");
    assert_eq!(now["kind"], "install");
    assert_eq!(now["folder"], Value::Null);
}

#[test]
fn rm_removes_content_unless_shared() {
    let c = Courier::new();
    let msi = fixture("hello.msi");
    let a = c.json(&["package", "add", msi.to_str().unwrap(), "--json"]);
    let b = c.json(&[
        "package",
        "add",
        msi.to_str().unwrap(),
        "--name",
        "copy",
        "--json",
    ]);
    assert_eq!(a["hash"], b["hash"]);
    let blobs = |c: &Courier| {
        c.content_files()
            .into_iter()
            .filter(|p| p.extension().is_none())
            .count()
    };
    assert_eq!(blobs(&c), 1, "identical content stored once");
    let out = c.ok(&["package", "rm", "1"]);
    assert!(out.contains("deleted package 1"), "{out}");
    assert_eq!(blobs(&c), 1, "still used by package 2");
    c.ok(&["package", "rm", "2"]);
    assert!(c.content_files().is_empty());
    let e = c.err(&["package", "rm", "2"]);
    assert_eq!(e, "courier: package 2: no such package");
}

#[test]
fn list_shows_a_table_and_json_array() {
    let c = Courier::new();
    let out = c.ok(&["package", "list"]);
    assert!(out.contains("no packages"), "{out}");
    c.ok(&["package", "add", fixture("hello.msi").to_str().unwrap()]);
    let f = c.input("motd");
    fs::write(&f, "hello").unwrap();
    c.ok(&["package", "add", f.to_str().unwrap(), "--folder", "/etc"]);
    let out = c.ok(&["package", "list"]);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 3, "{out}");
    assert!(lines[0].starts_with("ID"), "{out}");
    assert!(
        lines[1].contains("Courier Hello") && lines[1].contains("msiexec"),
        "{out}"
    );
    assert!(
        lines[2].contains("motd") && lines[2].contains("→ /etc"),
        "{out}"
    );
    let list = c.json(&["package", "list", "--json"]);
    assert_eq!(list.as_array().unwrap().len(), 2);
    assert_eq!(list[1]["kind"], "file");
}

#[test]
fn usage_errors_exit_2() {
    let c = Courier::new();
    let o = c.run(&["package", "add"]);
    assert_eq!(o.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&o.stderr).into_owned();
    assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");
    assert!(
        stderr.contains("<FILE>") && stderr.contains("usage: courier package add"),
        "{stderr}"
    );
    let o = c.run(&["package", "add", "x", "--kind", "bogus"]);
    assert_eq!(o.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&o.stderr).into_owned();
    assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");
    assert!(
        stderr.starts_with("courier: ") && stderr.contains("bogus"),
        "{stderr}"
    );
    let o = c.run(&["package", "show", "abc"]);
    assert_eq!(o.status.code(), Some(2));
}
