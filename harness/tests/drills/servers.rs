//! Real servers for the tests to fetch from and restore onto: an HTTP server (axum) with the
//! failure modes a backup host has, an S3-compatible store (moto, started on loopback), and an
//! existing PostgreSQL server (a container of the project's image, TLS on).

use std::net::{SocketAddr, TcpListener};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// An HTTP server for backups, on its own thread and runtime.
pub(crate) struct HttpServer {
    pub addr: SocketAddr,
    /// Requests served per route, to assert on retries.
    pub hits: Arc<Hits>,
    _runtime: tokio::runtime::Runtime,
}

#[derive(Default)]
pub(crate) struct Hits {
    pub flaky: AtomicUsize,
    pub drop: AtomicUsize,
    pub always_503: AtomicUsize,
    pub slow: AtomicUsize,
    pub always_drops: AtomicUsize,
    /// Requests to `/private/` that carried the right credentials.
    pub authorized: AtomicUsize,
}

/// The credentials `/private/bearer.sql.gz` and `/private/basic.sql.gz` want.
pub(crate) const HTTP_TOKEN: &str = "pgdrill-test-bearer-token-do-not-leak";
pub(crate) const HTTP_USER: &str = "backup-reader";
pub(crate) const HTTP_PASSWORD: &str = "pgdrill-test-basic-password-do-not-leak";

#[derive(Clone)]
struct Files {
    backup: Arc<Vec<u8>>,
    hits: Arc<Hits>,
}

impl HttpServer {
    /// Serves `backup` at `/backups/plur.sql.gz` and friends (see the routes).
    pub(crate) fn start(backup: Vec<u8>) -> Self {
        let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
        let hits = Arc::new(Hits::default());
        let state = Files { backup: Arc::new(backup), hits: hits.clone() };
        let app = Router::new()
            .route("/backups/plur.sql.gz", get(serve))
            .route("/forbidden.sql.gz", get(|| async { StatusCode::FORBIDDEN }))
            .route("/missing.sql.gz", get(|| async { StatusCode::NOT_FOUND }))
            .route("/flaky.sql.gz", get(flaky))
            .route("/always-503.sql.gz", get(always_503))
            .route(
                "/error-page.sql.gz",
                get(|| async {
                    (
                        [(header::CONTENT_TYPE, "text/html")],
                        "<!DOCTYPE html><html><body><h1>Session expired</h1></body></html>",
                    )
                }),
            )
            .route("/drops-once.sql.gz", get(drops_once))
            .route("/always-drops.sql.gz", get(always_drops))
            .route("/slow.sql.gz", get(slow))
            .route("/private/{kind}", get(private))
            .with_state(state);
        let listener = runtime.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).unwrap();
        let addr = listener.local_addr().unwrap();
        runtime.spawn(async move { axum::serve(listener, app).await });
        HttpServer { addr, hits, _runtime: runtime }
    }

    pub(crate) fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }
}

/// A web server of a folder's files (links followed), as a backup host serves a pg_basebackup
/// folder: no listing, a 404 for a file it lacks, and every path asked for recorded.
pub(crate) struct FolderServer {
    pub addr: SocketAddr,
    pub requested: Arc<std::sync::Mutex<Vec<String>>>,
    _runtime: tokio::runtime::Runtime,
}

#[derive(Clone)]
struct Folder {
    root: Arc<std::path::PathBuf>,
    requested: Arc<std::sync::Mutex<Vec<String>>>,
}

impl FolderServer {
    pub(crate) fn start(root: &std::path::Path) -> Self {
        let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
        let requested = Arc::new(std::sync::Mutex::new(Vec::new()));
        let state = Folder { root: Arc::new(root.to_owned()), requested: requested.clone() };
        let app = Router::new().route("/{*path}", get(serve_file)).with_state(state);
        let listener = runtime.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).unwrap();
        let addr = listener.local_addr().unwrap();
        runtime.spawn(async move { axum::serve(listener, app).await });
        FolderServer { addr, requested, _runtime: runtime }
    }

    pub(crate) fn url(&self, path: &str) -> String {
        format!("http://{}/{path}", self.addr)
    }
}

