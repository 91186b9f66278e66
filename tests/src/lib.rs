//! Harness for the end-to-end tests: starts the real `strata` binary on an
//! ephemeral port with a fresh data directory, and stops it the way a test
//! asks (SIGKILL, SIGTERM).

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// Path of the broker binary: `$STRATA_BIN`, or `strata` next to the test's
/// own target directory (`cargo build` puts it there).
pub fn strata_bin() -> PathBuf {
    if let Ok(p) = std::env::var("STRATA_BIN") {
        return PathBuf::from(p);
    }
    let exe = std::env::current_exe().expect("test executable path");
    // target/<profile>/deps/<test> -> target/<profile>/strata
    let bin = exe.parent().and_then(Path::parent).expect("target dir").join("strata");
    assert!(bin.exists(), "{} not found: run `cargo build --bin strata` first", bin.display());
    bin
}

/// A running broker. Dropping it kills the process; the data directory is
/// removed with the harness.
pub struct Broker {
    child: Option<Child>,
    dir: tempfile::TempDir,
    port: u16,
    args: Vec<String>,
}

impl Broker {
    /// Starts a broker on a free port with a fresh data directory and the
    /// given extra arguments (e.g. `["--set", "num.partitions=3"]`).
    pub fn start(args: &[&str]) -> Broker {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut b = Broker { child: None, dir, port: 0, args: args.iter().map(|s| s.to_string()).collect() };
        b.spawn();
        b
    }

    fn spawn(&mut self) {
        let log = File::options()
            .create(true)
            .append(true)
            .open(self.dir.path().join("broker.log"))
            .expect("broker log");
        let mut child = Command::new(strata_bin())
            .arg("--listen")
            .arg(format!("127.0.0.1:{}", self.port))
            .arg("--data-dir")
            .arg(self.data_dir())
            .args(&self.args)
            .env("RUST_LOG", std::env::var("STRATA_TEST_LOG").unwrap_or_else(|_| "info".into()))
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .expect("start strata");
        let mut line = String::new();
        let stdout = child.stdout.take().expect("piped stdout");
        BufReader::new(stdout).read_line(&mut line).expect("read broker stdout");
        let Some(addr) = line.trim().strip_prefix("strata listening on ") else {
            let _ = child.kill();
            panic!("broker did not start: {line:?}\n{}", self.log());
        };
        self.port = addr.rsplit(':').next().and_then(|p| p.parse().ok()).expect("port in the listening line");
        self.child = Some(child);
    }

    /// `127.0.0.1:PORT`, for `bootstrap.servers`.
    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// What the broker logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("broker.log")).unwrap_or_default()
    }

    /// Kills the broker with SIGKILL: no flush, no clean shutdown.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Stops the broker with SIGTERM and waits for it to exit; returns
    /// whether it exited successfully.
    pub fn terminate(&mut self) -> bool {
        let Some(mut c) = self.child.take() else { return false };
        let _ = Command::new("kill").arg("-TERM").arg(c.id().to_string()).status();
        for _ in 0..200 {
            if let Ok(Some(status)) = c.try_wait() {
                return status.success();
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = c.kill();
        let _ = c.wait();
        false
    }

    /// Starts the broker again on the same port and data directory.
    pub fn restart(&mut self) {
        assert!(self.child.is_none(), "stop the broker before restarting it");
        self.spawn();
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        self.kill();
    }
}
