//! Checks the generated types against `tests/data/TEST_VECTORS.json` (a copy of
//! `shared/reference/mesos/TEST_VECTORS.json`, so the tests run without the shared folder):
//! 39 Call/Event bodies given both as JSON and as protobuf bytes (serialized
//! by the official Mesos schema), plus a stream captured from a real 1.11.0
//! master.
//!
//! For every vector the protobuf bytes are decoded with prost and then
//! compared, field by field, against the vector's JSON (which uses Mesos's
//! proto field names). Every JSON key must be matched by the walker in this
//! file, so a wrong field number, type or enum value in our `.proto` files
//! shows up as a mismatch (or as bytes dropped as an unknown field, which the
//! `encoded_len` check catches).

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Debug;
use std::path::PathBuf;

use prost::Message;
use proto::mesos::v1 as m;
use proto::mesos::v1::scheduler as s;
use proto::recordio::{encode_frame, RecordIoDecoder};
use serde_json::{Map, Value};

const CALL: &str = "mesos.v1.scheduler.Call";
const EVENT: &str = "mesos.v1.scheduler.Event";

// ---------------------------------------------------------------------------
// Loading and small codecs
// ---------------------------------------------------------------------------

fn vectors_file() -> Value {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/TEST_VECTORS.json");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    serde_json::from_str(&text).expect("TEST_VECTORS.json is valid JSON")
}

fn vectors(file: &Value) -> &[Value] {
    file["vectors"].as_array().expect("vectors array")
}

fn vector<'a>(file: &'a Value, name: &str) -> &'a Value {
    vectors(file)
        .iter()
        .find(|v| v["name"] == name)
        .unwrap_or_else(|| panic!("no vector named {name}"))
}

fn unhex(text: &str) -> Vec<u8> {
    assert!(text.len().is_multiple_of(2), "odd-length hex string");
    let nibble = |c: u8| match c {
        b'0'..=b'9' => c - b'0',
        b'a'..=b'f' => c - b'a' + 10,
        b'A'..=b'F' => c - b'A' + 10,
        _ => panic!("bad hex digit {:?}", c as char),
    };
    text.as_bytes()
        .chunks(2)
        .map(|pair| nibble(pair[0]) << 4 | nibble(pair[1]))
        .collect()
}

/// Standard base64 with padding, as Mesos writes `bytes` fields in JSON.
fn unbase64(text: &str) -> Vec<u8> {
    let sextet = |c: u8| -> u32 {
        match c {
            b'A'..=b'Z' => u32::from(c - b'A'),
            b'a'..=b'z' => u32::from(c - b'a') + 26,
            b'0'..=b'9' => u32::from(c - b'0') + 52,
            b'+' => 62,
            b'/' => 63,
            _ => panic!("bad base64 character {:?}", c as char),
        }
    };
    let data = text.trim_end_matches('=').as_bytes();
    let mut out = Vec::new();
    for group in data.chunks(4) {
        let mut acc = 0u32;
        for (i, &c) in group.iter().enumerate() {
            acc |= sextet(c) << (18 - 6 * i);
        }
        let bytes = acc.to_be_bytes();
        out.extend_from_slice(&bytes[1..group.len()]);
    }
    out
}

fn bytes_of(v: &Value, key: &str) -> Vec<u8> {
    unhex(
        v[key]
            .as_str()
            .unwrap_or_else(|| panic!("{key} is a hex string")),
    )
}

/// Decode, check nothing was dropped, re-encode, decode again.
fn round_trip<T: Message + Default + PartialEq + Debug>(name: &str, bytes: &[u8]) -> T {
    let msg = T::decode(bytes).unwrap_or_else(|e| panic!("{name}: decode failed: {e}"));
    // prost silently skips unknown fields. If a field number in our schema
    // were wrong, its bytes would be dropped here and the length would shrink.
    assert_eq!(msg.encoded_len(), bytes.len(), "{name}: encoded_len");
    let encoded = msg.encode_to_vec();
    let again =
        T::decode(encoded.as_slice()).unwrap_or_else(|e| panic!("{name}: re-decode failed: {e}"));
    assert_eq!(again, msg, "{name}: re-encoded message differs");
    // Stronger than required by the wire format: the inputs were written by
    // C++ protobuf in field-number order, our .proto declares fields in that
    // order too and maps are BTreeMaps, so prost reproduces the exact bytes.
    assert_eq!(encoded, bytes, "{name}: re-encoded bytes differ");
    msg
}

fn decode_all(stream: &[u8], chunk_size: usize) -> Vec<Vec<u8>> {
    let mut decoder = RecordIoDecoder::new();
    let mut records = Vec::new();
    for chunk in stream.chunks(chunk_size) {
        decoder.push(chunk);
        while let Some(record) = decoder.next_record().expect("valid RecordIO") {
            records.push(record);
        }
    }
    decoder.finish().expect("stream ends on a record boundary");
    records
}

// ---------------------------------------------------------------------------
// JSON walker: compares a prost message with the JSON of the same message and
// insists (on drop) that every JSON key was compared.
// ---------------------------------------------------------------------------

struct J<'a> {
    obj: &'a Map<String, Value>,
    path: String,
    seen: RefCell<BTreeSet<String>>,
}

impl<'a> J<'a> {
    fn new(value: &'a Value, path: String) -> Self {
        let obj = value
            .as_object()
            .unwrap_or_else(|| panic!("{path}: expected a JSON object, got {value}"));
        J {
            obj,
            path,
            seen: RefCell::new(BTreeSet::new()),
        }
    }

    fn take(&self, key: &str) -> Option<&'a Value> {
        self.seen.borrow_mut().insert(key.to_owned());
        self.obj.get(key)
    }

    fn at(&self, key: &str) -> String {
        format!("{}.{key}", self.path)
    }

    fn str(&self, key: &str, actual: Option<&str>) {
        let json = self.take(key).map(|v| v.as_str().expect("JSON string"));
        assert_eq!(actual, json, "{}", self.at(key));
    }

    /// Enum fields: JSON carries the value name.
    fn enm(&self, key: &str, actual: Option<&str>) {
        self.str(key, actual);
    }

    fn f64(&self, key: &str, actual: Option<f64>) {
        let json = self.take(key).map(|v| match v {
            Value::Number(n) => n.as_f64().expect("finite number"),
            Value::String(s) if s == "Infinity" => f64::INFINITY,
            Value::String(s) if s == "-Infinity" => f64::NEG_INFINITY,
            other => panic!("{}: not a double: {other}", self.at(key)),
        });
        assert_eq!(actual, json, "{}", self.at(key));
    }

    fn int(&self, key: &str, actual: Option<i128>) {
        let json = self.take(key).map(|v| {
            v.as_i64()
                .map(i128::from)
                .or_else(|| v.as_u64().map(i128::from))
                .unwrap_or_else(|| panic!("{}: not an integer: {v}", self.at(key)))
        });
        assert_eq!(actual, json, "{}", self.at(key));
    }

    fn bool(&self, key: &str, actual: Option<bool>) {
        let json = self.take(key).map(|v| v.as_bool().expect("JSON bool"));
        assert_eq!(actual, json, "{}", self.at(key));
    }

    fn bytes(&self, key: &str, actual: Option<&[u8]>) {
        let json = self
            .take(key)
            .map(|v| unbase64(v.as_str().expect("base64 string")));
        assert_eq!(actual, json.as_deref(), "{}", self.at(key));
    }

    fn strs(&self, key: &str, actual: &[String]) {
        let json: Vec<&str> = self
            .take(key)
            .map(|v| {
                let items = v.as_array().expect("JSON array");
                items.iter().map(|s| s.as_str().expect("string")).collect()
            })
            .unwrap_or_default();
        assert_eq!(actual, json.as_slice(), "{}", self.at(key));
    }

    fn msg<T>(&self, key: &str, actual: Option<&T>, check: fn(&J, &T)) {
        match (self.take(key), actual) {
            (Some(json), Some(actual)) => check(&J::new(json, self.at(key)), actual),
            (None, None) => {}
            (json, actual) => panic!(
                "{}: JSON present = {}, prost present = {}",
                self.at(key),
                json.is_some(),
                actual.is_some()
            ),
        }
    }

    fn msgs<T>(&self, key: &str, actual: &[T], check: fn(&J, &T)) {
        let json = self
            .take(key)
            .map(|v| v.as_array().expect("JSON array").as_slice())
            .unwrap_or_default();
        assert_eq!(actual.len(), json.len(), "{} length", self.at(key));
        for (i, (j, a)) in json.iter().zip(actual).enumerate() {
            check(&J::new(j, format!("{}[{i}]", self.at(key))), a);
        }
    }

    fn map<T>(&self, key: &str, actual: &BTreeMap<String, T>, check: fn(&J, &T)) {
        let empty = Map::new();
        let json = self
            .take(key)
            .map(|v| v.as_object().expect("JSON object"))
            .unwrap_or(&empty);
        let json_keys: Vec<&String> = json.keys().collect();
        let actual_keys: Vec<&String> = actual.keys().collect();
        assert_eq!(actual_keys, json_keys, "{} keys", self.at(key));
        for (k, v) in actual {
            check(&J::new(&json[k], format!("{}[{k:?}]", self.at(key))), v);
        }
    }
}

