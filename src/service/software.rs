//! Software inventories: what each destination's agent says is installed
//! there, kept whole per destination, and the fleet's titles across them.

use anyhow::Result;

use super::Service;
use crate::model::Level;
use crate::model::{Destination, DestinationId, SoftwareTitle};
use crate::proto::Inventory;
use crate::store::{destinations, events, software};

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
        })
    }

    /// A destination with its inventory (`dest show`).
    pub fn destination_detail(&self, name: &str) -> Result<Destination> {
        let mut d = self.destination(name)?;
        let c = self.store.conn();
        let mut list = software::of_destination(c, d.id)?;
        list.extend(software::by_courier(c, d.id)?);
        list.sort_by(|a, b| {
            (a.name.to_lowercase(), &a.version, &a.source).cmp(&(
                b.name.to_lowercase(),
                &b.version,
                &b.source,
            ))
        });
        d.software = Some(list);
        Ok(d)
    }

    /// Titles across the fleet whose name holds `name` (`software list`).
    pub fn software_titles(&self, name: Option<&str>) -> Result<Vec<SoftwareTitle>> {
        software::titles(self.store.conn(), name)
    }
}
