//! The built-in DNS server (`--dns-address`, off by default): Mesos-DNS's names for the
//! framework's apps, tasks, VIPs and leader, answered authoritatively over UDP and TCP from the
//! scheduler's latest state; nothing is forwarded.
//!
//! - [`names`]: the pure part: which records a name has.
//!
//! Messages are read and written by `hickory-proto`.

pub mod names;

use crate::core::Snapshot;
use crate::lb::proxy::Reach;
use crate::lb::vips::VipRange;
use hickory_proto::op::{Message, MessageType, OpCode, ResponseCode};
use hickory_proto::rr::rdata::{A, AAAA, SRV};
use hickory_proto::rr::{Name, RData, Record, RecordType};
use names::{hosts_of, Answer, Lookup, Wanted, Zone};
use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, UdpSocket};
use tokio::sync::watch;

/// How long answers may be cached: tasks move, so not long.
const TTL: u32 = 5;

/// What the server answers from besides the scheduler's state.
#[derive(Clone, Debug)]
pub struct Serving {
    pub framework: String,
    /// Where the leader's API is (`host:port`), for `leader.<fw>.mesos`.
    pub leader: String,
    pub reach: Reach,
    pub vip_range: VipRange,
}

/// Serves DNS on `address` (UDP and TCP) until the scheduler stops publishing snapshots.
pub async fn serve(
    address: SocketAddr,
    snapshots: watch::Receiver<Arc<Snapshot>>,
    serving: Serving,
) -> std::io::Result<()> {
    let udp = Arc::new(UdpSocket::bind(address).await?);
    let tcp = TcpListener::bind(address).await?;
    let serving = Arc::new(serving);
    let mut stopped = snapshots.clone();
    let udp_loop = {
        let (snapshots, serving) = (snapshots.clone(), serving.clone());
        async move {
            let mut buffer = vec![0u8; 4096];
            loop {
                let Ok((n, from)) = udp.recv_from(&mut buffer).await else {
                    continue;
                };
                if let Some(reply) = respond(&buffer[..n], &snapshots, &serving).await {
                    let _ = udp.send_to(&reply, from).await;
                }
            }
        }
    };
    let tcp_loop = async move {
        loop {
            let Ok((mut stream, _)) = tcp.accept().await else {
                continue;
            };
            let (snapshots, serving) = (snapshots.clone(), serving.clone());
            tokio::spawn(async move {
                // Each message is preceded by its length (RFC 1035 §4.2.2).
                while let Ok(length) = stream.read_u16().await {
                    let mut request = vec![0u8; usize::from(length)];
                    if stream.read_exact(&mut request).await.is_err() {
                        return;
                    }
                    let Some(reply) = respond(&request, &snapshots, &serving).await else {
                        return;
                    };
                    let Ok(length) = u16::try_from(reply.len()) else {
                        return;
                    };
                    if stream.write_u16(length).await.is_err()
                        || stream.write_all(&reply).await.is_err()
                    {
                        return;
                    }
                }
            });
        }
    };
    tokio::select! {
        () = udp_loop => {}
        () = tcp_loop => {}
        _ = async { while stopped.changed().await.is_ok() {} } => {}
    }
    Ok(())
}

/// The reply to one request's bytes; `None` for what is not a DNS query at all.
async fn respond(
    request: &[u8],
    snapshots: &watch::Receiver<Arc<Snapshot>>,
    serving: &Serving,
) -> Option<Vec<u8>> {
    let request = Message::from_vec(request).ok()?;
    if request.message_type() != MessageType::Query {
        return None;
    }
    let mut reply = Message::new();
    reply
        .set_id(request.id())
        .set_message_type(MessageType::Response)
        .set_op_code(request.op_code())
        .set_authoritative(true)
        .set_recursion_desired(request.recursion_desired());
    let Some(query) = request
        .queries()
        .first()
        .filter(|_| request.op_code() == OpCode::Query)
    else {
        reply.set_response_code(ResponseCode::NotImp);
        return reply.to_vec().ok();
    };
    reply.add_query(query.clone());
    let snapshot = snapshots.borrow().clone();
    let apps = crate::lb::service_apps(&snapshot);
    let vips = crate::lb::routes::vips(&apps, serving.vip_range);
    let mut hosts = BTreeMap::new();
    for host in hosts_of(&apps) {
        if let Some(ip) = address_of(&host, serving.reach).await {
            hosts.insert(host, ip);
        }
    }
    let leader_host = serving
        .leader
        .rsplit_once(':')
        .map_or(serving.leader.as_str(), |(host, _)| host);
    let zone = Zone {
        framework: &serving.framework,
        apps: &apps,
        vips: &vips,
        leader: address_of(leader_host, Reach::Hostname).await,
        hosts: &hosts,
    };
    let wanted = match query.query_type() {
        RecordType::A => Wanted::A,
        RecordType::SRV => Wanted::Srv,
        RecordType::ANY => Wanted::Any,
        _ => Wanted::Other,
    };
    match zone.lookup(&query.name().to_ascii(), wanted) {
        Lookup::Unknown => {
            reply.set_response_code(ResponseCode::NXDomain);
        }
        Lookup::Found(answers) => {
            for answer in answers {
                if let Some(record) = record_of(query.name(), answer) {
                    reply.add_answer(record);
                }
            }
        }
    }
    reply.to_vec().ok()
}

fn record_of(name: &Name, answer: Answer) -> Option<Record> {
    let rdata = match answer {
        Answer::A(IpAddr::V4(ip)) => RData::A(A(ip)),
        Answer::A(IpAddr::V6(ip)) => RData::AAAA(AAAA(ip)),
        Answer::Srv { port, target } => RData::SRV(SRV::new(
            0,
            0,
            port,
            Name::from_ascii(format!("{target}.")).ok()?,
        )),
    };
    Some(Record::from_rdata(name.clone(), TTL, rdata))
}

/// An agent's (or the leader's) address: loopback for the built-in master's agents, the
/// address itself when it is one, otherwise the system resolver's first answer.
async fn address_of(host: &str, reach: Reach) -> Option<IpAddr> {
    if reach == Reach::Loopback {
        return Some(IpAddr::V4(Ipv4Addr::LOCALHOST));
    }
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Some(ip);
    }
    tokio::net::lookup_host((host, 0))
        .await
        .ok()?
        .next()
        .map(|a| a.ip())
}