impl Drop for J<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            return;
        }
        let seen = self.seen.borrow();
        let unchecked: Vec<&String> = self.obj.keys().filter(|k| !seen.contains(*k)).collect();
        assert!(
            unchecked.is_empty(),
            "{}: JSON keys not compared by the test: {unchecked:?}",
            self.path
        );
    }
}

// ---------------------------------------------------------------------------
// Per-message comparisons (mesos.v1)
// ---------------------------------------------------------------------------

/// All `*ID` messages are `{ required string value = 1; }`.
macro_rules! id_checks {
    ($($fn_name:ident: $ty:ty),* $(,)?) => {
        $(fn $fn_name(j: &J, id: &$ty) {
            j.str("value", Some(&id.value));
        })*
    };
}

id_checks!(
    framework_id: m::FrameworkId,
    offer_id: m::OfferId,
    agent_id: m::AgentId,
    task_id: m::TaskId,
    executor_id: m::ExecutorId,
    resource_provider_id: m::ResourceProviderId,
    operation_id: m::OperationId,
);

fn container_id(j: &J, id: &m::ContainerId) {
    j.str("value", Some(&id.value));
    j.msg("parent", id.parent.as_deref(), container_id);
}

fn uuid(j: &J, u: &m::Uuid) {
    j.bytes("value", Some(&u.value));
}

