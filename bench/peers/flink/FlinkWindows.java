// The Flink side of bench/bench.py's window and join benchmarks (Flink 2.3.0, DataStream API).
//
// The same jobs as the benchmark's dataflow specs, on the same files of JSON lines
// `{"ts": <epoch ms>, "k": "k<n>"}`, read each by one reader with bounded out-of-orderness
// watermarks of 1 s:
//
//   window: a count per key and tumbling event-time minute, `keyBy(k).window(1 min).aggregate(count)`;
//   join:   an interval join of two such files by `k`, the right within [0, 15 s] of the left;
//   window-join: a join of two such files by `k` in tumbling event-time windows of 15 s.
//
// Records are parsed by hand (finding two fields), not by a JSON library: cheaper than what the
// dataflow side does, so the comparison favours Flink. RocksDB state with incremental,
// exactly-once checkpoints, and a sink that only counts, as in FlinkWordCount.
//
//   java -cp <pyflink/lib/*.jar>:<classes> FlinkWindows --job window|join|window-join --input FILE
//        [--right FILE] [--interval-ms MS] [--checkpoints URI] [--tmp DIR]
//
// When the job is over, main() prints one line on stdout:
//
//   RESULT sink_records=N execute_ms=T finished_ms=T
import java.time.Duration;
import java.util.concurrent.atomic.AtomicLong;

import org.apache.flink.api.common.eventtime.WatermarkStrategy;
import org.apache.flink.api.common.functions.AggregateFunction;
import org.apache.flink.api.common.functions.JoinFunction;
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
import org.apache.flink.streaming.api.datastream.DataStream;
import org.apache.flink.streaming.api.environment.StreamExecutionEnvironment;
import org.apache.flink.streaming.api.functions.co.ProcessJoinFunction;
import org.apache.flink.streaming.api.windowing.assigners.TumblingEventTimeWindows;
import org.apache.flink.util.Collector;

public class FlinkWindows {

    static final AtomicLong RECEIVED = new AtomicLong();

    /** Drops every record, counting them across all its writers. */
    public static class CountingSink<T> implements Sink<T> {
        @Override
        public SinkWriter<T> createWriter(WriterInitContext context) {
            return new SinkWriter<T>() {
                @Override
                public void write(T element, Context context) {
                    RECEIVED.incrementAndGet();
                }

                @Override
                public void flush(boolean endOfInput) {}

                @Override
                public void close() {}
            };
        }
    }

    /** `{"ts": 123, "k": "k7"}` to (k, ts). */
    public static class Parse implements MapFunction<String, Tuple2<String, Long>> {
        @Override
        public Tuple2<String, Long> map(String line) {
            int ts = line.indexOf("\"ts\":") + 5;
            int comma = line.indexOf(',', ts);
            long time = Long.parseLong(line.substring(ts, comma).trim());
            int k = line.indexOf('"', line.indexOf("\"k\":") + 4) + 1;
            return Tuple2.of(line.substring(k, line.indexOf('"', k)), time);
        }
    }

    public static class Count implements AggregateFunction<Tuple2<String, Long>, Long, Long> {
        public Long createAccumulator() { return 0L; }
        public Long add(Tuple2<String, Long> value, Long acc) { return acc + 1; }
        public Long getResult(Long acc) { return acc; }
        public Long merge(Long a, Long b) { return a + b; }
    }

    public static class Pair extends ProcessJoinFunction<Tuple2<String, Long>, Tuple2<String, Long>, String> {
        @Override
        public void processElement(Tuple2<String, Long> left, Tuple2<String, Long> right, Context ctx,
                Collector<String> out) {
            out.collect(left.f0);
        }
    }

    public static class Joined implements JoinFunction<Tuple2<String, Long>, Tuple2<String, Long>, String> {
        @Override
        public String join(Tuple2<String, Long> left, Tuple2<String, Long> right) {
            return left.f0;
        }
    }

