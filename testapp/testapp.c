/*
 * funade testapp: a tiny, dependency-free HTTP/1.1 server used as the test
 * application by funade's integration tests, benchmarks and demo.
 *
 * Build:  gcc -static -O2 -pthread -o testapp testapp.c
 *
 * One detached thread per connection, HTTP/1.1 keep-alive (and pipelining),
 * graceful shutdown on SIGTERM/SIGINT.  Behaviour is driven by environment
 * variables (all optional; an empty value counts as unset):
 *
 *   PORT                 listen port on 0.0.0.0 (default 8080)
 *   VERSION              reported by GET / and /metrics (default "dev")
 *   STARTUP_DELAY        seconds (float) to wait before listening
 *   READY_FAIL           "1"/"true"/"yes": GET /ready always answers 503
 *   LIVENESS_FAIL_AFTER  seconds (float) after process start from which
 *                        GET /health answers 500 (forever)
 *   CRASH_AFTER          seconds (float) after process start at which the
 *                        process exits with status 1
 *   ERROR_RATE           percent (float, 0-100) of GET / answered with 500,
 *                        deterministically spread: request n (0-based) fails
 *                        when floor((n+1)*rate/100) > floor(n*rate/100)
 *   SHUTDOWN_TIMEOUT     seconds (float) to let in-flight requests finish
 *                        after SIGTERM/SIGINT (default 10)
 *   LOG_REQUESTS         "1"/"true"/"yes": one stdout line per request
 *
 * Endpoints (any method; HEAD omits the body):
 *   /                    "version=<VERSION> host=<hostname>\n" (+ X-Version)
 *   /ready               200 "ready\n" or 503 "not ready\n"
 *   /health              200 "ok\n" or 500 "unhealthy\n"
 *   /metrics             Prometheus text format 0.0.4
 *   /env?name=X          value of env var X (404 if unset)
 *   /file?path=P         content of file P (404 if missing)
 *   /sleep?ms=N          answers after N milliseconds
 *   /burn?ms=N           answers after using N milliseconds of CPU (an autoscaler's load)
 *   anything else        404
 *
 * Writes no files, needs no /etc/passwd, runs as any uid.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <math.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#define BUF_SIZE (16 * 1024)          /* max request head (line + headers) */
#define MAX_CONNECTIONS 8192          /* beyond this, new connections are dropped */
#define IDLE_TIMEOUT_MS (60 * 1000)   /* keep-alive idle timeout */
#define READ_TIMEOUT_MS (30 * 1000)   /* timeout while a request is being received */
#define SEND_TIMEOUT_S 30
#define THREAD_STACK (256 * 1024)
#define MAX_FILE_SIZE (64L * 1024 * 1024)
#define MAX_SLEEP_MS (3600L * 1000)
#define MAX_STATUS 600

/* ------------------------------------------------------------------ config */

static const char *cfg_version = "dev";
static char cfg_hostname[256] = "unknown";
static int cfg_port = 8080;
static double cfg_startup_delay = 0;
static int cfg_ready_fail = 0;
static double cfg_liveness_fail_after = -1; /* < 0: never */
static double cfg_crash_after = -1;         /* < 0: never */
static const char *cfg_crash_after_raw = "";
static double cfg_error_rate = 0;
static double cfg_shutdown_timeout = 10;
static int cfg_log_requests = 0;

static struct timespec start_mono;
static double start_real;

/* ------------------------------------------------------------------ state */

static atomic_int shutting_down = 0;
static int shutdown_pipe[2] = {-1, -1}; /* write end closed => readable (EOF) for all pollers */
static int listen_fd = -1;

static atomic_ulong status_counts[MAX_STATUS];
static atomic_ulong root_requests = 0; /* sequence number for ERROR_RATE */
static atomic_long in_flight = 0;
static atomic_ulong connections_total = 0;

static pthread_mutex_t conn_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t conn_cv = PTHREAD_COND_INITIALIZER;
static long active_conns = 0; /* guarded by conn_mu */

/* ------------------------------------------------------------------ utils */

