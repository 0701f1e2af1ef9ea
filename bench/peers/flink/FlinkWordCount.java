// The Flink side of bench/bench.py's word count (Flink 2.3.0, DataStream API).
//
// The same job as the benchmark's dataflow spec: a bounded file source read by one reader, lines
// split on ",", each word mapped to (word, 1), a rolling sum keyed by word, and a sink that only
// counts what it receives. RocksDB state with incremental, exactly-once checkpoints.
//
//   java -cp <pyflink/lib/*.jar>:<classes> FlinkWordCount --input FILE [--parallelism P]
//        [--interval-ms MS] [--checkpoints URI] [--tmp DIR] [--expect WORDS]
//
// `java` on this class runs a local MiniCluster in the same JVM, so the sink's writers and main()
// share the static counters below. When the job is over, main() prints one line on stdout:
//
//   RESULT sink_records=N execute_ms=T first_ms=T last_ms=T finished_ms=T
//
// execute_ms is when execute() was called, first_ms when the sink got its first record, last_ms
// when it got record number --expect (-1 if it never did), finished_ms when execute() returned
// (times in ms since the epoch). bench.py derives its figures from them.
import java.time.Duration;
import java.util.concurrent.atomic.AtomicLong;

import org.apache.flink.api.common.eventtime.WatermarkStrategy;
import org.apache.flink.api.common.functions.FlatMapFunction;
import org.apache.flink.api.common.functions.MapFunction;
import org.apache.flink.api.connector.sink2.Sink;
import org.apache.flink.api.connector.sink2.SinkWriter;
import org.apache.flink.api.connector.sink2.WriterInitContext;
import org.apache.flink.api.java.tuple.Tuple2;
import org.apache.flink.configuration.CheckpointingOptions;
import org.apache.flink.configuration.Configuration;
import org.apache.flink.configuration.CoreOptions;
import org.apache.flink.configuration.StateBackendOptions;
import org.apache.flink.connector.file.src.FileSource;
import org.apache.flink.connector.file.src.reader.TextLineInputFormat;
import org.apache.flink.core.execution.CheckpointingMode;
import org.apache.flink.core.fs.Path;
import org.apache.flink.streaming.api.environment.StreamExecutionEnvironment;
import org.apache.flink.util.Collector;

public class FlinkWordCount {

    static final AtomicLong RECEIVED = new AtomicLong();
    static final AtomicLong FIRST_MS = new AtomicLong(-1);
    static final AtomicLong LAST_MS = new AtomicLong(-1);
    static volatile long expected = -1;

    /** Drops every record, counting them across all its writers. */
    public static class CountingSink<T> implements Sink<T> {
        @Override
        public SinkWriter<T> createWriter(WriterInitContext context) {
            return new SinkWriter<T>() {
                @Override
                public void write(T element, Context context) {
                    long n = RECEIVED.incrementAndGet();
                    if (n == 1) {
                        FIRST_MS.set(System.currentTimeMillis());
                    }
                    if (n == expected) {
                        LAST_MS.set(System.currentTimeMillis());
                    }
                }

                @Override
                public void flush(boolean endOfInput) {}

                @Override
                public void close() {}
            };
        }
    }

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

    public static void main(String[] args) throws Exception {
        String input = null, checkpoints = "file:///tmp/flinkpeer/checkpoints", tmp = null;
        int parallelism = 1;
        long intervalMs = 1000;
        for (int i = 0; i + 1 < args.length; i += 2) {
            String value = args[i + 1];
            switch (args[i]) {
                case "--input": input = value; break;
                case "--parallelism": parallelism = Integer.parseInt(value); break;
                case "--interval-ms": intervalMs = Long.parseLong(value); break;
                case "--checkpoints": checkpoints = value; break;
                case "--tmp": tmp = value; break;
                case "--expect": expected = Long.parseLong(value); break;
                default: throw new IllegalArgumentException("unknown option " + args[i]);
            }
        }
        if (input == null || args.length % 2 != 0) {
            throw new IllegalArgumentException("usage: FlinkWordCount --input FILE [--parallelism P] "
                    + "[--interval-ms MS] [--checkpoints URI] [--tmp DIR] [--expect WORDS]");
        }

        Configuration conf = new Configuration();
        conf.set(StateBackendOptions.STATE_BACKEND, "rocksdb");
        conf.set(CheckpointingOptions.INCREMENTAL_CHECKPOINTS, true);
        conf.set(CheckpointingOptions.CHECKPOINT_STORAGE, "filesystem");
        conf.set(CheckpointingOptions.CHECKPOINTS_DIRECTORY, checkpoints);
        conf.set(CheckpointingOptions.CHECKPOINTING_INTERVAL, Duration.ofMillis(intervalMs));
        conf.set(CheckpointingOptions.CHECKPOINTING_CONSISTENCY_MODE, CheckpointingMode.EXACTLY_ONCE);
        // As the earlier peer whose figures docs/performance.md quotes: at least 500 ms between two.
        conf.set(CheckpointingOptions.MIN_PAUSE_BETWEEN_CHECKPOINTS, Duration.ofMillis(500));
        if (tmp != null) {
            conf.set(CoreOptions.TMP_DIRS, tmp);  // MiniCluster and RocksDB working folders
        }
        StreamExecutionEnvironment env = StreamExecutionEnvironment.getExecutionEnvironment(conf);
        env.setParallelism(parallelism);

        // One text file is one split: the source reads with one subtask whatever the parallelism.
        FileSource<String> file = FileSource.forRecordStreamFormat(new TextLineInputFormat(), new Path(input)).build();
        env.fromSource(file, WatermarkStrategy.noWatermarks(), "lines")
                .flatMap(new Split()).name("words")
                .map(new One()).name("pairs")
                .keyBy(pair -> pair.f0)
                .sum(1).name("counts")
                .sinkTo(new CountingSink<>()).name("discard");

        long executeMs = System.currentTimeMillis();
        env.execute("flink-word-count");
        long finishedMs = System.currentTimeMillis();
        System.out.println("RESULT sink_records=" + RECEIVED.get() + " execute_ms=" + executeMs
                + " first_ms=" + FIRST_MS.get() + " last_ms=" + LAST_MS.get() + " finished_ms=" + finishedMs);
    }
}
