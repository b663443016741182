"""The installed package: what the wheel ships, its entry points, and the
wheel-building configuration."""
import pathlib
import sys
from importlib import metadata

import pytest

import caxton_meter

ROOT = pathlib.Path(__file__).resolve().parent.parent


def test_the_tests_import_the_installed_package_not_the_source_tree():
    package = pathlib.Path(caxton_meter.__file__).resolve().parent
    assert (package / "py.typed").is_file() and (package / "_core.pyi").is_file()
    if not (package / "_core.pyx").exists():          # a wheel install: no sources shipped
        assert ROOT / "src" not in package.parents


def test_entry_points_register_the_console_script_and_the_pytest_plugin():
    eps = metadata.entry_points()
    scripts = {ep.name: ep.value for ep in eps.select(group="console_scripts")}
    assert scripts.get("caxton-meter") == "caxton_meter._cli:main"
    plugins = {ep.name: ep.value for ep in eps.select(group="pytest11")}
    assert plugins.get("caxton_meter") == "caxton_meter._plugin"


def test_the_bundled_agents_ship_with_the_package():
    from caxton_meter import agents
    for name in ("echo", "compute", "alloc", "trap", "loop"):
        assert pathlib.Path(agents.path(name)).is_file()


@pytest.mark.skipif(sys.version_info < (3, 11), reason="tomllib is 3.11+")
def test_cibuildwheel_builds_cpython_3_10_to_3_14_and_runs_the_tests():
    import tomllib
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    cibw = config["tool"]["cibuildwheel"]
    for version in ("cp310", "cp311", "cp312", "cp313", "cp314"):
        assert f"{version}-*" in cibw["build"].split()
    assert "pytest" in cibw["test-command"] and "{project}/tests" in cibw["test-command"]
    assert cibw["test-groups"] == ["test"]
    assert set(config["tool"]["cibuildwheel"]["linux"]["archs"]) == {"x86_64", "aarch64"}
    assert "windows" in cibw and "macos" in cibw
    extras = config["project"]["optional-dependencies"]
    assert any(r.startswith("matplotlib") for r in extras["plots"])
    assert any(r.startswith("prometheus_client") for r in extras["prometheus"])


def _elf_sections(path: pathlib.Path) -> set[str]:
    """The section names of a 64-bit little-endian ELF file."""
    import struct
    data = path.read_bytes()
    assert data[:4] == b"\x7fELF" and data[4] == 2 and data[5] == 1, "not a 64-bit LE ELF"
    shoff, = struct.unpack_from("<Q", data, 0x28)
    shentsize, shnum, shstrndx = struct.unpack_from("<HHH", data, 0x3A)
    headers = [struct.unpack_from("<IIQQQQ", data, shoff + i * shentsize) for i in range(shnum)]
    strtab_offset = headers[shstrndx][4]
    names = set()
    for name_offset, *_ in headers:
        start = strtab_offset + name_offset
        names.add(data[start:data.index(b"\0", start)].decode())
    return names


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="ELF: Linux builds")
def test_the_core_ships_without_debug_information():
    import os

    from caxton_meter import _core
    if os.environ.get("CAXTON_METER_DEBUG") == "1" or os.environ.get("CAXTON_METER_SANITIZE"):
        pytest.skip("a debug or sanitizer build keeps its symbols")
    sections = _elf_sections(pathlib.Path(_core.__file__))
    assert ".text" in sections and ".dynsym" in sections      # the reader reads sections
    assert not {s for s in sections if s.startswith(".debug")}, sorted(sections)
    assert ".symtab" not in sections
