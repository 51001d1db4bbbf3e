//! Drawing: a pure function of the state. No I/O, no mutation; lists are
//! windowed so only the rows on screen are built.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span, Text};
use ratatui::widgets::{Block, Borders, Cell, Clear, Paragraph, Row, Table, Wrap};

use super::app::{App, Mode, TriageRow, View, level_rank};
use super::form::TaskPart;
use super::keymap::{self, Context, KEYMAP};
use super::text::{self, Role, state_symbol};
use crate::model::Level;
use crate::service::human_size;

pub fn draw(f: &mut Frame, app: &App) {
    let area = f.area();
    // The strip repeats the log: not shown in the Log view itself.
    let log_lines = if app.view == View::Log {
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
    match &app.mode {
        Mode::Help(scroll) => draw_help(f, app, *scroll),
        Mode::Confirm(c) => draw_confirm(f, app, c),
        Mode::Output(o) => draw_output(f, app, o),
        Mode::PackageForm(form) => draw_package_form(f, app, form),
        Mode::TaskForm(form) => draw_task_form(f, app, form),
        _ => {}
    }
}

fn state_style(app: &App, state: &str) -> Style {
    let t = &app.theme;
    match text::state_role(state) {
        Role::Ok => t.ok,
        Role::Error => t.error,
        Role::Info => t.info,
        Role::Warn => t.warn,
        Role::Muted => t.muted,
    }
}

fn state_cell<'a>(app: &App, state: &str) -> Cell<'a> {
    Cell::from(format!("{} {state}", state_symbol(state))).style(state_style(app, state))
}

fn draw_header(f: &mut Frame, app: &App, area: Rect) {
    let s = &app.status;
    let link = match &app.connected {
        Ok(()) if area.width < 100 => app.link.clone(),
        Ok(()) => format!(
            "{} {}",
            app.link,
            s.listen.as_deref().unwrap_or("(no listener)")
        ),
        Err(_) => "✖ server unreachable".to_string(),
    };
    let rate = match app.rate {
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
        app.theme.header.add_modifier(Modifier::BOLD),
    )];
    if app.read_only {
        spans.push(Span::styled(
            "│ READ-ONLY ",
            app.theme.header.add_modifier(Modifier::BOLD),
        ));
    }
    spans.extend([
        Span::styled(format!(" {link} "), app.theme.header),
        Span::styled(agents, app.theme.header),
        Span::styled(tasks, app.theme.header),
        Span::styled(format!("│ {rate} "), app.theme.header),
    ]);
    let line = Line::from(spans);
    f.render_widget(Paragraph::new(line).style(app.theme.header), area);
}

fn draw_tabs(f: &mut Frame, app: &App, area: Rect) {
    let failed: usize = app.tasks.iter().map(|t| t.counts.failed as usize).sum();
    let tabs = [
        ("1", "Packages", View::Packages, String::new()),
        ("2", "Tasks", View::Tasks, String::new()),
        ("3", "Destinations", View::Destinations, String::new()),
        ("4", "Log", View::Log, String::new()),
        (
            "!",
            "Triage",
            View::Triage,
            if failed > 0 {
                format!(" ✖{failed}")
            } else {
                String::new()
            },
        ),
    ];
    let mut spans = Vec::new();
    for (key, label, view, extra) in tabs {
        let active = app.view == view || (view == View::Tasks && app.view == View::TaskDetail);
        let style = if active {
            app.theme.selection
        } else {
            app.theme.text
        };
        spans.push(Span::styled(format!(" {key} "), app.theme.key));
        spans.push(Span::styled(format!("{label}{extra} "), style));
        spans.push(Span::raw(" "));
    }
    f.render_widget(Paragraph::new(Line::from(spans)), area);
}

fn block<'a>(app: &App, title: String) -> Block<'a> {
    Block::default()
        .borders(Borders::ALL)
        .border_style(app.theme.border)
        .title(Span::styled(format!(" {title} "), app.theme.title))
}

/// The first row to show so that `selected` is on screen.
fn window(selected: usize, height: usize) -> usize {
    if height == 0 || selected < height {
        0
    } else {
        selected + 1 - height
    }
}

