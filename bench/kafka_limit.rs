//! The Kafka connectors' ceiling: the same client (librdkafka, through
//! rdkafka) with the settings the `kafka` source and sink use, reading a
//! topic to its end or writing messages, with no processing at all. The
//! benchmark divides the engine's rates by these.
//!
//! `kafka-limit read SERVERS TOPIC`: reads every partition from its start
//! to the end it has when the program starts.
//! `kafka-limit write SERVERS TOPIC COUNT`: writes COUNT messages of
//! generated words (`w17,w3,w99,w42`) with an idempotent producer.
//! `kafka-limit copy SERVERS FROM TO`: reads FROM to its end as `read`
//! does and writes each comma-separated word of each message to TO as a
//! message keyed by the word, in transactions committed every second: the
//! exactly-once word count's reading and writing, with no counting.
//! Each prints `messages N bytes B seconds S` (for `copy`, messages read;
//! S from the start of the program to the end of its work).
//! `kafka-limit create SERVERS TOPIC PARTITIONS` creates a topic (for the
//! benchmark, which has no Kafka tool of its own).

/// The engine's allocator, which serves librdkafka's allocations too
/// (see engine/src/main.rs): the same client, allocating the same way.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::process::ExitCode;
use std::time::{Duration, Instant};

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::{Message, Offset, TopicPartitionList};

