//! A real Apache Kafka broker for the tests: KRaft mode, one node that is
//! both broker and controller, on loopback ports of its own, from the
//! broker's jars that Maven fetches (tests/kafka/pom.xml). Started as a
//! child process by a shell that kills it once the test process's end
//! closes its standard input, so that no broker outlives the tests, even
//! a killed run of them.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use rdkafka::admin::{AdminClient, AdminOptions, NewPartitions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::{Message, Offset, TopicPartitionList};

use crate::harness::root;

/// The broker's class path, resolved by Maven once per test process.
fn classpath() -> &'static str {
    static CLASSPATH: OnceLock<String> = OnceLock::new();
    CLASSPATH.get_or_init(|| {
        let out = Path::new(env!("CARGO_TARGET_TMPDIR")).join("kafka-classpath.txt");
        let run = Command::new("mvn")
            .args(["-q", "-B", "-f"])
            .arg(root().join("tests/kafka/pom.xml"))
            .arg("dependency:build-classpath")
            .arg(format!("-Dmdep.outputFile={}", out.display()))
            .output()
            .expect("cannot run `mvn`: the Kafka tests need Maven and Java 17");
        assert!(
            run.status.success(),
            "Maven could not fetch the Kafka broker's jars: {}{}",
            String::from_utf8_lossy(&run.stdout),
            String::from_utf8_lossy(&run.stderr)
        );
        std::fs::read_to_string(&out).expect("Maven wrote no class path")
    })
}

/// The user the SASL listener knows, and its password.
pub const SASL_USER: &str = "alice";
pub const SASL_PASSWORD: &str = "alice-Pa55-kafka";

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub struct Broker {
    dir: tempfile::TempDir,
    /// `127.0.0.1:port`, as `bootstrap_servers`.
    pub servers: String,
    /// A listener that wants SASL/PLAIN: user [`SASL_USER`], password
    /// [`SASL_PASSWORD`].
    pub sasl_servers: String,
    controller: u16,
    child: Option<Child>,
}

impl Broker {
    /// A broker of its own, for a test that stops it.
    pub fn start() -> Broker {
        let dir = tempfile::tempdir().unwrap();
        let (port, controller, sasl) = (free_port(), free_port(), free_port());
        let mut broker = Broker {
            dir,
            servers: format!("127.0.0.1:{port}"),
            sasl_servers: format!("127.0.0.1:{sasl}"),
            controller,
            child: None,
        };
        broker.configure(port, sasl);
        broker.run();
        broker
    }

