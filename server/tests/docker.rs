//! DOCKER containers on the built-in agent, through a Docker-API engine: Debian's podman
//! serving the Docker API (`podman system service`) on a socket of the test's own, with its
//! storage in the test's directory and the loopback registry (see `common::images`) allowed
//! over plain HTTP. Podman runs containers with runc: Debian's crun refuses this machine's
//! hybrid cgroups.

mod common;

use common::images::{build_image, run, Registry, PAGE};
use common::{eventually, Stride};
use futures::StreamExt;
use serde_json::{json, Value};
use std::path::Path;
use std::process::{Child, Command, Stdio};

/// `podman system service` on a unix socket in a directory of its own.
struct Podman {
    /// The service, once it serves.
    child: Option<Child>,
    dir: tempfile::TempDir,
}

impl Podman {
    async fn start(insecure_registry: &str) -> Podman {
        let mut podman = Podman::configured(insecure_registry);
        podman.serve().await;
        podman
    }

    /// Its configuration and storage, with nothing serving on its socket yet.
    fn configured(insecure_registry: &str) -> Podman {
        let dir = tempfile::tempdir().unwrap();
        // Podman asks for more open files and processes than a process without
        // CAP_SYS_RESOURCE may have: the containers get this process's own hard limits.
        let hard = |resource| {
            let mut limit = libc::rlimit {
                rlim_cur: 0,
                rlim_max: 0,
            };
            // SAFETY: getrlimit only writes `limit`.
            unsafe { libc::getrlimit(resource, &mut limit) };
            limit.rlim_max.min(32768)
        };
        let (files, processes) = (hard(libc::RLIMIT_NOFILE), hard(libc::RLIMIT_NPROC));
        std::fs::write(
            dir.path().join("containers.conf"),
            format!(
                "[containers]\ndefault_ulimits = [\"nofile={files}:{files}\", \
                 \"nproc={processes}:{processes}\"]\n[engine]\nruntime = \"runc\"\n"
            ),
        )
        .unwrap();
        std::fs::write(
            dir.path().join("registries.conf"),
            format!("[[registry]]\nlocation = \"{insecure_registry}\"\ninsecure = true\n"),
        )
        .unwrap();
        Podman { child: None, dir }
    }

    /// Starts the service and waits until it answers on its socket.
    async fn serve(&mut self) {
        let log = std::fs::File::create(self.dir.path().join("podman.log")).unwrap();
        let socket = self.dir.path().join("docker.sock");
        let child = self
            .command()
            .args(["system", "service", "--time=0"])
            .arg(format!("unix://{}", socket.display()))
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("podman (Debian's podman package)");
        self.child = Some(child);
        eventually("podman serves the Docker API", || async {
            std::os::unix::net::UnixStream::connect(&socket)
                .ok()
                .map(|_| ())
        })
        .await;
    }

    fn command_in(dir: &Path) -> Command {
        let mut command = Command::new("podman");
        command
            .arg("--root")
            .arg(dir.join("root"))
            .arg("--runroot")
            .arg(dir.join("run"))
            .env("CONTAINERS_CONF", dir.join("containers.conf"))
            .env("CONTAINERS_REGISTRIES_CONF", dir.join("registries.conf"));
        command
    }

    /// The podman command line on this engine's storage.
    fn command(&self) -> Command {
        Self::command_in(self.dir.path())
    }

    fn socket(&self) -> String {
        self.dir.path().join("docker.sock").display().to_string()
    }

    /// The names of the engine's containers, running or not.
    fn containers(&self) -> Vec<String> {
        let output = self
            .command()
            .args(["ps", "-a", "--format", "{{.Names}}"])
            .output()
            .unwrap();
        String::from_utf8_lossy(&output.stdout)
            .lines()
            .map(str::to_owned)
            .collect()
    }
}

