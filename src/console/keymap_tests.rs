//! The keymap's own checks, and the generated docs kept in step.

use super::*;

#[test]
fn context_bindings_shadow_global_ones() {
    let enter = KeyEvent::new(KeyCode::Enter, KeyModifiers::NONE);
    assert_eq!(
        dispatch(Context::TaskDetail, &enter).unwrap().action,
        Action::Output
    );
    assert_eq!(
        dispatch(Context::Packages, &enter).unwrap().action,
        Action::Enter
    );
    let q = KeyEvent::new(KeyCode::Char('q'), KeyModifiers::NONE);
    assert_eq!(dispatch(Context::Log, &q).unwrap().action, Action::Quit);
    let ctrl_q = KeyEvent::new(KeyCode::Char('q'), KeyModifiers::CONTROL);
    assert!(dispatch(Context::Log, &ctrl_q).is_none());
}

#[test]
fn no_key_is_bound_twice_in_one_context() {
    for ctx in Context::ALL {
        let mut seen = Vec::new();
        for b in KEYMAP.iter().filter(|b| b.context == ctx) {
            for k in b.keys {
                assert!(!seen.contains(k), "{ctx:?}: {k:?} bound twice");
                seen.push(*k);
            }
        }
    }
}

#[test]
fn keybindings_doc_is_current() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/keybindings.md");
    let want = markdown();
    if std::env::var_os("UPDATE_DOCS").is_some() {
        std::fs::write(path, &want).unwrap();
    }
    let have = std::fs::read_to_string(path).unwrap_or_default();
    assert_eq!(
        have, want,
        "docs/keybindings.md is stale: run UPDATE_DOCS=1 cargo test keybindings"
    );
}