async fn serve_file(State(folder): State<Folder>, axum::extract::Path(path): axum::extract::Path<String>) -> Response {
    folder.requested.lock().unwrap().push(path.clone());
    if path.split('/').any(|part| part == "..") {
        return StatusCode::BAD_REQUEST.into_response();
    }
    match tokio::fs::read(folder.root.join(&path)).await {
        Ok(bytes) => bytes.into_response(),
        Err(_) => StatusCode::NOT_FOUND.into_response(),
    }
}

/// The backup, honouring `Range: bytes=N-` as a real file server does.
async fn serve(State(files): State<Files>, headers: HeaderMap) -> Response {
    let data = files.backup.clone();
    let start = headers
        .get(header::RANGE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("bytes="))
        .and_then(|v| v.trim_end_matches('-').parse::<usize>().ok());
    match start {
        Some(start) if start < data.len() => (
            StatusCode::PARTIAL_CONTENT,
            [
                (header::ACCEPT_RANGES, "bytes".to_owned()),
                (header::CONTENT_RANGE, format!("bytes {start}-{}/{}", data.len() - 1, data.len())),
            ],
            data[start..].to_vec(),
        )
            .into_response(),
        _ => ([(header::ACCEPT_RANGES, "bytes")], data.to_vec()).into_response(),
    }
}

/// Fails twice with 503, then serves.
async fn flaky(state: State<Files>, headers: HeaderMap) -> Response {
    if state.hits.flaky.fetch_add(1, Ordering::SeqCst) < 2 {
        return StatusCode::SERVICE_UNAVAILABLE.into_response();
    }
    serve(state, headers).await
}

async fn always_503(State(files): State<Files>) -> Response {
    files.hits.always_503.fetch_add(1, Ordering::SeqCst);
    StatusCode::SERVICE_UNAVAILABLE.into_response()
}

/// The first request drops the connection halfway; later ones serve (with ranges).
async fn drops_once(state: State<Files>, headers: HeaderMap) -> Response {
    if state.hits.drop.fetch_add(1, Ordering::SeqCst) == 0 {
        let data = state.backup.clone();
        let half = data[..data.len() / 2].to_vec();
        let stream = futures_util::stream::iter(vec![
            Ok::<_, std::io::Error>(half),
            Err(std::io::Error::new(std::io::ErrorKind::ConnectionReset, "dropped")),
        ]);
        return Response::builder()
            .header(header::ACCEPT_RANGES, "bytes")
            .header(header::CONTENT_LENGTH, data.len())
            .body(Body::from_stream(stream))
            .unwrap();
    }
    serve(state, headers).await
}

/// Every request drops the connection after 4 KiB (Range ignored).
async fn always_drops(State(files): State<Files>) -> Response {
    files.hits.always_drops.fetch_add(1, Ordering::SeqCst);
    let data = files.backup.clone();
    let stream = futures_util::stream::iter(vec![
        Ok::<_, std::io::Error>(data[..4096].to_vec()),
        Err(std::io::Error::new(std::io::ErrorKind::ConnectionReset, "dropped")),
    ]);
    Response::builder().header(header::CONTENT_LENGTH, data.len()).body(Body::from_stream(stream)).unwrap()
}

