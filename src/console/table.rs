//! The one list component: selection, filter and windowed drawing. A view
//! gives it a column spec and a way to build the cells of one row; the
//! rows stay in the view's data and the table only holds their indices.

use ratatui::Frame;
use ratatui::layout::{Constraint, Rect};
use ratatui::style::Modifier;
use ratatui::text::Span;
use ratatui::widgets::{Cell, Paragraph, Row, Wrap};

use std::borrow::Cow;
use std::cmp::Ordering;
use std::collections::BTreeSet;

use super::theme::Theme;
use super::widgets::{block, window};

/// One column of a list: its header and its width.
#[derive(Debug, Clone, Copy)]
pub struct Column {
    pub header: &'static str,
    pub width: Constraint,
}

pub const fn col(header: &'static str, width: Constraint) -> Column {
    Column { header, width }
}

/// What a list shows besides its rows.
pub struct Spec<'a> {
    pub title: String,
    /// Said when there are no rows at all (not when the filter hides them).
    pub empty: &'a str,
    pub columns: &'a [Column],
}

/// A list's filter, lowercased once.
pub struct Needle(String);

impl Needle {
    /// Whether `s` holds the filter, ignoring case; everything matches an
    /// empty filter.
    pub fn matches(&self, s: &str) -> bool {
        self.0.is_empty() || s.to_lowercase().contains(&self.0)
    }
}

/// What a row sorts by in one column: a number, or text compared
/// without regard to case. Text borrows the row's own, so comparing two
/// rows allocates nothing.
#[derive(Debug, Clone)]
pub enum SortKey<'a> {
    Num(i64),
    Text(Cow<'a, str>),
}

impl<'a> SortKey<'a> {
    pub fn text(s: impl Into<Cow<'a, str>>) -> SortKey<'a> {
        SortKey::Text(s.into())
    }
}

/// The last byte of a `prefix` of text longer than it holds.
const LONG: u8 = 15;

impl SortKey<'_> {
    /// The key's first bytes as one number that orders as the key does:
    /// keys with different prefixes compare as their prefixes; equal
    /// prefixes are equal keys, unless both are text longer than 14 bytes
    /// folded (the last byte `LONG`), which only the keys can tell apart.
    /// Byte 0 sorts numbers before text; a number is its 8 bytes
    /// big-endian with the sign flipped; text is its case-folded UTF-8
    /// (the order of code points, as `cmp_folded`) and its length.
    pub fn prefix(&self) -> u128 {
        let mut b = [0u8; 16];
        match self {
            SortKey::Num(n) => {
                b[1..9].copy_from_slice(&((*n as u64) ^ (1 << 63)).to_be_bytes());
            }
            SortKey::Text(t) => {
                b[0] = 1;
                let mut len = 0usize;
                if t.is_ascii() {
                    for c in t.bytes().take(15) {
                        if len < 14 {
                            b[1 + len] = c.to_ascii_lowercase();
                        }
                        len += 1;
                    }
                } else {
                    let mut buf = [0u8; 4];
                    'chars: for ch in t.chars().flat_map(char::to_lowercase) {
                        for &c in ch.encode_utf8(&mut buf).as_bytes() {
                            if len < 14 {
                                b[1 + len] = c;
                            }
                            len += 1;
                            if len > 14 {
                                break 'chars;
                            }
                        }
                    }
                }
                b[15] = len.min(LONG as usize) as u8;
            }
        }
        u128::from_be_bytes(b)
    }
}

/// Two keys by their prefixes, asking `full` only when those cannot tell.
fn by_key(a: u128, b: u128, full: impl FnOnce() -> Ordering) -> Ordering {
    match a.cmp(&b) {
        Ordering::Equal if a as u8 == LONG => full(),
        o => o,
    }
}

impl Ord for SortKey<'_> {
    fn cmp(&self, other: &Self) -> Ordering {
        match (self, other) {
            (SortKey::Num(a), SortKey::Num(b)) => a.cmp(b),
            (SortKey::Num(_), SortKey::Text(_)) => Ordering::Less,
            (SortKey::Text(_), SortKey::Num(_)) => Ordering::Greater,
            (SortKey::Text(a), SortKey::Text(b)) => cmp_folded(a, b),
        }
    }
}

impl PartialOrd for SortKey<'_> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for SortKey<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for SortKey<'_> {}

