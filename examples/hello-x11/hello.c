/* A tiny Xlib app for berth's author workflow: opens a window titled
 * "Hello from berth", draws a line of text, and exits on a key press, on
 * window close, or after N seconds when started as `hello-x11 N`. */
#include <X11/Xlib.h>
#include <X11/Xutil.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/select.h>

int main(int argc, char **argv) {
    Display *d = XOpenDisplay(NULL);
    if (!d) {
        fprintf(stderr, "hello-x11: cannot open display %s\n", getenv("DISPLAY") ? getenv("DISPLAY") : "(unset)");
        return 1;
    }
    int s = DefaultScreen(d);
    Window w = XCreateSimpleWindow(d, RootWindow(d, s), 10, 10, 320, 120, 1,
                                   BlackPixel(d, s), WhitePixel(d, s));
    XStoreName(d, w, "Hello from berth");
    Atom del = XInternAtom(d, "WM_DELETE_WINDOW", False);
    XSetWMProtocols(d, w, &del, 1);
    XSelectInput(d, w, ExposureMask | KeyPressMask);
    XMapWindow(d, w);
    XFlush(d);
    printf("hello-x11: window mapped\n");
    fflush(stdout);

    const char *msg = "Hello from a berth sandbox";
    int timeout = argc > 1 ? atoi(argv[1]) : 0;
    int fd = ConnectionNumber(d);
    for (;;) {
        while (XPending(d)) {
            XEvent e;
            XNextEvent(d, &e);
            if (e.type == Expose)
                XDrawString(d, w, DefaultGC(d, s), 20, 60, msg, (int)strlen(msg));
            if (e.type == KeyPress)
                goto out;
            if (e.type == ClientMessage && (Atom)e.xclient.data.l[0] == del)
                goto out;
        }
        fd_set fds;
        FD_ZERO(&fds);
        FD_SET(fd, &fds);
        struct timeval tv = {timeout > 0 ? timeout : 3600, 0};
        if (select(fd + 1, &fds, NULL, NULL, &tv) == 0 && timeout > 0)
            break;
    }
out:
    XCloseDisplay(d);
    return 0;
}
