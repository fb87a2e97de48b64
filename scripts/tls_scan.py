"""Scans running receivers with sslyze and fails unless each accepts only TLS 1.2 and 1.3,
only AEAD cipher suites, and no compression, renegotiation, 0-RTT data, Heartbleed or CCS
injection. Run by scripts/tls-scan.sh, which starts the receivers; usable alone:

    python tls_scan.py --target rsa=127.0.0.1:8443 --json result.json
"""

import argparse
import datetime
import json
import sys

from sslyze import (
    Scanner,
    ScanCommand,
    ScanCommandAttemptStatusEnum,
    ServerNetworkLocation,
    ServerScanRequest,
    ServerScanStatusEnum,
)

ALLOWED = {
    "TLS 1.2": "tls_1_2_cipher_suites",
    "TLS 1.3": "tls_1_3_cipher_suites",
}
FORBIDDEN = {
    "SSL 2.0": "ssl_2_0_cipher_suites",
    "SSL 3.0": "ssl_3_0_cipher_suites",
    "TLS 1.0": "tls_1_0_cipher_suites",
    "TLS 1.1": "tls_1_1_cipher_suites",
}
CHECKS = {
    "tls_compression": ("supports_compression", "TLS compression (CRIME)"),
    "tls_1_3_early_data": ("supports_early_data", "TLS 1.3 early data (0-RTT, replayable)"),
    "heartbleed": ("is_vulnerable_to_heartbleed", "Heartbleed"),
    "openssl_ccs_injection": ("is_vulnerable_to_ccs_injection", "OpenSSL CCS injection"),
}
# An AEAD suite names its AEAD; these mark the constructions that are not one, or are weak.
AEAD_MARKERS = ("_GCM_", "CHACHA20_POLY1305", "_CCM")
WEAK_MARKERS = ("CBC", "RC4", "3DES", "DES_", "NULL", "EXPORT", "ANON", "MD5")


def suite_problem(suite: str):
    """Why an accepted suite is not allowed, or None."""
    name = suite.upper()
    if not any(m in name for m in AEAD_MARKERS):
        return "is not an AEAD suite"
    weak = [m.strip("_") for m in WEAK_MARKERS if m in name]
    return f"is weak ({', '.join(weak)})" if weak else None


def completed(scan_result, field: str, problems: list):
    """The result of one scan command, or None with a problem recorded: a command that could
    not run is a failure, never a pass."""
    attempt = getattr(scan_result, field)
    if attempt.status != ScanCommandAttemptStatusEnum.COMPLETED:
        problems.append(f"{field} did not complete: {attempt.error_reason}")
        return None
    return attempt.result


def summarise(label: str, server) -> dict:
    problems = []
    summary = {"target": label, "server": server.server_location.display_string}
    if server.scan_status != ServerScanStatusEnum.COMPLETED:
        trace = "".join(server.connectivity_error_trace.format()) if server.connectivity_error_trace else ""
        summary["problems"] = [f"could not connect: {trace.strip()}"]
        return summary
    scan = server.scan_result
    protocols = {}
    for name, field in {**FORBIDDEN, **ALLOWED}.items():
        result = completed(scan, field, problems)
        if result is None:
            continue
        suites = [s.cipher_suite.name for s in result.accepted_cipher_suites]
        protocols[name] = suites
        if suites and name in FORBIDDEN:
            problems.append(f"{name} is accepted ({', '.join(suites)})")
        if name in ALLOWED:
            if not suites:
                problems.append(f"{name} is not accepted")
            problems.extend(f"{name}: {s} {why}" for s in suites if (why := suite_problem(s)))
    summary["protocols"] = protocols
    for field, (flag, what) in CHECKS.items():
        result = completed(scan, field, problems)
        if result is not None and getattr(result, flag):
            problems.append(f"{what}: supported or vulnerable")
    renegotiation = completed(scan, "session_renegotiation", problems)
    if renegotiation is not None:
        summary["renegotiation"] = {
            "client_initiated_accepted": renegotiation.client_renegotiations_success_count,
            "secure_renegotiation_indicated": renegotiation.supports_secure_renegotiation,
        }
        if renegotiation.is_vulnerable_to_client_renegotiation_dos or renegotiation.client_renegotiations_success_count:
            problems.append("client-initiated renegotiation is accepted")
    curves = completed(scan, "elliptic_curves", problems)
    if curves is not None and curves.supported_curves:
        summary["key_exchange_groups"] = [c.name for c in curves.supported_curves]
    summary["problems"] = problems
    return summary


def print_summary(summary: dict) -> None:
    verdict = "FAIL" if summary["problems"] else "PASS"
    print(f"== {summary['target']} ({summary['server']}): {verdict}")
    for name, suites in summary.get("protocols", {}).items():
        print(f"  {name}: {', '.join(suites) if suites else 'refused'}")
    if "key_exchange_groups" in summary:
        print(f"  key exchange groups: {', '.join(summary['key_exchange_groups'])}")
    if "renegotiation" in summary:
        print(f"  renegotiation: {summary['renegotiation']}")
    for problem in summary["problems"]:
        print(f"  PROBLEM: {problem}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--target", action="append", required=True, metavar="LABEL=IP:PORT")
    parser.add_argument("--hostname", default="localhost", help="SNI name sent (default localhost)")
    parser.add_argument("--json", metavar="PATH", help="also write the summary here")
    args = parser.parse_args()
    labels = {}
    requests = []
    for target in args.target:
        label, _, address = target.partition("=")
        ip, _, port = address.rpartition(":")
        location = ServerNetworkLocation(hostname=args.hostname, port=int(port), ip_address=ip)
        commands = {ScanCommand(f) for f in [*ALLOWED.values(), *FORBIDDEN.values(), *CHECKS]}
        commands |= {ScanCommand.SESSION_RENEGOTIATION, ScanCommand.ELLIPTIC_CURVES}
        requests.append(ServerScanRequest(server_location=location, scan_commands=commands))
        labels[(ip, int(port))] = label
    scanner = Scanner()
    scanner.queue_scans(requests)
    summaries = []
    for server in scanner.get_results():
        location = server.server_location
        summaries.append(summarise(labels[(location.ip_address, location.port)], server))
    summaries.sort(key=lambda s: s["target"])
    for summary in summaries:
        print_summary(summary)
    if args.json:
        with open(args.json, "w") as out:
            stamp = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
            json.dump({"scanned_at": stamp, "results": summaries}, out, indent=2)
    failed = [s["target"] for s in summaries if s["problems"]]
    if failed or len(summaries) != len(requests):
        print(f"TLS scan FAILED: {', '.join(failed) or 'a target gave no result'}", file=sys.stderr)
        return 1
    print("TLS scan passed: only TLS 1.2/1.3, only AEAD suites, no compression/renegotiation/0-RTT")
    return 0


if __name__ == "__main__":
    sys.exit(main())