/// `a` and `b` in the order of their lowercase forms, without building
/// them.
fn cmp_folded(a: &str, b: &str) -> Ordering {
    if a.is_ascii() && b.is_ascii() {
        let (a, b) = (a.bytes(), b.bytes());
        return a
            .map(|c| c.to_ascii_lowercase())
            .cmp(b.map(|c| c.to_ascii_lowercase()));
    }
    let (a, b) = (a.chars(), b.chars());
    a.flat_map(char::to_lowercase)
        .cmp(b.flat_map(char::to_lowercase))
}

/// A row of a list as the table needs it: which one it is (its
/// identity: a task's id, a destination's name), whether it passes the
/// filter, and what it sorts by in each column.
pub trait Listed {
    fn id(&self) -> String;
    fn matches(&self, n: &Needle) -> bool;
    fn sort_key(&self, column: usize) -> SortKey<'_>;
}

/// Which column a list is sorted by, if any; `None` is the server's order.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Sort {
    pub column: Option<usize>,
    pub descending: bool,
}

/// Selection, marks, sort and filter of one list; `visible` holds the
/// indices that pass the filter in the order shown, recomputed when data,
/// filter or sort change (never while drawing).
///
/// The selection is bound to the selected row's identity, not its
/// position: when a live update puts rows above it, it stays on the same
/// row (a cause group, a task, a destination), so a key acts on what the
/// user chose.
#[derive(Debug, Clone, Default)]
pub struct Table {
    pub selected: usize,
    pub filter: String,
    pub visible: Vec<usize>,
    /// The identity of each row by its index in the data (empty for rows
    /// never shown), so rows that move carry no text with them.
    ids: Vec<String>,
    /// While sorted: each shown row's sort key as a `prefix`, by index in
    /// the data, so placing a changed row compares numbers in one array
    /// instead of reading the rows.
    keys: Vec<u128>,
    /// The identity of the selected row, followed across updates.
    anchor: Option<String>,
    /// Rows marked with Space, by identity.
    pub marked: BTreeSet<String>,
    pub sort: Sort,
}

impl Table {
    /// The index into the data of the selected row.
    pub fn current(&self) -> Option<usize> {
        self.visible.get(self.selected).copied()
    }

    /// The identity of the selected row.
    pub fn current_id(&self) -> Option<&str> {
        self.id_at(self.selected)
    }

    /// The identity of the row shown at `pos`.
    fn id_at(&self, pos: usize) -> Option<&str> {
        let row = *self.visible.get(pos)?;
        self.ids.get(row).map(String::as_str)
    }

    pub fn needle(&self) -> Needle {
        Needle(self.filter.to_lowercase())
    }

    /// Keeps the rows that pass the filter, in the list's sort order.
    pub fn refilter<'r, T: Listed + 'r>(&mut self, rows: impl IntoIterator<Item = &'r T>) {
        self.refilter_where(rows, |_| true);
    }

    /// Like `refilter`, with a condition of the view's own (the log's
    /// level) besides the filter.
    pub fn refilter_where<'r, T: Listed + 'r>(
        &mut self,
        rows: impl IntoIterator<Item = &'r T>,
        also: impl Fn(&T) -> bool,
    ) {
        let needle = self.needle();
        let column = self.sort.column;
        let mut kept: Vec<(usize, &T)> = Vec::new();
        let (mut ids, mut keys) = (Vec::new(), Vec::new());
        for (i, r) in rows.into_iter().enumerate() {
            let shown = also(r) && r.matches(&needle);
            ids.push(if shown { r.id() } else { String::new() });
            if let Some(c) = column {
                keys.push(if shown { r.sort_key(c).prefix() } else { 0 });
            }
            if shown {
                kept.push((i, r));
            }
        }
        if let Some(c) = column {
            // Key, then the server's order: what a stable sort gives.
            kept.sort_unstable_by(|(a, ra), (b, rb)| {
                by_key(keys[*a], keys[*b], || ra.sort_key(c).cmp(&rb.sort_key(c))).then(a.cmp(b))
            });
            if self.sort.descending {
                kept.reverse();
            }
        }
        let visible: Vec<usize> = kept.into_iter().map(|(i, _)| i).collect();
        let found = self
            .anchor
            .as_ref()
            .and_then(|a| visible.iter().position(|&v| ids[v] == *a));
        self.visible = visible;
        self.ids = ids;
        self.keys = keys;
        self.reselect(found);
    }

