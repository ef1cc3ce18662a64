//! Per-test log capture. `#[tokio::test]` runs the gateway's tasks on the test's own thread
//! (current-thread runtime), so a thread-local tracing subscriber sees exactly this test's
//! gateway. The captured text is printed when the test panics.

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::time::Instant;
use tracing::subscriber::DefaultGuard;

/// Captured log text of one test.
#[derive(Clone, Default)]
pub struct Logs(Arc<Mutex<Vec<u8>>>);

/// Keeps the subscriber installed; prints the logs if the test fails.
pub struct LogGuard {
    /// The capture.
    pub logs: Logs,
    _guard: DefaultGuard,
}

impl Drop for LogGuard {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("----- gateway logs -----\n{}", self.logs.text());
        }
    }
}

/// A writer appending to the capture.
pub struct LogWriter(Arc<Mutex<Vec<u8>>>);

impl Write for LogWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Logs {
    /// Install a DEBUG-level subscriber for the current thread.
    pub fn install() -> LogGuard {
        let logs = Logs::default();
        let sink = logs.0.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_ansi(false)
            .with_max_level(tracing::Level::DEBUG)
            .with_writer(move || LogWriter(sink.clone()))
            .finish();
        let guard = tracing::subscriber::set_default(subscriber);
        LogGuard {
            logs,
            _guard: guard,
        }
    }

    /// Everything logged so far.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }

    /// Number of log lines containing `needle`.
    pub fn count(&self, needle: &str) -> usize {
        self.text().lines().filter(|l| l.contains(needle)).count()
    }

    /// Number of log lines at `level` (e.g. "INFO") containing `needle`.
    pub fn count_at(&self, level: &str, needle: &str) -> usize {
        let level = format!(" {level} ");
        self.text()
            .lines()
            .filter(|l| l.contains(&level) && l.contains(needle))
            .count()
    }

    /// Wait until `needle` has been logged at least `n` times.
    pub async fn wait_for(&self, needle: &str, n: usize, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        while self.count(needle) < n {
            assert!(
                Instant::now() < deadline,
                "log line {needle:?} seen {} times, wanted {n} within {timeout:?}",
                self.count(needle)
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}
