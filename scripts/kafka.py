#!/usr/bin/env python3
"""A one-node Apache Kafka broker to try dataflow's Kafka examples on, and Kafka's own
command-line tools against it: the same broker the tests start (tests/kafka/pom.xml names its
jars; Maven fetches them the first time), so nothing is installed by hand. Needs Java 17 and
Maven on the PATH.

  python3 scripts/kafka.py broker lines counts   # a broker on 127.0.0.1:9092 with these topics, until Ctrl-C
  python3 scripts/kafka.py topics views:4         # creates topics not there yet: NAME[:PARTITIONS]
  python3 scripts/kafka.py write lines < file     # each line of standard input becomes a message
  python3 scripts/kafka.py read counts            # prints committed messages, key and value, until Ctrl-C

The broker keeps its data in /tmp/dataflow/kafka (--dir), so that stopping and starting it keeps
the topics, as a real broker's restart would.
"""

import argparse
import os
import signal
import socket
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
POM = os.path.join(ROOT, "tests", "kafka", "pom.xml")
# Any fixed id: a data folder formatted with it is reused as it is.
CLUSTER_ID = "ZGF0YWZsb3ctdHJ5LWl0MQ"


def fail(message):
    sys.exit(f"scripts/kafka.py: {message}")


def classpath(folder):
    """The jars of the broker and of Kafka's tools, resolved by Maven (cached in ~/.m2)."""
    # One file per process: a `read` may run while the broker command starts.
    out = os.path.join(folder, f"classpath-{os.getpid()}.txt")
    try:
        run = subprocess.run(["mvn", "-q", "-B", "-f", POM, "dependency:build-classpath",
                              "-Dmdep.outputFile=" + out], capture_output=True, text=True)
    except FileNotFoundError:
        fail("`mvn` is not on the PATH: the Kafka broker's jars come from Maven (and need Java 17)")
    if run.returncode:
        fail(f"Maven could not fetch the Kafka broker's jars:\n{run.stdout}{run.stderr}")
    with open(out) as f:
        cp = f.read().strip()
    os.remove(out)
    return cp


def write_whole(path, text):
    """Writes `path` so that a tool starting meanwhile reads the old text or the new, never half."""
    with open(path + f".{os.getpid()}", "w") as f:
        f.write(text)
    os.replace(path + f".{os.getpid()}", path)
    return path


def tool_logging(folder, name="tools", extra=""):
    """Kafka's tools print their errors, not their warnings (one per retry) or INFO lines."""
    return write_whole(os.path.join(folder, f"log4j2-{name}.properties"),
                       extra + "rootLogger.level=ERROR\nrootLogger.appenderRef.out.ref=out\n"
                       "appender.out.type=Console\nappender.out.name=out\nappender.out.target=SYSTEM_ERR\n"
                       "appender.out.layout.type=PatternLayout\nappender.out.layout.pattern=kafka: %p %m%n\n")


def answers(servers):
    """Whether the first of `servers` accepts a connection."""
    host, _, port = servers.split(",")[0].strip().rpartition(":")
    try:
        with socket.create_connection((host or "127.0.0.1", int(port)), timeout=5):
            return True
    except (OSError, ValueError):
        return False


def tools(args):
    """The class path and the logging option Kafka's tools run with."""
    servers = getattr(args, "servers", None)
    if servers and not answers(servers):
        fail(f"nothing answers on {servers}: is the broker running (`python3 scripts/kafka.py broker`)?")
    os.makedirs(args.dir, exist_ok=True)
    cp = classpath(args.dir)
    return cp, "-Dlog4j2.configurationFile=" + tool_logging(args.dir)


def run_tool(cp, logging, main, *args, **kwargs):
    try:
        return subprocess.run(["java", logging, "-cp", cp, main, *args], **kwargs)
    except FileNotFoundError:
        fail("`java` is not on the PATH: Kafka's tools need Java 17")


