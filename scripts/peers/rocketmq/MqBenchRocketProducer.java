// A small stand-in for RocketMQ's benchmark Producer (org.apache.rocketmq.example.benchmark
// .Producer, in rocketmq-example, which Maven Central does not have at 5.3.3): THREADS threads
// share one DefaultMQProducer and send synchronously (producer.send(msg)) until MESSAGES have been
// sent, each message a body of SIZE bytes, no keys, no properties, no trace, as that Producer does
// with its defaults; a lite pull consumer reads the topic beside it when CONSUME is 1 (bench runs
// one too). Used by scripts/peers/rocketmq-vs-bench.sh.
//
// usage: MqBenchRocketProducer NAMESRV TOPIC MESSAGES SIZE THREADS CONSUME
// prints: sent=N ok=M seconds=T msgs_per_s=X   (X = SEND_OK answers per second)

import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.concurrent.atomic.AtomicLong;

import org.apache.rocketmq.client.consumer.DefaultLitePullConsumer;
import org.apache.rocketmq.client.producer.DefaultMQProducer;
import org.apache.rocketmq.client.producer.SendResult;
import org.apache.rocketmq.client.producer.SendStatus;
import org.apache.rocketmq.common.consumer.ConsumeFromWhere;
import org.apache.rocketmq.common.message.Message;
import org.apache.rocketmq.common.message.MessageQueue;

public final class MqBenchRocketProducer {
    public static void main(String[] args) throws Exception {
        if (args.length != 6) {
            System.err.println("usage: MqBenchRocketProducer NAMESRV TOPIC MESSAGES SIZE THREADS CONSUME");
            System.exit(2);
        }
        String namesrv = args[0], topic = args[1];
        long messages = Long.parseLong(args[2]);
        int size = Integer.parseInt(args[3]), threads = Integer.parseInt(args[4]);
        boolean consume = args[5].equals("1");

        DefaultMQProducer producer = new DefaultMQProducer("mqb-peer-" + topic);
        producer.setNamesrvAddr(namesrv);
        producer.setCompressMsgBodyOverHowmuch(Integer.MAX_VALUE); // the benchmark's -c default: off
        producer.start();
        producer.createTopic("TBW102", topic, 1, null);
        waitForRoute(producer, topic);

        Thread consumer = consume ? consumer(namesrv, topic, messages) : null;
        byte[] body = new byte[size];
        AtomicLong next = new AtomicLong(), ok = new AtomicLong();
        List<Thread> workers = new ArrayList<>();
        long t0 = System.nanoTime();
        for (int i = 0; i < threads; i++) {
            Thread t = new Thread(() -> {
                while (next.getAndIncrement() < messages) {
                    try {
                        SendResult r = producer.send(new Message(topic, body));
                        if (r.getSendStatus() == SendStatus.SEND_OK) ok.incrementAndGet();
                    } catch (Exception e) {
                        System.err.println("send: " + e);
                    }
                }
            });
            t.start();
            workers.add(t);
        }
        for (Thread t : workers) t.join();
        double s = (System.nanoTime() - t0) / 1e9;
        producer.shutdown();
        if (consumer != null) consumer.join(120_000);
        System.out.printf("sent=%d ok=%d seconds=%.3f msgs_per_s=%.0f%n", messages, ok.get(), s, ok.get() / s);
        System.exit(ok.get() == messages ? 0 : 1);
    }

    static void waitForRoute(DefaultMQProducer p, String topic) throws Exception {
        for (int i = 0; i < 100; i++) {
            try {
                if (!p.fetchPublishMessageQueues(topic).isEmpty()) return;
            } catch (Exception e) {
                // not routed yet
            }
            Thread.sleep(100);
        }
        throw new IllegalStateException("topic " + topic + " not routed within 10 s");
    }

    static Thread consumer(String namesrv, String topic, long messages) throws Exception {
        DefaultLitePullConsumer c = new DefaultLitePullConsumer("mqb-peer-" + topic);
        c.setNamesrvAddr(namesrv);
        c.setAutoCommit(true);
        c.setConsumeFromWhere(ConsumeFromWhere.CONSUME_FROM_FIRST_OFFSET);
        c.start();
        c.assign(Collections.singletonList(new MessageQueue(topic, "broker-a", 0)));
        Thread t = new Thread(() -> {
            long got = 0, deadline = System.nanoTime() + 300_000_000_000L;
            while (got < messages && System.nanoTime() < deadline) got += c.poll(200).size();
            c.shutdown();
            if (got < messages) System.err.println("consumer: " + got + " of " + messages);
        });
        t.start();
        return t;
    }
}
