"""Which kernel ABI apt resolves (plugins/module_utils/lab/kernelabi.py), on fixed
apt-cache output (no apt)."""

import pytest
from ansible_collections.nswap.cluster.plugins.module_utils.lab import kernelabi

APT_CACHE_DEPENDS = """\
linux-image-amd64
  Depends: linux-image-6.1.0-56-amd64
"""

APT_CACHE_DEPENDS_UNSIGNED = """\
linux-image-amd64
 |Depends: linux-image-6.1.0-9-amd64-unsigned
  Recommends: firmware-linux-free
"""


def test_parse_image_depends_signed():
    assert kernelabi.parse_image_depends(APT_CACHE_DEPENDS) == (
        "linux-image-6.1.0-56-amd64",
        "6.1.0-56-amd64",
    )


def test_parse_image_depends_unsigned_keeps_package_name_but_not_in_abi():
    assert kernelabi.parse_image_depends(APT_CACHE_DEPENDS_UNSIGNED) == (
        "linux-image-6.1.0-9-amd64-unsigned",
        "6.1.0-9-amd64",
    )


@pytest.mark.parametrize(
    "text",
    ["", "linux-image-amd64\n", "linux-image-amd64\n  Depends: linux-base\n"],
)
def test_parse_image_depends_none(text):
    assert kernelabi.parse_image_depends(text) is None


def test_resolve_image_package_error_names_the_fix(monkeypatch):
    monkeypatch.setattr(kernelabi, "_run", lambda argv, timeout_s, cwd=None: "linux-image-amd64\n")
    with pytest.raises(kernelabi.KernelAbiError, match="apt-get update"):
        kernelabi.resolve_image_package()


def test_host_view_has_no_options_and_a_suite_view_has_its_own_files():
    assert kernelabi.HOST_APT.options() == []
    options = kernelabi.AptView("trixie", "/s").options()
    assert "Dir::Etc::SourceList=/s/sources.list" in options
    assert "Dir::State::Lists=/s/lists" in options
    assert "Dir::Cache=/s/cache" in options
    assert all(options[i] == "-o" for i in range(0, len(options), 2))


def test_resolve_image_package_reads_the_view(monkeypatch):
    seen = []
    depends = "linux-image-amd64\n  Depends: linux-image-6.12.57+deb13-amd64\n"
    monkeypatch.setattr(
        kernelabi, "_run", lambda argv, timeout_s, cwd=None: seen.append(argv) or depends
    )
    view = kernelabi.AptView("trixie", "/s")
    assert kernelabi.resolve_kernel_abi(apt=view) == "6.12.57+deb13-amd64"
    assert seen[0][1:-2] == view.options()
    monkeypatch.setattr(kernelabi, "_run", lambda argv, timeout_s, cwd=None: "")
    with pytest.raises(kernelabi.KernelAbiError, match="the trixie lists"):
        kernelabi.resolve_image_package(apt=view)
