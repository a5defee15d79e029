/* examples/udp_multicast.c - one sender, several receivers: UDP multicast on one machine.

   Three receiver processes share one UDP port (IPC_SOCK_REUSEPORT lets several sockets
   bind it) and join the group 239.255.0.1 (a block meant for use inside one site) on the
   loopback interface. A sender picks that interface for its multicast with
   ipc_sock_multicast_if and sends a few datagrams to the group; the kernel gives every
   member its own copy. Each receiver prints what it got and the sender's endpoint
   (ipc_sock_recvfrom + ipc_sock_format); the sender's socket is bound to 0.0.0.0, so the
   kernel picks its source address for the interface (on loopback that may well be the
   machine's main address rather than 127.0.0.1). Note the difference to unicast: a datagram sent
   to the shared port's plain address would reach one of the three sockets, not all.

   Multicast on loopback needs the kernel's help, and some containers do not give it (a
   loopback without the MULTICAST flag, a sandboxed network stack). The example first
   sends one probe to the group; if nothing arrives within half a second it says so and
   shows a plain UDP exchange on 127.0.0.1 instead, which works everywhere.

   Run:  udp_multicast [IFNAME]   to use another interface than "lo", e.g. eth0 (the
   sender's copies loop back to local members, so this works without other hosts).

   Build and run:  make demo   (or: cc -I. examples/udp_multicast.c -pthread && ./a.out) */
#define IPC_IMPLEMENTATION
#include "ipc.h"

#include <errno.h>
#include <net/if.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/wait.h>
#include <unistd.h>

#define SECOND    1000000000LL
#define GROUP     "udp:239.255.0.1:0" /* for join and multicast_if the port is ignored */
#define RECEIVERS 3
#define DATAGRAMS 3

/* Receive until "bye", printing each datagram with its sender. 0 if all DATAGRAMS came. */
static int receive(int id, int fd) {
    char msg[256], from[128];
    ipc_sockaddr sender;
    int count = 0;
    for (;;) {
        ssize_t n = ipc_sock_recvfrom(fd, msg, sizeof msg - 1, &sender, 2 * SECOND);
        if (n < 0) {
            fprintf(stderr, "receiver %d: %s\n", id, ipc_strerror((int)n));
            return 1;
        }
        msg[n] = 0;
        if (strcmp(msg, "probe") == 0) continue; /* the parent's test, before we started */
        if (strcmp(msg, "bye") == 0) break;
        if (ipc_sock_format(&sender, from, sizeof from) < 0) snprintf(from, sizeof from, "?");
        printf("receiver %d (pid %d): \"%s\" from %s\n", id, (int)getpid(), msg, from);
        count++;
    }
    printf("receiver %d: %d datagrams, then bye\n", id, count);
    return count != DATAGRAMS;
}

/* Why might multicast not arrive? Tell the user what the interface says about itself. */
static void explain(int fd, const char *ifname) {
    struct ifreq ifr;
    memset(&ifr, 0, sizeof ifr);
    snprintf(ifr.ifr_name, sizeof ifr.ifr_name, "%s", ifname);
    if (ioctl(fd, SIOCGIFFLAGS, &ifr) == 0 && !(ifr.ifr_flags & IFF_MULTICAST))
        printf("  %s has no MULTICAST flag, which may be why (as root: ip link set %s multicast "
               "on)\n",
               ifname, ifname);
    else
        printf("  this machine's network stack (a container's, perhaps) does not loop it back\n");
}

