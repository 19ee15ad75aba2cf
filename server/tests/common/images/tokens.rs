//! A registry token server, as the Docker token authentication protocol has it: `GET /token`
//! with Basic credentials and `scope=repository:NAME:ACTIONS` answers with a JWT (RS256) that
//! grants those actions. The key and its self-signed certificate are made by openssl; the
//! certificate goes in the token's `x5c` header and in docker-registry's `rootcertbundle`, so
//! the registry trusts the tokens. The signature is openssl's too.

use axum::extract::{RawQuery, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use serde_json::{json, Value};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;

/// The registry's name for itself in its tokens (`aud`).
pub const SERVICE: &str = "stride-test-registry";
/// Whose tokens the registry trusts (`iss`).
pub const ISSUER: &str = "stride-test-tokens";

struct Issuer {
    key: PathBuf,
    /// The certificate, DER in standard base64, for the `x5c` header.
    certificate: String,
    /// The `Authorization` header that gets tokens.
    basic: String,
}

/// Makes the key (`token.key`) and certificate (`token.crt`) in `dir` and serves tokens to
/// `user`; returns the token endpoint's URL (the registry's realm).
pub fn serve(dir: &Path, user: (&str, &str)) -> (String, TokenServer) {
    let key = dir.join("token.key");
    let certificate = dir.join("token.crt");
    super::run(
        Command::new("openssl")
            .args([
                "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
            ])
            .args(["-subj", &format!("/CN={ISSUER}")])
            .arg("-keyout")
            .arg(&key)
            .arg("-out")
            .arg(&certificate),
    );
    let der = Command::new("openssl")
        .args(["x509", "-outform", "DER", "-in"])
        .arg(&certificate)
        .output()
        .unwrap()
        .stdout;
    let issuer = Arc::new(Issuer {
        key,
        certificate: STANDARD.encode(der),
        basic: format!(
            "Basic {}",
            STANDARD.encode(format!("{}:{}", user.0, user.1))
        ),
    });
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let realm = format!("http://{}/token", listener.local_addr().unwrap());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    // Its own thread and runtime: the tests push with skopeo, a blocking call, from their
    // runtime's only thread, and skopeo asks this server for its token meanwhile.
    let thread = std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            let app = axum::Router::new()
                .route("/token", get(token))
                .with_state(issuer);
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    let _ = stopped.await;
                })
                .await;
        });
    });
    (
        realm,
        TokenServer {
            stop: Some(stop),
            thread: Some(thread),
        },
    )
}

/// The running token server; stopped when dropped.
pub struct TokenServer {
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Drop for TokenServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

async fn token(
    State(issuer): State<Arc<Issuer>>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let authorized = headers
        .get(header::AUTHORIZATION)
        .is_some_and(|value| value.as_bytes() == issuer.basic.as_bytes());
    if !authorized {
        return (StatusCode::UNAUTHORIZED, "wrong or no credentials").into_response();
    }
    let params: Vec<(String, String)> =
        serde_urlencoded::from_str(query.as_deref().unwrap_or_default()).unwrap_or_default();
    let access: Vec<Value> = params
        .iter()
        .filter(|(name, _)| name == "scope")
        .filter_map(|(_, scope)| {
            let (kind, rest) = scope.split_once(':')?;
            let (name, actions) = rest.rsplit_once(':')?;
            Some(json!({"type": kind, "name": name, "actions": actions.split(',').collect::<Vec<_>>()}))
        })
        .collect();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let header = json!({"typ": "JWT", "alg": "RS256", "x5c": [issuer.certificate]});
    let claims = json!({
        "iss": ISSUER, "sub": "ops", "aud": SERVICE, "exp": now + 300, "nbf": now - 10,
        "iat": now, "jti": uuid::Uuid::new_v4().to_string(), "access": access,
    });
    let signing_input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    );
    let key = issuer.key.clone();
    let input = signing_input.clone();
    let signature = tokio::task::spawn_blocking(move || sign(&key, input.as_bytes()))
        .await
        .unwrap();
    let jwt = format!("{signing_input}.{}", URL_SAFE_NO_PAD.encode(signature));
    axum::Json(json!({"token": jwt, "access_token": jwt, "expires_in": 300})).into_response()
}

/// RS256: an RSA PKCS#1 v1.5 signature of the SHA-256 of `input`.
fn sign(key: &Path, input: &[u8]) -> Vec<u8> {
    let mut openssl = Command::new("openssl")
        .args(["dgst", "-sha256", "-sign"])
        .arg(key)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    openssl.stdin.take().unwrap().write_all(input).unwrap();
    let output = openssl.wait_with_output().unwrap();
    assert!(output.status.success(), "openssl dgst -sign failed");
    output.stdout
}
