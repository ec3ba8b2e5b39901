//! A real Kafka-protocol broker for tests: `tansu` (a Rust broker), started on
//! a free port with in-memory storage, one per test. The binary comes from
//! `INGESTA_TANSU`, `PATH`, or `~/.cache/ingesta/tansu/bin/tansu` (where
//! `.ci/run` and `scripts/install-tansu.sh` put it).

use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct Broker {
    child: Child,
    pub port: u16,
    bin: PathBuf,
    _dir: tempfile::TempDir,
}

/// A port nobody listens on right now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port()
}

fn tansu() -> PathBuf {
    let candidates = [
        std::env::var_os("INGESTA_TANSU").map(PathBuf::from),
        Some(PathBuf::from("tansu")),
        std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/ingesta/tansu/bin/tansu")),
    ];
    for c in candidates.into_iter().flatten() {
        if Command::new(&c).arg("--version").output().is_ok_and(|o| o.status.success()) {
            return c;
        }
    }
    panic!(
        "this test needs the Kafka-protocol broker `tansu`, which was not found (INGESTA_TANSU, PATH, \
         ~/.cache/ingesta/tansu/bin). Install it (about 20 minutes on 2 cores) with:\n  \
         scripts/install-tansu.sh\n(or: cargo install tansu --locked --features dynostore)"
    );
}

impl Broker {
    /// Starts a broker on a free loopback port and waits until it accepts connections.
    pub fn start() -> Self {
        Self::start_with(&[])
    }

    /// A broker that requires SASL (SCRAM) authentication and knows no user:
    /// any credentials are refused.
    pub fn start_authenticating() -> Self {
        Self::start_with(&["--authentication"])
    }

    fn start_with(extra: &[&str]) -> Self {
        let bin = tansu();
        let dir = tempfile::Builder::new().prefix("ingesta-broker-").tempdir().expect("temp dir");
        let port = free_port();
        let url = format!("tcp://127.0.0.1:{port}");
        let log = std::fs::File::create(dir.path().join("broker.log")).expect("log");
        let child = Command::new(&bin)
            .args(["broker", "--listener-url", &url, "--advertised-listener-url", &url])
            .args(["--storage-engine", "memory://tansu/", "--cluster-id", "ingesta-test"])
            .args(extra)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("tansu starts");
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "tansu did not listen on {port} within 20 s");
            std::thread::sleep(Duration::from_millis(50));
        }
        Self { child, port, bin, _dir: dir }
    }

    /// `host:port` for `brokers:`.
    pub fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub fn create_topic(&self, name: &str, partitions: u32) {
        let out = Command::new(&self.bin)
            .args(["topic", "create", name, "--partitions", &partitions.to_string()])
            .args(["--broker", &format!("tcp://127.0.0.1:{}", self.port)])
            .output()
            .expect("tansu topic create runs");
        assert!(out.status.success(), "creating topic {name}: {}", String::from_utf8_lossy(&out.stderr));
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
