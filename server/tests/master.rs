//! The built-in master speaking the v1 scheduler protocol, with its agent running real tasks:
//! offers, decline filters, revive/suppress, launch, acknowledgement, kill, reconciliation and
//! the refusals a real master would give.

mod common;

use proto::mesos::v1 as mesos;
use proto::mesos::v1::scheduler::{self, call, event};
use server::master::host::HostResources;
use server::master::local::{AgentSettings, LocalMaster, MasterSettings};
use std::path::PathBuf;
use std::time::Duration;
use tokio::sync::mpsc::UnboundedReceiver;
use tokio::time::timeout;

struct Harness {
    master: LocalMaster,
    events: UnboundedReceiver<scheduler::Event>,
    framework_id: String,
    dir: tempfile::TempDir,
}

impl Drop for Harness {
    fn drop(&mut self) {
        common::kill_task_leftovers(&self.dir.path().join("agent"));
    }
}

impl Harness {
    async fn start() -> Harness {
        let dir = tempfile::tempdir().unwrap();
        let master = LocalMaster::start(MasterSettings {
            work_dir: dir.path().join("agent"),
            stride_exe: PathBuf::from(env!("CARGO_BIN_EXE_stride")),
            hostname: "test-host".into(),
            agents: vec![AgentSettings {
                work_dir: dir.path().join("agent"),
                hostname: "test-host".into(),
                resources: HostResources {
                    cpus: 2.0,
                    mem_mb: 1024.0,
                    disk_mb: 1000.0,
                    ports: vec![(31000, 31009)],
                    disks: vec![],
                },
                attributes: vec![(
                    "rack".into(),
                    server::master::host::AttributeValue::Text("r1".into()),
                )],
                domain: None,
            }],
            simulated: false,
            images: std::sync::Arc::new(server::images::ImageStore::new(
                dir.path().join("images"),
                &Default::default(),
            )),
            docker_socket: dir.path().join("no-docker.sock"),
        })
        .await
        .unwrap();
        let (framework_id, mut events) = master
            .subscribe(call::Subscribe {
                framework_info: mesos::FrameworkInfo {
                    user: "root".into(),
                    name: "test".into(),
                    ..Default::default()
                },
                ..Default::default()
            })
            .await
            .unwrap();
        let first = next(&mut events).await;
        assert_eq!(first.r#type(), event::Type::Subscribed);
        assert_eq!(first.subscribed.unwrap().framework_id.value, framework_id);
        Harness {
            master,
            events,
            framework_id,
            dir,
        }
    }

    fn call(&self, kind: call::Type) -> scheduler::Call {
        let mut c = scheduler::Call {
            framework_id: Some(mesos::FrameworkId {
                value: self.framework_id.clone(),
            }),
            ..Default::default()
        };
        c.set_type(kind);
        c
    }

    /// The next event of `kind`, skipping others; offers passed over are declined briefly, as a
    /// scheduler with nothing to launch would (an unanswered offer stays out until it times out).
    async fn expect(&mut self, kind: event::Type) -> scheduler::Event {
        loop {
            let e = next(&mut self.events).await;
            if e.r#type() == kind {
                return e;
            }
            if let Some(offers) = e.offers {
                for offer in &offers.offers {
                    self.decline(offer, 0.2).await;
                }
            }
        }
    }

    async fn offer(&mut self) -> mesos::Offer {
        self.expect(event::Type::Offers)
            .await
            .offers
            .unwrap()
            .offers
            .remove(0)
    }

    async fn update(&mut self) -> mesos::TaskStatus {
        self.expect(event::Type::Update)
            .await
            .update
            .unwrap()
            .status
    }

    async fn ack(&self, status: &mesos::TaskStatus) {
        let mut c = self.call(call::Type::Acknowledge);
        c.acknowledge = Some(call::Acknowledge {
            agent_id: status.agent_id.clone().unwrap(),
            task_id: status.task_id.clone(),
            uuid: status.uuid.clone().unwrap(),
        });
        self.master.call(c).await.unwrap();
    }

    async fn decline(&self, offer: &mesos::Offer, refuse_seconds: f64) {
        let mut c = self.call(call::Type::Decline);
        c.decline = Some(call::Decline {
            offer_ids: vec![offer.id.clone()],
            filters: Some(mesos::Filters {
                refuse_seconds: Some(refuse_seconds),
            }),
        });
        self.master.call(c).await.unwrap();
    }

