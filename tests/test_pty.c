#include "harness.h"

/* tests/test_pty.c - section 17: pseudoterminals. Opening (fds, name, window size, raw
   mode), running real programs on the slave as their controlling terminal (stty, tty,
   cat, sh), talking to them through the master, resizing and raw mode while they run,
   read deadlines, the end of output once no slave is left, and bad arguments. */

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#define MS  ((int64_t)1000000)
#define SEC (1000 * MS)

/* ---- helpers ---- */

static void pt_winsize(int fd, int rows, int cols) {
    struct winsize w;
    memset(&w, 0, sizeof w);
    CHECK_EQ(ioctl(fd, TIOCGWINSZ, &w), 0);
    CHECK_EQ(w.ws_row, rows);
    CHECK_EQ(w.ws_col, cols);
}

static tcflag_t pt_lflag(int fd) {
    struct termios t;
    CHECK_EQ(tcgetattr(fd, &t), 0);
    return t.c_lflag;
}

static tcflag_t pt_oflag(int fd) {
    struct termios t;
    CHECK_EQ(tcgetattr(fd, &t), 0);
    return t.c_oflag;
}

/* Append what the program writes to buf (NUL-terminated, *len bytes so far) until it
   holds `want`, within 10 s. */
static void pt_read_until(ipc_pty *p, char *buf, size_t cap, size_t *len, const char *want,
                          int line) {
    int64_t dl = ipc_deadline_make(10 * SEC);
    if (*len < cap) buf[*len] = 0; /* the caller's buffer may be fresh */
    while (!strstr(buf, want)) {
        ssize_t r;
        if (*len + 1 >= cap) th_fail(__FILE__, line, "no \"%s\" in %zu bytes", want, *len);
        r = ipc_pty_read(p, buf + *len, cap - 1 - *len, ipc_deadline_left(dl));
        if (r < 0)
            th_fail(__FILE__, line, "waiting for \"%s\" after \"%s\": %s", want, buf,
                    ipc_strerror((int)r));
        *len += (size_t)r;
        buf[*len] = 0;
    }
}

/* Append everything until the end (-EPIPE: no slave left), within 10 s. */
static void pt_read_end(ipc_pty *p, char *buf, size_t cap, size_t *len, int line) {
    int64_t dl = ipc_deadline_make(10 * SEC);
    for (;;) {
        ssize_t r;
        if (*len + 1 >= cap) th_fail(__FILE__, line, "more than %zu bytes", cap - 1);
        r = ipc_pty_read(p, buf + *len, cap - 1 - *len, ipc_deadline_left(dl));
        if (r == -EPIPE) break;
        if (r < 0) th_fail(__FILE__, line, "reading after \"%s\": %s", buf, ipc_strerror((int)r));
        *len += (size_t)r;
        buf[*len] = 0;
    }
}

/* argv of sh -c script. */
static void pt_sh_argv(char *argv[4], const char *script) {
    argv[0] = (char *)"sh";
    argv[1] = (char *)"-c";
    argv[2] = (char *)script;
    argv[3] = NULL;
}

/* Start /bin/sh -c script on the pty. */
static void pt_sh(ipc_pty *p, ipc_proc *proc, const char *script) {
    char *argv[4];
    pt_sh_argv(argv, script);
    CHECK_ERR(ipc_pty_spawn(p, proc, "/bin/sh", argv, NULL), 0);
    CHECK(proc->pid > 0);
    CHECK_EQ(p->slave, -1); /* handed over: the master sees the end with the program */
}

/* Reap within 10 s; the program must have exited with code. */
static void pt_exit_code(ipc_proc *proc, int code) {
    int st = ipc_proc_wait(proc, 10 * SEC);
    CHECK_OK(st);
    if (!WIFEXITED(st) || WEXITSTATUS(st) != code)
        th_fail(__FILE__, __LINE__, "status 0x%x, want exit %d", st, code);
    CHECK_ERR(ipc_proc_close(proc), 0);
}