def create_topics(cp, logging, servers, topics):
    """Creates each NAME[:PARTITIONS] not there yet."""
    wanted = []
    for topic in topics:
        name, _, partitions = topic.partition(":")
        partitions = partitions or "1"
        if not name or not partitions.isdigit() or int(partitions) < 1:
            fail(f"`{topic}` is not a topic: write NAME or NAME:PARTITIONS (PARTITIONS at least 1)")
        wanted.append((name, partitions))
    listed = run_tool(cp, logging, "org.apache.kafka.tools.TopicCommand", "--bootstrap-server", servers,
                      "--list", capture_output=True, text=True)
    if listed.returncode:
        fail(f"could not list the topics on {servers}:\n{listed.stdout}{listed.stderr}")
    there = set(listed.stdout.split())
    for name, partitions in wanted:
        if name in there:
            print(f"topic `{name}` on {servers}: there already", flush=True)
            continue
        made = run_tool(cp, logging, "org.apache.kafka.tools.TopicCommand", "--bootstrap-server", servers,
                        "--create", "--if-not-exists", "--topic", name, "--partitions", partitions,
                        "--replication-factor", "1", capture_output=True, text=True)
        if made.returncode:
            fail(f"could not create topic `{name}` on {servers}:\n{made.stdout}{made.stderr}")
        print(f"topic `{name}` on {servers}: created, {partitions} partition(s)", flush=True)


def start_broker(folder, port, controller_port, cp):
    """Starts a one-node broker (KRaft) with its configuration and data in `folder` (formatted the
    first time, reused after), and returns its process once it accepts connections on `port`.
    Its log goes to folder/broker.log; its errors to standard error too."""
    servers = f"127.0.0.1:{port}"
    config = os.path.join(folder, "server.properties")
    with open(config, "w") as f:
        f.write("\n".join([
            "process.roles=broker,controller", "node.id=1",
            f"controller.quorum.bootstrap.servers=127.0.0.1:{controller_port}",
            f"listeners=PLAINTEXT://{servers},CONTROLLER://127.0.0.1:{controller_port}",
            f"advertised.listeners=PLAINTEXT://{servers}", "controller.listener.names=CONTROLLER",
            "inter.broker.listener.name=PLAINTEXT",
            "listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
            f"log.dirs={os.path.join(folder, 'data')}", "num.partitions=1",
            # As dataflow's Kafka sink: topics are created on purpose, not by a typo.
            "auto.create.topics.enable=false",
            # One node: its internal topics have one replica, and few partitions start faster.
            "offsets.topic.replication.factor=1", "offsets.topic.num.partitions=4",
            "transaction.state.log.replication.factor=1", "transaction.state.log.min.isr=1",
            "transaction.state.log.num.partitions=4", "group.initial.rebalance.delay.ms=0", ""]))
    logging = "-Dlog4j2.configurationFile=" + tool_logging(folder)
    formatted = run_tool(cp, logging, "kafka.tools.StorageTool", "format", "--standalone", "--ignore-formatted",
                         "-t", CLUSTER_ID, "-c", config, capture_output=True, text=True)
    if formatted.returncode:
        fail(f"could not prepare the broker's data in {folder} (from another Kafka? remove it, "
             f"or use --dir):\n{formatted.stdout}{formatted.stderr}")
    log = os.path.join(folder, "broker.log")
    with open(os.path.join(folder, "log4j2-broker.properties"), "w") as f:
        f.write("rootLogger.level=INFO\nrootLogger.appenderRef.file.ref=file\n"
                "rootLogger.appenderRef.out.ref=out\n"
                f"appender.file.type=File\nappender.file.name=file\nappender.file.fileName={log}\n"
                "appender.file.layout.type=PatternLayout\nappender.file.layout.pattern=[%d] %p %m (%c)%n\n"
                "appender.out.type=Console\nappender.out.name=out\nappender.out.target=SYSTEM_ERR\n"
                "appender.out.filter.level.type=ThresholdFilter\nappender.out.filter.level.level=ERROR\n"
                "appender.out.layout.type=PatternLayout\nappender.out.layout.pattern=kafka: %p %m%n\n")
    process = subprocess.Popen(["java", "-Xms256m", "-Xmx1g",
                                "-Dlog4j2.configurationFile=" + os.path.join(folder, "log4j2-broker.properties"),
                                "-cp", cp, "kafka.Kafka", config])
    deadline = time.monotonic() + 120
    while not answers(servers):
        if process.poll() is not None:
            fail(f"the broker ended with status {process.returncode} before it answered; its log is {log}")
        if time.monotonic() > deadline:
            process.kill()
            fail(f"the broker did not answer on {servers} within 120 s; its log is {log}")
        time.sleep(0.2)
    return process


