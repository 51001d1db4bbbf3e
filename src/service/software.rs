//! Software inventories: what each destination's agent says is installed
//! there, kept whole per destination, and the fleet's titles across them.

use anyhow::Result;

use super::Service;
use crate::model::Level;
use crate::model::{Destination, DestinationId, Software, SoftwareTitle};
use crate::proto::Inventory;
use crate::store::{destinations, events, software};
use crate::task::policy::Program;

impl Service {
    /// The digest of the inventory held for `dest`.
    pub fn inventory_digest(&self, dest: DestinationId) -> Result<Option<String>> {
        software::digest(self.store.conn(), dest)
    }

    /// Keeps `inv` as `dest`'s inventory, unless it is the one held. Checked
    /// by the listener (`proto::check_inventory`).
    pub fn take_inventory(&mut self, dest: DestinationId, inv: &Inventory) -> Result<()> {
        let c = self.store.conn();
        if software::digest(c, dest)?.as_deref() == Some(inv.digest.as_str()) {
            return Ok(());
        }
        let before = software::of_destination(c, dest)?.len();
        let name = destinations::by_id(c, dest)?
            .map(|d| d.name)
            .unwrap_or_default();
        let now = self.clock.now();
        let ev = self.event(
            Level::Info,
            "destination.inventory",
            format!("destination {name}"),
            format!("{} programs installed (was {before})", inv.programs.len()),
        );
        self.store.write(|tx| {
            software::replace(tx, dest, &inv.digest, &inv.programs, now)?;
            events::append(tx, &ev).map(|_| ())
        })?;
        self.enforce_policies(Some(dest))
    }

    /// A destination with its inventory (`dest show`).
    pub fn destination_detail(&self, name: &str) -> Result<Destination> {
        let mut d = self.destination(name)?;
        d.software = Some(self.inventory(d.id)?);
        Ok(d)
    }

    /// What `dest` has installed: what its agent listed and what courier
    /// installed there, by name.
    pub(super) fn inventory(&self, dest: DestinationId) -> Result<Vec<Software>> {
        let c = self.store.conn();
        let mut list = software::of_destination(c, dest)?;
        list.extend(software::by_courier(c, dest)?);
        list.sort_by(|a, b| {
            (a.name.to_lowercase(), &a.version, &a.source).cmp(&(
                b.name.to_lowercase(),
                &b.version,
                &b.source,
            ))
        });
        Ok(list)
    }

    /// Titles across the fleet whose name holds `name` (`software list`).
    pub fn software_titles(&self, name: Option<&str>) -> Result<Vec<SoftwareTitle>> {
        software::titles(self.store.conn(), name)
    }
}

/// An inventory entry as the policy rules read it.
pub(super) fn program(s: &Software) -> Program<'_> {
    Program {
        name: &s.name,
        version: s.version.as_deref(),
        source: &s.source,
        product_code: s.product_code.as_deref(),
        uninstall: s.uninstall.as_deref(),
        quiet: s.quiet,
    }
}
