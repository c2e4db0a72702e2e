/* An open-loop HTTP/1.1 load generator for bench/web.py.
 *
 * Request i is due at start + i / RATE whatever happened to the earlier ones, so a slow
 * server makes requests wait (in this process, for a free connection, or in the
 * server's accept queue) and that wait counts in their latency: every latency is
 * measured from the time the request was due, not from when it could be sent
 * (no "coordinated omission"). Each request goes on its own connection and asks for
 * "Connection: close", as a proxy talks to gunicorn's sync workers; a response ends
 * when the server closes the connection.
 *
 *     loadgen HOST PORT RATE SECONDS MAX_CONNECTIONS TIMEOUT_MS REQUESTS_FILE
 *
 * REQUESTS_FILE holds raw requests, each preceded by a line with its length in bytes;
 * they are used in order and start over when there are fewer than RATE * SECONDS.
 * Prints one line per request: "due_us status latency_us" (due_us from the start;
 * status 0 for a connection error, -1 for a timeout), in the order they were due.
 *
 * Single-threaded, epoll and a timerfd: it uses a few percent of one core at
 * hundreds of requests per second, leaving the rest to the server.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

typedef struct {
    char *data;
    size_t len;
} request_t;

typedef struct {
    int fd;           /* -1 when the slot is free */
    long index;       /* which request */
    size_t written;
    char head[16];    /* the first bytes of the response: "HTTP/1.1 302" */
    size_t head_len;
} conn_t;

static int64_t now_us(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static void die(const char *what) {
    perror(what);
    exit(2);
}

static request_t *read_requests(const char *path, long *count) {
    FILE *file = fopen(path, "rb");
    if (!file) die(path);
    long capacity = 1024, n = 0;
    request_t *requests = malloc(capacity * sizeof *requests);
    size_t len;
    while (fscanf(file, "%zu", &len) == 1) {
        if (fgetc(file) != '\n') break;
        if (n == capacity) requests = realloc(requests, (capacity *= 2) * sizeof *requests);
        requests[n].data = malloc(len);
        requests[n].len = len;
        if (fread(requests[n].data, 1, len, file) != len) die("short request");
        n++;
    }
    fclose(file);
    if (n == 0) {
        fprintf(stderr, "no requests in %s\n", path);
        exit(2);
    }
    *count = n;
    return requests;
}

int main(int argc, char **argv) {
    if (argc != 8) {
        fprintf(stderr, "usage: loadgen HOST PORT RATE SECONDS MAX_CONNECTIONS TIMEOUT_MS FILE\n");
        return 2;
    }
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons(atoi(argv[2]))};
    if (inet_pton(AF_INET, argv[1], &addr.sin_addr) != 1) die("address");
    double rate = atof(argv[3]);
    long total = (long)(rate * atof(argv[4]));
    int max_conns = atoi(argv[5]);
    int64_t timeout = atol(argv[6]) * 1000;
    long request_count;
    request_t *requests = read_requests(argv[7], &request_count);

    int *status = calloc(total, sizeof *status);
    int64_t *latency = calloc(total, sizeof *latency);
    conn_t *conns = calloc(max_conns, sizeof *conns);
    for (int i = 0; i < max_conns; i++) conns[i].fd = -1;

    int epoll = epoll_create1(0);
    int timer = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK);
    struct epoll_event timer_event = {.events = EPOLLIN, .data.u64 = UINT64_MAX};
    epoll_ctl(epoll, EPOLL_CTL_ADD, timer, &timer_event);

    int64_t start = now_us() + 10000;
    long next = 0, done = 0;
    int inflight = 0;
    struct epoll_event events[256];

#define DUE(i) (start + (int64_t)((double)(i) * 1e6 / rate))
#define FINISH(c, code)                                                  \
    do {                                                                 \
        status[(c)->index] = (code);                                     \
        latency[(c)->index] = now_us() - DUE((c)->index);                \
        close((c)->fd);                                                  \
        (c)->fd = -1;                                                    \
        inflight--;                                                      \
        done++;                                                          \
    } while (0)

    while (done < total) {
        int64_t now = now_us();
        /* Start every request that is due, while a connection slot is free. */
        while (next < total && DUE(next) <= now && inflight < max_conns) {
            conn_t *c = conns;
            while (c->fd != -1) c++;
            c->index = next++;
            c->written = 0;
            c->head_len = 0;
            c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
            if (c->fd < 0) die("socket");
            int one = 1;
            setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
            inflight++;
            if (connect(c->fd, (struct sockaddr *)&addr, sizeof addr) < 0 && errno != EINPROGRESS) {
                FINISH(c, 0);
                continue;
            }
            struct epoll_event event = {.events = EPOLLOUT, .data.ptr = c};
            epoll_ctl(epoll, EPOLL_CTL_ADD, c->fd, &event);
        }
        /* Requests past their deadline are timeouts. */
        for (int i = 0; i < max_conns; i++) {
            if (conns[i].fd != -1 && now - DUE(conns[i].index) > timeout) FINISH(&conns[i], -1);
        }
        /* Sleep until the next request is due (or a socket is ready). */
        if (next < total && inflight < max_conns) {
            int64_t due = DUE(next);
            struct itimerspec when = {.it_value = {due / 1000000, (due % 1000000) * 1000}};
            timerfd_settime(timer, TFD_TIMER_ABSTIME, &when, NULL);
        }
        int ready = epoll_wait(epoll, events, 256, 50);
        if (ready < 0 && errno != EINTR) die("epoll_wait");
        for (int e = 0; e < ready; e++) {
            if (events[e].data.u64 == UINT64_MAX) {
                uint64_t expirations;
                if (read(timer, &expirations, sizeof expirations) < 0 && errno != EAGAIN) die("timer");
                continue;
            }
            conn_t *c = events[e].data.ptr;
            if (c->fd == -1) continue; /* timed out earlier in this round */
            if (events[e].events & EPOLLOUT) {
                request_t *r = &requests[c->index % request_count];
                ssize_t n = write(c->fd, r->data + c->written, r->len - c->written);
                if (n < 0) {
                    if (errno != EAGAIN) FINISH(c, 0);
                    continue;
                }
                c->written += n;
                if (c->written == r->len) {
                    struct epoll_event event = {.events = EPOLLIN, .data.ptr = c};
                    epoll_ctl(epoll, EPOLL_CTL_MOD, c->fd, &event);
                }
                continue;
            }
            char buffer[65536];
            ssize_t n = read(c->fd, buffer, sizeof buffer);
            if (n < 0) {
                if (errno != EAGAIN) FINISH(c, 0);
                continue;
            }
            if (n > 0) {
                size_t keep = sizeof c->head - 1 - c->head_len;
                if ((size_t)n < keep) keep = n;
                memcpy(c->head + c->head_len, buffer, keep);
                c->head_len += keep;
                continue;
            }
            /* The server closed the connection: the response is complete. */
            c->head[c->head_len] = '\0';
            int code = 0;
            if (strncmp(c->head, "HTTP/1.", 7) != 0 || sscanf(c->head + 8, " %d", &code) != 1) code = 0;
            FINISH(c, code);
        }
    }
    for (long i = 0; i < total; i++) {
        printf("%ld %d %ld\n", (long)(DUE(i) - start), status[i], (long)latency[i]);
    }
    return 0;
}
