"""Run a command on a new pseudo-terminal of COLS x ROWS; copy its output to stdout as
bytes, and stdin to the terminal (so a test can type Ctrl-C, b'\\x03'). SIGUSR1 resizes
the terminal to COLS2 columns (the command gets SIGWINCH). Exits with the command's
status (128 + signal if it was killed).

usage: run-on-pty.py COLS ROWS COLS2 CMD [ARG...]
"""
import fcntl, os, pty, select, signal, struct, sys, termios

cols, rows, cols2 = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
argv = sys.argv[4:]


def winsize(fd, c):
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack('HHHH', rows, c, 0, 0))


pid, master = pty.fork()
if pid == 0:
    winsize(0, cols)  # before exec: the command sees its width from the start
    os.execvp(argv[0], argv)

signal.signal(signal.SIGUSR1, lambda *_: winsize(master, cols2))
out = sys.stdout.buffer
watch = [master, 0]
while True:
    try:
        ready, _, _ = select.select(watch, [], [])
    except InterruptedError:
        continue
    if master in ready:
        try:
            data = os.read(master, 65536)
        except OSError:  # EIO: the command and everything it started closed the terminal
            data = b''
        if not data:
            break
        out.write(data)
        out.flush()
    if 0 in ready:
        data = os.read(0, 1024)
        if data:
            os.write(master, data)
        else:
            watch.remove(0)
_, status = os.waitpid(pid, 0)
sys.exit(os.WEXITSTATUS(status) if os.WIFEXITED(status) else 128 + os.WTERMSIG(status))
