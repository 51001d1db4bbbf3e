//! The PKI with explicit times: what certificates are valid for, when the
//! server's is issued again, and what the CA's end means.

use super::*;

/// 2027-01-15, a moment the tests sign at.
const T0: UnixTime = 1_800_000_000;

fn agent_cert(pki: &ServerPki, now: UnixTime) -> Signed {
    let (_key, csr) = agent_key_and_csr("pc-01").unwrap();
    pki.sign_agent(&csr, "pc-01", now).unwrap()
}

fn server_pem(dir: &Path) -> String {
    std::fs::read_to_string(dir.join("server.pem")).unwrap()
}

#[test]
fn pki_is_created_once_and_signs_agents() {
    let t = tempfile::tempdir().unwrap();
    let a = ServerPki::load_or_create(t.path(), T0).unwrap();
    let b = ServerPki::load_or_create(t.path(), T0).unwrap();
    assert_eq!(a.ca_fingerprint(), b.ca_fingerprint());
    let signed = agent_cert(&a, T0);
    assert!(signed.cert_pem.contains("BEGIN CERTIFICATE"));
    assert_eq!(
        signed.fingerprint,
        fingerprint_pem(&signed.cert_pem).unwrap()
    );
    a.server_config(Clock::manual(T0)).unwrap();
    let e = a.sign_agent("garbage", "x", T0).unwrap_err().to_string();
    assert!(e.starts_with("invalid certificate request"), "{e}");
    assert!(check_csr("garbage").is_err());
}

/// An agent certificate signed now ends a year from now (from an hour
/// ago, for clocks a little behind), as the certificate itself says.
#[test]
fn an_agent_certificate_is_valid_for_a_year_from_signing() {
    let t = tempfile::tempdir().unwrap();
    let pki = ServerPki::load_or_create(t.path(), T0).unwrap();
    let signed = agent_cert(&pki, T0);
    let want = Validity {
        not_before: T0 - 3600,
        not_after: T0 + 365 * 86_400,
    };
    assert_eq!(signed.validity, want);
    assert_eq!(Validity::of_pem(&signed.cert_pem).unwrap(), want);
    // The CA lives 20 years, the server's certificate one.
    assert_eq!(
        pki.ca_validity().not_after - pki.ca_validity().not_before,
        20 * 365 * 86_400 + 3600
    );
    assert_eq!(pki.server_validity().not_after, T0 + 365 * 86_400);
}

#[test]
fn renewal_is_due_with_a_third_of_the_life_left_or_no_bound() {
    let v = Validity {
        not_before: T0,
        not_after: T0 + 300 * 86_400,
    };
    let due = |now| v.renewal_due(now, 300 * 86_400);
    assert!(!due(T0));
    assert!(!due(T0 + 199 * 86_400));
    assert!(due(T0 + 201 * 86_400));
    assert!(due(T0 + 400 * 86_400), "expired");
    assert!(!v.expired(T0 + 300 * 86_400));
    assert!(v.expired(T0 + 300 * 86_400 + 1));
    // What rcgen signed before certificates expired: 1975 to 4096.
    let unbounded = Validity {
        not_before: 157_766_400,
        not_after: 67_645_734_400,
    };
    assert!(unbounded.renewal_due(T0, AGENT_CERT_LIFETIME));
}

/// The server certificate stays while it has more than a third of its
/// life left, and is issued again (same CA) when it has less, when it is
/// damaged, or when its key is not its own.
#[test]
fn the_server_certificate_is_issued_again_when_due() {
    let t = tempfile::tempdir().unwrap();
    let first = ServerPki::load_or_create(t.path(), T0).unwrap();
    let pem = server_pem(t.path());
    let later = ServerPki::load_or_create(t.path(), T0 + 200 * 86_400).unwrap();
    assert_eq!(server_pem(t.path()), pem, "re-issued with 165 days left");
    assert_eq!(later.server_validity(), first.server_validity());

    let due = T0 + 250 * 86_400;
    let renewed = ServerPki::load_or_create(t.path(), due).unwrap();
    assert_ne!(server_pem(t.path()), pem);
    assert_eq!(renewed.server_validity().not_after, due + 365 * 86_400);
    assert_eq!(renewed.ca_fingerprint(), first.ca_fingerprint());

    // A crash between writing the key and the certificate.
    let pem = server_pem(t.path());
    std::fs::write(
        t.path().join("server.key"),
        KeyPair::generate().unwrap().serialize_pem(),
    )
    .unwrap();
    let healed = ServerPki::load_or_create(t.path(), due).unwrap();
    assert_ne!(server_pem(t.path()), pem);
    healed.server_config(Clock::manual(due)).unwrap();
    std::fs::write(t.path().join("server.pem"), "damaged").unwrap();
    ServerPki::load_or_create(t.path(), due).unwrap();
    assert!(server_pem(t.path()).contains("BEGIN CERTIFICATE"));
}

/// A running server issues its certificate again when it comes due and
/// presents the new one from then on.
#[test]
fn a_running_server_refreshes_its_certificate_when_due() {
    let t = tempfile::tempdir().unwrap();
    let pki = ServerPki::load_or_create(t.path(), T0).unwrap();
    let before = pki.server_validity();
    assert_eq!(pki.refresh_server(T0 + 86_400).unwrap(), None);
    let due = T0 + 250 * 86_400;
    let new = pki.refresh_server(due).unwrap().expect("re-issued");
    assert_eq!(new.not_after, due + 365 * 86_400);
    assert_eq!(pki.server_validity(), new);
    assert_ne!(new, before);
    assert_eq!(Validity::of_pem(&server_pem(t.path())).unwrap(), new);
}

/// No certificate outlives the CA; once the CA has ended, nothing is
/// signed and the error says why.
#[test]
fn certificates_end_with_the_ca() {
    let t = tempfile::tempdir().unwrap();
    let pki = ServerPki::load_or_create(t.path(), T0).unwrap();
    let end = pki.ca_validity().not_after;
    let near = agent_cert(&pki, end - 10 * 86_400);
    assert_eq!(near.validity.not_after, end);
    let (_key, csr) = agent_key_and_csr("pc-01").unwrap();
    let e = pki
        .sign_agent(&csr, "pc-01", end + 1)
        .unwrap_err()
        .to_string();
    assert!(e.contains("CA") && e.contains("expired"), "{e}");
    let e = ServerPki::load_or_create(t.path(), end + 1)
        .err()
        .expect("a server certificate from an expired CA")
        .to_string();
    assert!(e.contains("expired"), "{e}");
}

#[test]
fn tokens_round_trip() {
    let fp = "ab".repeat(32);
    let (secret, token) = new_token(&fp).unwrap();
    assert_eq!(parse_token(&token).unwrap(), (secret.as_str(), fp.as_str()));
    assert!(parse_token("ct1.short.abc").is_err());
    assert_ne!(token_digest(&secret), secret);
}