fn filter_note(app: &App, view: View) -> String {
    let l = app.list(view);
    if l.filter.is_empty() {
        String::new()
    } else {
        format!(" /{}", l.filter)
    }
}

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
    match app.view {
        View::Packages => draw_packages(f, app, list_area),
        View::Tasks => draw_tasks(f, app, list_area),
        View::TaskDetail => draw_task_detail(f, app, list_area),
        View::Destinations => draw_destinations(f, app, list_area),
        View::Log => draw_log(f, app, list_area),
        View::Triage => draw_triage(f, app, list_area),
    }
    if let Some(d) = detail_area {
        draw_detail(f, app, d);
    }
}

/// Draws the rows of `visible` that fit, the selected one highlighted, or
/// the `empty` sentence when there are none.
#[allow(clippy::too_many_arguments)]
fn list<'a>(
    f: &mut Frame,
    app: &App,
    view: View,
    area: Rect,
    header: Vec<&'a str>,
    widths: Vec<Constraint>,
    title: String,
    empty: &'a str,
    row: impl FnMut(usize) -> Vec<Cell<'a>>,
) {
    let l = app.list(view);
    if l.visible.is_empty() {
        let msg = if l.filter.is_empty() {
            empty.to_string()
        } else {
            format!("Nothing matches /{} (Esc clears the filter)", l.filter)
        };
        f.render_widget(
            Paragraph::new(Span::styled(msg, app.theme.muted))
                .wrap(Wrap { trim: true })
                .block(block(app, format!("{title}{}", filter_note(app, view)))),
            area,
        );
        return;
    }
    f.render_widget(
        windowed_table(app, view, area, header, widths, title, row),
        area,
    );
    // The selection covers the whole row, over the cells' own colours, so
    // a red "failed" stays readable on the selection bar.
    let height = area.height.saturating_sub(3) as usize;
    let offset = l.selected - window(l.selected, height);
    if height > 0 && area.width > 2 {
        let y = area.y + 2 + offset as u16;
        let row = Rect::new(area.x + 1, y, area.width - 2, 1);
        f.buffer_mut().set_style(row, app.theme.selection);
    }
}

fn windowed_table<'a>(
    app: &App,
    view: View,
    area: Rect,
    header: Vec<&'a str>,
    widths: Vec<Constraint>,
    title: String,
    mut row: impl FnMut(usize) -> Vec<Cell<'a>>,
) -> Table<'a> {
    let l = app.list(view);
    let height = area.height.saturating_sub(3) as usize;
    let start = window(l.selected, height);
    let rows: Vec<Row> = {
        l.visible
            .iter()
            .enumerate()
            .skip(start)
            .take(height)
            .map(|(pos, &i)| {
                let r = Row::new(row(i));
                if pos == l.selected {
                    r.style(app.theme.selection)
                } else {
                    r
                }
            })
            .collect()
    };
    let count = format!(" {}/{}", l.selected + 1, l.visible.len());
    Table::new(rows, widths)
        .header(Row::new(header).style(app.theme.muted.add_modifier(Modifier::BOLD)))
        .block(block(
            app,
            format!("{title}{count}{}", filter_note(app, view)),
        ))
}

fn draw_packages(f: &mut Frame, app: &App, area: Rect) {
    list(
        f,
        app,
        View::Packages,
        area,
        vec!["ID", "NAME", "VERSION", "KIND", "SIZE", "COMMAND / FOLDER"],
        vec![
            Constraint::Length(4),
            Constraint::Min(18),
            Constraint::Length(9),
            Constraint::Length(11),
            Constraint::Length(10),
            Constraint::Fill(1),
        ],
        "Packages".into(),
        text::EMPTY_PACKAGES,
        |i| {
            let p = &app.packages[i];
            let action = match p.kind {
                crate::model::Kind::Install => p.install_command.clone().unwrap_or_default(),
                crate::model::Kind::File => format!("→ {}", p.folder.as_deref().unwrap_or("")),
            };
            vec![
                Cell::from(p.id.to_string()),
                Cell::from(p.name.clone()),
                Cell::from(p.version.clone().unwrap_or_default()),
                Cell::from(format!("{} {}", p.kind.as_str(), p.format)),
                Cell::from(human_size(p.size)),
                Cell::from(action),
            ]
        },
    );
}

