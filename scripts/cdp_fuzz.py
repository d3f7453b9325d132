#!/usr/bin/env python3
"""Fuzzes a session's CDP passthrough with what an attacker would send instead of a method name.

Usage: cdp_fuzz.py CDP_URL API_KEY [CASES]

Every browser-level or host-reaching method (closing or crashing the browser, exposing the
protocol to pages, reading files, binding ports) is sent many times over, each time disguised:
characters escaped as JSON \\uXXXX (any subset, any case of hex), duplicated "method" keys in
both orders, whitespace, case changes, NUL and other control characters, prefixes and suffixes,
non-string and nested values, huge ids, binary frames. The passthrough must answer each with
its own refusal, or (for a disguise that is no real method of an allowed domain, such as
"Page.crashX") be forwarded and rejected by the browser as unknown; never run. Binary frames
close the socket. A duplicated key whose last value is harmless may be forwarded as that
harmless method. Afterwards the browser must still be alive.
Exits 1 on the first violation. Deterministic for a given seed (FUZZ_SEED).
"""

import json
import os
import random
import sys

from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

DANGEROUS = [
    ("Browser.close", {}),
    ("Browser.crash", {}),
    ("Browser.crashGpuProcess", {}),
    ("Browser.getBrowserCommandLine", {}),
    ("Browser.executeBrowserCommand", {"commandId": "openTabSearch"}),
    ("Page.crash", {}),
    ("Target.exposeDevToolsProtocol", {"targetId": "x"}),
    ("Target.sendMessageToTarget", {"message": "{}"}),
    ("Target.setRemoteLocations", {"locations": [{"host": "127.0.0.1", "port": 9}]}),
    ("Target.createTarget", {"url": "file:///etc/passwd"}),
    ("Target.createTarget", {"url": "chrome://version"}),
    ("Page.navigate", {"url": "file:///etc/passwd"}),
    ("Network.loadNetworkResource", {"url": "file:///etc/passwd"}),
    ("DOM.setFileInputFiles", {"files": ["/etc/passwd"], "backendNodeId": 1}),
    ("Tethering.bind", {"port": 9333}),
    ("SystemInfo.getProcessInfo", {}),
    ("Extensions.loadUnpacked", {"path": "/tmp"}),
]
HARMLESS = "Page.enable"


def escape(text, rng):
    """The JSON string literal of `text` with a random subset of characters as \\uXXXX."""
    out = []
    for ch in text:
        if rng.random() < 0.4:
            code = f"{ord(ch):04x}"
            out.append("\\u" + (code.upper() if rng.random() < 0.5 else code))
        else:
            out.append(json.dumps(ch)[1:-1])
    return '"' + "".join(out) + '"'


def disguises(method, rng):
    """Method-name variants as raw JSON string literals (not always valid method names)."""
    yield escape(method, rng)
    yield json.dumps(method.lower())
    yield json.dumps(method.upper())
    yield json.dumps(" " + method)
    yield json.dumps(method + " ")
    yield json.dumps(method + "\u0000")
    yield json.dumps(method + "\n")
    yield json.dumps(method.replace(".", ".."))
    yield json.dumps("X" + method)
    yield json.dumps(method + "X")
    yield json.dumps(method.replace(".", "\u3002"))  # ideographic full stop
    yield json.dumps(method.replace("o", "\u043e"))  # Cyrillic o


def messages(rng, cases):
    """(raw text, kind, id): kind is 'refuse' (must be refused) or 'harmless' (may pass)."""
    ident = 0
    while ident < cases:
        method, params = rng.choice(DANGEROUS)
        params_json = json.dumps(params)
        # Message bodies after the id, each with its kind: disguised names, then duplicated keys
        # (the last one is what both sides read), non-string names and a non-string sessionId.
        variants = [(f'"method":{disguised},"params":{params_json}', "refuse") for disguised in disguises(method, rng)]
        variants += [
            (f'"method":"{HARMLESS}","method":{escape(method, rng)},"params":{params_json}', "refuse"),
            (f'"method":{escape(method, rng)},"method":"{HARMLESS}"', "harmless"),
            (f'"method":[{json.dumps(method)}]', "refuse"),
            (f'"method":{{"name":{json.dumps(method)}}}', "refuse"),
            (f'"params":{params_json},"method":{json.dumps(method)},"sessionId":7', "refuse"),
        ]
        for body, kind in variants:
            ident += 1
            yield f'{{"id":{ident},{body}}}', kind, ident


def call(ws, ident, method, params, session=None):
    """Sends one command and returns its reply (events in between are skipped)."""
    message = {"id": ident, "method": method, "params": params}
    if session:
        message["sessionId"] = session
    ws.send(json.dumps(message))
    while True:
        reply = json.loads(ws.recv(timeout=20))
        if reply.get("id") == ident:
            return reply


def main():
    url, key = sys.argv[1], sys.argv[2]
    cases = int(sys.argv[3]) if len(sys.argv) > 3 else 400
    rng = random.Random(int(os.environ.get("FUZZ_SEED", "1")))
    headers = {"Authorization": f"Bearer {key}"}
    sent = refused = forwarded = 0
    with connect(url, additional_headers=headers, max_size=None, open_timeout=10) as ws:
        for text, kind, ident in messages(rng, cases):
            ws.send(text)
            sent += 1
            while True:
                reply = json.loads(ws.recv(timeout=20))
                if reply.get("id") == ident:
                    break
            error = reply.get("error", {}).get("message", "")
            ours = error.startswith("browser-worker:")
            unknown = "wasn't found" in error
            if kind == "refuse" and not (ours or unknown):
                print(f"cdp_fuzz: not refused by the passthrough: {text!r} -> {reply}", file=sys.stderr)
                return 1
            refused += ours
            forwarded += not ours
        # A binary frame, even one holding a harmless message, closes the socket.
        ws.send(json.dumps({"id": 0, "method": "Browser.close"}).encode())
        try:
            while True:
                ws.recv(timeout=10)
        except ConnectionClosed:
            pass
    # The browser is alive: a fresh connection evaluates a script in its page.
    with connect(url, additional_headers=headers, open_timeout=10) as ws:
        targets = call(ws, 1, "Target.getTargets", {})["result"]["targetInfos"]
        page = next(t for t in targets if t["type"] == "page")
        attached = call(ws, 2, "Target.attachToTarget", {"targetId": page["targetId"], "flatten": True})
        reply = call(ws, 3, "Runtime.evaluate", {"expression": "6*7"}, attached["result"]["sessionId"])
        if reply["result"]["result"]["value"] != 42:
            print(f"cdp_fuzz: the browser no longer answers: {reply}", file=sys.stderr)
            return 1
    print(f"cdp_fuzz: {sent} messages, {refused} refused by the passthrough, {forwarded} harmless ones forwarded; the browser is alive")
    return 0


if __name__ == "__main__":
    sys.exit(main())