/* ---- opening ---- */

TEST(pty_open_basics) {
    int fds = th_fd_count();
    char buf[64];
    size_t len = 0;
    struct stat a, b;
    ipc_pty p;
    const char *d;
    CHECK_ERR(ipc_pty_open(&p, NULL), 0);
    CHECK(p.master >= 0 && p.slave >= 0 && p.master != p.slave);
    CHECK_EQ(th_fd_count(), fds + 2);
    CHECK(th_is_cloexec(p.master));
    CHECK(th_is_cloexec(p.slave));
    CHECK(isatty(p.master) && isatty(p.slave));
    CHECK(strncmp(p.name, "/dev/pts/", 9) == 0);
    for (d = p.name + 9; *d; d++)
        CHECK(*d >= '0' && *d <= '9');
    CHECK(d > p.name + 9);
    /* The name is the slave's device. */
    CHECK_EQ(stat(p.name, &a), 0);
    CHECK_EQ(fstat(p.slave, &b), 0);
    CHECK(S_ISCHR(a.st_mode));
    CHECK_EQ(a.st_rdev, b.st_rdev);
    pt_winsize(p.slave, 24, 80);
    pt_winsize(p.master, 24, 80);
    CHECK((pt_lflag(p.slave) & (ECHO | ICANON)) == (ECHO | ICANON)); /* cooked */

    /* Slave output reaches the master with the terminal's \n -> \r\n. */
    CHECK_EQ(write(p.slave, "ab\n", 3), 3);
    pt_read_until(&p, buf, sizeof buf, &len, "ab\r\n", __LINE__);
    CHECK_STREQ(buf, "ab\r\n");
    /* Master input reaches the slave a line at a time, echoed back to the master. */
    CHECK_ERR(ipc_fd_write_all(p.master, "xy\n", 3, 5 * SEC, NULL), 3);
    CHECK_ERR(ipc_fd_read_some(p.slave, buf, sizeof buf, 5 * SEC), 3);
    CHECK(memcmp(buf, "xy\n", 3) == 0);
    len = 0;
    buf[0] = 0;
    pt_read_until(&p, buf, sizeof buf, &len, "xy\r\n", __LINE__);
    CHECK_STREQ(buf, "xy\r\n");

    CHECK_ERR(ipc_pty_close(&p), 0);
    CHECK_EQ(p.master, -1);
    CHECK_EQ(p.slave, -1);
    CHECK_EQ(th_fd_count(), fds);
    CHECK_ERR(ipc_pty_close(&p), 0); /* twice is harmless */
    CHECK_EQ(th_fd_count(), fds);
}

static void pt_no_ctty_child(void *arg) {
    ipc_pty p;
    int fd;
    (void)arg;
    CHECK(setsid() > 0); /* a session leader without a terminal would grab one on open */
    CHECK_ERR(ipc_pty_open(&p, NULL), 0);
    fd = open("/dev/tty", O_RDWR | O_CLOEXEC);
    if (fd >= 0) th_fail(__FILE__, __LINE__, "ipc_pty_open gave this process a terminal");
    CHECK_EQ(errno, ENXIO);
    CHECK_ERR(ipc_pty_close(&p), 0);
}

TEST(pty_open_no_ctty) {
    pid_t pid = th_spawn(pt_no_ctty_child, NULL);
    CHECK(pid > 0);
    CHECK_EQ(th_join(pid, 10000), 0);
}

