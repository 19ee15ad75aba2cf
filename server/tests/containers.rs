//! Containers on the built-in agent: MESOS containers of images pulled from a registry on
//! loopback (Debian's `docker-registry`), which each test fills with an image it builds itself
//! from Debian's static busybox (`umoci` builds it, `skopeo` pushes it); runc runs them. The
//! store keeps what running containers use and collects the rest.

mod common;

use common::images::{build_image, mounts_under, run, walk, Registry, PAGE};
use common::{eventually, Stride};
use futures::StreamExt;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::Command;

fn container_app(id: &str, image: &str, cmd: &str) -> Value {
    json!({
        "id": id,
        "cmd": cmd,
        "cpus": 0.05,
        "mem": 32,
        "instances": 1,
        "container": {"type": "MESOS", "docker": {"image": image}},
    })
}

/// The app's last task failure message, once there is one.
async fn failure_of(stride: &Stride, app: &str) -> String {
    eventually(&format!("{app} has a task failure"), || async {
        let (_, body) = stride
            .get(&format!("/v2/apps{app}?embed=app.lastTaskFailure"))
            .await;
        body["app"]["lastTaskFailure"]["message"]
            .as_str()
            .map(str::to_owned)
    })
    .await
}

#[tokio::test]
async fn an_image_runs_in_its_own_root_file_system_and_survives_a_stride_restart() {
    let built = tempfile::tempdir().unwrap();
    let layout = build_image(built.path());
    let registry = Registry::start(None).await;
    let image = registry.push(&layout, "test/busybox:1", None);
    let mut stride = Stride::start_with(&[
        "--insecure-registry",
        &registry.address(),
        "--image-gc-after-seconds",
        "1",
    ])
    .await;
    let cmd = "ls / > $MESOS_SANDBOX/root.txt; id -u >> $MESOS_SANDBOX/root.txt; \
               exec httpd -f -p 127.0.0.1:$PORT0 -h /www";
    let mut updates = stride.events("?event_type=status_update_event", None).await;
    let (status, body) = stride
        .post("/v2/apps", &container_app("/web", &image, cmd).to_string())
        .await;
    assert_eq!(status, 201, "{body}");
    let task = stride.wait_running("/web", 1).await.remove(0);

    // The pull showed as the task's state before it ran.
    let mut states = Vec::new();
    while !states.iter().any(|(state, _)| state == "TASK_RUNNING") {
        let update = tokio::time::timeout(std::time::Duration::from_secs(10), updates.next())
            .await
            .expect("status updates up to TASK_RUNNING")
            .expect("the event stream stays open");
        let data: Value = serde_json::from_str(&update.data).unwrap();
        states.push((
            data["taskStatus"].to_string().replace('"', ""),
            data["message"].clone(),
        ));
    }
    assert_eq!(
        states.first(),
        Some(&(
            "TASK_STARTING".to_string(),
            json!(format!("Pulling image {image}"))
        )),
        "{states:?}"
    );
    let task_id = task["id"].as_str().unwrap().to_owned();
    let port = task["ports"][0].as_u64().unwrap();
    let page = || async {
        let url = format!("http://127.0.0.1:{port}/");
        reqwest::get(&url).await.ok()?.text().await.ok()
    };
    assert_eq!(eventually("the container serves", page).await, PAGE);

    // It sees the image's root and the sandbox (where it wrote the listing), nothing of the host's.
    let listing = std::fs::read_to_string(stride.sandbox(&task_id).join("root.txt")).unwrap();
    let entries: Vec<&str> = listing.lines().collect();
    for wanted in ["bin", "www", "etc", "mnt", "proc", "dev"] {
        assert!(entries.contains(&wanted), "{wanted} in {entries:?}");
    }
    for host_only in ["usr", "home", "work", "root"] {
        assert!(!entries.contains(&host_only), "{host_only} in {entries:?}");
    }

    // kill -9 of Stride: the container keeps running and is re-adopted.
    stride.kill9();
    assert_eq!(
        page().await.as_deref(),
        Some(PAGE),
        "serving while Stride is down"
    );
    stride.launch().await;
    let again = stride.wait_running("/web", 1).await.remove(0);
    assert_eq!(again["id"], task_id.as_str(), "the same task, re-adopted");
    assert_eq!(page().await.as_deref(), Some(PAGE));

    // The collector (every second here) leaves the image of a running container alone.
    let store = stride.data_dir.join("images");
    let entries = |dir: &str| std::fs::read_dir(store.join(dir)).map_or(0, |d| d.count());
    tokio::time::sleep(std::time::Duration::from_millis(2500)).await;
    assert_eq!(
        entries("refs"),
        1,
        "the image stays while its container runs"
    );
    assert_eq!(entries("layers/sha256"), 1);

    // Deleting the app kills the container and leaves no mount or container directory.
    let (status, _) = stride.delete("/v2/apps/web").await;
    assert_eq!(status, 200);
    eventually("the container is gone", || async {
        let gone = page().await.is_none()
            && mounts_under(&stride.data_dir).is_empty()
            && !stride
                .data_dir
                .join("agent/containers")
                .join(&task_id)
                .exists();
        gone.then_some(())
    })
    .await;

    // Then no container uses the image, and it is collected with its layers.
    let store = stride.data_dir.join("images");
    let entries = |dir: &str| std::fs::read_dir(store.join(dir)).map_or(0, |d| d.count());
    assert_eq!(
        entries("refs"),
        1,
        "the image stayed while its container ran"
    );
    eventually("the unused image is collected", || async {
        (entries("refs") == 0 && entries("layers/sha256") == 0).then_some(())
    })
    .await;
}