fn progress_bar(done: u64, total: u64, width: usize) -> String {
    if total == 0 || width == 0 {
        return String::new();
    }
    let filled = ((done as f64 / total as f64) * width as f64).round() as usize;
    format!(
        "{}{}",
        "█".repeat(filled.min(width)),
        "░".repeat(width - filled.min(width))
    )
}

fn draw_tasks(f: &mut Frame, app: &App, area: Rect) {
    list(
        f,
        app,
        View::Tasks,
        area,
        vec!["ID", "NAME", "STATUS", "PROGRESS", "✔ok  ✖fail ⟳busy ◷wait"],
        vec![
            Constraint::Length(4),
            Constraint::Min(18),
            Constraint::Length(12),
            Constraint::Length(10),
            Constraint::Length(23),
        ],
        "Tasks".into(),
        text::EMPTY_TASKS,
        |i| {
            let t = &app.tasks[i];
            let c = &t.counts;
            let total =
                c.waiting + c.transferring + c.installing + c.succeeded + c.failed + c.cancelled;
            let done = c.succeeded + c.failed + c.cancelled;
            vec![
                Cell::from(t.id.to_string()),
                Cell::from(if text::is_uninstall(&t.kind) {
                    format!("{} (uninstall)", t.name)
                } else {
                    t.name.clone()
                }),
                state_cell(app, &t.status),
                Cell::from(progress_bar(done, total, 10)),
                Cell::from(Line::from(vec![
                    Span::styled(format!("✔{:<5}", c.succeeded), app.theme.ok),
                    Span::styled(
                        format!("✖{:<5}", c.failed),
                        if c.failed > 0 {
                            app.theme.error
                        } else {
                            app.theme.muted
                        },
                    ),
                    Span::styled(
                        format!("⟳{:<5}", c.transferring + c.installing),
                        app.theme.info,
                    ),
                    Span::styled(format!("◷{}", c.waiting), app.theme.muted),
                ])),
            ]
        },
    );
}

fn draw_task_detail(f: &mut Frame, app: &App, area: Rect) {
    let Some(task) = &app.task else {
        f.render_widget(
            Paragraph::new("no task").block(block(app, "Task".into())),
            area,
        );
        return;
    };
    let title = format!(
        "Task {} · {} · {} {}",
        task.id,
        task.name,
        state_symbol(&task.status),
        task.status
    );
    let size = app
        .packages
        .iter()
        .find(|p| Some(p.id) == task.package)
        .map(|p| p.size)
        .unwrap_or(0);
    list(
        f,
        app,
        View::TaskDetail,
        area,
        vec!["DESTINATION", "STATUS", "TRY", "EXIT", "MEANING / MESSAGE"],
        vec![
            Constraint::Length(18),
            Constraint::Length(16),
            Constraint::Length(4),
            Constraint::Length(6),
            Constraint::Fill(1),
        ],
        title,
        if task.counts.waiting
            + task.counts.transferring
            + task.counts.installing
            + task.counts.succeeded
            + task.counts.failed
            + task.counts.cancelled
            > 0
        {
            "loading…"
        } else {
            "no destinations"
        },
        |i| {
            let d = &task.destinations[i];
            let status = if text::is_transferring(&d.status) && size > 0 {
                Cell::from(format!(
                    "⇣ {}",
                    progress_bar(d.transferred.min(size), size, 8)
                ))
                .style(app.theme.info)
            } else {
                state_cell(app, &d.status)
            };
            let msg = [d.meaning.clone(), d.message.clone()]
                .into_iter()
                .flatten()
                .collect::<Vec<_>>()
                .join(" — ");
            let mut cells = vec![
                Cell::from(d.name.clone()),
                status,
                Cell::from(d.attempt.to_string()),
                Cell::from(d.exit_code.map(|c| c.to_string()).unwrap_or_default()),
                Cell::from(msg),
            ];
            if d.reboot_required {
                cells[1] = Cell::from(text::SUCCEEDED_RESTART).style(app.theme.warn);
            }
            cells
        },
    );
}

