//! Marathon's own Python client against Stride. Its models raise on any field they do not
//! know, so every answer it parses is checked for fields Marathon would not send.
//!
//! The client (`marathon==0.13.0` from PyPI) is installed into a virtualenv under
//! `~/.cache/stride/marathon-python` the first time.

mod common;

use common::Stride;
use std::path::PathBuf;
use std::process::Command;

const CLIENT: &str = "marathon==0.13.0";

/// A Python with the client installed: the cached virtualenv, made if missing.
fn python_with_client() -> PathBuf {
    let home = std::env::var("HOME").unwrap_or_else(|_| "/root".into());
    let cache = std::env::var("XDG_CACHE_HOME")
        .map_or_else(|_| PathBuf::from(home).join(".cache"), PathBuf::from);
    let venv = cache.join("stride/marathon-python");
    let python = venv.join("bin/python");
    let marker = venv.join(CLIENT);
    if marker.exists() {
        return python;
    }
    let run = |cmd: &mut Command| {
        let status = cmd.status().expect("running python");
        assert!(status.success(), "{cmd:?} failed");
    };
    run(Command::new("python3").args(["-m", "venv"]).arg(&venv));
    run(Command::new(&python).args([
        "-m",
        "pip",
        "install",
        "--quiet",
        "--disable-pip-version-check",
        CLIENT,
    ]));
    std::fs::write(&marker, "").expect("marking the virtualenv complete");
    python
}

#[tokio::test]
async fn marathons_python_client_parses_every_answer() {
    let python = tokio::task::spawn_blocking(python_with_client)
        .await
        .unwrap();
    let stride = Stride::start_with(&["--agent-hostname", "127.0.0.1"]).await;
    let script =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/marathon_client/exercise.py");
    let output = tokio::process::Command::new(python)
        .arg(script)
        .env("STRIDE_URL", &stride.base)
        .kill_on_drop(true)
        .output()
        .await
        .expect("running the client");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "the client failed:\n{stdout}\n{stderr}"
    );
    assert!(stdout.contains("all answers parsed"), "{stdout}\n{stderr}");
}
