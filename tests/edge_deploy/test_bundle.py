"""Bundles: round trip, and every kind of tampering refused with one line and the box left as it was."""

from __future__ import annotations

import io
import json
import tarfile
from collections.abc import Callable
from pathlib import Path

import pytest

from pcb_inspect.edge_deploy.bundle import BundleSpec, write_bundle
from pcb_inspect.edge_deploy.errors import BundleRefused
from pcb_inspect.edge_deploy.manifest import MODEL_NAME
from pcb_inspect.edge_deploy.releases import install
from pcb_inspect.inspect.errors import ConfigError


def rewrite(src: Path, dst: Path, mutate: Callable[[list[tuple[tarfile.TarInfo, bytes]]], None]) -> Path:
    """Copy a bundle member by member, letting ``mutate`` change the (info, data) list on the way."""
    with tarfile.open(src, "r:gz") as tf:
        items = [(m, tf.extractfile(m).read() if m.isreg() else b"") for m in tf.getmembers()]
    mutate(items)
    with tarfile.open(dst, "w:gz") as tf:
        for info, data in items:
            info.size = len(data) if info.isreg() else 0
            tf.addfile(info, io.BytesIO(data) if info.isreg() else None)
    return dst


def _member(
    name: str, data: bytes = b"", kind: bytes = tarfile.REGTYPE, link: str = ""
) -> tuple[tarfile.TarInfo, bytes]:
    info = tarfile.TarInfo(name)
    info.type, info.linkname, info.mode = kind, link, 0o644
    return info, data


def _flip_model_byte(items: list) -> None:
    for i, (info, data) in enumerate(items):
        if info.name == MODEL_NAME:
            items[i] = (info, data[:100] + bytes([data[100] ^ 1]) + data[101:])


def _edit_manifest(items: list) -> None:
    for i, (info, data) in enumerate(items):
        if info.name == "manifest.json":
            doc = json.loads(data)
            doc["target"] = "jetson"  # a signed field changed: the signature no longer matches
            items[i] = (info, json.dumps(doc).encode())


def _drop(name: str) -> Callable[[list], None]:
    return lambda items: items.__setitem__(slice(None), [it for it in items if it[0].name != name])


TAMPERING = {
    "changed byte": (_flip_model_byte, "checksum mismatch"),
    "extra file": (
        lambda items: items.append(_member("templates/evil.png", b"x")),
        "extra file 'templates/evil.png'",
    ),
    "dot-dot path": (lambda items: items.append(_member("../escape.txt", b"x")), "escapes the bundle"),
    "nested dot-dot": (
        lambda items: items.append(_member("templates/../../x", b"x")),
        "not a plain relative path",
    ),
    "absolute path": (
        lambda items: items.append(_member("/etc/cron.d/evil", b"x")),
        "not a plain relative path",
    ),
    "symlink": (
        lambda items: items.append(_member("templates/link", kind=tarfile.SYMTYPE, link="/etc/passwd")),
        "is a link",
    ),
    "hard link": (
        lambda items: items.append(_member("templates/hard", kind=tarfile.LNKTYPE, link="model.onnx")),
        "is a link",
    ),
    "device": (lambda items: items.append(_member("templates/dev", kind=tarfile.CHRTYPE)), "device"),
    "fifo": (lambda items: items.append(_member("templates/fifo", kind=tarfile.FIFOTYPE)), "device, fifo"),
    "missing file": (_drop("templates/line-a/board.png"), "listed in the manifest is missing"),
    "edited manifest": (_edit_manifest, "bad signature"),
    "unsigned": (_drop("manifest.sig"), "unsigned"),
    "duplicate": (lambda items: items.append(_member("config/runtime.json", b"{}")), "appears twice"),
}


def test_round_trip(
    bundles: dict[str, Path], keypair: tuple[Path, Path], tmp_path: Path, new_root, shipped_model: Path
) -> None:
    root = new_root(tmp_path / "box", keypair[1])
    result = install(root, bundles["v1"])
    assert (result.version, result.already, result.signer is not None) == ("1.0.0", False, True)
    release = root.release("1.0.0")
    assert (release / MODEL_NAME).read_bytes() == shipped_model.read_bytes()
    assert (release / "config" / "runtime.json").is_file() and (
        release / "templates/line-a/board.png"
    ).is_file()
    manifest = root.verify("1.0.0")
    assert manifest.model["contract"]["class_names"][-1] == "no-defect"
    assert manifest.model["source_name"] == shipped_model.name and manifest.target == "cpu"
    assert set(manifest.files) == {"model.onnx", "config/runtime.json", "templates/line-a/board.png"}
    assert install(root, bundles["v1"]).already  # same bundle again: nothing to do
    assert list(root.incoming.iterdir()) == []


