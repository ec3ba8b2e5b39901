//! The broker's own consume rate, for `bench/kafka.sh`: a bare librdkafka
//! consumer (same settings as Ingesta's, no decoding, no writing) that counts
//! messages until it has `N`, then prints the seconds and bytes it took.
//!
//!   cargo run --release -p ingesta-kafka --example count_messages -- BROKERS TOPIC N

use std::time::{Duration, Instant};

use rdkafka::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let [_, brokers, topic, n] = &args[..] else {
        eprintln!("usage: count_messages BROKERS TOPIC N");
        std::process::exit(2);
    };
    let n: u64 = n.parse().expect("N is a number");
    let group = format!("count-{}", std::process::id());
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", &group)
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest")
        .create()
        .expect("a consumer");
    consumer.subscribe(&[topic]).expect("subscribe");
    let (mut count, mut bytes) = (0u64, 0u64);
    // timed from the start, like `ingesta run --once` (both join the group)
    let started = Instant::now();
    while count < n {
        match consumer.poll(Duration::from_millis(100)) {
            Some(Ok(m)) => {
                count += 1;
                bytes += m.payload().map_or(0, <[u8]>::len) as u64;
            }
            Some(Err(e)) => eprintln!("{e}"),
            None => {}
        }
    }
    let secs = started.elapsed().as_secs_f64();
    println!("{{\"messages\": {count}, \"bytes\": {bytes}, \"seconds\": {secs:.3}}}");
}
