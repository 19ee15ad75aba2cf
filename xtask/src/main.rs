//! `cargo xtask`: Stride's build and test commands, installing what they need.
//!
//! - `cargo xtask run [-- STRIDE FLAGS]`: builds the dashboard (WASM) and the server, then runs
//!   `stride` with the given flags (default: embedded master/agent, SQLite, 127.0.0.1:8080).
//! - `cargo xtask test`: every check and test: formatting, clippy, unit, property and integration
//!   tests, then the browser tests in Debian's Chromium.
//! - `cargo xtask bench`: the benchmarks of BENCHMARKS.md (release build).
//! - `cargo xtask build [--release]`: only build the site and the server.
//!
//! The WASM is built with cargo and turned into the browser's JS/WASM pair with
//! `wasm-bindgen-cli-support` used as a library, so no extra tool needs installing.

mod postgres;

use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};
use std::process::Command;

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let root = workspace_root();
    std::env::set_current_dir(&root)?;
    match args.first().map(String::as_str) {
        Some("run") => {
            let release = args.iter().any(|a| a == "--release");
            let passthrough: Vec<String> = args
                .iter()
                .skip_while(|a| *a != "--")
                .skip(1)
                .cloned()
                .collect();
            build(release)?;
            let status = Command::new(binary(&root, release))
                .args(passthrough)
                .env("STRIDE_SITE_ROOT", root.join("target/site"))
                .status()?;
            std::process::exit(status.code().unwrap_or(1));
        }
        Some("build") => build(args.iter().any(|a| a == "--release")),
        Some("test") => test(&root),
        Some("bench") => bench(&args[1..]),
        _ => {
            eprintln!("usage: cargo xtask run [--release] [-- stride flags] | test | bench | build [--release]");
            std::process::exit(2);
        }
    }
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives in the workspace")
        .to_path_buf()
}

fn binary(root: &Path, release: bool) -> PathBuf {
    root.join("target")
        .join(if release { "release" } else { "debug" })
        .join("stride")
}

fn run(cmd: &mut Command) -> Result<()> {
    eprintln!("$ {cmd:?}");
    let status = cmd.status().with_context(|| format!("starting {cmd:?}"))?;
    if !status.success() {
        bail!("{cmd:?} failed with {status}");
    }
    Ok(())
}

fn cargo() -> Command {
    Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
}

