"""``pcb-inspect deploy ...``: bundle, install, activate, rollback, status, prune, health, service, keygen.

:func:`add_deploy_parser` hangs the ``deploy`` verb on the main CLI's subparsers; each handler returns an exit
code (0 done, 1 the service is unhealthy or was rolled back) and raises :class:`PcbInspectError`
subclasses for refused input, which the main CLI prints as one line with exit code 2.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from pcb_inspect.inspect.errors import ConfigError

DEFAULT_ROOT = Path(os.environ.get("PCB_INSPECT_ROOT", "/opt/pcb-inspect"))
DEFAULT_RELOAD = os.environ.get("PCB_INSPECT_RELOAD", "none")


def _root(args: argparse.Namespace):  # noqa: ANN202
    from pcb_inspect.edge_deploy.releases import Root

    return Root(args.root)


def _health(args: argparse.Namespace):  # noqa: ANN202
    if not args.health_url:
        return None
    from pcb_inspect.edge_deploy.activate import health_check
    from pcb_inspect.edge_deploy.health import check_url

    check_url(args.health_url)
    if args.health_timeout <= 0:
        raise ConfigError(f"--health-timeout {args.health_timeout}: must be positive")
    return health_check(args.health_url, args.health_timeout, args.health_interval)


def cmd_keygen(args: argparse.Namespace) -> int:
    from pcb_inspect.edge_deploy.signing import generate_keypair, key_id, load_public_key

    private, public = generate_keypair(args.out)
    print(
        f"wrote {private} (keep it off the boxes) and {public} (key {key_id(load_public_key(public))}; "
        f"copy it to ROOT/keys/ on every box)"
    )
    return 0


def cmd_bundle(args: argparse.Namespace) -> int:
    from pcb_inspect.edge_deploy.bundle import BundleSpec, write_bundle

    spec = BundleSpec(
        model=args.model,
        version=args.version,
        out=args.out,
        config=args.config,
        templates=args.templates,
        sign_key=args.sign,
        target=args.target,
        name=args.name,
        min_runtime=args.min_runtime,
    )
    m = write_bundle(spec)
    signed = "signed" if args.sign else "unsigned"
    print(
        f"wrote {args.out}: {m.name} {m.version} ({signed}, target {m.target}, "
        f"{len(m.files)} file{'s' if len(m.files) != 1 else ''}, "
        f"model {m.model_sha256[:12]})"
    )
    return 0


def cmd_install(args: argparse.Namespace) -> int:
    from pcb_inspect.edge_deploy.releases import install

    r = install(_root(args), args.bundle, args.pubkey, args.any_target)
    if args.json:  # for playbooks: the version to activate next
        print(
            json.dumps({"version": r.version, "already": r.already, "signer": r.signer, "cleaned": r.cleaned})
        )
        return 0
    how = f"signed by key {r.signer}" if r.signer else "signature not checked: no trusted key on this box"
    if r.cleaned:
        print(f"removed leftovers of interrupted deploys: {', '.join(r.cleaned)}")
    state = "already installed" if r.already else "installed"
    print(f"{state} {r.version} in {args.root / 'releases' / r.version} ({how})")
    return 0


def _report(result) -> int:  # noqa: ANN001
    print(result.message, file=sys.stdout if result.ok else sys.stderr)
    return 0 if result.ok else 1


def cmd_activate(args: argparse.Namespace) -> int:
    from pcb_inspect.edge_deploy.activate import activate
    from pcb_inspect.edge_deploy.manifest import check_version
    from pcb_inspect.edge_deploy.reload import parse_reload

    check_version(args.version)
    return _report(activate(_root(args), args.version, parse_reload(args.reload), _health(args)))


def cmd_rollback(args: argparse.Namespace) -> int:
    from pcb_inspect.edge_deploy.activate import rollback
    from pcb_inspect.edge_deploy.reload import parse_reload

    return _report(rollback(_root(args), parse_reload(args.reload), _health(args)))


def _mib(n: int) -> str:
    return f"{n / (1 << 20):.1f} MiB"


def cmd_status(args: argparse.Namespace) -> int:
    from pcb_inspect.edge_deploy.releases import status

    s = status(_root(args))
    if args.json:
        print(json.dumps(s, indent=2))
        return 0
    print(f"root      {s['root']}")
    print(f"active    {s['active'] or '-'}")
    print(f"previous  {s['previous'] or '-'}")
    for r in s["releases"]:
        mark = "*" if r["version"] == s["active"] else ("p" if r["version"] == s["previous"] else " ")
        detail = r.get("error") or (
            f"model {r['model_sha256'][:12]}  {r['target']:6s} {'signed' if r['signed'] else 'unsigned':8s}"
            f" installed {r['installed']}"
        )
        print(f" {mark} {r['version']:20s} {_mib(r['bytes']):>10s}  {detail}")
    b = s["bytes"]
    print(
        f"disk      releases {_mib(b['releases'])}, engine cache {_mib(b['engine_cache'])}, "
        f"free {_mib(b['free'])}"
    )
    if s["incomplete"]:
        print(f"leftovers {', '.join(s['incomplete'])} (an interrupted deploy; removed by the next one)")
    return 0


def cmd_prune(args: argparse.Namespace) -> int:
    from pcb_inspect.edge_deploy.releases import prune

    removed = prune(_root(args), args.keep)
    print(f"removed {', '.join(removed)}" if removed else "nothing to remove")
    return 0


def cmd_health(args: argparse.Namespace) -> int:
    from pcb_inspect.edge_deploy.health import check_health

    expect = args.expect_sha256
    if expect == "auto":
        root = _root(args)
        active = root.pointer("current")
        if active is None:
            raise ConfigError(
                f"--expect-sha256 auto: no active release under {root.path}; pass --root or a sha256"
            )
        expect = root.manifest(active).model_sha256
    elif expect == "none":
        expect = None
    elif len(expect) != 64 or any(c not in "0123456789abcdef" for c in expect):
        raise ConfigError(f"--expect-sha256 {expect!r}: auto, none or 64 lowercase hex digits")
    result = check_health(args.url, expect, timeout=args.timeout, interval=args.interval)
    print(result.reason, file=sys.stdout if result.ok else sys.stderr)
    return 0 if result.ok else 1


def cmd_service(args: argparse.Namespace) -> int:
    from pcb_inspect.edge_deploy.service import ServiceSpec, render_unit, write_service

    spec = ServiceSpec(
        root=args.root,
        user=args.user,
        exec_path=args.exec,
        watchdog_s=args.watchdog,
        groups=args.groups.split(",") if args.groups is not None else None,
    )
    if args.print:
        print(render_unit(spec), end="")
        return 0
    changed = write_service(spec, install=args.install, unit_dir=args.unit_dir)
    print(f"wrote {', '.join(changed)}" if changed else "service files already up to date")
    return 0


def _add_root(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--root",
        type=Path,
        default=DEFAULT_ROOT,
        help=f"deploy root on the box (default $PCB_INSPECT_ROOT or {DEFAULT_ROOT})",
    )


def _add_switch(p: argparse.ArgumentParser) -> None:
    _add_root(p)
    p.add_argument(
        "--reload",
        default=DEFAULT_RELOAD,
        help="how to tell the service: none, systemctl[:UNIT] (SIGHUP via ExecReload) or pidfile:PATH "
        "(default $PCB_INSPECT_RELOAD or none)",
    )
    p.add_argument("--health-url", help="service base URL; roll back when it is not healthy in time")
    p.add_argument(
        "--health-timeout", type=float, default=60.0, help="seconds to become healthy (default 60)"
    )
    p.add_argument("--health-interval", type=float, default=1.0, help=argparse.SUPPRESS)


def add_deploy_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add ``deploy`` and its sub-verbs to the main CLI's subparsers."""
    deploy = subparsers.add_parser(
        "deploy", help="signed model bundles: install, activate, roll back, health, service"
    )
    sub = deploy.add_subparsers(dest="deploy_verb", required=True, metavar="STEP")

    p = sub.add_parser("keygen", help="make an ed25519 key pair for signing bundles")
    p.add_argument("--out", type=Path, required=True, help="writes OUT.key (private) and OUT.pub")
    p.set_defaults(func=cmd_keygen)

    p = sub.add_parser("bundle", help="pack a model, config and templates into a (signed) bundle")
    p.add_argument("--model", type=Path, required=True, help="the .onnx model (contract inside)")
    p.add_argument("--config", type=Path, help="runtime config file to ship with it")
    p.add_argument("--templates", type=Path, help="folder of golden templates to ship with it")
    p.add_argument("--version", required=True, help="release version (a folder name on the box)")
    p.add_argument("--out", type=Path, required=True, help="FILE.tar.gz to write")
    p.add_argument("--sign", type=Path, help="ed25519 private key (PEM) to sign the manifest with")
    p.add_argument("--target", default="cpu", help="cpu (runs anywhere), cuda or jetson")
    p.add_argument("--name", default="pcb-inspect", help="bundle name (default pcb-inspect)")
    p.add_argument("--min-runtime", help="oldest pcb-inspect that may run it (default: this one)")
    p.set_defaults(func=cmd_bundle)

    p = sub.add_parser("install", help="verify a bundle and unpack it to ROOT/releases/VERSION")
    p.add_argument("bundle", type=Path)
    _add_root(p)
    p.add_argument(
        "--pubkey",
        type=Path,
        action="append",
        default=[],
        help="also trust this public key (ROOT/keys/*.pub are always trusted)",
    )
    p.add_argument("--any-target", action="store_true", help="install a bundle built for another kind of box")
    p.add_argument("--json", action="store_true", help="print the result as JSON (version, already, signer)")
    p.set_defaults(func=cmd_install)

    p = sub.add_parser("activate", help="make an installed release current and signal the service")
    p.add_argument("version")
    _add_switch(p)
    p.set_defaults(func=cmd_activate)

    p = sub.add_parser("rollback", help="return to the previous release")
    _add_switch(p)
    p.set_defaults(func=cmd_rollback)

    p = sub.add_parser("status", help="active and previous release, all releases, disk used")
    _add_root(p)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_status)

    p = sub.add_parser("prune", help="remove old releases (never the active or previous one)")
    _add_root(p)
    p.add_argument(
        "--keep", type=int, required=True, help="newest releases to keep besides active and previous"
    )
    p.set_defaults(func=cmd_prune)

    p = sub.add_parser("health", help="is the service up, on the active release's model, with frames flowing")
    p.add_argument("--url", required=True, help="service base URL, e.g. http://127.0.0.1:8080")
    _add_root(p)
    p.add_argument(
        "--expect-sha256", default="auto", help="auto (the active release's model), none, or a sha256"
    )
    p.add_argument("--timeout", type=float, default=30.0, help="seconds to wait for health (default 30)")
    p.add_argument("--interval", type=float, default=1.0, help="seconds between polls (default 1)")
    p.set_defaults(func=cmd_health)

    p = sub.add_parser("service", help="write (and --install) the systemd unit and its environment file")
    _add_root(p)
    p.add_argument("--user", required=True, help="unprivileged user the service runs as")
    p.add_argument("--install", action="store_true", help="copy to --unit-dir, daemon-reload, enable")
    p.add_argument("--exec", type=Path, help="pcb-inspect executable (default: the one beside this Python)")
    p.add_argument("--watchdog", type=int, default=30, help="WatchdogSec (default 30)")
    p.add_argument(
        "--groups", help="supplementary groups, comma-separated (default: video,render where present)"
    )
    p.add_argument("--unit-dir", type=Path, default=Path("/etc/systemd/system"), help=argparse.SUPPRESS)
    p.add_argument("--print", action="store_true", help="print the unit instead of writing files")
    p.set_defaults(func=cmd_service)
    return deploy