fn main() -> ExitCode {
    // Timed as the benchmark times dataflow: from the start of the
    // process (connecting, starting transactions) to the end of its work
    // (the last flush or commit).
    let started = Instant::now();
    let args: Vec<String> = std::env::args().collect();
    let result = match args.get(1).map(String::as_str) {
        Some("read") if args.len() == 4 => read(&args[2], &args[3]),
        Some("write") if args.len() == 5 => match args[4].parse() {
            Ok(count) => write(&args[2], &args[3], count),
            Err(_) => Err(format!("COUNT must be a number, not `{}`", args[4])),
        },
        Some("copy") if args.len() == 5 => copy(&args[2], &args[3], &args[4]),
        Some("create") if args.len() == 5 => match args[4].parse() {
            Ok(partitions) => create(&args[2], &args[3], partitions),
            Err(_) => Err(format!("PARTITIONS must be a number, not `{}`", args[4])),
        },
        _ => Err("usage: kafka-limit read SERVERS TOPIC | write SERVERS TOPIC COUNT | copy SERVERS FROM TO | create SERVERS TOPIC PARTITIONS".into()),
    };
    match result {
        Ok((messages, bytes)) => {
            println!(
                "messages {messages} bytes {bytes} seconds {:.3}",
                started.elapsed().as_secs_f64()
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn read(servers: &str, topic: &str) -> Result<(u64, u64), String> {
    read_each(servers, topic, |_| Ok(()))
}

/// Reads every partition of `topic` to the end it has now, calling `each`
/// with every message's value.
fn read_each(
    servers: &str,
    topic: &str,
    mut each: impl FnMut(&[u8]) -> Result<(), String>,
) -> Result<(u64, u64), String> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", servers)
        .set("group.id", "kafka-limit")
        .set("enable.auto.commit", "false")
        .set("isolation.level", "read_committed")
        // As the `kafka` source sets it (engine/src/operators/sources/kafka.rs).
        .set("fetch.queue.backoff.ms", "10")
        .create()
        .map_err(|e| e.to_string())?;
    let timeout = Duration::from_secs(15);
    let metadata = consumer
        .fetch_metadata(Some(topic), timeout)
        .map_err(|e| e.to_string())?;
    let mut tpl = TopicPartitionList::new();
    let mut ends = Vec::new();
    for partition in metadata.topics()[0].partitions() {
        let (_, high) = consumer
            .fetch_watermarks(topic, partition.id(), timeout)
            .map_err(|e| e.to_string())?;
        tpl.add_partition_offset(topic, partition.id(), Offset::Beginning)
            .map_err(|e| e.to_string())?;
        ends.push(high);
    }
    consumer.assign(&tpl).map_err(|e| e.to_string())?;
    let (mut messages, mut bytes) = (0u64, 0u64);
    let mut next = vec![0i64; ends.len()];
    while next.iter().zip(&ends).any(|(n, e)| n < e) {
        match consumer.poll(Duration::from_millis(100)) {
            Some(Ok(m)) => {
                messages += 1;
                let payload = m.payload().unwrap_or_default();
                bytes += payload.len() as u64;
                next[m.partition() as usize] = m.offset() + 1;
                each(payload)?;
            }
            Some(Err(e)) => return Err(e.to_string()),
            // Past the last message, only transaction markers are left.
            None => {
                if let Ok(positions) = consumer.position() {
                    for p in positions.elements() {
                        if let Offset::Offset(o) = p.offset() {
                            let at = &mut next[p.partition() as usize];
                            *at = (*at).max(o);
                        }
                    }
                }
            }
        }
    }
    Ok((messages, bytes))
}

fn write(servers: &str, topic: &str, count: u64) -> Result<(u64, u64), String> {
    let producer: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", servers)
        .set("enable.idempotence", "true")
        .create()
        .map_err(|e| e.to_string())?;
    let mut bytes = 0u64;
    let mut value = String::new();
    let mut seed = 7u64;
    for _ in 0..count {
        value.clear();
        for w in 0..4 {
            // xorshift: words as the engine's generate source spreads them
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            if w > 0 {
                value.push(',');
            }
            value.push('w');
            value.push_str(&(seed % 1000).to_string());
        }
        bytes += value.len() as u64;
        send(&producer, BaseRecord::<str, str>::to(topic).payload(&value))?;
        producer.poll(Duration::ZERO);
    }
    producer
        .flush(Duration::from_secs(300))
        .map_err(|e| e.to_string())?;
    Ok((count, bytes))
}

/// Sends `record`; a full queue waits for acknowledgements, as the sink does.
fn send<K, P>(producer: &BaseProducer, mut record: BaseRecord<'_, K, P>) -> Result<(), String>
where
    K: rdkafka::message::ToBytes + ?Sized,
    P: rdkafka::message::ToBytes + ?Sized,
{
    while let Err((e, back)) = producer.send(record) {
        if e.rdkafka_error_code() != Some(rdkafka::types::RDKafkaErrorCode::QueueFull) {
            return Err(e.to_string());
        }
        producer.poll(Duration::from_millis(10));
        record = back;
    }
    Ok(())
}

fn copy(servers: &str, from: &str, to: &str) -> Result<(u64, u64), String> {
    let producer: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", servers)
        .set("enable.idempotence", "true")
        .set("transactional.id", "kafka-limit-copy")
        .create()
        .map_err(|e| e.to_string())?;
    let timeout = Duration::from_secs(60);
    producer
        .init_transactions(timeout)
        .map_err(|e| e.to_string())?;
    producer.begin_transaction().map_err(|e| e.to_string())?;
    let mut committed = Instant::now();
    let result = read_each(servers, from, |line| {
        for word in line.split(|b| *b == b',') {
            send(
                &producer,
                BaseRecord::<[u8], [u8]>::to(to).payload(word).key(word),
            )?;
        }
        producer.poll(Duration::ZERO);
        if committed.elapsed() >= Duration::from_secs(1) {
            producer
                .commit_transaction(timeout)
                .map_err(|e| e.to_string())?;
            producer.begin_transaction().map_err(|e| e.to_string())?;
            committed = Instant::now();
        }
        Ok(())
    })?;
    producer
        .commit_transaction(timeout)
        .map_err(|e| e.to_string())?;
    Ok(result)
}

fn create(servers: &str, topic: &str, partitions: i32) -> Result<(u64, u64), String> {
    use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
    use rdkafka::client::DefaultClientContext;
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", servers)
        .create()
        .map_err(|e| e.to_string())?;
    let topics = [NewTopic::new(topic, partitions, TopicReplication::Fixed(1))];
    let created =
        block_on(admin.create_topics(&topics, &AdminOptions::new())).map_err(|e| e.to_string())?;
    for result in created {
        result.map_err(|(topic, code)| format!("cannot create `{topic}`: {code}"))?;
    }
    Ok((0, 0))
}

/// Runs a future to its end on this thread (the admin client's calls are
/// futures; this program needs nothing more of an executor).
fn block_on<F: std::future::Future>(future: F) -> F::Output {
    struct Unpark(std::thread::Thread);
    impl std::task::Wake for Unpark {
        fn wake(self: std::sync::Arc<Self>) {
            self.0.unpark();
        }
    }
    let waker = std::task::Waker::from(std::sync::Arc::new(Unpark(std::thread::current())));
    let mut cx = std::task::Context::from_waker(&waker);
    let mut future = std::pin::pin!(future);
    loop {
        if let std::task::Poll::Ready(out) = future.as_mut().poll(&mut cx) {
            return out;
        }
        std::thread::park();
    }
}
