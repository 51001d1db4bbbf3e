//! Enrolment and the identity it leaves: a key and certificate request
//! sent with a token, the certificate and CA kept in the data dir, and the
//! client that authenticates with them afterwards.

use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};

use super::{agent_info, hostname, jitter, root_cause};
use crate::agent::fetch::error_text;
use crate::pki;
use crate::proto::{EnrollRequest, EnrollResponse};

/// What enrolment leaves in the data dir (besides `key.pem`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct Identity {
    pub(super) server: String,
    pub(super) name: String,
    pub(super) ca_pem: String,
    pub(super) cert_pem: String,
}

/// A renewal's new key and identity, written as one file before they
/// replace `key.pem` and `identity.json`: a crash between those two writes
/// would leave a key that does not match the certificate. Whoever loads
/// the identity next finishes what this file says ([`load_identity`]).
const RENEWED: &str = "renewed.json";

#[derive(Serialize, Deserialize)]
struct Renewed {
    identity: Identity,
    key_pem: String,
}

/// A default destination name from the host name: what `check_name` takes.
pub(super) fn default_name() -> String {
    let n: String = hostname()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.' {
                c
            } else {
                '-'
            }
        })
        .take(64)
        .collect();
    n.trim_start_matches(|c: char| !c.is_ascii_alphanumeric())
        .to_string()
}

/// The client that talks to the server as this agent: it shows the agent's
/// certificate and trusts only the CA received at enrolment.
pub(super) fn client_for(data: &Path, id: &Identity) -> Result<reqwest::Client> {
    let key_pem = std::fs::read_to_string(data.join("key.pem")).context("agent key")?;
    client_with(id, &key_pem)
}

/// The client of [`client_for`] with `key_pem`; refused if the key is not
/// the certificate's.
pub(super) fn client_with(id: &Identity, key_pem: &str) -> Result<reqwest::Client> {
    let tls = pki::agent_client_config(&id.ca_pem, &id.cert_pem, key_pem)?;
    Ok(reqwest::Client::builder()
        .tls_backend_preconfigured(tls)
        .connect_timeout(Duration::from_secs(10))
        // Shorter than the server's 30 s header timeout, so the client
        // drops an idle connection before the server closes it under it.
        .pool_idle_timeout(Duration::from_secs(20))
        .build()?)
}

pub(super) fn save_identity(data: &Path, id: &Identity, key_pem: &str) -> Result<()> {
    pki::write_private(&data.join("key.pem"), key_pem.as_bytes())?;
    pki::write_private(&data.join("identity.json"), &serde_json::to_vec_pretty(id)?)
}

/// Replaces key and identity with a renewal's, through [`RENEWED`].
pub(super) fn save_renewed(data: &Path, id: &Identity, key_pem: &str) -> Result<()> {
    let renewed = Renewed {
        identity: id.clone(),
        key_pem: key_pem.to_string(),
    };
    pki::write_private(&data.join(RENEWED), &serde_json::to_vec(&renewed)?)?;
    finish_renewal(data)
}

/// Puts the key and identity of a renewal in place, if one is waiting.
fn finish_renewal(data: &Path) -> Result<()> {
    let p = data.join(RENEWED);
    let text = match std::fs::read(&p) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e).with_context(|| format!("{}: cannot read", p.display())),
    };
    // Written whole or not at all (a rename); past a damaged one the
    // identity in place, which the server still accepts, goes on.
    match serde_json::from_slice::<Renewed>(&text) {
        Ok(r) => save_identity(data, &r.identity, &r.key_pem)?,
        Err(e) => tracing::warn!("{}: damaged ({e}); ignored", p.display()),
    }
    std::fs::remove_file(&p).with_context(|| format!("{}: cannot remove", p.display()))
}

pub(super) fn load_identity(dir: &Path) -> Result<Option<Identity>> {
    finish_renewal(dir)?;
    let p = dir.join("identity.json");
    match std::fs::read_to_string(&p) {
        Ok(t) => Ok(Some(
            serde_json::from_str(&t).with_context(|| format!("{}: damaged", p.display()))?,
        )),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).with_context(|| format!("{}: cannot read", p.display())),
    }
}

