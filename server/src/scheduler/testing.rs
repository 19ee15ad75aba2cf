//! Builders shared by the scheduler's tests.

use super::instance::{Condition, Instance, Placement};
use app::model::{AppDefinition, AppUpdate, Timestamp};

/// An app with `instances` whose configuration dates from `config_ms`.
pub fn app_with(instances: i64, config_ms: i64) -> AppDefinition {
    AppDefinition::create(
        "/test".into(),
        AppUpdate {
            cmd: Some("sleep 100".into()),
            instances: Some(instances),
            cpus: Some(0.1),
            mem: Some(32.0),
            ..Default::default()
        },
        Timestamp::from_millis(config_ms),
    )
}

/// An instance of `app` in `condition`, started at `t_ms`.
pub fn instance(app: &AppDefinition, name: &str, condition: Condition, t_ms: i64) -> Instance {
    let t = Timestamp::from_millis(t_ms);
    let mut i = Instance::scheduled(&app.id, name, app.version, app.config_version(), t);
    i.condition = condition;
    if condition != Condition::Scheduled {
        i.placement = Some(Placement {
            agent_id: "agent-1".into(),
            hostname: "host-1".into(),
            ports: vec![],
            attributes: vec![],
        });
        i.staged_at = Some(t);
        i.started_at = Some(t);
    }
    i
}
