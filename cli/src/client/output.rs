//! How results look: plain text with colours only on a terminal, or JSON for
//! scripts; a spinner on standard error while a job waits.

use indicatif::{ProgressBar, ProgressStyle};
use serde_json::Value;
use std::io::IsTerminal;
use std::time::Duration;

/// The output mode of one command.
#[derive(Debug, Clone, Copy)]
pub struct Output {
    pub json: bool,
    /// ANSI colours on standard output.
    pub color: bool,
    /// Colours and a spinner on standard error.
    pub stderr_tty: bool,
}

fn colours_wanted() -> bool {
    std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
        && std::env::var("TERM").map_or(true, |t| t != "dumb")
}

impl Output {
    pub fn new(json: bool) -> Output {
        Output {
            json,
            color: !json && colours_wanted() && std::io::stdout().is_terminal(),
            stderr_tty: colours_wanted() && std::io::stderr().is_terminal(),
        }
    }

    /// Prints a JSON value on one line.
    pub fn print_json(&self, value: &Value) {
        println!("{value}");
    }
}

/// Text styles (ANSI SGR codes).
#[derive(Debug, Clone, Copy)]
pub enum Style {
    Bold,
    Dim,
    Green,
    Red,
    Yellow,
    Cyan,
}

pub fn paint(text: &str, style: Style, on: bool) -> String {
    if !on {
        return text.to_string();
    }
    let code = match style {
        Style::Bold => "1",
        Style::Dim => "2",
        Style::Green => "32",
        Style::Red => "31",
        Style::Yellow => "33",
        Style::Cyan => "36",
    };
    format!("\x1b[{code}m{text}\x1b[0m")
}

/// A job or task status, coloured by what it means.
pub fn status(text: &str, on: bool) -> String {
    let style = match text {
        "success" => Style::Green,
        "failed" | "timeout" => Style::Red,
        "cancelled" | "skipped" => Style::Dim,
        "running" => Style::Cyan,
        _ => Style::Yellow,
    };
    paint(text, style, on)
}

pub fn is_terminal_status(status: &str) -> bool {
    matches!(status, "success" | "failed" | "timeout" | "cancelled")
}

/// A spinner on standard error, or nothing when that is not a terminal.
pub struct Spinner(Option<ProgressBar>);

impl Spinner {
    pub fn new(enabled: bool) -> Spinner {
        if !enabled {
            return Spinner(None);
        }
        let bar = ProgressBar::new_spinner();
        if let Ok(style) = ProgressStyle::with_template("{spinner} {msg} ({elapsed})") {
            bar.set_style(style);
        }
        bar.enable_steady_tick(Duration::from_millis(120));
        Spinner(Some(bar))
    }

    pub fn set(&self, message: String) {
        if let Some(bar) = &self.0 {
            bar.set_message(message);
        }
    }

    /// Removes the spinner for good (before any log output).
    pub fn clear(&mut self) {
        if let Some(bar) = self.0.take() {
            bar.finish_and_clear();
        }
    }
}

impl Drop for Spinner {
    fn drop(&mut self) {
        self.clear();
    }
}

/// Prints rows as left-aligned columns; the last column is not padded.
pub fn table(header: &[&str], rows: &[Vec<String>], color: bool) {
    let columns = header.len();
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate().take(columns) {
            widths[i] = widths[i].max(visible_len(cell));
        }
    }
    let line = |cells: Vec<String>| {
        let mut out = String::new();
        for (i, cell) in cells.iter().enumerate() {
            out.push_str(cell);
            if i + 1 < cells.len() {
                let pad = widths[i].saturating_sub(visible_len(cell)) + 2;
                out.push_str(&" ".repeat(pad));
            }
        }
        println!("{}", out.trim_end());
    };
    line(
        header
            .iter()
            .map(|h| paint(h, Style::Bold, color))
            .collect(),
    );
    for row in rows {
        line(row.clone());
    }
}

/// Length without ANSI escapes.
fn visible_len(text: &str) -> usize {
    let mut len = 0;
    let mut in_escape = false;
    for c in text.chars() {
        match (in_escape, c) {
            (false, '\x1b') => in_escape = true,
            (true, 'm') => in_escape = false,
            (true, _) => {}
            (false, _) => len += 1,
        }
    }
    len
}

/// A size in bytes for people.
pub fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut value = bytes as f64;
    let mut unit = "B";
    for next in UNITS {
        if value < 1024.0 {
            break;
        }
        value /= 1024.0;
        unit = next;
    }
    format!("{value:.1} {unit}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn colours_only_when_asked() {
        assert_eq!(status("failed", false), "failed");
        assert_eq!(status("failed", true), "\x1b[31mfailed\x1b[0m");
        assert_eq!(visible_len(&status("success", true)), 7);
    }

    #[test]
    fn sizes() {
        assert_eq!(human_size(15), "15 B");
        assert_eq!(human_size(2048), "2.0 KiB");
        assert_eq!(human_size(5 * 1024 * 1024), "5.0 MiB");
    }
}
