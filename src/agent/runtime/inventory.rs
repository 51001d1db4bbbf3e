//! Sending the computer's software inventory: at start, after every
//! attempt, and when it changes (read again every 15 minutes and compared
//! by digest, so an unchanged inventory costs one local read and nothing
//! on the network). The server keeps the last one per destination; the
//! agent asks which digest it holds before sending the whole list.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Result, bail};

use super::{Agent, jitter, root_cause};
use crate::agent::inventory::{InstalledProgram, installed};
use crate::model::Software;
use crate::proto::{Inventory, InventoryHeld};

/// How often the inventory is read again to notice a change.
const CHECK_EVERY: Duration = Duration::from_secs(15 * 60);

/// How soon a send that failed is tried again.
const RETRY_AFTER: Duration = Duration::from_secs(60);

/// Keeps the server's copy of the inventory current, for as long as the
/// agent serves this server.
pub(super) async fn sender(agent: Arc<Agent>) {
    let mut held: Option<String> = None;
    let mut asked = false;
    loop {
        let wait = match send_if_changed(&agent, &mut held, &mut asked).await {
            Ok(()) => CHECK_EVERY,
            Err(e) => {
                tracing::warn!("inventory not sent: {e:#}; trying again in a minute");
                RETRY_AFTER
            }
        };
        tokio::select! {
            _ = agent.inventory.notified() => {}
            _ = tokio::time::sleep(jitter(wait)) => {}
        }
    }
}

async fn send_if_changed(agent: &Agent, held: &mut Option<String>, asked: &mut bool) -> Result<()> {
    let read = tokio::task::spawn_blocking(installed).await?;
    let programs: Vec<Software> = read?.into_iter().filter_map(to_wire).collect();
    let digest = digest_of(&programs);
    if !*asked {
        let r = agent
            .client()
            .get(format!("{}/v1/inventory", agent.base))
            .timeout(Duration::from_secs(30))
            .send()
            .await
            .map_err(|e| anyhow::anyhow!("{}", root_cause(&e)))?;
        if !r.status().is_success() {
            bail!("{}", crate::agent::fetch::error_text(r).await);
        }
        *held = r.json::<InventoryHeld>().await?.digest;
        *asked = true;
    }
    if held.as_deref() == Some(digest.as_str()) {
        return Ok(());
    }
    let count = programs.len();
    let r = agent
        .client()
        .post(format!("{}/v1/inventory", agent.base))
        .json(&Inventory {
            digest: digest.clone(),
            programs,
        })
        .timeout(Duration::from_secs(60))
        .send()
        .await
        .map_err(|e| anyhow::anyhow!("{}", root_cause(&e)))?;
    if !r.status().is_success() {
        bail!("{}", crate::agent::fetch::error_text(r).await);
    }
    tracing::info!(programs = count, "inventory sent");
    *held = Some(digest);
    Ok(())
}

/// An entry as the server takes it; one it would refuse (a name with
/// control characters, fields past the server's limits) stays here.
fn to_wire(p: InstalledProgram) -> Option<Software> {
    let s = Software {
        name: p.name,
        version: p.version,
        publisher: p.publisher,
        source: p.source.as_str().to_string(),
        product_code: p.product_code,
        uninstall: p.uninstall,
        quiet: p.quiet,
    };
    crate::proto::check_software(&s).is_ok().then_some(s)
}

/// BLAKE3 of the list as sent: equal lists, equal digests.
fn digest_of(programs: &[Software]) -> String {
    let bytes = serde_json::to_vec(programs).unwrap_or_default();
    blake3::hash(&bytes).to_hex().to_string()
}