TEST(pty_open_size) {
    ipc_pty_opts o;
    ipc_pty p;
    memset(&o, 0, sizeof o);
    o.rows = 50;
    o.cols = 132;
    CHECK_ERR(ipc_pty_open(&p, &o), 0);
    pt_winsize(p.slave, 50, 132);
    pt_winsize(p.master, 50, 132);
    /* Either end sets it for both. */
    CHECK_ERR(ipc_pty_set_size(p.master, 10, 20), 0);
    pt_winsize(p.slave, 10, 20);
    CHECK_ERR(ipc_pty_set_size(p.slave, 300, 1000), 0);
    pt_winsize(p.master, 300, 1000);
    CHECK_ERR(ipc_pty_close(&p), 0);

    o.rows = 30; /* each zero field takes its default alone */
    o.cols = 0;
    CHECK_ERR(ipc_pty_open(&p, &o), 0);
    pt_winsize(p.slave, 30, 80);
    CHECK_ERR(ipc_pty_close(&p), 0);
    o.rows = 0;
    o.cols = 100;
    CHECK_ERR(ipc_pty_open(&p, &o), 0);
    pt_winsize(p.slave, 24, 100);
    CHECK_ERR(ipc_pty_close(&p), 0);
    memset(&o, 0, sizeof o); /* a zeroed struct is NULL's defaults */
    CHECK_ERR(ipc_pty_open(&p, &o), 0);
    pt_winsize(p.slave, 24, 80);
    CHECK((pt_lflag(p.slave) & ICANON) != 0);
    CHECK_ERR(ipc_pty_close(&p), 0);
}

/* In raw mode bytes pass as they are: no echo, no line buffering, no \r added. */
static void pt_check_raw(ipc_pty *p) {
    char buf[16];
    size_t len = 0;
    CHECK_EQ(pt_lflag(p->slave) & (ECHO | ICANON | ISIG), 0);
    CHECK_EQ(pt_oflag(p->slave) & OPOST, 0);
    CHECK_EQ(write(p->slave, "a\nb", 3), 3);
    buf[0] = 0;
    pt_read_until(p, buf, sizeof buf, &len, "a\nb", __LINE__);
    CHECK_STREQ(buf, "a\nb");
    /* Input is readable at once, without a newline, and nothing is echoed. */
    CHECK_ERR(ipc_fd_write_all(p->master, "q", 1, 5 * SEC, NULL), 1);
    CHECK_ERR(ipc_fd_read_some(p->slave, buf, sizeof buf, 5 * SEC), 1);
    CHECK_EQ(buf[0], 'q');
    CHECK_TIMED(ipc_pty_read(p, buf, sizeof buf, 50 * MS), -ETIMEDOUT, 50);
}

TEST(pty_open_raw) {
    ipc_pty_opts o;
    ipc_pty p;
    memset(&o, 0, sizeof o);
    o.raw = 1;
    CHECK_ERR(ipc_pty_open(&p, &o), 0);
    pt_winsize(p.slave, 24, 80);
    pt_check_raw(&p);
    CHECK_ERR(ipc_pty_close(&p), 0);

    CHECK_ERR(ipc_pty_open(&p, NULL), 0);
    CHECK_ERR(ipc_pty_set_raw(p.slave), 0);
    pt_check_raw(&p);
    CHECK_ERR(ipc_pty_close(&p), 0);

    CHECK_ERR(ipc_pty_open(&p, NULL), 0);
    CHECK_ERR(ipc_pty_set_raw(p.master), 0); /* the master's termios are the slave's */
    pt_check_raw(&p);
    CHECK_ERR(ipc_pty_close(&p), 0);
}

/* ---- running programs ---- */

/* The test: a program that asks its terminal for the size sees ours. */
static void pt_stty(const ipc_pty_opts *o, const char *want) {
    char buf[256];
    size_t len = 0;
    ipc_proc proc;
    ipc_pty p;
    int fds = th_fd_count();
    buf[0] = 0;
    CHECK_ERR(ipc_pty_open(&p, o), 0);
    pt_sh(&p, &proc, "stty size; echo hi");
    pt_read_end(&p, buf, sizeof buf, &len, __LINE__);
    CHECK_STREQ(buf, want);
    pt_exit_code(&proc, 0);
    CHECK_ERR(ipc_pty_read(&p, buf, sizeof buf, 0), -EPIPE); /* the end stays the end */
    CHECK_ERR(ipc_pty_close(&p), 0);
    CHECK_EQ(th_fd_count(), fds);
    CHECK(th_no_children());
}