fn framework_info(j: &J, f: &m::FrameworkInfo) {
    j.str("user", Some(&f.user));
    j.str("name", Some(&f.name));
    j.msg("id", f.id.as_ref(), framework_id);
    j.f64("failover_timeout", f.failover_timeout);
    j.bool("checkpoint", f.checkpoint);
    j.str("role", f.role.as_deref());
    j.str("hostname", f.hostname.as_deref());
    j.str("principal", f.principal.as_deref());
    j.str("webui_url", f.webui_url.as_deref());
    j.msgs("capabilities", &f.capabilities, |j, c| {
        j.enm("type", c.r#type.map(|_| c.r#type().as_str_name()));
    });
    j.msg("labels", f.labels.as_ref(), labels);
    j.strs("roles", &f.roles);
    assert!(f.offer_filters.is_empty(), "{}: offer_filters", j.path);
}

fn labels(j: &J, l: &m::Labels) {
    j.msgs("labels", &l.labels, |j, l| {
        j.str("key", Some(&l.key));
        j.str("value", l.value.as_deref());
    });
}

fn master_info(j: &J, mi: &m::MasterInfo) {
    j.str("id", Some(&mi.id));
    j.int("ip", Some(mi.ip.into()));
    j.int("port", Some(mi.port.into()));
    j.str("pid", mi.pid.as_deref());
    j.str("hostname", mi.hostname.as_deref());
    j.str("version", mi.version.as_deref());
    j.msg("address", mi.address.as_ref(), address);
    j.msg("domain", mi.domain.as_ref(), domain_info);
    j.msgs("capabilities", &mi.capabilities, |j, c| {
        j.enm("type", c.r#type.map(|_| c.r#type().as_str_name()));
    });
}

fn address(j: &J, a: &m::Address) {
    j.str("hostname", a.hostname.as_deref());
    j.str("ip", a.ip.as_deref());
    j.int("port", Some(a.port.into()));
}

fn url(j: &J, u: &m::Url) {
    j.str("scheme", Some(&u.scheme));
    j.msg("address", Some(&u.address), address);
    j.str("path", u.path.as_deref());
    j.msgs("query", &u.query, |j, p| {
        j.str("key", Some(&p.key));
        j.str("value", Some(&p.value));
    });
    j.str("fragment", u.fragment.as_deref());
}

fn domain_info(j: &J, d: &m::DomainInfo) {
    j.msg("fault_domain", d.fault_domain.as_ref(), |j, fd| {
        j.msg("region", Some(&fd.region), |j, r| {
            j.str("name", Some(&r.name))
        });
        j.msg("zone", Some(&fd.zone), |j, z| j.str("name", Some(&z.name)));
    });
}

fn offer(j: &J, o: &m::Offer) {
    j.msg("id", Some(&o.id), offer_id);
    j.msg("framework_id", Some(&o.framework_id), framework_id);
    j.msg("agent_id", Some(&o.agent_id), agent_id);
    j.str("hostname", Some(&o.hostname));
    j.msgs("resources", &o.resources, resource);
    j.msgs("executor_ids", &o.executor_ids, executor_id);
    j.msgs("attributes", &o.attributes, attribute);
    j.msg("url", o.url.as_ref(), url);
    j.msg("unavailability", o.unavailability.as_ref(), unavailability);
    j.msg(
        "allocation_info",
        o.allocation_info.as_ref(),
        allocation_info,
    );
    j.msg("domain", o.domain.as_ref(), domain_info);
}

fn inverse_offer(j: &J, o: &m::InverseOffer) {
    j.msg("id", Some(&o.id), offer_id);
    j.msg("url", o.url.as_ref(), url);
    j.msg("framework_id", Some(&o.framework_id), framework_id);
    j.msg("agent_id", o.agent_id.as_ref(), agent_id);
    j.msg("unavailability", Some(&o.unavailability), unavailability);
    j.msgs("resources", &o.resources, resource);
}

fn unavailability(j: &J, u: &m::Unavailability) {
    j.msg("start", Some(&u.start), |j, t| {
        j.int("nanoseconds", Some(t.nanoseconds.into()))
    });
    j.msg("duration", u.duration.as_ref(), duration);
}

fn duration(j: &J, d: &m::DurationInfo) {
    j.int("nanoseconds", Some(d.nanoseconds.into()));
}

fn filters(j: &J, f: &m::Filters) {
    j.f64("refuse_seconds", f.refuse_seconds);
}

fn operation(j: &J, op: &m::offer::Operation) {
    j.enm("type", op.r#type.map(|_| op.r#type().as_str_name()));
    j.msg("launch", op.launch.as_ref(), |j, l| {
        j.msgs("task_infos", &l.task_infos, task_info);
    });
    j.msg("launch_group", op.launch_group.as_ref(), |j, lg| {
        j.msg("executor", Some(&lg.executor), executor_info);
        j.msg("task_group", Some(&lg.task_group), |j, tg| {
            j.msgs("tasks", &tg.tasks, task_info);
        });
    });
    j.msg("reserve", op.reserve.as_ref(), |j, r| {
        j.msgs("resources", &r.resources, resource);
        j.msgs("source", &r.source, resource);
    });
    j.msg("unreserve", op.unreserve.as_ref(), |j, r| {
        j.msgs("resources", &r.resources, resource);
    });
    j.msg("create", op.create.as_ref(), |j, c| {
        j.msgs("volumes", &c.volumes, resource);
    });
    j.msg("destroy", op.destroy.as_ref(), |j, d| {
        j.msgs("volumes", &d.volumes, resource);
    });
    j.msg("id", op.id.as_ref(), operation_id);
    for (name, present) in [
        ("grow_volume", op.grow_volume.is_some()),
        ("shrink_volume", op.shrink_volume.is_some()),
        ("create_disk", op.create_disk.is_some()),
        ("destroy_disk", op.destroy_disk.is_some()),
    ] {
        assert!(!present, "{}: unexpected {name}", j.path);
    }
}

fn resource(j: &J, r: &m::Resource) {
    j.str("name", Some(&r.name));
    j.enm("type", Some(r.r#type().as_str_name()));
    j.msg("scalar", r.scalar.as_ref(), scalar);
    j.msg("ranges", r.ranges.as_ref(), ranges);
    j.msg("set", r.set.as_ref(), |j, s| j.strs("item", &s.item));
    j.str("role", r.role.as_deref());
    j.msg("disk", r.disk.as_ref(), |j, d| {
        j.msg("persistence", d.persistence.as_ref(), |j, p| {
            j.str("id", Some(&p.id));
            j.str("principal", p.principal.as_deref());
        });
        j.msg("volume", d.volume.as_ref(), volume);
        assert!(d.source.is_none(), "{}: disk.source", j.path);
    });
    j.msg("reservation", r.reservation.as_ref(), reservation_info);
    j.msg("revocable", r.revocable.as_ref(), |_, _| {});
    j.msg("shared", r.shared.as_ref(), |_, _| {});
    j.msg(
        "allocation_info",
        r.allocation_info.as_ref(),
        allocation_info,
    );
    j.msg("provider_id", r.provider_id.as_ref(), resource_provider_id);
    j.msgs("reservations", &r.reservations, reservation_info);
}

fn allocation_info(j: &J, a: &m::resource::AllocationInfo) {
    j.str("role", a.role.as_deref());
}

fn reservation_info(j: &J, r: &m::resource::ReservationInfo) {
    j.str("principal", r.principal.as_deref());
    j.msg("labels", r.labels.as_ref(), labels);
    j.str("role", r.role.as_deref());
    j.enm("type", r.r#type.map(|_| r.r#type().as_str_name()));
}

fn scalar(j: &J, s: &m::value::Scalar) {
    j.f64("value", Some(s.value));
}

fn ranges(j: &J, r: &m::value::Ranges) {
    j.msgs("range", &r.range, |j, r| {
        j.int("begin", Some(r.begin.into()));
        j.int("end", Some(r.end.into()));
    });
}

fn attribute(j: &J, a: &m::Attribute) {
    j.str("name", Some(&a.name));
    j.enm("type", Some(a.r#type().as_str_name()));
    j.msg("scalar", a.scalar.as_ref(), scalar);
    j.msg("ranges", a.ranges.as_ref(), ranges);
    j.msg("text", a.text.as_ref(), |j, t| {
        j.str("value", Some(&t.value))
    });
    j.msg("set", a.set.as_ref(), |j, s| j.strs("item", &s.item));
}

fn volume(j: &J, v: &m::Volume) {
    j.str("container_path", Some(&v.container_path));
    j.str("host_path", v.host_path.as_deref());
    j.enm("mode", Some(v.mode().as_str_name()));
    assert!(v.image.is_none() && v.source.is_none(), "{}", j.path);
}

fn task_info(j: &J, t: &m::TaskInfo) {
    j.str("name", Some(&t.name));
    j.msg("task_id", Some(&t.task_id), task_id);
    j.msg("agent_id", Some(&t.agent_id), agent_id);
    j.msgs("resources", &t.resources, resource);
    j.msg("executor", t.executor.as_ref(), executor_info);
    j.bytes("data", t.data.as_deref());
    j.msg("command", t.command.as_ref(), command_info);
    j.msg("health_check", t.health_check.as_ref(), health_check);
    j.msg("container", t.container.as_ref(), container_info);
    j.msg("labels", t.labels.as_ref(), labels);
    j.msg("discovery", t.discovery.as_ref(), discovery_info);
    j.msg("kill_policy", t.kill_policy.as_ref(), kill_policy);
    assert!(t.check.is_none(), "{}: check", j.path);
    j.msg(
        "max_completion_time",
        t.max_completion_time.as_ref(),
        duration,
    );
    j.map("limits", &t.limits, scalar);
}

fn executor_info(j: &J, e: &m::ExecutorInfo) {
    j.msg("executor_id", Some(&e.executor_id), executor_id);
    j.bytes("data", e.data.as_deref());
    j.msgs("resources", &e.resources, resource);
    j.msg("command", e.command.as_ref(), command_info);
    j.msg("framework_id", e.framework_id.as_ref(), framework_id);
    j.str("name", e.name.as_deref());
    j.str("source", e.source.as_deref());
    j.msg("container", e.container.as_ref(), container_info);
    j.msg("discovery", e.discovery.as_ref(), discovery_info);
    j.msg(
        "shutdown_grace_period",
        e.shutdown_grace_period.as_ref(),
        duration,
    );
    j.msg("labels", e.labels.as_ref(), labels);
    j.enm("type", e.r#type.map(|_| e.r#type().as_str_name()));
}

fn command_info(j: &J, c: &m::CommandInfo) {
    j.msgs("uris", &c.uris, |j, u| {
        j.str("value", Some(&u.value));
        j.bool("executable", u.executable);
        j.bool("extract", u.extract);
        j.bool("cache", u.cache);
        j.str("output_file", u.output_file.as_deref());
    });
    j.msg("environment", c.environment.as_ref(), |j, env| {
        j.msgs("variables", &env.variables, |j, v| {
            j.str("name", Some(&v.name));
            j.str("value", v.value.as_deref());
            j.enm("type", v.r#type.map(|_| v.r#type().as_str_name()));
            assert!(v.secret.is_none(), "{}: secret", j.path);
        });
    });
    j.str("value", c.value.as_deref());
    j.str("user", c.user.as_deref());
    j.bool("shell", c.shell);
    j.strs("arguments", &c.arguments);
}

fn health_check(j: &J, h: &m::HealthCheck) {
    j.msg("http", h.http.as_ref(), |j, http| {
        j.int("port", Some(http.port.into()));
        j.str("path", http.path.as_deref());
        j.str("scheme", http.scheme.as_deref());
        assert!(http.statuses.is_empty(), "{}: statuses", j.path);
        j.enm(
            "protocol",
            http.protocol.map(|_| http.protocol().as_str_name()),
        );
    });
    j.f64("delay_seconds", h.delay_seconds);
    j.f64("interval_seconds", h.interval_seconds);
    j.f64("timeout_seconds", h.timeout_seconds);
    j.int(
        "consecutive_failures",
        h.consecutive_failures.map(i128::from),
    );
    j.f64("grace_period_seconds", h.grace_period_seconds);
    j.msg("command", h.command.as_ref(), command_info);
    j.enm("type", h.r#type.map(|_| h.r#type().as_str_name()));
    j.msg("tcp", h.tcp.as_ref(), |j, tcp| {
        j.int("port", Some(tcp.port.into()));
        j.enm(
            "protocol",
            tcp.protocol.map(|_| tcp.protocol().as_str_name()),
        );
    });
}

fn kill_policy(j: &J, k: &m::KillPolicy) {
    j.msg("grace_period", k.grace_period.as_ref(), duration);
}

fn discovery_info(j: &J, d: &m::DiscoveryInfo) {
    j.enm("visibility", Some(d.visibility().as_str_name()));
    j.str("name", d.name.as_deref());
    j.str("environment", d.environment.as_deref());
    j.str("location", d.location.as_deref());
    j.str("version", d.version.as_deref());
    j.msg("ports", d.ports.as_ref(), |j, ports| {
        j.msgs("ports", &ports.ports, |j, p| {
            j.int("number", Some(p.number.into()));
            j.str("name", p.name.as_deref());
            j.str("protocol", p.protocol.as_deref());
            j.enm(
                "visibility",
                p.visibility.map(|_| p.visibility().as_str_name()),
            );
            j.msg("labels", p.labels.as_ref(), labels);
        });
    });
    j.msg("labels", d.labels.as_ref(), labels);
}

fn container_info(j: &J, c: &m::ContainerInfo) {
    j.enm("type", Some(c.r#type().as_str_name()));
    j.msgs("volumes", &c.volumes, volume);
    assert!(c.docker.is_none() && c.mesos.is_none(), "{}", j.path);
    j.str("hostname", c.hostname.as_deref());
    j.msgs("network_infos", &c.network_infos, network_info);
    j.msg("linux_info", c.linux_info.as_ref(), |j, l| {
        j.bool("share_pid_namespace", l.share_pid_namespace);
        j.enm("ipc_mode", l.ipc_mode.map(|_| l.ipc_mode().as_str_name()));
        j.int("shm_size", l.shm_size.map(i128::from));
        j.bool("share_cgroups", l.share_cgroups);
    });
    assert!(
        c.rlimit_info.is_none() && c.tty_info.is_none(),
        "{}",
        j.path
    );
}

fn network_info(j: &J, n: &m::NetworkInfo) {
    j.strs("groups", &n.groups);
    j.msg("labels", n.labels.as_ref(), labels);
    j.msgs("ip_addresses", &n.ip_addresses, |j, ip| {
        j.enm("protocol", ip.protocol.map(|_| ip.protocol().as_str_name()));
        j.str("ip_address", ip.ip_address.as_deref());
    });
    j.str("name", n.name.as_deref());
    j.msgs("port_mappings", &n.port_mappings, |j, p| {
        j.int("host_port", Some(p.host_port.into()));
        j.int("container_port", Some(p.container_port.into()));
        j.str("protocol", p.protocol.as_deref());
    });
}

fn task_status(j: &J, t: &m::TaskStatus) {
    j.msg("task_id", Some(&t.task_id), task_id);
    j.enm("state", Some(t.state().as_str_name()));
    j.bytes("data", t.data.as_deref());
    j.str("message", t.message.as_deref());
    j.msg("agent_id", t.agent_id.as_ref(), agent_id);
    j.f64("timestamp", t.timestamp);
    j.msg("executor_id", t.executor_id.as_ref(), executor_id);
    j.bool("healthy", t.healthy);
    j.enm("source", t.source.map(|_| t.source().as_str_name()));
    j.enm("reason", t.reason.map(|_| t.reason().as_str_name()));
    j.bytes("uuid", t.uuid.as_deref());
    j.msg("labels", t.labels.as_ref(), labels);
    j.msg("container_status", t.container_status.as_ref(), |j, cs| {
        j.msgs("network_infos", &cs.network_infos, network_info);
        assert!(cs.cgroup_info.is_none(), "{}: cgroup_info", j.path);
        j.int("executor_pid", cs.executor_pid.map(i128::from));
        j.msg("container_id", cs.container_id.as_ref(), container_id);
    });
    assert!(
        t.unreachable_time.is_none() && t.check_status.is_none() && t.limitation.is_none(),
        "{}",
        j.path
    );
}

fn operation_status(j: &J, o: &m::OperationStatus) {
    j.msg("operation_id", o.operation_id.as_ref(), operation_id);
    j.enm("state", Some(o.state().as_str_name()));
    j.str("message", o.message.as_deref());
    j.msgs("converted_resources", &o.converted_resources, resource);
    j.msg("uuid", o.uuid.as_ref(), uuid);
    j.msg("agent_id", o.agent_id.as_ref(), agent_id);
    j.msg(
        "resource_provider_id",
        o.resource_provider_id.as_ref(),
        resource_provider_id,
    );
}

// ---------------------------------------------------------------------------
// Per-message comparisons (mesos.v1.scheduler)
// ---------------------------------------------------------------------------

fn offer_constraints(j: &J, oc: &s::OfferConstraints) {
    j.map("role_constraints", &oc.role_constraints, |j, rc| {
        j.msgs("groups", &rc.groups, |j, g| {
            j.msgs(
                "attribute_constraints",
                &g.attribute_constraints,
                |j, ac| {
                    j.msg("selector", Some(&ac.selector), |j, sel| {
                        use s::attribute_constraint::selector::Selector;
                        match sel.selector.as_ref() {
                            Some(Selector::AttributeName(name)) => {
                                j.str("attribute_name", Some(name));
                            }
                            Some(Selector::PseudoattributeType(raw)) => {
                                use s::attribute_constraint::selector::PseudoattributeType;
                                let ty = PseudoattributeType::try_from(*raw).expect("known type");
                                j.enm("pseudoattribute_type", Some(ty.as_str_name()));
                            }
                            None => panic!("{}: empty selector", j.path),
                        }
                    });
                    j.msg("predicate", Some(&ac.predicate), |j, p| {
                        use s::attribute_constraint::predicate::Predicate;
                        match p.predicate.as_ref().expect("predicate set") {
                            Predicate::Exists(e) => j.msg("exists", Some(e), |_, _| {}),
                            Predicate::NotExists(e) => j.msg("not_exists", Some(e), |_, _| {}),
                            Predicate::TextEquals(t) => j.msg("text_equals", Some(t), |j, t| {
                                j.str("value", Some(&t.value))
                            }),
                            Predicate::TextNotEquals(t) => {
                                j.msg("text_not_equals", Some(t), |j, t| {
                                    j.str("value", Some(&t.value))
                                })
                            }
                            Predicate::TextMatches(t) => j.msg("text_matches", Some(t), |j, t| {
                                j.str("regex", Some(&t.regex))
                            }),
                            Predicate::TextNotMatches(t) => {
                                j.msg("text_not_matches", Some(t), |j, t| {
                                    j.str("regex", Some(&t.regex))
                                })
                            }
                        }
                    });
                },
            );
        });
    });
}

fn call(j: &J, c: &s::Call) {
    j.msg("framework_id", c.framework_id.as_ref(), framework_id);
    j.enm("type", c.r#type.map(|_| c.r#type().as_str_name()));
    j.msg("subscribe", c.subscribe.as_ref(), |j, sub| {
        j.msg("framework_info", Some(&sub.framework_info), framework_info);
        j.strs("suppressed_roles", &sub.suppressed_roles);
        j.msg(
            "offer_constraints",
            sub.offer_constraints.as_ref(),
            offer_constraints,
        );
    });
    j.msg("accept", c.accept.as_ref(), |j, a| {
        j.msgs("offer_ids", &a.offer_ids, offer_id);
        j.msgs("operations", &a.operations, operation);
        j.msg("filters", a.filters.as_ref(), filters);
    });
    j.msg("decline", c.decline.as_ref(), |j, d| {
        j.msgs("offer_ids", &d.offer_ids, offer_id);
        j.msg("filters", d.filters.as_ref(), filters);
    });
    j.msg("kill", c.kill.as_ref(), |j, k| {
        j.msg("task_id", Some(&k.task_id), task_id);
        j.msg("agent_id", k.agent_id.as_ref(), agent_id);
        j.msg("kill_policy", k.kill_policy.as_ref(), kill_policy);
    });
    j.msg("shutdown", c.shutdown.as_ref(), |j, sd| {
        j.msg("executor_id", Some(&sd.executor_id), executor_id);
        j.msg("agent_id", Some(&sd.agent_id), agent_id);
    });
    j.msg("acknowledge", c.acknowledge.as_ref(), |j, a| {
        j.msg("agent_id", Some(&a.agent_id), agent_id);
        j.msg("task_id", Some(&a.task_id), task_id);
        j.bytes("uuid", Some(&a.uuid));
    });
    j.msg("reconcile", c.reconcile.as_ref(), |j, r| {
        j.msgs("tasks", &r.tasks, |j, t| {
            j.msg("task_id", Some(&t.task_id), task_id);
            j.msg("agent_id", t.agent_id.as_ref(), agent_id);
        });
    });
    j.msg("message", c.message.as_ref(), |j, msg| {
        j.msg("agent_id", Some(&msg.agent_id), agent_id);
        j.msg("executor_id", Some(&msg.executor_id), executor_id);
        j.bytes("data", Some(&msg.data));
    });
    j.msg("request", c.request.as_ref(), |j, r| {
        j.msgs("requests", &r.requests, |j, req| {
            j.msg("agent_id", req.agent_id.as_ref(), agent_id);
            j.msgs("resources", &req.resources, resource);
        });
    });
    j.msg(
        "accept_inverse_offers",
        c.accept_inverse_offers.as_ref(),
        |j, a| {
            j.msgs("inverse_offer_ids", &a.inverse_offer_ids, offer_id);
            j.msg("filters", a.filters.as_ref(), filters);
        },
    );
    j.msg(
        "decline_inverse_offers",
        c.decline_inverse_offers.as_ref(),
        |j, d| {
            j.msgs("inverse_offer_ids", &d.inverse_offer_ids, offer_id);
            j.msg("filters", d.filters.as_ref(), filters);
        },
    );
    j.msg("revive", c.revive.as_ref(), |j, r| {
        j.strs("roles", &r.roles)
    });
    j.msg("suppress", c.suppress.as_ref(), |j, r| {
        j.strs("roles", &r.roles)
    });
    j.msg(
        "acknowledge_operation_status",
        c.acknowledge_operation_status.as_ref(),
        |j, a| {
            j.msg("agent_id", a.agent_id.as_ref(), agent_id);
            j.msg(
                "resource_provider_id",
                a.resource_provider_id.as_ref(),
                resource_provider_id,
            );
            j.bytes("uuid", Some(&a.uuid));
            j.msg("operation_id", Some(&a.operation_id), operation_id);
        },
    );
    j.msg(
        "reconcile_operations",
        c.reconcile_operations.as_ref(),
        |j, r| {
            j.msgs("operations", &r.operations, |j, op| {
                j.msg("operation_id", Some(&op.operation_id), operation_id);
                j.msg("agent_id", op.agent_id.as_ref(), agent_id);
                j.msg(
                    "resource_provider_id",
                    op.resource_provider_id.as_ref(),
                    resource_provider_id,
                );
            });
        },
    );
    j.msg("update_framework", c.update_framework.as_ref(), |j, u| {
        j.msg("framework_info", Some(&u.framework_info), framework_info);
        j.strs("suppressed_roles", &u.suppressed_roles);
        j.msg(
            "offer_constraints",
            u.offer_constraints.as_ref(),
            offer_constraints,
        );
    });
}

fn event(j: &J, e: &s::Event) {
    j.enm("type", e.r#type.map(|_| e.r#type().as_str_name()));
    j.msg("subscribed", e.subscribed.as_ref(), |j, sub| {
        j.msg("framework_id", Some(&sub.framework_id), framework_id);
        j.f64("heartbeat_interval_seconds", sub.heartbeat_interval_seconds);
        j.msg("master_info", sub.master_info.as_ref(), master_info);
    });
    j.msg("offers", e.offers.as_ref(), |j, o| {
        j.msgs("offers", &o.offers, offer);
    });
    j.msg("rescind", e.rescind.as_ref(), |j, r| {
        j.msg("offer_id", Some(&r.offer_id), offer_id);
    });
    j.msg("update", e.update.as_ref(), |j, u| {
        j.msg("status", Some(&u.status), task_status);
    });
    j.msg("message", e.message.as_ref(), |j, msg| {
        j.msg("agent_id", Some(&msg.agent_id), agent_id);
        j.msg("executor_id", Some(&msg.executor_id), executor_id);
        j.bytes("data", Some(&msg.data));
    });
    j.msg("failure", e.failure.as_ref(), |j, f| {
        j.msg("agent_id", f.agent_id.as_ref(), agent_id);
        j.msg("executor_id", f.executor_id.as_ref(), executor_id);
        j.int("status", f.status.map(i128::from));
    });
    j.msg("error", e.error.as_ref(), |j, err| {
        j.str("message", Some(&err.message));
    });
    j.msg("inverse_offers", e.inverse_offers.as_ref(), |j, io| {
        j.msgs("inverse_offers", &io.inverse_offers, inverse_offer);
    });
    j.msg(
        "rescind_inverse_offer",
        e.rescind_inverse_offer.as_ref(),
        |j, r| j.msg("inverse_offer_id", Some(&r.inverse_offer_id), offer_id),
    );
    j.msg(
        "update_operation_status",
        e.update_operation_status.as_ref(),
        |j, u| j.msg("status", Some(&u.status), operation_status),
    );
}

// ---------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------

#[test]
fn every_vector_round_trips_and_matches_its_json() {
    let file = vectors_file();
    let all = vectors(&file);
    assert_eq!(all.len(), 39, "vector count");
    let (mut calls, mut events) = (0, 0);
    for v in all {
        let name = v["name"].as_str().expect("name");
        let bytes = bytes_of(v, "protobuf_hex");
        let len = v["protobuf_len"].as_u64().expect("protobuf_len");
        assert_eq!(bytes.len() as u64, len, "{name}: protobuf_len");
        let json = J::new(&v["json"], name.to_owned());
        match v["message"].as_str() {
            Some(CALL) => {
                calls += 1;
                call(&json, &round_trip::<s::Call>(name, &bytes));
            }
            Some(EVENT) => {
                events += 1;
                event(&json, &round_trip::<s::Event>(name, &bytes));
            }
            other => panic!("{name}: unexpected message type {other:?}"),
        }
    }
    assert_eq!((calls, events), (24, 15));
}

#[test]
fn event_vectors_have_exact_recordio_frames() {
    let file = vectors_file();
    for v in vectors(&file).iter().filter(|v| v["message"] == EVENT) {
        let name = v["name"].as_str().expect("name");
        let payload = bytes_of(v, "protobuf_hex");

        let frame = bytes_of(v, "recordio_protobuf_frame_hex");
        assert_eq!(frame, encode_frame(&payload), "{name}: protobuf frame");
        assert_eq!(decode_all(&frame, 1), vec![payload], "{name}: byte-wise");

        // The JSON frame is text: "<len>\n<compact JSON>".
        let json_frame = v["recordio_json_frame"].as_str().expect("json frame");
        let records = decode_all(json_frame.as_bytes(), 1);
        assert_eq!(records.len(), 1, "{name}: one JSON record");
        assert_eq!(encode_frame(&records[0]), json_frame.as_bytes(), "{name}");
        let body: Value = serde_json::from_slice(&records[0]).expect("JSON record");
        assert_eq!(body["type"], v["json"]["type"], "{name}: JSON frame type");
    }
}

#[test]
fn all_event_frames_concatenated_decode_in_odd_chunks() {
    let file = vectors_file();
    let events: Vec<&Value> = vectors(&file)
        .iter()
        .filter(|v| v["message"] == EVENT)
        .collect();
    let stream: Vec<u8> = events
        .iter()
        .flat_map(|v| bytes_of(v, "recordio_protobuf_frame_hex"))
        .collect();
    for chunk_size in [1, 2, 3, 7, 64, 1000, stream.len()] {
        let records = decode_all(&stream, chunk_size);
        assert_eq!(records.len(), events.len());
        for (record, v) in records.iter().zip(&events) {
            let e = s::Event::decode(record.as_slice()).expect("event");
            assert_eq!(e.r#type().as_str_name(), v["json"]["type"]);
        }
    }
}

/// Hand-written spot checks with literal values, independent of the JSON
/// walker above.
#[test]
fn spot_check_field_values() {
    let file = vectors_file();
    let decode_call = |name: &str| {
        s::Call::decode(bytes_of(vector(&file, name), "protobuf_hex").as_slice()).unwrap()
    };
    let decode_event = |name: &str| {
        s::Event::decode(bytes_of(vector(&file, name), "protobuf_hex").as_slice()).unwrap()
    };

    // SUBSCRIBE: framework_info.user = 1, name = 2, roles = 12, capabilities = 10.
    let c = decode_call("call_subscribe_first");
    assert_eq!(c.r#type(), s::call::Type::Subscribe);
    assert!(c.framework_id.is_none());
    let sub = c.subscribe.as_ref().unwrap();
    assert_eq!(sub.framework_info.user, "foo");
    assert_eq!(sub.framework_info.name, "Example HTTP Framework");
    assert_eq!(sub.framework_info.roles, ["test1", "test2"]);
    assert_eq!(
        sub.framework_info.capabilities[0].r#type(),
        m::framework_info::capability::Type::MultiRole
    );
    assert_eq!(sub.suppressed_roles, ["test2"]);
    let rc = &sub.offer_constraints.as_ref().unwrap().role_constraints["test1"];
    let ac = &rc.groups[0].attribute_constraints[0];
    assert_eq!(
        ac.selector.selector,
        Some(s::attribute_constraint::selector::Selector::AttributeName(
            "foo".into()
        ))
    );
    assert!(matches!(
        ac.predicate.predicate,
        Some(s::attribute_constraint::predicate::Predicate::Exists(_))
    ));

    let c = decode_call("call_subscribe_marathon_like");
    let fi = &c.subscribe.as_ref().unwrap().framework_info;
    assert_eq!(fi.failover_timeout, Some(604800.0));
    assert_eq!(fi.checkpoint, Some(true));
    assert_eq!(fi.hostname.as_deref(), Some("sched-1.example"));
    assert_eq!(fi.principal.as_deref(), Some("marathon-rs"));
    assert_eq!(fi.role, None);
    assert_eq!(fi.role(), "*", "proto2 default of FrameworkInfo.role");

    // ACCEPT with LAUNCH: resources, limits map, executor command.
    let c = decode_call("call_accept_launch_docs");
    let accept = c.accept.as_ref().unwrap();
    assert_eq!(accept.offer_ids[0].value, "12220-3440-12532-O12");
    let op = &accept.operations[0];
    assert_eq!(op.r#type(), m::offer::operation::Type::Launch);
    let task = &op.launch.as_ref().unwrap().task_infos[0];
    assert_eq!(task.name, "My Task");
    assert_eq!(task.agent_id.value, "12220-3440-12532-S1233");
    assert_eq!(task.resources[0].name, "cpus");
    assert_eq!(task.resources[0].r#type(), m::value::Type::Scalar);
    assert_eq!(task.resources[0].scalar.as_ref().unwrap().value, 1.0);
    assert_eq!(task.resources[1].scalar.as_ref().unwrap().value, 128.0);
    assert_eq!(
        task.resources[1]
            .allocation_info
            .as_ref()
            .unwrap()
            .role
            .as_deref(),
        Some("engineering")
    );
    assert_eq!(task.limits["cpus"].value, f64::INFINITY);
    assert_eq!(task.limits["mem"].value, 512.0);
    let exec = task.executor.as_ref().unwrap();
    assert_eq!(
        exec.command.as_ref().unwrap().value.as_deref(),
        Some("sleep 1000")
    );
    assert_eq!(exec.command.as_ref().unwrap().shell, Some(true));
    assert_eq!(accept.filters.as_ref().unwrap().refuse_seconds, Some(5.0));

    let c = decode_call("call_accept_launch_command_task");
    let task = &c.accept.as_ref().unwrap().operations[0]
        .launch
        .as_ref()
        .unwrap()
        .task_infos[0];
    let ports = task.resources[2].ranges.as_ref().unwrap();
    assert_eq!((ports.range[0].begin, ports.range[0].end), (31000, 31000));
    let hc = task.health_check.as_ref().unwrap();
    assert_eq!(hc.r#type(), m::health_check::Type::Http);
    assert_eq!(hc.http.as_ref().unwrap().port, 31000);
    assert_eq!(hc.grace_period_seconds, Some(30.0));
    assert_eq!(hc.consecutive_failures, Some(3));
    let disc = task.discovery.as_ref().unwrap();
    assert_eq!(disc.visibility(), m::discovery_info::Visibility::Framework);
    assert_eq!(
        task.kill_policy
            .as_ref()
            .unwrap()
            .grace_period
            .as_ref()
            .unwrap()
            .nanoseconds,
        5_000_000_000
    );

    let c = decode_call("call_accept_launch_group");
    let lg = c.accept.as_ref().unwrap().operations[0]
        .launch_group
        .as_ref()
        .unwrap();
    assert_eq!(lg.executor.r#type(), m::executor_info::Type::Default);
    let task = &lg.task_group.tasks[0];
    assert_eq!(
        task.container.as_ref().unwrap().r#type(),
        m::container_info::Type::Mesos
    );
    assert_eq!(
        task.container
            .as_ref()
            .unwrap()
            .linux_info
            .as_ref()
            .unwrap()
            .share_cgroups,
        Some(false)
    );

    let c = decode_call("call_accept_reserve_create");
    let ops = &c.accept.as_ref().unwrap().operations;
    let reserved = &ops[0].reserve.as_ref().unwrap().resources[0];
    assert_eq!(
        reserved.reservations[0].r#type(),
        m::resource::reservation_info::Type::Dynamic
    );
    assert_eq!(reserved.reservations[0].role.as_deref(), Some("db"));
    let vol = &ops[1].create.as_ref().unwrap().volumes[0];
    let disk = vol.disk.as_ref().unwrap();
    assert_eq!(disk.persistence.as_ref().unwrap().id, "pg-data-1");
    assert_eq!(disk.volume.as_ref().unwrap().container_path, "data");
    assert_eq!(disk.volume.as_ref().unwrap().mode(), m::volume::Mode::Rw);

    // DECLINE: Filters.refuse_seconds = 1 (double).
    let c = decode_call("call_decline");
    let d = c.decline.as_ref().unwrap();
    assert_eq!(d.offer_ids.len(), 2);
    assert_eq!(d.offer_ids[1].value, "12220-3440-12532-O13");
    assert_eq!(d.filters.as_ref().unwrap().refuse_seconds, Some(5.0));
    let c = decode_call("call_decline_inverse_offers");
    assert_eq!(
        c.decline_inverse_offers
            .as_ref()
            .unwrap()
            .filters
            .as_ref()
            .unwrap()
            .refuse_seconds,
        Some(60.0)
    );

    // KILL: task_id = 1, agent_id = 2, kill_policy = 3.
    let c = decode_call("call_kill");
    let k = c.kill.as_ref().unwrap();
    assert_eq!(k.task_id.value, "12220-3440-12532-my-task");
    assert_eq!(k.agent_id.as_ref().unwrap().value, "12220-3440-12532-S1233");
    let c = decode_call("call_kill_with_policy");
    let gp = c
        .kill
        .as_ref()
        .unwrap()
        .kill_policy
        .as_ref()
        .unwrap()
        .grace_period
        .as_ref();
    assert_eq!(gp.unwrap().nanoseconds, 0);

    // ACKNOWLEDGE: raw 16-byte uuid.
    let uuid = unhex(file["uuid_used_hex"].as_str().unwrap());
    assert_eq!(uuid.len(), 16);
    let c = decode_call("call_acknowledge");
    let ack = c.acknowledge.as_ref().unwrap();
    assert_eq!(ack.uuid, uuid);
    assert_eq!(ack.task_id.value, "12220-3440-12532-my-task");
    let c = decode_call("call_acknowledge_operation_status");
    let ack = c.acknowledge_operation_status.as_ref().unwrap();
    assert_eq!(ack.uuid, uuid);
    assert_eq!(ack.operation_id.value, "73jhakdlfha723adf");

    let c = decode_call("call_revive");
    assert_eq!(c.r#type(), s::call::Type::Revive);
    assert_eq!(c.revive.as_ref().unwrap().roles, ["test1"]);
    let c = decode_call("call_suppress");
    assert_eq!(c.r#type(), s::call::Type::Suppress);
    assert_eq!(c.suppress.as_ref().unwrap().roles, ["test1", "test2"]);
    let c = decode_call("call_reconcile_implicit");
    assert!(c.reconcile.as_ref().unwrap().tasks.is_empty());
    let c = decode_call("call_update_framework");
    assert_eq!(c.r#type(), s::call::Type::UpdateFramework);
    assert_eq!(
        c.update_framework
            .as_ref()
            .unwrap()
            .framework_info
            .id
            .as_ref()
            .unwrap()
            .value,
        "12220-3440-12532-2345"
    );

    // SUBSCRIBED: master_info.ip is a packed IPv4 (127.0.0.1).
    let e = decode_event("event_subscribed");
    let sub = e.subscribed.as_ref().unwrap();
    assert_eq!(sub.heartbeat_interval_seconds, Some(15.0));
    let mi = sub.master_info.as_ref().unwrap();
    assert_eq!(mi.ip, 16777343);
    assert_eq!(mi.port, 5050);
    assert_eq!(
        mi.capabilities[2].r#type(),
        m::master_info::capability::Type::QuotaV2
    );

    // OFFERS: resources and attributes.
    let e = decode_event("event_offers");
    let o = &e.offers.as_ref().unwrap().offers[0];
    assert_eq!(o.hostname, "agent.host");
    assert_eq!(o.resources[0].name, "cpus");
    assert_eq!(o.resources[0].scalar.as_ref().unwrap().value, 2.0);
    assert_eq!(o.resources[0].role.as_deref(), Some("*"));
    assert_eq!(o.attributes[0].r#type(), m::value::Type::Text);
    assert_eq!(o.attributes[0].text.as_ref().unwrap().value, "ubuntu16.04");
    assert_eq!(o.executor_ids[0].value, "12214-23523-my-executor");

    let e = decode_event("event_offers_full");
    let o = &e.offers.as_ref().unwrap().offers[0];
    let by_name = |n: &str| o.resources.iter().find(|r| r.name == n).unwrap();
    assert_eq!(by_name("cpus").scalar.as_ref().unwrap().value, 3.5);
    assert_eq!(by_name("mem").scalar.as_ref().unwrap().value, 7168.0);
    let ports = by_name("ports").ranges.as_ref().unwrap();
    assert_eq!((ports.range[0].begin, ports.range[0].end), (31000, 32000));
    assert_eq!(by_name("gpus").scalar.as_ref().unwrap().value, 1.0);
    let persistent = o.resources.iter().find(|r| r.disk.is_some()).unwrap();
    assert_eq!(persistent.role.as_deref(), Some("web"));
    assert_eq!(
        persistent
            .reservation
            .as_ref()
            .unwrap()
            .principal
            .as_deref(),
        Some("marathon-rs")
    );
    assert_eq!(o.url.as_ref().unwrap().address.port, 5051);
    let fd = o.domain.as_ref().unwrap().fault_domain.as_ref().unwrap();
    assert_eq!(
        (fd.region.name.as_str(), fd.zone.name.as_str()),
        ("eu-west", "eu-west-1a")
    );
    assert_eq!(o.attributes[2].set.as_ref().unwrap().item, ["a", "b"]);

    // UPDATE: state = 2, source = 9, uuid = 11, timestamp = 6 (double).
    let e = decode_event("event_update");
    let st = &e.update.as_ref().unwrap().status;
    assert_eq!(st.task_id.value, "12344-my-task");
    assert_eq!(st.state(), m::TaskState::TaskRunning);
    assert_eq!(st.source(), m::task_status::Source::Executor);
    assert_eq!(st.uuid.as_deref(), Some(uuid.as_slice()));
    assert_eq!(st.timestamp, Some(1700000000.123));
    assert_eq!(st.healthy, Some(true));
    let cs = st.container_status.as_ref().unwrap();
    assert_eq!(cs.executor_pid, Some(4242));
    assert_eq!(
        cs.network_infos[0].ip_addresses[0].ip_address.as_deref(),
        Some("10.0.0.3")
    );

    let e = decode_event("event_update_reconciliation");
    let st = &e.update.as_ref().unwrap().status;
    assert_eq!(st.state(), m::TaskState::TaskLost);
    assert_eq!(st.source(), m::task_status::Source::Master);
    assert_eq!(st.reason(), m::task_status::Reason::Reconciliation);
    assert!(st.uuid.is_none());

    let e = decode_event("event_update_operation_status");
    let st = &e.update_operation_status.as_ref().unwrap().status;
    assert_eq!(st.state(), m::OperationState::OperationFailed);
    assert_eq!(st.uuid.as_ref().unwrap().value, uuid);

    let e = decode_event("event_inverse_offers");
    let io = &e.inverse_offers.as_ref().unwrap().inverse_offers[0];
    assert_eq!(
        io.unavailability.start.nanoseconds,
        1_700_000_000_000_000_000
    );
    assert_eq!(
        io.unavailability.duration.as_ref().unwrap().nanoseconds,
        3_600_000_000_000
    );

    let e = decode_event("event_failure");
    assert_eq!(e.failure.as_ref().unwrap().status, Some(1));
    let e = decode_event("event_error");
    assert_eq!(
        e.error.as_ref().unwrap().message,
        "Framework is not authorized"
    );
    let e = decode_event("event_heartbeat");
    assert_eq!(
        e,
        s::Event {
            r#type: Some(s::event::Type::Heartbeat as i32),
            ..Default::default()
        }
    );
}

/// proto2 defaults, including enums whose first declared value is not 0.
#[test]
fn proto2_defaults() {
    assert_eq!(m::TaskStatus::default().state(), m::TaskState::TaskStaging);
    assert_eq!(
        m::ContainerInfo::default().r#type(),
        m::container_info::Type::Docker
    );
    assert_eq!(m::Image::default().r#type(), m::image::Type::Appc);
    assert_eq!(m::Volume::default().mode(), m::volume::Mode::Rw);
    assert_eq!(
        m::DiscoveryInfo::default().visibility(),
        m::discovery_info::Visibility::Framework
    );
    assert_eq!(m::Filters::default().refuse_seconds(), 5.0);
    assert!(m::CommandInfo::default().shell());
    assert!(m::command_info::Uri::default().extract());
    assert_eq!(m::MasterInfo::default().port, 5050);
    assert_eq!(m::Resource::default().role(), "*");
    assert_eq!(m::HealthCheck::default().consecutive_failures(), 3);
    assert_eq!(m::HealthCheck::default().delay_seconds(), 15.0);
    assert_eq!(
        m::container_info::DockerInfo::default().network(),
        m::container_info::docker_info::Network::Host
    );
    assert_eq!(
        m::network_info::IpAddress::default().protocol(),
        m::network_info::Protocol::IPv4
    );
    assert_eq!(
        m::environment::Variable::default().r#type(),
        m::environment::variable::Type::Value
    );
    assert!(m::LinuxInfo::default().share_cgroups());

    // Required fields are always encoded, even at their default value, as the
    // master requires them to be present.
    let status = m::TaskStatus::default();
    assert_eq!(status.encode_to_vec(), [0x0a, 0x02, 0x0a, 0x00, 0x10, 0x06]);
    // Empty marker messages are encoded as present, zero-length fields.
    let revocable = m::Resource {
        revocable: Some(m::resource::RevocableInfo {}),
        ..Default::default()
    };
    let bytes = revocable.encode_to_vec();
    assert!(bytes.ends_with(&[0x4a, 0x00]), "{bytes:02x?}");
}

/// A protobuf event stream captured from a real Mesos 1.11.0 master.
#[test]
fn captured_real_master_stream_decodes() {
    let file = vectors_file();
    let captured = &file["captured_real_master_1_11_0"];
    let entries = captured["protobuf_stream"]
        .as_array()
        .expect("protobuf_stream");
    let json_entries = captured["json_stream"].as_array().expect("json_stream");
    assert_eq!(entries.len(), 8);

    // Rebuild the bytes on the wire: str(size) + "\n" + payload.
    let mut stream = Vec::new();
    let mut payloads = Vec::new();
    for entry in entries {
        let size = entry[0].as_u64().expect("size") as usize;
        let payload = unhex(entry[1].as_str().expect("hex payload"));
        assert_eq!(payload.len(), size, "record size");
        stream.extend_from_slice(format!("{size}\n").as_bytes());
        stream.extend_from_slice(&payload);
        payloads.push(payload);
    }
    for chunk_size in [1, 5, 100, stream.len()] {
        assert_eq!(decode_all(&stream, chunk_size), payloads);
    }

    let events: Vec<s::Event> = payloads
        .iter()
        .enumerate()
        .map(|(i, p)| round_trip(&format!("captured[{i}]"), p))
        .collect();
    use s::event::Type as T;
    let types: Vec<T> = events.iter().map(|e| e.r#type()).collect();
    assert_eq!(
        types,
        [
            T::Subscribed,
            T::Heartbeat,
            T::Offers,
            T::Update,
            T::Update,
            T::Update,
            T::Update,
            T::Offers
        ]
    );

    let sub = events[0].subscribed.as_ref().unwrap();
    assert!(sub.framework_id.value.ends_with("-0002"));
    assert_eq!(sub.heartbeat_interval_seconds, Some(15.0));
    let mi = sub.master_info.as_ref().unwrap();
    assert_eq!(mi.ip, 16777343);
    assert_eq!(mi.port, 15072);
    assert_eq!(mi.version.as_deref(), Some("1.11.0"));
    assert_eq!(
        mi.address.as_ref().unwrap().ip.as_deref(),
        Some("127.0.0.1")
    );
    // This master's own v1 schema lacked QUOTA_V2 (its JSON shows `{}`), but
    // the raw value 3 is on the wire and our enum knows it.
    let caps: Vec<i32> = mi.capabilities.iter().map(|c| c.r#type.unwrap()).collect();
    assert_eq!(caps, [1, 2, 3]);

    let offer = &events[2].offers.as_ref().unwrap().offers[0];
    assert_eq!(offer.hostname, "localhost");
    let ports = offer.resources[0].ranges.as_ref().unwrap();
    assert_eq!((ports.range[0].begin, ports.range[0].end), (31000, 31010));
    let failed = &events[6].update.as_ref().unwrap().status;
    assert_eq!(failed.uuid.as_ref().map(Vec::len), Some(16));
    assert_eq!(failed.executor_id.as_ref().unwrap().value, "task-1");

    // The JSON stream was captured in a separate run of the same scenario (ids,
    // timestamps and uuids differ, and it has one more trailing HEARTBEAT);
    // everything else must agree record by record.
    assert_eq!(json_entries.len(), events.len() + 1);
    assert_eq!(json_entries[events.len()][1], r#"{"type":"HEARTBEAT"}"#);
    for (i, (entry, e)) in json_entries.iter().zip(&events).enumerate() {
        let text = entry[1].as_str().expect("json payload");
        assert_eq!(entry[0].as_u64(), Some(text.len() as u64), "json size {i}");
        let json: Value = serde_json::from_str(text).expect("json record");
        assert_eq!(json["type"], e.r#type().as_str_name(), "record {i}");
        if let Some(u) = &e.update {
            let js = &json["update"]["status"];
            let st = &u.status;
            assert_eq!(
                js["task_id"]["value"],
                st.task_id.value.as_str(),
                "record {i}"
            );
            assert_eq!(js["state"], st.state().as_str_name(), "record {i}");
            assert_eq!(js["source"], st.source().as_str_name(), "record {i}");
            assert_eq!(js["reason"], st.reason().as_str_name(), "record {i}");
            assert_eq!(js["message"], st.message(), "record {i}");
            assert_eq!(
                js["agent_id"].is_object(),
                st.agent_id.is_some(),
                "record {i}"
            );
            assert_eq!(js["uuid"].is_string(), st.uuid.is_some(), "record {i}");
        }
        if let Some(o) = &e.offers {
            let jr = json["offers"]["offers"][0]["resources"].as_array().unwrap();
            let r = &o.offers[0].resources;
            assert_eq!(jr.len(), r.len());
            for (jr, r) in jr.iter().zip(r) {
                assert_eq!(jr["name"], r.name.as_str());
                assert_eq!(jr["type"], r.r#type().as_str_name());
                assert_eq!(jr["role"], r.role());
                if let Some(sc) = &r.scalar {
                    assert_eq!(jr["scalar"]["value"].as_f64(), Some(sc.value));
                }
            }
        }
    }
}

#[test]
fn captured_error_stream_frames() {
    let file = vectors_file();
    let entries = file["captured_real_master_1_11_0"]["error_stream_json"]
        .as_array()
        .expect("error_stream_json");
    for entry in entries {
        let text = entry[1].as_str().expect("payload");
        assert_eq!(entry[0].as_u64(), Some(text.len() as u64));
        let frame = encode_frame(text.as_bytes());
        let records = decode_all(&frame, 3);
        let json: Value = serde_json::from_slice(&records[0]).expect("json");
        assert_eq!(json["type"], "ERROR");
        assert!(json["error"]["message"]
            .as_str()
            .unwrap()
            .contains("MULTI_ROLE"));
    }
}

#[test]
fn test_helpers_decode_known_values() {
    assert_eq!(unhex("00ff10Ab"), [0x00, 0xff, 0x10, 0xab]);
    assert_eq!(
        unbase64("ASNFZ4mrze8BI0VniavN7w=="),
        unhex("0123456789abcdef0123456789abcdef")
    );
    assert_eq!(unbase64("YQ=="), b"a");
    assert_eq!(unbase64("YWI="), b"ab");
    assert_eq!(unbase64("YWJj"), b"abc");
    assert_eq!(unbase64(""), b"");
}
