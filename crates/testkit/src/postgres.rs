//! A real PostgreSQL server for tests, from Debian's `postgresql` package:
//! `initdb` and `pg_ctl` in a temporary folder, listening on a free loopback
//! port, `wal_level=logical` (ready for change data capture), password
//! authentication for TCP. PostgreSQL refuses to run as root, and CI runs as
//! root: then the server runs as the `postgres` user Debian's package
//! creates, through `runuser`, with its data folder owned by that user.
//!
//! The binaries come from `INGESTA_PG_BIN` (a folder), the newest
//! `/usr/lib/postgresql/*/bin`, or `PATH`.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicU32, Ordering};

use crate::free_port;

/// The superuser of every test server.
pub const USER: &str = "ingesta";
/// Its password (the servers listen on loopback only, for one test).
pub const PASSWORD: &str = "ingesta-test-password";

pub struct Postgres {
    pub port: u16,
    bin: PathBuf,
    data: PathBuf,
    /// `Some(user)` when the server runs as another user (we are root).
    run_as: Option<String>,
    _dir: tempfile::TempDir,
}

fn bin_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("INGESTA_PG_BIN") {
        return PathBuf::from(dir);
    }
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .map(|d| d.flatten().map(|e| e.path().join("bin")).filter(|p| p.join("initdb").exists()).collect())
        .unwrap_or_default();
    versions.sort_by_key(|p| p.parent().and_then(|v| v.file_name()?.to_str()?.parse::<u32>().ok()).unwrap_or(0));
    if let Some(newest) = versions.pop() {
        return newest;
    }
    if Command::new("initdb").arg("--version").output().is_ok_and(|o| o.status.success()) {
        return PathBuf::new(); // on PATH
    }
    panic!(
        "this test needs a PostgreSQL server (initdb, pg_ctl), which was not found (INGESTA_PG_BIN, \
         /usr/lib/postgresql/*/bin, PATH). Install it with:\n  scripts/install-servers.sh\n\
         (or: apt-get install postgresql-15)"
    );
}

fn is_root() -> bool {
    Command::new("id").arg("-u").output().is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

fn checked(what: &str, out: Output) -> Output {
    assert!(
        out.status.success(),
        "{what} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

impl Postgres {
    /// Makes a cluster in a temporary folder and starts it on a free port.
    pub fn start() -> Self {
        let bin = bin_dir();
        let dir = tempfile::Builder::new().prefix("ingesta-pg-").tempdir().expect("temp dir");
        let data = dir.path().join("data");
        let run_as = is_root().then(|| "postgres".to_string());
        let pwfile = dir.path().join("pw");
        std::fs::write(&pwfile, PASSWORD).expect("password file");
        if let Some(user) = &run_as {
            // the server's user must reach its folder and own its data
            let chown = Command::new("chown").args(["-R", user]).arg(dir.path()).output().expect("chown runs");
            assert!(
                chown.status.success(),
                "PostgreSQL refuses to run as root and the `{user}` user is missing: install Debian's \
                 postgresql package (scripts/install-servers.sh), which creates it"
            );
            let _ = Command::new("chmod").arg("755").arg(dir.path()).output();
        }
        let pg = Self { port: free_port(), bin, data, run_as, _dir: dir };
        let init = pg
            .tool("initdb")
            .args(["-D"])
            .arg(&pg.data)
            .args(["-U", USER, "--pwfile"])
            .arg(&pwfile)
            .args(["--auth-local=trust", "--auth-host=scram-sha-256", "-E", "UTF8", "--locale=C", "--no-sync"])
            .output()
            .expect("initdb runs");
        checked("initdb", init);
        let _ = std::fs::remove_file(&pwfile);
        pg.start_again();
        pg
    }

    fn tool(&self, name: &str) -> Command {
        let exe = if self.bin.as_os_str().is_empty() { PathBuf::from(name) } else { self.bin.join(name) };
        match &self.run_as {
            Some(user) => {
                let mut c = Command::new("runuser");
                c.args(["-u", user, "--"]).arg(exe);
                c
            }
            None => Command::new(exe),
        }
    }

    /// Starts the server (again, after [`Postgres::stop_immediate`]) and waits until it accepts connections.
    pub fn start_again(&self) {
        let options = format!(
            "-p {} -c listen_addresses=127.0.0.1 -c unix_socket_directories='' -c wal_level=logical \
             -c max_wal_senders=10 -c max_replication_slots=10 -c fsync=off -c full_page_writes=off \
             -c max_connections=200",
            self.port
        );
        let log = self.data.parent().expect("folder").join("server.log");
        let out = self
            .tool("pg_ctl")
            .arg("-D")
            .arg(&self.data)
            .arg("-l")
            .arg(&log)
            .args(["-o", &options, "-w", "-t", "60", "start"])
            .output()
            .expect("pg_ctl runs");
        if !out.status.success() {
            let server_log = std::fs::read_to_string(&log).unwrap_or_default();
            panic!("pg_ctl start failed: {}\n{server_log}", String::from_utf8_lossy(&out.stderr));
        }
    }

    /// Stops the server as a crash would (`pg_ctl stop -m immediate`).
    pub fn stop_immediate(&self) {
        let out =
            self.tool("pg_ctl").arg("-D").arg(&self.data).args(["-m", "immediate", "stop"]).output().expect("pg_ctl");
        checked("pg_ctl stop", out);
    }

    /// A new, empty database; returns its name.
    pub fn fresh_database(&self) -> String {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let name = format!("test_{}", NEXT.fetch_add(1, Ordering::Relaxed));
        self.psql("postgres", &format!("CREATE DATABASE {name}"));
        name
    }

    /// The libpq URL of `database` (with the test password).
    pub fn url(&self, database: &str) -> String {
        format!("postgresql://{USER}:{PASSWORD}@127.0.0.1:{}/{database}", self.port)
    }

    /// Runs `sql` with `psql` (stopping at the first error); returns its
    /// unaligned, tuples-only output: one line per row, `|` between columns.
    pub fn psql(&self, database: &str, sql: &str) -> String {
        self.try_psql(database, sql).unwrap_or_else(|e| panic!("psql `{sql}` failed: {e}"))
    }

    /// [`Postgres::psql`], with PostgreSQL's error when it fails (the table
    /// does not exist yet, the server is down).
    pub fn try_psql(&self, database: &str, sql: &str) -> Result<String, String> {
        let exe = if self.bin.as_os_str().is_empty() { PathBuf::from("psql") } else { self.bin.join("psql") };
        let out = Command::new(exe)
            .args(["-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1", "-U", USER])
            .args(["-p", &self.port.to_string(), "-d", database, "-c", sql])
            .env("PGPASSWORD", PASSWORD)
            .output()
            .expect("psql runs");
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).trim_end().to_string())
        } else {
            Err(String::from_utf8_lossy(&out.stderr).trim_end().to_string())
        }
    }

    /// The server's data folder.
    pub fn data_dir(&self) -> &Path {
        &self.data
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        let _ = self.tool("pg_ctl").arg("-D").arg(&self.data).args(["-m", "immediate", "stop"]).output();
    }
}
