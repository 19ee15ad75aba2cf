//! Frameworks: subscriptions (and failover of a framework id to a new connection), the
//! failover timeout, teardown, and sending events.

use super::{error_event, event_of, Framework, MasterError, State, Subscribed, HEARTBEAT_INTERVAL};
use proto::mesos::v1 as mesos;
use proto::mesos::v1::scheduler::{self, event};
use std::collections::HashMap;
use tokio::sync::mpsc;
use tokio::time::Instant;

impl State {
    pub(super) fn subscribe(
        &mut self,
        subscribe: scheduler::call::Subscribe,
    ) -> Result<Subscribed, MasterError> {
        let mut info = subscribe.framework_info;
        if info.user.is_empty() {
            return Err(MasterError::bad_request(
                "Failed to validate scheduler::Call: Expecting 'framework_info.user' to be present",
            ));
        }
        let framework_id = match &info.id {
            Some(id) => id.value.clone(),
            None => {
                let id = format!("{}-{:04}", self.master_id, self.next_framework);
                self.next_framework += 1;
                info.id = Some(mesos::FrameworkId { value: id.clone() });
                id
            }
        };
        let (tx, rx) = mpsc::unbounded_channel();
        if self.removed.contains_key(&framework_id) {
            // As Mesos does: the subscription is accepted, then ended by an ERROR.
            let _ = tx.send(error_event("Framework has been removed"));
            return Ok((framework_id, rx));
        }
        // A framework that subscribes again replaces its old stream (failover); offers made to
        // the old connection are void.
        self.return_offers_of(&framework_id);
        if let Some(old) = self
            .frameworks
            .get_mut(&framework_id)
            .and_then(|f| f.events.take())
        {
            let _ = old.send(error_event("Framework failed over"));
        }
        let mut subscribed = event_of(event::Type::Subscribed);
        subscribed.subscribed = Some(event::Subscribed {
            framework_id: mesos::FrameworkId {
                value: framework_id.clone(),
            },
            heartbeat_interval_seconds: Some(HEARTBEAT_INTERVAL.as_secs_f64()),
            master_info: None,
        });
        let _ = tx.send(subscribed);
        self.frameworks.insert(
            framework_id.clone(),
            Framework {
                info,
                events: Some(tx),
                disconnected_at: None,
                suppressed: subscribe.suppressed_roles.iter().any(|r| r == "*"),
                refused: HashMap::new(),
            },
        );
        // Updates that waited for the framework go out now.
        let now = Instant::now();
        for task in self
            .tasks
            .values_mut()
            .filter(|t| t.framework_id == framework_id)
        {
            if !task.pending.is_empty() {
                task.next_retry = Some(now);
            }
        }
        self.allocation_pending = true;
        Ok((framework_id, rx))
    }

    pub(super) fn send(&mut self, framework_id: &str, event: scheduler::Event) {
        if let Some(f) = self.frameworks.get_mut(framework_id) {
            let delivered = f.events.as_ref().is_some_and(|tx| tx.send(event).is_ok());
            if !delivered {
                f.disconnect(Instant::now());
            }
        }
    }

    /// Notices subscriptions whose connection went away, and removes frameworks that stayed
    /// away longer than their failover timeout, killing their tasks.
    pub(super) fn expire_frameworks(&mut self, now: Instant) {
        for framework in self.frameworks.values_mut() {
            if framework.events.as_ref().is_some_and(|tx| tx.is_closed()) {
                framework.disconnect(now);
            }
        }
        let expired: Vec<String> = self
            .frameworks
            .iter()
            .filter(|(_, f)| {
                f.disconnected_at
                    .is_some_and(|since| now.duration_since(since) >= f.failover_timeout())
            })
            .map(|(id, _)| id.clone())
            .collect();
        for framework_id in expired {
            tracing::info!(
                framework_id,
                "the framework did not come back within its failover timeout; removing it"
            );
            self.remove_framework(&framework_id);
        }
    }

    /// TEARDOWN, or a failover timeout: kills the framework's tasks and forgets its offers; its
    /// id can never subscribe again.
    pub(super) fn remove_framework(&mut self, framework_id: &str) {
        let live: Vec<String> = self
            .tasks
            .iter()
            .filter(|(_, t)| t.framework_id == framework_id && !t.is_terminal())
            .map(|(id, _)| id.clone())
            .collect();
        for id in live {
            self.kill_task(&id);
        }
        self.return_offers_of(framework_id);
        if let Some(framework) = self.frameworks.remove(framework_id) {
            self.removed.insert(framework_id.to_owned(), framework.info);
        }
    }

    pub(super) fn broadcast(&mut self, event: scheduler::Event) {
        let ids: Vec<String> = self.frameworks.keys().cloned().collect();
        for id in ids {
            self.send(&id, event.clone());
        }
    }

    /// UPDATE_FRAMEWORK: a new FrameworkInfo and set of suppressed roles, with Mesos' rules.
    pub(super) fn update_framework(
        &mut self,
        framework_id: &str,
        update: scheduler::call::UpdateFramework,
    ) -> Result<(), MasterError> {
        let info = update.framework_info;
        if info.id.as_ref().map(|id| id.value.as_str()) != Some(framework_id) {
            return Err(MasterError::bad_request(
                "Failed to validate scheduler::Call: 'framework_info.id' differs from 'framework_id'",
            ));
        }
        let Some(framework) = self.frameworks.get_mut(framework_id) else {
            return Err(MasterError::bad_request("Framework cannot be found"));
        };
        let old = &framework.info;
        if info.user != old.user
            || info.principal != old.principal
            || info.checkpoint != old.checkpoint
        {
            return Err(MasterError::bad_request(
                "Updating 'FrameworkInfo.user', 'FrameworkInfo.principal' or \
                 'FrameworkInfo.checkpoint' is not supported",
            ));
        }
        framework.info = info;
        let suppressed = update.suppressed_roles.iter().any(|role| role == "*");
        if framework.suppressed && !suppressed {
            framework.refused.clear();
        }
        framework.suppressed = suppressed;
        self.allocation_pending = true;
        Ok(())
    }
}