static void logline(FILE *f, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void logline(FILE *f, const char *fmt, ...) {
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    /* one fprintf call => one line, not interleaved between threads */
    fprintf(f, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ testapp: %s\n", tm.tm_year + 1900,
            tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
            ts.tv_nsec / 1000000, msg);
}

static double mono_elapsed(void) {
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (double)(now.tv_sec - start_mono.tv_sec) +
           (double)(now.tv_nsec - start_mono.tv_nsec) / 1e9;
}

static struct timespec mono_after(struct timespec base, double seconds) {
    struct timespec t = base;
    double whole = floor(seconds);
    t.tv_sec += (time_t)whole;
    t.tv_nsec += (long)((seconds - whole) * 1e9);
    while (t.tv_nsec >= 1000000000L) {
        t.tv_sec++;
        t.tv_nsec -= 1000000000L;
    }
    return t;
}

static const char *env_nonempty(const char *name) {
    const char *v = getenv(name);
    return (v && *v) ? v : NULL;
}

static double env_seconds(const char *name, double dflt, const char **raw_out) {
    const char *v = env_nonempty(name);
    if (raw_out)
        *raw_out = v ? v : "";
    if (!v)
        return dflt;
    char *end = NULL;
    errno = 0;
    double d = strtod(v, &end);
    while (end && isspace((unsigned char)*end))
        end++;
    if (errno || end == v || *end || !isfinite(d) || d < 0) {
        fprintf(stderr, "testapp: invalid %s=%s (want a non-negative number)\n", name, v);
        exit(2);
    }
    return d;
}

static int env_bool(const char *name) {
    const char *v = env_nonempty(name);
    if (!v)
        return 0;
    return !strcmp(v, "1") || !strcasecmp(v, "true") || !strcasecmp(v, "yes") ||
           !strcasecmp(v, "on");
}

static const char *reason(int status) {
    switch (status) {
    case 100: return "Continue";
    case 200: return "OK";
    case 400: return "Bad Request";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 408: return "Request Timeout";
    case 413: return "Payload Too Large";
    case 414: return "URI Too Long";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 503: return "Service Unavailable";
    case 505: return "HTTP Version Not Supported";
    default: return "Unknown";
    }
}

static int hexval(int c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* Decode %XX and '+' from [src, src+len) into dst (NUL-terminated, at most dstsz-1 bytes). */
static void url_decode(const char *src, size_t len, char *dst, size_t dstsz) {
    size_t o = 0;
    for (size_t i = 0; i < len && o + 1 < dstsz; i++) {
        if (src[i] == '%' && i + 2 < len && hexval(src[i + 1]) >= 0 &&
            hexval(src[i + 2]) >= 0) {
            dst[o++] = (char)(hexval(src[i + 1]) * 16 + hexval(src[i + 2]));
            i += 2;
        } else if (src[i] == '+') {
            dst[o++] = ' ';
        } else {
            dst[o++] = src[i];
        }
    }
    dst[o] = '\0';
}

/* Find query parameter `key` in `query` (may be NULL); decode into out.  1 if found. */
static int query_param(const char *query, const char *key, char *out, size_t outsz) {
    if (!query)
        return 0;
    size_t klen = strlen(key);
    const char *p = query;
    while (*p) {
        const char *amp = strchr(p, '&');
        size_t plen = amp ? (size_t)(amp - p) : strlen(p);
        const char *eq = memchr(p, '=', plen);
        size_t nlen = eq ? (size_t)(eq - p) : plen;
        char name[256];
        url_decode(p, nlen, name, sizeof name);
        if (strlen(name) == klen && !memcmp(name, key, klen)) {
            if (eq)
                url_decode(eq + 1, plen - nlen - 1, out, outsz);
            else
                out[0] = '\0';
            return 1;
        }
        if (!amp)
            break;
        p = amp + 1;
    }
    return 0;
}

/* ------------------------------------------------------------------ connection I/O */

typedef struct {
    int fd;
    size_t start, end; /* unread bytes are buf[start, end) */
    char peer[INET6_ADDRSTRLEN];
    char buf[BUF_SIZE];
} conn_t;

enum { FILL_OK = 1, FILL_EOF = 0, FILL_ERR = -1, FILL_TIMEOUT = -2, FILL_FULL = -3,
       FILL_SHUTDOWN = -4 };

/*
 * Read more bytes into the buffer.  When `idle` (waiting for the first byte
 * of a new request) the wait is interrupted by shutdown.
 */
static int conn_fill(conn_t *c, int timeout_ms, int idle) {
    if (c->start == c->end) {
        c->start = c->end = 0;
    } else if (c->end == sizeof c->buf && c->start > 0) {
        memmove(c->buf, c->buf + c->start, c->end - c->start);
        c->end -= c->start;
        c->start = 0;
    }
    if (c->end == sizeof c->buf)
        return FILL_FULL;
    for (;;) {
        struct pollfd pfd[2] = {{.fd = c->fd, .events = POLLIN},
                                {.fd = shutdown_pipe[0], .events = POLLIN}};
        int n = poll(pfd, idle ? 2 : 1, timeout_ms);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return FILL_ERR;
        }
        if (n == 0)
            return FILL_TIMEOUT;
        if (!(pfd[0].revents & (POLLIN | POLLHUP | POLLERR))) {
            /* only the shutdown pipe fired and no request bytes are pending */
            return FILL_SHUTDOWN;
        }
        ssize_t r = recv(c->fd, c->buf + c->end, sizeof c->buf - c->end, 0);
        if (r < 0) {
            if (errno == EINTR || errno == EAGAIN)
                continue;
            return FILL_ERR;
        }
        if (r == 0)
            return FILL_EOF;
        c->end += (size_t)r;
        return FILL_OK;
    }
}

/* Discard n body bytes. 0 on success. */
static int conn_discard(conn_t *c, unsigned long long n) {
    while (n > 0) {
        if (c->start == c->end) {
            c->start = c->end = 0;
            if (conn_fill(c, READ_TIMEOUT_MS, 0) != FILL_OK)
                return -1;
        }
        size_t avail = c->end - c->start;
        size_t take = (unsigned long long)avail < n ? avail : (size_t)n;
        c->start += take;
        n -= take;
    }
    return 0;
}

/* Read one CRLF/LF-terminated line (without terminator) into out. 0 on success. */
static int conn_readline(conn_t *c, char *out, size_t outsz) {
    for (;;) {
        char *nl = memchr(c->buf + c->start, '\n', c->end - c->start);
        if (nl) {
            size_t len = (size_t)(nl - (c->buf + c->start));
            size_t copy = len;
            if (copy > 0 && c->buf[c->start + copy - 1] == '\r')
                copy--;
            if (copy >= outsz)
                copy = outsz - 1;
            memcpy(out, c->buf + c->start, copy);
            out[copy] = '\0';
            c->start += len + 1;
            return 0;
        }
        if (conn_fill(c, READ_TIMEOUT_MS, 0) != FILL_OK)
            return -1;
    }
}

/* Discard a chunked request body (including trailers). 0 on success. */
static int conn_discard_chunked(conn_t *c) {
    char line[1024];
    for (;;) {
        if (conn_readline(c, line, sizeof line))
            return -1;
        char *end = NULL;
        errno = 0;
        unsigned long long size = strtoull(line, &end, 16);
        if (errno || end == line)
            return -1;
        if (size == 0)
            break;
        if (conn_discard(c, size) || conn_readline(c, line, sizeof line))
            return -1;
    }
    for (;;) { /* trailers up to the empty line */
        if (conn_readline(c, line, sizeof line))
            return -1;
        if (line[0] == '\0')
            return 0;
    }
}

static int send_all(int fd, struct iovec *iov, int iovcnt) {
    while (iovcnt > 0) {
        struct msghdr msg = {.msg_iov = iov, .msg_iovlen = (size_t)iovcnt};
        ssize_t w = sendmsg(fd, &msg, MSG_NOSIGNAL);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        size_t left = (size_t)w;
        while (iovcnt > 0 && left >= iov->iov_len) {
            left -= iov->iov_len;
            iov++;
            iovcnt--;
        }
        if (iovcnt > 0) {
            iov->iov_base = (char *)iov->iov_base + left;
            iov->iov_len -= left;
        }
    }
    return 0;
}

/* ------------------------------------------------------------------ responses */

typedef struct {
    int status;
    const char *content_type;
    char *body;    /* either heap (owned) or points to small[] */
    size_t len;
    int owned;
    char small[512];
} response_t;

static void resp_text(response_t *r, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void resp_text(response_t *r, int status, const char *fmt, ...) {
    r->status = status;
    r->content_type = "text/plain; charset=utf-8";
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(r->small, sizeof r->small, fmt, ap);
    va_end(ap);
    if (n < 0)
        n = 0;
    if ((size_t)n >= sizeof r->small)
        n = sizeof r->small - 1;
    r->body = r->small;
    r->len = (size_t)n;
    r->owned = 0;
}

static void resp_owned(response_t *r, int status, const char *ctype, char *body, size_t len) {
    r->status = status;
    r->content_type = ctype;
    r->body = body;
    r->len = len;
    r->owned = 1;
}

static void count_status(int status) {
    if (status >= 100 && status < MAX_STATUS)
        atomic_fetch_add_explicit(&status_counts[status], 1, memory_order_relaxed);
}

/* Growable string for /metrics. */
typedef struct {
    char *p;
    size_t len, cap;
} sbuf_t;

static void sb_printf(sbuf_t *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sb_printf(sbuf_t *b, const char *fmt, ...) {
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        size_t room = b->cap - b->len;
        int n = vsnprintf(b->p ? b->p + b->len : NULL, room, fmt, ap);
        va_end(ap);
        if (n < 0)
            return;
        if ((size_t)n < room) {
            b->len += (size_t)n;
            return;
        }
        size_t ncap = b->cap ? b->cap * 2 : 4096;
        while (ncap < b->len + (size_t)n + 1)
            ncap *= 2;
        char *np = realloc(b->p, ncap);
        if (!np)
            return;
        b->p = np;
        b->cap = ncap;
    }
}

static void handle_metrics(response_t *r) {
    /* The scrape being answered is counted before rendering, so it is included. */
    count_status(200);
    sbuf_t b = {0};
    sb_printf(&b,
              "# HELP http_requests_total Total HTTP requests answered, by status code. "
              "Counts every request on every path, including /metrics scrapes (this one "
              "included).\n"
              "# TYPE http_requests_total counter\n");
    for (int s = 100; s < MAX_STATUS; s++) {
        unsigned long v = atomic_load_explicit(&status_counts[s], memory_order_relaxed);
        if (v)
            sb_printf(&b, "http_requests_total{status=\"%d\"} %lu\n", s, v);
    }
    sb_printf(&b,
              "# HELP http_requests_in_flight Requests currently being processed "
              "(including this scrape).\n"
              "# TYPE http_requests_in_flight gauge\n"
              "http_requests_in_flight %ld\n",
              atomic_load(&in_flight));
    pthread_mutex_lock(&conn_mu);
    long conns = active_conns;
    pthread_mutex_unlock(&conn_mu);
    sb_printf(&b,
              "# HELP http_connections_open Open client connections.\n"
              "# TYPE http_connections_open gauge\n"
              "http_connections_open %ld\n"
              "# HELP http_connections_total Client connections accepted.\n"
              "# TYPE http_connections_total counter\n"
              "http_connections_total %lu\n",
              conns, atomic_load(&connections_total));
    /* VERSION is operator-controlled; escape it as a Prometheus label value. */
    char esc[512];
    size_t o = 0;
    for (const char *p = cfg_version; *p && o + 3 < sizeof esc; p++) {
        if (*p == '\\' || *p == '"') {
            esc[o++] = '\\';
            esc[o++] = *p;
        } else if (*p == '\n') {
            esc[o++] = '\\';
            esc[o++] = 'n';
        } else {
            esc[o++] = *p;
        }
    }
    esc[o] = '\0';
    sb_printf(&b,
              "# HELP testapp_info Static information about the test application.\n"
              "# TYPE testapp_info gauge\n"
              "testapp_info{version=\"%s\"} 1\n"
              "# HELP process_start_time_seconds Start time of the process since unix epoch "
              "in seconds.\n"
              "# TYPE process_start_time_seconds gauge\n"
              "process_start_time_seconds %.3f\n",
              esc, start_real);
    if (!b.p) {
        resp_text(r, 500, "out of memory\n");
        return;
    }
    resp_owned(r, 200, "text/plain; version=0.0.4; charset=utf-8", b.p, b.len);
}

static void handle_file(response_t *r, const char *query) {
    char path[4096];
    if (!query_param(query, "path", path, sizeof path) || !path[0]) {
        resp_text(r, 400, "missing ?path=\n");
        return;
    }
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    if (fd < 0) {
        if (errno == ENOENT || errno == ENOTDIR)
            resp_text(r, 404, "no such file: %s\n", path);
        else if (errno == EACCES || errno == EPERM)
            resp_text(r, 403, "permission denied: %s\n", path);
        else
            resp_text(r, 500, "cannot open %s: %s\n", path, strerror(errno));
        return;
    }
    struct stat st;
    if (fstat(fd, &st) == 0 && S_ISDIR(st.st_mode)) {
        close(fd);
        resp_text(r, 400, "is a directory: %s\n", path);
        return;
    }
    /* read until EOF (sizes under /proc are 0 in stat) */
    size_t cap = (S_ISREG(st.st_mode) && st.st_size > 0) ? (size_t)st.st_size + 1 : 4096;
    if (cap > (size_t)MAX_FILE_SIZE + 1)
        cap = (size_t)MAX_FILE_SIZE + 1;
    char *data = malloc(cap);
    size_t len = 0;
    int err = 0;
    while (data) {
        if (len == cap) {
            if (cap > (size_t)MAX_FILE_SIZE) {
                err = EFBIG;
                break;
            }
            size_t ncap = cap * 2;
            char *nd = realloc(data, ncap);
            if (!nd) {
                err = ENOMEM;
                break;
            }
            data = nd;
            cap = ncap;
        }
        ssize_t n = read(fd, data + len, cap - len);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            err = errno;
            break;
        }
        if (n == 0)
            break;
        len += (size_t)n;
    }
    close(fd);
    if (!data || err) {
        free(data);
        if (err == EFBIG)
            resp_text(r, 413, "file too large: %s\n", path);
        else
            resp_text(r, 500, "cannot read %s: %s\n", path, strerror(err ? err : ENOMEM));
        return;
    }
    resp_owned(r, 200, "application/octet-stream", data, len);
}

static void handle_env(response_t *r, const char *query) {
    char name[1024];
    if (!query_param(query, "name", name, sizeof name) || !name[0]) {
        resp_text(r, 400, "missing ?name=\n");
        return;
    }
    const char *v = getenv(name); /* nothing ever calls setenv: safe across threads */
    if (!v) {
        resp_text(r, 404, "env var %s is not set\n", name);
        return;
    }
    size_t len = strlen(v);
    char *copy = malloc(len + 1);
    if (!copy) {
        resp_text(r, 500, "out of memory\n");
        return;
    }
    memcpy(copy, v, len + 1);
    resp_owned(r, 200, "text/plain; charset=utf-8", copy, len);
}

/* ?ms=N within 0..MAX_SLEEP_MS, or a 400 answer and -1. */
static long query_ms(response_t *r, const char *query) {
    char v[64];
    if (!query_param(query, "ms", v, sizeof v) || !v[0]) {
        resp_text(r, 400, "missing ?ms=\n");
        return -1;
    }
    char *end = NULL;
    errno = 0;
    long ms = strtol(v, &end, 10);
    if (errno || *end || ms < 0 || ms > MAX_SLEEP_MS) {
        resp_text(r, 400, "bad ms=%s (0..%ld)\n", v, MAX_SLEEP_MS);
        return -1;
    }
    return ms;
}

static void handle_sleep(response_t *r, const char *query) {
    long ms = query_ms(r, query);
    if (ms < 0)
        return;
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR) {
    }
    resp_text(r, 200, "slept %ld ms\n", ms);
}

