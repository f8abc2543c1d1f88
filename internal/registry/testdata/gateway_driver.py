"""Test driver for scripts/usmp_gateway.py, run by gateway_test.go.

It reads one JSON command per line on stdin and answers one JSON line on
stdout, so the Go test can change the registry between two lookups of the
same get_psk (reload after a rotation). Keys travel as hex: they are test
canaries.
"""

import json
import sys

import usmp_gateway as gw


def main() -> None:
    get = None
    for line in sys.stdin:
        cmd = json.loads(line)
        op = cmd["op"]
        try:
            if op == "make":
                m = cmd.get("master")
                master = None
                if m is not None:
                    master = m["str"] if "str" in m else bytes.fromhex(m["hex"])
                if get is not None and hasattr(get, "close"):
                    get.close()
                get = gw.make_get_psk(cmd["registry"], master=master, strict=cmd.get("strict", False),
                                      max_stale=cmd.get("max_stale", gw.DEFAULT_MAX_STALE))
                out = {"ok": True}
            elif op == "get":
                out = {"key": get(cmd["id"].encode("ascii")).hex()}
            elif op == "load":
                keys = gw.load_psk_registry(cmd["path"])
                out = {"keys": {k.decode("ascii"): v.hex() for k, v in keys.items()}}
            else:
                out = {"error": "unknown op"}
        except Exception as e:  # the Go side checks the type
            out = {"error": type(e).__name__}
        sys.stdout.write(json.dumps(out) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
