//! Test support: a throwaway PostgreSQL server, started from the PostgreSQL binaries when
//! they are installed (`initdb` + `pg_ctl`, in a temp dir, on a free port, as the `postgres`
//! user when run as root), or the server named by `TESSERA_TEST_POSTGRES_URL`. Each test gets
//! a database of its own.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

use tessera_store::Store;

/// Set to 1 to make a missing PostgreSQL a failure instead of a skip (CI does).
pub const REQUIRE_ENV: &str = "TESSERA_REQUIRE_POSTGRES";
/// A server to use instead of starting one: `postgres://user:pass@host:port[/db]`.
pub const URL_ENV: &str = "TESSERA_TEST_POSTGRES_URL";

fn bin_dir() -> Option<PathBuf> {
    let mut found: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
        .filter(|p| p.join("initdb").exists() && p.join("pg_ctl").exists())
        .collect();
    found.sort();
    found.pop()
}

fn is_root() -> bool {
    Command::new("id").arg("-u").output().map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0").unwrap_or(false)
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// A PostgreSQL server this process started; stopped when dropped, and by a watchdog when
/// the test process ends.
pub struct PgServer {
    bin: PathBuf,
    dir: PathBuf,
    port: u16,
}

impl PgServer {
    fn run(&self, program: &str, args: &[&str]) -> bool {
        let exe = self.bin.join(program);
        let mut cmd = if is_root() {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(&exe);
            c
        } else {
            Command::new(&exe)
        };
        cmd.args(args).stdout(Stdio::null()).stderr(Stdio::null()).status().map(|s| s.success()).unwrap_or(false)
    }

    /// Initialises and starts a fresh server; `None` without PostgreSQL binaries.
    pub fn start_new() -> Option<Self> {
        let bin = bin_dir()?;
        let dir = std::env::temp_dir().join(format!("tessera-pg-{}-{}", std::process::id(), free_port()));
        std::fs::create_dir_all(&dir).ok()?;
        if is_root() {
            Command::new("chown").args(["-R", "postgres:postgres"]).arg(&dir).status().ok()?;
        }
        let server = Self { bin, dir, port: free_port() };
        let data = server.dir.join("data");
        if !server.run("initdb", &["-D", data.to_str()?, "-A", "trust", "-U", "postgres", "-E", "UTF8"]) {
            eprintln!("initdb failed in {}", server.dir.display());
            return None;
        }
        if !server.start() {
            return None;
        }
        // Stop the server when this process is gone, even if it never drops the handle.
        let watchdog = format!(
            "while [ -d /proc/{pid} ]; do sleep 1; done; {pg_ctl} -D {data} stop -m immediate; rm -rf {dir}",
            pid = std::process::id(),
            pg_ctl = server.bin.join("pg_ctl").display(),
            data = data.display(),
            dir = server.dir.display(),
        );
        let mut cmd = if is_root() {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--", "sh", "-c", &watchdog]);
            c
        } else {
            let mut c = Command::new("sh");
            c.args(["-c", &watchdog]);
            c
        };
        let _ = cmd.stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::null()).spawn();
        Some(server)
    }

    /// Starts (again).
    pub fn start(&self) -> bool {
        let data = self.dir.join("data");
        let opts = format!("-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=on", self.port, self.dir.display());
        let log = self.dir.join("log");
        self.run("pg_ctl", &["-D", data.to_str().unwrap(), "-o", &opts, "-l", log.to_str().unwrap(), "-w", "start"])
    }

    /// Stops, fast (connections are cut).
    pub fn stop(&self) -> bool {
        let data = self.dir.join("data");
        self.run("pg_ctl", &["-D", data.to_str().unwrap(), "-m", "fast", "-w", "stop"])
    }

    /// `postgres://postgres@127.0.0.1:PORT` (no database).
    pub fn base_url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}", self.port)
    }

    /// The data directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

impl Drop for PgServer {
    fn drop(&mut self) {
        self.stop();
    }
}

static SHARED: OnceLock<Option<(String, Option<PgServer>)>> = OnceLock::new();

/// The shared server's base URL (no database), starting it on first use; `None` when there
/// is no PostgreSQL (and [`REQUIRE_ENV`] is not set, else this panics).
pub fn shared_base_url() -> Option<String> {
    let shared = SHARED.get_or_init(|| {
        if let Ok(url) = std::env::var(URL_ENV) {
            let base = match url.rsplit_once('/') {
                Some((b, db)) if !b.ends_with('/') && !db.contains('@') && !db.contains(':') => b.to_owned(),
                _ => url,
            };
            return Some((base, None));
        }
        let server = PgServer::start_new()?;
        Some((server.base_url(), Some(server)))
    });
    match shared {
        Some((url, _)) => Some(url.clone()),
        None if std::env::var(REQUIRE_ENV).as_deref() == Ok("1") => {
            panic!("{REQUIRE_ENV}=1 but no PostgreSQL: install the postgresql package or set {URL_ENV}")
        }
        None => None,
    }
}

/// Creates an empty database on the server at `base` and returns its URL.
pub async fn fresh_database(base: &str) -> String {
    use sqlx::Connection as _;
    sqlx::any::install_default_drivers();
    // A free port alone can come back twice; the counter makes names unique in this process.
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let name = format!("tessera_test_{}_{}_{n}", std::process::id(), free_port());
    let mut admin = sqlx::AnyConnection::connect(&format!("{base}/postgres")).await.expect("connect to PostgreSQL");
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&mut admin)
        .await
        .expect("create database");
    let _ = admin.close().await;
    format!("{base}/{name}")
}

/// A store on a fresh PostgreSQL database, or `None` (with a note on stderr) without one.
pub async fn postgres_store(test: &str) -> Option<Store> {
    let Some(base) = shared_base_url() else {
        eprintln!("SKIPPED {test} on PostgreSQL: no PostgreSQL binaries and no {URL_ENV}");
        return None;
    };
    Some(Store::connect_postgres(&fresh_database(&base).await, 8).await.expect("connect"))
}
