#!/usr/bin/env python3
"""Drive a GTK window through the accessibility tree (AT-SPI), as a screen
reader or an assistive tool would: read what it shows, press its buttons,
flip its switches. Used by crates/gui/tests/gui.rs.

Usage: a11y.py PID names            every accessible name, as JSON
       a11y.py PID wait TEXT [SECS] until some name equals TEXT
       a11y.py PID wait-part TEXT   until some name contains TEXT
       a11y.py PID click NAME [N]   the button named NAME (the Nth, -1: last)
       a11y.py PID click-part TEXT [N]  the button whose name contains TEXT
       a11y.py PID toggle NAME      the switch named NAME
       a11y.py PID state NAME       "on" or "off"
       a11y.py PID type NAME TEXT   put TEXT into the entry named NAME
PID 0 is whichever berth-gui is on this session's accessibility bus.
"""
import json
import sys
import time

import pyatspi


def app_of(pid):
    desktop = pyatspi.Registry.getDesktop(0)
    for i in range(desktop.childCount):
        app = desktop.getChildAtIndex(i)
        try:
            if app is None:
                continue
            if app.get_process_id() == pid or (pid == 0 and app.name == "berth-gui"):
                return app
        except Exception:
            continue
    return None


def walk(acc, depth=0):
    if acc is None or depth > 60:
        return
    yield acc
    try:
        n = acc.childCount
    except Exception:
        return
    for i in range(n):
        try:
            child = acc.getChildAtIndex(i)
        except Exception:
            continue
        yield from walk(child, depth + 1)


def objects(pid):
    app = app_of(pid)
    return list(walk(app)) if app is not None else []


def names(pid):
    out = []
    for a in objects(pid):
        try:
            if a.name:
                out.append({"name": a.name, "role": a.getRoleName()})
        except Exception:
            pass
    return out


def find(pid, name, roles, timeout=20.0, nth=0, part=False):
    end = time.time() + timeout
    while True:
        found = []
        for a in objects(pid):
            try:
                if (name in a.name if part else a.name == name) and (not roles or a.getRoleName() in roles):
                    found.append(a)
            except Exception:
                pass
        # What is on screen, when some of it is (a dialog may hold hidden
        # copies of its buttons for another layout).
        showing = [a for a in found if a.getState().contains(pyatspi.STATE_SHOWING)]
        found = showing or found
        if found and (-len(found) <= nth < len(found)):
            return found[nth]
        if time.time() > end:
            sys.exit(f"no {'/'.join(roles) or 'object'} named {name!r}; the window shows: "
                     + json.dumps(names(pid)))
        time.sleep(0.2)


def act(acc, wanted):
    action = acc.queryAction()
    have = [action.getName(i) for i in range(action.nActions)]
    for i, n in enumerate(have):
        if n in wanted:
            action.doAction(i)
            return
    sys.exit(f"{acc.name!r} has no action {wanted}; it has {have}")


def main():
    pid, cmd, args = int(sys.argv[1]), sys.argv[2], sys.argv[3:]
    if cmd == "names":
        print(json.dumps(names(pid)))
    elif cmd == "wait":
        find(pid, args[0], [], float(args[1]) if len(args) > 1 else 20.0)
    elif cmd == "wait-part":
        find(pid, args[0], [], float(args[1]) if len(args) > 1 else 20.0, part=True)
    elif cmd == "click":
        nth = int(args[1]) if len(args) > 1 else 0
        act(find(pid, args[0], ["push button", "button"], nth=nth), ["click", "activate", "press"])
    elif cmd == "click-part":
        nth = int(args[1]) if len(args) > 1 else 0
        act(find(pid, args[0], ["push button", "button"], nth=nth, part=True),
            ["click", "activate", "press"])
    elif cmd == "toggle":
        act(find(pid, args[0], ["switch", "toggle button", "check box"]),
            ["toggle", "click", "activate", "press"])
    elif cmd == "state":
        a = find(pid, args[0], ["switch", "toggle button", "check box"])
        s = a.getState()
        on = s.contains(pyatspi.STATE_CHECKED) or s.contains(pyatspi.STATE_PRESSED)
        print("on" if on else "off")
    elif cmd == "type":
        a = find(pid, args[0], ["entry", "text"])
        a.queryEditableText().setTextContents(args[1])
    else:
        sys.exit(f"unknown command {cmd}")


if __name__ == "__main__":
    main()