TEST(pty_spawn_stty_size) {
    ipc_pty_opts o;
    memset(&o, 0, sizeof o);
    pt_stty(NULL, "24 80\r\nhi\r\n");
    o.rows = 24;
    o.cols = 80;
    pt_stty(&o, "24 80\r\nhi\r\n");
    o.rows = 40;
    o.cols = 100;
    pt_stty(&o, "40 100\r\nhi\r\n");
    o.rows = 7;
    o.cols = 333;
    pt_stty(&o, "7 333\r\nhi\r\n");
}

/* The program runs in its own session, with the pty as its controlling terminal and
   as stdin, stdout and stderr. */
TEST(pty_spawn_controlling_tty) {
    char buf[512], want[256];
    size_t len = 0;
    ipc_proc proc;
    ipc_pty p;
    buf[0] = 0;
    CHECK_ERR(ipc_pty_open(&p, NULL), 0);
    pt_sh(&p, &proc, "tty; tty <&1; tty <&2; true </dev/tty && echo ctty; echo ready; read x");
    CHECK(proc.in == -1 && proc.out == -1 && proc.err == -1);
    snprintf(want, sizeof want, "%s\r\n%s\r\n%s\r\nctty\r\nready\r\n", p.name, p.name, p.name);
    pt_read_until(&p, buf, sizeof buf, &len, "ready\r\n", __LINE__);
    CHECK_STREQ(buf, want);
    CHECK_EQ(getsid(proc.pid), proc.pid);
    CHECK_EQ(tcgetsid(p.master), proc.pid);
    CHECK_EQ(tcgetpgrp(p.master), proc.pid); /* its group is the terminal's foreground */
    CHECK(getsid(0) != proc.pid);
    CHECK_ERR(ipc_fd_write_all(p.master, "\n", 1, 5 * SEC, NULL), 1);
    pt_read_end(&p, buf, sizeof buf, &len, __LINE__);
    pt_exit_code(&proc, 0);
    CHECK_ERR(ipc_pty_close(&p), 0);
}

/* Lines typed into the master come back twice: the terminal's echo, then cat's copy. */
TEST(pty_spawn_cat) {
    char buf[4096], line[64], want[160];
    char *argv[2];
    size_t len = 0;
    ipc_proc proc;
    ipc_pty p;
    int i, fds = th_fd_count();
    argv[0] = (char *)"cat";
    argv[1] = NULL;
    CHECK_ERR(ipc_pty_open(&p, NULL), 0);
    CHECK_ERR(ipc_pty_spawn(&p, &proc, "/bin/cat", argv, NULL), 0);
    for (i = 0; i < 50; i++) {
        int n = snprintf(line, sizeof line, "line %d of the cat test\n", i);
        len = 0;
        buf[0] = 0;
        CHECK_ERR(ipc_fd_write_all(p.master, line, (size_t)n, 5 * SEC, NULL), n);
        line[n - 1] = 0;
        snprintf(want, sizeof want, "%s\r\n%s\r\n", line, line);
        pt_read_until(&p, buf, sizeof buf, &len, want, __LINE__);
        CHECK_STREQ(buf, want);
    }
    CHECK_ERR(ipc_fd_write_all(p.master, "\004", 1, 5 * SEC, NULL), 1); /* ^D: end of input */
    len = 0;
    buf[0] = 0;
    pt_read_end(&p, buf, sizeof buf, &len, __LINE__);
    pt_exit_code(&proc, 0);
    CHECK_ERR(ipc_pty_close(&p), 0);
    CHECK_EQ(th_fd_count(), fds);
}

