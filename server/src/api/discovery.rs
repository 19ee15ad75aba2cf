//! Stride's service discovery endpoints: `GET /v2/vips`, every VIP the apps' ports declare,
//! with its address, DNS name and the tasks behind it.

use crate::lb::routes::vips;
use crate::lb::vips::{dns_name, VipLabel};
use crate::service::Service;
use axum::extract::State;
use axum::Json;
use serde_json::{json, Value};

pub async fn list_vips(State(service): State<Service>) -> Json<Value> {
    let snapshot = service.snapshot();
    let apps = crate::lb::service_apps(&snapshot);
    let framework = &service.settings.framework_name;
    let listed: Vec<Value> = vips(&apps, service.settings.vip_range)
        .into_iter()
        .map(|vip| {
            let dns = match &vip.label {
                VipLabel::Named { name, .. } => Some(dns_name(name, framework)),
                VipLabel::Address { .. } => None,
            };
            let backends: Vec<Value> = vip
                .backends
                .iter()
                .map(|(app_id, b)| {
                    json!({
                        "appId": app_id,
                        "taskId": b.task_id,
                        "host": b.host,
                        "port": b.port,
                        "rotation": b.rotation,
                    })
                })
                .collect();
            json!({
                "vip": vip.label.text(),
                "address": vip.address.to_string(),
                "dns": dns,
                "backends": backends,
            })
        })
        .collect();
    Json(Value::Array(listed))
}