static double thread_cpu_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec * 1000.0 + (double)ts.tv_nsec / 1e6;
}

static void handle_burn(response_t *r, const char *query) {
    long ms = query_ms(r, query);
    if (ms < 0)
        return;
    double until = thread_cpu_ms() + (double)ms;
    volatile unsigned long spins = 0;
    while (thread_cpu_ms() < until)
        spins++;
    resp_text(r, 200, "burned %ld ms of CPU\n", ms);
}

static void handle_root(response_t *r) {
    unsigned long n = atomic_fetch_add(&root_requests, 1);
    double rate = cfg_error_rate;
    if (rate > 0 && floor((double)(n + 1) * rate / 100.0) > floor((double)n * rate / 100.0)) {
        resp_text(r, 500, "injected error (ERROR_RATE=%g) version=%s host=%s\n", rate,
                  cfg_version, cfg_hostname);
        return;
    }
    resp_text(r, 200, "version=%s host=%s\n", cfg_version, cfg_hostname);
}

static void route(response_t *r, const char *path, const char *query) {
    if (!strcmp(path, "/")) {
        handle_root(r);
    } else if (!strcmp(path, "/ready")) {
        if (cfg_ready_fail)
            resp_text(r, 503, "not ready (READY_FAIL)\n");
        else
            resp_text(r, 200, "ready\n");
    } else if (!strcmp(path, "/health")) {
        if (cfg_liveness_fail_after >= 0 && mono_elapsed() >= cfg_liveness_fail_after)
            resp_text(r, 500, "unhealthy (LIVENESS_FAIL_AFTER=%g)\n", cfg_liveness_fail_after);
        else
            resp_text(r, 200, "ok\n");
    } else if (!strcmp(path, "/metrics")) {
        handle_metrics(r);
        return; /* counted inside */
    } else if (!strcmp(path, "/env")) {
        handle_env(r, query);
    } else if (!strcmp(path, "/file")) {
        handle_file(r, query);
    } else if (!strcmp(path, "/sleep")) {
        handle_sleep(r, query);
    } else if (!strcmp(path, "/burn")) {
        handle_burn(r, query);
    } else {
        resp_text(r, 404, "not found: %s\n", path);
    }
    count_status(r->status);
}

