"""httpx over HTTP/2 against the receiver (scripts/edge-clients.sh): each refusal must be read
as its status and JSON reason, never as a protocol error or a timeout.

usage: edge_clients.py URL BIG_BODY_FILE SMALL_BODY
"""

import sys

import httpx

ZEROS = "0" * 64
INVALID = {"error": "Invalid signature"}
TOO_LARGE = {"error": "Payload too large"}


def main() -> int:
    url, big_file, small = sys.argv[1], sys.argv[2], sys.argv[3].encode()
    with open(big_file, "rb") as f:
        big = f.read()
    cases = [
        ("missing signature", {}, small, 401, INVALID),
        ("malformed signature", {"X-Audian-Signature": "sha256=not-hex!"}, small, 401, INVALID),
        ("short signature", {"X-Audian-Signature": "abcd"}, small, 401, INVALID),
        ("wrong signature", {"X-Audian-Signature": ZEROS}, small, 401, INVALID),
        ("2 MB body", {"X-Audian-Signature": ZEROS}, big, 413, TOO_LARGE),
    ]
    failures = 0
    with httpx.Client(http2=True, verify=False, timeout=20) as client:
        for label, headers, body, status, expected in cases:
            headers = {"Content-Type": "application/json", **headers}
            try:
                response = client.post(url, headers=headers, content=body)
            except httpx.HTTPError as error:
                print(f"FAIL httpx {label}: {type(error).__name__}: {error}", file=sys.stderr)
                failures += 1
                continue
            ok = (
                response.http_version == "HTTP/2"
                and response.status_code == status
                and response.json() == expected
            )
            line = f"httpx {label}: {response.http_version} {response.status_code} {response.text}"
            print(line if ok else f"FAIL {line}", file=sys.stdout if ok else sys.stderr)
            failures += not ok
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