fn draw_destinations(f: &mut Frame, app: &App, area: Rect) {
    list(
        f,
        app,
        View::Destinations,
        area,
        vec!["NAME", "STATUS", "OS", "LAST SEEN", "WORK"],
        vec![
            Constraint::Min(16),
            Constraint::Length(12),
            Constraint::Length(9),
            Constraint::Length(21),
            Constraint::Length(5),
        ],
        "Destinations".into(),
        text::EMPTY_DESTS,
        |i| {
            let d = &app.destinations[i];
            vec![
                Cell::from(d.name.clone()),
                state_cell(app, &d.status),
                Cell::from(d.os.clone().unwrap_or_default()),
                Cell::from(d.last_seen.clone().unwrap_or_else(|| "-".into())),
                Cell::from(d.running_work.to_string()),
            ]
        },
    );
}

fn level_style(app: &App, l: Level) -> Style {
    match l {
        Level::Info => app.theme.text,
        Level::Warn => app.theme.warn,
        Level::Error => app.theme.error,
    }
}

fn level_symbol(l: Level) -> &'static str {
    match l {
        Level::Info => "·",
        Level::Warn => "▲",
        Level::Error => "✖",
    }
}

fn draw_log(f: &mut Frame, app: &App, area: Rect) {
    let level = match app.log_level {
        Level::Info => "all",
        Level::Warn => "warnings+",
        Level::Error => "errors",
    };
    // Narrow: the time of day only, no kind column, so messages have room
    // (the selected one is shown whole in the detail pane).
    let narrow = area.width < 120;
    let title = format!(
        "Log · {} · {}",
        if app.log_follow {
            "following"
        } else {
            "frozen"
        },
        level
    );
    list(
        f,
        app,
        View::Log,
        area,
        if narrow {
            vec!["TIME", "", "SUBJECT", "MESSAGE"]
        } else {
            vec!["TIME", "", "KIND", "SUBJECT", "MESSAGE"]
        },
        if narrow {
            vec![
                Constraint::Length(8),
                Constraint::Length(1),
                Constraint::Length(20),
                Constraint::Min(20),
            ]
        } else {
            vec![
                Constraint::Length(20),
                Constraint::Length(1),
                Constraint::Length(16),
                Constraint::Length(16),
                Constraint::Min(20),
            ]
        },
        title,
        text::EMPTY_LOG,
        |i| {
            let e = &app.events[i];
            let mut cells = vec![
                Cell::from(if narrow {
                    e.at.get(11..19).unwrap_or(&e.at).to_string()
                } else {
                    e.at.clone()
                })
                .style(app.theme.muted),
                Cell::from(level_symbol(e.level)).style(level_style(app, e.level)),
                Cell::from(e.kind.clone()),
                Cell::from(e.subject.clone()),
                Cell::from(e.message.clone()).style(level_style(app, e.level)),
            ];
            if narrow {
                cells.remove(2);
            }
            cells
        },
    );
}

fn draw_triage(f: &mut Frame, app: &App, area: Rect) {
    let total = app.failures.len();
    list(
        f,
        app,
        View::Triage,
        area,
        vec!["CAUSE / DESTINATION", "COUNT", "TASKS / TASK"],
        vec![
            Constraint::Fill(3),
            Constraint::Length(6),
            Constraint::Fill(2),
        ],
        format!("Triage · {total} failed destinations by cause"),
        text::EMPTY_TRIAGE,
        |i| match app.triage_rows[i] {
            TriageRow::Group(g) => {
                let grp = &app.groups[g];
                let open = if app.expanded.contains(&grp.cause) {
                    "▾"
                } else {
                    "▸"
                };
                vec![
                    Cell::from(format!("{open} ✖ {}", grp.cause)).style(app.theme.error),
                    Cell::from(grp.rows.len().to_string()),
                    Cell::from(format!(
                        "{} task{}",
                        grp.tasks,
                        if grp.tasks == 1 { "" } else { "s" }
                    )),
                ]
            }
            TriageRow::Member(_, r) => {
                let x = &app.failures[r];
                vec![
                    Cell::from(format!("    {}", x.destination)),
                    Cell::from(format!("#{}", x.attempt)),
                    Cell::from(format!("{} {}", x.task_id, x.task_name)),
                ]
            }
        },
    );
}