TEST(pty_spawn_head) {
    char buf[256];
    char *argv[3];
    size_t len = 0;
    ipc_proc proc;
    ipc_pty p;
    argv[0] = (char *)"head";
    argv[1] = (char *)"-n1";
    argv[2] = NULL;
    buf[0] = 0;
    CHECK_ERR(ipc_pty_open(&p, NULL), 0);
    CHECK_ERR(ipc_pty_spawn(&p, &proc, "/usr/bin/head", argv, NULL), 0);
    CHECK_ERR(ipc_fd_write_all(p.master, "first\n", 6, 5 * SEC, NULL), 6);
    pt_read_end(&p, buf, sizeof buf, &len, __LINE__); /* head exits after one line */
    CHECK_STREQ(buf, "first\r\nfirst\r\n");
    pt_exit_code(&proc, 0);
    CHECK_ERR(ipc_pty_close(&p), 0);
}

TEST(pty_set_size_running) {
    char buf[512];
    size_t len = 0;
    ipc_proc proc;
    ipc_pty p;
    buf[0] = 0;
    CHECK_ERR(ipc_pty_open(&p, NULL), 0);
    pt_sh(&p, &proc, "trap 'echo winch' WINCH; stty size; read x; stty size");
    pt_read_until(&p, buf, sizeof buf, &len, "24 80\r\n", __LINE__);
    CHECK_ERR(ipc_pty_set_size(p.master, 33, 111), 0); /* the program gets SIGWINCH */
    CHECK_ERR(ipc_fd_write_all(p.master, "\n", 1, 5 * SEC, NULL), 1);
    pt_read_end(&p, buf, sizeof buf, &len, __LINE__);
    CHECK(strstr(buf, "\r\n33 111\r\n") != NULL);
    CHECK(strstr(buf, "winch\r\n") != NULL);
    CHECK(strstr(buf, "24 80") == buf); /* nothing before the first answer */
    pt_exit_code(&proc, 0);
    CHECK_ERR(ipc_pty_close(&p), 0);
}

/* Raw mode set through the master while cat runs: what we send comes back once, as sent. */
TEST(pty_set_raw_running) {
    char buf[64];
    char *argv[2];
    size_t len = 0;
    ipc_proc proc;
    ipc_pty p;
    int st;
    argv[0] = (char *)"cat";
    argv[1] = NULL;
    buf[0] = 0;
    CHECK_ERR(ipc_pty_open(&p, NULL), 0);
    CHECK_ERR(ipc_pty_spawn(&p, &proc, "/bin/cat", argv, NULL), 0);
    CHECK_ERR(ipc_pty_set_raw(p.master), 0);
    CHECK_EQ(pt_lflag(p.master) & (ECHO | ICANON), 0);
    CHECK_ERR(ipc_fd_write_all(p.master, "abc\n", 4, 5 * SEC, NULL), 4);
    pt_read_until(&p, buf, sizeof buf, &len, "abc\n", __LINE__);
    CHECK_STREQ(buf, "abc\n");
    CHECK_TIMED(ipc_pty_read(&p, buf, sizeof buf, 50 * MS), -ETIMEDOUT, 50); /* no echo */
    CHECK_ERR(ipc_fd_write_all(p.master, "\003\004", 2, 5 * SEC, NULL), 2); /* no signals, no EOF */
    len = 0;
    buf[0] = 0;
    pt_read_until(&p, buf, sizeof buf, &len, "\003\004", __LINE__);
    CHECK_ERR(ipc_proc_kill(&proc, SIGTERM), 0);
    st = ipc_proc_wait(&proc, 10 * SEC);
    CHECK_OK(st);
    CHECK(WIFSIGNALED(st) && WTERMSIG(st) == SIGTERM);
    CHECK_ERR(ipc_proc_close(&proc), 0);
    len = 0;
    pt_read_end(&p, buf, sizeof buf, &len, __LINE__);
    CHECK_ERR(ipc_pty_close(&p), 0);
}

