/* tests/fuzz/endpoint.c - fuzz the endpoint syntax of ipc.h (section 11):
   ipc_sock_parse and ipc_sock_format.

   Parse mode (first byte < 0x80): a scheme prefix picked by that byte, then the input as
   a string. Whatever parses must be a well-formed address (family, length, socket type
   of the scheme), format into an endpoint that fits exactly the buffer it needs (and
   -ENOSPC for one byte less), and that endpoint must parse back to the same address.
   Format mode (first byte >= 0x80): an ipc_sockaddr of fuzz-chosen bytes, family and
   length. Formatting must not read past the address; what it formats must parse, and
   format again to the same string.

   Host names never reach DNS: getaddrinfo is renamed for the implementation to a fake
   resolver below (localhost, *.v4 and *.v6 names, and names that fail in each way). */
#define _GNU_SOURCE  1
#define getaddrinfo  fz_getaddrinfo
#define freeaddrinfo fz_freeaddrinfo
#define IPC_IMPLEMENTATION
#include "ipc.h"
#include "fuzz.h"

#include <errno.h>
#include <netdb.h>
#include <sys/socket.h>
#include <sys/un.h>

#undef getaddrinfo
#undef freeaddrinfo

typedef struct fz_ai {
    struct addrinfo ai;
    struct sockaddr_storage ss;
} fz_ai;

static int ends_with(const char *s, const char *tail) {
    size_t n = strlen(s), t = strlen(tail);
    return n >= t && strcmp(s + n - t, tail) == 0;
}

/* A deterministic resolver: the address of a name is made from its bytes. */
int fz_getaddrinfo(const char *node, const char *service, const struct addrinfo *hints,
                   struct addrinfo **res) {
    fz_ai *r;
    uint32_t h = 2166136261u;
    const char *c;
    (void)service;
    (void)hints;
    if (!node) return EAI_NONAME;
    if (strncmp(node, "again", 5) == 0) return EAI_AGAIN;
    if (strncmp(node, "nomem", 5) == 0) return EAI_MEMORY;
    if (strncmp(node, "syserr", 6) == 0) {
        errno = EIO;
        return EAI_SYSTEM;
    }
    for (c = node; *c; c++)
        h = (h ^ (unsigned char)*c) * 16777619u;
    r = (fz_ai *)calloc(1, sizeof *r);
    if (!r) return EAI_MEMORY;
    r->ai.ai_addr = (struct sockaddr *)&r->ss;
    if (strcmp(node, "localhost") == 0 || ends_with(node, ".v4")) {
        struct sockaddr_in *a = (struct sockaddr_in *)&r->ss;
        a->sin_family = AF_INET;
        a->sin_addr.s_addr = strcmp(node, "localhost") == 0 ? htonl(0x7f000001) : h;
        r->ai.ai_family = AF_INET;
        r->ai.ai_addrlen = sizeof *a;
    } else if (ends_with(node, ".v6")) {
        struct sockaddr_in6 *a = (struct sockaddr_in6 *)&r->ss;
        a->sin6_family = AF_INET6;
        memcpy(&a->sin6_addr, &h, sizeof h);
        a->sin6_addr.s6_addr[15] = 1;
        r->ai.ai_family = AF_INET6;
        r->ai.ai_addrlen = sizeof *a;
    } else if (ends_with(node, ".unix")) { /* a family the parser must refuse */
        r->ss.ss_family = AF_UNIX;
        r->ai.ai_family = AF_UNIX;
        r->ai.ai_addrlen = sizeof(struct sockaddr_un);
    } else {
        free(r);
        return EAI_NONAME;
    }
    *res = &r->ai;
    return 0;
}

void fz_freeaddrinfo(struct addrinfo *ai) {
    free(ai); /* the first member of an fz_ai */
}

static int same_addr(const ipc_sockaddr *a, const ipc_sockaddr *b) {
    return a->len == b->len && a->type == b->type && a->len <= sizeof a->u.bytes &&
           memcmp(a->u.bytes, b->u.bytes, a->len) == 0;
}

static void check_shape(const ipc_sockaddr *a, const char *s) {
    int fam = ((const struct sockaddr *)(const void *)a->u.bytes)->sa_family;
    FZ_CHECK(a->type == IPC_SOCK_STREAM || a->type == IPC_SOCK_DGRAM, "%s: type %d", s, a->type);
    if (fam == AF_UNIX)
        FZ_CHECK(a->len > offsetof(struct sockaddr_un, sun_path) &&
                     a->len <= sizeof(struct sockaddr_un) && a->type == IPC_SOCK_STREAM,
                 "%s: unix length %u", s, a->len);
    else if (fam == AF_INET)
        FZ_CHECK(a->len == sizeof(struct sockaddr_in), "%s: inet length %u", s, a->len);
    else
        FZ_CHECK(fam == AF_INET6 && a->len == sizeof(struct sockaddr_in6), "%s: family %d len %u",
                 s, fam, a->len);
    if (strncmp(s, "udp:", 4) == 0) FZ_CHECK(a->type == IPC_SOCK_DGRAM, "%s: not datagram", s);
    if (strncmp(s, "tcp:", 4) == 0) FZ_CHECK(a->type == IPC_SOCK_STREAM, "%s: not stream", s);
}

