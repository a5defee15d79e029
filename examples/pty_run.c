/* examples/pty_run.c - run a program on a pseudoterminal and collect what it prints.

   Some programs behave differently, or refuse to run, when their output is not a
   terminal: they buffer, drop colours and progress bars, or want a tty for a password.
   A pseudoterminal is a terminal made in software: the program gets the slave side as
   its stdin, stdout, stderr and controlling terminal, and we hold the master side.

   ipc_pty_open makes the pair with a 30 x 100 window; ipc_pty_spawn starts the program in
   a new session on the slave. By default that is
       /bin/sh -c 'stty size; tty; echo hello from a terminal'
   which shows that the program does see a terminal: `stty size` prints the window size we
   set, `tty` the slave's name. Any other command can be given instead:
       ./pty_run ls --color=auto      ./pty_run python3 -c 'import sys; print(sys.stdout.isatty())'
   We print its output as it arrives (ipc_pty_read, one deadline for the whole run), until
   -EPIPE: every process that had the terminal open has finished. Then ipc_proc_wait gives
   the exit status. The terminal turns each "\n" the program writes into "\r\n" (the ONLCR
   output setting); the "\r" is dropped here before printing.

   Build and run:  make demo   (or: cc -I. examples/pty_run.c -pthread && ./a.out [command...]) */
#define IPC_IMPLEMENTATION
#include "ipc.h"

#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>

#define SECOND 1000000000LL

int main(int argc, char **argv) {
    char *default_argv[] = {"sh", "-c", "stty size; tty; echo hello from a terminal", NULL};
    char *const *cmd = argc > 1 ? argv + 1 : default_argv;
    const char *file = argc > 1 ? argv[1] : "/bin/sh";
    ipc_spawn_opts sopts = {0};
    ipc_pty_opts popts = {0};
    char out[8192], buf[1024], last = '\n';
    size_t len = 0;
    int64_t deadline;
    ipc_proc proc;
    ipc_pty pty;
    ssize_t n;
    int r, st, ok;

    popts.rows = 30;
    popts.cols = 100;
    r = ipc_pty_open(&pty, &popts);
    if (r < 0) {
        fprintf(stderr, "ipc_pty_open: %s\n", ipc_strerror(r));
        return 1;
    }
    printf("pty_run: terminal %s (master fd %d), window %u x %u\n", pty.name, pty.master,
           popts.rows, popts.cols);

    sopts.flags = IPC_SPAWN_PATH; /* a command given by name is looked up on PATH */
    r = ipc_pty_spawn(&pty, &proc, file, cmd, &sopts);
    if (r < 0) {
        fprintf(stderr, "ipc_pty_spawn(%s): %s\n", file, ipc_strerror(r));
        ipc_pty_close(&pty);
        return 1;
    }
    printf("pty_run: started %s as pid %d; its output:\n", file, (int)proc.pid);
    fflush(stdout);

    deadline = ipc_deadline_make(10 * SECOND);
    while ((n = ipc_pty_read(&pty, buf, sizeof buf, ipc_deadline_left(deadline))) > 0) {
        ssize_t i;
        for (i = 0; i < n; i++) { /* print it, without the terminal's \r */
            if (buf[i] == '\r') continue;
            putchar(last = buf[i]);
            if (len < sizeof out - 1) out[len++] = buf[i]; /* kept for the check below */
        }
        fflush(stdout);
    }
    out[len] = '\0';
    if (last != '\n') putchar('\n'); /* the program's last line had no end */
    /* For the default command: did it see our window size and our terminal? */
    ok = strstr(out, "30 100\n") && strstr(out, pty.name) && strstr(out, "hello from a terminal\n");
    /* -EPIPE: the terminal has no one left on the other side, the normal end. -ETIMEDOUT,
       or -EAGAIN once the deadline has passed: the program is still running. */
    if (n != -EPIPE) {
        fprintf(stderr, "pty_run: ipc_pty_read: %s; stopping the program\n", ipc_strerror((int)n));
        ipc_proc_kill(&proc, SIGKILL);
    }

    st = ipc_proc_wait(&proc, 5 * SECOND);
    ipc_proc_close(&proc);
    ipc_pty_close(&pty);
    if (st < 0) {
        fprintf(stderr, "pty_run: ipc_proc_wait: %s\n", ipc_strerror(st));
        return 1;
    }
    if (WIFEXITED(st))
        printf("pty_run: exited with status %d\n", WEXITSTATUS(st));
    else
        printf("pty_run: killed by signal %d\n", WTERMSIG(st));
    if (n != -EPIPE || !WIFEXITED(st)) return 1;
    if (argc > 1) return WEXITSTATUS(st); /* the command's own verdict */
    if (!ok) fprintf(stderr, "pty_run: unexpected output\n");
    return ok ? WEXITSTATUS(st) : 1;
}
