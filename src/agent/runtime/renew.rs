//! Certificate renewal: the agent's certificate expires
//! (`pki::AGENT_CERT_LIFETIME`), so when less than a third of its life is
//! left the agent asks the server for a new one with a new key, over the
//! connection its current certificate authenticates. Checked at start and
//! about daily; a failed renewal is tried again an hour later while the
//! agent goes on with the certificate it has.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Result, bail};

use super::enrol::{Identity, client_with, save_renewed};
use super::{Agent, jitter, root_cause};
use crate::clock::{Clock, UnixTime, rfc3339};
use crate::pki::{self, AGENT_CERT_LIFETIME, Validity};
use crate::proto::{RenewRequest, RenewResponse};

/// How often the agent looks at its certificate's end.
const CHECK_EVERY: Duration = Duration::from_secs(24 * 3600);

/// How soon a renewal that failed is tried again.
const RETRY_AFTER: Duration = Duration::from_secs(3600);

/// Renews the certificate whenever it is due, for as long as the agent
/// serves this server.
pub(super) async fn renewer(agent: Arc<Agent>, mut id: Identity) {
    let clock = Clock::from_env();
    loop {
        let wait = match renew_if_due(&agent, &mut id, clock.now()).await {
            Ok(_) => CHECK_EVERY,
            Err(e) => {
                tracing::warn!(
                    "certificate renewal failed: {e:#}; going on with the current certificate, trying again in an hour"
                );
                RETRY_AFTER
            }
        };
        tokio::time::sleep(jitter(wait)).await;
    }
}

/// Renews the certificate of `id` if it is due at `now`: a new key and
/// CSR, the server's new certificate saved with the key in one step, and
/// the agent's requests made with it from then on. Returns whether it did.
async fn renew_if_due(agent: &Agent, id: &mut Identity, now: UnixTime) -> Result<bool> {
    let old = Validity::of_pem(&id.cert_pem)?;
    if !old.renewal_due(now, AGENT_CERT_LIFETIME) {
        return Ok(false);
    }
    let (key_pem, csr_pem) = pki::agent_key_and_csr(&id.name)?;
    let sent = agent
        .client()
        .post(format!("{}/v1/renew", agent.base))
        .json(&RenewRequest { csr_pem })
        .timeout(Duration::from_secs(30))
        .send()
        .await;
    let r = match sent {
        Ok(r) => r,
        Err(e) => bail!("{}", root_cause(&e)),
    };
    if !r.status().is_success() {
        bail!(
            "HTTP {}: {}",
            r.status(),
            crate::agent::fetch::error_text(r).await
        );
    }
    let resp: RenewResponse = r.json().await?;
    let new = Identity {
        cert_pem: resp.cert_pem,
        ..id.clone()
    };
    let validity = Validity::of_pem(&new.cert_pem)?;
    // Refused if the certificate is not for the new key.
    let client = client_with(&new, &key_pem)?;
    save_renewed(&agent.data, &new, &key_pem)?;
    agent.set_client(client);
    tracing::info!(
        "certificate renewed, valid until {} (the old one was until {})",
        rfc3339(validity.not_after),
        rfc3339(old.not_after)
    );
    *id = new;
    Ok(true)
}
