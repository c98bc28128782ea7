//! `--postgres start`: a throw-away PostgreSQL server started by the
//! command itself, as `scripts/pg.sh` starts one for the tests: `initdb` and
//! `pg_ctl` from `pg_config --bindir` (or `/usr/lib/postgresql/*/bin`), run
//! as the `postgres` user through `runuser` when the command runs as root
//! (initdb refuses root), on a random loopback port with its socket folder
//! inside its data folder. Stopped (`-m immediate`) and its folder removed
//! when dropped, so also when the run fails.

use anyhow::Context;
use std::path::PathBuf;
use std::process::{Command, Stdio};

/// Ports tried before giving up (another server may hold one).
const START_TRIES: usize = 10;
/// The simulation's nodes each keep a pool of connections; as in
/// `scripts/pg.sh`.
const MAX_CONNECTIONS: u32 = 600;

/// A running throw-away server.
pub struct ThrowawayPg {
    bin: PathBuf,
    dir: PathBuf,
    as_postgres: bool,
    started: bool,
    /// The admin URL (`postgres` database, trust authentication).
    pub url: String,
    /// `postgres --version`.
    pub version: String,
}

fn bindir() -> Option<PathBuf> {
    let mut candidates = Vec::new();
    if let Ok(out) = Command::new("pg_config").arg("--bindir").output()
        && out.status.success()
    {
        candidates.push(PathBuf::from(
            String::from_utf8_lossy(&out.stdout).trim().to_string(),
        ));
    }
    if let Ok(rd) = std::fs::read_dir("/usr/lib/postgresql") {
        let mut found: Vec<PathBuf> = rd
            .filter_map(Result::ok)
            .map(|e| e.path().join("bin"))
            .collect();
        // The newest major version first.
        found.sort();
        found.reverse();
        candidates.extend(found);
    }
    candidates
        .into_iter()
        .find(|d| d.join("initdb").is_file() && d.join("pg_ctl").is_file())
}

fn is_root() -> bool {
    use std::os::unix::fs::MetadataExt as _;
    std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}

impl ThrowawayPg {
    pub fn start() -> anyhow::Result<Self> {
        let bin = bindir().context(
            "--postgres start: PostgreSQL's server programs (initdb, pg_ctl) were not found; \
             install them (Debian: apt-get install postgresql) or pass --postgres URL",
        )?;
        let dir = std::env::temp_dir().join(format!(
            "pasaporte-sim-pg-{}-{}",
            std::process::id(),
            uuid::Uuid::now_v7()
        ));
        std::fs::create_dir_all(&dir)?;
        // From here on, dropping `pg` removes the folder.
        let mut pg = Self {
            bin,
            dir,
            as_postgres: is_root(),
            started: false,
            url: String::new(),
            version: String::new(),
        };
        if pg.as_postgres {
            let ok = Command::new("chown")
                .arg("postgres:")
                .arg(&pg.dir)
                .status()
                .is_ok_and(|s| s.success());
            anyhow::ensure!(
                ok,
                "--postgres start: cannot give {} to the postgres user",
                pg.dir.display()
            );
        }
        let data = pg.dir.join("data");
        let out = pg
            .command("initdb")
            .arg("-D")
            .arg(&data)
            .args([
                "-U",
                "postgres",
                "-A",
                "trust",
                "--no-sync",
                "-E",
                "UTF8",
                "--locale=C.UTF-8",
            ])
            .stdin(Stdio::null())
            .output()
            .context("running initdb")?;
        anyhow::ensure!(
            out.status.success(),
            "--postgres start: initdb failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        for _ in 0..START_TRIES {
            let r = crate::crypto::random_bytes::<2>()?;
            let port = 20_000 + u16::from_le_bytes(r) % 20_000;
            let opts = format!(
                "-c listen_addresses=127.0.0.1 -p {port} -k {} -c max_connections={MAX_CONNECTIONS} -c shared_buffers=128MB",
                data.display()
            );
            let ok = pg
                .command("pg_ctl")
                .arg("-D")
                .arg(&data)
                .arg("-l")
                .arg(pg.dir.join("server.log"))
                .args(["-w", "-t", "30", "-o", &opts, "start"])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success());
            if ok {
                pg.started = true;
                pg.url = format!("postgres://postgres@127.0.0.1:{port}/postgres");
                pg.version = Command::new(pg.bin.join("postgres"))
                    .arg("--version")
                    .output()
                    .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
                    .unwrap_or_default();
                return Ok(pg);
            }
        }
        let log = std::fs::read_to_string(pg.dir.join("server.log")).unwrap_or_default();
        anyhow::bail!("--postgres start: PostgreSQL did not start: {log}")
    }

    fn command(&self, tool: &str) -> Command {
        let path = self.bin.join(tool);
        if self.as_postgres {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(path);
            c
        } else {
            Command::new(path)
        }
    }
}

impl Drop for ThrowawayPg {
    fn drop(&mut self) {
        if self.started {
            let _ = self
                .command("pg_ctl")
                .arg("-D")
                .arg(self.dir.join("data"))
                .args(["-m", "immediate", "stop"])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
