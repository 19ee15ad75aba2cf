//! Resident apps (persistent volumes) on the built-in master: the first launch reserves
//! resources and creates the volume on one agent; the instance relaunches there, with its data,
//! after a kill, a `kill -9` of Stride and a scale to 0 and back; deleting the app destroys the
//! volume and gives the reservation back.

mod common;

use common::{eventually, Stride};
use serde_json::{json, Value};
use std::path::PathBuf;

async fn two_agents() -> Stride {
    Stride::start_with(&[
        "--agent",
        "node-1;rack:r1",
        "--agent",
        "node-2;rack:r2",
        "--agent-resources",
        "cpus:2;mem:1024;disk:1024",
        "--mesos-role",
        "*,data,other",
    ])
    .await
}

fn resident_app() -> Value {
    json!({
        "id": "/db",
        "role": "data",
        "cmd": "echo run >> data/runs && sleep 1000",
        "cpus": 0.1,
        "mem": 32,
        "container": {
            "type": "MESOS",
            "volumes": [{"containerPath": "data", "mode": "RW", "persistent": {"size": 16}}]
        }
    })
}

/// The one running task of `/db`, once it is there: its id and host.
async fn running_task(stride: &Stride, not: Option<&str>) -> (String, String) {
    eventually("a running /db task", || async {
        let tasks = stride.tasks("/db").await;
        let task = tasks.iter().find(|t| {
            t["state"] == "TASK_RUNNING" && Some(t["id"].as_str().unwrap_or("")) != not
        })?;
        Some((
            task["id"].as_str()?.to_string(),
            task["host"].as_str()?.to_string(),
        ))
    })
    .await
}

/// The lines the app's tasks wrote into the volume, read through the task's sandbox.
async fn runs(stride: &Stride, task_id: &str, expected: usize) {
    let file: PathBuf = stride.sandbox(task_id).join("data/runs");
    eventually(&format!("{expected} runs in the volume"), || async {
        let text = std::fs::read_to_string(&file).ok()?;
        (text.lines().count() == expected).then_some(())
    })
    .await;
}

/// The reservations `/master/state` lists per agent hostname: (role, persistence ids).
async fn reservations(stride: &Stride) -> Vec<(String, String, Vec<String>)> {
    let (_, state) = stride.get("/master/state").await;
    let mut out = Vec::new();
    for agent in state["slaves"].as_array().unwrap() {
        let Some(roles) = agent["reserved_resources_full"].as_object() else {
            continue;
        };
        for (role, resources) in roles {
            let volumes = resources
                .as_array()
                .unwrap()
                .iter()
                .filter_map(|r| r.pointer("/disk/persistence/id")?.as_str())
                .map(str::to_string)
                .collect();
            out.push((
                agent["hostname"].as_str().unwrap().to_string(),
                role.clone(),
                volumes,
            ));
        }
    }
    out
}

