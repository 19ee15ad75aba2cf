//! Several agents in the built-in master (`--agent`): constraints place across them, and an
//! agent cut off (`POST /master/agents/{hostname}/disconnect`) has its instances replaced
//! elsewhere as the app's `unreachableStrategy` says, with exactly the target left when it is
//! back.

mod common;

use common::{eventually, Stride};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// Four agents: two racks, two zones (as attributes, and as fault domains), each with room for
/// a few tasks.
async fn four_agents() -> Stride {
    Stride::start_with(&[
        "--agent",
        "node-1;rack:r1;zone:za;@region:eu;@zone:east",
        "--agent",
        "node-2;rack:r1;zone:zb;@region:eu;@zone:west",
        "--agent",
        "node-3;rack:r2;zone:za;@region:eu;@zone:east",
        "--agent",
        "node-4;rack:r2;zone:zb;@region:eu;@zone:west",
        "--agent-resources",
        "cpus:2;mem:2048",
    ])
    .await
}

async fn create(stride: &Stride, app: Value) {
    let (status, body) = stride.post("/v2/apps", &app.to_string()).await;
    assert_eq!(status, 201, "{body}");
}

/// How many of the app's running tasks each host has.
async fn hosts_of(stride: &Stride, app: &str) -> BTreeMap<String, usize> {
    let mut hosts = BTreeMap::new();
    for task in stride.tasks(app).await {
        if task["state"] == "TASK_RUNNING" {
            *hosts
                .entry(task["host"].as_str().unwrap().to_string())
                .or_default() += 1;
        }
    }
    hosts
}

fn rack_of(host: &str) -> &'static str {
    match host {
        "node-1" | "node-2" => "r1",
        _ => "r2",
    }
}

