//! A real S3-protocol server, in process, on a loopback port: s3s-fs
//! serves a temporary folder over HTTP. Tests can stop and restart it, and
//! slow every request down.
//!
//! s3s-fs keeps a folder on disk for every prefix it ever stored and lists
//! by walking all of them, so a long run's listings slow down with every
//! checkpoint folder it ever removed; an object store has no empty folders.
//! After each DELETE this server removes the empty folders, as S3 would not
//! show them.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder;

const BUCKET: &str = "checkpoints";
const ACCESS_KEY: &str = "dataflow-test";
pub const SECRET_KEY: &str = "dataflow-test-secret";

pub struct S3Server {
    pub port: u16,
    root: tempfile::TempDir,
    delay_ms: Arc<AtomicU64>,
    runtime: Option<tokio::runtime::Runtime>,
}

impl S3Server {
    pub fn start() -> S3Server {
        let root = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(root.path().join(BUCKET)).unwrap();
        let mut server = S3Server {
            port: 0,
            root,
            delay_ms: Arc::new(AtomicU64::new(0)),
            runtime: None,
        };
        server.serve();
        server
    }

    /// Serves on `self.port` (a fresh port the first time).
    fn serve(&mut self) {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let fs = s3s_fs::FileSystem::new(self.root.path()).unwrap();
        let mut builder = s3s::service::S3ServiceBuilder::new(fs);
        builder.set_auth(s3s::auth::SimpleAuth::from_single(ACCESS_KEY, SECRET_KEY));
        let service = builder.build();
        let listener = runtime.block_on(async {
            // The port of a stopped server may linger in TIME_WAIT for a moment.
            for _ in 0..50 {
                if let Ok(l) = tokio::net::TcpListener::bind(("127.0.0.1", self.port)).await {
                    return l;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            panic!("cannot bind 127.0.0.1:{}", self.port);
        });
        self.port = listener.local_addr().unwrap().port();
        let delay = Arc::clone(&self.delay_ms);
        // Requests share it; pruning takes it alone, so a PUT never finds the
        // folder it just made removed under it.
        let gate = Arc::new(tokio::sync::RwLock::new(()));
        let bucket = self.root.path().join(BUCKET);
        runtime.spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                // Without it each small request waits for delayed ACKs (~40 ms).
                let _ = stream.set_nodelay(true);
                let service = service.clone();
                let delay = Arc::clone(&delay);
                let gate = Arc::clone(&gate);
                let bucket = bucket.clone();
                tokio::spawn(async move {
                    let svc = hyper::service::service_fn(move |req: hyper::Request<_>| {
                        let service = service.clone();
                        let delay = Duration::from_millis(delay.load(Ordering::Relaxed));
                        let gate = Arc::clone(&gate);
                        let bucket = bucket.clone();
                        async move {
                            if !delay.is_zero() {
                                tokio::time::sleep(delay).await;
                            }
                            let deletes = req.method() == hyper::Method::DELETE;
                            let response = {
                                let _shared = gate.read().await;
                                hyper::service::Service::call(&service, req).await
                            };
                            if deletes {
                                let _alone = gate.write().await;
                                remove_empty_folders(&bucket);
                            }
                            response
                        }
                    });
                    let _ = Builder::new(TokioExecutor::new())
                        .serve_connection(TokioIo::new(stream), svc)
                        .await;
                });
            }
        });
        self.runtime = Some(runtime);
    }

    /// Stops serving: connections are dropped, new ones refused.
    pub fn stop(&mut self) {
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_timeout(Duration::from_secs(1));
        }
    }

    /// Serves again on the same port, with the same objects.
    pub fn restart(&mut self) {
        self.serve();
    }

    /// Delays every request by `ms` milliseconds.
    pub fn set_delay_ms(&self, ms: u64) {
        self.delay_ms.store(ms, Ordering::Relaxed);
    }

    /// Freezes the server as SIGSTOP would: connections are accepted, and
    /// no request is ever answered.
    pub fn freeze(&self) {
        self.set_delay_ms(3_600_000);
    }

    /// A store location under `prefix`, as a spec's `checkpoint.store`.
    pub fn store_url(&self, prefix: &str) -> String {
        format!(
            "s3://{BUCKET}/{prefix}?endpoint=http://127.0.0.1:{}&region=us-east-1&access_key_id={ACCESS_KEY}&secret_access_key={SECRET_KEY}",
            self.port
        )
    }

    /// The folder that holds the objects under `prefix`, as files.
    pub fn dir(&self, prefix: &str) -> PathBuf {
        self.root.path().join(BUCKET).join(prefix)
    }
}

/// Removes every empty folder under `dir`, keeping `dir` itself.
fn remove_empty_folders(dir: &Path) {
    fn prune(dir: &Path) -> bool {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return false;
        };
        let mut empty = true;
        for entry in entries.flatten() {
            let path = entry.path();
            if entry.file_type().is_ok_and(|t| t.is_dir()) && prune(&path) {
                empty &= std::fs::remove_dir(&path).is_ok();
            } else {
                empty = false;
            }
        }
        empty
    }
    prune(dir);
}

impl Drop for S3Server {
    fn drop(&mut self) {
        self.stop();
    }
}