    /// The broker the tests share, each with topics of its own.
    pub fn shared() -> &'static Broker {
        static SHARED: OnceLock<Broker> = OnceLock::new();
        SHARED.get_or_init(Broker::start)
    }

    fn configure(&self, port: u16, sasl: u16) {
        let controller = self.controller;
        // Time retention (7 days) is applied every 5 s, not every 5
        // minutes: a test whose messages are stamped beyond it then fails
        // at once, not only when it happens to run late in the suite.
        let properties = format!(
            "process.roles=broker,controller\n\
             node.id=1\n\
             controller.quorum.bootstrap.servers=127.0.0.1:{controller}\n\
             listeners=PLAINTEXT://127.0.0.1:{port},SASL_PLAINTEXT://127.0.0.1:{sasl},CONTROLLER://127.0.0.1:{controller}\n\
             advertised.listeners=PLAINTEXT://127.0.0.1:{port},SASL_PLAINTEXT://127.0.0.1:{sasl}\n\
             controller.listener.names=CONTROLLER\n\
             inter.broker.listener.name=PLAINTEXT\n\
             listener.security.protocol.map=PLAINTEXT:PLAINTEXT,SASL_PLAINTEXT:SASL_PLAINTEXT,CONTROLLER:PLAINTEXT\n\
             sasl.enabled.mechanisms=PLAIN\n\
             listener.name.sasl_plaintext.plain.sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required user_{SASL_USER}=\"{SASL_PASSWORD}\";\n\
             log.dirs={}\n\
             num.partitions=1\n\
             auto.create.topics.enable=false\n\
             offsets.topic.replication.factor=1\n\
             offsets.topic.num.partitions=4\n\
             transaction.state.log.replication.factor=1\n\
             transaction.state.log.min.isr=1\n\
             transaction.state.log.num.partitions=4\n\
             group.initial.rebalance.delay.ms=0\n\
             log.retention.check.interval.ms=5000\n",
            self.dir.path().join("data").display()
        );
        std::fs::write(self.config(), properties).unwrap();
        let output = Command::new("java")
            .args([
                "-cp",
                classpath(),
                "kafka.tools.StorageTool",
                "format",
                "--standalone",
            ])
            .args(["-t", "ZGF0YWZsb3ctdGVzdHMxMg", "-c"])
            .arg(self.config())
            .output()
            .expect("cannot run `java`: the Kafka tests need Java 17");
        assert!(
            output.status.success(),
            "cannot format the broker's storage: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }

    fn config(&self) -> PathBuf {
        self.dir.path().join("server.properties")
    }

    fn log(&self) -> PathBuf {
        self.dir.path().join("broker.log")
    }

    /// Starts the broker on its configuration and data, and waits until
    /// it answers.
    fn run(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log())
            .unwrap();
        // `exec` keeps the shell's pid for java's; the subshell's `cat`
        // returns when the test process's end of the pipe closes.
        let script = format!(
            "java -Xms256m -Xmx768m -cp \"$0\" kafka.Kafka '{}' & pid=$!; cat >/dev/null; kill -9 $pid",
            self.config().display()
        );
        let child = Command::new("sh")
            .args(["-c", &script, classpath()])
            .stdin(Stdio::piped())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        self.child = Some(child);
        let started = Instant::now();
        loop {
            let answered = self
                .consumer(&[])
                .fetch_metadata(None, Duration::from_secs(2))
                .is_ok_and(|m| !m.brokers().is_empty());
            if answered {
                return;
            }
            assert!(
                started.elapsed() < Duration::from_secs(120),
                "the Kafka broker did not start within 120 s; its log:\n{}",
                std::fs::read_to_string(self.log()).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Stops the broker (killed, as a crash), keeping its data.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            drop(child.stdin.take());
            let _ = child.wait();
        }
        // The listener may linger a moment after the process is gone.
        std::thread::sleep(Duration::from_millis(200));
    }

    /// Starts the stopped broker again, on the same ports and data.
    pub fn restart(&mut self) {
        self.stop();
        self.run();
    }

    pub fn client(&self, extra: &[(&str, &str)]) -> ClientConfig {
        let mut config = ClientConfig::new();
        config.set("bootstrap.servers", &self.servers);
        for (k, v) in extra {
            config.set(*k, *v);
        }
        config
    }

    fn consumer(&self, extra: &[(&str, &str)]) -> BaseConsumer {
        self.client(extra).create().unwrap()
    }

    pub fn create_topic(&self, topic: &str, partitions: i32) {
        let admin: AdminClient<DefaultClientContext> = self.client(&[]).create().unwrap();
        let created = futures_executor::block_on(admin.create_topics(
            &[NewTopic::new(topic, partitions, TopicReplication::Fixed(1))],
            &AdminOptions::new().operation_timeout(Some(Duration::from_secs(30))),
        ))
        .unwrap();
        for result in created {
            result.unwrap_or_else(|e| panic!("cannot create topic {topic}: {e:?}"));
        }
        // Created means the controller has it; a test goes on once the
        // broker's metadata shows every partition, as a client sees it.
        let consumer = self.consumer(&[]);
        let ready = || {
            consumer
                .fetch_metadata(Some(topic), Duration::from_secs(10))
                .is_ok_and(|m| {
                    let found = m.topics()[0].partitions();
                    found.len() == partitions as usize
                        && found.iter().all(|p| {
                            consumer
                                .fetch_watermarks(topic, p.id(), Duration::from_secs(10))
                                .is_ok()
                        })
                })
        };
        let started = Instant::now();
        while !ready() {
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "the partitions of {topic} did not show within 30 s"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Deletes the records of `partition` of `topic` before `offset`, as
    /// retention would.
    pub fn delete_before(&self, topic: &str, partition: i32, offset: i64) {
        let admin: AdminClient<DefaultClientContext> = self.client(&[]).create().unwrap();
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition_offset(topic, partition, Offset::Offset(offset))
            .unwrap();
        let done = futures_executor::block_on(admin.delete_records(
            &tpl,
            &AdminOptions::new().operation_timeout(Some(Duration::from_secs(30))),
        ))
        .unwrap();
        for element in done.elements() {
            element
                .error()
                .unwrap_or_else(|e| panic!("cannot delete records of {topic}: {e:?}"));
        }
    }

    /// Grows a topic to `partitions` partitions.
    pub fn add_partitions(&self, topic: &str, partitions: usize) {
        let admin: AdminClient<DefaultClientContext> = self.client(&[]).create().unwrap();
        let done = futures_executor::block_on(admin.create_partitions(
            &[NewPartitions::new(topic, partitions)],
            &AdminOptions::new().operation_timeout(Some(Duration::from_secs(30))),
        ))
        .unwrap();
        for result in done {
            result.unwrap_or_else(|e| panic!("cannot add partitions to {topic}: {e:?}"));
        }
    }

    /// Writes `values` to `topic`, value `i` to partition `i % partitions`.
    pub fn produce(&self, topic: &str, partitions: i32, values: &[String]) {
        let producer: BaseProducer = self
            .client(&[
                ("linger.ms", "5"),
                ("queue.buffering.max.messages", "1000000"),
            ])
            .create()
            .unwrap();
        for (i, value) in values.iter().enumerate() {
            let mut record = BaseRecord::<str, str>::to(topic)
                .payload(value)
                .partition(i as i32 % partitions);
            loop {
                match producer.send(record) {
                    Ok(()) => break,
                    Err((e, back)) => {
                        assert!(
                            matches!(
                                e.rdkafka_error_code(),
                                Some(rdkafka::types::RDKafkaErrorCode::QueueFull)
                            ),
                            "cannot produce to {topic}: {e}"
                        );
                        producer.poll(Duration::from_millis(10));
                        record = back;
                    }
                }
            }
        }
        producer.flush(Duration::from_secs(60)).unwrap();
    }

    /// Writes one message to `partition` of `topic`, stamped `millis`, and
    /// waits until the partition holds it (a flush succeeds even when the
    /// message was refused).
    pub fn produce_at(&self, topic: &str, partition: i32, millis: i64, value: &str) {
        let before = self.ends(topic)[partition as usize];
        let producer: BaseProducer = self.client(&[]).create().unwrap();
        for _ in 0..5 {
            producer
                .send(
                    BaseRecord::<str, str>::to(topic)
                        .payload(value)
                        .partition(partition)
                        .timestamp(millis),
                )
                .map_err(|(e, _)| e)
                .unwrap();
            producer.flush(Duration::from_secs(60)).unwrap();
            if self.ends(topic)[partition as usize] > before {
                return;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        panic!("the message to partition {partition} of {topic} was not written");
    }
}

impl Broker {
    /// Every committed record of `topic`, as (partition, offset, value),
    /// read to the end of every partition (its end as a `read_committed`
    /// reader sees it: no transaction may be open).
    pub fn read_committed(&self, topic: &str) -> Vec<(i32, i64, String)> {
        let consumer = self.consumer(&[
            ("group.id", "dataflow-tests-reader"),
            ("isolation.level", "read_committed"),
            ("enable.auto.commit", "false"),
            ("enable.partition.eof", "true"),
        ]);
        let metadata = consumer
            .fetch_metadata(Some(topic), Duration::from_secs(10))
            .unwrap();
        let mut tpl = TopicPartitionList::new();
        let mut open: std::collections::BTreeSet<i32> = std::collections::BTreeSet::new();
        for partition in metadata.topics()[0].partitions() {
            tpl.add_partition_offset(topic, partition.id(), Offset::Beginning)
                .unwrap();
            open.insert(partition.id());
        }
        consumer.assign(&tpl).unwrap();
        let mut records = Vec::new();
        let started = Instant::now();
        while !open.is_empty() {
            assert!(
                started.elapsed() < Duration::from_secs(120),
                "reading {topic} took over 120 s"
            );
            match consumer.poll(Duration::from_millis(100)) {
                None => {}
                Some(Err(rdkafka::error::KafkaError::PartitionEOF(p))) => {
                    open.remove(&p);
                }
                Some(Err(e)) => panic!("cannot read {topic}: {e}"),
                Some(Ok(message)) => {
                    open.insert(message.partition());
                    records.push((
                        message.partition(),
                        message.offset(),
                        String::from_utf8_lossy(message.payload().unwrap_or_default()).into_owned(),
                    ));
                }
            }
        }
        records
    }

    /// The offsets `group` has committed in each partition of `topic`.
    pub fn committed(&self, group: &str, topic: &str) -> Vec<i64> {
        let consumer = self.consumer(&[("group.id", group)]);
        let mut tpl = TopicPartitionList::new();
        for (partition, _) in self.ends(topic).iter().enumerate() {
            tpl.add_partition(topic, partition as i32);
        }
        let committed = consumer
            .committed_offsets(tpl, Duration::from_secs(10))
            .unwrap();
        (0..self.ends(topic).len() as i32)
            .map(
                |p| match committed.find_partition(topic, p).map(|e| e.offset()) {
                    Some(Offset::Offset(o)) => o,
                    _ => -1,
                },
            )
            .collect()
    }

    /// The end (next offset) of each partition of `topic`.
    pub fn ends(&self, topic: &str) -> Vec<i64> {
        let consumer = self.consumer(&[]);
        let metadata = consumer
            .fetch_metadata(Some(topic), Duration::from_secs(10))
            .unwrap();
        let mut partitions: Vec<i32> = metadata.topics()[0]
            .partitions()
            .iter()
            .map(|p| p.id())
            .collect();
        partitions.sort();
        partitions
            .into_iter()
            .map(|p| {
                consumer
                    .fetch_watermarks(topic, p, Duration::from_secs(10))
                    .unwrap()
                    .1
            })
            .collect()
    }

    /// A probe of how many messages `topic` holds, for a test that acts
    /// at a point of a run: its one client stays connected, so each look
    /// costs a round trip, not a new client (which a fast job outran).
    pub fn watch(&self, topic: &str) -> Watch {
        Watch {
            consumer: self.consumer(&[]),
            topic: topic.to_owned(),
        }
    }
}

/// See [`Broker::watch`].
pub struct Watch {
    consumer: BaseConsumer,
    topic: String,
}

impl Watch {
    /// How many messages the topic holds (transaction markers included).
    pub fn written(&self) -> i64 {
        let Ok(metadata) = self
            .consumer
            .fetch_metadata(Some(&self.topic), Duration::from_secs(10))
        else {
            return 0;
        };
        metadata.topics()[0]
            .partitions()
            .iter()
            .filter_map(|p| {
                self.consumer
                    .fetch_watermarks(&self.topic, p.id(), Duration::from_secs(10))
                    .ok()
            })
            .map(|(low, high)| high - low)
            .sum()
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        self.stop();
    }
}