/// The backup at 1 KiB every 100 ms: a download that takes a while.
async fn slow(State(files): State<Files>) -> Response {
    files.hits.slow.fetch_add(1, Ordering::SeqCst);
    let data = files.backup.clone();
    let length = data.len();
    let stream = futures_util::stream::unfold(0usize, move |at| {
        let data = data.clone();
        async move {
            if at >= data.len() {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
            let end = (at + 1024).min(data.len());
            Some((Ok::<_, std::io::Error>(data[at..end].to_vec()), end))
        }
    });
    Response::builder().header(header::CONTENT_LENGTH, length).body(Body::from_stream(stream)).unwrap()
}

/// `/private/bearer.sql.gz` wants `Authorization: Bearer HTTP_TOKEN`, `/private/basic.sql.gz`
/// wants HTTP_USER and HTTP_PASSWORD; anything else gets 401.
async fn private(
    state: State<Files>,
    axum::extract::Path(kind): axum::extract::Path<String>,
    headers: HeaderMap,
) -> Response {
    let given = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    let wanted = match kind.as_str() {
        "bearer.sql.gz" => format!("Bearer {HTTP_TOKEN}"),
        "basic.sql.gz" => {
            pgdrill::tls::install();
            let request = reqwest::Client::new().get("http://x/").basic_auth(HTTP_USER, Some(HTTP_PASSWORD)).build();
            request.unwrap().headers()[header::AUTHORIZATION.as_str()].to_str().unwrap().to_owned()
        }
        _ => return StatusCode::NOT_FOUND.into_response(),
    };
    if given != wanted {
        return StatusCode::UNAUTHORIZED.into_response();
    }
    state.hits.authorized.fetch_add(1, Ordering::SeqCst);
    serve(state, headers).await
}

/// A TCP proxy on loopback in front of `upstream` that cuts a connection once it has carried
/// `cut_after` bytes towards the client, the first `cuts` times; later connections pass whole.
pub(crate) struct CuttingProxy {
    pub port: u16,
    pub cut: Arc<AtomicUsize>,
}

impl CuttingProxy {
    pub(crate) fn start(upstream: u16, cut_after: usize, cuts: usize) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let cut = Arc::new(AtomicUsize::new(0));
        let counter = cut.clone();
        std::thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { return };
                let Ok(server) = std::net::TcpStream::connect(("127.0.0.1", upstream)) else { continue };
                let counter = counter.clone();
                let (mut client_in, mut server_out) = (client.try_clone().unwrap(), server.try_clone().unwrap());
                std::thread::spawn(move || std::io::copy(&mut client_in, &mut server_out));
                std::thread::spawn(move || {
                    use std::io::{Read, Write};
                    let (mut server, mut client) = (server, client);
                    let mut buf = [0u8; 1024];
                    let mut sent = 0;
                    loop {
                        let n = match server.read(&mut buf) {
                            Ok(0) | Err(_) => break,
                            Ok(n) => n,
                        };
                        if sent + n > cut_after
                            && counter
                                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |c| (c < cuts).then_some(c + 1))
                                .is_ok()
                        {
                            let _ = client.write_all(&buf[..cut_after.saturating_sub(sent)]);
                            break;
                        }
                        if client.write_all(&buf[..n]).is_err() {
                            break;
                        }
                        sent += n;
                    }
                    let _ = client.shutdown(std::net::Shutdown::Both);
                    let _ = server.shutdown(std::net::Shutdown::Both);
                });
            }
        });
        CuttingProxy { port, cut }
    }
}

/// A TCP proxy on loopback in front of `upstream` that a test switches off: while `down` is
/// set, each connection is closed as soon as it is taken (a store that stops answering).
pub(crate) struct SwitchProxy {
    pub port: u16,
    pub down: Arc<AtomicBool>,
}

impl SwitchProxy {
    pub(crate) fn start(upstream: u16) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let down = Arc::new(AtomicBool::new(false));
        let switch = down.clone();
        std::thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { return };
                if switch.load(Ordering::SeqCst) {
                    continue;
                }
                let Ok(server) = std::net::TcpStream::connect(("127.0.0.1", upstream)) else { continue };
                let there = (client.try_clone().unwrap(), server.try_clone().unwrap());
                for (mut from, mut to) in [there, (server, client)] {
                    std::thread::spawn(move || {
                        let _ = std::io::copy(&mut from, &mut to);
                        let _ = to.shutdown(std::net::Shutdown::Both);
                    });
                }
            }
        });
        SwitchProxy { port, down }
    }
}