static int send_response(conn_t *c, response_t *r, int head_only, int keep_alive) {
    char hdr[1024];
    int n = snprintf(hdr, sizeof hdr,
                     "HTTP/1.1 %d %s\r\n"
                     "Server: funade-testapp\r\n"
                     "Content-Type: %s\r\n"
                     "Content-Length: %zu\r\n"
                     "X-Version: %s\r\n"
                     "Cache-Control: no-store\r\n"
                     "Connection: %s\r\n"
                     "\r\n",
                     r->status, reason(r->status), r->content_type, r->len, cfg_version,
                     keep_alive ? "keep-alive" : "close");
    if (n < 0 || (size_t)n >= sizeof hdr)
        return -1;
    struct iovec iov[2] = {{.iov_base = hdr, .iov_len = (size_t)n},
                           {.iov_base = r->body, .iov_len = r->len}};
    return send_all(c->fd, iov, (head_only || r->len == 0) ? 1 : 2);
}

/* For protocol errors: answer and close. */
static void send_error_close(conn_t *c, int status, const char *msg) {
    response_t r;
    resp_text(&r, status, "%s\n", msg);
    count_status(status);
    send_response(c, &r, 0, 0);
    if (cfg_log_requests)
        logline(stdout, "%s - - %d (%s)", c->peer, status, msg);
}