#[tokio::test]
async fn pulls_use_credentials_fail_with_the_registrys_reason_and_reuse_the_cache() {
    let built = tempfile::tempdir().unwrap();
    let layout = build_image(built.path());
    let registry = Registry::start(Some(("ops", "s3cret"))).await;
    let image = registry.push(&layout, "team/busybox:1", Some("ops:s3cret"));
    let stride = Stride::start_with(&["--insecure-registry", &registry.address()]).await;
    let sleeper = "exec sleep 1000";

    // Without credentials the registry says no, and the task fails saying so.
    let (status, _) = stride
        .post(
            "/v2/apps",
            &container_app("/anonymous", &image, sleeper).to_string(),
        )
        .await;
    assert_eq!(status, 201);
    let refused = failure_of(&stride, "/anonymous").await;
    assert!(
        refused.contains("pulling") && refused.contains("team/busybox"),
        "{refused}"
    );
    stride.delete("/v2/apps/anonymous?force=true").await;

    // A tag the registry does not have.
    let mut missing = container_app("/missing", &image.replace(":1", ":2"), sleeper);
    missing["container"]["docker"]["credential"] = json!({"principal": "ops", "secret": "s3cret"});
    stride.post("/v2/apps", &missing.to_string()).await;
    let unknown = failure_of(&stride, "/missing").await;
    assert!(
        unknown.to_lowercase().contains("manifest unknown"),
        "{unknown}"
    );
    stride.delete("/v2/apps/missing?force=true").await;

    // With credentials it runs; then a second app of the image starts with the registry gone.
    let mut with_credential = container_app("/first", &image, sleeper);
    with_credential["container"]["docker"]["credential"] =
        json!({"principal": "ops", "secret": "s3cret"});
    stride.post("/v2/apps", &with_credential.to_string()).await;
    stride.wait_running("/first", 1).await;
    drop(registry);
    let mut second = with_credential.clone();
    second["id"] = json!("/second");
    stride.post("/v2/apps", &second.to_string()).await;
    stride.wait_running("/second", 1).await;
}

