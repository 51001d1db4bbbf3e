//! Drawing: a pure function of the state. No I/O, no mutation. This file
//! draws the frame (header, tabs, detail pane, log strip, footer); the
//! shown view draws its list and the open overlay draws itself.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Modifier;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Wrap};

use super::app::App;
use super::component::Footer;
use super::keymap;
use super::views::View;
use super::widgets::{block, human_size, level_rank, level_style, level_symbol};
use crate::model::Level;

pub fn draw(f: &mut Frame, app: &App) {
    let area = f.area();
    let log_lines = if !app.active().log_strip() {
        0
    } else if area.height >= 30 {
        4
    } else if area.height >= 20 {
        2
    } else {
        0
    };
    let [header, tabs, main, log, footer] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Length(1),
        Constraint::Min(3),
        Constraint::Length(log_lines),
        Constraint::Length(1),
    ])
    .areas(area);
    draw_header(f, app, header);
    draw_tabs(f, app, tabs);
    draw_main(f, app, main);
    if log_lines > 0 {
        draw_log_strip(f, app, log);
    }
    draw_footer(f, app, footer);
    if let Some(overlay) = app.mode.overlay() {
        overlay.draw(f, &app.ctx());
    }
}

fn draw_header(f: &mut Frame, app: &App, area: Rect) {
    let s = &app.data.status;
    let theme = &app.theme;
    let link = match &app.connected {
        Ok(()) if area.width < 100 => app.link.clone(),
        Ok(()) => format!(
            "{} {}",
            app.link,
            s.listen.as_deref().unwrap_or("(no listener)")
        ),
        Err(_) => "✖ server unreachable".to_string(),
    };
    let rate = match app.data.rate {
        Some(r) if r >= 1.0 => format!("⇣ {}/s", human_size(r as u64)),
        _ => "⇣ idle".into(),
    };
    // Narrow terminals get the same facts in fewer words; what matters
    // most (read-only, the link) comes first so it is never cut.
    let narrow = area.width < 110;
    let agents = if narrow {
        format!("│ {}/{} online · {} pending ", s.online, s.total, s.pending)
    } else {
        format!(
            "│ agents {} online · {} pending · {} total ",
            s.online, s.pending, s.total
        )
    };
    let mut tasks = format!(
        "│ {} running task{} ",
        s.running_tasks,
        if s.running_tasks == 1 { "" } else { "s" }
    );
    if s.stuck > 0 {
        tasks.push_str(&format!("· ⚠ {} stuck ", s.stuck));
    }
    let mut spans = vec![Span::styled(
        " courier ",
        theme.header.add_modifier(Modifier::BOLD),
    )];
    if app.read_only {
        spans.push(Span::styled(
            "│ READ-ONLY ",
            theme.header.add_modifier(Modifier::BOLD),
        ));
    }
    spans.extend([
        Span::styled(format!(" {link} "), theme.header),
        Span::styled(agents, theme.header),
        Span::styled(tasks, theme.header),
        Span::styled(format!("│ {rate} "), theme.header),
    ]);
    let line = Line::from(spans);
    f.render_widget(Paragraph::new(line).style(theme.header), area);
}

/// One tab per view that has one, in the order views are declared, each
/// with the key the keymap gives its action. When they do not fit, the
/// space between tabs goes first.
fn draw_tabs(f: &mut Frame, app: &App, area: Rect) {
    let lit = app.tab_view();
    let mut tabs = Vec::new();
    for v in View::ALL {
        let view = app.views.get(*v);
        let Some(tab) = view.tab() else { continue };
        let key = keymap::key_of(tab.action)
            .map(|k| k.label())
            .unwrap_or_default();
        let style = if *v == lit {
            app.theme.selection
        } else {
            app.theme.text
        };
        tabs.push((
            format!(" {key} "),
            format!("{}{} ", tab.label, view.badge(&app.data)),
            style,
        ));
    }
    let width: usize = tabs
        .iter()
        .map(|(k, l, _)| k.chars().count() + l.chars().count() + 1)
        .sum();
    let gap = if width <= area.width as usize {
        " "
    } else {
        ""
    };
    let mut spans = Vec::new();
    for (key, label, style) in tabs {
        spans.push(Span::styled(key, app.theme.key));
        spans.push(Span::styled(label, style));
        spans.push(Span::raw(gap));
    }
    f.render_widget(Paragraph::new(Line::from(spans)), area);
}

