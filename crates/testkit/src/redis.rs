//! A real Redis server for tests: `redis-server` (Debian's `redis-server`
//! package) on a free loopback port, no persistence, one per test.

use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::free_port;

pub struct Redis {
    child: Option<Child>,
    pub port: u16,
    dir: tempfile::TempDir,
}

impl Redis {
    /// Starts a server on a free loopback port and waits until it accepts connections.
    pub fn start() -> Self {
        let dir = tempfile::Builder::new().prefix("ingesta-redis-").tempdir().expect("temp dir");
        let mut r = Self { child: None, port: free_port(), dir };
        r.start_again();
        r
    }

    /// Starts the server again on the same port (after [`Redis::kill`]).
    pub fn start_again(&mut self) {
        let spawned = Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(self.dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn();
        let child = spawned.unwrap_or_else(|e| {
            panic!(
                "this test needs `redis-server`, which could not be started ({e}). Install it with:\n  \
                 scripts/install-servers.sh\n(or: apt-get install redis-server)"
            )
        });
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(Instant::now() < deadline, "redis-server did not listen on {} within 20 s", self.port);
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Stops the server at once (SIGKILL): an outage.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Sets each key to its value (strings), as an application loading Redis would.
    pub fn set(&self, pairs: &[(String, String)]) {
        let client = redis::Client::open(self.url()).expect("a Redis URL");
        let mut conn = client.get_connection().expect("a connection to the test's redis-server");
        let mut pipe = redis::pipe();
        for (k, v) in pairs {
            pipe.cmd("SET").arg(k).arg(v).ignore();
        }
        pipe.query::<()>(&mut conn).expect("SET");
    }

    /// `redis://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        self.kill();
    }
}
