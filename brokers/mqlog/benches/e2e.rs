//! End to end: a blocking client pipelining produce batches of 1 KiB records to an in-process
//! server over loopback (fsync=never, ack=written). Reports records/s.

use std::net::SocketAddr;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use mqlog::client::{Ack, Client};
use mqlog::storage::{FsyncPolicy, Log, LogConfig};

struct Server {
    addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.stop.take().map(|s| s.send(()));
        let _ = self.thread.take().map(|t| t.join());
    }
}

fn start_server(dir: &std::path::Path) -> Server {
    let log = Log::open(
        dir,
        LogConfig {
            fsync: FsyncPolicy::Never,
            retention_bytes: Some(512 << 20),
            retention_check_interval: Duration::from_millis(100),
            ..LogConfig::default()
        },
    )
    .unwrap();
    let (addr_tx, addr_rx) = std::sync::mpsc::channel();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let thread = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            addr_tx.send(listener.local_addr().unwrap()).unwrap();
            mqlog::server::run(listener, log.clone(), async {
                let _ = stop_rx.await;
            })
            .await
            .unwrap();
            log.close().unwrap();
        });
    });
    Server {
        addr: addr_rx.recv_timeout(Duration::from_secs(10)).unwrap(),
        stop: Some(stop_tx),
        thread: Some(thread),
    }
}

fn produce(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let server = start_server(dir.path());
    let mut client = Client::connect(server.addr, Duration::from_secs(10)).unwrap();
    client.create_topic("t", 1).unwrap();
    let batch = 100usize;
    let records: Vec<Vec<u8>> = (0..batch).map(|i| vec![i as u8; 1024]).collect();
    let per_iter = 100usize; // produce requests per iteration, pipelined
    let window = 32usize;
    let mut g = c.benchmark_group("e2e");
    g.warm_up_time(Duration::from_secs(1));
    g.measurement_time(Duration::from_secs(5));
    g.sample_size(20);
    g.throughput(Throughput::Elements((batch * per_iter) as u64));
    g.bench_function("produce_1KiB_batch100_pipelined", |b| {
        b.iter(|| {
            let mut sent = 0;
            let mut acked = 0;
            while acked < per_iter {
                while sent < per_iter && client.produces_in_flight() < window {
                    client.send_produce("t", 0, &records, Ack::Written).unwrap();
                    sent += 1;
                }
                for (_, r) in client.poll_responses(Duration::from_secs(10)).unwrap() {
                    r.unwrap();
                    acked += 1;
                }
            }
        })
    });
    g.finish();
    drop(client);
    drop(server);
}

criterion_group!(benches, produce);
criterion_main!(benches);
