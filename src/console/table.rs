//! The one list component: selection, filter and windowed drawing. A view
//! gives it a column spec and a way to build the cells of one row; the
//! rows stay in the view's data and the table only holds their indices.

use ratatui::Frame;
use ratatui::layout::{Constraint, Rect};
use ratatui::style::Modifier;
use ratatui::text::Span;
use ratatui::widgets::{Cell, Paragraph, Row, Wrap};

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

/// Selection and filter of one list; `visible` holds the indices that pass
/// the filter, recomputed when data or filter change (never while drawing).
#[derive(Debug, Clone, Default)]
pub struct Table {
    pub selected: usize,
    pub filter: String,
    pub visible: Vec<usize>,
}

impl Table {
    /// The index into the data of the selected row.
    pub fn current(&self) -> Option<usize> {
        self.visible.get(self.selected).copied()
    }

    pub fn needle(&self) -> Needle {
        Needle(self.filter.to_lowercase())
    }

    /// Keeps the rows among `0..len` that `keep` lets through the filter.
    pub fn refilter(&mut self, len: usize, keep: impl Fn(usize, &Needle) -> bool) {
        let needle = self.needle();
        let visible = (0..len).filter(|i| keep(*i, &needle)).collect();
        self.set_visible(visible);
    }

    /// Rows a view filtered itself (triage filters groups, not rows).
    pub fn set_visible(&mut self, visible: Vec<usize>) {
        self.visible = visible;
        self.selected = self.selected.min(self.visible.len().saturating_sub(1));
    }

    /// A new filter starts at the first row that matches it; the caller
    /// refilters.
    pub fn set_filter(&mut self, filter: String) {
        self.filter = filter;
        self.selected = 0;
    }

    pub fn select_last(&mut self) {
        self.selected = self.visible.len().saturating_sub(1);
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
        let count = format!(" {}/{}", self.selected + 1, self.visible.len());
        let header: Vec<&str> = spec.columns.iter().map(|c| c.header).collect();
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
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn moves_stay_within_the_visible_rows() {
        let mut t = Table::default();
        t.move_by(1);
        assert_eq!(t.selected, 0);
        t.set_visible(vec![3, 5, 8]);
        t.move_by(isize::MAX / 2);
        assert_eq!((t.selected, t.current()), (2, Some(8)));
        assert!(t.is_last());
        t.move_by(-20);
        assert_eq!(t.current(), Some(3));
    }

    #[test]
    fn refilter_ignores_case_and_keeps_the_selection_on_a_row() {
        let names = ["Alpha", "beta", "ALPHABET"];
        let mut t = Table::default();
        t.refilter(names.len(), |i, n| n.matches(names[i]));
        assert_eq!(t.visible, vec![0, 1, 2]);
        t.move_by(2);
        t.set_filter("alpha".into());
        t.refilter(names.len(), |i, n| n.matches(names[i]));
        assert_eq!((t.visible.clone(), t.selected), (vec![0, 2], 0));
        t.move_by(1);
        t.set_filter("zzz".into());
        t.refilter(names.len(), |i, n| n.matches(names[i]));
        assert_eq!((t.visible.len(), t.current()), (0, None));
    }
}
