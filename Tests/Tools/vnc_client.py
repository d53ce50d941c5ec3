#!/usr/bin/env python3
"""A VNC viewer for tests and benches, built on vncdotool (a real RFB client from PyPI).

    vnc_client.py HOST::PORT capture OUT.png [--encoding raw|zrle] [--password PW]
    vnc_client.py HOST::PORT type TEXT [--password PW]      types TEXT, then Enter

Exits 0 on success; on failure prints one line to stderr and exits 1.
"""
import argparse
import sys

from vncdotool import api, rfb
from vncdotool.client import VNCDoToolClient


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("server")
    parser.add_argument("action", choices=["capture", "type"])
    parser.add_argument("argument")
    parser.add_argument("--encoding", choices=["raw", "zrle"], default="raw")
    parser.add_argument("--password")
    parser.add_argument("--timeout", type=float, default=30)
    args = parser.parse_args()
    # vncdotool asks for one encoding, a class attribute of its client.
    VNCDoToolClient.encoding = rfb.Encoding.ZRLE if args.encoding == "zrle" else rfb.Encoding.RAW
    try:
        client = api.connect(args.server, password=args.password, timeout=args.timeout)
        if args.action == "capture":
            client.captureScreen(args.argument)
        else:
            for character in args.argument:
                client.keyPress(character)
            client.keyPress("enter")
        client.disconnect()
    except Exception as error:  # vncdotool raises many kinds; one line is what callers want
        print(f"vnc_client: {type(error).__name__}: {error}", file=sys.stderr)
        sys.exit(1)
    finally:
        api.shutdown()


if __name__ == "__main__":
    main()
