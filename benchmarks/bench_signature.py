"""The signature check over a 1 GiB artifact against ``sha256sum`` of the same bytes, and the
bytes the gate reads with ``signature`` and ``integrity`` together.

- the artifact: a Keras 3 ``.h5`` of about 1 GiB of float32 weights (``generate.large_artifact``),
  in the run's temporary folder, deleted at the end; signed once with a P-256 key made here;
- the reference: ``sha256sum FILE`` (coreutils), a fresh process each run;
- the candidate: a fresh process that runs the gate's signature check on the artifact
  (``runner.check_artifact``, checks ``["signature"]``): the check's own time (timed inside the
  process, what a gate worker pays per artifact) and the whole process (with Python's start-up
  and the import of ``model-signing``, paid once per worker);
- bytes read: ``rchar`` of ``/proc/self/io`` of the checking process around one
  ``check_artifact`` call, for ``signature`` alone, ``integrity`` alone and both together, divided
  by the artifact's size.
All runs are warm-cache (the file is read once before): the floor is hashing speed, the
strictest reference. Runs of reference and candidate alternate.
"""

from __future__ import annotations

import json
import shutil
import textwrap
from pathlib import Path

import generate
from gate_runs import available
from harness import (
    MIB,
    Options,
    Section,
    Table,
    Target,
    bench_env,
    fmt_s,
    interleaved,
    median,
    python,
    run_process,
    spread,
)

SIZE_MIB = 1024
RATIO_LIMIT = 1.2

_CHECK = textwrap.dedent(
    """
    import json, sys, time
    from pytest_kerasmodel.gate.runner import check_artifact
    import model_signing  # imported before the clock starts, as in a worker that ran before

    def rchar():
        for line in open("/proc/self/io"):
            if line.startswith("rchar:"):
                return int(line.split()[1])

    path, key, checks = sys.argv[1], sys.argv[2], sys.argv[3].split(",")
    request = {"path": path, "checks": checks, "signature_key": key,
               "signature_file": path + ".sig"}
    before, start = rchar(), time.perf_counter()
    result = check_artifact(request)
    seconds, read = time.perf_counter() - start, rchar() - before
    statuses = {c: r["status"] for c, r in result["checks"].items()}
    print("RESULT=" + json.dumps({"seconds": seconds, "rchar": read, "statuses": statuses}))
    """
)


def _key(folder: Path) -> tuple[Path, Path]:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    key = ec.generate_private_key(ec.SECP256R1())
    private, public = folder / "bench.pem", folder / "bench.pub"
    private.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    public.write_bytes(
        key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    return private, public


def _result(stdout: str) -> dict:
    for line in stdout.splitlines():
        if line.startswith("RESULT="):
            return json.loads(line[len("RESULT=") :])
    raise RuntimeError(f"no RESULT line in:\n{stdout[-2000:]}")


def run(opts: Options) -> Section:
    section = Section("signature", "Provenance: the signature check vs `sha256sum`, bytes read")
    if not (available("model_signing") and shutil.which("sha256sum")):
        section.notes.append("Skipped: needs model-signing (the [signing] extra) and sha256sum.")
        section.targets.append(Target("signature check", "not measured", "-", None))
        return section
    from pytest_kerasmodel.provenance.signature import sign_artifact

    size = 256 if opts.quick else SIZE_MIB
    repeats = 2 if opts.quick else max(3, opts.repeats)
    env = bench_env()
    folder = opts.workdir / "signature"
    folder.mkdir(parents=True, exist_ok=True)
    try:
        opts.log(f"signature: writing a {size} MiB .h5")
        artifact = generate.large_artifact(folder, size, "h5")
        nbytes = artifact.stat().st_size
        private, public = _key(folder)
        sign_artifact(artifact, key=private)
        script = folder / "check.py"
        script.write_text(_CHECK)

        def check(checks: str) -> tuple[float, float, dict]:
            ran = run_process(
                [python(), str(script), str(artifact), str(public), checks], env=env
            ).check(f"check {checks}")
            return ran.seconds, ran.cpu_seconds, _result(ran.stdout)

        samples = interleaved(
            {
                "sha256sum": lambda: run_process(["sha256sum", str(artifact)]).check("sha256sum"),
                "signature": lambda: check("signature"),
            },
            repeats,
        )
        sums = [r.seconds for r in samples["sha256sum"]]
        inner = [s[2]["seconds"] for s in samples["signature"]]
        whole = [s[0] for s in samples["signature"]]
        statuses = {json.dumps(s[2]["statuses"]) for s in samples["signature"]}
        ratio = median(inner) / median(sums)
        section.targets.append(
            Target(
                f"signature check over {size} MiB vs `sha256sum` (the check's own time)",
                f"{ratio:.2f}x ({fmt_s(median(inner))} vs {fmt_s(median(sums))}); whole "
                f"process {median(whole) / median(sums):.2f}x ({fmt_s(median(whole))})",
                f"<= {RATIO_LIMIT}x",
                ratio <= RATIO_LIMIT and statuses == {json.dumps({"signature": "passed"})},
            )
        )
        reads = {}
        for checks in (
            "signature",
            "integrity",
            "integrity,signature",
            "integrity,finite",
            "integrity,finite,signature",
        ):
            _, _, result = check(checks)
            reads[checks] = (result["rchar"] / nbytes, result["statuses"])
        both = reads["integrity,signature"][0]
        section.targets.append(
            Target(
                "gate with `signature` and `integrity`: bytes read / artifact size (rchar)",
                f"{both:.2f} (signature alone {reads['signature'][0]:.2f}, integrity alone "
                f"{reads['integrity'][0]:.2f})",
                "<= 1.05 (the bytes read once)",
                both <= 1.05,
            )
        )
        with_values = reads["integrity,finite,signature"][0]
        section.targets.append(
            Target(
                "the same with `finite` too (integrity then reads every weight): rchar / size",
                f"{with_values:.2f} (integrity + finite alone {reads['integrity,finite'][0]:.2f})",
                "<= 1.05 (the bytes read once)",
                with_values <= 1.05,
            )
        )
        section.tables.append(
            Table(
                f"{size} MiB .h5 ({nbytes / MIB:.0f} MiB on disk), warm cache, {repeats} runs",
                ["measure", "median", "min-max"],
                [
                    ["sha256sum (process)", fmt_s(median(sums)), spread(sums)],
                    ["signature check (in the process)", fmt_s(median(inner)), spread(inner)],
                    ["signature check (whole process)", fmt_s(median(whole)), spread(whole)],
                    *[
                        [f"rchar / size: {c}", f"{r:.3f}", json.dumps(s)]
                        for c, (r, s) in reads.items()
                    ],
                ],
            )
        )
        section.notes.append(
            "Measure: `rchar` of `/proc/self/io` of the checking process around one "
            "`check_artifact` call (every byte read through read/pread, page cache or not). "
            "The signature check reads each byte once with hashlib's SHA-256 in 1 MiB reads "
            "(OpenSSL's, with the CPU's SHA extensions where present, hence faster than "
            "coreutils' `sha256sum` here). The integrity check alone reads the HDF5 metadata "
            "only, so `integrity` + `signature` read the bytes once. With `finite` the integrity "
            "check reads every weight through h5py as well, and the two reads are not shared: "
            "HDF5 reads at offsets it chooses, not front to back, so its reads cannot feed one "
            "SHA-256 of the file. What would share it: a digest per range (OMS's `shards` "
            "serialization) computed over the ranges HDF5 reads, or HDF5 fed from the bytes "
            "the hash read (memory of the artifact's size)."
        )
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return section
