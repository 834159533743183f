/* A portal client for the tests, run inside the sandbox: calls a portal
 * method that answers through a Request object, waits for the answer (the
 * Response signal, sent to this connection alone) and prints "response N"
 * and each URI it returned ("uri U"). Usage: request INTERFACE METHOD
 * [TITLE]: with a TITLE, the method takes (parent_window, title, options),
 * as FileChooser's do; otherwise (options). */
#include <gio/gio.h>
#include <stdio.h>

static GMainLoop *loop;
static int code = -1;

static void on_response(GDBusConnection *c, const char *sender, const char *path,
                        const char *iface, const char *name, GVariant *params, gpointer data) {
    guint32 r;
    GVariant *results = NULL;
    g_variant_get(params, "(u@a{sv})", &r, &results);
    code = (int)r;
    const char **uris = NULL;
    if (results && g_variant_lookup(results, "uris", "^a&s", &uris)) {
        for (const char **u = uris; *u; u++) printf("uri %s\n", *u);
    }
    g_main_loop_quit(loop);
}

static gboolean give_up(gpointer data) {
    g_main_loop_quit(loop);
    return G_SOURCE_REMOVE;
}

int main(int argc, char **argv) {
    GError *e = NULL;
    if (argc != 3 && argc != 4) return 2;
    GDBusConnection *c = g_bus_get_sync(G_BUS_TYPE_SESSION, NULL, &e);
    if (!c) { printf("bus: %s\n", e->message); return 1; }
    /* The request's object path follows from the caller's name and token. */
    char *me = g_strdup(g_dbus_connection_get_unique_name(c) + 1);
    for (char *p = me; *p; p++) if (*p == '.') *p = '_';
    char *path = g_strdup_printf("/org/freedesktop/portal/desktop/request/%s/berthtest", me);
    loop = g_main_loop_new(NULL, FALSE);
    g_dbus_connection_signal_subscribe(c, "org.freedesktop.portal.Desktop",
        "org.freedesktop.portal.Request", "Response", path, NULL,
        G_DBUS_SIGNAL_FLAGS_NONE, on_response, NULL, NULL);
    GVariantBuilder b;
    g_variant_builder_init(&b, G_VARIANT_TYPE_VARDICT);
    g_variant_builder_add(&b, "{sv}", "handle_token", g_variant_new_string("berthtest"));
    GVariant *r = g_dbus_connection_call_sync(c, "org.freedesktop.portal.Desktop",
        "/org/freedesktop/portal/desktop", argv[1], argv[2],
        argc == 4 ? g_variant_new("(ssa{sv})", "", argv[3], &b) : g_variant_new("(a{sv})", &b),
        NULL, G_DBUS_CALL_FLAGS_NONE, -1, NULL, &e);
    if (!r) { printf("call: %s\n", e->message); return 1; }
    g_timeout_add_seconds(10, give_up, NULL);
    g_main_loop_run(loop);
    printf("response %d\n", code);
    fflush(stdout);
    return code == 0 ? 0 : 1;
}