TEST(pty_spawn_env_and_path) {
    char *argv[4], *envp[3];
    char buf[256];
    size_t len = 0;
    ipc_spawn_opts o;
    ipc_proc proc;
    ipc_pty p;
    pt_sh_argv(argv, "echo \"$IPCT_PTY\"; echo err >&2");
    envp[0] = (char *)"IPCT_PTY=forty two";
    envp[1] = (char *)"PATH=/usr/bin:/bin";
    envp[2] = NULL;
    memset(&o, 0, sizeof o);
    o.envp = envp;
    o.flags = IPC_SPAWN_PATH;
    o.out = IPC_STDIO_NULL; /* ignored: a pty program's stdio is the terminal */
    o.err = IPC_STDIO_NULL;
    buf[0] = 0;
    CHECK_ERR(ipc_pty_open(&p, NULL), 0);
    CHECK_ERR(ipc_pty_spawn(&p, &proc, "sh", argv, &o), 0);
    pt_read_end(&p, buf, sizeof buf, &len, __LINE__);
    CHECK_STREQ(buf, "forty two\r\nerr\r\n");
    pt_exit_code(&proc, 0);
    CHECK_ERR(ipc_pty_close(&p), 0);
}

/* IPC_SPAWN_PGROUP asks for what the new session gives anyway: the program leads its
   own process group. It must not make the spawn fail. */
TEST(pty_spawn_pgroup_flag) {
    char *argv[4];
    char buf[256];
    size_t len = 0;
    ipc_spawn_opts o;
    ipc_proc proc;
    ipc_pty p;
    pt_sh_argv(argv, "echo started; read x");
    memset(&o, 0, sizeof o);
    o.flags = IPC_SPAWN_PGROUP;
    buf[0] = 0;
    CHECK_ERR(ipc_pty_open(&p, NULL), 0);
    CHECK_ERR(ipc_pty_spawn(&p, &proc, "/bin/sh", argv, &o), 0);
    pt_read_until(&p, buf, sizeof buf, &len, "started\r\n", __LINE__);
    CHECK_EQ(getpgid(proc.pid), proc.pid);
    CHECK_EQ(getsid(proc.pid), proc.pid);
    {
        ipc_proc second; /* one program per terminal: it controls that session */
        CHECK_ERR(ipc_pty_spawn(&p, &second, "/bin/sh", argv, NULL), -EBUSY);
    }
    CHECK_ERR(ipc_fd_write_all(p.master, "\n", 1, 5 * SEC, NULL), 1);
    pt_read_end(&p, buf, sizeof buf, &len, __LINE__);
    pt_exit_code(&proc, 0);
    CHECK_ERR(ipc_pty_close(&p), 0);
}

/* Closing the master hangs the terminal up: the program gets SIGHUP, nothing is left
   running on a terminal nobody reads. */
TEST(pty_close_hangs_up) {
    char *argv[2];
    ipc_proc proc;
    ipc_pty p;
    int st;
    argv[0] = (char *)"cat";
    argv[1] = NULL;
    CHECK_ERR(ipc_pty_open(&p, NULL), 0);
    CHECK_ERR(ipc_pty_spawn(&p, &proc, "/bin/cat", argv, NULL), 0);
    CHECK_ERR(ipc_pty_close(&p), 0);
    st = ipc_proc_wait(&proc, 10 * SEC);
    CHECK_OK(st);
    if (!WIFSIGNALED(st) || WTERMSIG(st) != SIGHUP)
        th_fail(__FILE__, __LINE__, "status 0x%x, want SIGHUP", st);
    CHECK_ERR(ipc_proc_close(&proc), 0);
}

/* ---- reading: deadlines and the end ---- */

