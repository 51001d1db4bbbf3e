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
    let tasks = format!(
        "│ {} running task{} ",
        s.running_tasks,
        if s.running_tasks == 1 { "" } else { "s" }
    );
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
/// with the key the keymap gives its action.
fn draw_tabs(f: &mut Frame, app: &App, area: Rect) {
    let lit = app.tab_view();
    let mut spans = Vec::new();
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
        spans.push(Span::styled(format!(" {key} "), app.theme.key));
        spans.push(Span::styled(
            format!("{}{} ", tab.label, view.badge(&app.data)),
            style,
        ));
        spans.push(Span::raw(" "));
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
        f.render_widget(
            Paragraph::new(view.detail(&cx))
                .wrap(Wrap { trim: false })
                .block(block(&app.theme, "Detail".into())),
            d,
        );
    }
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
            let mut spans = Vec::new();
            for (keys, hint) in keymap::hints(app.active().context(), app.read_only) {
                spans.push(Span::styled(keys, theme.key));
                spans.push(Span::styled(format!(" {hint}  "), theme.muted));
            }
            Line::from(spans)
        }
    };
    f.render_widget(Paragraph::new(line), area);
}