@pytest.mark.parametrize("case", sorted(TAMPERING))
def test_tampered_bundle_refused_and_box_untouched(
    case: str,
    bundles: dict[str, Path],
    keypair: tuple[Path, Path],
    tmp_path: Path,
    new_root,
    digest,
    run_deploy,
) -> None:
    root = new_root(tmp_path / "box", keypair[1])
    install(root, bundles["v2"])
    root.set_pointer("current", "2.0.0")
    before = digest(root.path)
    mutate, expected = TAMPERING[case]
    bad = rewrite(bundles["v1"], tmp_path / "bad.tar.gz", mutate)
    r = run_deploy("install", bad, "--root", root.path)
    assert r.returncode == 2, r.stdout + r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and expected in lines[0], r.stderr
    assert str(bad) in lines[0]  # names the bundle
    assert digest(root.path) == before  # active release, releases and pointers exactly as they were
    assert not (tmp_path / "escape.txt").exists()


def test_signatures(bundles: dict[str, Path], keypair, other_keypair, tmp_path: Path, new_root) -> None:
    open_box = new_root(tmp_path / "open", None)
    assert install(open_box, bundles["v1u"]).signer is None  # no trusted key: accepted, and said so
    keyed = new_root(tmp_path / "keyed", keypair[1])
    with pytest.raises(BundleRefused, match="unsigned"):
        install(keyed, bundles["v1u"])
    stranger = new_root(tmp_path / "stranger", other_keypair[1])
    with pytest.raises(BundleRefused, match="not one this box trusts"):
        install(stranger, bundles["v1"])
    assert install(stranger, bundles["v1"], extra_keys=[keypair[1]]).signer  # --pubkey adds a trusted key


def test_corrupt_and_foreign_files_refused(bundles: dict[str, Path], tmp_path: Path, new_root) -> None:
    root = new_root(tmp_path / "box", None)
    truncated = tmp_path / "truncated.tar.gz"
    truncated.write_bytes(bundles["v1"].read_bytes()[:5000])
    with pytest.raises(BundleRefused, match="not a readable bundle|checksum"):
        install(root, truncated)
    junk = tmp_path / "junk.tar.gz"
    junk.write_bytes(b"not a tar at all" * 100)
    with pytest.raises(BundleRefused, match="not a readable bundle"):
        install(root, junk)
    no_manifest = rewrite(bundles["v1"], tmp_path / "nm.tar.gz", _drop("manifest.json"))
    with pytest.raises(BundleRefused, match="no manifest.json"):
        install(root, no_manifest)
    assert root.versions() == [] and list(root.incoming.iterdir()) == []


def test_bundle_refuses_prebuilt_engines_and_bad_input(tmp_path: Path, shipped_model: Path) -> None:
    engine = tmp_path / "model.engine"
    engine.write_bytes(b"serialized engine")
    with pytest.raises(ConfigError, match="prebuilt TensorRT engine"):
        write_bundle(BundleSpec(model=engine, version="1", out=tmp_path / "b.tar.gz"))
    templates = tmp_path / "t"
    templates.mkdir()
    (templates / "cached.plan").write_bytes(b"x")
    with pytest.raises(ConfigError, match="prebuilt TensorRT engine"):
        write_bundle(
            BundleSpec(model=shipped_model, version="1", out=tmp_path / "b.tar.gz", templates=templates)
        )
    (templates / "cached.plan").unlink()
    (templates / "a.png").symlink_to(shipped_model)
    with pytest.raises(ConfigError, match="symlink"):
        write_bundle(
            BundleSpec(model=shipped_model, version="1", out=tmp_path / "b.tar.gz", templates=templates)
        )
    with pytest.raises(ConfigError, match="version '../x'"):
        write_bundle(BundleSpec(model=shipped_model, version="../x", out=tmp_path / "b.tar.gz"))
    with pytest.raises(ConfigError, match="target 'tpu'"):
        write_bundle(BundleSpec(model=shipped_model, version="1", out=tmp_path / "b.tar.gz", target="tpu"))
    assert not (tmp_path / "b.tar.gz").exists()


def test_target_and_runtime_version_checked(tmp_path: Path, shipped_model: Path, new_root) -> None:
    root = new_root(tmp_path / "box", None)
    jetson = tmp_path / "jetson.tar.gz"
    write_bundle(BundleSpec(model=shipped_model, version="4.0.0", out=jetson, target="jetson"))
    with pytest.raises(BundleRefused, match="built for target jetson, this box is"):
        install(root, jetson)
    assert install(root, jetson, any_target=True).version == "4.0.0"
    future = tmp_path / "future.tar.gz"
    write_bundle(BundleSpec(model=shipped_model, version="5.0.0", out=future, min_runtime="99.0"))
    with pytest.raises(BundleRefused, match="needs pcb-inspect 99.0 or newer"):
        install(root, future)


def test_same_version_different_content_refused(
    bundles, tmp_path: Path, shipped_model: Path, new_root
) -> None:
    root = new_root(tmp_path / "box", None)
    install(root, bundles["v1u"])
    impostor = tmp_path / "impostor.tar.gz"
    write_bundle(BundleSpec(model=shipped_model, version="1.0.1", out=impostor, name="other"))
    with pytest.raises(BundleRefused, match="already installed with different content"):
        install(root, impostor)