/* 0 success, 1 failure, 2 multicast does not work here. */
static int multicast_demo(const char *ifname) {
    ipc_sock_opts opts = {0};
    ipc_sockaddr addr, group;
    char endpoint[64], probe[16];
    int rfd[RECEIVERS], sfd = -1, i, r, failed = 0;
    pid_t pids[RECEIVERS];
    unsigned port = 0;
    ssize_t n;

    printf("--- UDP multicast to group %s on %s\n", "239.255.0.1", ifname);
    /* The first receiver takes any free port; the others bind the same one. Every socket
       on the port needs IPC_SOCK_REUSEPORT, the first one included. */
    opts.flags = IPC_SOCK_REUSEPORT;
    for (i = 0; i < RECEIVERS; i++)
        rfd[i] = -1;
    for (i = 0; i < RECEIVERS; i++) {
        if (i == 0)
            snprintf(endpoint, sizeof endpoint, "udp:0.0.0.0:0");
        else
            snprintf(endpoint, sizeof endpoint, "udp:0.0.0.0:%u", port);
        rfd[i] = ipc_sock_bind(endpoint, &opts);
        if (rfd[i] < 0) {
            fprintf(stderr, "bind %s: %s\n", endpoint, ipc_strerror(rfd[i]));
            failed = 1;
            goto out;
        }
        if (i == 0) { /* which port did we get? */
            ipc_sock_local(rfd[0], &addr);
            ipc_sock_format(&addr, endpoint, sizeof endpoint);
            port = (unsigned)atoi(strrchr(endpoint, ':') + 1);
        }
        r = ipc_sock_join(rfd[i], GROUP, ifname); /* membership lasts until close */
        if (r < 0) {
            printf("cannot join the group on %s: %s\n", ifname,
                   r == -ENODEV ? "no such interface" : ipc_strerror(r));
            failed = 2;
            goto out;
        }
    }
    printf("receivers: %d sockets on udp:0.0.0.0:%u, each a member of the group\n", RECEIVERS,
           port);

    /* The sender needs no group membership, only the interface to send from. */
    sfd = ipc_sock_bind("udp:0.0.0.0:0", NULL);
    if (sfd < 0) {
        fprintf(stderr, "sender: bind: %s\n", ipc_strerror(sfd));
        failed = 1;
        goto out;
    }
    if ((r = ipc_sock_multicast_if(sfd, GROUP, ifname)) < 0) {
        printf("cannot send multicast out of %s: %s\n", ifname, ipc_strerror(r));
        failed = 2;
        goto out;
    }
    snprintf(endpoint, sizeof endpoint, "udp:239.255.0.1:%u", port);
    ipc_sock_parse(endpoint, &group);

    /* Does anything arrive at all? One probe, half a second. */
    n = ipc_sock_sendto(sfd, "probe", 5, &group, SECOND);
    if (n >= 0) n = ipc_sock_recvfrom(rfd[0], probe, sizeof probe, NULL, SECOND / 2);
    if (n < 0) {
        printf("a probe sent to the group did not arrive (%s):\n", ipc_strerror((int)n));
        explain(sfd, ifname);
        failed = 2;
        goto out;
    }

    fflush(stdout); /* or the children inherit unprinted output */
    for (i = 0; i < RECEIVERS; i++) {
        pids[i] = fork();
        if (pids[i] == 0) {
            r = receive(i, rfd[i]);
            fflush(stdout);
            _exit(r);
        }
        if (pids[i] < 0) return 1; /* for brevity: a real program would stop the others */
        ipc_fd_close(&rfd[i]);     /* the child has it now */
    }

    for (i = 0; i <= DATAGRAMS; i++) {
        char msg[64];
        int len = i < DATAGRAMS ? snprintf(msg, sizeof msg, "news item %d", i + 1)
                                : snprintf(msg, sizeof msg, "bye");
        /* One send, one copy per member: the kernel does the fan-out. */
        n = ipc_sock_sendto(sfd, msg, (size_t)len, &group, SECOND);
        if (n < 0) {
            fprintf(stderr, "sender: %s\n", ipc_strerror((int)n));
            failed = 1;
        }
    }
    printf("sender: %d datagrams and a bye sent to %s\n", DATAGRAMS, endpoint);
    for (i = 0; i < RECEIVERS; i++) {
        int status;
        waitpid(pids[i], &status, 0);
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) failed = 1;
    }
out: /* closing a socket also leaves its groups */
    for (i = 0; i < RECEIVERS; i++)
        ipc_fd_close(&rfd[i]);
    ipc_fd_close(&sfd);
    return failed;
}

/* The fallback: unicast UDP between two processes on 127.0.0.1, with replies. */
static int unicast_demo(void) {
    char endpoint[64], msg[64], from[128];
    ipc_sockaddr raddr, peer;
    int rfd, sfd, i, status, failed = 0;
    pid_t pid;
    ssize_t n;

    printf("--- plain UDP on 127.0.0.1 instead\n");
    rfd = ipc_sock_bind("udp:127.0.0.1:0", NULL);
    sfd = ipc_sock_bind("udp:127.0.0.1:0", NULL);
    if (rfd < 0 || sfd < 0) {
        fprintf(stderr, "bind: %s\n", ipc_strerror(rfd < 0 ? rfd : sfd));
        return 1;
    }
    ipc_sock_local(rfd, &raddr); /* an address from the kernel can be sent to as it is */
    ipc_sock_format(&raddr, endpoint, sizeof endpoint);

    fflush(stdout);
    pid = fork();
    if (pid < 0) return 1;
    if (pid == 0) { /* the receiver answers every datagram to whoever sent it */
        for (;;) {
            n = ipc_sock_recvfrom(rfd, msg, sizeof msg - 1, &peer, 2 * SECOND);
            if (n < 0) {
                fprintf(stderr, "receiver: %s\n", ipc_strerror((int)n));
                _exit(1);
            }
            msg[n] = 0;
            ipc_sock_format(&peer, from, sizeof from);
            printf("receiver (pid %d): \"%s\" from %s\n", (int)getpid(), msg, from);
            fflush(stdout);
            if (strcmp(msg, "bye") == 0) _exit(0);
            ipc_sock_sendto(rfd, "got it", 6, &peer, SECOND);
        }
    }
    ipc_fd_close(&rfd);

    for (i = 0; i <= DATAGRAMS; i++) {
        int len = i < DATAGRAMS ? snprintf(msg, sizeof msg, "news item %d", i + 1)
                                : snprintf(msg, sizeof msg, "bye");
        n = ipc_sock_sendto(sfd, msg, (size_t)len, &raddr, SECOND);
        if (n >= 0 && i < DATAGRAMS)
            n = ipc_sock_recvfrom(sfd, msg, sizeof msg - 1, &peer, 2 * SECOND);
        if (n < 0) {
            fprintf(stderr, "sender: %s\n", ipc_strerror((int)n));
            failed = 1;
            break;
        }
        if (i < DATAGRAMS) {
            msg[n] = 0;
            ipc_sock_format(&peer, from, sizeof from);
            printf("sender: reply \"%s\" from %s\n", msg, from);
        }
    }
    ipc_fd_close(&sfd);
    waitpid(pid, &status, 0);
    return failed || !WIFEXITED(status) || WEXITSTATUS(status) != 0;
}

int main(int argc, char **argv) {
    const char *ifname = argc > 1 ? argv[1] : "lo";
    int r;
    setvbuf(stdout, NULL, _IOLBF, 0); /* lines of the processes in the order they happen */
    r = multicast_demo(ifname);
    if (r == 2) {
        printf("=> multicast does not work on %s here; nothing is wrong with the program.\n",
               ifname);
        r = unicast_demo();
    }
    return r;
}