    async fn launch(&self, offer: &mesos::Offer, task: mesos::TaskInfo) {
        let mut operation = mesos::offer::Operation {
            launch: Some(mesos::offer::operation::Launch {
                task_infos: vec![task],
            }),
            ..Default::default()
        };
        operation.set_type(mesos::offer::operation::Type::Launch);
        let mut c = self.call(call::Type::Accept);
        c.accept = Some(call::Accept {
            offer_ids: vec![offer.id.clone()],
            operations: vec![operation],
            filters: Some(mesos::Filters {
                refuse_seconds: Some(0.0),
            }),
        });
        self.master.call(c).await.unwrap();
    }
}

async fn next(events: &mut UnboundedReceiver<scheduler::Event>) -> scheduler::Event {
    timeout(Duration::from_secs(20), events.recv())
        .await
        .expect("an event in time")
        .expect("the stream is open")
}

fn scalar(offer: &mesos::Offer, name: &str) -> f64 {
    offer
        .resources
        .iter()
        .filter(|r| r.name == name)
        .map(|r| r.scalar.as_ref().unwrap().value)
        .sum()
}

fn task(offer: &mesos::Offer, id: &str, cmd: &str, cpus: f64) -> mesos::TaskInfo {
    mesos::TaskInfo {
        name: id.into(),
        task_id: mesos::TaskId { value: id.into() },
        agent_id: offer.agent_id.clone(),
        resources: vec![
            mesos::Resource::scalar("cpus", cpus, "*"),
            mesos::Resource::scalar("mem", 32.0, "*"),
        ],
        command: Some(mesos::CommandInfo {
            value: Some(cmd.into()),
            ..Default::default()
        }),
        ..Default::default()
    }
}

#[tokio::test]
async fn offers_describe_the_agent_and_decline_filters_hold_them_back() {
    let mut h = Harness::start().await;
    let offer = h.offer().await;
    assert_eq!(offer.hostname, "test-host");
    assert_eq!(scalar(&offer, "cpus"), 2.0);
    assert_eq!(scalar(&offer, "mem"), 1024.0);
    assert_eq!(offer.attributes[0].name, "rack");
    let ports = offer.resources.iter().find(|r| r.name == "ports").unwrap();
    assert_eq!(ports.ranges.as_ref().unwrap().range[0].begin, 31000);

    h.decline(&offer, 2.0).await;
    let declined_at = tokio::time::Instant::now();
    let again = h.offer().await;
    assert!(
        declined_at.elapsed() >= Duration::from_millis(1900),
        "refused for 2 s"
    );
    assert_ne!(again.id, offer.id);

    h.decline(&again, 3600.0).await;
    h.master.call(h.call(call::Type::Revive)).await.unwrap();
    let revived = timeout(Duration::from_secs(2), h.offer()).await;
    assert!(revived.is_ok(), "REVIVE clears the filter at once");

    h.master.call(h.call(call::Type::Suppress)).await.unwrap();
    h.decline(&revived.unwrap(), 0.0).await;
    let suppressed = timeout(Duration::from_secs(1), h.expect(event::Type::Offers)).await;
    assert!(suppressed.is_err(), "no offers while suppressed");
}