TEST(pty_read_timeouts) {
    char buf[16];
    ipc_pty p;
    CHECK_ERR(ipc_pty_open(&p, NULL), 0);
    CHECK_TIMED(ipc_pty_read(&p, buf, sizeof buf, 0), -EAGAIN, 0);
    CHECK_TIMED(ipc_pty_read(&p, buf, sizeof buf, 50 * MS), -ETIMEDOUT, 50);
    th_storm_start();
    CHECK_TIMED(ipc_pty_read(&p, buf, sizeof buf, 50 * MS), -ETIMEDOUT, 50);
    CHECK(th_storm_stop() > 10);
    CHECK_ERR(ipc_pty_read(&p, buf, sizeof buf, -2), -EINVAL);
    CHECK_ERR(ipc_pty_read(&p, buf, 0, 0), -EINVAL);
    /* Data present: returned at once, even with a zero timeout. */
    CHECK_EQ(write(p.slave, "z", 1), 1);
    CHECK(ipc_fd_wait(p.master, POLLIN, 5 * SEC) & POLLIN);
    CHECK_ERR(ipc_pty_read(&p, buf, sizeof buf, 0), 1);
    CHECK_EQ(buf[0], 'z');
    /* The slave still open here: no end, only a timeout. */
    CHECK_ERR(ipc_pty_read(&p, buf, sizeof buf, 0), -EAGAIN);
    CHECK_ERR(ipc_pty_close(&p), 0);
}

/* Output written before the program exited is all delivered, then the end. */
TEST(pty_read_drains_after_exit) {
    char buf[256];
    size_t len = 0;
    ipc_proc proc;
    ipc_pty p;
    buf[0] = 0;
    CHECK_ERR(ipc_pty_open(&p, NULL), 0);
    pt_sh(&p, &proc, "echo one; echo two");
    pt_exit_code(&proc, 0); /* gone before we read a byte */
    pt_read_end(&p, buf, sizeof buf, &len, __LINE__);
    CHECK_STREQ(buf, "one\r\ntwo\r\n");
    CHECK_ERR(ipc_pty_read(&p, buf, sizeof buf, 0), -EPIPE);
    CHECK_ERR(ipc_pty_read(&p, buf, sizeof buf, 50 * MS), -EPIPE);
    CHECK_ERR(ipc_pty_read(&p, buf, sizeof buf, IPC_FOREVER), -EPIPE);
    CHECK_ERR(ipc_pty_close(&p), 0);
}

/* Much more than the terminal buffers: every line arrives, in order, up to the last. */
TEST(pty_read_big_output) {
    size_t cap = 1 << 20, len = 0, off = 0;
    char *buf = (char *)malloc(cap), want[32];
    char *argv[4];
    ipc_proc proc;
    ipc_pty p;
    int i;
    CHECK(buf != NULL);
    buf[0] = 0;
    argv[0] = (char *)"seq";
    argv[1] = (char *)"1";
    argv[2] = (char *)"20000";
    argv[3] = NULL;
    CHECK_ERR(ipc_pty_open(&p, NULL), 0);
    CHECK_ERR(ipc_pty_spawn(&p, &proc, "/usr/bin/seq", argv, NULL), 0);
    pt_read_end(&p, buf, cap, &len, __LINE__);
    for (i = 1; i <= 20000; i++) {
        size_t n = (size_t)snprintf(want, sizeof want, "%d\r\n", i);
        if (off + n > len || memcmp(buf + off, want, n) != 0)
            th_fail(__FILE__, __LINE__, "line %d missing at byte %zu of %zu", i, off, len);
        off += n;
    }
    CHECK_EQ(off, len);
    pt_exit_code(&proc, 0);
    CHECK_ERR(ipc_pty_close(&p), 0);
    free(buf);
}

/* ---- bad arguments ---- */

