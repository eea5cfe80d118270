"""Reads the running app as a screen reader does: its AT-SPI tree, through pyatspi.

pyatspi is a Debian package of the system Python, not of the venv, so tests/test_accessibility.py runs
this file with /usr/bin/python3. Usage: atspi_walker.py APP_NAME [ACTION UNTIL]... It waits for the app
and for its photo counts and dumps the tree ("before"); then, for each ACTION, invokes the menu item of that
name through its AT-SPI action (as Orca would), waits until some node's text contains UNTIL, and dumps the
tree again (under "after", by ACTION); and it lists what the app announced meanwhile (notifications shown,
which Orca reads out; AT-SPI announcement events, if any).
Prints one JSON object; exits 2 when the app or the awaited text never shows up.
"""

import json
import sys
import time

import pyatspi
from gi.repository import GLib

ANNOUNCED = []


def node_info(node, depth):
    """What a screen reader gets from one node: role, name, description, states, any text it holds, where it
    is on the screen."""
    states = node.getState()
    text = ""
    try:
        iface = node.queryText()
        text = iface.getText(0, iface.characterCount)
    except NotImplementedError:
        pass
    labels = [relation.getTarget(i).name for relation in node.getRelationSet()
              if relation.getRelationType() == pyatspi.RELATION_LABELLED_BY for i in range(relation.getNTargets())]
    try:
        box = node.queryComponent().getExtents(pyatspi.DESKTOP_COORDS)
        extents = [box.x, box.y, box.width, box.height]
    except NotImplementedError:
        extents = None
    return {"depth": depth, "role": node.getRoleName(), "name": node.name or "", "description": node.description or "",
            "text": text, "labelled_by": labels, "extents": extents,
            "states": sorted(pyatspi.stateToString(s) for s in states.getStates())}


def walk(app):
    """Every node under the app, depth first (a tree of some hundred nodes: well under a second)."""
    out, stack = [], [(app, 0)]
    while stack:
        node, depth = stack.pop()
        try:
            out.append(node_info(node, depth))
            children = [node.getChildAtIndex(i) for i in range(node.childCount)]
        except Exception:  # a node gone while walking (a word button replaced): skip it
            continue
        stack.extend((child, depth + 1) for child in reversed(children) if child is not None)
    return out


def notification_shown(event):
    """A notification showing: what Orca reads out as it shows (the app's announcements)."""
    try:
        if event.detail1 and event.source.getRole() == pyatspi.ROLE_NOTIFICATION:
            ANNOUNCED.append(event.source.name or "")
    except Exception:  # gone meanwhile
        pass


def find_app(name, timeout):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        desktop = pyatspi.Registry.getDesktop(0)
        for i in range(desktop.childCount):
            app = desktop.getChildAtIndex(i)
            if app is not None and app.name == name:
                return app
        time.sleep(0.2)
    return None


def pause(seconds):
    """Wait, taking in events meanwhile (they are delivered while the main context turns)."""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        GLib.MainContext.default().iteration(False)
        time.sleep(0.01)


def wait_for(app, predicate, timeout):
    """The tree once ``predicate`` holds for one of its nodes, or None after ``timeout`` seconds. Walked
    again half a second later: a walk is not atomic, and its first nodes may predate the change."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if any(predicate(n) for n in walk(app)):
            pause(0.5)
            return walk(app)
        pause(0.3)
    return None


def invoke(app, name):
    """Do the first action of the menu item called ``name`` (a menu item need not be on screen for this)."""
    found = pyatspi.findDescendant(app, lambda n: n.getRoleName() == "menu item" and n.name.replace("&", "") == name)
    if found is None:
        return False
    found.queryAction().doAction(0)
    return True


def main():
    app_name, steps = sys.argv[1], sys.argv[2:]
    pyatspi.Registry.registerEventListener(lambda event: ANNOUNCED.append(str(event.any_data)), "object:announcement")
    pyatspi.Registry.registerEventListener(notification_shown, "object:state-changed:showing")
    app = find_app(app_name, 20)
    if app is None:
        print(json.dumps({"error": f"no application {app_name!r} on the AT-SPI bus"}))
        return 2
    before = wait_for(app, lambda n: " photos" in n["text"] or " photos" in n["name"], 20)
    if before is None:
        print(json.dumps({"error": "no photo counts showed up", "tree": walk(app)}))
        return 2
    after = {}
    for action, until in zip(steps[::2], steps[1::2]):
        if not invoke(app, action):
            print(json.dumps({"error": f"no menu item {action!r}", "before": before}))
            return 2
        after[action] = wait_for(app, lambda n: until in n["text"] or until in n["name"], 60)
        if after[action] is None:
            print(json.dumps({"error": f"{until!r} never showed up after {action!r}", "tree": walk(app)}))
            return 2
    print(json.dumps({"before": before, "after": after, "announced": ANNOUNCED}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
