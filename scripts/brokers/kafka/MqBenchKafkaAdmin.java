// Tiny Kafka admin helper for scripts/brokers/kafka.sh (compiled at install time against the
// collected jars). One JVM per call; every call is bounded by its timeout.
//
//   ready BOOTSTRAP MIN_BROKERS NODE_ID|-1 TIMEOUT_MS
//       retries describeCluster + listTopics until at least MIN_BROKERS live brokers are listed
//       (and NODE_ID among them when >= 0); prints "ready brokers=N controller=ID".
//   create-topic BOOTSTRAP NAME PARTITIONS RF|-1 TIMEOUT_MS
//       creates the topic (RF -1: broker default); an existing topic is fine.
//   delete-topic BOOTSTRAP NAME TIMEOUT_MS
//       deletes the topic; a topic that does not exist is fine.
//   topics BOOTSTRAP TIMEOUT_MS
//       lists topic names, one a line.
import java.util.Collections;
import java.util.Optional;
import java.util.Properties;
import java.util.Set;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.stream.Collectors;

import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.DescribeClusterOptions;
import org.apache.kafka.clients.admin.DescribeClusterResult;
import org.apache.kafka.clients.admin.ListTopicsOptions;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.common.Node;
import org.apache.kafka.common.errors.TopicExistsException;
import org.apache.kafka.common.errors.UnknownTopicOrPartitionException;

public final class MqBenchKafkaAdmin {
    private static Admin admin(String bootstrap, int requestTimeoutMs) {
        Properties p = new Properties();
        p.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        p.put(AdminClientConfig.CLIENT_ID_CONFIG, "mq-bench-admin");
        p.put(AdminClientConfig.REQUEST_TIMEOUT_MS_CONFIG, Integer.toString(requestTimeoutMs));
        p.put(AdminClientConfig.DEFAULT_API_TIMEOUT_MS_CONFIG, Integer.toString(requestTimeoutMs));
        p.put(AdminClientConfig.RECONNECT_BACKOFF_MS_CONFIG, "100");
        p.put(AdminClientConfig.RECONNECT_BACKOFF_MAX_MS_CONFIG, "500");
        p.put(AdminClientConfig.RETRY_BACKOFF_MS_CONFIG, "100");
        return Admin.create(p);
    }

    private static String cause(Throwable t) {
        Throwable c = (t instanceof ExecutionException && t.getCause() != null) ? t.getCause() : t;
        return c.getClass().getSimpleName() + ": " + c.getMessage();
    }

    private static int ready(String bootstrap, int minBrokers, int nodeId, long timeoutMs) throws InterruptedException {
        long deadline = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(timeoutMs);
        String last = "no attempt";
        try (Admin a = admin(bootstrap, 3000)) {
            while (true) {
                long left = TimeUnit.NANOSECONDS.toMillis(deadline - System.nanoTime());
                if (left <= 0) break;
                int t = (int) Math.max(200, Math.min(3000, left));
                try {
                    DescribeClusterResult r = a.describeCluster(new DescribeClusterOptions().timeoutMs(t));
                    Set<Integer> ids = r.nodes().get(t, TimeUnit.MILLISECONDS).stream()
                            .map(Node::id).collect(Collectors.toCollection(java.util.TreeSet::new));
                    Node controller = r.controller().get(t, TimeUnit.MILLISECONDS);
                    // A real metadata round trip for topics too (what clients do first).
                    a.listTopics(new ListTopicsOptions().timeoutMs(t)).names().get(t, TimeUnit.MILLISECONDS);
                    if (ids.size() >= minBrokers && (nodeId < 0 || ids.contains(nodeId))) {
                        System.out.println("ready brokers=" + ids.size() + " ids=" + ids
                                + " controller=" + (controller == null ? "none" : controller.id()));
                        return 0;
                    }
                    last = "brokers " + ids + " (want >= " + minBrokers + (nodeId >= 0 ? ", incl. " + nodeId : "") + ")";
                } catch (Exception e) {
                    last = cause(e);
                }
                Thread.sleep(Math.min(250, Math.max(1, TimeUnit.NANOSECONDS.toMillis(deadline - System.nanoTime()))));
            }
        }
        System.err.println("not ready after " + timeoutMs + " ms at " + bootstrap + ": " + last);
        return 1;
    }