/// The detail pane: what the selected row is, in full.
fn draw_detail(f: &mut Frame, app: &App, area: Rect) {
    let t = &app.theme;
    let kv = |k: &str, v: String| {
        Line::from(vec![
            Span::styled(format!("{k:<12}"), t.muted),
            Span::styled(v, t.text),
        ])
    };
    let lines: Vec<Line> = match app.view {
        View::Packages => match app
            .list(View::Packages)
            .current()
            .and_then(|i| app.packages.get(i))
        {
            Some(p) => vec![
                kv("package", format!("{} {}", p.id, p.name)),
                kv(
                    "file",
                    format!("{} ({}, {})", p.file_name, p.format, human_size(p.size)),
                ),
                kv(
                    "install",
                    p.install_command.clone().unwrap_or_else(|| "-".into()),
                ),
                kv(
                    "uninstall",
                    p.uninstall_command.clone().unwrap_or_else(|| "-".into()),
                ),
                kv("folder", p.folder.clone().unwrap_or_else(|| "-".into())),
                kv("sha256", p.sha256.clone()),
            ],
            None => vec![],
        },
        View::Tasks => match app
            .list(View::Tasks)
            .current()
            .and_then(|i| app.tasks.get(i))
        {
            Some(x) => vec![
                kv(
                    "task",
                    format!("{} {} ({}, {})", x.id, x.name, x.kind, x.class),
                ),
                kv(
                    "package",
                    format!(
                        "{} {}",
                        x.package.map(|p| p.to_string()).unwrap_or("-".into()),
                        x.package_name
                    ),
                ),
                kv("created", x.created_at.clone()),
                kv(
                    "starts",
                    x.start_at.clone().unwrap_or_else(|| "at once".into()),
                ),
                kv(
                    "window",
                    x.window.clone().unwrap_or_else(|| "any time".into()),
                ),
                kv(
                    "finished",
                    x.completed_at.clone().unwrap_or_else(|| "-".into()),
                ),
            ],
            None => vec![],
        },
        View::TaskDetail => match app.task.as_ref().and_then(|x| {
            app.list(View::TaskDetail)
                .current()
                .and_then(|i| x.destinations.get(i))
        }) {
            Some(d) => vec![
                kv("destination", d.name.clone()),
                kv(
                    "status",
                    format!(
                        "{} {} (attempt {}, retries {})",
                        state_symbol(&d.status),
                        d.status,
                        d.attempt,
                        d.retries
                    ),
                ),
                kv(
                    "exit",
                    d.exit_code
                        .map(|c| format!("{c} {}", d.meaning.clone().unwrap_or_default()))
                        .unwrap_or_else(|| "-".into()),
                ),
                kv("message", d.message.clone().unwrap_or_else(|| "-".into())),
                kv("download", human_size(d.transferred)),
                kv("updated", d.updated_at.clone()),
            ],
            None => vec![],
        },
        View::Destinations => match app
            .list(View::Destinations)
            .current()
            .and_then(|i| app.destinations.get(i))
        {
            Some(d) => vec![
                kv("name", d.name.clone()),
                kv("host", d.hostname.clone().unwrap_or_default()),
                kv("os", d.os.clone().unwrap_or_default()),
                kv("agent", d.agent_version.clone().unwrap_or_default()),
                kv("enrolled", d.enrolled_at.clone()),
                kv(
                    "moving to",
                    d.moving_to.clone().unwrap_or_else(|| "-".into()),
                ),
            ],
            None => vec![],
        },
        View::Log => match app
            .list(View::Log)
            .current()
            .and_then(|i| app.events.get(i))
        {
            Some(e) => vec![
                kv("time", e.at.clone()),
                kv("kind", e.kind.clone()),
                kv("subject", e.subject.clone()),
                Line::from(Span::styled(e.message.clone(), level_style(app, e.level))),
            ],
            None => vec![],
        },
        View::Triage => match app
            .list(View::Triage)
            .current()
            .and_then(|i| app.triage_rows.get(i))
        {
            Some(TriageRow::Group(g)) => {
                let grp = &app.groups[*g];
                let mut v = vec![
                    kv("cause", grp.cause.clone()),
                    kv("count", grp.rows.len().to_string()),
                ];
                if let Some(first) = grp.rows.first().map(|r| &app.failures[*r]) {
                    v.push(kv("example", first.message.clone().unwrap_or_default()));
                }
                v.push(Line::from(Span::styled(
                    "Enter: open · r: re-execute all of them",
                    t.muted,
                )));
                v
            }
            Some(TriageRow::Member(_, r)) => {
                let x = &app.failures[*r];
                vec![
                    kv("destination", x.destination.clone()),
                    kv("task", format!("{} {}", x.task_id, x.task_name)),
                    kv("message", x.message.clone().unwrap_or_default()),
                    kv("when", x.updated_at.clone()),
                    Line::from(Span::styled("o: output · r: re-execute the group", t.muted)),
                ]
            }
            None => vec![],
        },
    };
    f.render_widget(
        Paragraph::new(lines)
            .wrap(Wrap { trim: false })
            .block(block(app, "Detail".into())),
        area,
    );
}

