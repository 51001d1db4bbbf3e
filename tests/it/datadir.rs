//! Where the data dir comes from and how it is created.

use std::process::Command;

use crate::support::fixture;

#[test]
fn courier_data_env_is_used_and_created_private() {
    let t = tempfile::tempdir().unwrap();
    let data = t.path().join("nested/data");
    let o = Command::new(env!("CARGO_BIN_EXE_courier"))
        .env("COURIER_DATA", &data)
        .args(["package", "add", fixture("hello.msi").to_str().unwrap()])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(data.join("courier.db").is_file());
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&data).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o700);
    }
}

#[test]
fn xdg_data_home_is_the_default() {
    let t = tempfile::tempdir().unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_courier"))
        .env_remove("COURIER_DATA")
        .env("XDG_DATA_HOME", t.path())
        .args(["package", "list", "--json"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(t.path().join("courier/courier.db").is_file());
}
