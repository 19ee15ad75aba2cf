//! Images for the container tests: a `docker-registry` on loopback (Debian's package), which
//! each test fills with an image it builds itself from Debian's static busybox (`umoci` builds
//! it, `skopeo` pushes it).

use super::eventually;
mod tokens;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

pub const PAGE: &str = "hello from the image";

/// A `docker-registry` on a loopback port, its storage in a directory of its own.
pub struct Registry {
    child: Child,
    port: u16,
    dir: tempfile::TempDir,
    /// The token server of a registry that wants bearer tokens.
    _tokens: Option<tokens::TokenServer>,
}

impl Registry {
    /// A registry; with `user`, one that wants that user's password (htpasswd, bcrypt).
    pub async fn start(user: Option<(&str, &str)>) -> Registry {
        let dir = tempfile::tempdir().unwrap();
        let auth = match user {
            Some((name, password)) => {
                let hash = bcrypt::hash(password, 4).unwrap();
                std::fs::write(dir.path().join("htpasswd"), format!("{name}:{hash}\n")).unwrap();
                format!(
                    "auth:\n  htpasswd:\n    realm: test\n    path: {}\n",
                    dir.path().join("htpasswd").display()
                )
            }
            None => String::new(),
        };
        Self::serve(dir, &auth, None).await
    }

    /// A registry that wants a bearer token, which a token server on another loopback port
    /// hands out (as Docker Hub's does) to `user` with the right password, for the scope asked.
    pub async fn start_with_tokens(user: (&str, &str)) -> Registry {
        let dir = tempfile::tempdir().unwrap();
        let (realm, tokens) = tokens::serve(dir.path(), user);
        let auth = format!(
            "auth:\n  token:\n    realm: {realm}\n    service: {}\n    issuer: {}\n    \
             rootcertbundle: {}\n",
            tokens::SERVICE,
            tokens::ISSUER,
            dir.path().join("token.crt").display()
        );
        Self::serve(dir, &auth, Some(tokens)).await
    }

    async fn serve(
        dir: tempfile::TempDir,
        auth: &str,
        tokens: Option<tokens::TokenServer>,
    ) -> Registry {
        let port = super::free_port();
        let config = format!(
            "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: {}\n\
             http:\n  addr: 127.0.0.1:{port}\n{auth}",
            dir.path().join("storage").display()
        );
        std::fs::write(dir.path().join("config.yml"), config).unwrap();
        let log = std::fs::File::create(dir.path().join("registry.log")).unwrap();
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(dir.path().join("config.yml"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("docker-registry (Debian's docker-registry package)");
        let registry = Registry {
            child,
            port,
            dir,
            _tokens: tokens,
        };
        let http = reqwest::Client::new();
        eventually("the registry answers", || {
            let url = format!("http://127.0.0.1:{port}/v2/");
            let http = http.clone();
            async move { http.get(&url).send().await.ok().map(|_| ()) }
        })
        .await;
        registry
    }

    pub fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Pushes the OCI layout's image `layout:tag` as `repository:tag`.
    pub fn push(&self, image: &Path, repository: &str, credentials: Option<&str>) -> String {
        let reference = format!("{}/{repository}", self.address());
        let mut skopeo = Command::new("skopeo");
        skopeo.args(["copy", "--quiet", "--dest-tls-verify=false"]);
        if let Some(credentials) = credentials {
            skopeo.args(["--dest-creds", credentials]);
        }
        run(skopeo
            .arg(format!("oci:{}:bb", image.display()))
            .arg(format!("docker://{reference}")));
        reference
    }

    /// The blob files of the registry's storage, by size, biggest first.
    pub fn blobs(&self) -> Vec<PathBuf> {
        let mut blobs: Vec<PathBuf> = walk(&self.dir.path().join("storage"))
            .into_iter()
            .filter(|path| path.file_name().is_some_and(|name| name == "data"))
            .filter(|path| path.to_string_lossy().contains("/blobs/"))
            .collect();
        blobs.sort_by_key(|path| std::cmp::Reverse(std::fs::metadata(path).unwrap().len()));
        blobs
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            found.extend(walk(&path));
        } else {
            found.push(path);
        }
    }
    found
}

pub fn run(command: &mut Command) {
    let output = command.output().expect("the command runs");
    assert!(
        output.status.success(),
        "{command:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// An OCI layout in `dir` holding `bb`: one layer with a static busybox as `/bin/*`, a page in
/// `/www`, an `/etc/passwd` naming `www` (uid 33), and `/bin/sh` as its command.
pub fn build_image(dir: &Path) -> PathBuf {
    build_padded_image(dir, 0)
}

/// [`build_image`] with a file of `padding` random (incompressible) bytes in `/padding`, for an
/// image of a given size.
pub fn build_padded_image(dir: &Path, padding: usize) -> PathBuf {
    let layout = dir.join("oci");
    let bundle = dir.join("bundle");
    let image = format!("{}:bb", layout.display());
    run(Command::new("umoci")
        .args(["init", "--layout"])
        .arg(&layout));
    run(Command::new("umoci").args(["new", "--image", &image]));
    run(Command::new("umoci")
        .args(["unpack", "--image", &image])
        .arg(&bundle));
    let rootfs = bundle.join("rootfs");
    for sub in ["bin", "www", "etc"] {
        std::fs::create_dir_all(rootfs.join(sub)).unwrap();
    }
    std::fs::copy("/bin/busybox", rootfs.join("bin/busybox")).unwrap();
    for tool in ["sh", "ls", "cat", "httpd", "sleep", "id", "echo"] {
        std::os::unix::fs::symlink("busybox", rootfs.join("bin").join(tool)).unwrap();
    }
    std::fs::write(rootfs.join("www/index.html"), PAGE).unwrap();
    if padding > 0 {
        let noise: Vec<u8> = (0..padding).map(|_| rand::random::<u8>()).collect();
        std::fs::write(rootfs.join("padding"), noise).unwrap();
    }
    std::fs::write(
        rootfs.join("etc/passwd"),
        "root:x:0:0:root:/root:/bin/sh\nwww:x:33:33:www:/www:/bin/sh\n",
    )
    .unwrap();
    run(Command::new("umoci")
        .args(["repack", "--image", &image])
        .arg(&bundle));
    run(Command::new("umoci").args([
        "config",
        "--image",
        &image,
        "--config.cmd",
        "/bin/sh",
        "--config.env",
        "PATH=/bin",
    ]));
    layout
}

/// Mounts under `dir` that are still there.
pub fn mounts_under(dir: &Path) -> Vec<String> {
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .filter_map(|line| line.split(' ').nth(4))
        .filter(|point| Path::new(point).starts_with(dir))
        .map(str::to_owned)
        .collect()
}