fn draw_log_strip(f: &mut Frame, app: &App, area: Rect) {
    let n = area.height as usize;
    let lines: Vec<Line> = app
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
                Span::styled(format!("{time} "), app.theme.muted),
                Span::styled(
                    format!("{} ", level_symbol(e.level)),
                    level_style(app, e.level),
                ),
                Span::styled(format!("{} ", e.subject), app.theme.accent),
                Span::styled(e.message.clone(), level_style(app, e.level)),
            ])
        })
        .collect();
    f.render_widget(Paragraph::new(lines), area);
}

fn draw_footer(f: &mut Frame, app: &App, area: Rect) {
    let line = match (&app.mode, &app.flash) {
        (Mode::Filter(input), _) => Line::from(vec![
            Span::styled("/", app.theme.key),
            Span::raw(input.value().to_string()),
            Span::styled("▏", app.theme.accent),
            Span::styled(format!("   {}", text::FILTER_HINT), app.theme.muted),
        ]),
        (Mode::Command(input), _) => {
            let v = input.value();
            let options: Vec<&str> = text::COMMANDS
                .iter()
                .map(|(c, _)| *c)
                .filter(|c| c.starts_with(v))
                .collect();
            Line::from(vec![
                Span::styled(":", app.theme.key),
                Span::raw(v.to_string()),
                Span::styled("▏", app.theme.accent),
                Span::styled(
                    format!("   {}   {}", options.join(" "), text::COMMAND_HINT),
                    app.theme.muted,
                ),
            ])
        }
        (Mode::PackageForm(_) | Mode::TaskForm(_), None) => {
            Line::from(Span::styled(text::FORM_HINT, app.theme.muted))
        }
        (Mode::Confirm(_), None) => Line::from(Span::styled(text::CONFIRM_HINT, app.theme.muted)),
        (_, Some((level, msg))) => Line::from(Span::styled(
            format!("{} {msg}", level_symbol(*level)),
            level_style(app, *level),
        )),
        _ => {
            let mut spans = Vec::new();
            for (keys, hint) in keymap::hints(app.view.context(), app.read_only) {
                spans.push(Span::styled(keys, app.theme.key));
                spans.push(Span::styled(format!(" {hint}  "), app.theme.muted));
            }
            Line::from(spans)
        }
    };
    f.render_widget(Paragraph::new(line), area);
}

fn centered(area: Rect, w: u16, h: u16) -> Rect {
    let w = w.min(area.width);
    let h = h.min(area.height);
    Rect::new(
        area.x + (area.width - w) / 2,
        area.y + (area.height - h) / 2,
        w,
        h,
    )
}

