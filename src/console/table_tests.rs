//! The list component's rules: sorting, filtering, live updates and the
//! selection that follows its row.

use super::*;

impl Table {
    fn shown_ids(&self) -> Vec<String> {
        (0..self.visible.len())
            .map(|p| self.id_at(p).unwrap_or_default().to_string())
            .collect()
    }
}

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

/// A key's prefix orders as the key does wherever it tells keys
/// apart, and says when it cannot.
#[test]
fn prefixes_order_as_their_keys() {
    let texts = [
        "",
        "a",
        "A",
        "a\0",
        "ab",
        "abcdefghijklmn",
        "ABCDEFGHIJKLMN",
        "abcdefghijklmno",
        "abcdefghijklmnop",
        "abcdefghijklmnoq",
        "abcdefghijklm\u{e9}",
        "abcdefghijklmé-long",
        "Ärger",
        "ärge",
        "zoo",
        "\u{10FFFF}",
        "ß",
        "İstanbul-and-further",
    ];
    let mut keys: Vec<SortKey> = texts.iter().map(|t| SortKey::text(*t)).collect();
    keys.extend([i64::MIN, -1, 0, 1, i64::MAX].map(SortKey::Num));
    for a in &keys {
        for b in &keys {
            let (pa, pb) = (a.prefix(), b.prefix());
            assert_eq!(by_key(pa, pb, || a.cmp(b)), a.cmp(b), "{a:?} {b:?}");
            if pa != pb {
                assert_eq!(pa.cmp(&pb), a.cmp(b), "{a:?} {b:?}");
            } else if pa as u8 != LONG {
                assert_eq!(a.cmp(b), Ordering::Equal, "{a:?} {b:?}");
            }
        }
    }
    assert_eq!(SortKey::text("abcdefghijklmnop").prefix() as u8, LONG);
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
    // Long texts with a common beginning: their prefixes tie and the
    // keys themselves decide.
    let names = [
        "a1",
        "b2",
        "a3",
        "c4",
        "a5-installer-exit-1603",
        "b6",
        "c7",
        "a5-installer-exit-1618",
        "b9",
        "ÄRGER-mit-dem-Installer",
    ];
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
                assert_eq!(t.shown_ids(), full.shown_ids());
                assert_eq!(t.current_id(), full.current_id());
                if let Some(c) = chosen.filter(|c| full.shown_ids().contains(c)) {
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