#[tokio::test]
async fn constraints_place_across_four_agents_and_wait_with_a_reason() {
    let stride = four_agents().await;
    let (_, state) = stride.get("/master/state").await;
    let hostnames: Vec<&str> = state["slaves"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["hostname"].as_str().unwrap())
        .collect();
    assert_eq!(hostnames, ["node-1", "node-2", "node-3", "node-4"]);
    assert_eq!(
        state["slaves"][2]["attributes"],
        json!({"rack": "r2", "zone": "za"})
    );

    // One per agent; a fifth cannot go anywhere and says why.
    create(
        &stride,
        json!({"id": "/unique", "cmd": "echo \"$HOST\" > host.txt; sleep 1000", "instances": 4,
               "cpus": 0.1, "mem": 16, "constraints": [["hostname", "UNIQUE"]]}),
    )
    .await;
    let tasks = stride.wait_running("/unique", 4).await;
    let hosts = hosts_of(&stride, "/unique").await;
    assert_eq!(hosts.len(), 4, "{hosts:?}");
    for task in &tasks {
        let sandbox = stride.sandbox(task["id"].as_str().unwrap());
        let seen = eventually("the task writing its HOST", || async {
            std::fs::read_to_string(sandbox.join("host.txt"))
                .ok()
                .filter(|s| !s.is_empty())
        })
        .await;
        assert_eq!(
            seen.trim(),
            task["host"],
            "a task sees its agent's hostname"
        );
        assert!(
            sandbox.starts_with(stride.data_dir.join("agents").join(seen.trim())),
            "each agent keeps its own sandboxes"
        );
    }
    let (status, _) = stride.put("/v2/apps/unique", r#"{"instances": 5}"#).await;
    assert_eq!(status, 200);
    stride.wait_unfulfilled_constraint("/unique").await;
    dashboard_says(
        &stride,
        "/apps/unique",
        "of 4 offers did not satisfy the constraint hostname:UNIQUE",
    )
    .await;
    assert_eq!(
        hosts_of(&stride, "/unique").await.values().sum::<usize>(),
        4
    );

    // Spread evenly over the racks, also when scaled up.
    create(
        &stride,
        json!({"id": "/spread", "cmd": "sleep 1000", "instances": 4, "cpus": 0.1, "mem": 16,
               "constraints": [["rack", "GROUP_BY", "2"]]}),
    )
    .await;
    stride.wait_running("/spread", 4).await;
    let per_rack = |hosts: BTreeMap<String, usize>| {
        let mut racks = BTreeMap::new();
        for (host, n) in hosts {
            *racks.entry(rack_of(&host)).or_insert(0) += n;
        }
        racks
    };
    assert_eq!(
        per_rack(hosts_of(&stride, "/spread").await),
        BTreeMap::from([("r1", 2), ("r2", 2)])
    );
    let (status, _) = stride.put("/v2/apps/spread", r#"{"instances": 6}"#).await;
    assert_eq!(status, 200);
    stride.wait_running("/spread", 6).await;
    assert_eq!(
        per_rack(hosts_of(&stride, "/spread").await),
        BTreeMap::from([("r1", 3), ("r2", 3)])
    );
    let (status, _) = stride.put("/v2/apps/spread", r#"{"instances": 2}"#).await;
    assert_eq!(status, 200);
    stride.wait_running("/spread", 2).await;
    assert_eq!(
        per_rack(hosts_of(&stride, "/spread").await),
        BTreeMap::from([("r1", 1), ("r2", 1)]),
        "scaling down keeps the racks even"
    );

    // The other operators, each on the agents it names.
    for (id, constraint, instances, allowed) in [
        (
            "/cluster",
            json!(["zone", "CLUSTER", "zb"]),
            2,
            &["node-2", "node-4"][..],
        ),
        (
            "/like",
            json!(["rack", "LIKE", "r[2]"]),
            2,
            &["node-3", "node-4"][..],
        ),
        (
            "/unlike",
            json!(["hostname", "UNLIKE", "node-[123]"]),
            2,
            &["node-4"][..],
        ),
        (
            "/is",
            json!(["zone", "IS", "za"]),
            2,
            &["node-1", "node-3"][..],
        ),
        (
            "/maxper",
            json!(["rack", "MAX_PER", "1"]),
            2,
            &["node-1", "node-2", "node-3", "node-4"][..],
        ),
    ] {
        create(
            &stride,
            json!({"id": id, "cmd": "sleep 1000", "instances": instances, "cpus": 0.05,
                   "mem": 8, "constraints": [constraint]}),
        )
        .await;
        stride.wait_running(id, instances).await;
        let hosts = hosts_of(&stride, id).await;
        assert!(
            hosts.keys().all(|h| allowed.contains(&h.as_str())),
            "{id}: {hosts:?} outside {allowed:?}"
        );
    }
    let racks = per_rack(hosts_of(&stride, "/maxper").await);
    assert_eq!(racks, BTreeMap::from([("r1", 1), ("r2", 1)]));
    let (status, _) = stride.put("/v2/apps/maxper", r#"{"instances": 3}"#).await;
    assert_eq!(status, 200);
    stride.wait_unfulfilled_constraint("/maxper").await;
    dashboard_says(
        &stride,
        "/apps/maxper",
        "did not satisfy the constraint rack:MAX_PER:1",
    )
    .await;
}

/// Waits until the dashboard's page at `path`, as the server renders it, contains `words`;
/// returns that page.
async fn dashboard_says(stride: &Stride, path: &str, words: &str) -> String {
    eventually(&format!("{path} saying {words:?}"), || async {
        let page = reqwest::get(stride.url(path))
            .await
            .ok()?
            .text()
            .await
            .ok()?;
        page.contains(words).then_some(page)
    })
    .await
}

/// On a master of its own (here `stride master`; the same holds for Apache Mesos) Stride knows
/// the agents from their offers and its tasks: the Agents page lists them, with what runs there,
/// and offers no fault injection, which is the built-in master's.
#[tokio::test]
async fn the_agents_page_of_a_stride_on_a_master_of_its_own() {
    let stride = Stride::start_remote(&[
        "--agent",
        "node-1;rack:r1",
        "--agent",
        "node-2;rack:r2",
        "--agent-resources",
        "cpus:2;mem:2048",
    ])
    .await;
    create(
        &stride,
        json!({"id": "/spread", "cmd": "sleep 600", "cpus": 0.1, "mem": 16, "instances": 2,
               "constraints": [["hostname", "UNIQUE"]]}),
    )
    .await;
    stride.wait_running("/spread", 2).await;
    let page = dashboard_says(&stride, "/agents", "2 agents").await;
    for host in ["node-1", "node-2"] {
        assert!(
            page.contains(&format!(r#"data-hostname="{host}" data-state="Active""#)),
            "{host} not listed as active: {page}"
        );
    }
    assert!(
        page.contains("rack:r1") && page.contains("rack:r2"),
        "{page}"
    );
    assert_eq!(
        page.matches(r#"running-tasks">1<!> running"#).count(),
        2,
        "{page}"
    );
    assert!(page.contains(r#"data-testid="agents-note""#), "{page}");
    assert!(!page.contains("disconnect-agent"), "{page}");
}

/// The id and host of the app's one task, once it runs.
async fn task_host(stride: &Stride, app: &str) -> (String, String) {
    let task = stride.wait_running(app, 1).await.remove(0);
    (
        task["id"].as_str().unwrap().to_string(),
        task["host"].as_str().unwrap().to_string(),
    )
}

async fn set_reachable(stride: &Stride, host: &str, reachable: bool) {
    let action = if reachable { "reconnect" } else { "disconnect" };
    let (status, body) = stride
        .post(&format!("/master/agents/{host}/{action}"), "")
        .await;
    assert_eq!(status, 200, "{body}");
}

async fn task_states(stride: &Stride, app: &str) -> Vec<(String, String, String)> {
    let mut states: Vec<(String, String, String)> = stride
        .tasks(app)
        .await
        .iter()
        .map(|t| {
            (
                t["id"].as_str().unwrap().to_string(),
                t["host"].as_str().unwrap_or("").to_string(),
                t["state"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    states.sort();
    states
}

#[tokio::test]
async fn a_cut_off_agent_is_replaced_and_exactly_the_target_is_left_when_it_is_back() {
    let stride = four_agents().await;
    create(
        &stride,
        json!({"id": "/web", "cmd": "sleep 1000", "instances": 1, "cpus": 0.1, "mem": 16,
               "unreachableStrategy": {"inactiveAfterSeconds": 2, "expungeAfterSeconds": 600}}),
    )
    .await;
    let (first, host) = task_host(&stride, "/web").await;
    let first_pid = eventually("the task's pid", || async { stride.task_pid(&first) }).await;

    let cut_at = Instant::now();
    set_reachable(&stride, &host, false).await;
    eventually("the task reported unreachable", || async {
        task_states(&stride, "/web")
            .await
            .iter()
            .any(|(id, _, state)| *id == first && state == "TASK_UNREACHABLE")
            .then_some(())
    })
    .await;
    let (_, state) = stride.get("/master/state").await;
    let cut_off = state["slaves"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["hostname"] == host.as_str())
        .unwrap()
        .clone();
    assert_eq!(cut_off["active"], false);
    let replacement = eventually("a replacement on another agent", || async {
        task_states(&stride, "/web")
            .await
            .into_iter()
            .find(|(id, h, state)| *id != first && *h != host && state == "TASK_RUNNING")
    })
    .await;
    let took = cut_at.elapsed();
    assert!(
        took >= Duration::from_millis(1900) && took < Duration::from_secs(4),
        "replaced after inactiveAfterSeconds (2 s), took {took:?}"
    );
    assert!(
        common::process_alive(first_pid),
        "a cut-off agent's processes go on"
    );

    // Back: the older (returned) instance stays, the younger replacement goes.
    set_reachable(&stride, &host, true).await;
    let left = eventually("exactly one task left", || async {
        let states = task_states(&stride, "/web").await;
        (states.len() == 1 && states[0].2 == "TASK_RUNNING").then_some(states)
    })
    .await;
    assert_eq!(
        left[0].0, first,
        "youngest first: the replacement was killed"
    );
    let replacement_pid = stride.task_pid(&replacement.0);
    eventually("the replacement's process gone", || async {
        (!replacement_pid.is_some_and(common::process_alive)).then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(
        task_states(&stride, "/web").await.len(),
        1,
        "it stays at the target"
    );
}

#[tokio::test]
async fn an_expunged_instance_is_killed_when_its_agent_comes_back() {
    let stride = four_agents().await;
    create(
        &stride,
        json!({"id": "/db", "cmd": "sleep 1000", "instances": 1, "cpus": 0.1, "mem": 16,
               "unreachableStrategy": {"inactiveAfterSeconds": 1, "expungeAfterSeconds": 2}}),
    )
    .await;
    let (first, host) = task_host(&stride, "/db").await;
    let pid = eventually("the task's pid", || async { stride.task_pid(&first) }).await;
    set_reachable(&stride, &host, false).await;
    eventually("the instance expunged and replaced", || async {
        let states = task_states(&stride, "/db").await;
        (states.len() == 1 && states[0].0 != first && states[0].2 == "TASK_RUNNING").then_some(())
    })
    .await;
    assert!(common::process_alive(pid));
    set_reachable(&stride, &host, true).await;
    eventually("the forgotten task killed", || async {
        (!common::process_alive(pid)).then_some(())
    })
    .await;
    assert_eq!(task_states(&stride, "/db").await.len(), 1);

    // Disabled: an unreachable instance is waited for, never replaced.
    create(
        &stride,
        json!({"id": "/patient", "cmd": "sleep 1000", "instances": 1, "cpus": 0.1, "mem": 16,
               "unreachableStrategy": "disabled"}),
    )
    .await;
    let (_, app) = stride.get("/v2/apps/patient").await;
    assert_eq!(app["app"]["unreachableStrategy"], "disabled");
    let (_, host) = task_host(&stride, "/patient").await;
    set_reachable(&stride, &host, false).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let states = task_states(&stride, "/patient").await;
    assert_eq!(states.len(), 1, "{states:?}");
    assert_eq!(states[0].2, "TASK_UNREACHABLE");
    set_reachable(&stride, &host, true).await;
    stride.wait_running("/patient", 1).await;
}

#[tokio::test]
async fn agent_flags_are_checked() {
    let (status, body) = Stride::start()
        .await
        .post("/master/agents/nowhere/disconnect", "")
        .await;
    assert_eq!((status, body), (404, json!("No agent 'nowhere'")));
    let data_dir = tempfile::tempdir().unwrap();
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_stride"))
        .args(["--agent", "rack:r1", "--data-dir"])
        .arg(data_dir.path())
        .args(["--http-address", "127.0.0.1:0"])
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("does not start with a hostname"),
        "{stderr}"
    );
}

async fn operator(stride: &Stride, call: Value) -> (u16, Value) {
    stride.post("/api/v1", &call.to_string()).await
}

#[tokio::test]
async fn the_operator_api_lists_agents_and_tasks_and_marks_an_agent_gone() {
    let stride = four_agents().await;
    create(
        &stride,
        json!({"id": "/svc", "cmd": "sleep 1000", "instances": 1, "cpus": 0.1, "mem": 16}),
    )
    .await;
    let (first, host) = task_host(&stride, "/svc").await;
    let pid = eventually("the task's pid", || async { stride.task_pid(&first) }).await;
    let (status, agents) = operator(&stride, json!({"type": "GET_AGENTS"})).await;
    assert_eq!(status, 200, "{agents}");
    let agents = agents["get_agents"]["agents"].as_array().unwrap().clone();
    assert_eq!(agents.len(), 4);
    let agent_id = |hostname: &str| {
        agents
            .iter()
            .find(|a| a["agent_info"]["hostname"] == hostname)
            .unwrap()["agent_info"]["id"]["value"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let (_, tasks) = operator(&stride, json!({"type": "GET_TASKS"})).await;
    let live = &tasks["get_tasks"]["tasks"];
    assert_eq!(live[0]["task_id"]["value"], first.as_str(), "{tasks}");
    assert_eq!(live[0]["agent_id"]["value"], agent_id(&host).as_str());

    // Deactivated agents take nothing new; the task keeps running there.
    let others: Vec<String> = ["node-1", "node-2", "node-3", "node-4"]
        .iter()
        .filter(|h| **h != host)
        .map(|h| h.to_string())
        .collect();
    for other in &others[..2] {
        let call = json!({"type": "DEACTIVATE_AGENT",
                          "deactivate_agent": {"agent_id": {"value": agent_id(other)}}});
        assert_eq!(operator(&stride, call).await.0, 200);
    }
    let (status, _) = operator(
        &stride,
        json!({"type": "MARK_AGENT_GONE", "mark_agent_gone": {"agent_id": {"value": agent_id(&host)}}}),
    )
    .await;
    assert_eq!(status, 200);
    let replaced = eventually("a replacement at once", || async {
        let states = task_states(&stride, "/svc").await;
        (states.len() == 1 && states[0].0 != first && states[0].2 == "TASK_RUNNING")
            .then(|| states[0].clone())
    })
    .await;
    assert_eq!(
        replaced.1, others[2],
        "only the one active agent left takes it"
    );
    eventually("the gone agent's process killed", || async {
        (!common::process_alive(pid)).then_some(())
    })
    .await;
    let (_, agents) = operator(&stride, json!({"type": "GET_AGENTS"})).await;
    assert_eq!(agents["get_agents"]["agents"].as_array().unwrap().len(), 3);

    // Draining kills the agent's tasks; they go where there is room again.
    let call = json!({"type": "REACTIVATE_AGENT",
                      "reactivate_agent": {"agent_id": {"value": agent_id(&others[0])}}});
    assert_eq!(operator(&stride, call).await.0, 200);
    let call = json!({"type": "DRAIN_AGENT",
                      "drain_agent": {"agent_id": {"value": agent_id(&others[2])}}});
    assert_eq!(operator(&stride, call).await.0, 200);
    eventually("the drained agent's task moved", || async {
        let states = task_states(&stride, "/svc").await;
        (states.len() == 1 && states[0].1 == others[0] && states[0].2 == "TASK_RUNNING")
            .then_some(())
    })
    .await;
    let (status, body) = operator(
        &stride,
        json!({"type": "MARK_AGENT_GONE", "mark_agent_gone": {"agent_id": {"value": "nope"}}}),
    )
    .await;
    assert_eq!((status, body), (404, json!("Agent nope not found")));
    let (status, _) = operator(&stride, json!({"type": "MARK_AGENT_GONE"})).await;
    assert_eq!(status, 400);
}