/* ------------------------------------------------------------------ request loop */

/* Returns the offset just past the blank line ending the head, or 0 if incomplete. */
static size_t find_head_end(const char *b, size_t len) {
    for (size_t i = 0; i < len; i++) {
        if (b[i] != '\n')
            continue;
        if (i + 1 < len && b[i + 1] == '\n')
            return i + 2;
        if (i + 2 < len && b[i + 1] == '\r' && b[i + 2] == '\n')
            return i + 3;
    }
    return 0;
}

static int header_has_token(const char *value, const char *token) {
    size_t tl = strlen(token);
    const char *p = value;
    while (*p) {
        while (*p == ' ' || *p == '\t' || *p == ',')
            p++;
        const char *s = p;
        while (*p && *p != ',')
            p++;
        const char *e = p;
        while (e > s && (e[-1] == ' ' || e[-1] == '\t'))
            e--;
        if ((size_t)(e - s) == tl && !strncasecmp(s, token, tl))
            return 1;
    }
    return 0;
}

/* Returns 1 when the server decides to close (linger wanted), 0 when the peer is gone. */
static int serve(conn_t *c) {
    char target[BUF_SIZE];
    char method[32];
    for (;;) {
        /* 1. read the request head */
        size_t head_end;
        int first = 1;
        while (!(head_end = find_head_end(c->buf + c->start, c->end - c->start))) {
            int idle = (c->start == c->end);
            if (first && idle && atomic_load(&shutting_down))
                return 1; /* idle keep-alive connection during shutdown: just close */
            first = 0;
            int f = conn_fill(c, idle ? IDLE_TIMEOUT_MS : READ_TIMEOUT_MS, idle);
            if (f == FILL_FULL) {
                send_error_close(c, 431, "request head too large");
                return 1;
            }
            if (f == FILL_TIMEOUT && !idle) {
                send_error_close(c, 408, "request timeout");
                return 1;
            }
            if (f != FILL_OK)
                return (f == FILL_EOF || f == FILL_ERR) ? 0 : 1; /* EOF, error, idle timeout or shutdown */
        }
        struct timespec t0;
        clock_gettime(CLOCK_MONOTONIC, &t0);

        /* skip leading empty lines (RFC 9112 2.2) */
        char *head = c->buf + c->start;
        char *head_lim = head + head_end;
        while (head < head_lim && (*head == '\r' || *head == '\n'))
            head++;
        if (head == head_lim) {
            c->start += head_end;
            continue;
        }
        head_lim[-1] = '\0'; /* the final '\n' */

        /* 2. request line */
        char *line_end = strchr(head, '\n');
        if (!line_end) {
            send_error_close(c, 400, "bad request line");
            return 1;
        }
        *line_end = '\0';
        if (line_end > head && line_end[-1] == '\r')
            line_end[-1] = '\0';
        char *sp1 = strchr(head, ' ');
        char *sp2 = sp1 ? strchr(sp1 + 1, ' ') : NULL;
        if (!sp1 || !sp2 || (size_t)(sp1 - head) >= sizeof method || sp2 == sp1 + 1) {
            send_error_close(c, 400, "bad request line");
            return 1;
        }
        memcpy(method, head, (size_t)(sp1 - head));
        method[sp1 - head] = '\0';
        size_t tlen = (size_t)(sp2 - sp1 - 1);
        memcpy(target, sp1 + 1, tlen);
        target[tlen] = '\0';
        const char *proto = sp2 + 1;
        int http10;
        if (!strcmp(proto, "HTTP/1.1"))
            http10 = 0;
        else if (!strcmp(proto, "HTTP/1.0"))
            http10 = 1;
        else {
            send_error_close(c, 505, "unsupported protocol");
            return 1;
        }

        /* 3. headers */
        int keep_alive = !http10;
        int chunked = 0, expect_continue = 0;
        unsigned long long content_length = 0;
        int have_cl = 0;
        char *h = line_end + 1;
        while (h < head_lim && *h) {
            char *eol = strchr(h, '\n');
            char *next = eol ? eol + 1 : head_lim;
            if (eol) {
                *eol = '\0';
                if (eol > h && eol[-1] == '\r')
                    eol[-1] = '\0';
            }
            char *colon = strchr(h, ':');
            if (colon) {
                *colon = '\0';
                char *v = colon + 1;
                while (*v == ' ' || *v == '\t')
                    v++;
                char *ve = v + strlen(v);
                while (ve > v && (ve[-1] == ' ' || ve[-1] == '\t'))
                    *--ve = '\0';
                if (!strcasecmp(h, "Content-Length")) {
                    char *end = NULL;
                    errno = 0;
                    unsigned long long cl = strtoull(v, &end, 10);
                    if (errno || end == v || *end || (have_cl && cl != content_length)) {
                        send_error_close(c, 400, "bad Content-Length");
                        return 1;
                    }
                    content_length = cl;
                    have_cl = 1;
                } else if (!strcasecmp(h, "Transfer-Encoding")) {
                    if (header_has_token(v, "chunked"))
                        chunked = 1;
                    else if (*v) {
                        send_error_close(c, 501, "unsupported Transfer-Encoding");
                        return 1;
                    }
                } else if (!strcasecmp(h, "Connection")) {
                    if (header_has_token(v, "close"))
                        keep_alive = 0;
                    else if (header_has_token(v, "keep-alive"))
                        keep_alive = 1;
                } else if (!strcasecmp(h, "Expect")) {
                    if (!strcasecmp(v, "100-continue"))
                        expect_continue = 1;
                }
            }
            h = next;
        }
        c->start += head_end; /* head consumed; pointers into buf are dead from here */

        /* 4. body: read and discard (no endpoint uses it) */
        if (expect_continue && !http10 && (chunked || content_length > 0)) {
            static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
            struct iovec iov = {.iov_base = (void *)cont, .iov_len = sizeof cont - 1};
            if (send_all(c->fd, &iov, 1))
                return 0;
        }
        if (chunked) {
            if (conn_discard_chunked(c))
                return 0;
        } else if (content_length > 0) {
            if (conn_discard(c, content_length))
                return 0;
        }

        /* 5. route and answer */
        atomic_fetch_add(&in_flight, 1);
        char *query = strchr(target, '?');
        if (query)
            *query++ = '\0';
        char *frag = query ? strchr(query, '#') : strchr(target, '#');
        if (frag)
            *frag = '\0';
        response_t r;
        route(&r, target, query);
        if (atomic_load(&shutting_down))
            keep_alive = 0; /* draining: tell the client to go away */
        int rc = send_response(c, &r, !strcmp(method, "HEAD"), keep_alive);
        atomic_fetch_sub(&in_flight, 1);
        if (cfg_log_requests) {
            struct timespec t1;
            clock_gettime(CLOCK_MONOTONIC, &t1);
            double ms = (double)(t1.tv_sec - t0.tv_sec) * 1e3 +
                        (double)(t1.tv_nsec - t0.tv_nsec) / 1e6;
            logline(stdout, "%s \"%s %s%s%s %s\" %d %zu %.1fms", c->peer, method, target,
                    query ? "?" : "", query ? query : "", http10 ? "HTTP/1.0" : "HTTP/1.1",
                    r.status, r.len, ms);
        }
        if (r.owned)
            free(r.body);
        if (rc)
            return 0;
        if (!keep_alive)
            return 1;
    }
}