    /// The rows at `changed` changed in place (no row came or went): only
    /// they are filtered and placed again, the others keep their places,
    /// so a live update of a few rows costs little however long the list.
    /// Gives the same list as `refilter`.
    pub fn update_rows<T: Listed>(&mut self, rows: &[T], changed: &[usize]) {
        if changed.is_empty() {
            return;
        }
        let column = self.sort.column;
        if changed.len() * 8 > rows.len()
            || self.ids.len() != rows.len()
            || (column.is_some() && self.keys.len() != rows.len())
        {
            self.refilter(rows);
            return;
        }
        let needle = self.needle();
        // Unfiltered and in the server's order: every row stays shown
        // where it was.
        if needle.0.is_empty() && column.is_none() && self.visible.len() == rows.len() {
            return;
        }
        let was = self.current();
        let mut touched = vec![false; rows.len()];
        for &i in changed {
            touched[i] = true;
        }
        // The changed rows leave their places; the others close up, in
        // place (a list of 100,000 rows copied is a megabyte of fresh
        // pages every second).
        self.visible.retain(|&v| !touched[v]);
        let mut coming: Vec<usize> = Vec::with_capacity(changed.len());
        for &i in changed {
            if rows[i].matches(&needle) {
                if self.ids[i].is_empty() {
                    self.ids[i] = rows[i].id();
                }
                if let Some(c) = column {
                    self.keys[i] = rows[i].sort_key(c).prefix();
                }
                coming.push(i);
            }
        }
        // Where each changed row that passes goes: the place `refilter`
        // gives it (key, then server order; reversed when descending).
        let keys = &self.keys;
        let descending = self.sort.descending && column.is_some();
        let before = |a: usize, b: usize| {
            let o = match column {
                Some(c) => by_key(keys[a], keys[b], || {
                    rows[a].sort_key(c).cmp(&rows[b].sort_key(c))
                }),
                None => Ordering::Equal,
            }
            .then(a.cmp(&b));
            if descending { o.is_gt() } else { o.is_lt() }
        };
        let mut coming: Vec<(usize, usize)> = coming
            .into_iter()
            .map(|i| (self.visible.partition_point(|&v| before(v, i)), i))
            .collect();
        coming.sort_unstable_by(|a, b| {
            a.0.cmp(&b.0).then_with(|| {
                if before(a.1, b.1) {
                    Ordering::Less
                } else {
                    Ordering::Greater
                }
            })
        });
        // They join from the back, each row moving once.
        let mut src = self.visible.len();
        let mut dst = src + coming.len();
        self.visible.resize(dst, 0);
        for (at, i) in coming.into_iter().rev() {
            while src > at {
                src -= 1;
                dst -= 1;
                self.visible[dst] = self.visible[src];
            }
            dst -= 1;
            self.visible[dst] = i;
        }
        // The rows stayed where they are in the data: the selected one is
        // found by its index, not by comparing every identity.
        let found = was.and_then(|w| self.visible.iter().position(|&v| v == w));
        self.reselect(found);
    }

    /// Rows a view filtered and ordered itself (triage: groups and their
    /// members), each with its identity. The selection stays on the row
    /// it was on, wherever that row now is; when that row is gone, on the
    /// same place.
    pub fn set_rows(&mut self, visible: Vec<usize>, ids: Vec<String>) {
        debug_assert_eq!(visible.len(), ids.len());
        let mut by_row = vec![String::new(); visible.iter().max().map_or(0, |m| m + 1)];
        for (&v, id) in visible.iter().zip(ids) {
            by_row[v] = id;
        }
        let found = self
            .anchor
            .as_ref()
            .and_then(|a| visible.iter().position(|&v| by_row[v] == *a));
        self.visible = visible;
        self.ids = by_row;
        self.keys = Vec::new();
        self.reselect(found);
    }

    /// Puts the selection on the row at `found` (where the selected row
    /// now is) or, when it is gone, on the same place.
    fn reselect(&mut self, found: Option<usize>) {
        self.selected = match found {
            Some(at) => at,
            None => self.selected.min(self.visible.len().saturating_sub(1)),
        };
        self.anchor = self.current_id().map(str::to_string);
    }

    /// A new filter starts at the first row that matches it; the caller
    /// refilters.
    pub fn set_filter(&mut self, filter: String) {
        self.filter = filter;
        self.select_first();
    }

    /// Selects the first row, whichever it is after the next refilter.
    pub fn select_first(&mut self) {
        self.selected = 0;
        self.anchor = None;
    }

    /// Selects the row with identity `id`, if it is shown.
    pub fn select_id(&mut self, id: &str) -> bool {
        match self.visible.iter().position(|&v| self.ids[v] == id) {
            Some(at) => {
                self.selected = at;
                self.anchor = Some(id.to_string());
                true
            }
            None => false,
        }
    }

    pub fn select_last(&mut self) {
        self.selected = self.visible.len().saturating_sub(1);
        self.anchor = self.current_id().map(str::to_string);
    }