/// An S3-compatible store on loopback: moto's server (`pip install 'moto[server]'`).
pub(crate) struct S3Server {
    pub endpoint: String,
    child: Child,
}

pub(crate) const S3_ACCESS_KEY: &str = "pgdrill-test-access";
pub(crate) const S3_SECRET_KEY: &str = "pgdrill-test-secret-key-do-not-leak";

impl S3Server {
    pub(crate) fn start() -> Self {
        let port = free_port();
        let child = Command::new("moto_server")
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("moto_server runs (install it with: pip install 'moto[server]')");
        let endpoint = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "moto_server did not start");
            std::thread::sleep(Duration::from_millis(100));
        }
        S3Server { endpoint, child }
    }

    /// Creates `bucket` and puts `objects` (key, bytes) into it.
    pub(crate) fn put(&self, bucket: &str, objects: &[(&str, Vec<u8>)]) {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        runtime.block_on(async {
            pgdrill::tls::install();
            let client = reqwest::Client::new();
            let status = client.put(format!("{}/{bucket}", self.endpoint)).send().await.unwrap().status();
            assert!(status.is_success(), "create bucket: {status}");
        });
        self.put_objects(bucket, objects);
    }

    /// Puts `objects` (key, bytes) into the existing `bucket`.
    pub(crate) fn put_objects(&self, bucket: &str, objects: &[(&str, Vec<u8>)]) {
        put_objects(&self.endpoint, bucket, objects);
    }

    /// Puts `bytes` at `key` of the existing `bucket`, readable by anyone (`public-read`): what
    /// a plain HTTP client downloads from `{endpoint}/{bucket}/{key}`.
    pub(crate) fn put_public(&self, bucket: &str, key: &str, bytes: Vec<u8>) {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let status = runtime.block_on(async {
            reqwest::Client::new()
                .put(format!("{}/{bucket}/{key}", self.endpoint))
                .header("x-amz-acl", "public-read")
                .header("content-type", "application/octet-stream")
                .body(bytes)
                .send()
                .await
                .unwrap()
                .status()
        });
        assert!(status.is_success(), "put {key}: {status}");
    }

    /// Creates `bucket` and puts every file under each folder of `folders` (prefix, folder)
    /// into it, at `<prefix>/<its path in the folder>`.
    pub(crate) fn put_folders(&self, bucket: &str, folders: &[(&str, &std::path::Path)]) {
        let mut objects = Vec::new();
        for (prefix, folder) in folders {
            let mut stack = vec![folder.to_path_buf()];
            while let Some(dir) = stack.pop() {
                for entry in std::fs::read_dir(&dir).unwrap().flatten() {
                    if entry.file_type().unwrap().is_dir() {
                        stack.push(entry.path());
                    } else if entry.file_type().unwrap().is_file() {
                        let relative = entry.path().strip_prefix(folder).unwrap().display().to_string();
                        objects.push((format!("{prefix}/{relative}"), std::fs::read(entry.path()).unwrap()));
                    }
                }
            }
        }
        let borrowed: Vec<(&str, Vec<u8>)> = objects.iter().map(|(k, v)| (k.as_str(), v.clone())).collect();
        self.put(bucket, &borrowed);
    }

    /// The environment a drill needs to read from this store.
    pub(crate) fn env(&self) -> Vec<(String, String)> {
        vec![
            ("AWS_ACCESS_KEY_ID".into(), S3_ACCESS_KEY.into()),
            ("AWS_SECRET_ACCESS_KEY".into(), S3_SECRET_KEY.into()),
            ("AWS_DEFAULT_REGION".into(), "us-east-1".into()),
        ]
    }
}

