//! Themes differ in style, never in text; meaning never rests on colour.

use super::*;

use ratatui::style::Modifier;

use super::insta;

/// Themes differ in style, not text: the same small screen with its
/// styles in the default theme and in mono (no colour at all; selection,
/// header and states told apart by modifiers and symbols).
#[test]
fn snapshot_styles_default_and_mono() {
    for theme in ["default", "mono"] {
        let mut app = app_with(theme, false);
        open_detail(&mut app);
        press(&mut app, "gjjjj");
        let b = draw_buffer(&app, 80, 24);
        insta::assert_snapshot!(format!("styles_task_detail_{theme}"), styled_of(&b));
    }
}

#[test]
fn mono_uses_no_colour_and_default_does() {
    let mut coloured = 0;
    for theme in ["default", "mono", "light", "high-contrast"] {
        let mut app = app_with(theme, false);
        open_detail(&mut app);
        let b = draw_buffer(&app, 160, 48);
        let colours = b
            .content
            .iter()
            .filter(|c| c.fg != Color::Reset || c.bg != Color::Reset)
            .count();
        if theme == "mono" {
            assert_eq!(colours, 0, "mono drew {colours} coloured cells");
            // The selected row still stands out, by a modifier.
            assert!(
                b.content
                    .iter()
                    .any(|c| c.modifier.contains(Modifier::REVERSED)
                        || c.modifier.contains(Modifier::BOLD)),
                "mono: nothing tells the selection apart"
            );
        } else {
            coloured += 1;
            assert!(colours > 0, "{theme} drew no colour");
        }
        // Whatever the theme, the text is the same.
        assert_eq!(
            render(&app, 160, 48),
            render(&app_detail("default"), 160, 48)
        );
    }
    assert_eq!(coloured, 3);
}

/// On a light terminal nothing is drawn in a pale colour on the
/// terminal's own (white) background: key descriptions, hints and
/// borders included.
#[test]
fn light_theme_draws_nothing_pale_on_white() {
    let pale = [
        Color::Gray,
        Color::White,
        Color::LightYellow,
        Color::LightCyan,
        Color::LightGreen,
        Color::Yellow,
    ];
    let mut app = app_with("light", false);
    open_detail(&mut app);
    let b = draw_buffer(&app, 80, 24);
    let faint: Vec<String> = b
        .content
        .iter()
        .filter(|c| c.bg == Color::Reset && c.symbol().trim() != "" && pale.contains(&c.fg))
        .map(|c| format!("{}:{:?}", c.symbol(), c.fg))
        .collect();
    assert!(faint.is_empty(), "pale on white: {faint:?}");
    // The footer's key descriptions are among what is checked.
    let footer = text_of(&b);
    assert!(footer.contains("rerun"), "{footer}");
}

fn app_detail(theme: &str) -> App {
    let mut app = app_with(theme, false);
    open_detail(&mut app);
    app
}

/// Every state in a list carries a symbol, so meaning never rests on hue.
#[test]
fn states_carry_symbols_not_only_colour() {
    let app = app_detail("mono");
    let s = render(&app, 160, 48);
    for want in [
        "✔ succeeded",
        "✖ failed",
        "⟳ installing",
        "◷ waiting",
        "⊘ cancelled",
        "⇣ ",
    ] {
        assert!(s.contains(want), "no {want:?} in\n{s}");
    }
    let mut app = app_with("mono", false);
    press(&mut app, "3");
    let s = render(&app, 160, 48);
    for want in ["✔ online", "○ offline", "◷ pending", "✖ rejected"] {
        assert!(s.contains(want), "no {want:?} in\n{s}");
    }
}