#[tokio::test]
async fn pulls_get_a_bearer_token_from_the_registrys_token_server() {
    let built = tempfile::tempdir().unwrap();
    let layout = build_image(built.path());
    let registry = Registry::start_with_tokens(("ops", "s3cret")).await;
    let image = registry.push(&layout, "team/tokened:1", Some("ops:s3cret"));
    let stride = Stride::start_with(&["--insecure-registry", &registry.address()]).await;

    // The token server gives nothing without the password, so neither does the registry.
    stride
        .post(
            "/v2/apps",
            &container_app("/tokenless", &image, "exec sleep 1000").to_string(),
        )
        .await;
    let refused = failure_of(&stride, "/tokenless").await;
    assert!(
        refused.contains("pulling") && refused.contains("team/tokened"),
        "{refused}"
    );

    // With the credential, the token it gets lets the pull through.
    let mut app = container_app("/tokened", &image, "exec sleep 1000");
    app["container"]["docker"]["credential"] = json!({"principal": "ops", "secret": "s3cret"});
    let (status, body) = stride.post("/v2/apps", &app.to_string()).await;
    assert_eq!(status, 201, "{body}");
    stride.wait_running("/tokened", 1).await;
}

/// `container.volumes` with a `hostPath` are bound into a MESOS container: an absolute
/// `containerPath` in its root file system, a relative one in its sandbox; `RO` is read-only.
#[tokio::test]
async fn host_paths_are_bound_into_mesos_containers() {
    let built = tempfile::tempdir().unwrap();
    let layout = build_image(built.path());
    let registry = Registry::start(None).await;
    let image = registry.push(&layout, "test/volumes:1", None);
    let stride = Stride::start_with(&["--insecure-registry", &registry.address()]).await;
    let shared = tempfile::tempdir().unwrap();
    std::fs::write(shared.path().join("greeting"), "hello from the host").unwrap();
    let out = tempfile::tempdir().unwrap();
    let cmd = "cat /srv/shared/greeting > $MESOS_SANDBOX/out/copied; \
               touch /srv/shared/written 2> $MESOS_SANDBOX/out/refused; \
               touch $MESOS_SANDBOX/out/done; exec sleep 1000";
    let mut app = container_app("/volumes", &image, cmd);
    app["container"]["volumes"] = json!([
        {"containerPath": "/srv/shared", "hostPath": shared.path(), "mode": "RO"},
        {"containerPath": "out", "hostPath": out.path(), "mode": "RW"}
    ]);
    let (status, body) = stride.post("/v2/apps", &app.to_string()).await;
    assert_eq!(status, 201, "{body}");
    stride.wait_running("/volumes", 1).await;
    let copied = eventually("the container wrote into the sandbox volume", || async {
        out.path().join("done").exists().then_some(())?;
        std::fs::read_to_string(out.path().join("copied")).ok()
    })
    .await;
    assert_eq!(copied, "hello from the host");
    let refused = std::fs::read_to_string(out.path().join("refused")).unwrap();
    assert!(refused.contains("Read-only"), "{refused}");
    assert!(!shared.path().join("written").exists());
    let (status, _) = stride.delete("/v2/apps/volumes").await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn a_layer_that_does_not_match_its_digest_fails_the_task() {
    let built = tempfile::tempdir().unwrap();
    let layout = build_image(built.path());
    let registry = Registry::start(None).await;
    let image = registry.push(&layout, "test/corrupt:1", None);
    // The biggest blob is the layer (busybox); flip its last byte in the registry's storage.
    let layer = registry.blobs().remove(0);
    let mut bytes = std::fs::read(&layer).unwrap();
    *bytes.last_mut().unwrap() ^= 0xff;
    std::fs::write(&layer, bytes).unwrap();
    let stride = Stride::start_with(&["--insecure-registry", &registry.address()]).await;
    stride
        .post(
            "/v2/apps",
            &container_app("/corrupt", &image, "sleep 1000").to_string(),
        )
        .await;
    let failure = failure_of(&stride, "/corrupt").await;
    assert!(failure.contains("layer sha256:"), "{failure}");
    assert!(failure.to_lowercase().contains("digest"), "{failure}");
    // Nothing half-unpacked is left to be taken for the layer later.
    let layers = stride.data_dir.join("images/layers/sha256");
    let left: Vec<PathBuf> = std::fs::read_dir(&layers)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .collect();
    assert!(left.is_empty(), "{left:?}");
}

/// `stride image load` of an archive into Stride's data dir.
fn load(stride: &Stride, archive: &Path, name: Option<&str>) -> std::process::Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_stride"));
    command.args(["image", "load"]).arg(archive);
    if let Some(name) = name {
        command.args(["--name", name]);
    }
    command
        .arg("--data-dir")
        .arg(&stride.data_dir)
        .output()
        .unwrap()
}

