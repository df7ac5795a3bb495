"""Reads a topic of a Kafka cluster from its start with kafka-python, a client that shares
no code with streambed, and prints one line per record: its offset, its key (8 bytes,
big-endian), its origin headers and its value. The forwarding test checks what the broker
holds through this reader as well as through its own client.

Usage: python3 kafka_python_reader.py HOST:PORT TOPIC
"""

import sys

from kafka import KafkaConsumer, TopicPartition

broker, topic = sys.argv[1], sys.argv[2]
consumer = KafkaConsumer(
    bootstrap_servers=broker,
    enable_auto_commit=False,
    # Ends the read once nothing has arrived for this long.
    consumer_timeout_ms=3000,
)
partition = TopicPartition(topic, 0)
consumer.assign([partition])
consumer.seek_to_beginning(partition)
for message in consumer:
    headers = dict(message.headers)
    print(
        message.offset,
        int.from_bytes(message.key, "big"),
        headers.get("streambed-origin", b"-").decode(),
        headers.get("streambed-origin-offset", b"-").decode(),
        message.value.decode(),
    )
consumer.close()
