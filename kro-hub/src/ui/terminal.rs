//! A table kept at the bottom of the terminal and redrawn in place while
//! narration scrolls above it; plain lines when stdout is not a terminal.
//!
//! Hand-written with three ANSI sequences (move up to the table's first
//! line, clear to the end of the screen, and auto-wrap off so a long line
//! cannot take two rows and break the count) instead of a crate: the
//! progress-bar and TUI crates would add their terminal and width
//! dependencies to every build for what is a few lines here.

use std::io::{IsTerminal as _, Write};
use std::sync::{Arc, Mutex};

/// The screen: narration lines, and below them the live table.
#[derive(Debug, Clone)]
pub struct Screen {
    inner: Arc<Mutex<State>>,
}

#[derive(Debug)]
struct State {
    out: Box<dyn WriteDebug>,
    terminal: bool,
    /// The table as last drawn.
    table: String,
    /// Lines it takes on screen (0 when not drawn).
    drawn: usize,
}

trait WriteDebug: Write + Send + std::fmt::Debug {}
impl<T: Write + Send + std::fmt::Debug> WriteDebug for T {}

/// Cursor to the start of the line `n` lines up, then clear to the end of
/// the screen.
fn erase(n: usize) -> String {
    if n == 0 {
        String::new()
    } else {
        format!("\x1b[{n}F\x1b[J")
    }
}

const WRAP_OFF: &str = "\x1b[?7l";
const WRAP_ON: &str = "\x1b[?7h";

impl Screen {
    /// Stdout, redrawing in place only when it is a terminal.
    pub fn stdout() -> Self {
        let terminal = std::io::stdout().is_terminal();
        Self::new(std::io::stdout(), terminal)
    }

    /// A screen writing to `out`; `terminal` chooses redrawing in place.
    pub fn new(out: impl Write + Send + std::fmt::Debug + 'static, terminal: bool) -> Self {
        Self {
            inner: Arc::new(Mutex::new(State {
                out: Box::new(out),
                terminal,
                table: String::new(),
                drawn: 0,
            })),
        }
    }

    /// Whether the table is redrawn in place.
    pub fn is_terminal(&self) -> bool {
        self.inner.lock().map(|s| s.terminal).unwrap_or(false)
    }

    /// Prints a narration line above the table.
    pub fn say(&self, line: &str) {
        let Ok(mut s) = self.inner.lock() else {
            return;
        };
        let State {
            out,
            terminal,
            table,
            drawn,
        } = &mut *s;
        let mut text = String::new();
        if *terminal {
            text.push_str(&erase(*drawn));
        }
        text.push_str(line);
        text.push('\n');
        if *terminal && !table.is_empty() {
            text.push_str(WRAP_OFF);
            text.push_str(table);
            text.push_str(WRAP_ON);
        }
        let _ = out.write_all(text.as_bytes());
        let _ = out.flush();
    }

    /// Shows `table` as the live table: redrawn in place on a terminal
    /// (when it changed); elsewhere nothing, since a changing table would
    /// flood a log (use [`Screen::print_table`] at chosen moments).
    pub fn show(&self, table: &str) {
        let Ok(mut s) = self.inner.lock() else {
            return;
        };
        if !s.terminal || s.table == table {
            return;
        }
        let mut text = erase(s.drawn);
        text.push_str(WRAP_OFF);
        text.push_str(table);
        text.push_str(WRAP_ON);
        s.drawn = table.lines().count();
        s.table = table.to_owned();
        let _ = s.out.write_all(text.as_bytes());
        let _ = s.out.flush();
    }

    /// Prints `table` as plain lines when not on a terminal, where there is
    /// no live table; on a terminal the live table already shows it.
    pub fn print_table(&self, table: &str) {
        if self.is_terminal() {
            return;
        }
        for line in table.lines() {
            self.say(&format!("   {line}"));
        }
    }

    /// Leaves the table where it is and stops redrawing it: what follows
    /// prints below it.
    pub fn release(&self) {
        if let Ok(mut s) = self.inner.lock() {
            s.table.clear();
            s.drawn = 0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A writer the test reads back.
    #[derive(Debug, Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl Write for Captured {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            if let Ok(mut v) = self.0.lock() {
                v.extend_from_slice(buf);
            }
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl Captured {
        fn text(&self) -> String {
            self.0
                .lock()
                .map(|v| String::from_utf8_lossy(&v).into_owned())
                .unwrap_or_default()
        }
    }

    #[test]
    fn on_a_terminal_the_table_is_redrawn_below_the_narration() {
        let out = Captured::default();
        let screen = Screen::new(out.clone(), true);
        screen.show("A\nB\n");
        screen.say("step 1");
        screen.show("A\nC\n");
        screen.show("A\nC\n");
        let expected = [
            "\x1b[?7lA\nB\n\x1b[?7h",
            // Narration: erase the two table lines, print, redraw.
            "\x1b[2F\x1b[Jstep 1\n\x1b[?7lA\nB\n\x1b[?7h",
            // A changed table replaces the old one; the same one is
            // not drawn again.
            "\x1b[2F\x1b[J\x1b[?7lA\nC\n\x1b[?7h",
        ]
        .concat();
        assert_eq!(out.text(), expected);
    }

    #[test]
    fn elsewhere_plain_lines_and_tables_only_when_asked() {
        let out = Captured::default();
        let screen = Screen::new(out.clone(), false);
        screen.show("A\nB\n");
        screen.say("step 1");
        screen.print_table("A\nB\n");
        assert_eq!(out.text(), "step 1\n   A\n   B\n");
        assert!(!out.text().contains('\x1b'));
    }
}