    private static int createTopic(String bootstrap, String name, int partitions, short rf, long timeoutMs) {
        try (Admin a = admin(bootstrap, (int) Math.min(timeoutMs, 30000))) {
            NewTopic nt = new NewTopic(name, Optional.of(partitions), rf < 0 ? Optional.empty() : Optional.of(rf));
            a.createTopics(Collections.singleton(nt)).all().get(timeoutMs, TimeUnit.MILLISECONDS);
            System.out.println("created topic " + name + " partitions=" + partitions + " rf=" + (rf < 0 ? "default" : rf));
            return 0;
        } catch (ExecutionException e) {
            if (e.getCause() instanceof TopicExistsException) {
                System.out.println("topic " + name + " exists");
                return 0;
            }
            System.err.println("create-topic " + name + " failed: " + cause(e));
            return 1;
        } catch (Exception e) {
            System.err.println("create-topic " + name + " failed: " + cause(e));
            return 1;
        }
    }

    private static int deleteTopic(String bootstrap, String name, long timeoutMs) {
        try (Admin a = admin(bootstrap, (int) Math.min(timeoutMs, 30000))) {
            a.deleteTopics(Collections.singleton(name)).all().get(timeoutMs, TimeUnit.MILLISECONDS);
            System.out.println("deleted topic " + name);
            return 0;
        } catch (ExecutionException e) {
            if (e.getCause() instanceof UnknownTopicOrPartitionException) {
                System.out.println("topic " + name + " does not exist");
                return 0;
            }
            System.err.println("delete-topic " + name + " failed: " + cause(e));
            return 1;
        } catch (Exception e) {
            System.err.println("delete-topic " + name + " failed: " + cause(e));
            return 1;
        }
    }

    private static int topics(String bootstrap, long timeoutMs) {
        try (Admin a = admin(bootstrap, (int) Math.min(timeoutMs, 30000))) {
            for (String n : new java.util.TreeSet<>(a.listTopics().names().get(timeoutMs, TimeUnit.MILLISECONDS))) {
                System.out.println(n);
            }
            return 0;
        } catch (Exception e) {
            System.err.println("topics failed: " + cause(e));
            return 1;
        }
    }

    public static void main(String[] args) throws Exception {
        int rc;
        String cmd = args.length > 0 ? args[0] : "";
        if (cmd.equals("ready") && args.length == 5) {
            rc = ready(args[1], Integer.parseInt(args[2]), Integer.parseInt(args[3]), Long.parseLong(args[4]));
        } else if (cmd.equals("create-topic") && args.length == 6) {
            rc = createTopic(args[1], args[2], Integer.parseInt(args[3]), Short.parseShort(args[4]), Long.parseLong(args[5]));
        } else if (cmd.equals("delete-topic") && args.length == 4) {
            rc = deleteTopic(args[1], args[2], Long.parseLong(args[3]));
        } else if (cmd.equals("topics") && args.length == 3) {
            rc = topics(args[1], Long.parseLong(args[2]));
        } else {
            System.err.println("usage: ready BOOTSTRAP MIN_BROKERS NODE_ID|-1 TIMEOUT_MS"
                    + " | create-topic BOOTSTRAP NAME PARTITIONS RF|-1 TIMEOUT_MS | delete-topic BOOTSTRAP NAME TIMEOUT_MS"
                    + " | topics BOOTSTRAP TIMEOUT_MS");
            rc = 2;
        }
        System.exit(rc);
    }
}
