"""One RocketMQ remoting request, for scripts/brokers/rocketmq.sh: is it ready?

usage: probe.py cluster NAMESRV BROKER_ADDR   the name server lists BROKER_ADDR (code 106)
       probe.py broker BROKER_ADDR            the broker answers its runtime info (code 28)
Exit 0 when the answer is the expected one; 1 with a line on stderr otherwise.
The frame: 4-byte length, 4-byte header length (top byte 0: JSON), JSON header, body.
"""
import json
import socket
import struct
import sys

MAX_FRAME = 16 << 20


def call(addr, code, timeout=3.0):
    host, port = addr.rsplit(":", 1)
    hdr = json.dumps({"code": code, "language": "JAVA", "version": 0, "opaque": 1,
                      "flag": 0, "extFields": {}}).encode()
    with socket.create_connection((host, int(port)), timeout=timeout) as s:
        s.sendall(struct.pack(">II", 4 + len(hdr), len(hdr)) + hdr)

        def read(n):
            b = b""
            while len(b) < n:
                c = s.recv(n - len(b))
                if not c:
                    raise EOFError(f"{addr} closed the connection")
                b += c
            return b

        (total,) = struct.unpack(">I", read(4))
        if not 4 <= total <= MAX_FRAME:
            raise ValueError(f"{addr} sent a frame of {total} bytes")
        data = read(total)
    (hl,) = struct.unpack(">I", data[:4])
    hl &= 0xFFFFFF
    if hl > len(data) - 4:
        raise ValueError(f"{addr} sent a header of {hl} bytes in a frame of {total}")
    return json.loads(data[4:4 + hl]), data[4 + hl:]


def main(argv):
    try:
        if len(argv) == 4 and argv[1] == "cluster":
            h, body = call(argv[2], 106)
            ok = h.get("code") == 0 and f'"{argv[3]}"' in body.decode("utf-8", "replace")
            what = f"name server {argv[2]} lists broker {argv[3]}"
        elif len(argv) == 3 and argv[1] == "broker":
            h, body = call(argv[2], 28)
            ok = h.get("code") == 0 and b'"brokerActive":"true"' in body
            what = f"broker {argv[2]} answers, active"
        else:
            print(__doc__, file=sys.stderr)
            return 2
    except (OSError, EOFError, ValueError) as e:
        print(f"no answer: {e}", file=sys.stderr)
        return 1
    if not ok:
        print(f"not yet: {what} (code {h.get('code')}, {h.get('remark')})", file=sys.stderr)
        return 1
    print(what)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