TEST(pty_bad_args) {
    char *argv[4], *noargs[1];
    char buf[64];
    size_t len = 0;
    ipc_spawn_opts o;
    ipc_proc proc;
    ipc_pty p;
    ipc_pipe pp;
    int fds = th_fd_count(), open_fds;
    pt_sh_argv(argv, "echo ok");
    noargs[0] = NULL;

    CHECK_ERR(ipc_pty_open(NULL, NULL), -EINVAL);
    CHECK_ERR(ipc_pty_spawn(NULL, &proc, "/bin/sh", argv, NULL), -EINVAL);
    CHECK_ERR(ipc_pty_read(NULL, buf, sizeof buf, 0), -EINVAL);
    CHECK_ERR(ipc_pty_close(NULL), -EINVAL);
    CHECK_ERR(ipc_pty_set_size(-1, 24, 80), -EBADF);
    CHECK_ERR(ipc_pty_set_raw(-1), -EBADF);
    CHECK_ERR(ipc_pipe_open(&pp, NULL), 0); /* not a terminal */
    CHECK_ERR(ipc_pty_set_size(pp.rfd, 24, 80), -ENOTTY);
    CHECK_ERR(ipc_pty_set_raw(pp.wfd), -ENOTTY);
    CHECK_ERR(ipc_pipe_close(&pp), 0);
    CHECK_EQ(th_fd_count(), fds);

    /* Failed spawns leave the pty as it was (slave still ours), nothing open or running. */
    CHECK_ERR(ipc_pty_open(&p, NULL), 0);
    open_fds = th_fd_count();
    CHECK_ERR(ipc_pty_spawn(&p, NULL, "/bin/sh", argv, NULL), -EINVAL);
    CHECK_ERR(ipc_pty_spawn(&p, &proc, NULL, argv, NULL), -EINVAL);
    CHECK_ERR(ipc_pty_spawn(&p, &proc, "/bin/sh", NULL, NULL), -EINVAL);
    CHECK_ERR(ipc_pty_spawn(&p, &proc, "/bin/sh", noargs, NULL), -EINVAL);
    memset(&o, 0, sizeof o);
    o.flags = 0x100;
    CHECK_ERR(ipc_pty_spawn(&p, &proc, "/bin/sh", argv, &o), -EINVAL);
    CHECK_ERR(ipc_pty_spawn(&p, &proc, "/nonexistent-ipct/prog", argv, NULL), -ENOENT);
    CHECK_ERR(ipc_pty_spawn(&p, &proc, "/etc/passwd", argv, NULL), -EACCES);
    if (!th_under_emulator()) { /* qemu-user: a failed PATH search shows only as status 127 */
        o.flags = IPC_SPAWN_PATH;
        CHECK_ERR(ipc_pty_spawn(&p, &proc, "ipct-no-such-program", argv, &o), -ENOENT);
    }
    CHECK(p.slave >= 0);
    CHECK_EQ(th_fd_count(), open_fds);
    CHECK(th_no_children());
    /* and it still works */
    CHECK_ERR(ipc_pty_spawn(&p, &proc, "/bin/sh", argv, NULL), 0);
    buf[0] = 0;
    pt_read_end(&p, buf, sizeof buf, &len, __LINE__);
    CHECK_STREQ(buf, "ok\r\n");
    pt_exit_code(&proc, 0);

    CHECK_ERR(ipc_pty_close(&p), 0);
    CHECK_EQ(th_fd_count(), fds);
    CHECK_ERR(ipc_pty_spawn(&p, &proc, "/bin/sh", argv, NULL), -EINVAL); /* closed */
    CHECK_ERR(ipc_pty_read(&p, buf, sizeof buf, 0), -EBADF);
    CHECK_ERR(ipc_pty_close(&p), 0);
    CHECK_EQ(th_fd_count(), fds);
    CHECK(th_no_children());
}

TEST(pty_no_fd_leak) {
    int fds = th_fd_count(), i;
    ipc_pty_opts o;
    ipc_pty p;
    memset(&o, 0, sizeof o);
    for (i = 0; i < 64; i++) {
        o.raw = i & 1;
        o.rows = (unsigned short)(i + 1);
        CHECK_ERR(ipc_pty_open(&p, &o), 0);
        CHECK_ERR(ipc_pty_close(&p), 0);
    }
    CHECK_EQ(th_fd_count(), fds);
}