def broker(args):
    os.makedirs(args.dir, exist_ok=True)
    servers = f"127.0.0.1:{args.port}"
    if answers(servers):
        fail(f"something already listens on {servers} (another broker?); "
             "stop it, or choose another port with --port")
    cp, logging = tools(args)
    process = start_broker(args.dir, args.port, args.controller_port, cp)
    # Ctrl-C or SIGTERM: the broker shuts down cleanly (SIGTERM, which it gets even where a
    # shell started this script with SIGINT ignored), and this script ends when it has.
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: process.terminate())
    if args.topics:
        create_topics(cp, logging, servers, args.topics)
    print(f"Kafka broker on {servers}, data in {args.dir}, log in {os.path.join(args.dir, 'broker.log')}; "
          "Ctrl-C stops it", flush=True)
    status = process.wait()
    print(f"Kafka broker stopped ({status})", flush=True)
    # Ended by a signal (Ctrl-C, SIGTERM) as it should be: no error.
    sys.exit(0 if status in (0, 130, 143, -2, -15) else status)


def topics(args):
    cp, logging = tools(args)
    create_topics(cp, logging, args.servers, args.topics)


def write(args):
    cp, logging = tools(args)
    status = run_tool(cp, logging, "org.apache.kafka.tools.ConsoleProducer", "--bootstrap-server", args.servers,
                      "--topic", args.topic).returncode
    sys.exit(status)


def read(args):
    cp, logging = tools(args)
    extra = []
    if args.idle:
        extra = ["--timeout-ms", str(int(args.idle * 1000))]
        # The end of the wait is logged as an error, with its stack trace.
        logging = "-Dlog4j2.configurationFile=" + tool_logging(
            args.dir, "read-idle", "logger.quiet.name=org.apache.kafka.tools.consumer.ConsoleConsumer\n"
                                   "logger.quiet.level=OFF\n")
    signal.signal(signal.SIGINT, lambda *_: None)
    status = run_tool(cp, logging, "org.apache.kafka.tools.consumer.ConsoleConsumer",
                      "--bootstrap-server", args.servers, "--topic", args.topic, "--from-beginning",
                      "--isolation-level", "read_committed", "--formatter-property", "print.key=true",
                      "--command-property", "group.protocol=consumer", *extra).returncode
    # ConsoleConsumer ends with 130 on Ctrl-C and 0 after --timeout-ms: both are how it should end.
    sys.exit(0 if status in (0, 130, -2) else status)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dir", default="/tmp/dataflow/kafka",
                        help="the broker's data and the tools' files (default: /tmp/dataflow/kafka)")
    commands = parser.add_subparsers(dest="command", required=True)
    b = commands.add_parser("broker", help="runs a broker until Ctrl-C")
    b.add_argument("topics", nargs="*", metavar="TOPIC[:PARTITIONS]", help="topics to create once it answers")
    b.add_argument("--port", type=int, default=9092)
    b.add_argument("--controller-port", type=int, default=9093)
    b.set_defaults(run=broker)
    for name, run, what in [("topics", topics, "creates topics not there yet"),
                            ("write", write, "writes each line of standard input as a message"),
                            ("read", read, "prints the committed messages of a topic, key and value")]:
        c = commands.add_parser(name, help=what)
        c.add_argument("--servers", default="127.0.0.1:9092", help="bootstrap servers (default: 127.0.0.1:9092)")
        if name == "topics":
            c.add_argument("topics", nargs="+", metavar="TOPIC[:PARTITIONS]")
        else:
            c.add_argument("topic")
        if name == "read":
            c.add_argument("--idle", type=float, default=0,
                           help="end after this many seconds without a message (default: never)")
        c.set_defaults(run=run)
    args = parser.parse_args()
    try:
        args.run(args)
    except KeyboardInterrupt:
        sys.exit(130)


if __name__ == "__main__":
    main()
