//! Which instance reads which partition.

/// The instance of `parallelism` that reads `partition` of `topic`: the
/// partitions of a topic go round the instances from one that depends on
/// the topic's name, as in Flink's `KafkaTopicPartitionAssigner`, so that
/// the first partitions of many topics do not all land on instance 0. A
/// fixed rule, not a consumer group's rebalancing: every instance knows
/// its partitions without asking, a new partition has its owner at once,
/// and a restore at another parallelism deals them again.
pub fn owner(topic: &str, partition: i32, parallelism: u32) -> u32 {
    let parallelism = u64::from(parallelism.max(1));
    let start = xxhash_rust::xxh3::xxh3_64(topic.as_bytes()) % parallelism;
    ((start + u64::from(partition.unsigned_abs())) % parallelism) as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partitions_are_dealt_evenly() {
        for parallelism in 1..=8 {
            let mut counts = vec![0; parallelism as usize];
            for partition in 0..16 {
                counts[owner("words", partition, parallelism) as usize] += 1;
            }
            let (min, max) = (counts.iter().min(), counts.iter().max());
            assert!(
                max.unwrap() - min.unwrap() <= 1,
                "{parallelism}: {counts:?}"
            );
        }
    }
}
