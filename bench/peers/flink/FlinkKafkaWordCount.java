// The Flink side of the Kafka part of bench/bench.py (Flink 2.3.0, DataStream API, Flink's Kafka
// connector 5.0.0-2.2): the same job as the benchmark's dataflow spec. Lines read from a Kafka
// topic from its start to the end it has when the job starts (a bounded KafkaSource,
// read_committed), split on ",", each word mapped to (word, 1), a rolling sum keyed by word, and
// each sum written to another topic as {"word": w, "count": n} keyed by the word, exactly once
// (Kafka transactions committed with checkpoints). RocksDB state with incremental, exactly-once
// checkpoints.
//
//   java -cp <pyflink/lib/*.jar>:<connector jars>:<classes> FlinkKafkaWordCount
//        --servers HOST:PORT --input TOPIC --output TOPIC [--parallelism P] [--interval-ms MS]
//        [--checkpoints URI] [--tmp DIR] [--prefix TRANSACTIONAL_ID_PREFIX]
//
// When the job is over (its last transaction committed), main() prints one line on stdout:
//
//   RESULT execute_ms=T finished_ms=T
//
// (times in ms since the epoch): execute() was called, execute() returned.
import java.nio.charset.StandardCharsets;
import java.time.Duration;

import org.apache.flink.api.common.eventtime.WatermarkStrategy;
import org.apache.flink.api.common.functions.FlatMapFunction;
import org.apache.flink.api.common.functions.MapFunction;
import org.apache.flink.api.common.serialization.SerializationSchema;
import org.apache.flink.api.common.serialization.SimpleStringSchema;
import org.apache.flink.api.java.tuple.Tuple2;
import org.apache.flink.configuration.CheckpointingOptions;
import org.apache.flink.configuration.Configuration;
import org.apache.flink.configuration.CoreOptions;
import org.apache.flink.configuration.StateBackendOptions;
import org.apache.flink.connector.base.DeliveryGuarantee;
import org.apache.flink.connector.kafka.sink.KafkaRecordSerializationSchema;
import org.apache.flink.connector.kafka.sink.KafkaSink;
import org.apache.flink.connector.kafka.source.KafkaSource;
import org.apache.flink.connector.kafka.source.enumerator.initializer.OffsetsInitializer;
import org.apache.flink.core.execution.CheckpointingMode;
import org.apache.flink.streaming.api.environment.StreamExecutionEnvironment;
import org.apache.flink.util.Collector;

public class FlinkKafkaWordCount {

    public static class Split implements FlatMapFunction<String, String> {
        @Override
        public void flatMap(String line, Collector<String> out) {
            for (String word : line.split(",")) {
                out.collect(word);
            }
        }
    }

    public static class One implements MapFunction<String, Tuple2<String, Integer>> {
        @Override
        public Tuple2<String, Integer> map(String word) {
            return Tuple2.of(word, 1);
        }
    }

    /** The word, as the message's key. */
    public static class Key implements SerializationSchema<Tuple2<String, Integer>> {
        @Override
        public byte[] serialize(Tuple2<String, Integer> pair) {
            return pair.f0.getBytes(StandardCharsets.UTF_8);
        }
    }

    /** {"word": w, "count": n}, as the message's value (words here need no escaping). */
    public static class Json implements SerializationSchema<Tuple2<String, Integer>> {
        @Override
        public byte[] serialize(Tuple2<String, Integer> pair) {
            return ("{\"word\":\"" + pair.f0 + "\",\"count\":" + pair.f1 + "}").getBytes(StandardCharsets.UTF_8);
        }
    }

    public static void main(String[] args) throws Exception {
        String servers = null, input = null, output = null, prefix = "flink-kafka-word-count";
        String checkpoints = "file:///tmp/flinkpeer/checkpoints", tmp = null;
        int parallelism = 1;
        long intervalMs = 1000;
        for (int i = 0; i + 1 < args.length; i += 2) {
            String value = args[i + 1];
            switch (args[i]) {
                case "--servers": servers = value; break;
                case "--input": input = value; break;
                case "--output": output = value; break;
                case "--parallelism": parallelism = Integer.parseInt(value); break;
                case "--interval-ms": intervalMs = Long.parseLong(value); break;
                case "--checkpoints": checkpoints = value; break;
                case "--tmp": tmp = value; break;
                case "--prefix": prefix = value; break;
                default: throw new IllegalArgumentException("unknown option " + args[i]);
            }
        }
        if (servers == null || input == null || output == null || args.length % 2 != 0) {
            throw new IllegalArgumentException("usage: FlinkKafkaWordCount --servers HOST:PORT --input TOPIC "
                    + "--output TOPIC [--parallelism P] [--interval-ms MS] [--checkpoints URI] [--tmp DIR] "
                    + "[--prefix PREFIX]");
        }

        Configuration conf = new Configuration();
        conf.set(StateBackendOptions.STATE_BACKEND, "rocksdb");
        conf.set(CheckpointingOptions.INCREMENTAL_CHECKPOINTS, true);
        conf.set(CheckpointingOptions.CHECKPOINT_STORAGE, "filesystem");
        conf.set(CheckpointingOptions.CHECKPOINTS_DIRECTORY, checkpoints);
        conf.set(CheckpointingOptions.CHECKPOINTING_INTERVAL, Duration.ofMillis(intervalMs));
        conf.set(CheckpointingOptions.CHECKPOINTING_CONSISTENCY_MODE, CheckpointingMode.EXACTLY_ONCE);
        if (tmp != null) {
            conf.set(CoreOptions.TMP_DIRS, tmp);
        }
        StreamExecutionEnvironment env = StreamExecutionEnvironment.getExecutionEnvironment(conf);
        env.setParallelism(parallelism);

        KafkaSource<String> source = KafkaSource.<String>builder()
                .setBootstrapServers(servers)
                .setTopics(input)
                .setGroupId(prefix + "-source")
                .setStartingOffsets(OffsetsInitializer.earliest())
                .setBounded(OffsetsInitializer.latest())
                .setProperty("isolation.level", "read_committed")
                .setValueOnlyDeserializer(new SimpleStringSchema())
                .build();
        KafkaSink<Tuple2<String, Integer>> sink = KafkaSink.<Tuple2<String, Integer>>builder()
                .setBootstrapServers(servers)
                .setRecordSerializer(KafkaRecordSerializationSchema.<Tuple2<String, Integer>>builder()
                        .setTopic(output)
                        .setKeySerializationSchema(new Key())
                        .setValueSerializationSchema(new Json())
                        .build())
                .setDeliveryGuarantee(DeliveryGuarantee.EXACTLY_ONCE)
                .setTransactionalIdPrefix(prefix)
                .setProperty("transaction.timeout.ms", "900000")
                .build();
        env.fromSource(source, WatermarkStrategy.noWatermarks(), "lines")
                .flatMap(new Split()).name("words")
                .map(new One()).name("pairs")
                .keyBy(pair -> pair.f0)
                .sum(1).name("counts")
                .sinkTo(sink).name("out");

        long executeMs = System.currentTimeMillis();
        env.execute("flink-kafka-word-count");
        long finishedMs = System.currentTimeMillis();
        System.out.println("RESULT execute_ms=" + executeMs + " finished_ms=" + finishedMs);
    }
}