/// Key, CSR, token → certificate. Retries while the server is
/// unreachable; a refusal is final and said in one line. Returns the
/// identity and the private key, not yet saved.
pub(super) async fn enrol(server: &str, token: &str, name: &str) -> Result<(Identity, String)> {
    let (_, fp) = pki::parse_token(token)?;
    let (key_pem, csr_pem) = pki::agent_key_and_csr(name)?;
    let client = reqwest::Client::builder()
        .tls_backend_preconfigured(pki::enrol_client_config(fp)?)
        .connect_timeout(Duration::from_secs(10))
        .timeout(Duration::from_secs(30))
        .build()?;
    let req = EnrollRequest {
        token: token.to_string(),
        name: name.to_string(),
        csr_pem,
        info: agent_info(),
    };
    let url = format!("https://{server}/v1/enroll");
    let mut wait = Duration::from_secs(1);
    let resp: EnrollResponse = loop {
        match client.post(&url).json(&req).send().await {
            Ok(r) if r.status().is_success() => break r.json().await?,
            Ok(r) => {
                bail!("enrolment refused by {server}: {}", error_text(r).await)
            }
            Err(e) if is_tls_rejection(&e) => {
                bail!(
                    "{server} is not the server this token was made for (its CA fingerprint differs)"
                )
            }
            Err(e) => {
                tracing::warn!("cannot reach {server}: {e}; retrying in {wait:?}");
                eprintln!(
                    "courier agent: cannot reach {server} ({}); retrying",
                    root_cause(&e)
                );
                tokio::time::sleep(jitter(wait)).await;
                wait = (wait * 2).min(Duration::from_secs(30));
            }
        }
    };
    if pki::fingerprint_pem(&resp.ca_pem)? != fp.to_ascii_lowercase() {
        bail!("the server answered with a CA that does not match the token");
    }
    eprintln!(
        "courier agent: enrolled as '{name}' with {server}{}",
        if resp.status == crate::task::DestStatus::Pending {
            ", waiting for approval (courier dest approve NAME)"
        } else {
            ""
        }
    );
    Ok((
        Identity {
            server: server.to_string(),
            name: name.to_string(),
            ca_pem: resp.ca_pem,
            cert_pem: resp.cert_pem,
        },
        key_pem,
    ))
}

fn is_tls_rejection(e: &reqwest::Error) -> bool {
    let mut src: Option<&dyn std::error::Error> = Some(e);
    while let Some(s) = src {
        if s.to_string().contains("CA does not match the fingerprint") {
            return true;
        }
        src = s.source();
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    fn identity(cert: &str) -> Identity {
        Identity {
            server: "127.0.0.1:7443".into(),
            name: "pc-1".into(),
            ca_pem: "CA".into(),
            cert_pem: cert.into(),
        }
    }

    /// An agent that died after its renewal reached the disk, before key
    /// and certificate were both in place, starts with the pair renewed:
    /// never with a key that is not its certificate's.
    #[test]
    fn a_renewal_cut_short_is_finished_at_the_next_load() {
        let t = tempfile::tempdir().unwrap();
        save_identity(t.path(), &identity("old cert"), "old key").unwrap();
        let renewed = Renewed {
            identity: identity("new cert"),
            key_pem: "new key".into(),
        };
        pki::write_private(
            &t.path().join(RENEWED),
            &serde_json::to_vec(&renewed).unwrap(),
        )
        .unwrap();
        // As if the key had been replaced and then the power went.
        pki::write_private(&t.path().join("key.pem"), b"new key").unwrap();
        let id = load_identity(t.path()).unwrap().unwrap();
        assert_eq!(id.cert_pem, "new cert");
        let key = std::fs::read_to_string(t.path().join("key.pem")).unwrap();
        assert_eq!(key, "new key");
        assert!(!t.path().join(RENEWED).exists());

        // A damaged one is set aside; what is in place stays.
        std::fs::write(t.path().join(RENEWED), b"{\"ident").unwrap();
        let id = load_identity(t.path()).unwrap().unwrap();
        assert_eq!(id.cert_pem, "new cert");
        assert!(!t.path().join(RENEWED).exists());

        save_renewed(t.path(), &identity("third cert"), "third key").unwrap();
        assert_eq!(
            load_identity(t.path()).unwrap().unwrap().cert_pem,
            "third cert"
        );
        assert!(!t.path().join(RENEWED).exists());
    }
}
