//! Types shared by the REST API, the store, the scheduler and the dashboard, with Marathon's JSON
//! field names.

pub mod app;
pub mod checks;
pub mod dashboard;
pub mod error;
pub mod event;
pub mod group;
pub mod labels;
pub mod path;
pub mod pod;
pub mod ports;
pub mod residency;
pub mod task;
pub mod time;
pub mod validate;

pub use app::{
    AppDefinition, AppUpdate, EnvValue, KillSelection, PortDefinition, UnreachableStrategy,
    UpgradeStrategy, VersionInfo,
};
pub use checks::*;
pub use dashboard::*;
pub use error::ServiceError;
pub use event::{EventSubscriber, MarathonEvent, Plan};
pub use group::{GroupDefinition, GroupInfo, GroupUpdate};
pub use pod::{validate_pod, PodDefinition};
pub use ports::{HostPort, MappedPort, NetworkMode, Protocol, Rotation, ServicePort};
pub use residency::{DiskType, PersistentVolume, Residency};
pub use task::*;
pub use time::Timestamp;
pub use validate::{parse_body, validate_app, validate_app_update, BodyError, Violation};