    static DataStream<Tuple2<String, Long>> events(StreamExecutionEnvironment env, String file, String name) {
        FileSource<String> source = FileSource.forRecordStreamFormat(new TextLineInputFormat(), new Path(file)).build();
        WatermarkStrategy<Tuple2<String, Long>> watermarks = WatermarkStrategy
                .<Tuple2<String, Long>>forBoundedOutOfOrderness(Duration.ofSeconds(1))
                .withTimestampAssigner((event, previous) -> event.f1);
        return env.fromSource(source, WatermarkStrategy.noWatermarks(), name)
                .map(new Parse()).name(name + "-parse")
                .assignTimestampsAndWatermarks(watermarks);
    }

    public static void main(String[] args) throws Exception {
        String job = null, input = null, right = null, checkpoints = "file:///tmp/flinkpeer/checkpoints", tmp = null;
        long intervalMs = 1000;
        for (int i = 0; i + 1 < args.length; i += 2) {
            String value = args[i + 1];
            switch (args[i]) {
                case "--job": job = value; break;
                case "--input": input = value; break;
                case "--right": right = value; break;
                case "--interval-ms": intervalMs = Long.parseLong(value); break;
                case "--checkpoints": checkpoints = value; break;
                case "--tmp": tmp = value; break;
                default: throw new IllegalArgumentException("unknown option " + args[i]);
            }
        }
        if (job == null || input == null || (!job.equals("window") && right == null)) {
            throw new IllegalArgumentException("usage: FlinkWindows --job window|join|window-join --input FILE [--right FILE] "
                    + "[--interval-ms MS] [--checkpoints URI] [--tmp DIR]");
        }

        Configuration conf = new Configuration();
        conf.set(StateBackendOptions.STATE_BACKEND, "rocksdb");
        conf.set(CheckpointingOptions.INCREMENTAL_CHECKPOINTS, true);
        conf.set(CheckpointingOptions.CHECKPOINT_STORAGE, "filesystem");
        conf.set(CheckpointingOptions.CHECKPOINTS_DIRECTORY, checkpoints);
        conf.set(CheckpointingOptions.CHECKPOINTING_INTERVAL, Duration.ofMillis(intervalMs));
        conf.set(CheckpointingOptions.CHECKPOINTING_CONSISTENCY_MODE, CheckpointingMode.EXACTLY_ONCE);
        conf.set(CheckpointingOptions.MIN_PAUSE_BETWEEN_CHECKPOINTS, Duration.ofMillis(500));
        if (tmp != null) {
            conf.set(CoreOptions.TMP_DIRS, tmp);
        }
        StreamExecutionEnvironment env = StreamExecutionEnvironment.getExecutionEnvironment(conf);
        env.setParallelism(1);

        if (job.equals("window")) {
            events(env, input, "events")
                    .keyBy(e -> e.f0)
                    .window(TumblingEventTimeWindows.of(Duration.ofMinutes(1)))
                    .aggregate(new Count()).name("per-minute")
                    .sinkTo(new CountingSink<>()).name("discard");
        } else if (job.equals("window-join")) {
            events(env, input, "lefts")
                    .join(events(env, right, "rights"))
                    .where(e -> e.f0).equalTo(e -> e.f0)
                    .window(TumblingEventTimeWindows.of(Duration.ofSeconds(15)))
                    .apply(new Joined()).name("joined")
                    .sinkTo(new CountingSink<>()).name("discard");
        } else {
            events(env, input, "lefts").keyBy(e -> e.f0)
                    .intervalJoin(events(env, right, "rights").keyBy(e -> e.f0))
                    .between(Duration.ZERO, Duration.ofSeconds(15))
                    .process(new Pair()).name("joined")
                    .sinkTo(new CountingSink<>()).name("discard");
        }
        long executeMs = System.currentTimeMillis();
        env.execute("flink-" + job);
        long finishedMs = System.currentTimeMillis();
        System.out.println("RESULT sink_records=" + RECEIVED.get() + " execute_ms=" + executeMs
                + " finished_ms=" + finishedMs);
    }
}