fn output(cmd: &mut Command) -> Result<String> {
    let out = cmd.output().with_context(|| format!("starting {cmd:?}"))?;
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn ensure_wasm_target() -> Result<()> {
    let installed = output(Command::new("rustup").args(["target", "list", "--installed"]))?;
    if !installed
        .lines()
        .any(|l| l.trim() == "wasm32-unknown-unknown")
    {
        run(Command::new("rustup").args(["target", "add", "wasm32-unknown-unknown"]))?;
    }
    Ok(())
}

/// The dashboard: `target/site/pkg/{stride.js, stride_bg.wasm, stride.css}`.
fn build_site(release: bool) -> Result<()> {
    ensure_wasm_target()?;
    let mut cmd = cargo();
    cmd.args([
        "build",
        "-p",
        "frontend",
        "--lib",
        "--target",
        "wasm32-unknown-unknown",
    ]);
    if release {
        cmd.args(["--profile", "wasm-release"]);
    }
    run(&mut cmd)?;
    let profile_dir = if release { "wasm-release" } else { "debug" };
    let wasm = PathBuf::from(format!(
        "target/wasm32-unknown-unknown/{profile_dir}/frontend.wasm"
    ));
    let pkg = PathBuf::from("target/site/pkg");
    std::fs::create_dir_all(&pkg)?;
    wasm_bindgen_cli_support::Bindgen::new()
        .input_path(&wasm)
        .out_name("stride")
        .web(true)?
        .generate(&pkg)
        .context("generating the JS bindings of the dashboard")?;
    std::fs::copy("style/stride.css", pkg.join("stride.css")).context("copying the stylesheet")?;
    Ok(())
}

fn build(release: bool) -> Result<()> {
    build_site(release)?;
    let mut cmd = cargo();
    cmd.args(["build", "-p", "server"]);
    if release {
        cmd.arg("--release");
    }
    run(&mut cmd)
}

/// Installs the Debian `package` unless `binary` is there already.
fn ensure_debian_package(binary: &str, package: &str) -> Result<()> {
    if Path::new(binary).exists() {
        return Ok(());
    }
    apt_install(package)
}

fn apt_install(package: &str) -> Result<()> {
    run(Command::new("apt-get").arg("update"))?;
    run(Command::new("apt-get")
        .args(["install", "-y", "--no-install-recommends", package])
        .env("DEBIAN_FRONTEND", "noninteractive"))
}

fn ensure_npm_packages() -> Result<()> {
    if Path::new("end2end/node_modules/@playwright/test").exists() {
        return Ok(());
    }
    let mut cmd = Command::new("npm");
    cmd.current_dir("end2end")
        .env("PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD", "1");
    if Path::new("end2end/package-lock.json").exists() {
        cmd.args(["ci", "--no-audit", "--no-fund"]);
    } else {
        cmd.args(["install", "--no-audit", "--no-fund"]);
    }
    run(&mut cmd)
}

fn test(root: &Path) -> Result<()> {
    run(cargo().args(["fmt", "--all", "--check"]))?;
    build(false)?;
    run(cargo().args([
        "clippy",
        "--workspace",
        "--exclude",
        "frontend",
        "--all-targets",
        "--",
        "-D",
        "warnings",
    ]))?;
    run(cargo().args([
        "clippy",
        "-p",
        "frontend",
        "--target",
        "wasm32-unknown-unknown",
        "--",
        "-D",
        "warnings",
    ]))?;
    // The frontend only builds for the browser; building it with the server would unify the
    // `app` crate's `ssr` and `hydrate` features.
    // The metrics tests check the Prometheus output with `promtool`.
    ensure_debian_package("/usr/bin/promtool", "prometheus")?;
    // The DNS test asks the built-in DNS server through dnspython, a real resolver library.
    ensure_debian_package(
        "/usr/lib/python3/dist-packages/dns/resolver.py",
        "python3-dnspython",
    )?;
    // marathon-lb itself is on neither PyPI nor Debian, so the discovery test writes the HAProxy
    // configuration from what marathon-lb's poll mode reads and checks Debian's HAProxy routes it.
    ensure_debian_package("/usr/sbin/haproxy", "haproxy")?;
    // The container tests fill a registry on loopback with images they build from a static
    // busybox (umoci builds, skopeo pushes); the built-in agents run containers with runc, and
    // DOCKER containers through podman serving the Docker API.
    for (binary, package) in [
        ("/usr/bin/podman", "podman"),
        // The bearer-token test's token server signs with openssl.
        ("/usr/bin/openssl", "openssl"),
        ("/usr/bin/docker-registry", "docker-registry"),
        ("/usr/bin/umoci", "umoci"),
        ("/usr/bin/skopeo", "skopeo"),
        ("/usr/sbin/runc", "runc"),
        ("/usr/share/doc/busybox-static", "busybox-static"),
    ] {
        ensure_debian_package(binary, package)?;
    }
    // Store tests run on both backends; the HA tests put several Strides on one Postgres.
    let postgres = postgres::TestPostgres::start()?;
    run(cargo()
        .args(["test", "--workspace", "--exclude", "frontend"])
        .env(TEST_POSTGRES, &postgres.url))?;
    // The foundation's integration suite once more, with Stride subscribed over HTTP to a
    // `stride master` process instead of its in-process master, its state in Postgres, and
    // elected leader (alone) by the Postgres election.
    run(cargo()
        .args(["test", "-p", "server", "--test", "api", "--test", "events"])
        .env("STRIDE_TEST_MASTER", "http")
        .env("STRIDE_TEST_STORE", "postgres")
        .env(TEST_POSTGRES, &postgres.url))?;
    ensure_debian_package("/usr/bin/chromium", "chromium")?;
    ensure_npm_packages()?;
    run(Command::new("npx")
        .args(["playwright", "test"])
        .current_dir("end2end")
        .env("STRIDE_BIN", binary(root, false))
        .env("STRIDE_SITE_ROOT", root.join("target/site"))
        .env(TEST_POSTGRES, &postgres.url))
}

/// Where the tests find the throwaway Postgres (a URL of its `postgres` database).
const TEST_POSTGRES: &str = "STRIDE_TEST_POSTGRES";

/// The benchmarks need only the server, built for release by the test harness itself.
fn bench(args: &[String]) -> Result<()> {
    // The load balancer's benchmark drives nginx tasks with wrk.
    ensure_debian_package("/usr/bin/wrk", "wrk")?;
    ensure_debian_package("/usr/sbin/nginx", "nginx-light")?;
    let postgres = postgres::TestPostgres::start()?;
    run(cargo()
        .env(TEST_POSTGRES, &postgres.url)
        .args([
            "test",
            "--release",
            "-p",
            "server",
            "--test",
            "bench",
            "--test",
            "bench_events",
            "--test",
            "bench_ha",
            "--test",
            "bench_lb",
            "--test",
            "bench_containers",
            "--",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .args(args))
}
