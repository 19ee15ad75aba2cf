//! Service discovery on the built-in master: service ports handed out as Marathon does (unique,
//! kept across updates, in the task JSON and the environment), and the built-in load balancer
//! on them (every healthy task gets traffic, an unhealthy one none, a killed one is routed
//! around and finishes the connection it has), and Debian's HAProxy configured from what
//! marathon-lb's poll mode reads of the API.
//!
//! Each task runs [`common::DRAINING_WEB_SERVER`].

mod common;

use common::{eventually, Stride};
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::time::Duration;

fn web_app(id: &str, instances: u32) -> Value {
    json!({
        "id": id,
        "cmd": common::DRAINING_WEB_SERVER,
        "cpus": 0.05,
        "mem": 32,
        "instances": instances,
        "taskKillGracePeriodSeconds": 10,
        "healthChecks": [{
            "protocol": "HTTP", "path": "/id", "portIndex": 0,
            "gracePeriodSeconds": 30, "intervalSeconds": 1, "timeoutSeconds": 1,
            "maxConsecutiveFailures": 1000
        }]
    })
}

/// The app's service ports as `GET /v2/apps/{id}` shows them.
async fn service_ports_of(stride: &Stride, app: &str) -> Vec<u64> {
    let (_, body) = stride.get(&format!("/v2/apps{app}")).await;
    body["app"]["portDefinitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|pd| pd["port"].as_u64().unwrap())
        .collect()
}

#[tokio::test]
async fn service_ports_are_unique_and_stay_across_updates() {
    let stride =
        Stride::start_with(&["--local-port-min", "10100", "--local-port-max", "10106"]).await;
    let two_ports = json!([{"port": 0, "name": "http"}, {"port": 0}]);
    let (status, body) = stride
        .post(
            "/v2/apps",
            &json!({"id": "/a", "cmd": "env > env.txt; sleep 1000", "cpus": 0.01, "mem": 16,
                    "portDefinitions": two_ports})
            .to_string(),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let ports: Vec<u64> = body["portDefinitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|pd| pd["port"].as_u64().unwrap())
        .collect();
    assert_eq!(ports, [10100, 10101], "the response has the ports given");
    let (status, body) = stride
        .post(
            "/v2/apps",
            &json!({"id": "/b", "cmd": "sleep 1000", "cpus": 0.01, "mem": 16}).to_string(),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(service_ports_of(&stride, "/b").await, [10102]);

    // The task shows them, and its environment names the host port by the service port.
    let task = stride.wait_running("/a", 1).await.remove(0);
    assert_eq!(task["servicePorts"], json!([10100, 10101]));
    let host_port = task["ports"][0].as_u64().unwrap();
    let env_file = stride.sandbox(task["id"].as_str().unwrap()).join("env.txt");
    // `env` writes the file a line at a time: wait for the two lines.
    let wanted = [
        format!("PORT_10100={host_port}\n"),
        format!("PORT_HTTP={host_port}\n"),
    ];
    eventually("the task's environment naming its host port", || async {
        let env = std::fs::read_to_string(&env_file).ok()?;
        wanted
            .iter()
            .all(|line| env.contains(line.as_str()))
            .then_some(())
    })
    .await;

    // Posted again with 0s the app keeps its ports and its version: nothing changed.
    let (_, before) = stride.get("/v2/apps/a").await;
    let (status, body) = stride
        .put(
            "/v2/apps/a",
            &json!({"portDefinitions": two_ports}).to_string(),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let (_, after) = stride.get("/v2/apps/a").await;
    assert_eq!(service_ports_of(&stride, "/a").await, [10100, 10101]);
    assert_eq!(after["app"]["version"], before["app"]["version"]);
    // A real change keeps them too.
    let (status, body) = stride
        .put("/v2/apps/a", r#"{"cmd": "env > env.txt; sleep 999"}"#)
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(service_ports_of(&stride, "/a").await, [10100, 10101]);

    // Marathon's refusals: the same port twice in one app, and a range with no port left.
    let (status, body) = stride
        .post(
            "/v2/apps",
            &json!({"id": "/twice", "cmd": "sleep 1", "portDefinitions": [{"port": 10200}, {"port": 10200}]})
                .to_string(),
        )
        .await;
    assert_eq!(status, 422, "{body}");
    assert!(body.to_string().contains("Ports must be unique."), "{body}");
    let (status, body) = stride
        .post(
            "/v2/apps",
            &json!({"id": "/many", "cmd": "sleep 1",
                    "portDefinitions": [{"port": 0}, {"port": 0}, {"port": 0}, {"port": 0}]})
            .to_string(),
        )
        .await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(
        body["message"],
        "All ports in the range [10100-10106) are already in use"
    );
    let (status, _) = stride.get("/v2/apps/many").await;
    assert_eq!(status, 404, "a refused app is not created");
}

/// A client without connection reuse: every request through the balancer is a new connection.
fn fresh_connections() -> reqwest::Client {
    reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

/// The task ids that answer `n` requests to `url`; panics on a failed request.
async fn answering(client: &reqwest::Client, url: &str, n: usize) -> Vec<String> {
    let mut out = Vec::new();
    for _ in 0..n {
        let response = client
            .get(url)
            .send()
            .await
            .expect("a request through the balancer");
        assert_eq!(response.status(), 200, "{url}");
        out.push(response.text().await.unwrap());
    }
    out
}

#[tokio::test]
async fn the_balancer_routes_to_healthy_tasks_and_around_killed_ones() {
    let stride = Stride::start_with(&[
        "--lb-address",
        "127.0.0.1",
        "--local-port-min",
        "10300",
        "--local-port-max",
        "10310",
    ])
    .await;
    let (status, body) = stride
        .post("/v2/apps", &web_app("/web", 3).to_string())
        .await;
    assert_eq!(status, 201, "{body}");
    let service = "http://127.0.0.1:10300/id";
    let client = fresh_connections();
    let tasks = stride.wait_healthy("/web", 3).await;
    // Every healthy task gets connections.
    let seen: BTreeSet<String> = answering(&client, service, 30).await.into_iter().collect();
    assert_eq!(seen, tasks);

    // One turns unhealthy: it gets nothing more (and the others answer every request).
    let sick = tasks.iter().next().unwrap().clone();
    std::fs::remove_file(stride.sandbox(&sick).join("healthy")).unwrap();
    eventually("the sick task's failed check", || async {
        let tasks = stride.tasks("/web").await;
        let task = tasks.iter().find(|t| t["id"] == sick.as_str())?;
        (task["healthCheckResults"][0]["alive"] == false).then_some(())
    })
    .await;
    // The balancer's table follows the scheduler's commits a moment later.
    eventually("the sick task out of the rotation", || async {
        let mut answered = Vec::new();
        for _ in 0..6 {
            let response = client.get(service).send().await.ok()?;
            answered.push(response.status() == 200);
        }
        answered.into_iter().all(|ok| ok).then_some(())
    })
    .await;
    let seen: BTreeSet<String> = answering(&client, service, 30).await.into_iter().collect();
    assert!(!seen.contains(&sick), "{seen:?}");
    assert_eq!(seen.len(), 2, "{seen:?}");

    // Killing a task while a client keeps asking fails none of its requests.
    let asking = {
        let client = client.clone();
        tokio::spawn(async move { answering(&client, service, 60).await })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    let victim = seen.iter().next().unwrap().clone();
    let (status, body) = stride.delete(&format!("/v2/apps/web/tasks/{victim}")).await;
    assert_eq!(status, 200, "{body}");
    let answers = asking
        .await
        .expect("no failed request while a task was killed");
    assert_eq!(answers.len(), 60);
}

/// A connection open to a task when it is killed is not cut: the task stops taking new ones and
/// finishes it within its kill grace period.
#[tokio::test]
async fn a_draining_task_finishes_its_open_connection() {
    let stride = Stride::start_with(&[
        "--lb-address",
        "127.0.0.1",
        "--local-port-min",
        "10400",
        "--local-port-max",
        "10410",
    ])
    .await;
    let (status, body) = stride
        .post("/v2/apps", &web_app("/slow", 1).to_string())
        .await;
    assert_eq!(status, 201, "{body}");
    let task = eventually("a healthy task", || async {
        let tasks = stride.tasks("/slow").await;
        let task = tasks.first()?;
        (task["healthCheckResults"][0]["alive"] == true)
            .then(|| task["id"].as_str().unwrap().to_string())
    })
    .await;
    let client = fresh_connections();
    let slow = tokio::spawn({
        let client = client.clone();
        async move {
            let response = client.get("http://127.0.0.1:10400/slow").send().await?;
            response.text().await
        }
    });
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (status, body) = stride.delete(&format!("/v2/apps/slow/tasks/{task}")).await;
    assert_eq!(status, 200, "{body}");
    let answer = slow.await.unwrap().expect("the open request is answered");
    assert_eq!(answer, task);
}

/// `stride lb` on its own, killed (with its process group) when dropped.
struct StandaloneBalancer(std::process::Child);

impl StandaloneBalancer {
    fn following(stride: &Stride) -> StandaloneBalancer {
        use std::os::unix::process::CommandExt;
        let child = std::process::Command::new(env!("CARGO_BIN_EXE_stride"))
            .args(["lb", "--leader", &stride.base, "--lb-address", "127.0.0.1"])
            .arg("--backends-on-loopback")
            .stdin(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .process_group(0)
            .spawn()
            .expect("starting stride lb");
        StandaloneBalancer(child)
    }
}

impl Drop for StandaloneBalancer {
    fn drop(&mut self) {
        common::signal(-(self.0.id() as i32), libc::SIGKILL);
        let _ = self.0.wait();
    }
}

/// `stride lb --leader` holds nothing of its own: it reads the leader's apps and follows its
/// event stream, routing to the healthy tasks as the built-in balancer does.
#[tokio::test]
async fn stride_lb_follows_the_leader() {
    let stride =
        Stride::start_with(&["--local-port-min", "10500", "--local-port-max", "10510"]).await;
    let _balancer = StandaloneBalancer::following(&stride);
    let (status, body) = stride
        .post("/v2/apps", &web_app("/followed", 2).to_string())
        .await;
    assert_eq!(status, 201, "{body}");
    let client = fresh_connections();
    let tasks = stride.wait_healthy("/followed", 2).await;
    let seen = eventually("both tasks answering through stride lb", || async {
        let mut seen = BTreeSet::new();
        for _ in 0..20 {
            let response = client.get("http://127.0.0.1:10500/id").send().await.ok()?;
            seen.insert(response.text().await.ok()?);
        }
        (seen == tasks).then_some(seen)
    })
    .await;
    assert_eq!(seen.len(), 2);
}

/// A VIP label routes like a service port: a named one at the address `/v2/vips` gives it in
/// `--vip-range`, an explicit one at its own address, both to every healthy task.
#[tokio::test]
async fn vips_route_to_the_tasks_of_the_apps_that_declare_them() {
    let stride = Stride::start_with(&[
        "--lb-address",
        "127.0.0.1",
        "--local-port-min",
        "10800",
        "--local-port-max",
        "10810",
        "--vip-range",
        "127.78.0.0/24",
    ])
    .await;
    let mut app = web_app("/prod/web", 2);
    app["portDefinitions"] = json!([{
        "port": 0,
        "labels": {"VIP_0": "/prod/web:8080", "VIP_1": "127.78.0.200:9090", "HAPROXY_GROUP": "external"}
    }]);
    let (status, body) = stride.post("/v2/apps", &app.to_string()).await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(
        body["portDefinitions"][0]["labels"]["VIP_0"], "/prod/web:8080",
        "the app's JSON as given"
    );
    let tasks = stride.wait_healthy("/prod/web", 2).await;
    let vips = eventually("both VIPs with both tasks", || async {
        let (_, vips) = stride.get("/v2/vips").await;
        let vips = vips.as_array()?.clone();
        (vips.len() == 2
            && vips
                .iter()
                .all(|v| v["backends"].as_array().is_some_and(|b| b.len() == 2)))
        .then_some(vips)
    })
    .await;
    let named = vips.iter().find(|v| v["vip"] == "/prod/web:8080").unwrap();
    assert_eq!(named["dns"], "web-prod.l4lb.stride.mesos");
    let address = named["address"].as_str().unwrap().to_string();
    assert!(
        address.starts_with("127.78.0.") && address.ends_with(":8080"),
        "{address}"
    );
    let explicit = vips
        .iter()
        .find(|v| v["vip"] == "127.78.0.200:9090")
        .unwrap();
    assert_eq!(explicit["address"], "127.78.0.200:9090");
    assert_eq!(explicit["dns"], Value::Null);
    let client = fresh_connections();
    for address in [address.as_str(), "127.78.0.200:9090"] {
        let seen: BTreeSet<String> = answering(&client, &format!("http://{address}/id"), 20)
            .await
            .into_iter()
            .collect();
        assert_eq!(seen, tasks, "through {address}");
    }
}

/// Asks the DNS server on `port` with dnspython (Debian's `python3-dnspython`, a real resolver
/// library): the app's A and SRV records (over UDP and TCP), the leader, a VIP, an unknown name.
fn resolve_with_dnspython(port: u16) -> Value {
    let script = r#"
import dns.resolver, json, sys
r = dns.resolver.Resolver(configure=False)
r.nameservers = ["127.0.0.1"]
r.port = int(sys.argv[1])
out = {}
out["a"] = sorted(x.address for x in r.resolve("web-api-prod.stride.mesos", "A"))
out["a_tcp"] = sorted(x.address for x in r.resolve("web-api-prod.stride.mesos", "A", tcp=True))
out["srv"] = sorted([x.port, str(x.target)] for x in r.resolve("_web-api-prod._tcp.stride.mesos", "SRV"))
out["agent"] = [x.address for x in r.resolve("127-0-0-1.slave.stride.mesos", "A")]
out["leader"] = [x.address for x in r.resolve("leader.stride.mesos", "A")]
out["vip"] = [x.address for x in r.resolve("web-prod.l4lb.stride.mesos", "A")]
try:
    r.resolve("nope.stride.mesos", "A")
    out["unknown"] = "answered"
except dns.resolver.NXDOMAIN:
    out["unknown"] = "NXDOMAIN"
print(json.dumps(out))
"#;
    let output = std::process::Command::new("/usr/bin/python3")
        .args(["-c", script, &port.to_string()])
        .output()
        .expect("running python3 (the test command installs python3-dnspython)");
    assert!(
        output.status.success(),
        "dnspython failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

/// The DNS server answers Mesos-DNS's names for an app in a group, its tasks' ports, a VIP and
/// the leader, and NXDOMAIN for what it does not know.
#[tokio::test]
async fn dns_answers_mesos_dns_names() {
    let dns_port = common::free_port();
    let dns_address = format!("127.0.0.1:{dns_port}");
    let stride = Stride::start_with(&[
        "--dns-address",
        &dns_address,
        "--local-port-min",
        "10900",
        "--local-port-max",
        "10910",
        "--agent-hostname",
        "127.0.0.1",
    ])
    .await;
    let app = json!({
        "id": "/prod/api/web", "cmd": "sleep 1000", "cpus": 0.01, "mem": 16, "instances": 2,
        "portDefinitions": [{"port": 0, "labels": {"VIP_0": "/prod/web:80"}}]
    });
    let (status, body) = stride.post("/v2/apps", &app.to_string()).await;
    assert_eq!(status, 201, "{body}");
    let tasks = stride.wait_running("/prod/api/web", 2).await;
    let mut host_ports: Vec<u64> = tasks
        .iter()
        .map(|t| t["ports"][0].as_u64().unwrap())
        .collect();
    host_ports.sort();
    let (_, vips) = stride.get("/v2/vips").await;
    let vip_ip = vips[0]["address"]
        .as_str()
        .unwrap()
        .rsplit_once(':')
        .unwrap()
        .0
        .to_string();
    let answers = tokio::task::spawn_blocking(move || resolve_with_dnspython(dns_port))
        .await
        .unwrap();
    assert_eq!(answers["a"], json!(["127.0.0.1"]), "{answers}");
    assert_eq!(answers["a_tcp"], json!(["127.0.0.1"]), "{answers}");
    let srv: Vec<u64> = answers["srv"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s[0].as_u64().unwrap())
        .collect();
    assert_eq!(srv, host_ports, "{answers}");
    assert_eq!(answers["srv"][0][1], "127-0-0-1.slave.stride.mesos.");
    assert_eq!(answers["agent"], json!(["127.0.0.1"]));
    assert_eq!(answers["leader"], json!(["127.0.0.1"]));
    assert_eq!(answers["vip"], json!([vip_ip]));
    assert_eq!(answers["unknown"], "NXDOMAIN");
}

/// A UDP service port relays each client's datagrams to one task and its replies back; clients
/// are spread over the tasks.
#[tokio::test]
async fn udp_service_ports_are_relayed_per_client() {
    let stride = Stride::start_with(&[
        "--lb-address",
        "127.0.0.1",
        "--local-port-min",
        "10920",
        "--local-port-max",
        "10930",
    ])
    .await;
    let echo = r#"exec /usr/bin/python3 -S -c '
import os, socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("127.0.0.1", int(os.environ["PORT0"])))
while True:
    data, client = s.recvfrom(2048)
    s.sendto(os.environ["MESOS_TASK_ID"].encode() + b" " + data, client)
'"#;
    let app = json!({
        "id": "/echo", "cmd": echo, "cpus": 0.01, "mem": 16, "instances": 2,
        "portDefinitions": [{"port": 0, "protocol": "udp"}]
    });
    let (status, body) = stride.post("/v2/apps", &app.to_string()).await;
    assert_eq!(status, 201, "{body}");
    let tasks: BTreeSet<String> = stride
        .wait_running("/echo", 2)
        .await
        .iter()
        .map(|t| t["id"].as_str().unwrap().to_string())
        .collect();
    let seen = eventually("both tasks answering through the UDP port", || async {
        let mut seen = BTreeSet::new();
        for n in 0..10 {
            let client = tokio::net::UdpSocket::bind("127.0.0.1:0").await.ok()?;
            client.connect("127.0.0.1:10920").await.ok()?;
            client.send(format!("ping {n}").as_bytes()).await.ok()?;
            let mut buffer = [0u8; 2048];
            let got = tokio::time::timeout(Duration::from_millis(500), client.recv(&mut buffer))
                .await
                .ok()?
                .ok()?;
            let reply = String::from_utf8_lossy(&buffer[..got]).to_string();
            let (task, echoed) = reply.split_once(' ')?;
            (echoed == format!("ping {n}")).then_some(())?;
            seen.insert(task.to_string());
        }
        (seen.len() == 2).then_some(seen)
    })
    .await;
    assert_eq!(seen, tasks);
}

/// An HAProxy configuration written, as marathon-lb's poll mode writes one, from what it reads
/// of `/v2/apps?embed=apps.tasks`: apps in the `HAPROXY_GROUP` asked for, a frontend on each
/// service port in the port's `HAPROXY_{n}_MODE`, and as its servers the app's running tasks
/// at their host ports, only those passing every health check when the app has some.
/// The servers are on loopback: every agent of the built-in master is this machine.
fn haproxy_config_as_marathon_lb_writes(apps: &Value, group: &str) -> String {
    let mut config = String::from(
        "global\n  maxconn 256\ndefaults\n  timeout connect 2s\n  timeout client 10s\n  timeout server 10s\n",
    );
    for app in apps["apps"].as_array().unwrap() {
        if app["labels"]["HAPROXY_GROUP"] != group {
            continue;
        }
        let has_checks = app["healthChecks"]
            .as_array()
            .is_some_and(|c| !c.is_empty());
        let name = app["id"]
            .as_str()
            .unwrap()
            .trim_matches('/')
            .replace('/', "_");
        let service_ports = app["portDefinitions"].as_array().unwrap();
        for (index, definition) in service_ports.iter().enumerate() {
            let port = &definition["port"];
            let mode = app["labels"][format!("HAPROXY_{index}_MODE")]
                .as_str()
                .unwrap_or("tcp");
            config += &format!(
                "frontend {name}_{port}\n  bind 127.0.0.1:{port}\n  mode {mode}\n  use_backend {name}_{port}\nbackend {name}_{port}\n  mode {mode}\n  balance roundrobin\n"
            );
            for task in app["tasks"].as_array().unwrap() {
                let passing = task["healthCheckResults"]
                    .as_array()
                    .is_some_and(|r| !r.is_empty() && r.iter().all(|r| r["alive"] == true));
                if task["state"] != "TASK_RUNNING" || (has_checks && !passing) {
                    continue;
                }
                let host_port = &task["ports"][index];
                config += &format!(
                    "  server {}_{host_port} 127.0.0.1:{host_port}\n",
                    task["host"].as_str().unwrap()
                );
            }
        }
    }
    config
}

/// HAProxy (Debian's) on a configuration file, killed with its process group when dropped.
struct Haproxy(std::process::Child);

impl Haproxy {
    /// Checks the file with `haproxy -c` first, so a configuration HAProxy refuses fails here.
    fn start(config: &std::path::Path) -> Haproxy {
        use std::os::unix::process::CommandExt;
        let check = std::process::Command::new("haproxy")
            .arg("-c")
            .arg("-f")
            .arg(config)
            .output()
            .expect("running haproxy -c (Debian's haproxy)");
        assert!(
            check.status.success(),
            "HAProxy refuses the configuration: {}{}",
            String::from_utf8_lossy(&check.stdout),
            String::from_utf8_lossy(&check.stderr)
        );
        let child = std::process::Command::new("haproxy")
            .arg("-db")
            .arg("-f")
            .arg(config)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .process_group(0)
            .spawn()
            .expect("starting haproxy");
        Haproxy(child)
    }
}

impl Drop for Haproxy {
    fn drop(&mut self) {
        common::signal(-(self.0.id() as i32), libc::SIGKILL);
        let _ = self.0.wait();
    }
}

/// Stride stays usable by marathon-lb: from what its poll mode reads, an HAProxy configuration
/// for the app's service port that HAProxy accepts and routes through to every healthy task,
/// and not to an unhealthy one, once the configuration is written again.
#[tokio::test]
async fn haproxy_configured_from_what_marathon_lb_reads_routes_to_healthy_tasks() {
    let stride =
        Stride::start_with(&["--local-port-min", "10900", "--local-port-max", "10910"]).await;
    let mut app = web_app("/shop/web", 3);
    app["labels"] = json!({"HAPROXY_GROUP": "external", "HAPROXY_0_MODE": "http"});
    let (status, body) = stride.post("/v2/apps", &app.to_string()).await;
    assert_eq!(status, 201, "{body}");
    let tasks = stride.wait_healthy("/shop/web", 3).await;
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("haproxy.cfg");
    let write_config = || async {
        let (status, apps) = stride.get("/v2/apps?embed=apps.tasks").await;
        assert_eq!(status, 200, "{apps}");
        std::fs::write(
            &config,
            haproxy_config_as_marathon_lb_writes(&apps, "external"),
        )
        .unwrap();
    };
    write_config().await;
    let client = fresh_connections();
    let through_haproxy = "http://127.0.0.1:10900/id";
    let seen = {
        let _haproxy = Haproxy::start(&config);
        eventually("HAProxy answering on the service port", || async {
            client.get(through_haproxy).send().await.ok().map(|_| ())
        })
        .await;
        answering(&client, through_haproxy, 30).await
    };
    assert_eq!(seen.into_iter().collect::<BTreeSet<_>>(), tasks);

    let sick = tasks.iter().next().unwrap().clone();
    std::fs::remove_file(stride.sandbox(&sick).join("healthy")).unwrap();
    eventually("the sick task failing its check", || async {
        let tasks = stride.tasks("/shop/web").await;
        let task = tasks.iter().find(|t| t["id"] == sick.as_str())?;
        (task["healthCheckResults"][0]["alive"] == false).then_some(())
    })
    .await;
    write_config().await;
    let _haproxy = Haproxy::start(&config);
    eventually("HAProxy answering again", || async {
        client.get(through_haproxy).send().await.ok().map(|_| ())
    })
    .await;
    let seen: BTreeSet<String> = answering(&client, through_haproxy, 30)
        .await
        .into_iter()
        .collect();
    assert!(!seen.contains(&sick), "{seen:?}");
    assert_eq!(seen.len(), 2, "{seen:?}");
}
