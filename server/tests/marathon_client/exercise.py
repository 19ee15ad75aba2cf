"""Marathon's own Python client (marathon-python, whose models refuse any field they do not
know) driven against a Stride at $STRIDE_URL: every answer it parses must parse.

Exits non-zero, with the client's error, at the first answer that does not."""

import collections
import collections.abc
import os
import threading
import time

# The client's JSON encoder still uses `collections.Iterable`, gone since Python 3.10.
collections.Iterable = collections.abc.Iterable

from marathon import MarathonClient
from marathon.models import MarathonApp, MarathonHealthCheck
from marathon.models.app import MarathonUpgradeStrategy
from marathon.models.group import MarathonGroup

WEB = "echo ok > health; exec python3 -m http.server --bind 127.0.0.1 $PORT0"
client = MarathonClient(os.environ["STRIDE_URL"])


def wait(what, check, timeout=60):
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.2)
    raise SystemExit(f"timed out waiting for {what}")


def step(name):
    print(f"ok: {name}", flush=True)


info = client.get_info()
assert info.name == "marathon" and info.version == "1.11.0", info
step("info")

events = []
def follow():
    for event in client.event_stream(event_types=["deployment_success", "status_update_event", "health_status_changed_event"]):
        events.append(event)
threading.Thread(target=follow, daemon=True).start()

web = MarathonApp(
    cmd=WEB, cpus=0.2, mem=64, instances=2,
    health_checks=[MarathonHealthCheck(protocol="HTTP", path="/health", port_index=0,
                                       interval_seconds=1, timeout_seconds=1,
                                       grace_period_seconds=30, max_consecutive_failures=3)],
    upgrade_strategy=MarathonUpgradeStrategy(minimum_health_capacity=0.5, maximum_over_capacity=0.5),
)
created = client.create_app("/py/web", web)
assert created.id == "/py/web", created
step("create_app")
wait("two healthy tasks", lambda: client.get_app("/py/web").tasks_healthy == 2)
step("get_app")

apps = client.list_apps(embed_tasks=True, embed_counts=True, embed_deployments=True,
                        embed_readiness=True, embed_last_task_failure=True,
                        embed_failures=True, embed_task_stats=True)
web_app = [a for a in apps if a.id == "/py/web"][0]
assert len(web_app.tasks) == 2 and web_app.tasks[0].health_check_results[0].alive
step("list_apps with every embed")
assert len(client.list_tasks()) == 2
assert len(client.list_tasks(app_id="/py/web")) == 2
step("list_tasks")

versions = client.list_versions("/py/web")
assert client.get_version("/py/web", versions[0]).id == "/py/web"
step("versions")

client.update_app("/py/web", MarathonApp(env={"RELEASE": "2"}))
wait("the deployment to show", lambda: client.list_deployments())
deployments = client.list_deployments()
assert deployments[0].affected_apps == ["/py/web"], deployments
step("list_deployments")
wait("the rolling upgrade to finish", lambda: not client.list_deployments())
wait("two healthy new tasks", lambda: client.get_app("/py/web").tasks_healthy == 2)
step("update_app")

client.scale_app("/py/web", instances=3)
wait("three tasks", lambda: client.get_app("/py/web").tasks_running == 3)
step("scale_app")
task = client.list_tasks(app_id="/py/web")[0]
client.kill_task("/py/web", task.id)
step("kill_task")

stuck = client.create_app("/py/stuck", MarathonApp(cmd="sleep 600", cpus=100000, mem=16))
queue = wait("the stuck app in the queue", lambda: [q for q in client.list_queue(embed_last_unused_offers=True) if q.app.id == "/py/stuck" and q.processed_offers_summary.get("unusedOffersCount")])
assert queue[0].count == 1
step("list_queue")
stuck_deployment = client.list_deployments()[0]
client.delete_deployment(stuck_deployment.id, force=True)
client.delete_app("/py/stuck", force=True)
step("delete_deployment")

client.create_group(MarathonGroup(id="/py/grouped", apps=[MarathonApp(id="/py/grouped/sleeper", cmd="sleep 600", cpus=0.01, mem=16)]))
wait("the grouped app", lambda: client.get_app("/py/grouped/sleeper").tasks_running == 1)
# marathon-python 0.13 predates groups' `enforceRole` (Marathon 1.9), so its group model
# cannot read any Marathon since; the group is read as plain JSON.
group = client._do_request("GET", "/v2/groups/py/grouped").json()
assert group["apps"][0]["id"] == "/py/grouped/sleeper", group
client.scale_group("/py/grouped", 2)
wait("the group scaled", lambda: client.get_app("/py/grouped/sleeper").instances == 2)
client.delete_group("/py/grouped", force=True)
step("groups")

# A callback subscriber, as marathon-lb's old `--sse`-less mode used them.
import http.server
import json

callbacks = []


class Receiver(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        callbacks.append(json.loads(body))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args):
        pass


receiver = http.server.HTTPServer(("127.0.0.1", 0), Receiver)
threading.Thread(target=receiver.serve_forever, daemon=True).start()
url = "http://127.0.0.1:%d/callback" % receiver.server_port
subscribed = client.create_event_subscription(url)
assert subscribed["eventType"] == "subscribe_event", subscribed
assert url in client.list_event_subscriptions()
client.create_app("/py/called", MarathonApp(cmd="sleep 600", cpus=0.01, mem=16))
wait("callbacks of the launch", lambda: any(e["eventType"] == "deployment_success" for e in callbacks))
assert callbacks[0]["eventType"] == "subscribe_event", callbacks[0]
client.delete_event_subscription(url)
assert url not in client.list_event_subscriptions()
client.delete_app("/py/called", force=True)
receiver.shutdown()
step("event subscriptions")

metrics = client.get_metrics()
assert "marathon.apps.active.gauge" in metrics["gauges"], sorted(metrics["gauges"])[:5]
step("get_metrics")

assert client.get_leader()
client.ping()
step("leader and ping")

wait("events of the run", lambda: any(e.event_type == "deployment_success" for e in events))
kinds = {e.event_type for e in events}
assert {"deployment_success", "status_update_event", "health_status_changed_event"} <= kinds, kinds
step("event_stream")

client.delete_app("/py/web", force=True)
step("delete_app")
print("all answers parsed", flush=True)
