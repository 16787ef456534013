// Waits until a Kafka broker takes an acks=all write: creates the probe topic if needed, then
// produces one record to it, retrying until a deadline. Uses only kafka-clients from the broker's
// classpath, so kafka.sh needs neither Python nor the Kafka command-line tools.
//
// Usage: java -cp "$CP" ReadinessProbe.java BOOTSTRAP TIMEOUT_MS [BROKER_PID]
// Exit status: 0 ready, 1 not ready before the deadline, 2 the broker process exited first.

import java.util.List;
import java.util.Properties;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.errors.TopicExistsException;
import org.apache.kafka.common.serialization.ByteArraySerializer;

public class ReadinessProbe {
    static final String TOPIC = "_kafka_sh_readiness";
    static final int MAX_ATTEMPT_TIMEOUT_MS = 5000;

    public static void main(String[] args) throws InterruptedException {
        String bootstrap = args[0];
        long timeoutMs = Long.parseLong(args[1]);
        long deadline = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(timeoutMs);
        // One attempt may run past the deadline, by at most this much.
        int attemptTimeoutMs = (int) Math.max(500, Math.min(MAX_ATTEMPT_TIMEOUT_MS, timeoutMs / 2));
        Long brokerPid = args.length > 2 ? Long.valueOf(args[2]) : null;

        Properties common = new Properties();
        common.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        common.put(AdminClientConfig.REQUEST_TIMEOUT_MS_CONFIG, attemptTimeoutMs);
        common.put(AdminClientConfig.RECONNECT_BACKOFF_MAX_MS_CONFIG, 500);
        Properties adminProps = new Properties();
        adminProps.putAll(common);
        adminProps.put(AdminClientConfig.DEFAULT_API_TIMEOUT_MS_CONFIG, attemptTimeoutMs);
        Properties producerProps = new Properties();
        producerProps.putAll(common);
        producerProps.put(ProducerConfig.ACKS_CONFIG, "all");
        producerProps.put(ProducerConfig.MAX_BLOCK_MS_CONFIG, attemptTimeoutMs);
        producerProps.put(ProducerConfig.DELIVERY_TIMEOUT_MS_CONFIG, attemptTimeoutMs);
        producerProps.put(ProducerConfig.REQUEST_TIMEOUT_MS_CONFIG, attemptTimeoutMs);
        producerProps.put(ProducerConfig.LINGER_MS_CONFIG, 0);

        String last = "no attempt made";
        try (Admin admin = Admin.create(adminProps);
             KafkaProducer<byte[], byte[]> producer =
                     new KafkaProducer<>(producerProps, new ByteArraySerializer(), new ByteArraySerializer())) {
            while (System.nanoTime() < deadline) {
                if (brokerPid != null && !ProcessHandle.of(brokerPid).map(ProcessHandle::isAlive).orElse(false)) {
                    System.err.println("readiness probe: broker process " + brokerPid + " exited");
                    System.exit(2);
                }
                try {
                    createTopic(admin, attemptTimeoutMs);
                    producer.send(new ProducerRecord<>(TOPIC, "ping".getBytes()))
                            .get(attemptTimeoutMs, TimeUnit.MILLISECONDS);
                    return;
                } catch (Exception exc) {
                    last = exc.toString();
                    Thread.sleep(200);
                }
            }
        }
        System.err.println("readiness probe: " + bootstrap + " not ready: " + last);
        System.exit(1);
    }

    static void createTopic(Admin admin, int attemptTimeoutMs) throws Exception {
        try {
            admin.createTopics(List.of(new NewTopic(TOPIC, 1, (short) 1)))
                    .all().get(attemptTimeoutMs, TimeUnit.MILLISECONDS);
        } catch (ExecutionException exc) {
            if (!(exc.getCause() instanceof TopicExistsException)) {
                throw exc;
            }
        }
    }
}
