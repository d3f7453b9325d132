#!/usr/bin/env python3
"""A stand-in for browser-worker and systemctl, for running deploy/ansible/upgrade.yml locally.

  fake_worker.py serve STATE        serves /health and /api/v1/worker/{drain,undrain} on the
                                    state's port, from and into the JSON file STATE
  fake_worker.py systemctl ARGS...  what upgrade.yml asks of systemctl (show, restart), against
                                    the same STATE (found through $FAKE_WORKER_STATE)

The state: port, key, sessions, tasks, draining, handover (whether the worker knows drain and
reports `draining`), kill_mode, environment, lose_sessions (a restart loses them), and the
counters restarts, drains, undrains. While draining, each /health answer finishes one task.
"""
import json
import os
import sys
from http.server import BaseHTTPRequestHandler, HTTPServer


def load(path):
    with open(path) as f:
        return json.load(f)


def save(path, state):
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(state, f)
    os.replace(tmp, path)


def serve(path):
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def answer(self, status, body):
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self):
            state = load(path)
            if self.path != "/health":
                return self.answer(404, {"error": "not_found"})
            if state["draining"] and state["tasks"] > 0:
                state["tasks"] -= 1
                save(path, state)
            body = {"status": "healthy", "active_sessions": state["sessions"], "max_sessions": 10,
                    "active_tasks": state["tasks"]}
            if state["handover"]:
                body.update(draining=state["draining"], free_slots=10 - state["sessions"])
            self.answer(200, body)

        def do_POST(self):
            state = load(path)
            action = {"/api/v1/worker/drain": "drain", "/api/v1/worker/undrain": "undrain"}.get(self.path)
            if action is None or not state["handover"]:
                return self.answer(404, {"error": "not_found"})
            if self.headers.get("Authorization") != "Bearer " + state["key"]:
                return self.answer(401, {"error": "unauthorized"})
            state["draining"] = action == "drain"
            state[action + "s"] += 1
            save(path, state)
            self.answer(200, {"draining": state["draining"]})

    HTTPServer(("127.0.0.1", load(path)["port"]), Handler).serve_forever()


def systemctl(args):
    path = os.environ["FAKE_WORKER_STATE"]
    state = load(path)
    if args[:1] == ["show"]:
        wanted = [args[i + 1] for i, a in enumerate(args) if a == "--property"]
        props = {"LoadState": "loaded", "ActiveState": "active", "SubState": "running",
                 "UnitFileState": "enabled", "KillMode": state["kill_mode"],
                 "Environment": state["environment"]}
        for key, value in props.items():
            if not wanted or key in wanted:
                print(f"{key}={value}")
    elif args[:1] == ["restart"]:
        # A new worker: not draining (drain is not kept across restarts here), sessions re-attached
        # unless the old worker closed them or they were lost.
        handed_over = state["kill_mode"] == "process" and "BW_HANDOVER=true" in state["environment"]
        if state["lose_sessions"] or not handed_over:
            state["sessions"] = 0
        state.update(draining=False, tasks=0, restarts=state["restarts"] + 1, handover=True)
        save(path, state)
    return 0


if __name__ == "__main__":
    if sys.argv[1:2] == ["serve"]:
        serve(sys.argv[2])
    elif sys.argv[1:2] == ["systemctl"]:
        sys.exit(systemctl(sys.argv[2:]))
    else:
        sys.exit(__doc__)