fn draw_help(f: &mut Frame, app: &App, scroll: u16) {
    let area = centered(f.area(), 78, f.area().height.saturating_sub(2));
    let mut lines = Vec::new();
    for ctx in Context::ALL {
        lines.push(Line::from(Span::styled(ctx.title(), app.theme.title)));
        for b in KEYMAP.iter().filter(|b| b.context == ctx) {
            let dim = b.mutates && app.read_only;
            lines.push(Line::from(vec![
                Span::styled(
                    format!("  {:<14}", keymap::keys_label(b.keys)),
                    app.theme.key,
                ),
                Span::styled(
                    format!("{}{}", b.help, if dim { " (read-only)" } else { "" }),
                    if dim { app.theme.muted } else { app.theme.text },
                ),
            ]));
        }
    }
    f.render_widget(Clear, area);
    f.render_widget(
        Paragraph::new(lines)
            .scroll((scroll, 0))
            .block(block(app, "Keys · ↑↓ scroll · any other key closes".into())),
        area,
    );
}

fn draw_confirm(f: &mut Frame, app: &App, c: &super::app::Confirm) {
    // Tall enough for a question of a few lines; the keys are in the footer.
    let area = centered(f.area(), 64, 9);
    let (yes, no) = if c.yes_selected {
        (app.theme.selection, app.theme.text)
    } else {
        (app.theme.text, app.theme.selection)
    };
    let lines = vec![
        Line::from(Span::styled(c.text.clone(), app.theme.text)),
        Line::from(""),
        Line::from(vec![
            Span::styled(" [ Cancel ] ", no),
            Span::raw("   "),
            Span::styled(" [ Yes ] ", yes),
        ]),
    ];
    f.render_widget(Clear, area);
    f.render_widget(
        Paragraph::new(lines)
            .wrap(Wrap { trim: true })
            .block(block(app, "Confirm".into())),
        area,
    );
}

fn draw_output(f: &mut Frame, app: &App, o: &super::app::OutputPane) {
    let full = f.area();
    let area = centered(
        full,
        full.width.saturating_sub(4),
        full.height.saturating_sub(2),
    );
    f.render_widget(Clear, area);
    f.render_widget(
        Paragraph::new(Text::from(o.body.clone()))
            .wrap(Wrap { trim: false })
            .scroll((o.scroll, 0))
            .block(block(
                app,
                format!("{} · ↑↓ PgUp/PgDn g/G · Esc closes", o.title),
            )),
        area,
    );
}

fn draw_package_form(f: &mut Frame, app: &App, form: &super::form::PackageForm) {
    let area = centered(f.area(), 84, (form.fields.len() * 2 + 5) as u16);
    let title = match form.editing {
        Some(id) => format!("Edit package {id}"),
        None => "Register a package".into(),
    };
    let mut lines = Vec::new();
    for (i, field) in form.fields.iter().enumerate() {
        let focused = i == form.focus;
        let locked = form.editing.is_some() && i == 0;
        let label_style = if focused {
            app.theme.accent
        } else {
            app.theme.muted
        };
        let value = field.input.value().to_string();
        lines.push(Line::from(vec![
            Span::styled(format!("{:<18}", field.label), label_style),
            Span::styled(
                value,
                if locked {
                    app.theme.muted
                } else {
                    app.theme.text
                },
            ),
            Span::styled(if focused { "▏" } else { "" }, app.theme.accent),
        ]));
        lines.push(Line::from(Span::styled(
            format!("{:<18}{}", "", field.hint),
            app.theme.muted,
        )));
    }
    if let Some(d) = &form.detected {
        lines.push(Line::from(Span::styled(d.clone(), app.theme.info)));
    }
    lines.push(Line::from(Span::styled(text::FORM_HINT, app.theme.muted)));
    f.render_widget(Clear, area);
    f.render_widget(Paragraph::new(lines).block(block(app, title)), area);
}