static void conn_done(void) {
    pthread_mutex_lock(&conn_mu);
    active_conns--;
    pthread_cond_broadcast(&conn_cv);
    pthread_mutex_unlock(&conn_mu);
}

static void *conn_thread(void *arg) {
    conn_t *c = arg;
    if (serve(c)) {
        /* We are the side closing.  Half-close, then drain briefly: close() with
         * unread input would send an RST that can destroy our last response
         * before the peer has read it. */
        shutdown(c->fd, SHUT_WR);
        struct timespec t0, now;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        for (;;) {
            struct pollfd pfd = {.fd = c->fd, .events = POLLIN};
            if (poll(&pfd, 1, 200) <= 0)
                break;
            if (recv(c->fd, c->buf, sizeof c->buf, 0) <= 0)
                break;
            clock_gettime(CLOCK_MONOTONIC, &now);
            if (now.tv_sec - t0.tv_sec >= 1)
                break;
        }
    }
    close(c->fd);
    free(c);
    conn_done();
    return NULL;
}

/* ------------------------------------------------------------------ threads: accept, crash */

static void *accept_thread(void *arg) {
    (void)arg;
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    pthread_attr_setstacksize(&attr, THREAD_STACK);
    for (;;) {
        struct sockaddr_storage ss;
        socklen_t sl = sizeof ss;
        int fd = accept4(listen_fd, (struct sockaddr *)&ss, &sl, SOCK_CLOEXEC);
        if (fd < 0) {
            if (atomic_load(&shutting_down))
                break;
            if (errno == EINTR || errno == ECONNABORTED || errno == EPROTO)
                continue;
            if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
                struct timespec ts = {0, 10 * 1000000L};
                nanosleep(&ts, NULL);
                continue;
            }
            logline(stderr, "accept: %s", strerror(errno));
            break;
        }
        if (atomic_load(&shutting_down)) {
            close(fd);
            break;
        }
        pthread_mutex_lock(&conn_mu);
        int too_many = active_conns >= MAX_CONNECTIONS;
        if (!too_many)
            active_conns++;
        pthread_mutex_unlock(&conn_mu);
        if (too_many) {
            close(fd);
            continue;
        }
        atomic_fetch_add(&connections_total, 1);
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        struct timeval tv = {.tv_sec = SEND_TIMEOUT_S};
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
        conn_t *c = malloc(sizeof *c);
        if (!c) {
            close(fd);
            conn_done();
            continue;
        }
        c->fd = fd;
        c->start = c->end = 0;
        c->peer[0] = '\0';
        if (ss.ss_family == AF_INET)
            inet_ntop(AF_INET, &((struct sockaddr_in *)&ss)->sin_addr, c->peer, sizeof c->peer);
        else if (ss.ss_family == AF_INET6)
            inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&ss)->sin6_addr, c->peer,
                      sizeof c->peer);
        pthread_t tid;
        int err = pthread_create(&tid, &attr, conn_thread, c);
        if (err) {
            logline(stderr, "pthread_create: %s", strerror(err));
            close(fd);
            free(c);
            conn_done();
        }
    }
    pthread_attr_destroy(&attr);
    return NULL;
}

