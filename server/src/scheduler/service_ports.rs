//! Service ports handed out as Marathon does (`AssignDynamicServiceLogic`, SEMANTICS.md §15):
//! an app's service port 0 gets a port from `--local-port-min`…`--local-port-max` that no app
//! holds, and an app updated with 0s again gets back the ports it had, so that its service
//! ports stay put across updates. Explicit service ports are the app's own business (Marathon
//! only checks them for uniqueness within the app).

use app::model::AppDefinition;
use std::collections::BTreeSet;

/// Where service ports come from: `min` up to, not including, `max` (as Marathon counts).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PortRange {
    pub min: u32,
    pub max: u32,
}

impl Default for PortRange {
    fn default() -> Self {
        PortRange {
            min: 10_000,
            max: 20_000,
        }
    }
}

/// No port of the range is free.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("All ports in the range [{}-{}) are already in use", .0.min, .0.max)]
pub struct Exhausted(pub PortRange);

/// Every service port that `apps` hold.
pub fn held_by<'a>(apps: impl IntoIterator<Item = &'a AppDefinition>) -> BTreeSet<u32> {
    apps.into_iter()
        .flat_map(|app| app.service_ports().into_iter().map(|p| p.port))
        .collect()
}

/// Fills `app`'s 0 service ports: first with the ports `previous` (the app before this change)
/// had in the range and `app` no longer names, then with the lowest ports of `range` not in
/// `held`. What it hands out joins `held`. Whether it filled any.
pub fn assign(
    app: &mut AppDefinition,
    previous: Option<&AppDefinition>,
    held: &mut BTreeSet<u32>,
    range: PortRange,
) -> Result<bool, Exhausted> {
    let mut ports = app.requested_service_ports();
    if !ports.contains(&0) {
        return Ok(false);
    }
    let named: BTreeSet<i64> = ports.iter().copied().filter(|&p| p != 0).collect();
    let mut reusable = previous
        .map(|p| p.requested_service_ports())
        .unwrap_or_default()
        .into_iter()
        .filter(|&p| p >= i64::from(range.min) && p < i64::from(range.max) && !named.contains(&p))
        .collect::<Vec<_>>()
        .into_iter();
    let mut next_free = range.min;
    for port in ports.iter_mut().filter(|p| **p == 0) {
        let chosen = match reusable.next() {
            Some(again) => again as u32,
            None => {
                while next_free < range.max && held.contains(&next_free) {
                    next_free += 1;
                }
                if next_free >= range.max {
                    return Err(Exhausted(range));
                }
                next_free
            }
        };
        held.insert(chosen);
        *port = i64::from(chosen);
    }
    app.set_service_ports(&ports);
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scheduler::testing::app_with;
    use app::model::PortDefinition;
    use proptest::prelude::*;

    fn with_ports(ports: &[i64]) -> AppDefinition {
        let mut app = app_with(1, 0);
        app.port_definitions = ports
            .iter()
            .map(|&port| PortDefinition {
                port,
                protocol: "tcp".into(),
                name: None,
                labels: Default::default(),
            })
            .collect();
        app
    }

    #[test]
    fn zeros_get_the_lowest_free_ports_and_keep_them_across_updates() {
        let range = PortRange::default();
        let mut held = BTreeSet::from([10_000, 10_002]);
        let mut app = with_ports(&[0, 0, 9000]);
        assert_eq!(assign(&mut app, None, &mut held, range), Ok(true));
        assert_eq!(app.requested_service_ports(), vec![10_001, 10_003, 9000]);
        // Posted again with 0s: the same ports, though lower ones are free by now.
        let mut held = BTreeSet::from([10_001, 10_003, 9000]);
        let mut again = with_ports(&[0, 0, 9000]);
        assert_eq!(assign(&mut again, Some(&app), &mut held, range), Ok(true));
        assert_eq!(again.requested_service_ports(), vec![10_001, 10_003, 9000]);
        // An app with no 0 is left as it is.
        let mut fixed = with_ports(&[10_001]);
        assert_eq!(assign(&mut fixed, None, &mut held, range), Ok(false));
    }

    #[test]
    fn a_full_range_is_refused_in_marathons_words() {
        let range = PortRange {
            min: 10_000,
            max: 10_002,
        };
        let mut held = BTreeSet::from([10_000]);
        let mut app = with_ports(&[0, 0]);
        let refused = assign(&mut app, None, &mut held, range).unwrap_err();
        assert_eq!(
            refused.to_string(),
            "All ports in the range [10000-10002) are already in use"
        );
    }

    proptest! {
        /// Apps deployed one after another never share a handed-out port, every handed-out
        /// port is in the range, and an app re-posted with its 0s keeps its ports.
        #[test]
        fn handed_out_ports_are_unique_in_range_and_stable(
            apps in prop::collection::vec(prop::collection::vec(prop_oneof![Just(0i64), 10_000i64..10_040], 0..4), 1..8),
        ) {
            let range = PortRange { min: 10_000, max: 10_060 };
            let mut held = BTreeSet::new();
            let mut deployed = Vec::new();
            for ports in &apps {
                let mut app = with_ports(ports);
                held.extend(app.requested_service_ports().iter().filter(|&&p| p > 0).map(|&p| p as u32));
                if assign(&mut app, None, &mut held, range).is_err() {
                    return Ok(());
                }
                deployed.push((ports.clone(), app));
            }
            let mut handed_out = BTreeSet::new();
            for (asked, app) in &deployed {
                for (asked, got) in asked.iter().zip(app.requested_service_ports()) {
                    if *asked == 0 {
                        prop_assert!((10_000..10_060).contains(&got));
                        prop_assert!(handed_out.insert(got), "{got} handed out twice");
                    } else {
                        prop_assert_eq!(*asked, got);
                    }
                }
            }
            for (asked, app) in &deployed {
                let mut again = with_ports(asked);
                let mut held = held_by(deployed.iter().map(|(_, a)| a));
                prop_assert!(assign(&mut again, Some(app), &mut held, range).is_ok());
                prop_assert_eq!(again.requested_service_ports(), app.requested_service_ports());
            }
        }
    }
}