#[tokio::test]
async fn images_load_from_docker_save_and_oci_archives_without_a_registry() {
    let built = tempfile::tempdir().unwrap();
    let layout = build_image(built.path());
    let oci_archive = built.path().join("oci.tar");
    run(Command::new("tar")
        .arg("-C")
        .arg(&layout)
        .arg("-cf")
        .arg(&oci_archive)
        .arg("."));
    let saved = built.path().join("saved.tar");
    run(Command::new("skopeo").args([
        "copy",
        "--quiet",
        &format!("oci:{}:bb", layout.display()),
        &format!("docker-archive:{}:team/saved:1", saved.display()),
    ]));
    let stride = Stride::start().await;

    // An OCI layout does not name its image: without --name it is refused, saying so.
    let unnamed = load(&stride, &oci_archive, None);
    assert!(!unnamed.status.success());
    assert!(String::from_utf8_lossy(&unnamed.stderr).contains("--name"));
    let loaded = load(&stride, &oci_archive, Some("localhost/team/oci:1"));
    assert!(loaded.status.success(), "{loaded:?}");
    assert_eq!(
        String::from_utf8_lossy(&loaded.stdout),
        "loaded localhost/team/oci:1\n"
    );
    let loaded = load(&stride, &saved, None);
    assert!(loaded.status.success(), "{loaded:?}");
    assert_eq!(
        String::from_utf8_lossy(&loaded.stdout),
        "loaded docker.io/team/saved:1\n"
    );

    for (app, image) in [("/oci", "localhost/team/oci:1"), ("/saved", "team/saved:1")] {
        let cmd = "exec httpd -f -p 127.0.0.1:$PORT0 -h /www";
        let (status, body) = stride
            .post("/v2/apps", &container_app(app, image, cmd).to_string())
            .await;
        assert_eq!(status, 201, "{body}");
        let port = stride.wait_running(app, 1).await[0]["ports"][0]
            .as_u64()
            .unwrap();
        let page = eventually(&format!("{app} serves"), || async move {
            let url = format!("http://127.0.0.1:{port}/");
            reqwest::get(&url).await.ok()?.text().await.ok()
        })
        .await;
        assert_eq!(page, PAGE);
    }

    // A blob that does not match its digest is refused, and nothing is stored for it.
    let corrupt = built.path().join("corrupt");
    run(Command::new("cp").arg("-a").arg(&layout).arg(&corrupt));
    let biggest = walk(&corrupt.join("blobs/sha256"))
        .into_iter()
        .max_by_key(|blob| std::fs::metadata(blob).unwrap().len())
        .unwrap();
    let mut bytes = std::fs::read(&biggest).unwrap();
    *bytes.last_mut().unwrap() ^= 0xff;
    std::fs::write(&biggest, bytes).unwrap();
    let corrupt_archive = built.path().join("corrupt.tar");
    run(Command::new("tar")
        .arg("-C")
        .arg(&corrupt)
        .arg("-cf")
        .arg(&corrupt_archive)
        .arg("."));
    let refused = load(&stride, &corrupt_archive, Some("localhost/team/corrupt:1"));
    assert!(!refused.status.success());
    let said = String::from_utf8_lossy(&refused.stderr);
    assert!(said.contains("does not match its digest"), "{said}");
    let (_, body) = stride
        .post(
            "/v2/apps",
            &container_app("/corrupt", "localhost/team/corrupt:1", "sleep 1000").to_string(),
        )
        .await;
    assert_eq!(body["id"], "/corrupt");
    let failure = failure_of(&stride, "/corrupt").await;
    assert!(failure.contains("localhost/team/corrupt:1"), "{failure}");
}