/* Format a into a buffer of exactly the size it needs (one byte less: -ENOSPC). */
static int format_exact(const ipc_sockaddr *a, char **out) {
    char big[512];
    int n = ipc_sock_format(a, big, sizeof big), m;
    char *buf;
    *out = NULL;
    if (n < 0) return n;
    FZ_CHECK((size_t)n == strlen(big), "format: %d, wrote %zu", n, strlen(big));
    buf = (char *)malloc((size_t)n + 1);
    m = ipc_sock_format(a, buf, (size_t)n); /* one short */
    FZ_CHECK(m == -ENOSPC, "format into %d bytes: %d", n, m);
    m = ipc_sock_format(a, buf, (size_t)n + 1);
    FZ_CHECK(m == n && strcmp(buf, big) == 0, "format into %d bytes: %d", n + 1, m);
    *out = buf;
    return n;
}

static void parse_mode(fz_in *in, unsigned b) {
    static const char *const pre[] = {
        "",      "unix:",          "unix:@", "tcp:",   "udp:",      "tcp:[",
        "udp:[", "tcp:localhost:", "tcp:1",  "udp:[f", "tcp:a.v6:", "unix:/"};
    char s[400], *f1 = NULL;
    size_t k = strlen(pre[b % 12]), room = sizeof s - 1 - k, n = in->n < room ? in->n : room;
    ipc_sockaddr a, b2;
    int rc, rc2;
    memcpy(s, pre[b % 12], k);
    memcpy(s + k, in->p, n);
    s[k + n] = 0; /* an embedded NUL ends the string, as for any caller */
    rc = ipc_sock_parse(s, &a);
    FZ_CHECK(rc == 0 || rc == -EINVAL || rc == -ENAMETOOLONG || rc == -ENOENT || rc == -EAGAIN ||
                 rc == -ENOMEM || rc == -EIO,
             "parse(%s): %d", s, rc);
    if (rc != 0) return;
    check_shape(&a, s);
    rc = format_exact(&a, &f1);
    FZ_CHECK(rc > 0, "parse(%s) gave an address that does not format: %d", s, rc);
    rc2 = ipc_sock_parse(f1, &b2);
    FZ_CHECK(rc2 == 0 && same_addr(&a, &b2), "%s -> %s does not parse back the same: %d", s, f1,
             rc2);
    free(f1);
}

static void format_mode(fz_in *in, unsigned b) {
    static const int fams[] = {AF_UNIX, AF_INET, AF_INET6};
    ipc_sockaddr a, b2;
    char *f1 = NULL, *f2 = NULL;
    int rc, rc2;
    memset(&a, 0, sizeof a);
    fz_bytes(in, a.u.bytes, sizeof a.u.bytes);
    a.len = fz_u8(in);
    a.type = (int)fz_u8(in) % 6;
    if ((b & 3) < 3) ((struct sockaddr *)(void *)a.u.bytes)->sa_family = (sa_family_t)fams[b & 3];
    rc = format_exact(&a, &f1);
    FZ_CHECK(rc > 0 || rc == -EINVAL, "format: %d", rc);
    if (rc < 0) return;
    rc2 = ipc_sock_parse(f1, &b2);
    /* What cannot come back: an unnamed socket ("unix:"), an empty abstract name, and a
       path that fills sun_path with no NUL (no room for the one a parse adds). */
    if (strcmp(f1, "unix:") == 0 || strcmp(f1, "unix:@") == 0)
        FZ_CHECK(rc2 == -EINVAL, "%s parses: %d", f1, rc2);
    else if (rc2 == -ENAMETOOLONG)
        FZ_CHECK(strncmp(f1, "unix:", 5) == 0 && strlen(f1) >= 5 + 108, "%s: too long?", f1);
    else
        FZ_CHECK(rc2 == 0, "formatted %s does not parse: %d", f1, rc2);
    if (rc2 == 0) {
        check_shape(&b2, f1);
        rc = format_exact(&b2, &f2);
        FZ_CHECK(rc > 0 && strcmp(f1, f2) == 0, "%s formats again as %s", f1, f2 ? f2 : "-");
    }
    free(f1);
    free(f2);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    fz_in in = {data, size};
    unsigned b = fz_u8(&in);
    ipc_sockaddr a;
    FZ_CHECK(ipc_sock_parse(NULL, &a) == -EINVAL &&
                 ipc_sock_parse("tcp:1.2.3.4:5", NULL) == -EINVAL,
             "NULL arguments");
    if (b & 0x80)
        format_mode(&in, b);
    else
        parse_mode(&in, b);
    return 0;
}
