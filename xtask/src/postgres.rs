//! A throwaway PostgreSQL cluster for the tests: Debian's server binaries (installed when
//! missing), a fresh data dir under the temp dir, a free loopback port, run as the `postgres`
//! user when we are root (the server refuses root), stopped and removed on drop.

use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};
use std::process::Command;

pub struct TestPostgres {
    bin: PathBuf,
    dir: PathBuf,
    pub url: String,
}

/// The newest `/usr/lib/postgresql/<version>/bin` that has `initdb`.
fn server_binaries() -> Option<PathBuf> {
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|entry| {
            let entry = entry.ok()?;
            let version = entry.file_name().to_str()?.parse().ok()?;
            let bin = entry.path().join("bin");
            bin.join("initdb").exists().then_some((version, bin))
        })
        .collect();
    versions.sort();
    versions.pop().map(|(_, bin)| bin)
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|out| String::from_utf8_lossy(&out.stdout).trim() == "0")
}

/// `program args…` in `dir`, as the `postgres` user when we are root (in a directory of its
/// own: it may not enter ours).
fn as_server_user(program: &Path, dir: &Path) -> Command {
    let mut cmd = if is_root() {
        let mut cmd = Command::new("runuser");
        cmd.args(["-u", "postgres", "--"]).arg(program);
        cmd
    } else {
        Command::new(program)
    };
    cmd.current_dir(dir);
    cmd
}

fn free_port() -> Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

impl TestPostgres {
    pub fn start() -> Result<TestPostgres> {
        let bin = match server_binaries() {
            Some(bin) => bin,
            None => {
                super::apt_install("postgresql")?;
                server_binaries().context("postgresql is installed but has no initdb")?
            }
        };
        let dir = std::env::temp_dir().join(format!(
            "stride-test-postgres-{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)?
                .as_nanos()
        ));
        std::fs::create_dir_all(&dir)?;
        let mut cluster = TestPostgres {
            bin,
            dir,
            url: String::new(),
        };
        if is_root() {
            super::run(Command::new("chown").arg("postgres:").arg(&cluster.dir))?;
        }
        let data = cluster.dir.join("data");
        super::run(
            as_server_user(&cluster.bin.join("initdb"), &cluster.dir)
                .args([
                    "-A",
                    "trust",
                    "-U",
                    "postgres",
                    "--no-sync",
                    "-E",
                    "UTF8",
                    "-D",
                ])
                .arg(&data)
                .stdout(std::process::Stdio::null()),
        )?;
        let port = free_port()?;
        let options = format!(
            "-c listen_addresses=127.0.0.1 -p {port} -c unix_socket_directories={} \
             -c fsync=off -c synchronous_commit=off -c full_page_writes=off \
             -c max_connections=500 -c shared_buffers=128MB",
            cluster.dir.display()
        );
        let started = super::run(
            as_server_user(&cluster.bin.join("pg_ctl"), &cluster.dir)
                .arg("-D")
                .arg(&data)
                .arg("-l")
                .arg(cluster.dir.join("server.log"))
                .args(["-w", "-t", "60", "-o", &options, "start"])
                .stdout(std::process::Stdio::null()),
        );
        if let Err(e) = started {
            let log = std::fs::read_to_string(cluster.dir.join("server.log")).unwrap_or_default();
            bail!("starting the test Postgres failed: {e}\n{log}");
        }
        cluster.url = format!("postgres://postgres@127.0.0.1:{port}/postgres");
        Ok(cluster)
    }
}

impl Drop for TestPostgres {
    fn drop(&mut self) {
        let data = self.dir.join("data");
        if data.join("postmaster.pid").exists() {
            let _ = as_server_user(&self.bin.join("pg_ctl"), &self.dir)
                .arg("-D")
                .arg(&data)
                .args(["-m", "immediate", "-w", "stop"])
                .stdout(std::process::Stdio::null())
                .status();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