#[tokio::test]
async fn a_resident_app_stays_on_its_agent_with_its_data_until_deleted() {
    let mut stride = two_agents().await;
    let (status, body) = stride.post("/v2/apps", &resident_app().to_string()).await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["unreachableStrategy"], "disabled");
    assert_eq!(
        body["upgradeStrategy"],
        json!({"minimumHealthCapacity": 0.5, "maximumOverCapacity": 0.0})
    );
    assert_eq!(body["residency"]["taskLostBehavior"], "WAIT_FOREVER");

    let (first, host) = running_task(&stride, None).await;
    runs(&stride, &first, 1).await;
    let held = reservations(&stride).await;
    assert_eq!(held.len(), 1, "{held:?}");
    assert_eq!(
        (held[0].0.as_str(), held[0].1.as_str()),
        (host.as_str(), "data")
    );
    assert_eq!(held[0].2.len(), 1, "one volume: {held:?}");
    assert!(held[0].2[0].starts_with("db#data#"), "{held:?}");

    // A killed task comes back on the same agent, to the same volume.
    let (status, body) = stride.delete(&format!("/v2/apps/db/tasks/{first}")).await;
    assert_eq!(status, 200, "{body}");
    let (second, second_host) = running_task(&stride, Some(&first)).await;
    assert_eq!(second_host, host);
    assert!(second.ends_with("._app.2"), "{second}");
    runs(&stride, &second, 2).await;

    // Stride killed with -9 comes back to the same reservation: the task is adopted, and the
    // next relaunch is there again.
    stride.kill9();
    stride.launch().await;
    let (adopted, _) = running_task(&stride, None).await;
    assert_eq!(adopted, second);
    stride.delete(&format!("/v2/apps/db/tasks/{second}")).await;
    let (third, third_host) = running_task(&stride, Some(&second)).await;
    assert_eq!(third_host, host);
    runs(&stride, &third, 3).await;

    // Scaled to 0 the instance stops and keeps its reservation; scaled back, it resumes there.
    let (status, body) = stride.put("/v2/apps/db", r#"{"instances": 0}"#).await;
    assert_eq!(status, 200, "{body}");
    stride.wait_deployments_done().await;
    eventually("no /db task running", || async {
        let tasks = stride.tasks("/db").await;
        (!tasks.iter().any(|t| t["state"] == "TASK_RUNNING")).then_some(())
    })
    .await;
    assert_eq!(reservations(&stride).await, held, "the reservation is kept");
    let (status, body) = stride.put("/v2/apps/db", r#"{"instances": 1}"#).await;
    assert_eq!(status, 200, "{body}");
    let (fourth, fourth_host) = running_task(&stride, Some(&third)).await;
    assert_eq!(fourth_host, host);
    assert_eq!(
        fourth.split("._app.").next(),
        first.split("._app.").next(),
        "the same instance"
    );
    runs(&stride, &fourth, 4).await;
    let volume_dirs: Vec<PathBuf> = stride
        .agent_dirs()
        .iter()
        .map(|dir| dir.join("volumes/roles/data").join(&held[0].2[0]))
        .filter(|dir| dir.exists())
        .collect();
    assert_eq!(volume_dirs.len(), 1, "the volume lives in its agent's dir");

    // Deleting the app destroys the volume and unreserves.
    let (status, body) = stride.delete("/v2/apps/db").await;
    assert_eq!(status, 200, "{body}");
    eventually("the reservation given back", || async {
        reservations(&stride).await.is_empty().then_some(())
    })
    .await;
    assert!(!volume_dirs[0].exists(), "the volume's data is deleted");
}

/// The volumes `/master/state` lists: (persistence id, how its size is held to).
async fn volume_bounds(stride: &Stride) -> Vec<(String, String)> {
    let (_, state) = stride.get("/master/state").await;
    state["slaves"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|agent| {
            agent["persistent_volumes"]
                .as_array()
                .cloned()
                .unwrap_or_default()
        })
        .map(|v| {
            (
                v["persistence_id"].as_str().unwrap().to_string(),
                v["size_enforcement"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect()
}

/// A task cannot write more than its volume's size (8 MiB here): the volume is an ext4 file
/// system of that size, loop-mounted, which this machine allows (Stride runs as root). The
/// mount outlives Stride, and a volume found unmounted when the agent starts (as after a
/// reboot) is mounted again, its data there.
#[tokio::test]
async fn a_volume_holds_no_more_than_its_size() {
    let mut stride = two_agents().await;
    let mut app = resident_app();
    app["cmd"] = json!(
        "dd if=/dev/zero of=data/fill bs=1M count=16 2> data/dd.err; echo done > data/ran; sleep 1000"
    );
    app["container"]["volumes"][0]["persistent"]["size"] = json!(8);
    let (status, body) = stride.post("/v2/apps", &app.to_string()).await;
    assert_eq!(status, 201, "{body}");
    let (task, _) = running_task(&stride, None).await;
    let data = stride.sandbox(&task).join("data");
    eventually("the task done writing", || async {
        data.join("ran").exists().then_some(())
    })
    .await;
    let written = std::fs::metadata(data.join("fill")).unwrap().len();
    assert!(
        written < 8 * 1024 * 1024,
        "{written} bytes written to an 8 MiB volume"
    );
    let error = std::fs::read_to_string(data.join("dd.err")).unwrap();
    assert!(error.contains("No space left on device"), "{error}");
    let bounds = volume_bounds(&stride).await;
    assert_eq!(bounds.len(), 1, "{bounds:?}");
    assert_eq!(
        bounds[0].1, "enforced: loop-mounted ext4 of the volume's size",
        "{bounds:?}"
    );

    // Stride down, the volume unmounted behind its back; back up, the agent mounts it again.
    stride.kill9();
    let volume = std::fs::canonicalize(&data).unwrap();
    common::unmount_under(&volume);
    assert!(
        !volume.join("ran").exists(),
        "unmounted, the directory is empty"
    );
    stride.launch().await;
    eventually("the volume mounted again", || async {
        volume.join("ran").exists().then_some(())
    })
    .await;

    let (status, body) = stride.delete("/v2/apps/db").await;
    assert_eq!(status, 200, "{body}");
    eventually("the volume destroyed", || async {
        volume_bounds(&stride).await.is_empty().then_some(())
    })
    .await;
    assert!(!volume.exists(), "the volume's directory is gone");
    let image = format!("{}.ext4", volume.display());
    assert!(!std::path::Path::new(&image).exists(), "its image is gone");
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(
        !mounts.contains(volume.to_str().unwrap()),
        "still mounted: {mounts}"
    );
}

#[tokio::test]
async fn resident_apps_follow_marathons_rules() {
    let stride = two_agents().await;
    let invalid = |change: Value| {
        let mut app = resident_app();
        for (key, value) in change.as_object().unwrap() {
            app[key] = value.clone();
        }
        app
    };
    let cases = [
        (
            invalid(json!({"role": "*"})),
            "/role",
            "Resident apps cannot have the role *",
        ),
        (
            invalid(
                json!({"unreachableStrategy": {"inactiveAfterSeconds": 1, "expungeAfterSeconds": 2}}),
            ),
            "/unreachableStrategy",
            "unreachableStrategy must be disabled for resident tasks",
        ),
        (
            invalid(json!({"container": {"type": "MESOS", "volumes": [
                {"containerPath": "a/b", "mode": "RW", "persistent": {"size": 16}}]}})),
            "/container/volumes(0)/containerPath",
            "value must not contain \"/\"",
        ),
        (
            invalid(json!({"container": {"type": "MESOS", "volumes": [
                {"containerPath": "data", "mode": "RO", "persistent": {"size": 0}}]}})),
            "/container/volumes(0)/mode",
            "must be RW",
        ),
        (
            invalid(json!({"container": {"type": "MESOS", "volumes": [
                {"containerPath": "data", "mode": "RW",
                 "persistent": {"size": 16, "maxSize": 32}}]}})),
            "/container/volumes(0)/persistent",
            "Only mount volumes can have maxSize",
        ),
        (
            invalid(json!({"container": {"type": "MESOS", "volumes": [
                {"containerPath": "data", "mode": "RW",
                 "persistent": {"type": "mount", "size": 16, "maxSize": 16}}]}})),
            "/container/volumes(0)/persistent",
            "Max size must be larger than size",
        ),
        (
            invalid(json!({"container": {"type": "MESOS", "volumes": [
                {"containerPath": "data", "mode": "RW",
                 "persistent": {"size": 16, "constraints": [["path", "LIKE", "/ssd"]]}}]}})),
            "/container/volumes(0)/persistent",
            "Constraints on root volumes are not supported",
        ),
        (
            invalid(json!({"container": {"type": "MESOS", "volumes": [
                {"containerPath": "data", "mode": "RW",
                 "persistent": {"type": "path", "size": 16, "constraints": [["path", "LIKE", "(ssd"]]}}]}})),
            "/container/volumes(0)/persistent/constraints(0)",
            "Invalid regular expression",
        ),
        (
            invalid(json!({"container": {"type": "MESOS", "volumes": [
                {"containerPath": "data", "mode": "RW",
                 "persistent": {"type": "mount", "size": 16, "constraints": [["path", "UNIQUE", "x"]]}}]}})),
            "/container/volumes(0)/persistent/constraints(0)",
            "Operator must be one of LIKE, UNLIKE",
        ),
        (
            invalid(json!({"container": {"type": "MESOS", "volumes": [
                {"containerPath": "data", "mode": "RW",
                 "persistent": {"type": "mount", "size": 16, "constraints": [["rack", "LIKE", "x"]]}}]}})),
            "/container/volumes(0)/persistent/constraints(0)",
            "Unsupported constraint rack,LIKE,x",
        ),
    ];
    for (app, path, error) in cases {
        let (status, body) = stride.post("/v2/apps", &app.to_string()).await;
        assert_eq!(status, 422, "{app}: {body}");
        let details = body["details"].as_array().unwrap();
        assert!(
            details
                .iter()
                .any(|d| d["path"] == path
                    && d["errors"].as_array().unwrap().iter().any(|e| e == error)),
            "{app}: {body}"
        );
    }
    let (status, body) = stride.post("/v2/apps", &resident_app().to_string()).await;
    assert_eq!(status, 201, "{body}");
    let (status, body) = stride.put("/v2/apps/db", r#"{"cpus": 0.2}"#).await;
    assert_eq!(status, 422, "{body}");
    assert!(
        body.to_string()
            .contains("may not change resource requirements"),
        "{body}"
    );
    let (status, body) = stride
        .put(
            "/v2/apps/db",
            &json!({"container": {"type": "MESOS", "volumes": [
                {"containerPath": "other", "mode": "RW", "persistent": {"size": 16}}]}})
            .to_string(),
        )
        .await;
    assert_eq!(status, 422, "{body}");
    assert!(
        body.to_string()
            .contains("Persistent volumes can not be changed!"),
        "{body}"
    );
    // The same rules hold for a change made through the app's group.
    let mut bigger = resident_app();
    bigger["cpus"] = json!(0.2);
    let (status, body) = stride
        .put("/v2/groups", &json!({"apps": [bigger]}).to_string())
        .await;
    assert_eq!(status, 422, "{body}");
    assert!(
        body.to_string()
            .contains("may not change resource requirements"),
        "{body}"
    );
    let (_, app) = stride.get("/v2/apps/db").await;
    assert_eq!(app["app"]["cpus"], 0.1, "unchanged: {app}");

    // A role change needs force; then the instance stays on its reservation, of the old role.
    let (_, host) = running_task(&stride, None).await;
    let (status, body) = stride.put("/v2/apps/db", r#"{"role": "other"}"#).await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["details"][0]["path"], "/role", "{body}");
    let words = body["details"][0]["errors"][0].as_str().unwrap();
    assert!(
        words.contains("continue to run under the previous role, data")
            && words.ends_with("retry your request with ?force=true"),
        "{body}"
    );
    let (status, body) = stride
        .put("/v2/apps/db?force=true", r#"{"role": "other"}"#)
        .await;
    assert_eq!(status, 200, "{body}");
    stride.wait_deployments_done().await;
    let (_, again) = running_task(&stride, None).await;
    assert_eq!(again, host, "relaunched on its reservation");
    let held = reservations(&stride).await;
    assert_eq!(held.len(), 1, "{held:?}");
    assert_eq!(
        held[0].1, "data",
        "the reservation keeps its role: {held:?}"
    );
}

/// Each agent's disks beside its root disk, in Mesos' JSON form: two PATH disks and three
/// MOUNT disks of different sizes, under the agent's own work dir.
const AGENT_DISKS: &str = r#"[
    {"name": "cpus", "type": "SCALAR", "scalar": {"value": 2}},
    {"name": "mem", "type": "SCALAR", "scalar": {"value": 1024}},
    {"name": "disk", "type": "SCALAR", "scalar": {"value": 1024}},
    {"name": "disk", "type": "SCALAR", "scalar": {"value": 64},
     "disk": {"source": {"type": "PATH", "path": {"root": "disks/ssd"}}}},
    {"name": "disk", "type": "SCALAR", "scalar": {"value": 512},
     "disk": {"source": {"type": "PATH", "path": {"root": "disks/hdd"}}}},
    {"name": "disk", "type": "SCALAR", "scalar": {"value": 32},
     "disk": {"source": {"type": "MOUNT", "mount": {"root": "disks/small"}}}},
    {"name": "disk", "type": "SCALAR", "scalar": {"value": 64},
     "disk": {"source": {"type": "MOUNT", "mount": {"root": "disks/m1"}}}},
    {"name": "disk", "type": "SCALAR", "scalar": {"value": 256},
     "disk": {"source": {"type": "MOUNT", "mount": {"root": "disks/big"}}}}
]"#;

/// The volumes `/master/state` lists with their disks: (kind, root, size, size enforcement).
async fn volumes_on_disks(stride: &Stride) -> Vec<(String, String, f64, String)> {
    let (_, state) = stride.get("/master/state").await;
    let mut out: Vec<(String, String, f64, String)> = state["slaves"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|agent| {
            agent["persistent_volumes"]
                .as_array()
                .cloned()
                .unwrap_or_default()
        })
        .map(|v| {
            let text = |pointer: &str| v.pointer(pointer).and_then(Value::as_str).unwrap_or("");
            (
                text("/disk_source/kind").to_string(),
                text("/disk_source/root").to_string(),
                v["size"].as_f64().unwrap(),
                text("/size_enforcement").to_string(),
            )
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

/// `path` and `mount` volumes go on the disks the agents declare: a mount volume on the
/// smallest MOUNT disk between its size and maxSize, taking it whole (an ext4 of the disk's
/// size is loop-mounted on the disk's root); a path volume on the PATH disk its constraint
/// allows, under the disk's root. The data stays through a relaunch; a volume that no disk
/// can hold waits with InsufficientDisk; deleting the app empties the disks again.
#[tokio::test]
async fn path_and_mount_volumes_go_on_the_disks_agents_declare() {
    let stride = Stride::start_with(&[
        "--agent",
        "node-1;rack:r1",
        "--agent",
        "node-2;rack:r2",
        "--agent-resources",
        AGENT_DISKS,
        "--mesos-role",
        "*,data",
    ])
    .await;
    let mut app = resident_app();
    app["cmd"] = json!("echo run >> data/runs && echo log >> logs/lines && sleep 1000");
    app["container"]["volumes"] = json!([
        {"containerPath": "data", "mode": "RW",
         "persistent": {"type": "mount", "size": 40, "maxSize": 100}},
        {"containerPath": "logs", "mode": "RW",
         "persistent": {"type": "path", "size": 8, "constraints": [["path", "LIKE", ".*/disks/ssd"]]}}
    ]);
    let (status, body) = stride.post("/v2/apps", &app.to_string()).await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(
        body["container"]["volumes"], app["container"]["volumes"],
        "the app's volumes as given"
    );
    let (first, host) = running_task(&stride, None).await;
    runs(&stride, &first, 1).await;
    let agent_dir = stride
        .agent_dirs()
        .into_iter()
        .find(|dir| dir.ends_with(&host))
        .expect("the task's agent dir");
    let agent_dir = std::fs::canonicalize(agent_dir).unwrap();
    let mount_root = agent_dir.join("disks/m1");
    let volumes = volumes_on_disks(&stride).await;
    assert_eq!(
        volumes,
        vec![
            (
                "MOUNT".to_string(),
                mount_root.display().to_string(),
                64.0,
                "enforced: loop-mounted ext4 of the volume's size".to_string()
            ),
            (
                "PATH".to_string(),
                agent_dir.join("disks/ssd").display().to_string(),
                8.0,
                "enforced: loop-mounted ext4 of the volume's size".to_string()
            ),
        ]
    );
    assert_eq!(
        std::fs::read_to_string(mount_root.join("runs")).unwrap(),
        "run\n",
        "the mount volume is the disk's root"
    );
    let path_volumes = agent_dir.join("disks/ssd/volumes/roles/data");
    let path_volume = std::fs::read_dir(&path_volumes)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| p.is_dir())
        .expect("the path volume under the PATH disk's root");
    assert_eq!(
        std::fs::read_to_string(path_volume.join("lines")).unwrap(),
        "log\n"
    );
    // Reserved whole, on its disk, as Mesos lists it.
    let (_, state) = stride.get("/master/state").await;
    let reserved = state.to_string();
    assert!(
        reserved.contains(r#""type":"MOUNT""#)
            && reserved.contains(&mount_root.display().to_string()),
        "{state}"
    );

    // Relaunched on the same agent, to the same disks.
    let (status, body) = stride.delete(&format!("/v2/apps/db/tasks/{first}")).await;
    assert_eq!(status, 200, "{body}");
    let (second, second_host) = running_task(&stride, Some(&first)).await;
    assert_eq!(second_host, host);
    runs(&stride, &second, 2).await;

    // No MOUNT disk of 300 MiB or more: the app waits, and says why.
    let mut big = resident_app();
    big["id"] = json!("/big");
    big["container"]["volumes"][0]["persistent"] = json!({"type": "mount", "size": 300});
    let (status, body) = stride.post("/v2/apps", &big.to_string()).await;
    assert_eq!(status, 201, "{body}");
    eventually("/big to wait for disk", || async {
        let (_, queue) = stride.get("/v2/queue").await;
        let item = queue["queue"]
            .as_array()?
            .iter()
            .find(|i| i["app"]["id"] == "/big")?
            .clone();
        let disk = item["processedOffersSummary"]["rejectSummaryLastOffers"]
            .as_array()?
            .iter()
            .find(|r| r["reason"] == "InsufficientDisk")?
            .clone();
        (disk["declined"].as_u64()? >= 1).then_some(())
    })
    .await;
    let (status, body) = stride.delete("/v2/apps/big?force=true").await;
    assert_eq!(status, 200, "{body}");

    let (status, body) = stride.delete("/v2/apps/db").await;
    assert_eq!(status, 200, "{body}");
    eventually("the volumes destroyed", || async {
        volumes_on_disks(&stride).await.is_empty().then_some(())
    })
    .await;
    assert!(!path_volume.exists(), "the path volume is deleted");
    assert_eq!(
        std::fs::read_dir(&mount_root).unwrap().count(),
        0,
        "the mount disk's root stays, empty"
    );
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(
        !mounts.contains(mount_root.to_str().unwrap()),
        "still mounted: {mounts}"
    );
}