    pub fn is_last(&self) -> bool {
        self.selected + 1 == self.visible.len()
    }

    pub fn move_by(&mut self, delta: isize) {
        let n = self.visible.len();
        if n == 0 {
            return;
        }
        let s = self.selected as isize + delta;
        self.selected = s.clamp(0, n as isize - 1) as usize;
        self.anchor = self.current_id().map(str::to_string);
    }

    /// Marks the selected row, or unmarks it; says which.
    pub fn toggle_mark(&mut self) -> Option<bool> {
        let id = self.current_id()?.to_string();
        if self.marked.remove(&id) {
            Some(false)
        } else {
            self.marked.insert(id);
            Some(true)
        }
    }

    /// Whether the row with identity `id` is marked.
    pub fn is_marked(&self, id: &str) -> bool {
        self.marked.contains(id)
    }

    /// `s`: sorts by the next column (after the last, the server's order
    /// again); `S`: reverses the order. The caller refilters.
    pub fn next_sort(&mut self, columns: usize) {
        self.sort.column = match self.sort.column {
            None if columns > 0 => Some(0),
            Some(c) if c + 1 < columns => Some(c + 1),
            _ => None,
        };
        self.sort.descending = false;
    }

    pub fn reverse_sort(&mut self) {
        if self.sort.column.is_none() {
            self.sort.column = Some(0);
        }
        self.sort.descending = !self.sort.descending;
    }

    /// Draws the rows that fit, the selected one highlighted, or the
    /// spec's `empty` sentence when there are none. Only the rows on
    /// screen are built.
    pub fn draw<'a>(
        &self,
        f: &mut Frame,
        area: Rect,
        theme: &Theme,
        spec: &Spec,
        mut row: impl FnMut(usize) -> Vec<Cell<'a>>,
    ) {
        let filter_note = if self.filter.is_empty() {
            String::new()
        } else {
            format!(" /{}", self.filter)
        };
        if self.visible.is_empty() {
            let msg = if self.filter.is_empty() {
                spec.empty.to_string()
            } else {
                format!("Nothing matches /{} (Esc clears the filter)", self.filter)
            };
            f.render_widget(
                Paragraph::new(Span::styled(msg, theme.muted))
                    .wrap(Wrap { trim: true })
                    .block(block(theme, format!("{}{filter_note}", spec.title))),
                area,
            );
            return;
        }
        let height = area.height.saturating_sub(3) as usize;
        let start = window(self.selected, height);
        let rows: Vec<Row> = self
            .visible
            .iter()
            .enumerate()
            .skip(start)
            .take(height)
            .map(|(pos, &i)| {
                let r = Row::new(row(i));
                if pos == self.selected {
                    r.style(theme.selection)
                } else {
                    r
                }
            })
            .collect();
        let marked = if self.marked.is_empty() {
            String::new()
        } else {
            format!(" · {} marked", self.marked.len())
        };
        let count = format!(" {}/{}{marked}", self.selected + 1, self.visible.len());
        let header: Vec<String> = spec
            .columns
            .iter()
            .enumerate()
            .map(|(i, c)| match self.sort {
                Sort {
                    column: Some(s),
                    descending,
                } if s == i => format!("{} {}", c.header, if descending { "▼" } else { "▲" }),
                _ => c.header.to_string(),
            })
            .collect();
        let widths: Vec<Constraint> = spec.columns.iter().map(|c| c.width).collect();
        let table = ratatui::widgets::Table::new(rows, widths)
            .header(Row::new(header).style(theme.muted.add_modifier(Modifier::BOLD)))
            .block(block(theme, format!("{}{count}{filter_note}", spec.title)));
        f.render_widget(table, area);
        // The selection covers the whole row, over the cells' own colours, so
        // a red "failed" stays readable on the selection bar.
        let offset = self.selected - start;
        if height > 0 && area.width > 2 {
            let y = area.y + 2 + offset as u16;
            let bar = Rect::new(area.x + 1, y, area.width - 2, 1);
            f.buffer_mut().set_style(bar, theme.selection);
        }
        // A marked row shows a dot in the list's left border: a symbol,
        // not only a colour.
        if area.width > 2 {
            for pos in start..(start + height).min(self.visible.len()) {
                if self.id_at(pos).is_some_and(|id| self.marked.contains(id)) {
                    let y = area.y + 2 + (pos - start) as u16;
                    if let Some(cell) = f.buffer_mut().cell_mut((area.x, y)) {
                        cell.set_symbol("●").set_style(theme.accent);
                    }
                }
            }
        }
    }
}

#[cfg(test)]
#[path = "table_tests.rs"]
mod tests;
