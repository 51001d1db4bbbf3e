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
    /// The identity of each visible row, in step with `visible`.
    ids: Vec<String>,
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
        self.ids.get(self.selected).map(String::as_str)
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
        let mut kept: Vec<(usize, &T)> = rows
            .into_iter()
            .enumerate()
            .filter(|(_, r)| also(r) && r.matches(&needle))
            .collect();
        if let Some(col) = self.sort.column {
            // Stable: rows that sort equal keep the server's order.
            kept.sort_by_cached_key(|(_, r)| r.sort_key(col));
            if self.sort.descending {
                kept.reverse();
            }
        }
        let ids = kept.iter().map(|(_, r)| r.id()).collect();
        let visible = kept.into_iter().map(|(i, _)| i).collect();
        self.set_rows(visible, ids);
    }

    /// The rows at `changed` changed in place (no row came or went): only
    /// they are filtered and placed again, the others keep their places,
    /// so a live update of a few rows costs little however long the list.
    /// Gives the same list as `refilter`.
    pub fn update_rows<T: Listed>(&mut self, rows: &[T], changed: &[usize]) {
        if changed.is_empty() {
            return;
        }
        if changed.len() * 8 > rows.len() {
            self.refilter(rows);
            return;
        }
        let needle = self.needle();
        // Unfiltered and in the server's order: every row stays shown
        // where it was.
        if needle.0.is_empty() && self.sort.column.is_none() && self.visible.len() == rows.len() {
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
        let mut k = 0;
        self.ids.retain(|_| {
            k += 1;
            !touched[self.visible[k - 1]]
        });
        self.visible.retain(|&v| !touched[v]);
        // Where each changed row that passes goes: the place `refilter`'s
        // stable sort gives it (key, then server order; reversed when
        // descending).
        let column = self.sort.column;
        let descending = self.sort.descending && column.is_some();
        let key = |i: usize| (column.map(|c| rows[i].sort_key(c)), i);
        let before = |a: &(Option<SortKey>, usize), b: &(Option<SortKey>, usize)| {
            if descending { a > b } else { a < b }
        };
        let mut coming: Vec<(usize, usize)> = changed
            .iter()
            .copied()
            .filter(|&i| rows[i].matches(&needle))
            .map(|i| {
                let k = key(i);
                (self.visible.partition_point(|&v| before(&key(v), &k)), i)
            })
            .collect();
        coming.sort_by(|a, b| {
            a.0.cmp(&b.0).then_with(|| {
                if before(&key(a.1), &key(b.1)) {
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
        self.ids.resize(dst, String::new());
        for (at, i) in coming.into_iter().rev() {
            while src > at {
                src -= 1;
                dst -= 1;
                self.visible[dst] = self.visible[src];
                self.ids.swap(dst, src);
            }
            dst -= 1;
            self.visible[dst] = i;
            self.ids[dst] = rows[i].id();
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
        let found = self
            .anchor
            .as_ref()
            .and_then(|a| ids.iter().position(|id| id == a));
        self.place(visible, ids, found);
    }

    /// Shows `visible`, the selection as `reselect` puts it.
    fn place(&mut self, visible: Vec<usize>, ids: Vec<String>, found: Option<usize>) {
        debug_assert_eq!(visible.len(), ids.len());
        self.visible = visible;
        self.ids = ids;
        self.reselect(found);
    }

    /// Puts the selection on the row at `found` (where the selected row
    /// now is) or, when it is gone, on the same place.
    fn reselect(&mut self, found: Option<usize>) {
        self.selected = match found {
            Some(at) => at,
            None => self.selected.min(self.visible.len().saturating_sub(1)),
        };
        self.anchor = self.ids.get(self.selected).cloned();
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
        match self.ids.iter().position(|x| x == id) {
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
        self.anchor = self.ids.get(self.selected).cloned();
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
        self.anchor = self.ids.get(self.selected).cloned();
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
            for (pos, id) in self.ids.iter().enumerate().skip(start).take(height) {
                if self.marked.contains(id) {
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
mod tests {
    use super::*;

    struct R(&'static str, i64);

    impl Listed for R {
        fn id(&self) -> String {
            self.0.to_string()
        }
        fn matches(&self, n: &Needle) -> bool {
            n.matches(self.0)
        }
        fn sort_key(&self, column: usize) -> SortKey<'_> {
            match column {
                0 => SortKey::text(self.0),
                _ => SortKey::Num(self.1),
            }
        }
    }

    /// Text sorts as its lowercase form would, ASCII or not.
    #[test]
    fn text_keys_compare_without_regard_to_case() {
        let sorted = |mut v: Vec<&'static str>| {
            v.sort_by(|a, b| SortKey::text(*a).cmp(&SortKey::text(*b)));
            v
        };
        assert_eq!(
            sorted(vec!["b", "Zeta", "alpha", "ALPHABET", "Alpha"]),
            ["alpha", "Alpha", "ALPHABET", "b", "Zeta"]
        );
        assert_eq!(
            sorted(vec!["Ärger", "zoo", "ärge", "Apfel"]),
            ["Apfel", "zoo", "ärge", "Ärger"]
        );
        assert_eq!(SortKey::text("ÉLAN"), SortKey::text("élan"));
        assert!(SortKey::Num(i64::MAX) < SortKey::text(""));
    }

    #[test]
    fn moves_stay_within_the_visible_rows() {
        let mut t = Table::default();
        t.move_by(1);
        assert_eq!(t.selected, 0);
        t.set_rows(vec![3, 5, 8], vec!["a".into(), "b".into(), "c".into()]);
        t.move_by(isize::MAX / 2);
        assert_eq!((t.selected, t.current()), (2, Some(8)));
        assert!(t.is_last());
        t.move_by(-20);
        assert_eq!(t.current(), Some(3));
    }

    #[test]
    fn refilter_ignores_case_and_keeps_the_selection_on_a_row() {
        let rows = [R("Alpha", 1), R("beta", 2), R("ALPHABET", 3)];
        let mut t = Table::default();
        t.refilter(&rows);
        assert_eq!(t.visible, vec![0, 1, 2]);
        t.move_by(2);
        t.set_filter("alpha".into());
        t.refilter(&rows);
        assert_eq!((t.visible.clone(), t.selected), (vec![0, 2], 0));
        t.move_by(1);
        t.set_filter("zzz".into());
        t.refilter(&rows);
        assert_eq!((t.visible.len(), t.current()), (0, None));
    }

    #[test]
    fn the_selection_follows_its_row_when_rows_arrive_above_it() {
        let mut t = Table::default();
        t.refilter(&[R("b", 1), R("c", 2), R("d", 3)]);
        t.move_by(1);
        assert_eq!(t.current_id(), Some("c"));
        // Two rows arrive above it: still "c", now third.
        t.refilter(&[R("a", 0), R("a2", 0), R("b", 1), R("c", 2), R("d", 3)]);
        assert_eq!((t.selected, t.current_id()), (3, Some("c")));
        // It goes away: the selection stays where it was.
        t.refilter(&[R("a", 0), R("a2", 0), R("b", 1), R("d", 3)]);
        assert_eq!(t.current_id(), Some("d"));
    }

    /// A row whose identity stays while what it shows changes.
    struct Q(String, &'static str, i64);

    impl Listed for Q {
        fn id(&self) -> String {
            self.0.clone()
        }
        fn matches(&self, n: &Needle) -> bool {
            n.matches(self.1)
        }
        fn sort_key(&self, column: usize) -> SortKey<'_> {
            match column {
                0 => SortKey::text(self.1),
                _ => SortKey::Num(self.2),
            }
        }
    }

    /// A live update of a few rows lists them as a full refilter would,
    /// in every sort and filter, and keeps the selection on its row.
    #[test]
    fn updating_a_few_rows_gives_the_same_list_as_refiltering() {
        let names = ["a1", "b2", "a3", "c4", "a5", "b6", "c7", "a8", "b9", "c10"];
        let fresh = || -> Vec<Q> {
            (0..40)
                .map(|i| Q(format!("r{i}"), names[i % names.len()], (i as i64 * 7) % 5))
                .collect()
        };
        for filter in ["", "a", "b"] {
            for sort in [None, Some(0), Some(1)] {
                for descending in [false, true] {
                    let mut rows = fresh();
                    let mut t = Table {
                        filter: filter.into(),
                        sort: Sort {
                            column: sort,
                            descending,
                        },
                        ..Table::default()
                    };
                    t.refilter(&rows);
                    t.move_by(3);
                    let chosen = t.current_id().map(str::to_string);
                    let changed = [2, 17, 31];
                    for (n, &i) in changed.iter().enumerate() {
                        rows[i].1 = names[(i + n + 1) % names.len()];
                        rows[i].2 = 9 - rows[i].2;
                    }
                    let mut full = t.clone();
                    full.refilter(&rows);
                    t.update_rows(&rows, &changed);
                    assert_eq!(t.visible, full.visible, "/{filter} {sort:?} {descending}");
                    assert_eq!(t.ids, full.ids);
                    assert_eq!(t.current_id(), full.current_id());
                    if let Some(c) = chosen.filter(|c| full.ids.contains(c)) {
                        assert_eq!(t.current_id(), Some(c.as_str()));
                    }
                }
            }
        }
    }

    #[test]
    fn sorting_by_any_column_keeps_the_selection_and_marks() {
        let rows = [R("b", 3), R("a", 1), R("c", 2)];
        let mut t = Table::default();
        t.refilter(&rows);
        assert_eq!(t.toggle_mark(), Some(true));
        t.move_by(2);
        t.next_sort(2);
        t.refilter(&rows);
        assert_eq!(t.visible, vec![1, 0, 2]);
        assert_eq!(t.current_id(), Some("c"));
        t.next_sort(2);
        t.refilter(&rows);
        assert_eq!(t.visible, vec![1, 2, 0]);
        t.reverse_sort();
        t.refilter(&rows);
        assert_eq!(t.visible, vec![0, 2, 1]);
        t.next_sort(2);
        t.refilter(&rows);
        assert_eq!((t.sort.column, t.visible.clone()), (None, vec![0, 1, 2]));
        assert!(t.is_marked("b") && !t.is_marked("a"));
        assert_eq!(t.toggle_mark(), Some(true));
        assert_eq!(t.marked.len(), 2);
    }
}