/// Puts `objects` (key, bytes) into the existing `bucket` of the store at `endpoint`.
pub(crate) fn put_objects(endpoint: &str, bucket: &str, objects: &[(&str, Vec<u8>)]) {
    use object_store::ObjectStoreExt;
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    runtime.block_on(async {
        pgdrill::tls::install();
        let store = object_store::aws::AmazonS3Builder::new()
            .with_bucket_name(bucket)
            .with_region("us-east-1")
            .with_endpoint(endpoint)
            .with_allow_http(true)
            .with_access_key_id(S3_ACCESS_KEY)
            .with_secret_access_key(S3_SECRET_KEY)
            .build()
            .unwrap();
        for (key, bytes) in objects {
            store.put(&object_store::path::Path::from(*key), bytes.clone().into()).await.unwrap();
        }
    });
}

impl Drop for S3Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An "existing" PostgreSQL server with TLS on: a container of the project's image.
pub(crate) struct PgServer {
    pub name: String,
    pub port: u16,
    pub password: String,
}

impl PgServer {
    pub(crate) fn start() -> Self {
        let name = format!("pgdrill-test-server-{}-{}", std::process::id(), free_port());
        let password = format!("admin-{}", free_port());
        let image = pgdrill::scenario::default_image();
        // The image is a sandbox (its socket only); as a shared server it listens on TCP too,
        // with passwords, by a client authentication file of the test's own.
        let hba = std::env::temp_dir().join(format!("{name}-hba.conf"));
        std::fs::write(&hba, "local all all trust\nhost all all all scram-sha-256\n").unwrap();
        let status = Command::new("docker")
            // A limit of its own on memory per process, as a shared server's administrator sets.
            .args(["run", "-d", "--rm", "--name", &name, "-p", "127.0.0.1::5432", "--ulimit", "data=1073741824", "-v"])
            .arg(format!("{}:/etc/pgdrill-test-hba.conf:ro", hba.display()))
            .args([image, "-c", "listen_addresses=*", "-c", "hba_file=/etc/pgdrill-test-hba.conf"])
            .args(["-c", "ssl=on", "-c", "ssl_cert_file=/etc/ssl/certs/ssl-cert-snakeoil.pem"])
            .args(["-c", "ssl_key_file=/etc/ssl/private/ssl-cert-snakeoil.key"])
            .stdout(Stdio::null())
            .status()
            .unwrap();
        assert!(status.success(), "docker run");
        let out = Command::new("docker").args(["port", &name, "5432/tcp"]).output().unwrap();
        let port: u16 =
            String::from_utf8_lossy(&out.stdout).lines().next().unwrap().rsplit(':').next().unwrap().parse().unwrap();
        let server = PgServer { name, port, password };
        let deadline = Instant::now() + Duration::from_secs(60);
        while server.psql(&format!("ALTER ROLE postgres PASSWORD '{}'", server.password)).is_err() {
            assert!(Instant::now() < deadline, "the server did not start");
            std::thread::sleep(Duration::from_millis(100));
        }
        server
    }

    pub(crate) fn url(&self, sslmode: &str) -> String {
        format!("postgres://postgres:{}@127.0.0.1:{}/postgres?sslmode={sslmode}", self.password, self.port)
    }

    /// Runs SQL in the server as the superuser; returns psql's unaligned output.
    pub(crate) fn psql(&self, sql: &str) -> Result<String, String> {
        let out = Command::new("docker")
            .args(["exec", &self.name, "psql", "-U", "postgres", "-Atqc", sql])
            .output()
            .map_err(|e| e.to_string())?;
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).into_owned())
        } else {
            Err(String::from_utf8_lossy(&out.stderr).into_owned())
        }
    }
}

impl Drop for PgServer {
    fn drop(&mut self) {
        let _ = Command::new("docker").args(["rm", "-f", "-v", &self.name]).stdout(Stdio::null()).status();
        let _ = std::fs::remove_file(std::env::temp_dir().join(format!("{}-hba.conf", self.name)));
    }
}