fn draw_task_form(f: &mut Frame, app: &App, form: &super::form::TaskForm) {
    let full = f.area();
    let area = centered(
        full,
        full.width.saturating_sub(4).min(100),
        full.height.saturating_sub(2),
    );
    let title = match &form.editing {
        Some(t) => format!("Edit task {} (destinations or package)", t.id),
        None => "New task".into(),
    };
    f.render_widget(Clear, area);
    let outer = block(app, title);
    let inner = outer.inner(area);
    f.render_widget(outer, area);
    let [top, bottom, help] = Layout::vertical([
        Constraint::Min(4),
        Constraint::Length(5),
        Constraint::Length(1),
    ])
    .areas(inner);
    let [left, right] =
        Layout::horizontal([Constraint::Percentage(45), Constraint::Percentage(55)]).areas(top);
    let part_style = |p: TaskPart| {
        if form.part == p {
            app.theme.accent
        } else {
            app.theme.muted
        }
    };

    let h = left.height.saturating_sub(2) as usize;
    let start = window(form.package, h);
    let pkgs: Vec<Line> = form
        .packages
        .iter()
        .enumerate()
        .skip(start)
        .take(h)
        .map(|(i, p)| {
            let s = if i == form.package {
                app.theme.selection
            } else {
                app.theme.text
            };
            Line::from(Span::styled(
                format!("{} {} ({}, {})", p.id, p.name, p.kind.as_str(), p.format),
                s,
            ))
        })
        .collect();
    f.render_widget(
        Paragraph::new(pkgs).block(
            Block::default()
                .borders(Borders::ALL)
                .border_style(part_style(TaskPart::Package))
                .title(" Package ↑↓ "),
        ),
        left,
    );

    let vis = form.visible();
    let h = right.height.saturating_sub(2) as usize;
    let start = window(form.cursor, h);
    let dests: Vec<Line> = vis
        .iter()
        .enumerate()
        .skip(start)
        .take(h)
        .map(|(pos, &i)| {
            let d = &form.destinations[i];
            let mark = if form.chosen[i] { "[x]" } else { "[ ]" };
            let s = if pos == form.cursor && form.part == TaskPart::Destinations {
                app.theme.selection
            } else {
                app.theme.text
            };
            Line::from(Span::styled(
                format!(
                    "{mark} {} {} {}",
                    d.name,
                    state_symbol(&d.status),
                    d.os.clone().unwrap_or_default()
                ),
                s,
            ))
        })
        .collect();
    let chosen = form.chosen.iter().filter(|c| **c).count();
    f.render_widget(
        Paragraph::new(dests).block(
            Block::default()
                .borders(Borders::ALL)
                .border_style(part_style(TaskPart::Destinations))
                .title(format!(
                    " Destinations {chosen} chosen · filter: {}▏ · Space toggle · +/- all shown ",
                    form.filter.value()
                )),
        ),
        right,
    );

    let opt = |i: usize, label: &str, v: String| {
        let focused = form.part == TaskPart::Options && form.option == i;
        Line::from(vec![
            Span::styled(
                format!("{label:<12}"),
                if focused {
                    app.theme.accent
                } else {
                    app.theme.muted
                },
            ),
            Span::styled(v, app.theme.text),
            Span::styled(if focused { "▏" } else { "" }, app.theme.accent),
        ])
    };
    let options = vec![
        opt(
            0,
            "Start",
            if form.at.value().is_empty() {
                "now (or YYYY-MM-DD HH:MM)".into()
            } else {
                form.at.value().into()
            },
        ),
        opt(
            1,
            "Window",
            if form.window.value().is_empty() {
                "any time (or 22:00-06:00)".into()
            } else {
                form.window.value().into()
            },
        ),
        opt(2, "Name", form.name.value().into()),
        opt(
            3,
            "Uninstall",
            if form.uninstall {
                "[x] run the uninstall command".into()
            } else {
                "[ ] (Space)".into()
            },
        ),
    ];
    f.render_widget(
        Paragraph::new(options).block(
            Block::default()
                .borders(Borders::TOP)
                .border_style(part_style(TaskPart::Options))
                .title(" Options ↑↓ "),
        ),
        bottom,
    );
    f.render_widget(
        Paragraph::new(Span::styled(
            "Tab next part · Enter create · Esc cancel",
            app.theme.muted,
        )),
        help,
    );
}
