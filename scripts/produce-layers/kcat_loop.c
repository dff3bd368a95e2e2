/*
 * kcat -P's produce loop, and nothing else: "key:value" lines from FILE,
 * rd_kafka_producev with a topic handle, rd_kafka_poll(rk, 0) after each
 * message, 5 ms polls while the queue is full, then wait for every delivery
 * report. Built twice by scripts/produce-layers.sh: against the librdkafka
 * that rust-rdkafka bundles and against the system's (kcat's), so that a
 * difference between kcat and kafka-lab can be split into "library" and
 * "our code".
 *
 * Two knobs, from the environment, to poll as kafka-lab does (session 14):
 *   POLL_EVERY=N  poll once every N messages instead of after each one;
 *   EVENTS=1      take delivery reports as events from the main queue
 *                 (rd_kafka_queue_poll, one event per poll), as rust-rdkafka
 *                 does, instead of rd_kafka_poll and a delivery callback.
 *
 *   kcat_loop BOOTSTRAP TOPIC FILE [PROPERTY VALUE]...
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <librdkafka/rdkafka.h>

static int undelivered = 0;

static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *message, void *opaque) {
        if (message->err && undelivered++ == 0)
                fprintf(stderr, "not delivered: %s\n", rd_kafka_err2str(message->err));
}

/* EVENTS=1: the main queue, where librdkafka puts delivery report events. */
static rd_kafka_queue_t *events = NULL;

/* Serves delivery reports without waiting: every callback due, or (EVENTS=1)
 * one event of the main queue, each of its messages checked as on_delivery
 * checks them. */
static void serve(rd_kafka_t *rk, int wait_ms) {
        if (!events) {
                rd_kafka_poll(rk, wait_ms);
                return;
        }
        rd_kafka_event_t *event = rd_kafka_queue_poll(events, wait_ms);
        if (!event)
                return;
        const rd_kafka_message_t *message;
        if (rd_kafka_event_type(event) == RD_KAFKA_EVENT_DR)
                while ((message = rd_kafka_event_message_next(event)))
                        on_delivery(rk, message, NULL);
        rd_kafka_event_destroy(event);
}

int main(int argc, char **argv) {
        char error[512];
        rd_kafka_conf_t *conf = rd_kafka_conf_new();
        const char *settings[] = {"bootstrap.servers", argv[1], "acks", "all",
                                  "enable.idempotence", "true"};
        if (argc < 4) {
                fprintf(stderr, "usage: kcat_loop BOOTSTRAP TOPIC FILE [PROPERTY VALUE]...\n");
                return 2;
        }
        for (int i = 0; i < 6; i += 2)
                rd_kafka_conf_set(conf, settings[i], settings[i + 1], error, sizeof error);
        for (int i = 4; i + 1 < argc; i += 2)
                if (rd_kafka_conf_set(conf, argv[i], argv[i + 1], error, sizeof error)) {
                        fprintf(stderr, "%s\n", error);
                        return 2;
                }
        const char *poll_every_text = getenv("POLL_EVERY");
        long poll_every = poll_every_text ? atol(poll_every_text) : 1;
        if (poll_every < 1)
                poll_every = 1;
        int use_events = getenv("EVENTS") && strcmp(getenv("EVENTS"), "1") == 0;
        if (use_events)
                rd_kafka_conf_set_events(conf, RD_KAFKA_EVENT_DR);
        else
                rd_kafka_conf_set_dr_msg_cb(conf, on_delivery);
        rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, error, sizeof error);
        if (!rk) {
                fprintf(stderr, "%s\n", error);
                return 1;
        }
        if (use_events)
                events = rd_kafka_queue_get_main(rk);
        rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, argv[2], NULL);
        if (!rkt) {
                fprintf(stderr, "%s: %s\n", argv[2], rd_kafka_err2str(rd_kafka_last_error()));
                return 1;
        }
        /* Metadata twice, as kafka-lab does: librdkafka 2.12 otherwise asks for
         * the producer id only after a 500 ms retry timer. */
        const struct rd_kafka_metadata *metadata;
        for (int i = 0; i < 2; i++) {
                rd_kafka_resp_err_t err = rd_kafka_metadata(rk, 0, rkt, &metadata, 10000);
                if (err) {
                        fprintf(stderr, "metadata: %s\n", rd_kafka_err2str(err));
                        return 1;
                }
                rd_kafka_metadata_destroy(metadata);
        }
        FILE *input = fopen(argv[3], "r");
        if (!input) {
                perror(argv[3]);
                return 1;
        }
        char *line = NULL;
        size_t capacity = 0;
        ssize_t length;
        long sent = 0;
        while ((length = getline(&line, &capacity, input)) > 0) {
                if (line[length - 1] == '\n')
                        length--;
                char *colon = memchr(line, ':', length);
                if (!colon)
                        continue;
                size_t key_length = colon - line;
                rd_kafka_resp_err_t err;
                while ((err = rd_kafka_producev(
                            rk, RD_KAFKA_V_RKT(rkt), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                            RD_KAFKA_V_VALUE(colon + 1, length - key_length - 1),
                            RD_KAFKA_V_KEY(line, key_length), RD_KAFKA_V_END))) {
                        if (err != RD_KAFKA_RESP_ERR__QUEUE_FULL) {
                                fprintf(stderr, "not queued: %s\n", rd_kafka_err2str(err));
                                return 1;
                        }
                        serve(rk, 5);
                }
                if (++sent % poll_every == 0)
                        serve(rk, 0);
        }
        while (rd_kafka_outq_len(rk) > 0)
                serve(rk, 50);
        if (events)
                rd_kafka_queue_destroy(events);
        fprintf(stderr, "librdkafka %s\n", rd_kafka_version_str());
        rd_kafka_topic_destroy(rkt);
        rd_kafka_destroy(rk);
        free(line);
        return undelivered ? 1 : 0;
}