static void *crash_thread(void *arg) {
    (void)arg;
    struct timespec when = mono_after(start_mono, cfg_crash_after);
    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &when, NULL) == EINTR) {
    }
    fflush(stdout);
    fprintf(stderr, "crashing as asked (CRASH_AFTER=%s)\n", cfg_crash_after_raw);
    fflush(stderr);
    _exit(1);
    return NULL;
}

/* ------------------------------------------------------------------ main */

static void finish(int code) {
    fflush(stdout);
    fflush(stderr);
    _exit(code);
}

static const char *signame(int sig) {
    return sig == SIGTERM ? "SIGTERM" : sig == SIGINT ? "SIGINT" : "signal";
}

int main(void) {
    clock_gettime(CLOCK_MONOTONIC, &start_mono);
    struct timespec rt;
    clock_gettime(CLOCK_REALTIME, &rt);
    start_real = (double)rt.tv_sec + (double)rt.tv_nsec / 1e9;

    setvbuf(stdout, NULL, _IOLBF, 0);
    setvbuf(stderr, NULL, _IONBF, 0);
    /* Keep RSS flat under thread-per-connection load: few malloc arenas, and big
     * buffers (/file, /metrics) always mmap'ed and returned on free (a fixed
     * threshold disables glibc's dynamic threshold that would keep them). */
    mallopt(M_ARENA_MAX, 4);
    mallopt(M_MMAP_THRESHOLD, 128 * 1024);

    /* signals: SIGTERM/SIGINT handled synchronously by main via sigwait; blocked
     * before any thread starts so every thread inherits the mask. */
    signal(SIGPIPE, SIG_IGN);
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGINT);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);

    /* configuration */
    const char *v = env_nonempty("VERSION");
    if (v)
        cfg_version = v;
    if (strpbrk(cfg_version, "\r\n")) {
        fprintf(stderr, "testapp: VERSION must not contain newlines\n");
        return 2;
    }
    if (gethostname(cfg_hostname, sizeof cfg_hostname - 1) != 0)
        strcpy(cfg_hostname, "unknown");
    const char *port = env_nonempty("PORT");
    if (port) {
        char *end = NULL;
        long p = strtol(port, &end, 10);
        if (*end || p < 1 || p > 65535) {
            fprintf(stderr, "testapp: invalid PORT=%s\n", port);
            return 2;
        }
        cfg_port = (int)p;
    }
    cfg_startup_delay = env_seconds("STARTUP_DELAY", 0, NULL);
    cfg_ready_fail = env_bool("READY_FAIL");
    cfg_liveness_fail_after = env_seconds("LIVENESS_FAIL_AFTER", -1, NULL);
    cfg_crash_after = env_seconds("CRASH_AFTER", -1, &cfg_crash_after_raw);
    cfg_error_rate = env_seconds("ERROR_RATE", 0, NULL);
    if (cfg_error_rate > 100)
        cfg_error_rate = 100;
    cfg_shutdown_timeout = env_seconds("SHUTDOWN_TIMEOUT", 10, NULL);
    cfg_log_requests = env_bool("LOG_REQUESTS");

    logline(stdout,
            "version=%s host=%s pid=%d uid=%d gid=%d port=%d ready_fail=%d "
            "liveness_fail_after=%g crash_after=%g error_rate=%g",
            cfg_version, cfg_hostname, (int)getpid(), (int)getuid(), (int)getgid(), cfg_port,
            cfg_ready_fail, cfg_liveness_fail_after, cfg_crash_after, cfg_error_rate);

    if (pipe2(shutdown_pipe, O_CLOEXEC) != 0) {
        perror("testapp: pipe2");
        return 1;
    }

    if (cfg_crash_after >= 0) {
        pthread_t tid;
        if (pthread_create(&tid, NULL, crash_thread, NULL) != 0) {
            perror("testapp: pthread_create");
            return 1;
        }
        pthread_detach(tid);
    }

    /* startup delay, interruptible by SIGTERM/SIGINT */
    if (cfg_startup_delay > 0) {
        logline(stdout, "starting, listening in %g s", cfg_startup_delay);
        struct timespec until = mono_after(start_mono, cfg_startup_delay);
        for (;;) {
            struct timespec now;
            clock_gettime(CLOCK_MONOTONIC, &now);
            double left = (double)(until.tv_sec - now.tv_sec) +
                          (double)(until.tv_nsec - now.tv_nsec) / 1e9;
            if (left <= 0)
                break;
            struct timespec wait = {.tv_sec = (time_t)left,
                                    .tv_nsec = (long)((left - floor(left)) * 1e9)};
            int sig = sigtimedwait(&sigs, NULL, &wait);
            if (sig > 0) {
                logline(stdout, "shutting down (%s during startup delay)", signame(sig));
                finish(0);
            }
        }
    }

    listen_fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (listen_fd < 0) {
        perror("testapp: socket");
        return 1;
    }
    int one = 1;
    setsockopt(listen_fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in addr = {.sin_family = AF_INET,
                               .sin_port = htons((uint16_t)cfg_port),
                               .sin_addr.s_addr = htonl(INADDR_ANY)};
    if (bind(listen_fd, (struct sockaddr *)&addr, sizeof addr) != 0) {
        fprintf(stderr, "testapp: bind 0.0.0.0:%d: %s\n", cfg_port, strerror(errno));
        return 1;
    }
    if (listen(listen_fd, 4096) != 0) {
        perror("testapp: listen");
        return 1;
    }
    pthread_t acceptor;
    if (pthread_create(&acceptor, NULL, accept_thread, NULL) != 0) {
        perror("testapp: pthread_create");
        return 1;
    }
    logline(stdout, "listening on 0.0.0.0:%d", cfg_port);

    /* wait for SIGTERM / SIGINT */
    int sig = 0;
    while (sigwait(&sigs, &sig) != 0) {
    }
    atomic_store(&shutting_down, 1);
    logline(stdout, "shutting down (%s), draining for up to %g s", signame(sig),
            cfg_shutdown_timeout);
    /* stop accepting: wakes accept(), unaccepted backlog connections are reset */
    shutdown(listen_fd, SHUT_RDWR);
    close(listen_fd);
    /* wake idle keep-alive connections: their poll() sees EOF on the pipe */
    close(shutdown_pipe[1]);
    pthread_join(acceptor, NULL);

    struct timespec deadline = mono_after(start_mono, mono_elapsed() + cfg_shutdown_timeout);
    long left;
    pthread_mutex_lock(&conn_mu);
    for (;;) {
        left = active_conns;
        if (left == 0)
            break;
        struct timespec now;
        clock_gettime(CLOCK_MONOTONIC, &now);
        if (now.tv_sec > deadline.tv_sec ||
            (now.tv_sec == deadline.tv_sec && now.tv_nsec >= deadline.tv_nsec))
            break;
        /* conn_cv uses CLOCK_REALTIME by default: wait in short slices against the
         * monotonic deadline instead of converting clocks */
        struct timespec slice;
        clock_gettime(CLOCK_REALTIME, &slice);
        slice.tv_nsec += 50 * 1000000L;
        if (slice.tv_nsec >= 1000000000L) {
            slice.tv_sec++;
            slice.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&conn_cv, &conn_mu, &slice);
        pthread_mutex_unlock(&conn_mu);
        /* a second signal means "now" */
        struct timespec zero = {0, 0};
        int s2 = sigtimedwait(&sigs, NULL, &zero);
        pthread_mutex_lock(&conn_mu);
        if (s2 > 0) {
            left = active_conns;
            logline(stdout, "second %s: not waiting for %ld connection(s)", signame(s2),
                    left);
            break;
        }
    }
    pthread_mutex_unlock(&conn_mu);
    if (left > 0)
        logline(stdout, "shutdown: gave up on %ld connection(s)", left);
    logline(stdout, "shutdown complete");
    finish(0);
    return 0;
}