/// The shown view's list, with the detail pane beside it when the
/// terminal is wide, under it when tall enough.
fn draw_main(f: &mut Frame, app: &App, area: Rect) {
    let wide = area.width >= 140;
    let (list_area, detail_area) = if wide {
        let [a, b] = Layout::horizontal([Constraint::Percentage(62), Constraint::Percentage(38)])
            .areas(area);
        (a, Some(b))
    } else if area.height >= 16 {
        let [a, b] = Layout::vertical([Constraint::Min(6), Constraint::Length(8)]).areas(area);
        (a, Some(b))
    } else {
        (area, None)
    };
    let cx = app.ctx();
    let view = app.active();
    view.draw(f, list_area, &cx);
    if let Some(d) = detail_area {
        let lines = hang(view.detail(&cx), d.width.saturating_sub(2) as usize);
        f.render_widget(
            Paragraph::new(lines)
                .wrap(Wrap { trim: false })
                .block(block(&app.theme, "Detail".into())),
            d,
        );
    }
}

/// Width of a detail line's label (`widgets::kv`).
const LABEL: usize = 12;

/// Detail lines with long values wrapped under the value, not under the
/// label: a "label  value" line (two spans, the label `LABEL` wide) longer
/// than `width` is cut at word boundaries and its continuation lines
/// indented by the label's width. Other lines are left to the paragraph.
fn hang(lines: Vec<Line<'static>>, width: usize) -> Vec<Line<'static>> {
    let w = |s: &str| Span::raw(s).width();
    let room = width.saturating_sub(LABEL);
    if room < 8 {
        return lines;
    }
    let mut out = Vec::with_capacity(lines.len());
    for line in lines {
        let is_kv = line.spans.len() == 2 && line.spans[0].width() == LABEL;
        if !is_kv || line.width() <= width {
            out.push(line);
            continue;
        }
        let label = line.spans[0].clone();
        let style = line.spans[1].style;
        let mut rows: Vec<String> = vec![String::new()];
        for word in line.spans[1].content.split(' ') {
            let mut word = word.to_string();
            loop {
                let cur = rows.last_mut().expect("one row at least");
                let sep = usize::from(!cur.is_empty());
                if w(cur) + sep + w(&word) <= room {
                    if sep == 1 {
                        cur.push(' ');
                    }
                    cur.push_str(&word);
                    break;
                }
                if cur.is_empty() {
                    // A word longer than the room: cut it.
                    let mut head = String::new();
                    let mut tail = String::new();
                    for c in word.chars() {
                        if tail.is_empty() && w(&head) + w(&c.to_string()) <= room {
                            head.push(c);
                        } else {
                            tail.push(c);
                        }
                    }
                    word = tail;
                    *cur = head;
                    rows.push(String::new());
                    if word.is_empty() {
                        break;
                    }
                    continue;
                }
                rows.push(String::new());
            }
        }
        rows.retain(|r| !r.is_empty());
        for (i, r) in rows.into_iter().enumerate() {
            let head = if i == 0 {
                label.clone()
            } else {
                Span::raw(" ".repeat(LABEL))
            };
            out.push(Line::from(vec![head, Span::styled(r, style)]));
        }
    }
    out
}

fn draw_log_strip(f: &mut Frame, app: &App, area: Rect) {
    let n = area.height as usize;
    let theme = &app.theme;
    let lines: Vec<Line> = app
        .data
        .events
        .iter()
        .rev()
        .filter(|e| level_rank(e.level) >= level_rank(Level::Info))
        .take(n)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .map(|e| {
            let time = e.at.get(11..19).unwrap_or(&e.at).to_string();
            Line::from(vec![
                Span::styled(format!("{time} "), theme.muted),
                Span::styled(
                    format!("{} ", level_symbol(e.level)),
                    level_style(theme, e.level),
                ),
                Span::styled(format!("{} ", e.subject), theme.accent),
                Span::styled(e.message.clone(), level_style(theme, e.level)),
            ])
        })
        .collect();
    f.render_widget(Paragraph::new(lines), area);
}

/// A prompt being typed, else the last action's result, else the open
/// form's hint or the shown view's keys.
fn draw_footer(f: &mut Frame, app: &App, area: Rect) {
    let theme = &app.theme;
    let footer = app.mode.overlay().map_or(Footer::Keys, |o| o.footer(theme));
    let line = match (footer, &app.flash) {
        (Footer::Prompt(line), _) => line,
        (_, Some((level, msg))) => Line::from(Span::styled(
            format!("{} {msg}", level_symbol(*level)),
            level_style(theme, *level),
        )),
        (Footer::Hint(hint), None) => Line::from(Span::styled(hint, theme.muted)),
        (Footer::Keys, None) => {
            // Whole hints only: the ones that do not fit are left out
            // (`?` lists them all), never cut in the middle.
            let mut spans = Vec::new();
            let mut used = 0;
            for (keys, hint) in keymap::hints(app.active().context(), app.read_only) {
                let text = format!(" {hint}  ");
                let w = keys.chars().count() + text.trim_end().chars().count();
                if used + w > area.width as usize {
                    break;
                }
                used += w + 2;
                spans.push(Span::styled(keys, theme.key));
                spans.push(Span::styled(text, theme.muted));
            }
            Line::from(spans)
        }
    };
    f.render_widget(Paragraph::new(line), area);
}