#[tokio::test]
async fn a_task_runs_is_acknowledged_killed_and_its_resources_come_back() {
    let mut h = Harness::start().await;
    let offer = h.offer().await;
    h.launch(&offer, task(&offer, "t1", "sleep 60", 1.5)).await;
    let starting = h.update().await;
    assert_eq!(starting.state(), mesos::TaskState::TaskStarting);
    assert_eq!(starting.uuid.as_ref().map(Vec::len), Some(16));
    h.ack(&starting).await;
    let running = h.update().await;
    assert_eq!(running.state(), mesos::TaskState::TaskRunning);
    h.ack(&running).await;

    let rest = h.offer().await;
    assert!(
        (scalar(&rest, "cpus") - 0.5).abs() < 1e-6,
        "the task's cpus are in use"
    );

    // Reconciliation: explicit for a known and an unknown task, then implicit.
    let mut reconcile = h.call(call::Type::Reconcile);
    reconcile.reconcile = Some(call::Reconcile {
        tasks: vec![
            call::reconcile::Task {
                task_id: mesos::TaskId { value: "t1".into() },
                agent_id: None,
            },
            call::reconcile::Task {
                task_id: mesos::TaskId {
                    value: "ghost".into(),
                },
                agent_id: None,
            },
        ],
    });
    h.master.call(reconcile).await.unwrap();
    let known = h.update().await;
    assert_eq!(
        (known.task_id.value.as_str(), known.state()),
        ("t1", mesos::TaskState::TaskRunning)
    );
    assert_eq!(known.reason(), mesos::task_status::Reason::Reconciliation);
    assert!(
        known.uuid.is_none(),
        "reconciliation answers are not acknowledged"
    );
    let ghost = h.update().await;
    assert_eq!(ghost.state(), mesos::TaskState::TaskUnknown);
    h.master.call(h.call(call::Type::Reconcile)).await.unwrap();
    assert_eq!(h.update().await.task_id.value, "t1");

    h.decline(&rest, 0.0).await;
    let mut kill = h.call(call::Type::Kill);
    kill.kill = Some(call::Kill {
        task_id: mesos::TaskId { value: "t1".into() },
        ..Default::default()
    });
    h.master.call(kill).await.unwrap();
    let killed = loop {
        let s = h.update().await;
        if s.state() == mesos::TaskState::TaskKilled {
            break s;
        }
    };
    h.ack(&killed).await;
    let full = loop {
        let o = h.offer().await;
        if scalar(&o, "cpus") >= 2.0 {
            break o;
        }
        h.decline(&o, 0.0).await;
    };
    assert_eq!(
        scalar(&full, "cpus"),
        2.0,
        "resources return when the task ends"
    );
}

#[tokio::test]
async fn invalid_launches_and_calls_are_refused() {
    let mut h = Harness::start().await;
    let offer = h.offer().await;
    h.launch(&offer, task(&offer, "greedy", "sleep 1", 64.0))
        .await;
    let error = h.update().await;
    assert_eq!(error.state(), mesos::TaskState::TaskError);
    assert_eq!(error.reason(), mesos::task_status::Reason::TaskInvalid);
    assert_eq!(error.source(), mesos::task_status::Source::Master);
    assert_eq!(
        error.uuid, None,
        "the master's verdicts are not acknowledged"
    );

    let offer = h.offer().await;
    let mut docker = task(&offer, "boxed", "sleep 1", 0.1);
    let mut container = mesos::ContainerInfo::default();
    container.set_type(mesos::container_info::Type::Docker);
    docker.container = Some(container);
    h.launch(&offer, docker).await;
    let failed = h.update().await;
    assert_eq!(failed.state(), mesos::TaskState::TaskFailed);
    assert!(failed.message().contains("Docker"), "{}", failed.message());
    h.ack(&failed).await;

    let offer = h.offer().await;
    let mut fetching = task(&offer, "fetching", "sleep 1", 0.1);
    if let Some(command) = fetching.command.as_mut() {
        command.uris.push(mesos::command_info::Uri {
            value: "http://127.0.0.1:9/app.tgz".into(),
            ..Default::default()
        });
    }
    h.launch(&offer, fetching).await;
    let failed = h.update().await;
    assert_eq!(failed.state(), mesos::TaskState::TaskFailed);
    assert!(failed.message().contains("fetch"), "{}", failed.message());

    let stale = h.offer().await;
    h.launch(&stale, task(&stale, "twice-a", "sleep 1", 0.1))
        .await;
    h.launch(&stale, task(&stale, "twice-b", "sleep 1", 0.1))
        .await;
    let dropped = loop {
        let s = h.update().await;
        if s.task_id.value == "twice-b" {
            break s;
        }
        h.ack(&s).await;
    };
    assert_eq!(
        dropped.state(),
        mesos::TaskState::TaskDropped,
        "an offer is used once"
    );
    assert_eq!(dropped.uuid, None);

    let mut anonymous = h.call(call::Type::Revive);
    anonymous.framework_id = None;
    let refused = h.master.call(anonymous).await.unwrap_err();
    assert_eq!(refused.status, 400);
}