impl Drop for Podman {
    fn drop(&mut self) {
        let _ = self
            .command()
            .args(["rm", "--all", "--force", "--time", "0"])
            .output();
        if let Some(child) = &mut self.child {
            let _ = child.kill();
            let _ = child.wait();
        }
        // Podman's storage mounts go with it, so that the directory can be removed.
        let mut mounts = common::images::mounts_under(self.dir.path());
        mounts.sort_by_key(|mount| std::cmp::Reverse(mount.len()));
        for mount in mounts {
            let _ = Command::new("umount").arg("-l").arg(&mount).output();
        }
    }
}

fn docker_app(id: &str, image: &str, cmd: &str) -> Value {
    json!({
        "id": id,
        "cmd": cmd,
        "cpus": 0.05,
        "mem": 32,
        "instances": 1,
        "container": {
            "type": "DOCKER",
            "docker": {"image": image},
            "portMappings": [{"containerPort": 80, "hostPort": 0, "name": "http"}]
        },
        "networks": [{"mode": "container/bridge"}]
    })
}

async fn page_at(port: u64) -> Option<String> {
    let url = format!("http://127.0.0.1:{port}/");
    reqwest::get(&url).await.ok()?.text().await.ok()
}

#[tokio::test]
async fn docker_apps_run_bridged_through_the_engine_and_survive_a_stride_restart() {
    let built = tempfile::tempdir().unwrap();
    let layout = build_image(built.path());
    let registry = Registry::start(None).await;
    let image = registry.push(&layout, "test/web:1", None);
    let podman = Podman::start(&registry.address()).await;
    let mut stride = Stride::start_with(&["--docker-socket", &podman.socket()]).await;
    let mut updates = stride.events("?event_type=status_update_event", None).await;
    let cmd = "echo $MESOS_SANDBOX > $MESOS_SANDBOX/where; echo serving; \
               exec httpd -f -p 80 -h /www";
    let (status, body) = stride
        .post("/v2/apps", &docker_app("/web", &image, cmd).to_string())
        .await;
    assert_eq!(status, 201, "{body}");
    let task = stride.wait_running("/web", 1).await.remove(0);
    let task_id = task["id"].as_str().unwrap().to_owned();
    let port = task["ports"][0].as_u64().unwrap();
    assert_ne!(port, 80, "a host port from the offer: {task}");

    // The engine pulled the image first, which showed as the task's state.
    let first = tokio::time::timeout(std::time::Duration::from_secs(10), updates.next())
        .await
        .unwrap()
        .unwrap();
    let first: Value = serde_json::from_str(&first.data).unwrap();
    assert_eq!(first["taskStatus"], "TASK_STARTING");
    assert_eq!(first["message"], format!("Pulling image {image}").as_str());

    // Port 80 in the container is the task's host port; the sandbox is where Mesos puts it,
    // and the container's output is in the sandbox's files.
    let served = eventually("the container serves on its host port", || page_at(port)).await;
    assert_eq!(served, PAGE);
    let sandbox = stride.sandbox(&task_id);
    let where_ = std::fs::read_to_string(sandbox.join("where")).unwrap();
    assert_eq!(where_.trim(), "/mnt/mesos/sandbox");
    eventually("the container's output in the sandbox", || async {
        let stdout = std::fs::read_to_string(sandbox.join("stdout")).ok()?;
        stdout.contains("serving").then_some(())
    })
    .await;
    let name = format!("mesos-{task_id}");
    assert_eq!(podman.containers(), vec![name.clone()]);

    // kill -9 of Stride: the container serves on, and the task is re-adopted.
    stride.kill9();
    assert_eq!(page_at(port).await.as_deref(), Some(PAGE));
    stride.launch().await;
    let again = stride.wait_running("/web", 1).await.remove(0);
    assert_eq!(again["id"], task_id.as_str(), "the same task, re-adopted");

    // A container removed behind Stride's back: the task is lost, and replaced.
    run(podman
        .command()
        .args(["rm", "--force", "--time", "0", &name]));
    let failure = eventually("the task is reported lost", || async {
        let (_, body) = stride.get("/v2/apps/web?embed=app.lastTaskFailure").await;
        let failure = body["app"]["lastTaskFailure"].clone();
        (failure["taskId"] == task_id.as_str()).then_some(failure)
    })
    .await;
    assert_eq!(failure["state"], "TASK_LOST", "{failure}");
    assert!(
        failure["message"]
            .as_str()
            .unwrap()
            .contains("gone from the Docker engine"),
        "{failure}"
    );
    let replacement = eventually("a replacement runs", || async {
        let tasks = stride.tasks("/web").await;
        tasks
            .into_iter()
            .find(|t| t["id"] != task_id.as_str() && t["state"] == "TASK_RUNNING")
    })
    .await;
    let port = replacement["ports"][0].as_u64().unwrap();
    let served = eventually("the replacement serves", || page_at(port)).await;
    assert_eq!(served, PAGE);

    // Deleting the app stops the container through the engine and removes it.
    let (status, _) = stride.delete("/v2/apps/web").await;
    assert_eq!(status, 200);
    eventually("no container is left", || async {
        podman.containers().is_empty().then_some(())
    })
    .await;
    assert_eq!(page_at(port).await, None);
}

