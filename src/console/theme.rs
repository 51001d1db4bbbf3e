//! Themes: semantic roles (ok, warn, error, muted, selection…) mapped to
//! styles, read from `themes/*.toml` (built in) or
//! `$XDG_CONFIG_HOME/courier/themes/NAME.toml` (on Windows
//! `%APPDATA%\courier\themes\NAME.toml`).

use std::str::FromStr;

use anyhow::{Result, anyhow, bail};
use ratatui::style::{Color, Modifier, Style};
use serde::Deserialize;

/// The shipped themes, compiled in so the binary works anywhere.
pub const BUILT_IN: &[(&str, &str)] = &[
    ("default", include_str!("../../themes/default.toml")),
    ("light", include_str!("../../themes/light.toml")),
    (
        "high-contrast",
        include_str!("../../themes/high-contrast.toml"),
    ),
    ("mono", include_str!("../../themes/mono.toml")),
];

#[derive(Debug, Clone, PartialEq)]
pub struct Theme {
    pub name: String,
    pub text: Style,
    pub muted: Style,
    pub accent: Style,
    pub ok: Style,
    pub warn: Style,
    pub error: Style,
    pub info: Style,
    pub selection: Style,
    pub header: Style,
    pub title: Style,
    pub border: Style,
    pub key: Style,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    roles: Roles,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Roles {
    text: String,
    muted: String,
    accent: String,
    ok: String,
    warn: String,
    error: String,
    info: String,
    selection: String,
    header: String,
    title: String,
    border: String,
    key: String,
}

/// Parses "red", "black on cyan", "lightred bold", "reversed".
pub fn parse_style(s: &str) -> Result<Style> {
    let mut style = Style::default();
    let words = s.split_whitespace();
    let mut background = false;
    for w in words {
        let m = match w {
            "bold" => Some(Modifier::BOLD),
            "dim" => Some(Modifier::DIM),
            "italic" => Some(Modifier::ITALIC),
            "underlined" => Some(Modifier::UNDERLINED),
            "reversed" => Some(Modifier::REVERSED),
            _ => None,
        };
        if let Some(m) = m {
            style = style.add_modifier(m);
            continue;
        }
        if w == "on" {
            background = true;
            continue;
        }
        let c = Color::from_str(w).map_err(|_| anyhow!("'{w}' is not a colour"))?;
        style = if background { style.bg(c) } else { style.fg(c) };
        background = false;
    }
    Ok(style)
}

impl Theme {
    pub fn parse(name: &str, text: &str) -> Result<Theme> {
        let f: File = toml::from_str(text)
            .map_err(|e| anyhow!("theme '{name}': {}", e.to_string().replace('\n', " ")))?;
        let r = f.roles;
        let p = |role: &str, v: &str| {
            parse_style(v).map_err(|e| anyhow!("theme '{name}', role {role}: {e}"))
        };
        Ok(Theme {
            name: name.to_string(),
            text: p("text", &r.text)?,
            muted: p("muted", &r.muted)?,
            accent: p("accent", &r.accent)?,
            ok: p("ok", &r.ok)?,
            warn: p("warn", &r.warn)?,
            error: p("error", &r.error)?,
            info: p("info", &r.info)?,
            selection: p("selection", &r.selection)?,
            header: p("header", &r.header)?,
            title: p("title", &r.title)?,
            border: p("border", &r.border)?,
            key: p("key", &r.key)?,
        })
    }

    /// A theme by name: built in, or from the user's theme folder.
    pub fn load(name: &str) -> Result<Theme> {
        if let Some((_, text)) = BUILT_IN.iter().find(|(n, _)| *n == name) {
            return Theme::parse(name, text);
        }
        let dir = theme_dir();
        if let Some(path) = dir.map(|d| d.join(format!("{name}.toml")))
            && let Ok(text) = std::fs::read_to_string(&path)
        {
            return Theme::parse(name, &text);
        }
        let names: Vec<&str> = BUILT_IN.iter().map(|(n, _)| *n).collect();
        bail!("no theme '{name}' (built in: {})", names.join(", "))
    }

    /// The theme to use: `--theme`, else mono under `NO_COLOR`, else default.
    pub fn choose(flag: Option<&str>) -> Result<Theme> {
        match flag {
            Some(n) => Theme::load(n),
            None if std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty()) => {
                Theme::load("mono")
            }
            None => Theme::load("default"),
        }
    }
}

/// The user's theme folder: `$XDG_CONFIG_HOME/courier/themes`, else
/// `~/.config/courier/themes`; on Windows `%APPDATA%\courier\themes`.
fn theme_dir() -> Option<std::path::PathBuf> {
    let var = |name| std::env::var_os(name).filter(|v| !v.is_empty());
    let base = if cfg!(windows) {
        var("APPDATA").map(std::path::PathBuf::from)
    } else {
        var("XDG_CONFIG_HOME")
            .map(std::path::PathBuf::from)
            .or_else(|| var("HOME").map(|h| std::path::PathBuf::from(h).join(".config")))
    };
    base.map(|d| d.join("courier").join("themes"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_built_in_theme_parses() {
        for (name, _) in BUILT_IN {
            Theme::load(name).unwrap();
        }
    }

    #[test]
    fn styles_parse() {
        let s = parse_style("black on cyan bold").unwrap();
        assert_eq!(s.fg, Some(Color::Black));
        assert_eq!(s.bg, Some(Color::Cyan));
        assert!(s.add_modifier.contains(Modifier::BOLD));
        assert!(parse_style("chartreuse-ish").is_err());
    }

    #[test]
    fn mono_has_no_colour() {
        let t = Theme::load("mono").unwrap();
        for s in [
            t.text,
            t.muted,
            t.ok,
            t.warn,
            t.error,
            t.selection,
            t.header,
        ] {
            assert!(matches!(s.fg, None | Some(Color::Reset)), "{s:?}");
            assert!(matches!(s.bg, None | Some(Color::Reset)), "{s:?}");
        }
    }

    #[test]
    fn unknown_theme_names_the_built_in_ones() {
        let e = Theme::load("nope").unwrap_err().to_string();
        assert!(e.contains("default") && e.contains("mono"), "{e}");
    }
}