/// Without an engine, a DOCKER app waits, and says why in the queue and the dashboard; once
/// the engine answers, it runs.
#[tokio::test]
async fn without_an_engine_docker_apps_wait_saying_so_until_one_answers() {
    let built = tempfile::tempdir().unwrap();
    let layout = build_image(built.path());
    let registry = Registry::start(None).await;
    let image = registry.push(&layout, "test/web:1", None);
    let mut podman = Podman::configured(&registry.address());
    let stride = Stride::start_with(&[
        "--docker-socket",
        &podman.socket(),
        "--agent-hostname",
        "engineless",
    ])
    .await;
    let (status, body) = stride
        .post(
            "/v2/apps",
            &docker_app("/later", &image, "exec httpd -f -p 80 -h /www").to_string(),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    eventually("the queue to say no agent has an engine", || async {
        let (_, queue) = stride.get("/v2/queue").await;
        let summary = &queue["queue"][0]["processedOffersSummary"];
        let refused = summary["rejectSummaryLastOffers"]
            .as_array()?
            .iter()
            .find(|r| r["reason"] == "NoDockerEngine")?
            .clone();
        (refused["declined"].as_u64()? >= 1).then_some(())
    })
    .await;
    let page = stride
        .http
        .get(stride.url("/"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        page.contains("no Docker engine on agent engineless"),
        "the dashboard says why: {page}"
    );
    assert!(
        page.contains(&podman.socket()),
        "and where it looked: {page}"
    );
    let (_, app) = stride.get("/v2/apps/later?embed=app.lastTaskFailure").await;
    assert_eq!(app["app"]["tasksStaged"], 0, "nothing launched: {app}");
    assert!(app["app"].get("lastTaskFailure").is_none(), "{app}");

    // Only Marathon's reasons for an app that is not DOCKER.
    let (status, body) = stride
        .post(
            "/v2/apps",
            &json!({"id": "/huge", "cmd": "sleep 100", "cpus": 1000}).to_string(),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    eventually("the other app's queue entry", || async {
        let (_, queue) = stride.get("/v2/queue").await;
        let item = queue["queue"]
            .as_array()?
            .iter()
            .find(|item| item["app"]["id"] == "/huge")?
            .clone();
        let reasons = item["processedOffersSummary"]["rejectSummaryLastOffers"].as_array()?;
        let names: Vec<&str> = reasons
            .iter()
            .filter_map(|r| r["reason"].as_str())
            .collect();
        (names.contains(&"InsufficientCpus") && !names.contains(&"NoDockerEngine")).then_some(())
    })
    .await;

    podman.serve().await;
    let task = stride.wait_running("/later", 1).await.remove(0);
    let port = task["ports"][0].as_u64().unwrap();
    let served = eventually("the container serves", || page_at(port)).await;
    assert_eq!(served, PAGE);
    let (status, _) = stride.delete("/v2/apps/later").await;
    assert_eq!(status, 200);
    eventually("no container is left", || async {
        podman.containers().is_empty().then_some(())
    })
    .await;
}
